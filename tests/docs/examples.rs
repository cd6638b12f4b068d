//! The command examples of a document and the outcome it gives each, read from its markup:
//!
//! - A fenced `json` block whose lines are commands (`{"type":…}` objects, one a line), or a
//!   fenced `sql` block whose `VALUES ('…')` line holds one, is an example. Its commands are
//!   sent together and applied in one pass.
//! - They are accepted, unless the paragraph after the block begins `Rejected: ` and a code span:
//!   then the block holds one command, rejected with that reason.
//! - Inside `<details>` … `</details>`, a block holds the commands behind the bullet list just
//!   before the `<details>` line: the n-th command is rejected with the first code span of the
//!   n-th bullet.
//!
//! In a documented reason `…` stands for any text. A rejection whose paragraph or bullet says the
//! id is "not used up" is one whose `command_id` casewarden does not record.

use std::path::Path;

/// What the document says becomes of a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    Accepted,
    Rejected { reason: String, id_used_up: bool },
}

/// One command, where the document shows it, and its documented outcome.
#[derive(Debug, Clone)]
pub struct Example {
    /// `docs/integration.md:267`
    pub place: String,
    pub command: String,
    pub expected: Expected,
}

/// The commands of one fenced block: sent together, applied in one pass.
pub type Block = Vec<Example>;

