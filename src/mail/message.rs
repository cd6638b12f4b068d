//! Building one message from an outbox row, so that nothing from outside can add a header or
//! crash the process: every value bound for a header (the recipient's name, the subject, the
//! names in From and Reply-To) is made one line of visible text first, and the build runs inside
//! `catch_unwind`, so a value lettre still cannot format fails that message alone.

use lettre::address::Envelope;
use lettre::message::{Mailbox, MultiPart, header::ContentType};

use super::{Rendered, SendError};

/// The longest display name or subject put in a header, in characters.
pub const MAX_HEADER_CHARS: usize = 200;

/// A message ready to send: the SMTP envelope and the bytes of the message itself.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub envelope: Envelope,
    pub bytes: Vec<u8>,
}

/// A value fit for a header: control characters (line breaks, NUL, tabs) and invisible format
/// characters become spaces, runs of whitespace one space, at most `max` characters. lettre then
/// encodes what is not plain ASCII (RFC 2047), so the value can never end the header it is in.
pub fn header_text(value: &str, max: usize) -> String {
    let mut out = String::with_capacity(value.len().min(max));
    let mut chars = 0;
    let mut space = false;
    for c in value.chars() {
        let c = if c.is_control() || crate::text::is_format(c) || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' {
            space = !out.is_empty();
            continue;
        }
        if chars + usize::from(space) + 1 > max {
            break;
        }
        if space {
            out.push(' ');
            chars += 1;
            space = false;
        }
        out.push(c);
        chars += 1;
    }
    out
}

/// A mailbox with its display name made header-safe (an empty name is left out).
pub fn safe_mailbox(name: Option<&str>, address: lettre::Address) -> Mailbox {
    let name = name
        .map(|n| header_text(n, MAX_HEADER_CHARS))
        .filter(|n| !n.is_empty());
    Mailbox::new(name, address)
}

/// What a message is made of, apart from its content.
pub struct Parts<'a> {
    pub from: &'a Mailbox,
    pub reply_to: Option<&'a Mailbox>,
    pub to_name: Option<&'a str>,
    pub to_email: &'a str,
    pub message_id: String,
    pub date: chrono::DateTime<chrono::Utc>,
}

