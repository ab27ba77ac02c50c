//! The breach register (table `breaches`, GDPR Art. 33(5)) and the lookups its report makes:
//! who uploaded a file, who created a document.
//!
//! Titles and descriptions arrive here encrypted; the accounts involved are a JSON array of
//! user ids. A breach is never deleted.

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};
use crate::domain::{BreachId, DocumentId, FileId, UserId};

/// A breach as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct BreachRecord {
    /// Its id.
    pub id: BreachId,
    /// What happened, in a few words, encrypted.
    pub title: Vec<u8>,
    /// What happened, in full, encrypted.
    pub description: Option<Vec<u8>>,
    /// `open`, `contained` or `closed`.
    pub status: String,
    /// When it was discovered (the 72 hours run from here).
    pub discovered_at: DateTime<Utc>,
    /// When it began, if known.
    pub occurred_from: Option<DateTime<Utc>>,
    /// When it ended, if known.
    pub occurred_to: Option<DateTime<Utc>>,
    /// The accounts involved, a JSON array of user ids.
    pub accounts: String,
    /// When the supervisory authority was told.
    pub authority_notified_at: Option<DateTime<Utc>>,
    /// When the people affected were told.
    pub subjects_notified_at: Option<DateTime<Utc>>,
    /// Who recorded it.
    pub created_by: Option<UserId>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// Who changed it last.
    pub updated_by: Option<UserId>,
    /// When it was changed last.
    pub updated_at: DateTime<Utc>,
    /// When it was closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Why the authority was not told, encrypted.
    pub no_notification_reason: Option<Vec<u8>>,
}

const COLUMNS: &str = "id, title, description, status, discovered_at, occurred_from, \
                       occurred_to, accounts, authority_notified_at, subjects_notified_at, \
                       created_by, created_at, updated_by, updated_at, closed_at, \
                       no_notification_reason";

