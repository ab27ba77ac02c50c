//! Messages, their edit history, reactions, mentions, pins and thread followers.
//!
//! Bodies arrive here already encrypted; storage never sees message text.

use chrono::{DateTime, Utc};

use super::{on, raw, Conn, StoreError};
use crate::domain::{ChannelId, MessageId, UserId, WorkspaceId};

/// A message as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MessageRecord {
    /// Its id.
    pub id: MessageId,
    /// Its channel.
    pub channel_id: ChannelId,
    /// Position in the channel, assigned at commit.
    pub seq: i64,
    /// Who wrote it.
    pub author_id: UserId,
    /// The encrypted body.
    pub body: Vec<u8>,
    /// The root message if this is a thread reply.
    pub thread_root_id: Option<MessageId>,
    /// Replies in its thread (roots only).
    pub reply_count: i64,
    /// Newest reply (roots only).
    pub last_reply_at: Option<DateTime<Utc>>,
    /// Blind index of the channel, author and the client's idempotency key.
    pub client_msg_index: Option<String>,
    /// The client's idempotency key, encrypted under the workspace's key.
    pub client_msg_id_enc: Option<Vec<u8>>,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
    /// Last edit.
    pub edited_at: Option<DateTime<Utc>>,
    /// Set once deleted (a tombstone; the body is emptied).
    pub deleted_at: Option<DateTime<Utc>>,
    /// The encrypted Block Kit blocks (bots' messages only); set after the row is stored.
    pub blocks: Option<Vec<u8>>,
}

pub(crate) const COLUMNS: &str =
    "id, channel_id, seq, author_id, body, thread_root_id, reply_count, last_reply_at, \
                       client_msg_index, client_msg_id_enc, created_at, edited_at, deleted_at, blocks";

/// What [`append`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appended {
    /// The message was stored under this sequence number.
    Posted(i64),
    /// Its author had already posted this message id's client id in the channel: nothing
    /// was written, and this is the earlier message.
    Existing(MessageId),
}

/// Posts a message in one round trip: unless its author already posted a message with the
/// same client id index in the channel, takes the channel's next sequence number, stores the
/// message under it (`m.seq` is ignored) and moves the author's read pointer to it (their
/// own message is read). On SQLite the statements run together on the connection's thread
/// (the batch holds the write lock, so nothing comes between them); on PostgreSQL they are
/// one statement.
pub async fn append(conn: &mut Conn<'_>, m: &MessageRecord) -> Result<Appended, StoreError> {
    const SQLITE: &str = "\
        UPDATE channels SET last_seq = last_seq + 1 WHERE id = $2 AND NOT EXISTS \
          (SELECT 1 FROM messages WHERE channel_id = $2 AND author_id = $3 AND client_msg_index = $6); \
        INSERT INTO messages (id, channel_id, seq, author_id, body, thread_root_id, \
          client_msg_index, client_msg_id_enc, created_at) \
          SELECT $1, $2, last_seq, $3, $4, $5, $6, $7, $8 FROM channels WHERE id = $2 AND NOT EXISTS \
          (SELECT 1 FROM messages WHERE channel_id = $2 AND author_id = $3 AND client_msg_index = $6); \
        UPDATE channel_members SET last_read_seq = (SELECT seq FROM messages WHERE id = $1) \
          WHERE channel_id = $2 AND user_id = $3 \
          AND last_read_seq < (SELECT seq FROM messages WHERE id = $1); \
        SELECT id, seq FROM messages WHERE id = $1 \
          OR (channel_id = $2 AND author_id = $3 AND client_msg_index = $6)";
    const POSTGRES: &str = "\
        WITH earlier AS (SELECT id, seq FROM messages \
          WHERE channel_id = $2 AND author_id = $3 AND client_msg_index = $6), \
        taken AS (UPDATE channels SET last_seq = last_seq + 1 \
          WHERE id = $2 AND NOT EXISTS (SELECT 1 FROM earlier) RETURNING last_seq), \
        posted AS (INSERT INTO messages (id, channel_id, seq, author_id, body, thread_root_id, \
          client_msg_index, client_msg_id_enc, created_at) \
          SELECT $1, $2, last_seq, $3, $4, $5, $6, $7, $8 FROM taken RETURNING id, seq), \
        pointer AS (UPDATE channel_members SET last_read_seq = taken.last_seq FROM taken \
          WHERE channel_id = $2 AND user_id = $3 AND channel_members.last_read_seq < taken.last_seq) \
        SELECT id, seq FROM posted UNION ALL SELECT id, seq FROM earlier";
    let sql = match conn.backend() {
        super::Backend::Sqlite => SQLITE,
        super::Backend::Postgres => POSTGRES,
    };
    let rows: Vec<(MessageId, i64)> = on!(conn, |c| sqlx::query_as(sql)
        .bind(m.id)
        .bind(m.channel_id)
        .bind(m.author_id)
        .bind(&m.body)
        .bind(m.thread_root_id)
        .bind(&m.client_msg_index)
        .bind(&m.client_msg_id_enc)
        .bind(m.created_at)
        .fetch_all(c)
        .await)?;
    match rows.as_slice() {
        [(id, seq)] if *id == m.id => Ok(Appended::Posted(*seq)),
        [(id, _)] => Ok(Appended::Existing(*id)),
        _ => Err(StoreError::Corrupt("messages")),
    }
}

