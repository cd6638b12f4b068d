use super::*;

fn rejected(body: &str) -> String {
    parse(body).unwrap_err().0
}

#[test]
fn a_command_id_is_taken_out_of_any_command() {
    let e = parse(r#"{"type":"upsert_role","ref":"rtb","name":"RTB team","command_id":"c-1"}"#)
        .unwrap();
    assert_eq!(e.command_id.as_deref(), Some("c-1"));
    assert_eq!(e.command.type_name(), "upsert_role");
}

#[test]
fn malformed_input_is_rejected_with_what_was_wrong() {
    assert!(rejected("{not json").starts_with("malformed JSON"));
    assert!(rejected("[1,2]").contains("JSON object"));
    assert!(rejected(r#"{"ref":"x"}"#).contains("missing field `type`"));
    assert!(rejected(r#"{"type":7}"#).contains("must be a string"));
    assert!(
        rejected(r#"{"type":"launch_rocket"}"#)
            .contains("\"type\" \"launch_rocket\" is not a command; use one of: upsert_user,")
    );
    assert!(
        rejected(r#"{"type":"upsert_role","ref":"r"}"#)
            .contains("upsert_role: missing field `name`")
    );
    assert!(rejected(r#"{"type":"upsert_role","ref":5,"name":"n"}"#).contains("invalid type"));
    assert!(
        rejected(r#"{"type":"upsert_role","ref":"r","name":"n","colour":"red"}"#)
            .contains("unknown field `colour`")
    );
    assert!(
        rejected(r#"{"type":"add_note","case_ref":"C1","by":"u1","text":"   "}"#)
            .contains("text is empty")
    );
    assert!(
        rejected(r#"{"type":"upsert_user","ref":"u1","name":"A","email":"nope"}"#)
            .contains("not an e-mail address")
    );
    assert!(
        rejected(r#"{"type":"hold_task","case_ref":"C1","task":"t","until":"soon","reason":"r"}"#)
            .contains("until: \"soon\" is not a time")
    );
}

#[test]
fn an_email_address_is_one_delivery_can_send_to() {
    let user = |email: &str| {
        parse(
            &serde_json::json!({"type": "upsert_user", "ref": "u1", "name": "U", "email": email})
                .to_string(),
        )
    };
    for ok in ["olu@example.org", "o.l+u@mail.example.co.uk"] {
        assert!(user(ok).is_ok(), "{ok}");
    }
    for bad in [
        "nope",
        "a b@example.org",
        "priya.shah at home@example.net",
        "x@",
        "@x.org",
        "a@b@c.org",
    ] {
        let reason = user(bad).unwrap_err().0;
        assert!(
            reason.contains("is not an e-mail address"),
            "{bad}: {reason}"
        );
        assert!(
            bad.parse::<lettre::Address>().is_err(),
            "{bad} must also fail delivery's parse"
        );
    }
}

#[test]
fn every_listed_type_is_a_command_and_every_command_is_listed() {
    for t in TYPES {
        let reason = rejected(&format!(r#"{{"type":"{t}"}}"#));
        assert!(
            reason.starts_with(&format!("{t}: missing field")),
            "{t}: {reason}"
        );
    }
    assert_eq!(TYPES.len(), 21);
}

#[test]
fn a_nul_or_line_break_in_a_type_or_field_name_is_escaped_in_the_reason() {
    for body in [
        "{\"type\":\"\\u0000\"}",
        "{\"type\":\"add_note\",\"case_ref\":\"C1\",\"by\":\"u\",\"text\":\"t\",\"\\u0000\":1}",
        "{\"type\":\"a\\r\\nb\"}",
    ] {
        let reason = rejected(body);
        assert!(!reason.chars().any(char::is_control), "{body}: {reason:?}");
    }
    let long = format!(r#"{{"type":"{}"}}"#, "t".repeat(10_000));
    assert!(rejected(&long).len() < 1_000);
}

#[test]
fn huge_commands_and_fields_are_refused_by_size() {
    let huge = format!(
        r#"{{"type":"add_note","case_ref":"C1","by":"u1","text":"{}"}}"#,
        "x".repeat(MAX_COMMAND_BYTES)
    );
    assert!(rejected(&huge).contains("the limit is"));
    let long = format!(
        r#"{{"type":"add_note","case_ref":"C1","by":"u1","text":"{}"}}"#,
        "x".repeat(MAX_TEXT + 1)
    );
    assert!(rejected(&long).contains("text is 20001 characters long"));
    let long_ref = format!(
        r#"{{"type":"upsert_role","ref":"{}","name":"n"}}"#,
        "r".repeat(101)
    );
    assert!(rejected(&long_ref).contains("ref is 101 characters"));
}

#[test]
fn a_home_buy_case_needs_an_applicant_a_property_and_a_known_scheme() {
    let base = r#""type":"create_case","case_ref":"C1","kind":"home_buy","country":"england","received_at":"2026-01-05""#;
    assert!(
        rejected(&format!("{{{base},\"scheme\":\"right_to_rent\"}}"))
            .contains("scheme \"right_to_rent\" is not one of")
    );
    assert!(
        rejected(&format!("{{{base},\"scheme\":\"right_to_buy\"}}"))
            .contains("missing field `applicant`")
    );
    let with_applicant = format!("{{{base},\"scheme\":\"right_to_buy\",\"applicant\":\"p1\"}}");
    assert!(rejected(&with_applicant).contains("missing field `property`"));
    let ok = format!(
        "{{{base},\"scheme\":\"right_to_buy\",\"applicant\":\"p1\",\"property\":{{\"ref\":\"P1\",\"address\":\"1 High St\",\"tenure\":\"freehold\"}}}}"
    );
    assert!(parse(&ok).is_ok());
}

fn role(reference: &str) -> Result<Envelope, Rejection> {
    parse(&serde_json::json!({"type": "upsert_role", "ref": reference, "name": "n"}).to_string())
}

#[test]
fn references_take_the_characters_housing_crms_use() {
    for ok in [
        "RTB/2026/0001",
        "HO-2026-0001",
        "T_10442",
        "crm:case:17",
        "olu@example.org",
        "v1.2",
        "7",
        &"r".repeat(100),
    ] {
        assert!(role(ok).is_ok(), "{ok:?} was refused: {:?}", role(ok).err());
    }
}

#[test]
fn a_reference_outside_the_format_is_refused_naming_the_field_and_the_characters() {
    for (bad, why) in [
        ("..", "does not start with a letter or digit"),
        ("A/../B", "`..` part"),
        ("A/./B", "`.` or `..` part"),
        ("A//B", "empty"),
        ("/A", "does not start"),
        ("A/", "ends with `/`"),
        ("A B", "whitespace"),
        ("A\0B", "control character"),
        ("A\nB", "whitespace"),
        ("RTB-1\u{200B}", "invisible format character (\\u{200b})"),
        ("\u{FEFF}RTB-1", "invisible format character (\\u{feff})"),
        ("RTB\u{202E}-1", "invisible format character (\\u{202e})"),
        ("Zoë", "non-ASCII character"),
        ("A#1", "`#`"),
        ("", "empty"),
    ] {
        let reason = role(bad).unwrap_err().0;
        assert!(reason.starts_with("upsert_role: ref "), "{bad:?}: {reason}");
        assert!(reason.contains(why), "{bad:?}: {reason}");
        assert!(
            reason.contains("ASCII letters, digits and - _ . / : @"),
            "{bad:?}: {reason}"
        );
        assert!(
            !reason
                .chars()
                .any(|c| c.is_control() || crate::text::is_format(c)),
            "the reason echoes the value escaped: {reason:?}"
        );
    }
    let reason = role(&"r".repeat(300)).unwrap_err().0;
    assert!(
        reason.contains("ref is 300 characters long; the limit is 100"),
        "{reason}"
    );
    let case = |case_ref: &str| {
        parse(&serde_json::json!({"type": "create_case", "case_ref": case_ref, "kind": "housing_options",
            "workflow": "section_21", "country": "england", "applicant": "c1",
            "received_at": "2026-03-02"}).to_string())
    };
    assert!(case("A/B").is_ok() && case("A_B").is_ok());
    assert!(
        case("A/../B")
            .unwrap_err()
            .0
            .contains("create_case: case_ref")
    );
}

#[test]
fn a_command_naming_a_stored_reference_accepts_one_made_before_the_format() {
    let note = |case_ref: &str| {
        parse(&serde_json::json!({"type": "add_note", "case_ref": case_ref, "by": "off#1", "text": "t"}).to_string())
    };
    // Made under the earlier rule (no whitespace): still named, so the case can be worked.
    assert!(note("RTB#7").is_ok());
    assert!(note("Zoë-1").is_ok());
    // Never a look-alike: format characters, whitespace and control characters are refused.
    for bad in [
        "RTB-1\u{200B}",
        "\u{FEFF}RTB-1",
        "RTB\u{202E}-1",
        "RTB 1",
        "RTB\r1",
    ] {
        let reason = note(bad).unwrap_err().0;
        assert!(
            reason.starts_with("add_note: case_ref "),
            "{bad:?}: {reason}"
        );
    }
    // A new record's reference is always in the format.
    assert!(role("RTB#7").is_err());
}
#[test]
fn names_that_could_reach_a_mail_header_are_one_line_of_visible_text() {
    for (kind, extra) in [
        ("upsert_user", r#","email":"a@example.org""#),
        ("upsert_role", ""),
        ("upsert_contact", ""),
        ("upsert_contact_group", r#","members":[]"#),
    ] {
        for bad in [
            r"Boss\r\nBcc: someone@example.org",
            r"Off\nX",
            r"Off\rX",
            r"tab\there",
            r"nul\u0000",
            r"bell\u0007",
            r"del\u007f",
            r"next\u0085line",
            r"rtl\u202eevil",
            r"zero\u200bwidth",
        ] {
            let body = format!(r#"{{"type":"{kind}","ref":"r1","name":"{bad}"{extra}}}"#);
            let reason = rejected(&body);
            assert!(
                reason.starts_with(&format!("{kind}: name "))
                    && reason.contains("contains the character"),
                "{body}: {reason}"
            );
            assert!(!reason.chars().any(|c| c.is_control()), "{reason:?}");
        }
        let long = format!(
            r#"{{"type":"{kind}","ref":"r1","name":"{}"{extra}}}"#,
            "n".repeat(10_000)
        );
        assert!(rejected(&long).contains("name is 10000 characters long; the limit is 200"));
        let fine = format!(r#"{{"type":"{kind}","ref":"r1","name":"Siân O'Neil-Ødegård"{extra}}}"#);
        assert!(parse(&fine).is_ok(), "{fine}");
    }
}

#[test]
fn duty_referral_and_plan_step_commands_name_what_is_wrong_with_their_fields() {
    let cases = [
        (
            r#"{"type":"record_duty","case_ref":"HO-1","duty":"interim","start_date":"2026-04-01"}"#,
            "record_duty: duty \"interim\" is not one of: prevention, relief, main",
        ),
        (
            r#"{"type":"record_duty","case_ref":"HO-1","duty":"relief","start_date":"01/04/2026"}"#,
            "record_duty: start_date \"01/04/2026\" is not a date: use YYYY-MM-DD",
        ),
        (
            r#"{"type":"record_duty","case_ref":"HO-1","duty":"relief","start_date":"2026-02-30"}"#,
            "start_date \"2026-02-30\" is not a date",
        ),
        (
            r#"{"type":"record_duty","case_ref":"HO-1","duty":"relief","start_date":"2026-04-02","end_date":"2026-04-01","end_reason":"Homelessness relieved"}"#,
            "record_duty: end_date 2026-04-01 is before start_date 2026-04-02",
        ),
        (
            r#"{"type":"record_duty","case_ref":"HO-1","duty":"relief","start_date":"2026-04-02","end_date":"2026-05-01"}"#,
            "end_reason: an ended duty needs the reason it ended",
        ),
        (
            r#"{"type":"record_duty","case_ref":"HO-1","duty":"relief","end_reason":"x"}"#,
            "end_reason given without end_date",
        ),
        (
            r#"{"type":"record_duty","case_ref":"HO-1","duty":"relief","start_date":"2026-04-02","end_date":"2026-05-01","end_reason":"Ended\nearly"}"#,
            "end_reason \"Ended\\nearly\" contains the character",
        ),
        (
            r#"{"type":"record_referral","case_ref":"HO-1","source":"self","authority":"Prison","referred_on":"2026-04-01"}"#,
            "authority: a self-referral names no referring authority",
        ),
        (
            r#"{"type":"record_referral","case_ref":"HO-1","source":"duty_to_refer","referred_on":"2026-04-01"}"#,
            "missing field `authority`: a duty_to_refer referral names the authority",
        ),
        (
            r#"{"type":"record_referral","case_ref":"HO-1","source":"gp","authority":"GP","referred_on":"2026-04-01"}"#,
            "source \"gp\" is not one of: self, duty_to_refer, other_agency",
        ),
        (
            r#"{"type":"record_plan_step","case_ref":"HO-1","step_ref":"a step","for":"applicant","step":"x","agreed_on":"2026-04-01"}"#,
            "record_plan_step: step_ref \"a step\" contains whitespace",
        ),
        (
            r#"{"type":"record_plan_step","case_ref":"HO-1","step_ref":"s1","for":"landlord","step":"x","agreed_on":"2026-04-01"}"#,
            "for \"landlord\" is not one of: applicant, council",
        ),
        (
            r#"{"type":"record_plan_step","case_ref":"HO-1","step_ref":"s1","agreed_on":"2026-04-02","review_on":"2026-04-01"}"#,
            "review_on 2026-04-01 is before agreed_on 2026-04-02",
        ),
        (
            r#"{"type":"record_plan_step","case_ref":"HO-1","step_ref":"s1","status":"finished"}"#,
            "status \"finished\" is not one of: agreed, done, not_done, withdrawn",
        ),
        (
            r#"{"type":"record_plan_step","case_ref":"HO-1","step_ref":"s1","step":"   "}"#,
            "step is empty",
        ),
    ];
    for (body, expected) in cases {
        let reason = rejected(body);
        assert!(reason.contains(expected), "{body}: {reason}");
    }
    let long = format!(
        r#"{{"type":"record_plan_step","case_ref":"HO-1","step_ref":"s1","step":"{}"}}"#,
        "x".repeat(2001)
    );
    assert!(rejected(&long).contains("step is 2001 characters long; the limit is 2000"));
    for ok in [
        r#"{"type":"record_duty","case_ref":"HO-1","duty":"prevention","start_date":"2026-04-01"}"#,
        r#"{"type":"record_duty","case_ref":"HO-1","duty":"prevention","end_date":"2026-05-01","end_reason":"Homelessness prevented"}"#,
        r#"{"type":"record_referral","case_ref":"HO-1","source":"self","referred_on":"2026-04-01"}"#,
        r#"{"type":"record_plan_step","case_ref":"HO-1","step_ref":"s1","status":"done"}"#,
    ] {
        assert!(parse(ok).is_ok(), "{ok}: {:?}", parse(ok).err());
    }
}
