//! Restrictions of processing (table `processing_restrictions`, GDPR Art. 18): who is
//! restricted now, and each person's history.
//!
//! Reasons arrive here encrypted. A row is never deleted; it is lifted once. The partial
//! unique index `processing_restrictions_in_force` keeps one restriction in force per person
//! and is what [`restricted_among`] and [`is_restricted`] read on the hot paths.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};
use crate::domain::{RestrictionId, UserId, WorkspaceId};

/// A restriction as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RestrictionRecord {
    /// Its id.
    pub id: RestrictionId,
    /// Whose processing is restricted.
    pub subject_id: UserId,
    /// Why, encrypted under the subject's key.
    pub reason: Vec<u8>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Who started it.
    pub started_by: Option<UserId>,
    /// When it was lifted (`None`: in force).
    pub lifted_at: Option<DateTime<Utc>>,
    /// Who lifted it.
    pub lifted_by: Option<UserId>,
    /// Why it was lifted, encrypted under the subject's key.
    pub lift_reason: Option<Vec<u8>>,
}

const COLUMNS: &str =
    "id, subject_id, reason, started_at, started_by, lifted_at, lifted_by, lift_reason";

/// Stores a new restriction (in force).
pub async fn insert(conn: &mut Conn<'_>, r: &RestrictionRecord) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO processing_restrictions ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    );
    on!(conn, |c| sqlx::query(&sql)
        .bind(r.id)
        .bind(r.subject_id)
        .bind(&r.reason)
        .bind(r.started_at)
        .bind(r.started_by)
        .bind(r.lifted_at)
        .bind(r.lifted_by)
        .bind(&r.lift_reason)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// `user`'s restriction in force, if any.
pub async fn in_force(
    conn: &mut Conn<'_>,
    user: UserId,
) -> Result<Option<RestrictionRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM processing_restrictions WHERE subject_id = $1 AND lifted_at IS NULL"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(user)
        .fetch_optional(c)
        .await)?)
}

/// Every restriction of `user`, oldest first.
pub async fn history(
    conn: &mut Conn<'_>,
    user: UserId,
) -> Result<Vec<RestrictionRecord>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM processing_restrictions WHERE subject_id = $1 ORDER BY id");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(user)
        .fetch_all(c)
        .await)?)
}

/// Lifts restriction `id`; false if it was lifted already.
pub async fn lift(
    conn: &mut Conn<'_>,
    id: RestrictionId,
    at: DateTime<Utc>,
    by: Option<UserId>,
    reason: &[u8],
) -> Result<bool, StoreError> {
    let sql = "UPDATE processing_restrictions SET lifted_at = $1, lifted_by = $2, \
               lift_reason = $3 WHERE id = $4 AND lifted_at IS NULL";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(at)
        .bind(by)
        .bind(reason)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Whether `user`'s processing is restricted now (one read of the partial index).
pub async fn is_restricted(conn: &mut Conn<'_>, user: UserId) -> Result<bool, StoreError> {
    let sql = "SELECT COUNT(*) FROM processing_restrictions \
               WHERE subject_id = $1 AND lifted_at IS NULL";
    let n: i64 = on!(conn, |c| sqlx::query_scalar(sql)
        .bind(user)
        .fetch_one(c)
        .await)?;
    Ok(n > 0)
}

/// Those of `users` whose processing is restricted now (one query; none asked, none read).
pub async fn restricted_among(
    conn: &mut Conn<'_>,
    users: &[UserId],
) -> Result<HashSet<UserId>, StoreError> {
    let mut wanted: Vec<UserId> = users.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    if wanted.is_empty() {
        return Ok(HashSet::new());
    }
    let mut out = HashSet::new();
    // Bounded batches keep the parameter count within both backends' limits.
    for chunk in wanted.chunks(500) {
        let marks: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT subject_id FROM processing_restrictions \
             WHERE lifted_at IS NULL AND subject_id IN ({})",
            marks.join(", ")
        );
        let found: Vec<UserId> = on!(conn, |c| {
            let mut q = sqlx::query_scalar(&sql);
            for u in chunk {
                q = q.bind(*u);
            }
            q.fetch_all(c).await
        })?;
        out.extend(found);
    }
    Ok(out)
}

/// Everyone restricted now (a rebuild reads this once).
pub async fn all_in_force(conn: &mut Conn<'_>) -> Result<HashSet<UserId>, StoreError> {
    let sql = "SELECT subject_id FROM processing_restrictions WHERE lifted_at IS NULL";
    let found: Vec<UserId> = on!(conn, |c| sqlx::query_scalar(sql).fetch_all(c).await)?;
    Ok(found.into_iter().collect())
}

/// The workspaces where `user` is a member or has content (messages, files, documents), whose
/// search indexes a restriction changes.
pub async fn workspaces_of(
    conn: &mut Conn<'_>,
    user: UserId,
) -> Result<Vec<WorkspaceId>, StoreError> {
    let sql = "SELECT workspace_id FROM memberships WHERE user_id = $1 \
               UNION SELECT c.workspace_id FROM messages m JOIN channels c ON c.id = m.channel_id \
                 WHERE m.author_id = $1 \
               UNION SELECT workspace_id FROM files WHERE uploader_id = $1 \
               UNION SELECT workspace_id FROM documents WHERE created_by = $1";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .bind(user)
        .fetch_all(c)
        .await)?)
}

/// The people with a lifted restriction whose content is not yet back in the search indexes.
pub async fn lifted_not_reindexed(conn: &mut Conn<'_>) -> Result<Vec<UserId>, StoreError> {
    let sql = "SELECT DISTINCT subject_id FROM processing_restrictions \
               WHERE lifted_at IS NOT NULL AND reindexed_at IS NULL";
    Ok(on!(conn, |c| sqlx::query_scalar(sql).fetch_all(c).await)?)
}

/// Records that `user`'s restrictions lifted by `rebuilt_from` are back in the search indexes
/// (a rebuild that began then read them all).
pub async fn mark_reindexed(
    conn: &mut Conn<'_>,
    user: UserId,
    rebuilt_from: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = "UPDATE processing_restrictions SET reindexed_at = $1 \
               WHERE subject_id = $2 AND lifted_at IS NOT NULL AND lifted_at <= $3 \
               AND reindexed_at IS NULL";
    on!(conn, |c| sqlx::query(sql)
        .bind(at)
        .bind(user)
        .bind(rebuilt_from)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The author of message `id`, if it exists.
pub async fn message_author(
    conn: &mut Conn<'_>,
    id: crate::domain::MessageId,
) -> Result<Option<UserId>, StoreError> {
    let sql = "SELECT author_id FROM messages WHERE id = $1";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}
