//! Sign-in sessions and their rotating refresh tokens.
//!
//! A session is one refresh-token family: every refresh marks the presented token used and
//! issues a new one in the same session. Tokens are stored as SHA-256 hashes only.

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};
use crate::domain::{SessionId, UserId};

/// A session as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionRecord {
    /// Its id (the `sid` claim of access tokens).
    pub id: SessionId,
    /// Whose.
    pub user_id: UserId,
    /// How it began (`password`, `oidc:...`).
    pub auth_method: String,
    /// Client's User-Agent at sign-in, encrypted under the user's key.
    pub user_agent_enc: Option<Vec<u8>>,
    /// Client's address at sign-in, encrypted under the user's key.
    pub ip_enc: Option<Vec<u8>>,
    /// Sign-in time.
    pub created_at: DateTime<Utc>,
    /// Last refresh.
    pub last_used_at: DateTime<Utc>,
    /// Hard end of the session.
    pub expires_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Why it was revoked.
    pub revoked_reason: Option<String>,
    /// The provider's session id (`sid`) for single sign-on sessions that carry one.
    pub sso_sid: Option<String>,
    /// The provider's ID token, kept as the `id_token_hint` of a later provider logout.
    pub sso_id_token: Option<String>,
}

/// What request authentication needs to know about a session.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionStatus {
    /// Whose.
    pub user_id: UserId,
    /// Hard end.
    pub expires_at: DateTime<Utc>,
    /// Set once revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Why it was revoked.
    pub revoked_reason: Option<String>,
    /// Sign-in time.
    pub created_at: DateTime<Utc>,
    /// The person's last activity recorded in storage (sign-in at least, for sessions begun
    /// since it is kept).
    pub last_active_at: Option<DateTime<Utc>>,
    /// The account's status.
    pub user_status: String,
}

/// A live session whose recorded activity is older than some cutoff.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct QuietSession {
    /// Its id.
    pub id: SessionId,
    /// Whose.
    pub user_id: UserId,
    /// Sign-in time.
    pub created_at: DateTime<Utc>,
    /// Last recorded activity.
    pub last_active_at: Option<DateTime<Utc>>,
}

/// A refresh token found by its hash.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RefreshRecord {
    /// The session (family) it belongs to.
    pub session_id: SessionId,
    /// Set once it was exchanged; a second exchange is reuse.
    pub used_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, user_id, auth_method, user_agent_enc, ip_enc, created_at, last_used_at, expires_at, \
                       revoked_at, revoked_reason, sso_sid, sso_id_token";

