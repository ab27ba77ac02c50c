//! What the retention job reads and destroys, in batches: messages and finished files
//! older than a cutoff, documents' edit history and named versions, and records of ended
//! sessions.
//!
//! Storage finds candidates and removes rows; which of them a legal hold keeps is decided by
//! the caller. Deleting a message's row takes its kept versions, reactions, mentions, pins
//! and thread followers with it (`ON DELETE CASCADE`); a session's, its refresh tokens and
//! single sign-on hand-offs.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{on, Conn, StoreError};
use crate::domain::{ChannelId, DocumentId, FileId, MessageId, UserId, VersionId, WorkspaceId};

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

/// A finished file old enough to be destroyed, with what holds are decided on.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OldFile {
    /// Its id.
    pub id: FileId,
    /// Who uploaded it.
    pub uploader_id: UserId,
    /// Where it is shared (`channel` or `document`).
    pub parent_kind: String,
    /// The channel's (or document's) id.
    pub parent_id: Uuid,
    /// The message it is attached to, if posted.
    pub message_id: Option<MessageId>,
    /// When its upload started (the time the period is measured from).
    pub created_at: DateTime<Utc>,
    /// The author of the message it is attached to, if that message is stored.
    pub message_author: Option<UserId>,
    /// That message's channel.
    pub message_channel: Option<ChannelId>,
    /// When that message was posted.
    pub message_at: Option<DateTime<Utc>>,
    /// The channel the document it is shared in is linked to, if any.
    pub document_channel: Option<ChannelId>,
}

/// Up to `limit` finished files (ready or quarantined, hidden ones included) of `workspace`
/// uploaded before `cutoff`, with the message each is attached to and the channel of the
/// document each is shared in, after the cursor `after` (upload time and id) in that order.
pub async fn files_older_than(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    cutoff: DateTime<Utc>,
    after: (DateTime<Utc>, FileId),
    limit: i64,
) -> Result<Vec<OldFile>, StoreError> {
    let sql = "SELECT f.id, f.uploader_id, f.parent_kind, f.parent_id, f.message_id, \
               f.created_at, m.author_id AS message_author, m.channel_id AS message_channel, \
               m.created_at AS message_at, d.channel_id AS document_channel FROM files f \
               LEFT JOIN messages m ON m.id = f.message_id \
               LEFT JOIN documents d ON f.parent_kind = 'document' AND d.id = f.parent_id \
               WHERE f.workspace_id = $1 AND f.status <> 'uploading' AND f.created_at < $2 \
               AND (f.created_at > $3 OR (f.created_at = $3 AND f.id > $4)) \
               ORDER BY f.created_at, f.id LIMIT $5";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .bind(cutoff)
        .bind(after.0)
        .bind(after.1)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// A document with history older than a cutoff, with what holds are decided on.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DocumentWithHistory {
    /// Its id.
    pub id: DocumentId,
    /// The channel it is linked to, if any.
    pub channel_id: Option<ChannelId>,
    /// Who created it (the custodian a hold names).
    pub created_by: UserId,
}

/// Up to `limit` documents of `workspace` after `after` (in id order) with stored updates or
/// named versions from before `cutoff`.
pub async fn documents_with_history_before(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    cutoff: DateTime<Utc>,
    after: DocumentId,
    limit: i64,
) -> Result<Vec<DocumentWithHistory>, StoreError> {
    let sql = "SELECT d.id, d.channel_id, d.created_by FROM documents d \
               WHERE d.workspace_id = $1 AND d.id > $3 AND (\
                 EXISTS (SELECT 1 FROM document_updates u WHERE u.document_id = d.id AND u.created_at < $2) \
                 OR EXISTS (SELECT 1 FROM document_versions v WHERE v.document_id = d.id AND v.created_at < $2)) \
               ORDER BY d.id LIMIT $4";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .bind(cutoff)
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// One stored update batch's number and time.
#[derive(Clone, Copy, Debug, sqlx::FromRow)]
pub struct UpdateTime {
    /// Its sequence number.
    pub seq: i64,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// The numbers and times of a document's stored updates not yet in its snapshot, in order.
pub async fn update_times(
    conn: &mut Conn<'_>,
    document: DocumentId,
) -> Result<Vec<UpdateTime>, StoreError> {
    let sql = "SELECT u.seq, u.created_at FROM document_updates u WHERE u.document_id = $1 \
               AND u.seq > COALESCE((SELECT s.upto_seq FROM document_snapshots s \
                                     WHERE s.document_id = $1), 0) ORDER BY u.seq";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(document)
        .fetch_all(c)
        .await)?)
}

/// A named version's id and time.
#[derive(Clone, Copy, Debug, sqlx::FromRow)]
pub struct VersionTime {
    /// Its id.
    pub id: VersionId,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// A document's named versions made before `cutoff`, oldest first.
pub async fn versions_before(
    conn: &mut Conn<'_>,
    document: DocumentId,
    cutoff: DateTime<Utc>,
) -> Result<Vec<VersionTime>, StoreError> {
    let sql = "SELECT id, created_at FROM document_versions WHERE document_id = $1 \
               AND created_at < $2 ORDER BY created_at, id";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(document)
        .bind(cutoff)
        .fetch_all(c)
        .await)?)
}

/// Deletes a named version; false if it was already gone.
pub async fn destroy_version(conn: &mut Conn<'_>, id: VersionId) -> Result<bool, StoreError> {
    let sql = "DELETE FROM document_versions WHERE id = $1";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Deletes up to `limit` session records that ended (revoked, or expired without being
/// revoked) before `cutoff`; how many. A live session never qualifies: `cutoff` is at or
/// before the present, and a live session is unrevoked and expires after it.
pub async fn destroy_ended_sessions(
    conn: &mut Conn<'_>,
    cutoff: DateTime<Utc>,
    limit: i64,
) -> Result<u64, StoreError> {
    let sql = "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE \
               (revoked_at IS NOT NULL AND revoked_at < $1) \
               OR (revoked_at IS NULL AND expires_at < $1) ORDER BY id LIMIT $2)";
    Ok(on!(conn, |c| sqlx::query(sql)
        .bind(cutoff)
        .bind(limit)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}

/// Whether any legal hold is in force (not released) in any workspace.
pub async fn any_hold_in_force(conn: &mut Conn<'_>) -> Result<bool, StoreError> {
    let sql = "SELECT COUNT(*) FROM legal_holds WHERE released_at IS NULL";
    let n: i64 = on!(conn, |c| sqlx::query_scalar(sql).fetch_one(c).await)?;
    Ok(n > 0)
}
