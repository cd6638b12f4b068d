//! `casewarden report duties` as an operator runs it: the quarter's duty records as CSV on
//! standard output, and a quarter it cannot read refused with the reason and a non-zero exit.

use super::{run, text, workdir};

#[test]
fn report_duties_prints_the_quarter_as_csv_and_refuses_a_quarter_it_cannot_read() {
    let dir = workdir();
    std::fs::write(
        dir.path().join("commands.jsonl"),
        [
            r#"{"type":"upsert_role","ref":"housing_options","name":"Housing options"}"#,
            r#"{"type":"upsert_contact","ref":"a1","name":"Alex Applicant"}"#,
            r#"{"type":"create_case","case_ref":"HO-7","kind":"housing_options","workflow":"section_21","country":"england","applicant":"a1","received_at":"2026-04-01T09:30:00Z"}"#,
            r#"{"type":"record_referral","case_ref":"HO-7","source":"self","referred_on":"2026-04-01"}"#,
            r#"{"type":"record_duty","case_ref":"HO-7","duty":"prevention","start_date":"2026-04-01"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    assert!(
        run(dir.path(), &["submit", "commands.jsonl"])
            .status
            .success()
    );
    let out = run(dir.path(), &["tick", "--now", "2026-04-02T10:00:00Z"]);
    assert!(
        text(&out.stdout).contains("5 accepted, 0 rejected"),
        "{}",
        text(&out.stdout)
    );

    let out = run(dir.path(), &["report", "duties", "--quarter", "2026Q2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = text(&out.stdout);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(
        rows[0].starts_with("case_ref,country,workflow,approach_date,referral_source,"),
        "{csv}"
    );
    assert_eq!(
        rows[1],
        "HO-7,england,section_21,2026-04-01,self,,2026-04-01,,,,2026-04-01,,,,,,,,,0,0"
    );

    for (quarter, reason) in [
        ("2026Q5", "2026Q5: a year has quarters 1 to 4"),
        (
            "2026-Q2",
            "\"2026-Q2\" is not a quarter: write the year, Q and the quarter's number, e.g. 2026Q2",
        ),
        ("Q2", "\"Q2\" is not a quarter"),
    ] {
        let out = run(dir.path(), &["report", "duties", "--quarter", quarter]);
        assert_eq!(out.status.code(), Some(2), "{quarter}");
        assert!(out.stdout.is_empty(), "{quarter}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(reason), "{quarter}: {stderr}");
    }
}
