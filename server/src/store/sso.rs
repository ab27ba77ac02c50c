//! Single sign-on: identity links, pending sign-ins, and workspaces that require SSO.
//!
//! An identity is a (provider, subject) pair bound to one account. A pending sign-in is kept
//! from the redirect to the provider until its callback, keyed by the hash of its `state`,
//! and can be taken exactly once. A hand-off carries a finished browser sign-in to the web
//! client: keyed by the hash of a one-time code, bound to the browser's cookie, taken once.

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};
use crate::domain::{SessionId, UserId, WorkspaceId};

/// A sign-in between the redirect to the provider and its callback.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LoginStateRecord {
    /// SHA-256 of the `state` parameter.
    pub state_hash: Vec<u8>,
    /// Provider id.
    pub provider: String,
    /// SHA-256 of the browser-binding cookie set at the redirect.
    pub browser_hash: Vec<u8>,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier.
    pub pkce_verifier: String,
    /// When the sign-in began.
    pub created_at: DateTime<Utc>,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// A finished browser sign-in waiting for the web client to redeem it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct HandoffRecord {
    /// SHA-256 of the one-time hand-off code.
    pub code_hash: Vec<u8>,
    /// Provider id.
    pub provider: String,
    /// SHA-256 of the browser-binding cookie the code must come with.
    pub browser_hash: Vec<u8>,
    /// The session the sign-in started.
    pub session_id: SessionId,
    /// Its account.
    pub user_id: UserId,
    /// The session's first refresh token, sealed under a key derived from the code.
    pub sealed_refresh: Vec<u8>,
    /// When the sign-in finished.
    pub created_at: DateTime<Utc>,
    /// When the code stops being accepted.
    pub expires_at: DateTime<Utc>,
}

const HANDOFF_COLUMNS: &str =
    "code_hash, provider, browser_hash, session_id, user_id, sealed_refresh, created_at, expires_at";

/// A link between an account and a provider's subject.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct IdentityRecord {
    /// Provider id.
    pub provider: String,
    /// The provider's stable subject identifier.
    pub subject: String,
    /// The linked account.
    pub user_id: UserId,
}

