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
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Seeded by Concord and not editable.
    pub builtin: bool,
    /// When it was defined.
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, scope, workspace_id, name, description, builtin, created_at";

/// Creates a role or brings a built-in one up to date, and sets its permissions exactly.
pub async fn put(
    conn: &mut Conn<'_>,
    role: &RoleRecord,
    permissions: &[&str],
) -> Result<(), StoreError> {
    let exists = by_id(conn, role.id).await?.is_some();
    if exists {
        let sql = "UPDATE roles SET name = $1, description = $2 WHERE id = $3";
        on!(conn, |c| sqlx::query(sql)
            .bind(&role.name)
            .bind(&role.description)
            .bind(role.id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    } else {
        let sql =
            "INSERT INTO roles (id, scope, workspace_id, name, description, builtin, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on!(conn, |c| sqlx::query(sql)
            .bind(role.id)
            .bind(&role.scope)
            .bind(role.workspace_id)
            .bind(&role.name)
            .bind(&role.description)
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

/// The roles usable in a workspace: built-in workspace roles and its own custom roles.
pub async fn for_workspace(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<RoleRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM roles WHERE scope = 'workspace' AND (workspace_id IS NULL OR workspace_id = $1) \
         ORDER BY builtin DESC, created_at, name"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .fetch_all(c)
        .await)?)
}
