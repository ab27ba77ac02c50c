//! Accounts.
//!
//! An erased account (`erased_at` set) is never written again: every update here leaves it
//! as erasure left it, so a request in flight when the account was emptied changes nothing.

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};
use crate::domain::{RoleId, UserId};

/// An account as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserRecord {
    /// Its id.
    pub id: UserId,
    /// Email as written by the user, encrypted under the user's key.
    pub email_enc: Option<Vec<u8>>,
    /// Shown to others, encrypted under the user's key.
    pub display_name_enc: Option<Vec<u8>>,
    /// PHC-format argon2id hash; `None` for accounts that only sign in through SSO.
    pub password_hash: Option<String>,
    /// Deployment-wide role, if any.
    pub system_role_id: Option<RoleId>,
    /// `active` or `disabled`.
    pub status: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Whether the email is known to belong to the account's holder (an administrator entered
    /// it, or an identity provider verified it); an invitee's typed email is not.
    pub email_verified: bool,
    /// When the account was erased (GDPR Art. 17): it keeps no personal data.
    #[sqlx(default)]
    pub erased_at: Option<DateTime<Utc>>,
    /// The person's out-of-office period (JSON), encrypted under the user's key; `None` when
    /// none is set.
    pub out_of_office_enc: Option<Vec<u8>>,
}

/// What creating an account needs.
pub struct NewUser<'a> {
    /// Fresh id.
    pub id: UserId,
    /// Encrypted email.
    pub email_enc: &'a [u8],
    /// Blind index of the case-folded email, which identifies the account.
    pub email_index: &'a str,
    /// Encrypted display name.
    pub display_name_enc: &'a [u8],
    /// Password hash, if the account has a password.
    pub password_hash: Option<&'a str>,
    /// System role, if any.
    pub system_role_id: Option<RoleId>,
    /// Whether the email is verified.
    pub email_verified: bool,
    /// Creation time.
    pub now: DateTime<Utc>,
}

const COLUMNS: &str = "id, email_enc, display_name_enc, password_hash, system_role_id, status, created_at, updated_at, email_verified, erased_at, out_of_office_enc";

/// Creates an account; a taken email is a [`StoreError::Constraint`].
pub async fn insert(conn: &mut Conn<'_>, user: &NewUser<'_>) -> Result<(), StoreError> {
    // The legacy plaintext columns of the first schema stay empty.
    let sql = "INSERT INTO users (id, email, email_enc, email_index, display_name, display_name_enc, password_hash, \
               system_role_id, status, created_at, updated_at, email_verified) \
               VALUES ($1, '', $2, $3, '', $4, $5, $6, 'active', $7, $7, $8)";
    on!(conn, |c| sqlx::query(sql)
        .bind(user.id)
        .bind(user.email_enc)
        .bind(user.email_index)
        .bind(user.display_name_enc)
        .bind(user.password_hash)
        .bind(user.system_role_id)
        .bind(user.now)
        .bind(user.email_verified)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The account with this id.
pub async fn by_id(conn: &mut Conn<'_>, id: UserId) -> Result<Option<UserRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// The account whose email has the blind index `index`.
pub async fn by_email_index(
    conn: &mut Conn<'_>,
    index: &str,
) -> Result<Option<UserRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE email_index = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(index)
        .fetch_optional(c)
        .await)?)
}

/// An account still holding plaintext personal data from before encryption at rest.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LegacyPlaintext {
    /// The account.
    pub id: UserId,
    /// Plaintext email.
    pub email: String,
    /// Plaintext display name.
    pub display_name: String,
}