/// Builds a message. Never panics: a value lettre cannot format is a permanent failure of this
/// message, with the reason.
pub fn build(parts: &Parts<'_>, m: &Rendered) -> Result<Outgoing, SendError> {
    let address: lettre::Address = parts.to_email.parse().map_err(|_| {
        SendError::Permanent(format!(
            "{} is not an e-mail address",
            crate::text::quote(parts.to_email)
        ))
    })?;
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let from = safe_mailbox(parts.from.name.as_deref(), parts.from.email.clone());
        let mut builder = lettre::Message::builder()
            .from(from)
            .to(safe_mailbox(parts.to_name, address))
            .subject(header_text(&m.subject, MAX_HEADER_CHARS * 5))
            .date(std::time::SystemTime::from(parts.date))
            .message_id(Some(parts.message_id.clone()));
        if let Some(r) = parts.reply_to {
            builder = builder.reply_to(safe_mailbox(r.name.as_deref(), r.email.clone()));
        }
        let message = match &m.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                m.text.clone(),
                html.clone(),
            )),
            None => builder.header(ContentType::TEXT_PLAIN).body(m.text.clone()),
        }
        .map_err(|e| SendError::Permanent(format!("cannot build the message: {e}")))?;
        Ok(Outgoing {
            envelope: message.envelope().clone(),
            bytes: message.formatted(),
        })
    }));
    match built {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_string());
            Err(SendError::Permanent(format!(
                "cannot build the message: the mail library failed ({})",
                crate::text::bounded(&what, 200)
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parts<'a>(from: &'a Mailbox, reply_to: &'a Mailbox, name: &'a str) -> Parts<'a> {
        Parts {
            from,
            reply_to: Some(reply_to),
            to_name: Some(name),
            to_email: "olu@example.org",
            message_id: "<casewarden.outbox.7@example.org>".into(),
            date: crate::clock::parse_time("2026-01-07T09:00:00Z").unwrap(),
        }
    }

    /// The header block of a formatted message, unfolded: one entry per header.
    fn headers(bytes: &[u8]) -> Vec<String> {
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let (head, _) = text
            .split_once("\r\n\r\n")
            .expect("a blank line ends the headers");
        let mut out: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            assert!(
                !line.contains('\r') && !line.contains('\n'),
                "a bare line break in {line:?}"
            );
            if line.starts_with([' ', '\t']) {
                out.last_mut()
                    .expect("a continuation follows a header")
                    .push_str(line);
            } else {
                out.push(line.to_string());
            }
        }
        out
    }

    fn names(headers: &[String]) -> Vec<&str> {
        headers
            .iter()
            .map(|h| h.split_once(':').map_or(h.as_str(), |(n, _)| n))
            .collect()
    }

    const EXPECTED: [&str; 8] = [
        "From",
        "Reply-To",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "Content-Type",
        "Content-Transfer-Encoding",
    ];

    fn check(name: &str, subject: &str, from_name: &str) {
        let from = safe_mailbox(
            Some(from_name),
            "homeownership@example.org".parse().unwrap(),
        );
        let reply_to: Mailbox = "Enquiries <enquiries@example.org>".parse().unwrap();
        let m = Rendered {
            subject: subject.to_string(),
            text: "Body".into(),
            html: None,
        };
        let out = build(&parts(&from, &reply_to, name), &m).expect("every name builds");
        let h = headers(&out.bytes);
        let mut got = names(&h);
        got.sort_unstable();
        let mut want = EXPECTED.to_vec();
        want.sort_unstable();
        assert_eq!(got, want, "{h:#?}");
        assert_eq!(
            out.envelope.to(),
            ["olu@example.org".parse::<lettre::Address>().unwrap()],
            "nobody else receives it"
        );
    }

    #[test]
    fn a_line_break_in_a_name_or_subject_cannot_add_a_header() {
        check(
            "Boss\r\nBcc: someone@example.org",
            "M-1\r\nBcc: x@example.org",
            "Team\nX-Evil: 1",
        );
        check("Off\nX", "\u{0}\u{7}\u{1b}[2J", "\u{202E}");
        check(&"n".repeat(10_000), &"s".repeat(10_000), "");
        let from = safe_mailbox(None, "a@example.org".parse().unwrap());
        let reply: Mailbox = "b@example.org".parse().unwrap();
        let out = build(
            &parts(&from, &reply, "Boss\r\nBcc: someone@example.org"),
            &Rendered {
                subject: "s".into(),
                text: "t".into(),
                html: None,
            },
        )
        .unwrap();
        let text = String::from_utf8(out.bytes).unwrap();
        assert!(!text.contains("\r\nBcc:"), "{text}");
        // "Boss Bcc: someone@example.org" as one encoded word: a display name, not a header.
        assert!(
            text.contains(
                "\r\nTo: =?utf-8?b?Qm9zcyBCY2M6IHNvbWVvbmVAZXhhbXBsZS5vcmc=?= <olu@example.org>\r\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn header_text_is_one_line_of_visible_text_within_its_limit() {
        assert_eq!(header_text("  Boss\r\n\tBcc: x  ", 100), "Boss Bcc: x");
        assert_eq!(header_text("abc def", 5), "abc d");
        assert_eq!(header_text("abc  def", 4), "abc");
        assert_eq!(header_text("\u{200B}\u{0}", 10), "");
        assert_eq!(header_text("Siân Ødegård", 100), "Siân Ødegård");
    }

    #[test]
    fn an_address_that_is_not_one_fails_its_message_alone() {
        let from = safe_mailbox(None, "a@example.org".parse().unwrap());
        let reply: Mailbox = "b@example.org".parse().unwrap();
        let mut p = parts(&from, &reply, "x");
        p.to_email = "olu@example.org\r\nBcc: x@example.org";
        let m = Rendered {
            subject: "s".into(),
            text: "t".into(),
            html: None,
        };
        let err = build(&p, &m).unwrap_err();
        assert!(
            matches!(&err, SendError::Permanent(r) if r.contains("is not an e-mail address") && !r.contains('\n')),
            "{err:?}"
        );
    }

    /// The shipped notification templates.
    fn shipped_renderer() -> crate::mail::Renderer {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let files: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let path = e.ok()?.path();
                let name = path.file_name()?.to_str()?.to_string();
                Some((name, std::fs::read_to_string(&path).ok()?))
            })
            .collect();
        let (renderer, problems) = crate::mail::Renderer::new(&dir, &files);
        assert!(problems.is_empty(), "{problems:?}");
        renderer
    }

    fn hostile() -> impl Strategy<Value = String> {
        let noise = prop_oneof![
            Just("\r\n".to_string()),
            Just("\nBcc: x@example.org".to_string()),
            Just("\r\n\r\n<html>".to_string()),
            Just("\0".to_string()),
            Just("\u{202e}".to_string()),
            "(?s).{0,40}",
        ];
        proptest::collection::vec(noise, 0..8).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn no_value_in_the_facts_makes_a_rendered_notification_add_a_header(
            case_ref in hostile(),
            task_name in hostile(),
            task_key in hostile(),
            name in hostile(),
        ) {
            let renderer = shipped_renderer();
            for kind in ["sla_amber", "task_released"] {
                let mut facts = crate::mail::render::sample_facts(kind);
                facts["case"]["case_ref"] = serde_json::json!(case_ref);
                facts["task"]["name"] = serde_json::json!(task_name);
                facts["task"]["key"] = serde_json::json!(task_key);
                facts["recipient"]["name"] = serde_json::json!(name);
                let rendered = renderer.render(kind, &facts, "Example\r\nBcc: x@example.org").unwrap();
                let from = safe_mailbox(Some("Team"), "homeownership@example.org".parse().unwrap());
                let reply_to: Mailbox = "enquiries@example.org".parse().unwrap();
                let out = build(&parts(&from, &reply_to, &name), &rendered).expect("every notification builds");
                let h = headers(&out.bytes);
                let mut got = names(&h);
                got.sort_unstable();
                let mut want = vec!["Content-Type", "Date", "From", "MIME-Version", "Message-ID", "Reply-To", "Subject", "To"];
                want.sort_unstable();
                prop_assert_eq!(got, want, "{:#?}", h);
                prop_assert_eq!(out.envelope.to().len(), 1);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn no_name_or_subject_panics_or_adds_a_header(
            name in "(?s).{0,300}",
            subject in "(?s).{0,300}",
            from_name in "[\\PC\r\n\t\u{0}\u{202e}]{0,80}",
            noise in proptest::collection::vec(prop_oneof![
                Just("\r\n"), Just("\n"), Just("\r"), Just("\0"), Just("Bcc: x@example.org"),
                Just("\r\n\r\n"), Just("=?utf-8?b?"), Just("\""), Just("<a@b.c>"), Just(","), Just(";"),
                Just("\u{2028}"), Just("\u{85}"), Just(" "), Just("é"),
            ], 0..20),
        ) {
            let spiced: String = noise.concat();
            check(&format!("{name}{spiced}"), &format!("{spiced}{subject}"), &from_name);
        }
    }
}
