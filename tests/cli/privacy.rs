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
