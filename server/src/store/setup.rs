//! One-time setup tokens that let the first system admin be created.

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};

/// Replaces any unused setup token with a new one.
pub async fn replace_token(
    conn: &mut Conn<'_>,
    hash: &[u8],
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    on!(conn, |c| sqlx::query(
        "DELETE FROM setup_tokens WHERE used_at IS NULL"
    )
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let sql = "INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)";
    on!(conn, |c| sqlx::query(sql)
        .bind(hash)
        .bind(now)
        .bind(expires_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Whether the token with this hash is unused and unexpired (it is not used up).
pub async fn is_live(
    conn: &mut Conn<'_>,
    hash: &[u8],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "SELECT expires_at FROM setup_tokens WHERE token_hash = $1 AND used_at IS NULL";
    let row: Option<(DateTime<Utc>,)> = on!(conn, |c| sqlx::query_as(sql)
        .bind(hash)
        .fetch_optional(c)
        .await)?;
    Ok(row.is_some_and(|(expires_at,)| expires_at > now))
}

/// Uses up the token with this hash; false if it is unknown, used or expired.
pub async fn consume(
    conn: &mut Conn<'_>,
    hash: &[u8],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "SELECT expires_at FROM setup_tokens WHERE token_hash = $1 AND used_at IS NULL";
    let row: Option<(DateTime<Utc>,)> = on!(conn, |c| sqlx::query_as(sql)
        .bind(hash)
        .fetch_optional(c)
        .await)?;
    match row {
        Some((expires_at,)) if expires_at > now => {
            let sql =
                "UPDATE setup_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL";
            let done = on!(conn, |c| sqlx::query(sql)
                .bind(now)
                .bind(hash)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))?;
            Ok(done == 1)
        }
        _ => Ok(false),
    }
}
