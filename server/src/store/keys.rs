//! Wrapped data-encryption keys, per scope and version, and data-key rotations with their
//! re-encryption progress.

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};

/// The scope of the Ed25519 seeds that sign audit checkpoints (one version per rotation).
pub const AUDIT_SIGNING_SCOPE: &str = "system:audit-signing";

/// A data key as stored: wrapped by the KEK named by `kek_id`.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DataKeyRecord {
    /// `user:<id>`, `workspace:<id>` or `system:<name>`.
    pub scope: String,
    /// Starts at 1; a new version for each rotation.
    pub version: i64,
    /// The KEK that wraps it.
    pub kek_id: String,
    /// The wrapped key.
    pub wrapped: Vec<u8>,
    /// For signing keys, the public half.
    pub public_key: Option<Vec<u8>>,
    /// Encryptions reserved so far (an upper bound of those made).
    pub encryptions: i64,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When new writes stopped using it.
    pub retired_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "scope, version, kek_id, wrapped, public_key, encryptions, created_at, retired_at";

/// Stores a new key version.
pub async fn insert(conn: &mut Conn<'_>, k: &DataKeyRecord) -> Result<(), StoreError> {
    let sql = "INSERT INTO data_keys (scope, version, kek_id, wrapped, public_key, encryptions, created_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7)";
    on!(conn, |c| sqlx::query(sql)
        .bind(&k.scope)
        .bind(k.version)
        .bind(&k.kek_id)
        .bind(&k.wrapped)
        .bind(&k.public_key)
        .bind(k.encryptions)
        .bind(k.created_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The newest version of a scope's key.
pub async fn latest(conn: &mut Conn<'_>, scope: &str) -> Result<Option<DataKeyRecord>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM data_keys WHERE scope = $1 ORDER BY version DESC LIMIT 1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(scope)
        .fetch_optional(c)
        .await)?)
}

/// One version of a scope's key.
pub async fn get(
    conn: &mut Conn<'_>,
    scope: &str,
    version: i64,
) -> Result<Option<DataKeyRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM data_keys WHERE scope = $1 AND version = $2");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(scope)
        .bind(version)
        .fetch_optional(c)
        .await)?)
}

/// Every version of one scope's key, oldest first.
pub async fn versions(conn: &mut Conn<'_>, scope: &str) -> Result<Vec<DataKeyRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM data_keys WHERE scope = $1 ORDER BY version");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(scope)
        .fetch_all(c)
        .await)?)
}

/// Every stored key.
pub async fn all(conn: &mut Conn<'_>) -> Result<Vec<DataKeyRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM data_keys ORDER BY scope, version");
    Ok(on!(conn, |c| sqlx::query_as(&sql).fetch_all(c).await)?)
}

/// How many keys exist.
pub async fn count(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    let row: (i64,) = on!(conn, |c| sqlx::query_as("SELECT COUNT(*) FROM data_keys")
        .fetch_one(c)
        .await)?;
    Ok(row.0)
}

/// Reserves `n` more encryptions under a key; returns the new reserved total.
pub async fn reserve(
    conn: &mut Conn<'_>,
    scope: &str,
    version: i64,
    n: i64,
) -> Result<i64, StoreError> {
    let sql =
        "UPDATE data_keys SET encryptions = encryptions + $1 WHERE scope = $2 AND version = $3 \
               RETURNING encryptions";
    let row: (i64,) = on!(conn, |c| sqlx::query_as(sql)
        .bind(n)
        .bind(scope)
        .bind(version)
        .fetch_one(c)
        .await)?;
    Ok(row.0)
}