/// Stores a new breach.
pub async fn insert(conn: &mut Conn<'_>, b: &BreachRecord) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO breaches ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    );
    on!(conn, |c| sqlx::query(&sql)
        .bind(b.id)
        .bind(&b.title)
        .bind(&b.description)
        .bind(&b.status)
        .bind(b.discovered_at)
        .bind(b.occurred_from)
        .bind(b.occurred_to)
        .bind(&b.accounts)
        .bind(b.authority_notified_at)
        .bind(b.subjects_notified_at)
        .bind(b.created_by)
        .bind(b.created_at)
        .bind(b.updated_by)
        .bind(b.updated_at)
        .bind(b.closed_at)
        .bind(&b.no_notification_reason)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Replaces every changeable field of breach `b.id` (its creation stays).
pub async fn update(conn: &mut Conn<'_>, b: &BreachRecord) -> Result<bool, StoreError> {
    let sql = "UPDATE breaches SET title = $1, description = $2, status = $3, \
               discovered_at = $4, occurred_from = $5, occurred_to = $6, accounts = $7, \
               authority_notified_at = $8, subjects_notified_at = $9, updated_by = $10, \
               updated_at = $11, closed_at = $12, no_notification_reason = $13 WHERE id = $14";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(&b.title)
        .bind(&b.description)
        .bind(&b.status)
        .bind(b.discovered_at)
        .bind(b.occurred_from)
        .bind(b.occurred_to)
        .bind(&b.accounts)
        .bind(b.authority_notified_at)
        .bind(b.subjects_notified_at)
        .bind(b.updated_by)
        .bind(b.updated_at)
        .bind(b.closed_at)
        .bind(&b.no_notification_reason)
        .bind(b.id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// The breach `id`.
pub async fn by_id(conn: &mut Conn<'_>, id: BreachId) -> Result<Option<BreachRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM breaches WHERE id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// Up to `limit` breaches after the id `after`, in the order they were recorded; with
/// `status`, only those in it.
pub async fn list(
    conn: &mut Conn<'_>,
    status: Option<&'static str>,
    after: Option<BreachId>,
    limit: i64,
) -> Result<Vec<BreachRecord>, StoreError> {
    let mut sql = format!("SELECT {COLUMNS} FROM breaches WHERE 1 = 1");
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    if after.is_some() {
        sql.push_str(&format!(" AND id > ${}", next()));
    }
    if status.is_some() {
        sql.push_str(&format!(" AND status = ${}", next()));
    }
    sql.push_str(&format!(" ORDER BY id LIMIT ${}", next()));
    Ok(on!(conn, |c| {
        let mut q = sqlx::query_as(&sql);
        if let Some(after) = after {
            q = q.bind(after);
        }
        if let Some(status) = status {
            q = q.bind(status);
        }
        q.bind(limit).fetch_all(c).await
    })?)
}

/// Who wrote the message `id`, if it still exists.
pub async fn author_of(
    conn: &mut Conn<'_>,
    id: crate::domain::MessageId,
) -> Result<Option<UserId>, StoreError> {
    Ok(on!(conn, |c| sqlx::query_scalar(
        "SELECT author_id FROM messages WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(c)
    .await)?)
}

/// The authors of messages in the channels `account` is a member of, other than `account`,
/// with how many of their messages and in how many of those channels; at most `limit`.
pub async fn authors_readable_by(
    conn: &mut Conn<'_>,
    account: UserId,
    limit: i64,
) -> Result<Vec<(UserId, i64, i64)>, StoreError> {
    let sql = "SELECT m.author_id, COUNT(*), COUNT(DISTINCT m.channel_id) FROM messages m \
               JOIN channel_members cm ON cm.channel_id = m.channel_id \
               WHERE cm.user_id = $1 AND m.author_id <> $2 \
               GROUP BY m.author_id ORDER BY m.author_id LIMIT $3";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(account)
        .bind(account)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// The authors of messages in the channels `channels`, with how many of their messages and
/// in how many of those channels; at most `limit`.
pub async fn authors_in_channels(
    conn: &mut Conn<'_>,
    channels: &[crate::domain::ChannelId],
    limit: i64,
) -> Result<Vec<(UserId, i64, i64)>, StoreError> {
    let mut out = Vec::new();
    // One channel at a time keeps the statement the same on both backends.
    for channel in channels {
        let rows: Vec<(UserId, i64)> = on!(conn, |c| sqlx::query_as(
            "SELECT author_id, COUNT(*) FROM messages WHERE channel_id = $1 \
             GROUP BY author_id ORDER BY author_id LIMIT $2"
        )
        .bind(*channel)
        .bind(limit)
        .fetch_all(c)
        .await)?;
        out.extend(rows.into_iter().map(|(who, n)| (who, n, 1)));
    }
    Ok(out)
}

/// Who uploaded the file `id`, if it still exists.
pub async fn uploader_of(conn: &mut Conn<'_>, id: FileId) -> Result<Option<UserId>, StoreError> {
    Ok(on!(conn, |c| sqlx::query_scalar(
        "SELECT uploader_id FROM files WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(c)
    .await)?)
}

/// Who created the document `id`, if it still exists.
pub async fn creator_of(conn: &mut Conn<'_>, id: DocumentId) -> Result<Option<UserId>, StoreError> {
    Ok(on!(conn, |c| sqlx::query_scalar(
        "SELECT created_by FROM documents WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(c)
    .await)?)
}

/// The active bots of the deployment with their workspace and whether events are sent to a
/// request URL of theirs (the URL's host, if so): the recipients of what they are sent.
pub async fn active_bots(
    conn: &mut Conn<'_>,
) -> Result<Vec<(UserId, crate::domain::WorkspaceId, Option<String>)>, StoreError> {
    let sql = "SELECT b.user_id, b.workspace_id, s.request_url FROM bots b \
               LEFT JOIN bot_event_settings s ON s.bot_id = b.user_id \
               WHERE b.deactivated_at IS NULL ORDER BY b.workspace_id, b.user_id";
    Ok(on!(conn, |c| sqlx::query_as(sql).fetch_all(c).await)?)
}