/// Accounts whose personal data is not encrypted yet, at most `limit`.
pub async fn legacy_plaintext(
    conn: &mut Conn<'_>,
    limit: i64,
) -> Result<Vec<LegacyPlaintext>, StoreError> {
    let sql =
        "SELECT id, email, display_name FROM users WHERE email_enc IS NULL AND erased_at IS NULL ORDER BY id LIMIT $1";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// Replaces an account's personal data by its encrypted form and blind index, and empties
/// the plaintext columns.
pub async fn set_encrypted_profile(
    conn: &mut Conn<'_>,
    id: UserId,
    email_enc: &[u8],
    email_index: &str,
    display_name_enc: &[u8],
) -> Result<(), StoreError> {
    let sql = "UPDATE users SET email = '', display_name = '', email_enc = $1, email_index = $2, \
               display_name_enc = $3 WHERE id = $4 AND erased_at IS NULL";
    on!(conn, |c| sqlx::query(sql)
        .bind(email_enc)
        .bind(email_index)
        .bind(display_name_enc)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Replaces the encrypted personal data (re-encryption under a new key version).
pub async fn reencrypt_profile(
    conn: &mut Conn<'_>,
    id: UserId,
    email_enc: &[u8],
    display_name_enc: &[u8],
) -> Result<(), StoreError> {
    let sql = "UPDATE users SET email_enc = $1, display_name_enc = $2 WHERE id = $3 AND erased_at IS NULL";
    on!(conn, |c| sqlx::query(sql)
        .bind(email_enc)
        .bind(display_name_enc)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The system role of an active account.
pub async fn system_role(conn: &mut Conn<'_>, id: UserId) -> Result<Option<RoleId>, StoreError> {
    let sql = "SELECT system_role_id FROM users WHERE id = $1 AND status = 'active'";
    let row: Option<(Option<RoleId>,)> = on!(conn, |c| sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(c)
        .await)?;
    Ok(row.and_then(|(role,)| role))
}

/// Sets or clears an account's system role; false if there is no such account.
pub async fn set_system_role(
    conn: &mut Conn<'_>,
    id: UserId,
    role: Option<RoleId>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql =
        "UPDATE users SET system_role_id = $1, updated_at = $2 WHERE id = $3 AND erased_at IS NULL";
    let done = on!(conn, |c| sqlx::query(sql)
        .bind(role)
        .bind(now)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Sets an account's status (`active` or `disabled`); false if there is no such account or it
/// was erased (an erased account stays disabled).
pub async fn set_status(
    conn: &mut Conn<'_>,
    id: UserId,
    active: bool,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE users SET status = $1, updated_at = $2 WHERE id = $3 AND erased_at IS NULL";
    let done = on!(conn, |c| sqlx::query(sql)
        .bind(if active { "active" } else { "disabled" })
        .bind(now)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Replaces an account's password hash.
pub async fn set_password_hash(
    conn: &mut Conn<'_>,
    id: UserId,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql =
        "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3 AND erased_at IS NULL";
    let done = on!(conn, |c| sqlx::query(sql)
        .bind(hash)
        .bind(now)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Replaces an account's encrypted display name.
pub async fn set_display_name(
    conn: &mut Conn<'_>,
    id: UserId,
    display_name_enc: &[u8],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE users SET display_name_enc = $1, updated_at = $2 WHERE id = $3 AND erased_at IS NULL";
    let done = on!(conn, |c| sqlx::query(sql)
        .bind(display_name_enc)
        .bind(now)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Replaces an account's encrypted email, its blind index and whether it is verified; an
/// email another account holds is a [`StoreError::Constraint`].
pub async fn set_email(
    conn: &mut Conn<'_>,
    id: UserId,
    email_enc: &[u8],
    email_index: &str,
    email_verified: bool,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE users SET email_enc = $1, email_index = $2, email_verified = $3, \
               updated_at = $4 WHERE id = $5 AND erased_at IS NULL";
    let done = on!(conn, |c| sqlx::query(sql)
        .bind(email_enc)
        .bind(email_index)
        .bind(email_verified)
        .bind(now)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Sets (sealed) or clears an account's out-of-office period.
pub async fn set_out_of_office(
    conn: &mut Conn<'_>,
    id: UserId,
    out_of_office_enc: Option<&[u8]>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE users SET out_of_office_enc = $1, updated_at = $2 WHERE id = $3 AND erased_at IS NULL";
    let done = on!(conn, |c| sqlx::query(sql)
        .bind(out_of_office_enc)
        .bind(now)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Accounts in id (creation) order, after `after`, at most `limit`.
pub async fn list(
    conn: &mut Conn<'_>,
    after: Option<UserId>,
    limit: i64,
) -> Result<Vec<UserRecord>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM users WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2");
    let sql_pg = format!(
        "SELECT {COLUMNS} FROM users WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"
    );
    Ok(match conn {
        Conn::Sqlite(c) => {
            sqlx::query_as(&sql)
                .bind(after)
                .bind(limit)
                .fetch_all(&mut **c)
                .await?
        }
        Conn::Pg(c) => {
            sqlx::query_as(&sql_pg)
                .bind(after)
                .bind(limit)
                .fetch_all(&mut **c)
                .await?
        }
    })
}

/// How many accounts exist.
pub async fn count(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    let row: (i64,) = on!(conn, |c| sqlx::query_as("SELECT COUNT(*) FROM users")
        .fetch_one(c)
        .await)?;
    Ok(row.0)
}

/// How many active accounts hold a system role.
pub async fn count_with_system_role(conn: &mut Conn<'_>, role: RoleId) -> Result<i64, StoreError> {
    let sql = "SELECT COUNT(*) FROM users WHERE system_role_id = $1 AND status = 'active'";
    let row: (i64,) = on!(conn, |c| sqlx::query_as(sql).bind(role).fetch_one(c).await)?;
    Ok(row.0)
}

/// The active accounts holding a system role (the compliance officers, to be told of an
/// emergency access).
pub async fn holders_of_system_role(
    conn: &mut Conn<'_>,
    role: RoleId,
) -> Result<Vec<UserId>, StoreError> {
    let sql = "SELECT id FROM users WHERE system_role_id = $1 AND status = 'active' ORDER BY id";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .bind(role)
        .fetch_all(c)
        .await)?)
}
