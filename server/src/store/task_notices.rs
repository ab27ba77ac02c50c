//! The task notices the workflow bot posted (table `workflow_task_notices`): which chat
//! messages offer a task's buttons, so they are updated when the task is claimed, reassigned
//! or closed. Ids and times only.

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};
use crate::domain::MessageId;

/// Records that `message` is a notice of `task`.
pub async fn insert(
    conn: &mut Conn<'_>,
    task: &str,
    message: MessageId,
    posted_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO workflow_task_notices (task_id, message_id, posted_at) \
               VALUES ($1, $2, $3) ON CONFLICT (task_id, message_id) DO NOTHING";
    on!(conn, |c| sqlx::query(sql)
        .bind(task)
        .bind(message)
        .bind(posted_at)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Whether any notice of `task` is recorded.
pub async fn any(conn: &mut Conn<'_>, task: &str) -> Result<bool, StoreError> {
    let sql = "SELECT 1 FROM workflow_task_notices WHERE task_id = $1 LIMIT 1";
    let found: Option<i32> = on!(conn, |c| sqlx::query_scalar(sql)
        .bind(task)
        .fetch_optional(c)
        .await)?;
    Ok(found.is_some())
}

/// The notices of `task` posted at or before `before`, in posting order.
pub async fn of_task(
    conn: &mut Conn<'_>,
    task: &str,
    before: DateTime<Utc>,
) -> Result<Vec<MessageId>, StoreError> {
    let sql = "SELECT message_id FROM workflow_task_notices WHERE task_id = $1 \
               AND posted_at <= $2 ORDER BY posted_at, message_id";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .bind(task)
        .bind(before)
        .fetch_all(c)
        .await)?)
}

/// Forgets one notice; false if another update took it first (so one update edits it).
pub async fn take(conn: &mut Conn<'_>, task: &str, message: MessageId) -> Result<bool, StoreError> {
    let sql = "DELETE FROM workflow_task_notices WHERE task_id = $1 AND message_id = $2";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(task)
        .bind(message)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}
