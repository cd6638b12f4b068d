//! Seeding with set-based SQL, so that building a million open tasks takes seconds: the
//! organisation (49 officers in the home ownership team), open work, and due work.

use casewarden::clock::parse_time;
use casewarden::db::{Db, Sql, sql};
use chrono::{DateTime, Utc};

use crate::{Goal, Row, fresh, timed};

/// Officers in the team, besides their manager: 49 users in all.
pub const OFFICERS: i64 = 48;
pub const TASKS_PER_CASE: i64 = 10;

pub fn at(text: &str) -> DateTime<Utc> {
    parse_time(text).expect("time")
}

/// When the seeded cases were received, and when the due work falls due.
pub fn received() -> DateTime<Utc> {
    at("2026-01-05T09:00:00Z")
}

pub fn now() -> DateTime<Utc> {
    at("2026-01-07T09:00:00Z")
}

const NUMBERS: &str =
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) ";

/// Roles, the manager and officers, and six tenants.
pub async fn organisation(db: &Db) {
    let mut tx = db.begin().await.expect("begin");
    sql("INSERT INTO roles (ref, name) VALUES ('home_ownership', 'Home ownership team'), ('managers', 'Team managers')")
        .execute(&mut tx).await.expect("roles");
    sql("INSERT INTO users (ref, name, email, updated_at) VALUES ('mgr1', 'Morag Manager', 'morag@example.org', $1)")
        .bind(received()).execute(&mut tx).await.expect("manager");
    sql("INSERT INTO user_roles (user_ref, role_ref) VALUES ('mgr1', 'managers')")
        .execute(&mut tx)
        .await
        .expect("manager role");
    numbered(
        "INSERT INTO users (ref, name, email, line_manager, updated_at) \
         SELECT 'off' || i, 'Officer ' || i, 'off' || i || '@example.org', 'mgr1', $2 FROM n",
    )
    .bind(OFFICERS)
    .bind(received())
    .execute(&mut tx)
    .await
    .expect("officers");
    sql("INSERT INTO user_roles (user_ref, role_ref) SELECT ref, 'home_ownership' FROM users WHERE ref LIKE 'off%'")
        .execute(&mut tx).await.expect("officer roles");
    numbered("INSERT INTO contacts (ref, name, email, address, updated_at) \
         SELECT 'tenant' || i, 'Tenant ' || i, 'tenant' || i || '@example.net', i || ' Example Road', $2 FROM n")
        .bind(6_i64).bind(received()).execute(&mut tx).await.expect("contacts");
    tx.commit().await.expect("commit");
}

/// A statement over the numbers 1 to `$1`.
fn numbered(text: &str) -> Sql {
    let text = format!("{NUMBERS}{text}");
    Sql::built(text.clone(), text)
}

/// `open` active tasks, TASKS_PER_CASE per case, on allocated Right to Buy cases shared among
/// the officers, every checkpoint in 2030; then the first task of `due` cases due at [`now`].
pub async fn open_work(db: &Db, open: i64, due: i64) {
    let cases = (open / TASKS_PER_CASE).max(due);
    let mut tx = db.begin().await.expect("begin");
    numbered("INSERT INTO cases (case_ref, kind, scheme, country, definition_id, definition_version, \
           applicant_contact, received_at, created_at, calendar, allocation, owner) \
         SELECT 'B-' || i, 'home_buy', 'right_to_buy', 'england', 'right_to_buy-england', 'bench', \
           'tenant' || (i % 6 + 1), $2, $2, 'england-and-wales', 'allocated', 'off' || (i % $3 + 1) FROM n")
        .bind(cases).bind(received()).bind(OFFICERS)
        .execute(&mut tx).await.expect("cases");
    sql(
        "INSERT INTO stages (case_id, stage, master_stage, entered_at, owner, line_manager) \
         SELECT id, 'application', 'application', $1, owner, 'mgr1' FROM cases",
    )
    .bind(received())
    .execute(&mut tx)
    .await
    .expect("stages");
    sql("WITH RECURSIVE k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < $1 - 1) \
         INSERT INTO tasks (case_id, stage_id, task, mandatory, activation, status, owner, line_manager, \
           activated_at, target_at, amber_at, sla_state, next_check_at) \
         SELECT s.case_id, s.id, CASE WHEN k.j = 0 THEN 'check_property_address' ELSE 'other_' || k.j END, \
           $2, 'auto', 'active', s.owner, 'mgr1', $3, $4, $5, 'on_track', $5 FROM stages s, k")
        .bind(TASKS_PER_CASE).bind(true).bind(received())
        .bind(at("2030-01-10T09:00:00Z")).bind(at("2030-01-09T09:00:00Z"))
        .execute(&mut tx).await.expect("tasks");
    sql(
        "UPDATE tasks SET amber_at = $1, target_at = $2, next_check_at = $1 \
         WHERE task = 'check_property_address' AND case_id <= $3",
    )
    .bind(now())
    .bind(at("2026-01-08T09:00:00Z"))
    .bind(due)
    .execute(&mut tx)
    .await
    .expect("due");
    tx.commit().await.expect("commit");
    analyse(db).await;
}