/// [`append`] on the writer's thread (see [`super::raw`]).
pub fn append_raw(conn: &rusqlite::Connection, m: &MessageRecord) -> Result<Appended, StoreError> {
    use rusqlite::OptionalExtension;
    let channel = raw::id(&m.channel_id.0);
    let author = raw::id(&m.author_id.0);
    let index = m.client_msg_index.as_deref();
    let seq: Option<i64> = conn
        .prepare_cached(
            "UPDATE channels SET last_seq = last_seq + 1 WHERE id = ?1 AND NOT EXISTS \
             (SELECT 1 FROM messages WHERE channel_id = ?1 AND author_id = ?2 \
              AND client_msg_index = ?3) RETURNING last_seq",
        )?
        .query_row((channel, author, index), |r| r.get(0))
        .optional()?;
    let Some(seq) = seq else {
        let earlier: Option<Vec<u8>> = conn
            .prepare_cached(
                "SELECT id FROM messages WHERE channel_id = ?1 AND author_id = ?2 \
                 AND client_msg_index = ?3",
            )?
            .query_row((channel, author, index), |r| r.get(0))
            .optional()?;
        return match earlier {
            Some(id) => Ok(Appended::Existing(MessageId(raw::read_id(&id)?))),
            None => Err(StoreError::Corrupt("messages")),
        };
    };
    conn.prepare_cached(
        "INSERT INTO messages (id, channel_id, seq, author_id, body, thread_root_id, \
         client_msg_index, client_msg_id_enc, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(rusqlite::params![
        raw::id(&m.id.0),
        channel,
        seq,
        author,
        m.body,
        m.thread_root_id.as_ref().map(|r| raw::id(&r.0)),
        index,
        m.client_msg_id_enc,
        raw::time(&m.created_at),
    ])?;
    conn.prepare_cached(
        "UPDATE channel_members SET last_read_seq = ?3 \
         WHERE channel_id = ?1 AND user_id = ?2 AND last_read_seq < ?3",
    )?
    .execute((channel, author, seq))?;
    Ok(Appended::Posted(seq))
}

/// The message with this id.
pub async fn by_id(
    conn: &mut Conn<'_>,
    id: MessageId,
) -> Result<Option<MessageRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM messages WHERE id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// The message `id` if it is in one of `workspace`'s channels (eDiscovery reads a position
/// only within the workspace its criteria name).
pub async fn by_id_in_workspace(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    id: MessageId,
) -> Result<Option<MessageRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM messages WHERE id = $1 \
         AND channel_id IN (SELECT id FROM channels WHERE workspace_id = $2)"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .bind(workspace)
        .fetch_optional(c)
        .await)?)
}

/// The message at position `seq` of a channel (a top-level message or a reply).
pub async fn by_seq(
    conn: &mut Conn<'_>,
    channel: ChannelId,
    seq: i64,
) -> Result<Option<MessageRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM messages WHERE channel_id = $1 AND seq = $2");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(channel)
        .bind(seq)
        .fetch_optional(c)
        .await)?)
}

/// The message an author already posted in this channel with the client id whose blind
/// index is `client_msg_index`.
pub async fn by_client_index(
    conn: &mut Conn<'_>,
    channel: ChannelId,
    author: UserId,
    client_msg_index: &str,
) -> Result<Option<MessageRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM messages WHERE channel_id = $1 AND author_id = $2 AND client_msg_index = $3");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(channel)
        .bind(author)
        .bind(client_msg_index)
        .fetch_optional(c)
        .await)?)
}

