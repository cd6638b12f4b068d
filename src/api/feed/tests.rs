//! How one look at the log is bounded, on a SQLite log of known events.

use super::{Filter, look};
use crate::db::Db;
use crate::events::kinds::{Kind, RoleUpserted, RulesLoaded};

/// A migrated database whose log holds five `role_upserted` events and then one `rules_loaded`;
/// returns their ids.
async fn log() -> (tempfile::TempDir, Db, Vec<i64>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cases.db").display());
    let db = Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    let mut ids = Vec::new();
    let now = crate::clock::now();
    for i in 0..6 {
        let event = match i {
            5 => Kind::RulesLoaded(RulesLoaded { hash: "h".into() }),
            _ => Kind::RoleUpserted(RoleUpserted {
                role: format!("r{i}"),
            }),
        };
        let mut tx = db.begin_write().await.unwrap();
        crate::events::record(&mut tx, None, now, "operator", event)
            .await
            .unwrap();
        ids.push(
            crate::db::sql("SELECT MAX(id) FROM events")
                .scalar::<i64>(&mut tx)
                .await
                .unwrap(),
        );
        tx.commit().await.unwrap();
    }
    (dir, db, ids)
}

fn kind(k: &str) -> Filter {
    Filter::new(None, Some(k.to_string())).unwrap()
}

#[tokio::test]
async fn a_kind_filter_looks_at_no_more_rows_than_its_bound_and_moves_past_them() {
    let (_dir, db, ids) = log().await;
    let page = look(&db, &mut kind("rules_loaded"), 0, 10, 3)
        .await
        .unwrap();
    assert!(page.events.is_empty());
    assert_eq!((page.next_after, page.looked, page.more), (ids[2], 3, true));
    let page = look(&db, &mut kind("rules_loaded"), ids[2], 10, 3)
        .await
        .unwrap();
    let found: Vec<i64> = page.events.iter().map(|e| e.id).collect();
    assert_eq!((found, page.next_after), (vec![ids[5]], ids[5]));
    let page = look(&db, &mut kind("rules_loaded"), ids[5], 10, 3)
        .await
        .unwrap();
    assert!(page.events.is_empty());
    assert_eq!(
        (page.next_after, page.looked, page.more),
        (ids[5], 0, false)
    );
}

#[tokio::test]
async fn a_full_page_ends_at_its_last_event_even_inside_the_window() {
    let (_dir, db, ids) = log().await;
    let page = look(&db, &mut kind("role_upserted"), 0, 2, 100)
        .await
        .unwrap();
    let found: Vec<i64> = page.events.iter().map(|e| e.id).collect();
    assert_eq!(found, ids[..2]);
    assert_eq!((page.next_after, page.more), (ids[1], true));
    let mut all = Filter::new(None, None).unwrap();
    let page = look(&db, &mut all, ids[1], 100, 1).await.unwrap();
    assert_eq!(
        page.events.len(),
        4,
        "without a kind filter the bound is the page"
    );
    assert_eq!((page.next_after, page.more), (ids[5], false));
}

#[test]
fn a_kind_the_contract_does_not_have_is_refused() {
    let Err(problem) = Filter::new(None, Some("case_opened".into())) else {
        panic!("case_opened was taken for a kind");
    };
    assert_eq!(problem.status, 400);
    assert!(
        problem
            .detail
            .starts_with("kind \"case_opened\" is not an event kind: use one of case_created, "),
        "{}",
        problem.detail
    );
}