/// The example blocks of the document at `rel` (a path in the repository), in order.
pub fn blocks(root: &Path, rel: &str) -> Vec<Block> {
    let text = std::fs::read_to_string(root.join(rel)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut details_from: Option<usize> = None;
    let mut n = 0;
    while n < lines.len() {
        let line = lines[n].trim_start();
        if line.starts_with("<details") {
            details_from = Some(n);
        } else if line.starts_with("</details>") {
            details_from = None;
        }
        let Some(lang) = line.strip_prefix("```").filter(|l| !l.is_empty()) else {
            n += 1;
            continue;
        };
        let close = (n + 1..lines.len())
            .find(|&i| lines[i].trim_start().starts_with("```"))
            .unwrap_or_else(|| panic!("{rel}:{}: a code block that never ends", n + 1));
        let commands: Vec<(usize, String)> = (n + 1..close)
            .filter_map(|i| command(lang, lines[i]).map(|c| (i + 1, c)))
            .collect();
        if !commands.is_empty() {
            let expected = match details_from {
                Some(at) => rejections_listed_before(&lines, at, rel),
                None => outcome_after(&lines, close + 1, commands.len(), rel),
            };
            assert_eq!(
                expected.len(),
                commands.len(),
                "{rel}:{}: {} commands for {} documented outcomes",
                n + 1,
                commands.len(),
                expected.len()
            );
            out.push(
                commands
                    .into_iter()
                    .zip(expected)
                    .map(|((line, command), expected)| Example {
                        place: format!("{rel}:{line}"),
                        command,
                        expected,
                    })
                    .collect(),
            );
        }
        n = close + 1;
    }
    out
}

/// The command a line of a fenced block holds, if it holds one.
fn command(lang: &str, line: &str) -> Option<String> {
    let line = line.trim();
    let json = match lang.trim() {
        "json" => line,
        "sql" => line.strip_prefix("VALUES ('")?.strip_suffix("')")?,
        _ => return None,
    };
    // A problem document (docs/api.md) has a `type` too, a URN.
    (json.starts_with("{\"type\":\"") && !json.starts_with("{\"type\":\"urn:"))
        .then(|| json.replace("''", "'"))
}

/// The outcome of the `count` commands of a block, from the paragraph that follows it.
fn outcome_after(lines: &[&str], from: usize, count: usize, rel: &str) -> Vec<Expected> {
    let paragraph = paragraph_at(lines, from);
    let Some(rest) = paragraph.strip_prefix("Rejected: ") else {
        return vec![Expected::Accepted; count];
    };
    assert_eq!(
        count, 1,
        "{rel}:{from}: a rejected example shows one command"
    );
    let reason = first_code_span(rest)
        .filter(|_| rest.starts_with('`'))
        .unwrap_or_else(|| panic!("{rel}:{from}: `Rejected: ` is not followed by the reason"));
    vec![Expected::Rejected {
        reason,
        id_used_up: !paragraph.contains("not used up"),
    }]
}

/// The reasons of the bullet list that ends just before line `details` (blank lines apart).
fn rejections_listed_before(lines: &[&str], details: usize, rel: &str) -> Vec<Expected> {
    let mut top = details;
    while top > 0 && lines[top - 1].trim().is_empty() {
        top -= 1;
    }
    let end = top;
    while top > 0 && (lines[top - 1].starts_with("- ") || lines[top - 1].starts_with("  ")) {
        top -= 1;
    }
    let mut bullets: Vec<String> = Vec::new();
    for line in &lines[top..end] {
        match line.strip_prefix("- ") {
            Some(item) => bullets.push(item.trim().to_string()),
            None => {
                let last = bullets.last_mut().unwrap();
                last.push(' ');
                last.push_str(line.trim());
            }
        }
    }
    assert!(
        !bullets.is_empty(),
        "{rel}:{}: <details> with commands, but no list of reasons before it",
        details + 1
    );
    bullets
        .into_iter()
        .map(|bullet| Expected::Rejected {
            reason: first_code_span(&bullet).unwrap_or_else(|| {
                panic!("{rel}:{}: a bullet without a reason: {bullet}", details + 1)
            }),
            id_used_up: !bullet.contains("not used up"),
        })
        .collect()
}

/// The paragraph starting at line `from` (after any blank lines), its lines joined as Markdown
/// joins them: with a space.
fn paragraph_at(lines: &[&str], mut from: usize) -> String {
    while from < lines.len() && lines[from].trim().is_empty() {
        from += 1;
    }
    let mut text = Vec::new();
    while from < lines.len() && !lines[from].trim().is_empty() {
        text.push(lines[from].trim());
        from += 1;
    }
    text.join(" ")
}

/// The text of the first code span in `text`: opened by a run of backticks and closed by a run
/// of the same length, with one space each side stripped when both are there (as Markdown does,
/// so `` `` a `b` `` `` can hold backticks).
pub fn first_code_span(text: &str) -> Option<String> {
    let open = text.find('`')?;
    let ticks = text[open..].chars().take_while(|&c| c == '`').count();
    let body = &text[open + ticks..];
    let mut from = 0;
    loop {
        let at = from + body[from..].find('`')?;
        let run = body[at..].chars().take_while(|&c| c == '`').count();
        if run == ticks {
            let span = &body[..at];
            let stripped = span
                .strip_prefix(' ')
                .and_then(|s| s.strip_suffix(' '))
                .filter(|s| !s.trim().is_empty());
            return Some(stripped.unwrap_or(span).to_string());
        }
        from = at + run;
    }
}

/// Whether `actual` is `documented`, where `…` in `documented` stands for any text.
pub fn matches(documented: &str, actual: &str) -> bool {
    let parts: Vec<&str> = documented.split('…').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return documented == actual;
    };
    let Some(mut rest) = actual.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[test]
fn a_code_span_may_hold_backticks_and_an_ellipsis_stands_for_any_text() {
    assert_eq!(
        first_code_span("Rejected: `` a `b` c `` and `d`").as_deref(),
        Some("a `b` c")
    );
    assert_eq!(first_code_span("x `y` z").as_deref(), Some("y"));
    assert!(matches("now is …)", "now is 2026-03-02 10:00:00 UTC)"));
    assert!(matches("a … b … c", "a 1 b 2 c"));
    assert!(!matches("a … b", "a 1 c"));
    assert!(!matches("exact", "exact, and more"));
    assert!(matches("ends with …", "ends with anything"));
}
