//! Emergency-access elevations (table `break_glass_grants`): who may read which channel
//! until when, and how each ended. The reason arrives here encrypted. A grant is never
//! deleted; it ends (on time, or earlier by its holder) and stays as a record.

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};
use crate::domain::{BreakGlassId, ChannelId, UserId, WorkspaceId};

/// A grant as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct GrantRecord {
    /// Its id.
    pub id: BreakGlassId,
    /// The workspace of the channel.
    pub workspace_id: WorkspaceId,
    /// The channel it opens.
    pub channel_id: ChannelId,
    /// Who holds it.
    pub user_id: UserId,
    /// Why it was asked for, encrypted under the workspace's key.
    pub reason: Vec<u8>,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// When it ends at the latest.
    pub expires_at: DateTime<Utc>,
    /// When it ended, once it has.
    pub ended_at: Option<DateTime<Utc>>,
    /// `expired` or `ended` (by its holder).
    pub end_reason: Option<String>,
}

const COLUMNS: &str =
    "id, workspace_id, channel_id, user_id, reason, started_at, expires_at, ended_at, end_reason";

/// Stores a new grant.
pub async fn insert(conn: &mut Conn<'_>, g: &GrantRecord) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO break_glass_grants ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    );
    on!(conn, |c| sqlx::query(&sql)
        .bind(g.id)
        .bind(g.workspace_id)
        .bind(g.channel_id)
        .bind(g.user_id)
        .bind(&g.reason)
        .bind(g.started_at)
        .bind(g.expires_at)
        .bind(g.ended_at)
        .bind(&g.end_reason)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The grant with this id.
pub async fn by_id(
    conn: &mut Conn<'_>,
    id: BreakGlassId,
) -> Result<Option<GrantRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM break_glass_grants WHERE id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// Ends a grant that has not ended; false if it already had.
pub async fn end(
    conn: &mut Conn<'_>,
    id: BreakGlassId,
    at: DateTime<Utc>,
    reason: &str,
) -> Result<bool, StoreError> {
    let sql = "UPDATE break_glass_grants SET ended_at = $1, end_reason = $2 \
               WHERE id = $3 AND ended_at IS NULL";
    let done = on!(conn, |c| sqlx::query(sql)
        .bind(at)
        .bind(reason)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Grants not ended whose time is up at `now`.
pub async fn due(conn: &mut Conn<'_>, now: DateTime<Utc>) -> Result<Vec<GrantRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM break_glass_grants WHERE ended_at IS NULL AND expires_at <= $1 \
         ORDER BY expires_at, id"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(now)
        .fetch_all(c)
        .await)?)
}

/// When the next grant not ended is due, if any is open.
pub async fn next_due(conn: &mut Conn<'_>) -> Result<Option<DateTime<Utc>>, StoreError> {
    let sql = "SELECT expires_at FROM break_glass_grants WHERE ended_at IS NULL \
               ORDER BY expires_at LIMIT 1";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .fetch_optional(c)
        .await)?)
}
