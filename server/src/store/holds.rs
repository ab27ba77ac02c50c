//! Legal holds (table `legal_holds`): what retention, deletion and erasure must keep.
//!
//! Names and reasons arrive here encrypted; custodians and channels are JSON arrays of ids.
//! A hold is never deleted, only released.

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};
use crate::domain::{ChannelId, LegalHoldId, MessageId, UserId, WorkspaceId};

/// A hold as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct HoldRecord {
    /// Its id.
    pub id: LegalHoldId,
    /// The workspace whose content it holds.
    pub workspace_id: WorkspaceId,
    /// Its name, encrypted under the workspace's key.
    pub name: Vec<u8>,
    /// Why it was placed, encrypted under the workspace's key.
    pub reason: Vec<u8>,
    /// The custodians' user ids, a JSON array (empty: anyone's content).
    pub custodians: String,
    /// The channels' ids, a JSON array (empty: every channel).
    pub channels: String,
    /// Content written from this time on (open if none).
    pub held_from: Option<DateTime<Utc>>,
    /// Content written up to this time (open if none).
    pub held_to: Option<DateTime<Utc>>,
    /// Who placed it.
    pub created_by: Option<UserId>,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// Who released it.
    pub released_by: Option<UserId>,
    /// When it was released (active while none).
    pub released_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, workspace_id, name, reason, custodians, channels, held_from, held_to, \
                       created_by, created_at, released_by, released_at";

/// Stores a new hold.
pub async fn insert(conn: &mut Conn<'_>, h: &HoldRecord) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO legal_holds ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    );
    on!(conn, |c| sqlx::query(&sql)
        .bind(h.id)
        .bind(h.workspace_id)
        .bind(&h.name)
        .bind(&h.reason)
        .bind(&h.custodians)
        .bind(&h.channels)
        .bind(h.held_from)
        .bind(h.held_to)
        .bind(h.created_by)
        .bind(h.created_at)
        .bind(h.released_by)
        .bind(h.released_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A workspace's holds, released ones included, oldest first.
pub async fn list(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<HoldRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM legal_holds WHERE workspace_id = $1 ORDER BY created_at, id"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .fetch_all(c)
        .await)?)
}

/// A workspace's holds in force (not released).
pub async fn active(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<HoldRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM legal_holds WHERE workspace_id = $1 AND released_at IS NULL \
         ORDER BY created_at, id"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .fetch_all(c)
        .await)?)
}

/// The hold `id` of `workspace`.
pub async fn by_id(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    id: LegalHoldId,
) -> Result<Option<HoldRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM legal_holds WHERE id = $1 AND workspace_id = $2");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .bind(workspace)
        .fetch_optional(c)
        .await)?)
}

/// Releases a hold still in force; false if it was already released.
pub async fn release(
    conn: &mut Conn<'_>,
    id: LegalHoldId,
    by: Option<UserId>,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE legal_holds SET released_by = $1, released_at = $2 \
               WHERE id = $3 AND released_at IS NULL";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(by)
        .bind(at)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Of `ids`, the channels that belong to `workspace`.
pub async fn channels_in(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    ids: &[ChannelId],
) -> Result<Vec<ChannelId>, StoreError> {
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let sql = "SELECT id FROM channels WHERE id = $1 AND workspace_id = $2";
        let row: Option<ChannelId> = on!(conn, |c| sqlx::query_scalar(sql)
            .bind(*id)
            .bind(workspace)
            .fetch_optional(c)
            .await)?;
        found.extend(row);
    }
    Ok(found)
}

/// Of `ids`, the accounts that exist.
pub async fn users_among(conn: &mut Conn<'_>, ids: &[UserId]) -> Result<Vec<UserId>, StoreError> {
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let sql = "SELECT id FROM users WHERE id = $1";
        let row: Option<UserId> = on!(conn, |c| sqlx::query_scalar(sql)
            .bind(*id)
            .fetch_optional(c)
            .await)?;
        found.extend(row);
    }
    Ok(found)
}

/// What a hold's scope selects, as storage filters on it.
#[derive(Clone, Debug, Default)]
pub struct Scope<'a> {
    /// Authors (empty: anyone).
    pub custodians: &'a [UserId],
    /// Channels (empty: every channel of the workspace).
    pub channels: &'a [ChannelId],
    /// Written from this time on.
    pub from: Option<DateTime<Utc>>,
    /// Written before this time.
    pub to: Option<DateTime<Utc>>,
}

/// Up to `limit` messages of `workspace` within `scope`, deleted ones included, after the
/// cursor `after` (posting time and id) in that order.
pub async fn covered_messages(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    scope: &Scope<'_>,
    after: (DateTime<Utc>, MessageId),
    limit: i64,
) -> Result<Vec<super::messages::MessageRecord>, StoreError> {
    let columns = super::messages::COLUMNS
        .split(", ")
        .map(|c| format!("m.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut sql = format!(
        "SELECT {columns} FROM messages m JOIN channels c ON c.id = m.channel_id \
         WHERE c.workspace_id = $1 \
         AND (m.created_at > $2 OR (m.created_at = $2 AND m.id > $3))"
    );
    let mut n = 3;
    let mut next = || {
        n += 1;
        n
    };
    if scope.from.is_some() {
        sql.push_str(&format!(" AND m.created_at >= ${}", next()));
    }
    if scope.to.is_some() {
        sql.push_str(&format!(" AND m.created_at < ${}", next()));
    }
    let list = |len: usize, next: &mut dyn FnMut() -> i32| {
        (0..len)
            .map(|_| format!("${}", next()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !scope.custodians.is_empty() {
        let l = list(scope.custodians.len(), &mut next);
        sql.push_str(&format!(" AND m.author_id IN ({l})"));
    }
    if !scope.channels.is_empty() {
        let l = list(scope.channels.len(), &mut next);
        sql.push_str(&format!(" AND m.channel_id IN ({l})"));
    }
    sql.push_str(&format!(" ORDER BY m.created_at, m.id LIMIT ${}", next()));
    Ok(on!(conn, |c| {
        let mut q = sqlx::query_as(&sql)
            .bind(workspace)
            .bind(after.0)
            .bind(after.1);
        if let Some(from) = scope.from {
            q = q.bind(from);
        }
        if let Some(to) = scope.to {
            q = q.bind(to);
        }
        for u in scope.custodians {
            q = q.bind(*u);
        }
        for ch in scope.channels {
            q = q.bind(*ch);
        }
        q.bind(limit).fetch_all(c).await
    })?)
}
