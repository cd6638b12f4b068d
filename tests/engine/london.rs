//! Today's date in London, as the worklists count from it: SQLite has no time zone database,
//! so `london_today` applies the rule of British Summer Time itself. Checked here against
//! chrono-tz at every quarter hour around each change of the clocks from 2019 to 2035, at every
//! hour of some ordinary days, and, on both backends, at the moment the test runs.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::London;
use sqlx::Connection;

use crate::helpers::Env;

/// The view's query from the SQLite migration, with `'now'` as an argument.
fn expression() -> String {
    let migration = std::fs::read_to_string(crate::common::repo_path(
        "migrations/sqlite/0013_london_today.sql",
    ))
    .unwrap();
    let start = migration.find("CREATE VIEW london_today AS").unwrap();
    let body = &migration[start + "CREATE VIEW london_today AS".len()..];
    let body = &body[..body.find(';').unwrap()];
    body.replace("'now'", "?1")
}

/// The instants to try: the clock changes' days, every quarter hour, and a few ordinary days.
fn instants() -> Vec<DateTime<Utc>> {
    let mut days: Vec<NaiveDate> = Vec::new();
    for year in 2019..=2035 {
        for month in [3, 10] {
            // Every day from the 24th to the end of the month, around the last Sunday.
            for day in 24..=31 {
                days.push(NaiveDate::from_ymd_opt(year, month, day).unwrap());
            }
        }
        days.push(NaiveDate::from_ymd_opt(year, 1, 1).unwrap());
        days.push(NaiveDate::from_ymd_opt(year, 7, 15).unwrap());
        days.push(NaiveDate::from_ymd_opt(year, 12, 31).unwrap());
    }
    let mut out = Vec::new();
    for day in days {
        let midnight = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap());
        out.extend((0..96).map(|q| midnight + Duration::minutes(15 * q)));
    }
    out
}

#[tokio::test]
async fn the_london_date_on_sqlite_follows_british_summer_time_at_every_change_of_the_clocks() {
    let select = expression();
    let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
        .await
        .unwrap();
    let mut wrong = Vec::new();
    let tried = instants();
    for t in &tried {
        let at = t.format("%Y-%m-%d %H:%M:%S").to_string();
        let day: String = sqlx::query_scalar(sqlx::AssertSqlSafe(select.clone()))
            .bind(&at)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let expected = t.with_timezone(&London).date_naive().to_string();
        if day != expected {
            wrong.push(format!("{at} UTC: {day}, not {expected}"));
        }
    }
    assert!(tried.len() > 20_000);
    assert!(
        wrong.is_empty(),
        "{} of {} wrong: {:?}",
        wrong.len(),
        tried.len(),
        &wrong[..wrong.len().min(10)]
    );
}

async fn london_today_is_the_date_in_london_now(env: Env) {
    let before = casewarden::clock::london_date(Utc::now());
    let day: NaiveDate = casewarden::db::sql("SELECT day FROM london_today")
        .scalar::<NaiveDate>(&env.db)
        .await
        .unwrap();
    let after = casewarden::clock::london_date(Utc::now());
    assert!(day == before || day == after, "{day}, not {before}");
}

#[tokio::test]
async fn london_today_on_sqlite() {
    london_today_is_the_date_in_london_now(Env::sqlite().await).await;
}

#[tokio::test]
async fn london_today_on_postgres() {
    if let Some(env) = Env::postgres().await {
        london_today_is_the_date_in_london_now(env).await;
    }
}
