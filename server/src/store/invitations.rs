//! Invitations to join a workspace, found by the hash of their token.

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};
use crate::domain::{InvitationId, RoleId, UserId, WorkspaceId};

/// An invitation as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct InvitationRecord {
    /// Its id.
    pub id: InvitationId,
    /// Where it leads.
    pub workspace_id: WorkspaceId,
    /// If set, only the email with this blind index may accept it.
    pub email_index: Option<String>,
    /// That email, encrypted under the workspace's key.
    pub email_enc: Option<Vec<u8>>,
    /// The role a person joins with.
    pub role_id: RoleId,
    /// Who created it.
    pub created_by: UserId,
    /// When.
    pub created_at: DateTime<Utc>,
    /// After this it cannot be accepted.
    pub expires_at: DateTime<Utc>,
    /// How many people may accept it.
    pub max_uses: i64,
    /// How many have.
    pub uses: i64,
    /// Set once revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, workspace_id, email_index, email_enc, role_id, created_by, created_at, expires_at, max_uses, uses, revoked_at";

/// Stores a new invitation with the hash of its token.
pub async fn insert(
    conn: &mut Conn<'_>,
    inv: &InvitationRecord,
    token_hash: &[u8],
) -> Result<(), StoreError> {
    let sql = "INSERT INTO invitations (id, workspace_id, token_hash, email_index, email_enc, role_id, created_by, \
               created_at, expires_at, max_uses, uses) VALUES ($1, $2, $3, $4, $10, $5, $6, $7, $8, $9, 0)";
    on!(conn, |c| sqlx::query(sql)
        .bind(inv.id)
        .bind(inv.workspace_id)
        .bind(token_hash)
        .bind(&inv.email_index)
        .bind(inv.role_id)
        .bind(inv.created_by)
        .bind(inv.created_at)
        .bind(inv.expires_at)
        .bind(inv.max_uses)
        .bind(&inv.email_enc)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The invitation whose token hashes to `token_hash`.
pub async fn by_token_hash(
    conn: &mut Conn<'_>,
    token_hash: &[u8],
) -> Result<Option<InvitationRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM invitations WHERE token_hash = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(token_hash)
        .fetch_optional(c)
        .await)?)
}

/// Counts one acceptance; false if it is used up or revoked meanwhile.
pub async fn consume(conn: &mut Conn<'_>, id: InvitationId) -> Result<bool, StoreError> {
    let sql = "UPDATE invitations SET uses = uses + 1 WHERE id = $1 AND uses < max_uses AND revoked_at IS NULL";
    let done = on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// A workspace's invitations, newest first.
pub async fn for_workspace(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<InvitationRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM invitations WHERE workspace_id = $1 ORDER BY id DESC");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .fetch_all(c)
        .await)?)
}

/// Revokes an invitation of a workspace; false if there is no such live invitation.
pub async fn revoke(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    id: InvitationId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE invitations SET revoked_at = $1 WHERE id = $2 AND workspace_id = $3 AND revoked_at IS NULL";
    let done = on!(conn, |c| sqlx::query(sql)
        .bind(now)
        .bind(id)
        .bind(workspace)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// How many invitations keep an (encrypted) email address.
pub async fn count_with_email(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    Ok(on!(conn, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM invitations WHERE email_enc IS NOT NULL"
    )
    .fetch_one(c)
    .await)?)
}

/// Up to `limit` invitations keeping an email, after `cursor` in id order.
pub async fn emails_after(
    conn: &mut Conn<'_>,
    cursor: Option<InvitationId>,
    limit: i64,
) -> Result<Vec<(InvitationId, WorkspaceId, Vec<u8>)>, StoreError> {
    Ok(match cursor {
        Some(id) => on!(conn, |c| {
            sqlx::query_as(
            "SELECT id, workspace_id, email_enc FROM invitations WHERE email_enc IS NOT NULL AND id > $1 ORDER BY id LIMIT $2"
        )
        .bind(id)
        .bind(limit)
        .fetch_all(c)
        .await
        })?,
        None => on!(conn, |c| {
            sqlx::query_as(
            "SELECT id, workspace_id, email_enc FROM invitations WHERE email_enc IS NOT NULL ORDER BY id LIMIT $1"
        )
        .bind(limit)
        .fetch_all(c)
        .await
        })?,
    })
}

/// Replaces an invitation's email ciphertext.
pub async fn set_email_enc(
    conn: &mut Conn<'_>,
    id: InvitationId,
    email: &[u8],
) -> Result<(), StoreError> {
    on!(conn, |c| sqlx::query(
        "UPDATE invitations SET email_enc = $2 WHERE id = $1"
    )
    .bind(id)
    .bind(email)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}
