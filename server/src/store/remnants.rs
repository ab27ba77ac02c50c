//! What a deletion kept of a message (table `message_remnants`) while a legal hold covers it
//! or the policy's grace period runs: its text at deletion and its earlier versions.
//!
//! Bodies arrive here already encrypted. The message row itself is an ordinary tombstone,
//! so nothing that reads messages sees these rows; deleting the message's row deletes them
//! (`ON DELETE CASCADE`).

use chrono::{DateTime, Utc};

use super::retention::Candidate;
use super::{on, Conn, StoreError};
use crate::domain::{MessageId, WorkspaceId};

/// One kept body of a deleted message.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RemnantRecord {
    /// The deleted message.
    pub message_id: MessageId,
    /// Its version: earlier versions as numbered when they were replaced, then the text it
    /// had when it was deleted.
    pub version: i64,
    /// The body, encrypted under the workspace's key.
    pub body: Vec<u8>,
    /// The blocks it had (the last version only), encrypted.
    pub blocks: Option<Vec<u8>>,
    /// When this body was written over (earlier versions) or deleted (the last).
    pub written_at: DateTime<Utc>,
    /// The earliest time the retention job may destroy it (if no hold covers it then).
    pub purge_after: DateTime<Utc>,
}

const COLUMNS: &str = "message_id, version, body, blocks, written_at, purge_after";

/// Stores a deleted message's kept bodies.
pub async fn keep(conn: &mut Conn<'_>, rows: &[RemnantRecord]) -> Result<(), StoreError> {
    let sql = format!("INSERT INTO message_remnants ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)");
    for r in rows {
        on!(conn, |c| sqlx::query(&sql)
            .bind(r.message_id)
            .bind(r.version)
            .bind(&r.body)
            .bind(&r.blocks)
            .bind(r.written_at)
            .bind(r.purge_after)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// A deleted message's kept bodies, oldest version first (none: nothing was kept, or it
/// was destroyed).
pub async fn of_message(
    conn: &mut Conn<'_>,
    id: MessageId,
) -> Result<Vec<RemnantRecord>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM message_remnants WHERE message_id = $1 ORDER BY version");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_all(c)
        .await)?)
}

/// Up to `limit` deleted messages of `workspace` with kept bodies due for destruction at
/// `now`, after the message id `after`, in id order.
pub async fn due(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    now: DateTime<Utc>,
    after: MessageId,
    limit: i64,
) -> Result<Vec<Candidate>, StoreError> {
    let sql = "SELECT m.id, m.channel_id, m.seq, m.author_id, m.thread_root_id, m.created_at, \
                      m.deleted_at \
               FROM messages m JOIN channels c ON c.id = m.channel_id \
               WHERE c.workspace_id = $1 AND m.id > $3 AND EXISTS ( \
                   SELECT 1 FROM message_remnants r \
                   WHERE r.message_id = m.id AND r.purge_after <= $2) \
               ORDER BY m.id LIMIT $4";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .bind(now)
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// Destroys a deleted message's kept bodies; how many rows went.
pub async fn purge(conn: &mut Conn<'_>, id: MessageId) -> Result<u64, StoreError> {
    let sql = "DELETE FROM message_remnants WHERE message_id = $1";
    Ok(on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}
