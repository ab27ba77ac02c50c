//! Wrapped data-encryption keys, per scope and version, and re-encryption jobs.

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};

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

/// A re-encryption job.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct KeyJobRecord {
    /// Its id.
    pub id: String,
    /// What it re-encrypts (`reencrypt-users`).
    pub kind: String,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// The last row done, to resume after.
    pub cursor: Option<String>,
    /// Rows done.
    pub done: i64,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Starts a job.
pub async fn insert_job(conn: &mut Conn<'_>, job: &KeyJobRecord) -> Result<(), StoreError> {
    let sql =
        "INSERT INTO key_jobs (id, kind, started_at, cursor, done) VALUES ($1, $2, $3, $4, $5)";
    on!(conn, |c| sqlx::query(sql)
        .bind(&job.id)
        .bind(&job.kind)
        .bind(job.started_at)
        .bind(&job.cursor)
        .bind(job.done)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Records progress (and completion, if `finished_at` is set).
pub async fn update_job(conn: &mut Conn<'_>, job: &KeyJobRecord) -> Result<(), StoreError> {
    let sql = "UPDATE key_jobs SET cursor = $1, done = $2, finished_at = $3 WHERE id = $4";
    on!(conn, |c| sqlx::query(sql)
        .bind(&job.cursor)
        .bind(job.done)
        .bind(job.finished_at)
        .bind(&job.id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Every job, newest first.
pub async fn jobs(conn: &mut Conn<'_>) -> Result<Vec<KeyJobRecord>, StoreError> {
    let sql = "SELECT id, kind, started_at, cursor, done, finished_at FROM key_jobs ORDER BY started_at DESC";
    Ok(on!(conn, |c| sqlx::query_as(sql).fetch_all(c).await)?)
}