/// Stops new writes from using a key version.
pub async fn retire(
    conn: &mut Conn<'_>,
    scope: &str,
    version: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = "UPDATE data_keys SET retired_at = $1 WHERE scope = $2 AND version = $3 AND retired_at IS NULL";
    on!(conn, |c| sqlx::query(sql)
        .bind(now)
        .bind(scope)
        .bind(version)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Replaces a key's wrapping (KEK rotation).
pub async fn rewrap(
    conn: &mut Conn<'_>,
    scope: &str,
    version: i64,
    kek_id: &str,
    wrapped: &[u8],
) -> Result<(), StoreError> {
    let sql = "UPDATE data_keys SET kek_id = $1, wrapped = $2 WHERE scope = $3 AND version = $4";
    on!(conn, |c| sqlx::query(sql)
        .bind(kek_id)
        .bind(wrapped)
        .bind(scope)
        .bind(version)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A data-key rotation and the lease of the process re-encrypting for it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RotationRecord {
    /// Its id (a UUIDv7).
    pub id: String,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// Who requested it: `system` or a user id.
    pub requested_by: String,
    /// How many key scopes got a new version.
    pub scopes: i64,
    /// The process running its re-encryption, while its lease holds.
    pub runner: Option<String>,
    /// Until when that runner's lease holds.
    pub lease_until: Option<DateTime<Utc>>,
    /// When every target was re-encrypted.
    pub finished_at: Option<DateTime<Utc>>,
}

/// The progress of one rotation over one re-encryptable target.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ProgressRecord {
    /// The rotation.
    pub rotation_id: String,
    /// The target's registry name (`users`, `messages`, ...).
    pub target: String,
    /// Rows counted when the target was added.
    pub total: i64,
    /// Rows examined so far.
    pub done: i64,
    /// Rows re-encrypted so far (the others were already under the current key).
    pub changed: i64,
    /// The last row id examined, to resume after.
    pub cursor: Option<String>,
    /// When the target was done.
    pub finished_at: Option<DateTime<Utc>>,
}

const ROTATION_COLUMNS: &str =
    "id, requested_at, requested_by, scopes, runner, lease_until, finished_at";
const PROGRESS_COLUMNS: &str = "rotation_id, target, total, done, changed, cursor, finished_at";

/// Records a rotation.
pub async fn insert_rotation(conn: &mut Conn<'_>, r: &RotationRecord) -> Result<(), StoreError> {
    let sql = "INSERT INTO key_rotations (id, requested_at, requested_by, scopes) VALUES ($1, $2, $3, $4)";
    on!(conn, |c| sqlx::query(sql)
        .bind(&r.id)
        .bind(r.requested_at)
        .bind(&r.requested_by)
        .bind(r.scopes)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Every rotation, newest first, at most `limit`.
pub async fn rotations(conn: &mut Conn<'_>, limit: i64) -> Result<Vec<RotationRecord>, StoreError> {
    let sql = format!(
        "SELECT {ROTATION_COLUMNS} FROM key_rotations ORDER BY requested_at DESC, id DESC LIMIT $1"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// One rotation.
pub async fn rotation(conn: &mut Conn<'_>, id: &str) -> Result<Option<RotationRecord>, StoreError> {
    let sql = format!("SELECT {ROTATION_COLUMNS} FROM key_rotations WHERE id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// The newest rotation's id, if any (cheap enough to poll).
pub async fn newest_rotation(conn: &mut Conn<'_>) -> Result<Option<String>, StoreError> {
    let sql = "SELECT id FROM key_rotations ORDER BY requested_at DESC, id DESC LIMIT 1";
    let row: Option<(String,)> = on!(conn, |c| sqlx::query_as(sql).fetch_optional(c).await)?;
    Ok(row.map(|r| r.0))
}

/// Whether any rotation is unfinished (a cheap check on a reader before claiming in a write).
pub async fn any_unfinished(conn: &mut Conn<'_>) -> Result<bool, StoreError> {
    let sql = "SELECT id FROM key_rotations WHERE finished_at IS NULL LIMIT 1";
    let row: Option<(String,)> = on!(conn, |c| sqlx::query_as(sql).fetch_optional(c).await)?;
    Ok(row.is_some())
}

/// Takes (or renews) the lease of the oldest unfinished rotation that no other runner holds
/// at `now`; returns it, or `None` if there is nothing to run.
pub async fn claim_rotation(
    conn: &mut Conn<'_>,
    runner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Option<RotationRecord>, StoreError> {
    let pick = "SELECT id FROM key_rotations WHERE finished_at IS NULL \
                AND (runner IS NULL OR runner = $1 OR lease_until IS NULL OR lease_until < $2) \
                ORDER BY requested_at, id LIMIT 1";
    let id: Option<(String,)> = on!(conn, |c| sqlx::query_as(pick)
        .bind(runner)
        .bind(now)
        .fetch_optional(c)
        .await)?;
    let Some((id,)) = id else { return Ok(None) };
    if !renew_lease(conn, &id, runner, now, until).await? {
        return Ok(None);
    }
    rotation(conn, &id).await
}

/// Extends `runner`'s lease on a rotation, or takes a lapsed or free one; `false` if another
/// runner holds it (or it is finished).
pub async fn renew_lease(
    conn: &mut Conn<'_>,
    id: &str,
    runner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE key_rotations SET runner = $1, lease_until = $2 WHERE id = $3 AND finished_at IS NULL \
               AND (runner IS NULL OR runner = $1 OR lease_until IS NULL OR lease_until < $4)";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(runner)
        .bind(until)
        .bind(id)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Gives up `runner`'s lease (at shutdown), so another process can resume at once.
pub async fn release_lease(conn: &mut Conn<'_>, id: &str, runner: &str) -> Result<(), StoreError> {
    let sql =
        "UPDATE key_rotations SET runner = NULL, lease_until = NULL WHERE id = $1 AND runner = $2";
    on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .bind(runner)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Marks a rotation done.
pub async fn finish_rotation(
    conn: &mut Conn<'_>,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = "UPDATE key_rotations SET finished_at = $1, runner = NULL, lease_until = NULL WHERE id = $2";
    on!(conn, |c| sqlx::query(sql)
        .bind(now)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Adds a target to a rotation unless it is there already.
pub async fn add_target(
    conn: &mut Conn<'_>,
    rotation_id: &str,
    target: &str,
    total: i64,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO key_rotation_progress (rotation_id, target, total) VALUES ($1, $2, $3) \
               ON CONFLICT (rotation_id, target) DO NOTHING";
    on!(conn, |c| sqlx::query(sql)
        .bind(rotation_id)
        .bind(target)
        .bind(total)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Records a batch: `scanned` more rows examined, `changed` of them re-encrypted, resuming
/// after `cursor`; `finished` when the target has no rows left.
pub async fn advance_target(conn: &mut Conn<'_>, p: &ProgressRecord) -> Result<(), StoreError> {
    let sql =
        "UPDATE key_rotation_progress SET done = $1, changed = $2, cursor = $3, finished_at = $4 \
               WHERE rotation_id = $5 AND target = $6";
    on!(conn, |c| sqlx::query(sql)
        .bind(p.done)
        .bind(p.changed)
        .bind(&p.cursor)
        .bind(p.finished_at)
        .bind(&p.rotation_id)
        .bind(&p.target)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The progress of one rotation, per target.
pub async fn progress(
    conn: &mut Conn<'_>,
    rotation_id: &str,
) -> Result<Vec<ProgressRecord>, StoreError> {
    let sql = format!(
        "SELECT {PROGRESS_COLUMNS} FROM key_rotation_progress WHERE rotation_id = $1 ORDER BY target"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(rotation_id)
        .fetch_all(c)
        .await)?)
}

/// Deletes every version of `scope`'s data key (crypto-shredding: what was sealed under it
/// can no longer be read); how many versions went.
pub async fn destroy(conn: &mut Conn<'_>, scope: &str) -> Result<u64, StoreError> {
    let sql = "DELETE FROM data_keys WHERE scope = $1";
    Ok(on!(conn, |c| sqlx::query(sql)
        .bind(scope)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}

/// The key scopes (`user:<id>`) of erased people, whose keys were destroyed.
pub async fn erased_user_scopes(conn: &mut Conn<'_>) -> Result<Vec<String>, StoreError> {
    let sql = "SELECT id FROM users WHERE erased_at IS NOT NULL";
    let ids: Vec<uuid::Uuid> = on!(conn, |c| sqlx::query_scalar(sql).fetch_all(c).await)?;
    Ok(ids.into_iter().map(|id| format!("user:{id}")).collect())
}

/// Whether `scope` is an erased person's (`user:<id>` with `users.erased_at` set).
pub async fn scope_erased(conn: &mut Conn<'_>, scope: &str) -> Result<bool, StoreError> {
    let Some(id) = scope
        .strip_prefix("user:")
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
    else {
        return Ok(false);
    };
    let sql = "SELECT COUNT(*) FROM users WHERE id = $1 AND erased_at IS NOT NULL";
    let n: i64 = on!(conn, |c| sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(c)
        .await)?;
    Ok(n > 0)
}