/// `n` new Right to Buy cases waiting for allocation, each with its first stage and tasks.
pub async fn pending_cases(db: &Db, n: i64) {
    let mut tx = db.begin().await.expect("begin");
    numbered(
        "INSERT INTO cases (case_ref, kind, scheme, country, definition_id, definition_version, \
           applicant_contact, received_at, created_at, calendar, allocation) \
         SELECT 'N-' || i, 'home_buy', 'right_to_buy', 'england', 'right_to_buy-england', 'bench', \
           'tenant' || (i % 6 + 1), $2, $2, 'england-and-wales', 'pending' FROM n",
    )
    .bind(n)
    .bind(now())
    .execute(&mut tx)
    .await
    .expect("pending cases");
    sql(
        "INSERT INTO stages (case_id, stage, master_stage, entered_at) \
         SELECT id, 'application', 'application', $1 FROM cases WHERE allocation = 'pending'",
    )
    .bind(now())
    .execute(&mut tx)
    .await
    .expect("pending stages");
    sql(
        "INSERT INTO tasks (case_id, stage_id, task, mandatory, activation, status, activated_at) \
         SELECT s.case_id, s.id, 'check_property_address', $1, 'auto', 'active', $2 \
         FROM stages s JOIN cases c ON c.id = s.case_id WHERE c.allocation = 'pending'",
    )
    .bind(true)
    .bind(now())
    .execute(&mut tx)
    .await
    .expect("pending tasks");
    tx.commit().await.expect("commit");
}

/// Fresh planner statistics after a bulk load, as autovacuum would gather soon after.
pub async fn analyse(db: &Db) {
    sql("ANALYZE").execute(db).await.expect("analyse");
}

/// Publishing the working days at start: when the calendars changed (the first start), and when
/// they did not (every start after).
pub async fn calendars(key: &str, backend: &'static str, rows: &mut Vec<Row>) {
    let fresh = fresh(key).await.expect("database");
    let rules = crate::firings::rules();
    let publish = casewarden::engine::deadlines::publish_calendars;
    let (changed, first) = timed(publish(&fresh.db, &rules.calendars)).await;
    assert!(!changed.expect("publish").is_empty());
    let (unchanged, again) = timed(publish(&fresh.db, &rules.calendars)).await;
    assert!(unchanged.expect("publish").is_empty());
    for (work, took, goal) in [
        (
            "start: working days published, calendars changed (ms)",
            first,
            Goal::None,
        ),
        (
            "start: working days published, calendars unchanged (ms)",
            again,
            Goal::AtMost(5.0),
        ),
    ] {
        rows.push(Row {
            work: work.into(),
            backend,
            engine: took.as_secs_f64() * 1e3,
            baseline: None,
            unit: "ms",
            goal,
        });
    }
}