/// A page of a channel's top-level messages (thread replies excluded), before or after a
/// sequence number, returned in ascending order.
pub async fn page(
    conn: &mut Conn<'_>,
    channel: ChannelId,
    before: Option<i64>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<MessageRecord>, StoreError> {
    let mut rows: Vec<MessageRecord> = match after {
        Some(after) => {
            let sql = format!(
                "SELECT {COLUMNS} FROM messages WHERE channel_id = $1 AND thread_root_id IS NULL AND seq > $2 \
                 ORDER BY seq ASC LIMIT $3"
            );
            on!(conn, |c| sqlx::query_as(&sql)
                .bind(channel)
                .bind(after)
                .bind(limit)
                .fetch_all(c)
                .await)?
        }
        None => {
            let before = before.unwrap_or(i64::MAX);
            let sql = format!(
                "SELECT {COLUMNS} FROM messages WHERE channel_id = $1 AND thread_root_id IS NULL AND seq < $2 \
                 ORDER BY seq DESC LIMIT $3"
            );
            let mut rows: Vec<MessageRecord> = on!(conn, |c| sqlx::query_as(&sql)
                .bind(channel)
                .bind(before)
                .bind(limit)
                .fetch_all(c)
                .await)?;
            rows.reverse();
            rows
        }
    };
    rows.sort_by_key(|m| m.seq);
    Ok(rows)
}

/// A thread's replies in order.
pub async fn replies(
    conn: &mut Conn<'_>,
    root: MessageId,
    limit: i64,
) -> Result<Vec<MessageRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM messages WHERE thread_root_id = $1 ORDER BY seq ASC LIMIT $2"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(root)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// Counts a reply on its root.
pub async fn add_reply(
    conn: &mut Conn<'_>,
    root: MessageId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = "UPDATE messages SET reply_count = reply_count + 1, last_reply_at = $1 WHERE id = $2";
    on!(conn, |c| sqlx::query(sql)
        .bind(at)
        .bind(root)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Replaces a body, keeping the previous one as a version.
pub async fn replace_body(
    conn: &mut Conn<'_>,
    id: MessageId,
    previous: &[u8],
    body: &[u8],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let version: (i64,) = on!(conn, |c| sqlx::query_as(
        "SELECT COUNT(*) + 1 FROM message_versions WHERE message_id = $1"
    )
    .bind(id)
    .fetch_one(c)
    .await)?;
    let sql = "INSERT INTO message_versions (message_id, version, body, replaced_at) VALUES ($1, $2, $3, $4)";
    on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .bind(version.0)
        .bind(previous)
        .bind(at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    let sql = "UPDATE messages SET body = $1, edited_at = $2 WHERE id = $3";
    on!(conn, |c| sqlx::query(sql)
        .bind(body)
        .bind(at)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Sets or clears a message's encrypted blocks.
pub async fn set_blocks(
    conn: &mut Conn<'_>,
    id: MessageId,
    blocks: Option<&[u8]>,
) -> Result<(), StoreError> {
    let sql = "UPDATE messages SET blocks = $1 WHERE id = $2";
    on!(conn, |c| sqlx::query(sql)
        .bind(blocks)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Earlier bodies of a message, oldest first: (version, encrypted body, replaced at).
pub async fn versions(
    conn: &mut Conn<'_>,
    id: MessageId,
) -> Result<Vec<(i64, Vec<u8>, DateTime<Utc>)>, StoreError> {
    let sql = "SELECT version, body, replaced_at FROM message_versions WHERE message_id = $1 ORDER BY version";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(id)
        .fetch_all(c)
        .await)?)
}

/// Turns a message into a tombstone: body and history emptied, reactions and mentions gone.
pub async fn tombstone(
    conn: &mut Conn<'_>,
    id: MessageId,
    empty: &[u8],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = "UPDATE messages SET body = $1, deleted_at = $2, blocks = NULL WHERE id = $3";
    on!(conn, |c| sqlx::query(sql)
        .bind(empty)
        .bind(at)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    for sql in [
        "DELETE FROM message_versions WHERE message_id = $1",
        "DELETE FROM reactions WHERE message_id = $1",
        "DELETE FROM mentions WHERE message_id = $1",
        "DELETE FROM pins WHERE message_id = $1",
    ] {
        on!(conn, |c| sqlx::query(sql)
            .bind(id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Adds a reaction; false if the user already reacted with this emoji.
pub async fn add_reaction(
    conn: &mut Conn<'_>,
    id: MessageId,
    user: UserId,
    emoji: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql =
        "INSERT INTO reactions (message_id, user_id, emoji, created_at) VALUES ($1, $2, $3, $4) \
               ON CONFLICT (message_id, user_id, emoji) DO NOTHING";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .bind(user)
        .bind(emoji)
        .bind(at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Removes a reaction; false if there was none.
pub async fn remove_reaction(
    conn: &mut Conn<'_>,
    id: MessageId,
    user: UserId,
    emoji: &str,
) -> Result<bool, StoreError> {
    let sql = "DELETE FROM reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .bind(user)
        .bind(emoji)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Reactions on a set of messages: (message, emoji, user).
pub async fn reactions(
    conn: &mut Conn<'_>,
    ids: &[MessageId],
) -> Result<Vec<(MessageId, String, UserId)>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // One query for the whole page (pages hold at most a few hundred messages).
    let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT message_id, emoji, user_id FROM reactions WHERE message_id IN ({}) \
         ORDER BY created_at, user_id",
        placeholders.join(", ")
    );
    Ok(on!(conn, |c| {
        let mut query = sqlx::query_as(&sql);
        for id in ids {
            query = query.bind(*id);
        }
        query.fetch_all(c).await
    })?)
}

/// Records that a message mentions a user.
pub async fn add_mention(
    conn: &mut Conn<'_>,
    id: MessageId,
    user: UserId,
    channel: ChannelId,
    seq: i64,
) -> Result<(), StoreError> {
    let sql =
        "INSERT INTO mentions (message_id, user_id, channel_id, seq) VALUES ($1, $2, $3, $4) \
               ON CONFLICT (message_id, user_id) DO NOTHING";
    on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .bind(user)
        .bind(channel)
        .bind(seq)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Pins or unpins a message; true if that changed anything.
pub async fn set_pinned(
    conn: &mut Conn<'_>,
    channel: ChannelId,
    id: MessageId,
    by: UserId,
    pinned: bool,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = if pinned {
        let sql = "INSERT INTO pins (channel_id, message_id, pinned_by, pinned_at) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (channel_id, message_id) DO NOTHING";
        on!(conn, |c| sqlx::query(sql)
            .bind(channel)
            .bind(id)
            .bind(by)
            .bind(at)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?
    } else {
        let sql = "DELETE FROM pins WHERE channel_id = $1 AND message_id = $2";
        on!(conn, |c| sqlx::query(sql)
            .bind(channel)
            .bind(id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?
    };
    Ok(n == 1)
}

/// The pinned message ids of a channel, newest pin first.
pub async fn pinned(conn: &mut Conn<'_>, channel: ChannelId) -> Result<Vec<MessageId>, StoreError> {
    let sql = "SELECT message_id FROM pins WHERE channel_id = $1 ORDER BY pinned_at DESC";
    let rows: Vec<(MessageId,)> = on!(conn, |c| sqlx::query_as(sql)
        .bind(channel)
        .fetch_all(c)
        .await)?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Makes a user follow a thread.
pub async fn follow(conn: &mut Conn<'_>, root: MessageId, user: UserId) -> Result<(), StoreError> {
    let sql = "INSERT INTO thread_followers (root_id, user_id) VALUES ($1, $2) ON CONFLICT (root_id, user_id) DO NOTHING";
    on!(conn, |c| sqlx::query(sql)
        .bind(root)
        .bind(user)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Who follows a thread.
pub async fn followers(conn: &mut Conn<'_>, root: MessageId) -> Result<Vec<UserId>, StoreError> {
    let sql = "SELECT user_id FROM thread_followers WHERE root_id = $1";
    let rows: Vec<(UserId,)> = on!(conn, |c| sqlx::query_as(sql).bind(root).fetch_all(c).await)?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Top-level messages after `after` not written by `reader` and not deleted: the unread count.
pub async fn unread_count(
    conn: &mut Conn<'_>,
    channel: ChannelId,
    reader: UserId,
    after: i64,
) -> Result<i64, StoreError> {
    let sql = "SELECT COUNT(*) FROM messages WHERE channel_id = $1 AND seq > $2 AND thread_root_id IS NULL \
               AND deleted_at IS NULL AND author_id <> $3";
    let row: (i64,) = on!(conn, |c| sqlx::query_as(sql)
        .bind(channel)
        .bind(after)
        .bind(reader)
        .fetch_one(c)
        .await)?;
    Ok(row.0)
}

/// Messages of a channel around a sequence number (top-level only), ascending.
pub async fn around(
    conn: &mut Conn<'_>,
    channel: ChannelId,
    seq: i64,
    each_side: i64,
) -> Result<Vec<MessageRecord>, StoreError> {
    let mut rows = page(conn, channel, Some(seq + 1), None, each_side + 1).await?;
    rows.extend(page(conn, channel, None, Some(seq), each_side).await?);
    rows.sort_by_key(|m| m.seq);
    rows.dedup_by_key(|m| m.seq);
    Ok(rows)
}

/// A message's ciphertexts to re-encrypt: (message, its workspace, the body, the client id).
pub type StoredBody = (
    MessageId,
    crate::domain::WorkspaceId,
    Vec<u8>,
    Option<Vec<u8>>,
);

/// Message bodies and client ids in id order after `after`, with their workspace, for
/// re-encryption.
pub async fn bodies_after(
    conn: &mut Conn<'_>,
    after: Option<MessageId>,
    limit: i64,
) -> Result<Vec<StoredBody>, StoreError> {
    let sql = "SELECT m.id, c.workspace_id, m.body, m.client_msg_id_enc FROM messages m \
               JOIN channels c ON c.id = m.channel_id \
               WHERE ($1 IS NULL OR m.id > $1) ORDER BY m.id LIMIT $2";
    let sql_pg = "SELECT m.id, c.workspace_id, m.body, m.client_msg_id_enc FROM messages m \
                  JOIN channels c ON c.id = m.channel_id \
                  WHERE ($1::uuid IS NULL OR m.id > $1) ORDER BY m.id LIMIT $2";
    Ok(match conn {
        Conn::Sqlite(c) => {
            sqlx::query_as(sql)
                .bind(after)
                .bind(limit)
                .fetch_all(&mut **c)
                .await?
        }
        Conn::Pg(c) => {
            sqlx::query_as(sql_pg)
                .bind(after)
                .bind(limit)
                .fetch_all(&mut **c)
                .await?
        }
    })
}

/// How many messages exist (deleted ones included: their tombstones keep an empty body).
pub async fn count(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    let row: (i64,) = on!(conn, |c| sqlx::query_as("SELECT COUNT(*) FROM messages")
        .fetch_one(c)
        .await)?;
    Ok(row.0)
}

/// Replaces a message's body ciphertext (same text, new key).
pub async fn set_body(conn: &mut Conn<'_>, id: MessageId, body: &[u8]) -> Result<(), StoreError> {
    on!(conn, |c| sqlx::query(
        "UPDATE messages SET body = $1 WHERE id = $2"
    )
    .bind(body)
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Replaces a kept version's ciphertext (same text, new key).
pub async fn set_version_body(
    conn: &mut Conn<'_>,
    id: MessageId,
    version: i64,
    body: &[u8],
) -> Result<(), StoreError> {
    let sql = "UPDATE message_versions SET body = $1 WHERE message_id = $2 AND version = $3";
    on!(conn, |c| sqlx::query(sql)
        .bind(body)
        .bind(id)
        .bind(version)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Replaces a message's client id ciphertext (same id, new key).
pub async fn set_client_msg_id_enc(
    conn: &mut Conn<'_>,
    id: MessageId,
    sealed: &[u8],
) -> Result<(), StoreError> {
    on!(conn, |c| sqlx::query(
        "UPDATE messages SET client_msg_id_enc = $1 WHERE id = $2"
    )
    .bind(sealed)
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A message whose client id is still in plaintext: (message, channel, author, workspace,
/// client id).
pub type LegacyClientId = (
    MessageId,
    ChannelId,
    UserId,
    crate::domain::WorkspaceId,
    String,
);

/// Up to `limit` messages with a plaintext client id.
pub async fn legacy_client_ids(
    conn: &mut Conn<'_>,
    limit: i64,
) -> Result<Vec<LegacyClientId>, StoreError> {
    let sql =
        "SELECT m.id, m.channel_id, m.author_id, c.workspace_id, m.client_msg_id FROM messages m \
               JOIN channels c ON c.id = m.channel_id \
               WHERE m.client_msg_id IS NOT NULL ORDER BY m.id LIMIT $1";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// Stores a message's client id as its blind index and ciphertext, emptying the plaintext.
pub async fn set_client_id(
    conn: &mut Conn<'_>,
    id: MessageId,
    client_msg_index: &str,
    sealed: &[u8],
) -> Result<(), StoreError> {
    let sql =
        "UPDATE messages SET client_msg_id = NULL, client_msg_index = $1, client_msg_id_enc = $2 \
               WHERE id = $3";
    on!(conn, |c| sqlx::query(sql)
        .bind(client_msg_index)
        .bind(sealed)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}
