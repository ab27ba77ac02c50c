//! Roles and their permission sets.

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};
use crate::domain::{RoleId, WorkspaceId};

/// A role as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RoleRecord {
    /// Its id.
    pub id: RoleId,
    /// `system` or `workspace`.
    pub scope: String,
    /// Set for custom roles defined in one workspace.
    pub workspace_id: Option<WorkspaceId>,
    /// A built-in role's name; for a custom role, the blind index of its workspace and name
    /// (unique per workspace), its name being stored only encrypted.
    pub name: String,
    /// What a built-in role is for (custom roles: empty, see `description_enc`).
    pub description: String,
    /// A custom role's name, encrypted under its workspace's key.
    pub name_enc: Option<Vec<u8>>,
    /// A custom role's description, encrypted under its workspace's key.
    pub description_enc: Option<Vec<u8>>,
    /// Seeded by Concord and not editable.
    pub builtin: bool,
    /// When it was defined.
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, scope, workspace_id, name, description, name_enc, description_enc, builtin, created_at";

/// Creates a role or brings a built-in one up to date, and sets its permissions exactly.
pub async fn put(
    conn: &mut Conn<'_>,
    role: &RoleRecord,
    permissions: &[&str],
) -> Result<(), StoreError> {
    let exists = by_id(conn, role.id).await?.is_some();
    if exists {
        let sql =
            "UPDATE roles SET name = $1, description = $2, name_enc = $3, description_enc = $4 \
                   WHERE id = $5";
        on!(conn, |c| sqlx::query(sql)
            .bind(&role.name)
            .bind(&role.description)
            .bind(&role.name_enc)
            .bind(&role.description_enc)
            .bind(role.id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    } else {
        let sql =
            "INSERT INTO roles (id, scope, workspace_id, name, description, name_enc, description_enc, \
             builtin, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        on!(conn, |c| sqlx::query(sql)
            .bind(role.id)
            .bind(&role.scope)
            .bind(role.workspace_id)
            .bind(&role.name)
            .bind(&role.description)
            .bind(&role.name_enc)
            .bind(&role.description_enc)
            .bind(role.builtin)
            .bind(role.created_at)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    on!(conn, |c| sqlx::query(
        "DELETE FROM role_permissions WHERE role_id = $1"
    )
    .bind(role.id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    for permission in permissions {
        let sql = "INSERT INTO role_permissions (role_id, permission) VALUES ($1, $2)";
        on!(conn, |c| sqlx::query(sql)
            .bind(role.id)
            .bind(*permission)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// The role with this id.
pub async fn by_id(conn: &mut Conn<'_>, id: RoleId) -> Result<Option<RoleRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM roles WHERE id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// The permission names a role grants.
pub async fn permissions(conn: &mut Conn<'_>, id: RoleId) -> Result<Vec<String>, StoreError> {
    let sql = "SELECT permission FROM role_permissions WHERE role_id = $1 ORDER BY permission";
    let rows: Vec<(String,)> = on!(conn, |c| sqlx::query_as(sql).bind(id).fetch_all(c).await)?;
    Ok(rows.into_iter().map(|(p,)| p).collect())
}

/// The system-scope role with this name.
pub async fn system_role_by_name(
    conn: &mut Conn<'_>,
    name: &str,
) -> Result<Option<RoleRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM roles WHERE scope = 'system' AND name = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(name)
        .fetch_optional(c)
        .await)?)
}

/// The roles usable in a workspace: built-in workspace roles and its own custom roles
/// (built-in first, then by creation; custom names are encrypted, so callers that show them
/// sort after decrypting).
pub async fn for_workspace(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<RoleRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM roles WHERE scope = 'workspace' AND (workspace_id IS NULL OR workspace_id = $1) \
         ORDER BY builtin DESC, created_at, name, id"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .fetch_all(c)
        .await)?)
}

/// The role usable in `workspace` stored under `name`: a built-in role's name, or a custom
/// role's blind index.
pub async fn in_workspace_by_stored_name(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    name: &str,
) -> Result<Option<RoleRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM roles WHERE scope = 'workspace' \
         AND (workspace_id IS NULL OR workspace_id = $1) AND name = $2"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .bind(name)
        .fetch_optional(c)
        .await)?)
}

/// Up to `limit` custom roles whose name and description are still in plaintext.
pub async fn legacy_plaintext(
    conn: &mut Conn<'_>,
    limit: i64,
) -> Result<Vec<RoleRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM roles WHERE builtin = FALSE AND workspace_id IS NOT NULL \
         AND name_enc IS NULL ORDER BY id LIMIT $1"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// Stores a custom role's name and description encrypted, its name's blind index in `name`,
/// and empties the plaintext description; also used to re-encrypt them.
pub async fn set_encrypted(
    conn: &mut Conn<'_>,
    id: RoleId,
    name_index: &str,
    name_enc: &[u8],
    description_enc: Option<&[u8]>,
) -> Result<(), StoreError> {
    let sql = "UPDATE roles SET name = $1, name_enc = $2, description = '', description_enc = $3 \
               WHERE id = $4";
    on!(conn, |c| sqlx::query(sql)
        .bind(name_index)
        .bind(name_enc)
        .bind(description_enc)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// How many custom roles there are.
pub async fn count_custom(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    Ok(on!(conn, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM roles WHERE builtin = FALSE AND workspace_id IS NOT NULL"
    )
    .fetch_one(c)
    .await)?)
}

/// Up to `limit` custom roles in id order after `after`, for re-encryption.
pub async fn custom_after(
    conn: &mut Conn<'_>,
    after: Option<RoleId>,
    limit: i64,
) -> Result<Vec<RoleRecord>, StoreError> {
    Ok(match after {
        Some(a) => {
            let sql = format!(
                "SELECT {COLUMNS} FROM roles WHERE builtin = FALSE AND workspace_id IS NOT NULL \
                 AND id > $1 ORDER BY id LIMIT $2"
            );
            on!(conn, |c| sqlx::query_as(&sql)
                .bind(a)
                .bind(limit)
                .fetch_all(c)
                .await)?
        }
        None => {
            let sql = format!(
                "SELECT {COLUMNS} FROM roles WHERE builtin = FALSE AND workspace_id IS NOT NULL \
                 ORDER BY id LIMIT $1"
            );
            on!(conn, |c| sqlx::query_as(&sql)
                .bind(limit)
                .fetch_all(c)
                .await)?
        }
    })
}