/// Stores a pending sign-in.
pub async fn insert_login_state(
    conn: &mut Conn<'_>,
    s: &LoginStateRecord,
) -> Result<(), StoreError> {
    let sql =
        "INSERT INTO sso_login_states (state_hash, provider, browser_hash, nonce, pkce_verifier, \
               created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
    on!(conn, |c| sqlx::query(sql)
        .bind(&s.state_hash)
        .bind(&s.provider)
        .bind(&s.browser_hash)
        .bind(&s.nonce)
        .bind(&s.pkce_verifier)
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Removes and returns the pending sign-in with this state hash; a second take finds nothing.
pub async fn take_login_state(
    conn: &mut Conn<'_>,
    state_hash: &[u8],
) -> Result<Option<LoginStateRecord>, StoreError> {
    let sql =
        "SELECT state_hash, provider, browser_hash, nonce, pkce_verifier, created_at, expires_at \
               FROM sso_login_states WHERE state_hash = $1";
    let found: Option<LoginStateRecord> = on!(conn, |c| sqlx::query_as(sql)
        .bind(state_hash)
        .fetch_optional(c)
        .await)?;
    if found.is_none() {
        return Ok(None);
    }
    let deleted = on!(conn, |c| sqlx::query(
        "DELETE FROM sso_login_states WHERE state_hash = $1"
    )
    .bind(state_hash)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(found.filter(|_| deleted == 1))
}

/// Forgets pending sign-ins past their expiry.
pub async fn delete_expired_login_states(
    conn: &mut Conn<'_>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(on!(conn, |c| sqlx::query(
        "DELETE FROM sso_login_states WHERE expires_at < $1"
    )
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?)
}

/// How many pending sign-ins are stored.
pub async fn count_login_states(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    let row: (i64,) = on!(conn, |c| sqlx::query_as(
        "SELECT COUNT(*) FROM sso_login_states"
    )
    .fetch_one(c)
    .await)?;
    Ok(row.0)
}

/// Stores a hand-off.
pub async fn insert_handoff(conn: &mut Conn<'_>, h: &HandoffRecord) -> Result<(), StoreError> {
    let sql = "INSERT INTO sso_handoffs (code_hash, provider, browser_hash, session_id, user_id, \
               sealed_refresh, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    on!(conn, |c| sqlx::query(sql)
        .bind(&h.code_hash)
        .bind(&h.provider)
        .bind(&h.browser_hash)
        .bind(h.session_id)
        .bind(h.user_id)
        .bind(&h.sealed_refresh)
        .bind(h.created_at)
        .bind(h.expires_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Removes and returns the hand-off with this code hash; a second take finds nothing.
pub async fn take_handoff(
    conn: &mut Conn<'_>,
    code_hash: &[u8],
) -> Result<Option<HandoffRecord>, StoreError> {
    let sql = format!("SELECT {HANDOFF_COLUMNS} FROM sso_handoffs WHERE code_hash = $1");
    let found: Option<HandoffRecord> = on!(conn, |c| sqlx::query_as(&sql)
        .bind(code_hash)
        .fetch_optional(c)
        .await)?;
    if found.is_none() {
        return Ok(None);
    }
    let deleted = on!(conn, |c| sqlx::query(
        "DELETE FROM sso_handoffs WHERE code_hash = $1"
    )
    .bind(code_hash)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(found.filter(|_| deleted == 1))
}

/// Whether a hand-off with this code hash is stored (a read, for refusing unknown codes
/// without a write).
pub async fn handoff_exists(conn: &mut Conn<'_>, code_hash: &[u8]) -> Result<bool, StoreError> {
    let row: (i64,) = on!(conn, |c| sqlx::query_as(
        "SELECT COUNT(*) FROM sso_handoffs WHERE code_hash = $1"
    )
    .bind(code_hash)
    .fetch_one(c)
    .await)?;
    Ok(row.0 > 0)
}

/// Removes and returns (at most `limit`) hand-offs past their expiry.
pub async fn take_expired_handoffs(
    conn: &mut Conn<'_>,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<HandoffRecord>, StoreError> {
    let sql = format!(
        "SELECT {HANDOFF_COLUMNS} FROM sso_handoffs WHERE expires_at < $1 ORDER BY expires_at LIMIT $2"
    );
    let expired: Vec<HandoffRecord> = on!(conn, |c| sqlx::query_as(&sql)
        .bind(now)
        .bind(limit)
        .fetch_all(c)
        .await)?;
    for h in &expired {
        on!(conn, |c| sqlx::query(
            "DELETE FROM sso_handoffs WHERE code_hash = $1"
        )
        .bind(&h.code_hash)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(expired)
}

/// The account linked to a provider's subject.
pub async fn identity(
    conn: &mut Conn<'_>,
    provider: &str,
    subject: &str,
) -> Result<Option<IdentityRecord>, StoreError> {
    let sql = "SELECT provider, subject, user_id FROM sso_identities WHERE provider = $1 AND subject = $2";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(provider)
        .bind(subject)
        .fetch_optional(c)
        .await)?)
}

/// Links a provider's subject to an account; an existing link is a [`StoreError::Constraint`].
pub async fn insert_identity(
    conn: &mut Conn<'_>,
    provider: &str,
    subject: &str,
    user: UserId,
    email: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO sso_identities (provider, subject, user_id, email, created_at, last_login_at) \
               VALUES ($1, $2, $3, $4, $5, $5)";
    on!(conn, |c| sqlx::query(sql)
        .bind(provider)
        .bind(subject)
        .bind(user)
        .bind(email)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Records a sign-in through a link, with the email the provider asserted this time.
pub async fn touch_identity(
    conn: &mut Conn<'_>,
    provider: &str,
    subject: &str,
    email: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = "UPDATE sso_identities SET email = $1, last_login_at = $2 WHERE provider = $3 AND subject = $4";
    on!(conn, |c| sqlx::query(sql)
        .bind(email)
        .bind(now)
        .bind(provider)
        .bind(subject)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Sets whether a workspace requires single sign-on; false if there is no such workspace.
pub async fn set_workspace_required(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    required: bool,
) -> Result<bool, StoreError> {
    let done = on!(conn, |c| sqlx::query(
        "UPDATE workspaces SET sso_required = $1 WHERE id = $2"
    )
    .bind(required)
    .bind(workspace)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Whether a workspace requires single sign-on.
pub async fn workspace_required(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Option<bool>, StoreError> {
    let row: Option<(bool,)> = on!(conn, |c| sqlx::query_as(
        "SELECT sso_required FROM workspaces WHERE id = $1"
    )
    .bind(workspace)
    .fetch_optional(c)
    .await)?;
    Ok(row.map(|(r,)| r))
}

/// How many SSO-requiring workspaces a user belongs to.
pub async fn required_workspaces_of(conn: &mut Conn<'_>, user: UserId) -> Result<i64, StoreError> {
    let sql = "SELECT COUNT(*) FROM memberships m JOIN workspaces w ON w.id = m.workspace_id \
               WHERE m.user_id = $1 AND w.sso_required = TRUE";
    let row: (i64,) = on!(conn, |c| sqlx::query_as(sql).bind(user).fetch_one(c).await)?;
    Ok(row.0)
}
