//! Two daemons on one PostgreSQL database, both delivering the same subscription: the lease lets
//! one send a batch at a time, so the receiver never handles a batch twice at once, and every
//! event arrives in order.

use std::time::Duration;

use reqwest::StatusCode;

use crate::receiver::{Answer, Receiver};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_postgresql_never_send_a_batch_at_the_same_time_and_miss_nothing() {
    let Some(url) = crate::pg::fresh_database() else {
        return;
    };
    let receiver = Receiver::start().await;
    // Slow answers keep each request open long enough for the other daemon to try the same
    // batch; the failures make both retry it.
    receiver.answer(Answer::Slow(Duration::from_millis(150)));
    receiver.script([
        Answer::Status(500),
        Answer::Slow(Duration::from_millis(150)),
        Answer::Status(503),
    ]);
    let secret = secret();
    let mut hook = hook(&receiver.url, &secret);
    hook.batch_size = 7;
    let backend = crate::Backend::Postgres(url);
    let one = backend.daemon(|s| s.webhooks = vec![hook.clone()]).await;
    let two = backend.daemon(|s| s.webhooks = vec![hook.clone()]).await;
    let start = started(&one.db, &hook).await;

    for i in 0..12 {
        let api = if i % 2 == 0 { &one } else { &two };
        let (status, body) = api.commands(&api.admin, &roles(&format!("r{i}"), 10)).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
    }
    let expected = role_events(&one.db, start).await;
    assert_eq!(expected.len(), 120);
    receiver
        .wait_for(Duration::from_secs(60), "every event", |r| {
            acknowledged(r).len() >= 120
        })
        .await;

    let requests = receiver.requests();
    let (overlaps, most) = receiver.overlaps();
    assert!(
        overlaps.is_empty(),
        "batches sent twice at once: {overlaps:?}"
    );
    assert_eq!(most, 1, "one request at a time for the subscription");
    assert_eq!(acknowledged(&requests), expected, "in order, once, no gap");
    assert_eq!(deduplicated(&requests), expected);
    one.stop().await;
    two.stop().await;
}
