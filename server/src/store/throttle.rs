//! Counters of failed sign-ins per account and per client address.
//!
//! Keys are opaque to storage (`acct:<hash>`, `ip:<addr>`); the auth service owns the policy.

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};

/// A throttle counter.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ThrottleRecord {
    /// Failures since `window_start`.
    pub failures: i64,
    /// Start of the counting window.
    pub window_start: DateTime<Utc>,
    /// Refuse attempts until then.
    pub locked_until: Option<DateTime<Utc>>,
}

/// The counter for a key.
pub async fn get(conn: &mut Conn<'_>, key: &str) -> Result<Option<ThrottleRecord>, StoreError> {
    let sql =
        "SELECT failures, window_start, locked_until FROM login_throttle WHERE throttle_key = $1";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(key)
        .fetch_optional(c)
        .await)?)
}

/// Writes the counter for a key.
pub async fn put(
    conn: &mut Conn<'_>,
    key: &str,
    record: &ThrottleRecord,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO login_throttle (throttle_key, failures, window_start, locked_until) VALUES ($1, $2, $3, $4) \
               ON CONFLICT (throttle_key) DO UPDATE SET failures = excluded.failures, \
               window_start = excluded.window_start, locked_until = excluded.locked_until";
    on!(conn, |c| sqlx::query(sql)
        .bind(key)
        .bind(record.failures)
        .bind(record.window_start)
        .bind(record.locked_until)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Forgets the counter for a key (after a successful sign-in).
pub async fn clear(conn: &mut Conn<'_>, key: &str) -> Result<(), StoreError> {
    on!(conn, |c| sqlx::query(
        "DELETE FROM login_throttle WHERE throttle_key = $1"
    )
    .bind(key)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}