/// Stores a new session.
pub async fn insert(conn: &mut Conn<'_>, s: &SessionRecord) -> Result<(), StoreError> {
    let sql = "INSERT INTO sessions (id, user_id, auth_method, user_agent_enc, ip_enc, created_at, last_used_at, expires_at, \
               sso_sid, sso_id_token, last_active_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $6)";
    on!(conn, |c| sqlx::query(sql)
        .bind(s.id)
        .bind(s.user_id)
        .bind(&s.auth_method)
        .bind(&s.user_agent_enc)
        .bind(&s.ip_enc)
        .bind(s.created_at)
        .bind(s.last_used_at)
        .bind(s.expires_at)
        .bind(&s.sso_sid)
        .bind(&s.sso_id_token)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Stores the hash of a newly issued refresh token.
pub async fn insert_refresh_token(
    conn: &mut Conn<'_>,
    hash: &[u8],
    session: SessionId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO refresh_tokens (token_hash, session_id, issued_at) VALUES ($1, $2, $3)";
    on!(conn, |c| sqlx::query(sql)
        .bind(hash)
        .bind(session)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The refresh token with this hash.
pub async fn refresh_token(
    conn: &mut Conn<'_>,
    hash: &[u8],
) -> Result<Option<RefreshRecord>, StoreError> {
    let sql = "SELECT session_id, used_at FROM refresh_tokens WHERE token_hash = $1";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(hash)
        .fetch_optional(c)
        .await)?)
}

/// Marks a refresh token used; false if it already was (a concurrent exchange won).
pub async fn use_refresh_token(
    conn: &mut Conn<'_>,
    hash: &[u8],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL";
    let done = on!(conn, |c| sqlx::query(sql)
        .bind(now)
        .bind(hash)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// A session with its account's status.
pub async fn status(
    conn: &mut Conn<'_>,
    id: SessionId,
) -> Result<Option<SessionStatus>, StoreError> {
    let sql = "SELECT s.user_id, s.expires_at, s.revoked_at, s.revoked_reason, s.created_at, \
               s.last_active_at, u.status AS user_status \
               FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// The session with this id.
pub async fn by_id(
    conn: &mut Conn<'_>,
    id: SessionId,
) -> Result<Option<SessionRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM sessions WHERE id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// Records a refresh on the session.
pub async fn touch(
    conn: &mut Conn<'_>,
    id: SessionId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    on!(conn, |c| sqlx::query(
        "UPDATE sessions SET last_used_at = $1 WHERE id = $2"
    )
    .bind(now)
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Records the last activity seen in each session, never moving one back.
pub async fn record_activity(
    conn: &mut Conn<'_>,
    seen: &[(SessionId, DateTime<Utc>)],
) -> Result<(), StoreError> {
    let sql = "UPDATE sessions SET last_active_at = $1 WHERE id = $2 \
               AND (last_active_at IS NULL OR last_active_at < $1)";
    for (id, at) in seen {
        on!(conn, |c| sqlx::query(sql)
            .bind(*at)
            .bind(*id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Live sessions (neither revoked nor past their end) whose recorded activity, or sign-in
/// when none is recorded, is before `before`.
pub async fn quiet_since(
    conn: &mut Conn<'_>,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<QuietSession>, StoreError> {
    let sql = "SELECT id, user_id, created_at, last_active_at FROM sessions \
               WHERE revoked_at IS NULL AND expires_at > $1 \
               AND COALESCE(last_active_at, created_at) < $2";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(now)
        .bind(before)
        .fetch_all(c)
        .await)?)
}

/// A user's sessions that are neither revoked nor past their end, newest first.
pub async fn list_active(
    conn: &mut Conn<'_>,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<Vec<SessionRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id DESC"
    );
    let all: Vec<SessionRecord> =
        on!(conn, |c| sqlx::query_as(&sql).bind(user).fetch_all(c).await)?;
    Ok(all.into_iter().filter(|s| s.expires_at > now).collect())
}

/// Revokes one session; false if it was already revoked or does not exist.
pub async fn revoke(
    conn: &mut Conn<'_>,
    id: SessionId,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<bool, StoreError> {
    let sql = "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL";
    let done = on!(conn, |c| sqlx::query(sql)
        .bind(now)
        .bind(reason)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Revokes every live session of a user and returns their ids.
pub async fn revoke_all(
    conn: &mut Conn<'_>,
    user: UserId,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<Vec<SessionId>, StoreError> {
    let ids: Vec<(SessionId,)> = on!(conn, |c| sqlx::query_as(
        "SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL"
    )
    .bind(user)
    .fetch_all(c)
    .await)?;
    let sql = "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE user_id = $3 AND revoked_at IS NULL";
    on!(conn, |c| sqlx::query(sql)
        .bind(now)
        .bind(reason)
        .bind(user)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// Revokes every live session of `user` but `keep`; returns the ones revoked.
pub async fn revoke_all_except(
    conn: &mut Conn<'_>,
    user: UserId,
    keep: SessionId,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<Vec<SessionId>, StoreError> {
    let ids: Vec<(SessionId,)> = on!(conn, |c| sqlx::query_as(
        "SELECT id FROM sessions WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL"
    )
    .bind(user)
    .bind(keep)
    .fetch_all(c)
    .await)?;
    let sql = "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
               WHERE user_id = $3 AND id <> $4 AND revoked_at IS NULL";
    on!(conn, |c| sqlx::query(sql)
        .bind(now)
        .bind(reason)
        .bind(user)
        .bind(keep)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// Revokes the live sessions begun through `auth_method` (an `oidc:<provider>` method) that
/// match the provider session `sid` and/or the account `user`; returns them with their owners.
pub async fn revoke_sso(
    conn: &mut Conn<'_>,
    auth_method: &str,
    sid: Option<&str>,
    user: Option<UserId>,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<Vec<(SessionId, UserId)>, StoreError> {
    if sid.is_none() && user.is_none() {
        return Ok(Vec::new());
    }
    let select = "SELECT id, user_id FROM sessions WHERE auth_method = $1 AND revoked_at IS NULL \
                  AND ($2 IS NULL OR sso_sid = $2) AND ($3 IS NULL OR user_id = $3)";
    let select_pg =
        "SELECT id, user_id FROM sessions WHERE auth_method = $1 AND revoked_at IS NULL \
                     AND ($2::text IS NULL OR sso_sid = $2) AND ($3::uuid IS NULL OR user_id = $3)";
    let found: Vec<(SessionId, UserId)> = match conn {
        Conn::Sqlite(c) => {
            sqlx::query_as(select)
                .bind(auth_method)
                .bind(sid)
                .bind(user)
                .fetch_all(&mut **c)
                .await?
        }
        Conn::Pg(c) => {
            sqlx::query_as(select_pg)
                .bind(auth_method)
                .bind(sid)
                .bind(user)
                .fetch_all(&mut **c)
                .await?
        }
    };
    let mut revoked = Vec::new();
    for (id, owner) in found {
        if revoke(conn, id, now, reason).await? {
            revoked.push((id, owner));
        }
    }
    Ok(revoked)
}

/// A session's encrypted values, for re-encryption under a new key version.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionSecrets {
    /// The session.
    pub id: SessionId,
    /// Whose (the key's scope).
    pub user_id: UserId,
    /// The provider's ID token, encrypted and base64-encoded.
    pub sso_id_token: Option<String>,
    /// The User-Agent, encrypted.
    pub user_agent_enc: Option<Vec<u8>>,
    /// The address, encrypted.
    pub ip_enc: Option<Vec<u8>>,
}

/// How many sessions keep an encrypted value (ID token, User-Agent or address).
pub async fn count_encrypted(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    Ok(on!(conn, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM sessions WHERE sso_id_token IS NOT NULL \
         OR user_agent_enc IS NOT NULL OR ip_enc IS NOT NULL"
    )
    .fetch_one(c)
    .await)?)
}

/// Up to `limit` sessions keeping an encrypted value, after `cursor` in id order.
pub async fn secrets_after(
    conn: &mut Conn<'_>,
    cursor: Option<SessionId>,
    limit: i64,
) -> Result<Vec<SessionSecrets>, StoreError> {
    const WHERE: &str =
        "(sso_id_token IS NOT NULL OR user_agent_enc IS NOT NULL OR ip_enc IS NOT NULL)";
    Ok(match cursor {
        Some(id) => {
            let sql = format!(
                "SELECT id, user_id, sso_id_token, user_agent_enc, ip_enc FROM sessions \
                 WHERE {WHERE} AND id > $1 ORDER BY id LIMIT $2"
            );
            on!(conn, |c| sqlx::query_as(&sql)
                .bind(id)
                .bind(limit)
                .fetch_all(c)
                .await)?
        }
        None => {
            let sql = format!(
                "SELECT id, user_id, sso_id_token, user_agent_enc, ip_enc FROM sessions \
                 WHERE {WHERE} ORDER BY id LIMIT $1"
            );
            on!(conn, |c| sqlx::query_as(&sql)
                .bind(limit)
                .fetch_all(c)
                .await)?
        }
    })
}

/// Replaces a session's stored ID token ciphertext.
pub async fn set_id_token(
    conn: &mut Conn<'_>,
    id: SessionId,
    token: &str,
) -> Result<(), StoreError> {
    on!(conn, |c| sqlx::query(
        "UPDATE sessions SET sso_id_token = $2 WHERE id = $1"
    )
    .bind(id)
    .bind(token)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Stores a session's client details encrypted and empties the plaintext columns (the
/// start-up backfill; also re-encryption under a new key version).
pub async fn set_client(
    conn: &mut Conn<'_>,
    id: SessionId,
    user_agent_enc: Option<&[u8]>,
    ip_enc: Option<&[u8]>,
) -> Result<(), StoreError> {
    let sql = "UPDATE sessions SET user_agent = NULL, ip = NULL, user_agent_enc = $1, ip_enc = $2 \
               WHERE id = $3";
    on!(conn, |c| sqlx::query(sql)
        .bind(user_agent_enc)
        .bind(ip_enc)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A session still holding its client's User-Agent or address in plaintext.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LegacyClient {
    /// The session.
    pub id: SessionId,
    /// Whose.
    pub user_id: UserId,
    /// Plaintext User-Agent.
    pub user_agent: Option<String>,
    /// Plaintext address.
    pub ip: Option<String>,
}

/// Up to `limit` sessions with a plaintext User-Agent or address.
pub async fn legacy_plaintext(
    conn: &mut Conn<'_>,
    limit: i64,
) -> Result<Vec<LegacyClient>, StoreError> {
    let sql = "SELECT id, user_id, user_agent, ip FROM sessions \
               WHERE user_agent IS NOT NULL OR ip IS NOT NULL ORDER BY id LIMIT $1";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}
