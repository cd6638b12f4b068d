//! Text from outside (commands, rows written straight into the tables, rule and template output)
//! made safe to show: quoted and bounded for messages that are stored and logged, and escaped
//! for a terminal by the read-only commands that print it.

use std::borrow::Cow;

/// How many characters of a value a message quotes before cutting it short.
pub const QUOTE_CHARS: usize = 80;

/// A value as a message quotes it: Rust `Debug` escaping (so NUL, line breaks, other control
/// characters and invisible format characters show as escapes, never raw) and at most
/// [`QUOTE_CHARS`] characters of it, with `…` where it was cut.
///
/// ```
/// use casewarden::text::quote;
/// assert_eq!(quote("RTB\u{0}1"), r#""RTB\01""#);
/// assert_eq!(quote(&"x".repeat(200)).chars().count(), 80 + 3);
/// ```
pub fn quote(value: &str) -> String {
    let mut cut: String = value.chars().take(QUOTE_CHARS).collect();
    let short = cut.len() < value.len();
    cut = format!("{cut:?}");
    if short {
        cut.insert(cut.len() - 1, '…');
    }
    cut
}

/// A message made safe to store and show: control characters (NUL included, which PostgreSQL
/// refuses in text) escaped, and at most `max` characters kept.
pub fn bounded(message: &str, max: usize) -> String {
    let mut out = String::with_capacity(message.len().min(max));
    for (n, c) in message.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        if c.is_control() || is_format(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// A message with every double-quoted value in it replaced by `"…"`: what an append-only record
/// keeps of a reason that may quote personal data (an e-mail address, a name). The field names and
/// the problem stay; the values stay only where erasure can reach them.
///
/// ```
/// use casewarden::text::redact_quoted;
/// assert_eq!(
///     redact_quoted(r#"email "priya at home" is not an e-mail address"#),
///     r#"email "…" is not an e-mail address"#
/// );
/// ```
pub fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '"' {
            continue;
        }
        // Skip to the closing quote, honouring backslash escapes.
        let mut escaped = false;
        for d in chars.by_ref() {
            match (escaped, d) {
                (false, '\\') => escaped = true,
                (false, '"') => break,
                _ => escaped = false,
            }
        }
        out.push_str("…\"");
    }
    out
}

/// A message with every word that holds an `@` (an e-mail address, as a mail server's answer
/// quotes the recipient) replaced by `…`: for the event log, which holds no personal data.
///
/// ```
/// use casewarden::text::redact_addresses;
/// assert_eq!(
///     redact_addresses("550 5.1.1 <tenant1@example.net>: Recipient address rejected"),
///     "550 5.1.1 <…>: Recipient address rejected"
/// );
/// ```
pub fn redact_addresses(message: &str) -> String {
    message
        .split_inclusive(char::is_whitespace)
        .map(|word| {
            if !word.contains('@') {
                return word.to_string();
            }
            let core = word.trim_end();
            let (open, close) = match (core.chars().next(), core.chars().last()) {
                (Some('<'), _) => ("<", &core[core.rfind('>').unwrap_or(core.len())..]),
                _ => ("", ""),
            };
            format!("{open}…{close}{}", &word[core.len()..])
        })
        .collect()
}

/// Unicode format characters (category Cf) that change how text displays without showing:
/// zero-width spaces and joiners, direction marks and overrides, the byte-order mark.
pub fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0001}' | '\u{E0020}'..='\u{E007F}')
}

/// Outside text as a terminal shows it: every control character (line breaks and tabs too, so
/// a lone carriage return cannot hide what came before it, and a newline cannot forge a line of
/// the listing) and every format character escaped, the rest as it is. The layout is the
/// printing command's own; only the values pass through here.
///
/// ```
/// use casewarden::text::terminal;
/// assert_eq!(terminal("paid\rnot paid"), r"paid\rnot paid");
/// assert_eq!(terminal("RTB-1\u{200B}"), r"RTB-1\u{200b}");
/// ```
pub fn terminal(value: &str) -> Cow<'_, str> {
    if !value.chars().any(needs_escape) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// JSON as a terminal shows it: characters JSON leaves raw that a terminal acts on or hides
/// (DEL, the C1 controls, format characters) written as `\uXXXX` escapes, so the text is the
/// same JSON, with the same values, and shows every character.
pub fn terminal_json(json: &str) -> Cow<'_, str> {
    // Below U+0020 JSON escapes every character inside a string; outside one, a line break or
    // tab is the layout of pretty-printed JSON.
    let needs_escape = |c: char| c >= ' ' && needs_escape(c);
    if !json.chars().any(needs_escape) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if needs_escape(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || is_format(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_value_never_carries_a_raw_control_or_format_character() {
        for hostile in [
            "\0",
            "a\r\nBcc: x@y",
            "\u{202E}evil",
            "\u{FEFF}RTB-1",
            "tab\there",
        ] {
            let q = quote(hostile);
            assert!(!q.chars().any(|c| c.is_control() || is_format(c)), "{q}");
        }
    }

    #[test]
    fn long_values_are_cut_short_and_say_so() {
        let q = quote(&"é".repeat(500));
        assert!(q.ends_with("…\""), "{q}");
        assert_eq!(q.chars().count(), QUOTE_CHARS + 3);
        assert_eq!(quote("short"), "\"short\"");
    }

    #[test]
    fn redaction_keeps_the_words_and_drops_every_quoted_value() {
        assert_eq!(
            redact_quoted(r#"a "x\"y" and "z" here"#),
            r#"a "…" and "…" here"#
        );
        assert_eq!(redact_quoted("no values"), "no values");
        assert_eq!(redact_quoted(r#"unterminated "abc"#), r#"unterminated "…""#);
    }

    #[test]
    fn bounded_messages_escape_nul_and_stop_at_the_limit() {
        assert_eq!(bounded("a\0b", 100), "a\\u{0}b");
        assert_eq!(bounded("abcdef", 3), "abc…");
    }

    #[test]
    fn terminal_text_shows_every_hidden_character_as_an_escape() {
        assert_eq!(terminal("plain note"), "plain note");
        assert_eq!(terminal("paid\rnot paid"), "paid\\rnot paid");
        assert_eq!(terminal("two\nlines\tand a tab"), "two\\nlines\\tand a tab");
        assert_eq!(
            terminal("\u{FEFF}RTB\u{202E}1\u{1b}[2J"),
            "\\u{feff}RTB\\u{202e}1\\u{1b}[2J"
        );
        assert_eq!(terminal("\u{9b}31m"), "\\u{9b}31m");
        for hostile in [
            "\0",
            "a\r\nb",
            "\u{202E}evil",
            "\u{FEFF}RTB-1",
            "\u{7f}",
            "\u{E0041}",
        ] {
            assert!(!terminal(hostile).chars().any(needs_escape), "{hostile:?}");
        }
    }

    #[test]
    fn terminal_json_is_the_same_json_with_every_character_visible() {
        let value = serde_json::json!({"note": "RTB-1\u{200B}\u{7f}\u{9b}\u{E0041}", "n": 1});
        let json = serde_json::to_string_pretty(&value).unwrap();
        let shown = terminal_json(&json);
        assert!(
            !shown.chars().any(|c| c != '\n' && needs_escape(c)),
            "{shown}"
        );
        assert!(
            shown.contains("RTB-1\\u200b\\u007f\\u009b\\udb40\\udc41"),
            "{shown}"
        );
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back, value);
    }
}
