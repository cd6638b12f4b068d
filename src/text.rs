//! Text from outside (commands, rows written straight into the tables, rule and template output)
//! made safe to show: quoted and bounded for messages that are stored and logged.

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

/// Unicode format characters (category Cf) that change how text displays without showing:
/// zero-width spaces and joiners, direction marks and overrides, the byte-order mark.
pub fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0001}' | '\u{E0020}'..='\u{E007F}')
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
}
