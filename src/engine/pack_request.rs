//! Asking for a housing pack: the row the pack step picks up on its next pass (or, for a case
//! still waiting for its enquiry answers, once they arrive). Progression asks when a task that
//! makes a pack starts; the CRM asks with `render_pack`.

use chrono::{DateTime, Utc};

use crate::db::rows::CaseRow;
use crate::db::{Tx, sql};
use crate::events::{self, kinds, kinds::Kind};

/// Asks for a pack, made by the next pass (or once answers arrive).
pub async fn request(
    tx: &mut Tx,
    case: &CaseRow,
    task_id: Option<i64>,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sql("INSERT INTO pack_requests (case_id, task_id, requested_at, requested_by, due_at) VALUES ($1, $2, $3, $4, $3)")
        .bind(case.id)
        .bind(task_id)
        .bind(now)
        .bind(by)
        .execute(&mut *tx)
        .await?;
    let requested = Kind::PackRequested(kinds::PackRequested { task_id });
    events::record(tx, case.event_target(), now, by, requested).await?;
    Ok(())
}
