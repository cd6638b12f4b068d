//! `casewarden export contact` and `erase contact`: through the command line, with their refusals
//! named.

use super::{run, submit, text, workdir};

#[test]
fn export_and_erase_contact_do_their_work_and_name_what_they_cannot_do() {
    let dir = workdir();
    assert!(run(dir.path(), &["migrate"]).status.success());
    submit(
        dir.path(),
        r#"{"type": "upsert_contact", "ref": "jane", "name": "Jane Example", "email": "jane@example.net"}"#,
    );
    assert!(
        run(dir.path(), &["tick", "--now", "2026-03-02"])
            .status
            .success()
    );

    // Subject access first: the document, in a new directory.
    let out = run(dir.path(), &["export", "contact", "jane", "--to", "sar"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("contact jane, 0 case(s), 0 notification(s), 0 pack file(s)"),
        "{}",
        text(&out.stdout)
    );
    let document = std::fs::read_to_string(dir.path().join("sar/subject-access.json")).unwrap();
    assert!(
        document.contains("\"name\": \"Jane Example\"") && document.contains("jane@example.net"),
        "{document}"
    );
    let out = run(dir.path(), &["export", "contact", "jane", "--to", "sar"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("sar exists and is not an empty directory"),
        "{}",
        text(&out.stderr)
    );
    let out = run(dir.path(), &["export", "contact", "nobody", "--to", "sar2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("there is no contact \"nobody\""),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !dir.path().join("sar2").exists(),
        "nothing is written for an unknown contact"
    );

    let out = run(
        dir.path(),
        &["erase", "contact", "jane", "--reason", "SAR-2026-17"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.starts_with("contact jane erased at "), "{said}");
    assert!(said.contains("cases: none"), "{said}");
    let events = text(&run(dir.path(), &["events"]).stdout);
    assert!(events.contains("\"kind\":\"contact_erased\""), "{events}");
    assert!(!events.contains("Jane"), "{events}");

    let out = run(
        dir.path(),
        &["erase", "contact", "nobody", "--reason", "x", "--json"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("there is no contact \\\"nobody\\\""),
        "{}",
        text(&out.stderr)
    );
    let out = run(dir.path(), &["erase", "contact", "jane", "--reason", " "]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("the reason is empty"),
        "{}",
        text(&out.stderr)
    );
    let out = run(dir.path(), &["erase", "contact", "jane"]);
    assert_eq!(out.status.code(), Some(2), "--reason is required");
}

#[test]
fn check_refuses_a_template_that_reads_a_personal_field_a_definition_does_not_allow() {
    let dir = workdir();
    let partial = dir.path().join("templates/_item.txt.j2");
    let shipped = std::fs::read_to_string(&partial).unwrap();
    std::fs::write(
        &partial,
        format!("{shipped}Address: {{{{ property.address }}}}\nDear {{{{ applicant.name }}}}\n"),
    )
    .unwrap();

    let out = run(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let line = shipped.lines().count() + 1;
    assert!(
        stderr.contains(&format!("templates/_item.txt.j2:{line}:13: error: _item.txt.j2 reads the personal field property.address, which officers' notifications may not carry for domestic_abuse-england, ")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("templates/_item.txt.j2:{}:9: error: _item.txt.j2 reads applicant.name: officers' notifications never carry the applicant's name, address or enquiry answers", line + 1)),
        "{stderr}"
    );
}

#[test]
fn check_refuses_personal_fields_for_a_sensitive_definition_and_fields_that_do_not_exist() {
    let dir = workdir();
    let def = dir
        .path()
        .join("rules/definitions/housing_options/domestic_abuse-england.toml");
    let shipped = std::fs::read_to_string(&def).unwrap();
    assert!(
        shipped.contains("\nsensitive = true\n"),
        "the shipped domestic abuse workflow is sensitive"
    );
    std::fs::write(
        &def,
        shipped.replacen(
            "sensitive = true\n",
            "sensitive = true\nnotify_personal = [\"property.address\"]\n",
            1,
        ),
    )
    .unwrap();
    let rtb = dir
        .path()
        .join("rules/definitions/home_buy/right_to_buy-england.toml");
    let shipped = std::fs::read_to_string(&rtb).unwrap();
    std::fs::write(&rtb, shipped.replacen("team_role = \"home_ownership\"\n", "team_role = \"home_ownership\"\nnotify_personal = [\"case.attributes.date_of_birth\"]\n", 1)).unwrap();

    let out = run(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("domestic_abuse-england.toml:"), "{stderr}");
    assert!(stderr.contains("error: notify_personal allows \"property.address\", but the definition is sensitive: its notifications never carry personal data"), "{stderr}");
    assert!(stderr.contains("error: notify_personal names \"case.attributes.date_of_birth\", which is not a personal field of this definition's cases"), "{stderr}");
    assert!(stderr.contains("help: personal fields: property.address (an attribute must be listed in personal_attributes first)"), "{stderr}");
}
