use super::*;

#[test]
fn retries_back_off_exponentially_with_bounded_jitter_up_to_the_cap() {
    let s = MailSettings {
        retry_base_seconds: 60,
        retry_max_seconds: 3600,
        ..MailSettings::default()
    };
    for (attempt, nominal) in [(1, 60), (2, 120), (3, 240), (4, 480), (7, 3600), (20, 3600)] {
        let d = backoff(&s, 42, attempt).num_seconds();
        assert!(
            d >= nominal * 80 / 100 && d <= nominal * 120 / 100,
            "attempt {attempt}: {d}s vs {nominal}s"
        );
    }
    assert_eq!(
        backoff(&s, 42, 3),
        backoff(&s, 42, 3),
        "the same row and attempt give the same delay"
    );
}

#[test]
fn quiet_hours_hold_escalations_to_the_next_working_morning() {
    let s = MailSettings {
        quiet_hours: true,
        ..MailSettings::default()
    };
    let cals: Calendars = [crate::sla::Calendar::from_closures(
        "england-and-wales",
        Default::default(),
    )]
    .into_iter()
    .collect();
    let row = Claimed {
        id: 1,
        case_id: None,
        escalation_id: Some(1),
        template: "t".into(),
        recipient_ref: None,
        recipient_email: None,
        facts: sqlx::types::Json(serde_json::json!({})),
        attempts: 0,
        first_failed_at: None,
        calendar: Some("england-and-wales".into()),
        claimed_until: None,
    };
    let at = |t: &str| crate::clock::parse_time(t).unwrap();
    // Friday evening waits for Monday 09:00; a weekday afternoon goes now.
    assert_eq!(
        quiet_until(&s, &cals, &row, at("2026-01-09T18:00:00Z")),
        Some(at("2026-01-12"))
    );
    assert_eq!(
        quiet_until(&s, &cals, &row, at("2026-01-08T07:00:00Z")),
        Some(at("2026-01-08"))
    );
    assert_eq!(
        quiet_until(&s, &cals, &row, at("2026-01-08T14:00:00Z")),
        None
    );
    let off = MailSettings::default();
    assert_eq!(
        quiet_until(&off, &cals, &row, at("2026-01-09T18:00:00Z")),
        None
    );
}

/// What docs/operations.md says of the defaults: a message that keeps failing is tried 13
/// times (now and then 14) and given up 24 to 32 hours after its first failure, at the first
/// attempt after a day. Each attempt here comes exactly when the backoff says.
#[test]
fn with_the_defaults_a_failing_message_is_tried_13_or_14_times_over_a_day_and_a_bit() {
    let s = MailSettings::default();
    let first = crate::clock::parse_time("2026-01-07T09:00:00Z").unwrap();
    let mut tried = std::collections::BTreeMap::new();
    let mut longest = Duration::zero();
    for id in 1..=2000 {
        let (mut now, mut attempts) = (first, 1);
        while !gives_up(&s, first, now) {
            now += backoff(&s, id, attempts);
            attempts += 1;
        }
        *tried.entry(attempts).or_insert(0) += 1;
        longest = longest.max(now - first);
        assert!(now - first >= Duration::hours(24));
    }
    assert_eq!(
        tried.keys().copied().collect::<Vec<i64>>(),
        [13, 14],
        "{tried:?}"
    );
    assert!(tried[&13] > tried[&14] * 10, "{tried:?}");
    assert!(longest < Duration::hours(32), "{longest}");
}
