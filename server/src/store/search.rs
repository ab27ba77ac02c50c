//! What the search index is rebuilt from and filtered with: messages with their flags, documents,
//! files, a workspace's channels with one user's membership, and the workspaces that exist.

use chrono::{DateTime, Utc};

use super::channels::ChannelForMember;
use super::{on, Conn, StoreError};
use crate::domain::{ChannelId, DocumentId, FileId, MessageId, UserId, WorkspaceId};

/// A live (not deleted) message as the index needs it; the body is still encrypted.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct IndexableMessage {
    /// Its id.
    pub id: MessageId,
    /// Its channel.
    pub channel_id: ChannelId,
    /// Position in the channel.
    pub seq: i64,
    /// Who wrote it.
    pub author_id: UserId,
    /// The encrypted body.
    pub body: Vec<u8>,
    /// The thread root, for replies.
    pub thread_root_id: Option<MessageId>,
    /// Replies (roots).
    pub reply_count: i64,
    /// Posted at.
    pub created_at: DateTime<Utc>,
    /// Whether anyone reacted.
    pub has_reaction: bool,
    /// Whether it is pinned.
    pub pinned: bool,
    /// Whether a (servable) file is attached to it.
    pub has_file: bool,
}

/// The columns of [`IndexableMessage`], over `messages m`.
const INDEXABLE: &str = "m.id, m.channel_id, m.seq, m.author_id, m.body, m.thread_root_id, \
     m.reply_count, m.created_at, \
     EXISTS (SELECT 1 FROM reactions r WHERE r.message_id = m.id) AS has_reaction, \
     EXISTS (SELECT 1 FROM pins p WHERE p.message_id = m.id) AS pinned, \
     EXISTS (SELECT 1 FROM files f WHERE f.message_id = m.id AND f.status = 'ready' \
     AND f.deleted_at IS NULL) AS has_file";

/// Up to `limit` live messages of `workspace` in id order after `after`.
pub async fn messages_after(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    after: Option<MessageId>,
    limit: i64,
) -> Result<Vec<IndexableMessage>, StoreError> {
    let after_clause = if after.is_some() { "AND m.id > $3" } else { "" };
    let sql = format!(
        "SELECT {INDEXABLE} FROM messages m JOIN channels c ON c.id = m.channel_id \
         WHERE c.workspace_id = $1 AND m.deleted_at IS NULL {after_clause} ORDER BY m.id LIMIT $2"
    );
    Ok(on!(conn, |c| {
        let q = sqlx::query_as(&sql).bind(workspace).bind(limit);
        match after {
            Some(a) => q.bind(a),
            None => q,
        }
        .fetch_all(c)
        .await
    })?)
}

/// One live message, if it exists.
pub async fn message(
    conn: &mut Conn<'_>,
    id: MessageId,
) -> Result<Option<IndexableMessage>, StoreError> {
    let sql =
        format!("SELECT {INDEXABLE} FROM messages m WHERE m.id = $1 AND m.deleted_at IS NULL");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// Whether a servable file is attached to `message`.
pub async fn message_has_file(conn: &mut Conn<'_>, message: MessageId) -> Result<bool, StoreError> {
    Ok(on!(conn, |c| sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM files WHERE message_id = $1 AND status = 'ready' \
         AND deleted_at IS NULL)"
    )
    .bind(message)
    .fetch_one(c)
    .await)?)
}

/// Live messages in `workspace` (for rebuild progress).
pub async fn count_messages(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<i64, StoreError> {
    let sql = "SELECT COUNT(*) FROM messages m JOIN channels c ON c.id = m.channel_id \
               WHERE c.workspace_id = $1 AND m.deleted_at IS NULL";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .bind(workspace)
        .fetch_one(c)
        .await)?)
}

/// Every channel of `workspace`, each with `user`'s channel role if they are in it.
pub async fn channels_with_membership(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    user: UserId,
) -> Result<Vec<ChannelForMember>, StoreError> {
    let sql = format!(
        "SELECT {}, m.role AS member_role FROM channels c \
         LEFT JOIN channel_members m ON m.channel_id = c.id AND m.user_id = $2 WHERE c.workspace_id = $1",
        super::channels::COLUMNS
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .bind(user)
        .fetch_all(c)
        .await)?)
}

/// Every workspace's id.
pub async fn workspace_ids(conn: &mut Conn<'_>) -> Result<Vec<WorkspaceId>, StoreError> {
    Ok(on!(conn, |c| sqlx::query_scalar(
        "SELECT id FROM workspaces ORDER BY id"
    )
    .fetch_all(c)
    .await)?)
}

/// Every document of `workspace`.
pub async fn document_ids(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<DocumentId>, StoreError> {
    Ok(on!(conn, |c| sqlx::query_scalar(
        "SELECT id FROM documents WHERE workspace_id = $1 ORDER BY id"
    )
    .bind(workspace)
    .fetch_all(c)
    .await)?)
}

/// Every complete, servable file shared in a channel of `workspace`.
pub async fn file_ids(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<FileId>, StoreError> {
    Ok(on!(conn, |c| sqlx::query_scalar(
        "SELECT id FROM files WHERE workspace_id = $1 AND parent_kind = 'channel' \
         AND status = 'ready' AND deleted_at IS NULL ORDER BY id"
    )
    .bind(workspace)
    .fetch_all(c)
    .await)?)
}
