//! What the retention job reads and destroys: messages older than a cutoff, in batches.
//!
//! Storage finds candidates and removes rows; which of them a legal hold keeps is decided by
//! the caller. Deleting a message's row takes its kept versions, reactions, mentions, pins
//! and thread followers with it (`ON DELETE CASCADE`).

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};
use crate::domain::{ChannelId, MessageId, UserId, WorkspaceId};

/// A message old enough to be destroyed, with what holds are decided on.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Candidate {
    /// Its id.
    pub id: MessageId,
    /// Its channel.
    pub channel_id: ChannelId,
    /// Its position in the channel.
    pub seq: i64,
    /// Who wrote it.
    pub author_id: UserId,
    /// The root, if this is a thread reply.
    pub thread_root_id: Option<MessageId>,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
    /// When it was deleted, if it is already a tombstone.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Where candidates are looked for.
#[derive(Clone, Copy, Debug)]
pub enum Within {
    /// Every channel of a workspace.
    Workspace(WorkspaceId),
    /// One channel, if it is in the workspace.
    Channel(WorkspaceId, ChannelId),
}

/// Up to `limit` messages posted before `cutoff`, after the cursor `after` (posting time
/// and id) in that order.
pub async fn older_than(
    conn: &mut Conn<'_>,
    within: Within,
    cutoff: DateTime<Utc>,
    after: (DateTime<Utc>, MessageId),
    limit: i64,
) -> Result<Vec<Candidate>, StoreError> {
    const COLUMNS: &str = "m.id, m.channel_id, m.seq, m.author_id, m.thread_root_id, \
                           m.created_at, m.deleted_at";
    const ORDER: &str =
        "m.created_at < $2 AND (m.created_at > $3 OR (m.created_at = $3 AND m.id > $4)) \
                         ORDER BY m.created_at, m.id LIMIT $5";
    let sql = match within {
        Within::Workspace(_) => format!(
            "SELECT {COLUMNS} FROM messages m JOIN channels c ON c.id = m.channel_id \
             WHERE c.workspace_id = $1 AND {ORDER}"
        ),
        Within::Channel(..) => format!(
            "SELECT {COLUMNS} FROM messages m JOIN channels c ON c.id = m.channel_id \
             WHERE m.channel_id = $1 AND c.workspace_id = $6 AND {ORDER}"
        ),
    };
    let rows = match within {
        Within::Workspace(ws) => on!(conn, |c| sqlx::query_as(&sql)
            .bind(ws)
            .bind(cutoff)
            .bind(after.0)
            .bind(after.1)
            .bind(limit)
            .fetch_all(c)
            .await)?,
        Within::Channel(ws, ch) => on!(conn, |c| sqlx::query_as(&sql)
            .bind(ch)
            .bind(cutoff)
            .bind(after.0)
            .bind(after.1)
            .bind(limit)
            .bind(ws)
            .fetch_all(c)
            .await)?,
    };
    Ok(rows)
}

/// How many replies a thread root still has.
pub async fn replies_left(conn: &mut Conn<'_>, root: MessageId) -> Result<i64, StoreError> {
    let sql = "SELECT COUNT(*) FROM messages WHERE thread_root_id = $1";
    Ok(on!(conn, |c| sqlx::query_scalar::<_, i64>(sql)
        .bind(root)
        .fetch_one(c)
        .await)?)
}

/// Counts a root's replies again after some were destroyed.
pub async fn recount_replies(conn: &mut Conn<'_>, root: MessageId) -> Result<(), StoreError> {
    let sql = "UPDATE messages SET reply_count = \
               (SELECT COUNT(*) FROM messages r WHERE r.thread_root_id = $1) WHERE id = $1";
    on!(conn, |c| sqlx::query(sql)
        .bind(root)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Deletes a message's row (and, by cascade, its versions, reactions, mentions, pins and
/// followers); false if it was already gone.
pub async fn destroy(conn: &mut Conn<'_>, id: MessageId) -> Result<bool, StoreError> {
    let sql = "DELETE FROM messages WHERE id = $1";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}
