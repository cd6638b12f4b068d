//! `casewarden erase contact`: through the command line, with its refusals named.

use super::{run, submit, text, workdir};

#[test]
fn erase_contact_erases_a_contact_and_names_what_it_cannot_do() {
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
