//! docs/data-protection.md's PostgreSQL grants, run as written on a throwaway cluster: the CRM's
//! role can queue a command and read the worklists and the event log, and nothing else.

use casewarden::db::Db;

/// The first ```sql block after the heading on the database rights a CRM needs.
fn documented_grants() -> String {
    let doc = std::fs::read_to_string(crate::common::repo_path("docs/data-protection.md")).unwrap();
    let section = &doc[doc
        .find("## The database rights a CRM needs")
        .expect("the section")..];
    let start = section.find("```sql\n").expect("a sql block") + "```sql\n".len();
    section[start..start + section[start..].find("```").unwrap()].to_string()
}

#[tokio::test]
async fn the_documented_crm_role_can_queue_commands_and_read_the_contract_and_nothing_more() {
    let Some(url) = crate::pg::fresh_database() else {
        return;
    };
    let db = Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    let Db::Postgres(owner) = &db else {
        unreachable!("a PostgreSQL URL")
    };
    // Roles belong to the cluster: a database made earlier by this process may have made it.
    sqlx::raw_sql("DROP OWNED BY crm_reader; DROP ROLE IF EXISTS crm_reader")
        .execute(owner)
        .await
        .ok();
    sqlx::raw_sql(sqlx::AssertSqlSafe(documented_grants()))
        .execute(owner)
        .await
        .expect("the documented grants run");

    let crm = sqlx::PgPool::connect(&url.replacen("postgres@", "crm_reader@", 1))
        .await
        .unwrap();
    sqlx::query("INSERT INTO inbox (body) VALUES ('{\"type\": \"upsert_role\", \"ref\": \"r\", \"name\": \"R\"}')")
        .execute(&crm)
        .await
        .expect("the CRM queues a command");
    for readable in [
        "inbox",
        "events",
        "worklist_tasks",
        "worklist_cases_by_user",
        "london_today",
        "task_holds",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {readable}"
        )))
        .execute(&crm)
        .await
        .unwrap_or_else(|e| panic!("the CRM reads {readable}: {e}"));
    }
    for refused in [
        "SELECT COUNT(*) FROM contacts",
        "SELECT COUNT(*) FROM erasures",
        "UPDATE inbox SET status = 'accepted'",
        "DELETE FROM events",
        "INSERT INTO events (at, kind, actor) VALUES (now(), 'x', 'crm')",
    ] {
        let error = sqlx::query(sqlx::AssertSqlSafe(refused))
            .execute(&crm)
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("permission denied"),
            "{refused}: {error}"
        );
    }
    crm.close().await;
    sqlx::raw_sql("DROP OWNED BY crm_reader; DROP ROLE crm_reader")
        .execute(owner)
        .await
        .unwrap();
}
