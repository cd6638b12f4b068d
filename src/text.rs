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
    fn bounded_messages_escape_nul_and_stop_at_the_limit() {
        assert_eq!(bounded("a\0b", 100), "a\\u{0}b");
        assert_eq!(bounded("abcdef", 3), "abc…");
    }
}
