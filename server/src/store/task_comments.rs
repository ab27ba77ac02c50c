//! Comments on workflow tasks (table `workflow_task_comments`): what the people working on a
//! task tell each other about it. Bodies arrive here sealed.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{on, Conn, StoreError};
use crate::domain::{UserId, WorkspaceId};

/// A comment on a task.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CommentRecord {
    /// Its id.
    pub id: Uuid,
    /// The task.
    pub task_id: String,
    /// The task's workspace.
    pub workspace_id: WorkspaceId,
    /// Who wrote it.
    pub author_id: UserId,
    /// What they wrote, sealed.
    pub body: Vec<u8>,
    /// When.
    pub created_at: DateTime<Utc>,
}

const COMMENT: &str = "id, task_id, workspace_id, author_id, body, created_at";

/// Adds a comment.
pub async fn insert(conn: &mut Conn<'_>, c: &CommentRecord) -> Result<(), StoreError> {
    let sql =
        format!("INSERT INTO workflow_task_comments ({COMMENT}) VALUES ($1, $2, $3, $4, $5, $6)");
    on!(conn, |x| sqlx::query(&sql)
        .bind(c.id)
        .bind(&c.task_id)
        .bind(c.workspace_id)
        .bind(c.author_id)
        .bind(&c.body)
        .bind(c.created_at)
        .execute(x)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// A task's latest `limit` comments, oldest first.
pub async fn of_task(
    conn: &mut Conn<'_>,
    task: &str,
    limit: i64,
) -> Result<Vec<CommentRecord>, StoreError> {
    let sql = format!(
        "SELECT {COMMENT} FROM workflow_task_comments WHERE task_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2"
    );
    let mut rows: Vec<CommentRecord> = on!(conn, |x| sqlx::query_as(&sql)
        .bind(task)
        .bind(limit)
        .fetch_all(x)
        .await)?;
    rows.reverse();
    Ok(rows)
}
