//! Workspaces and their memberships.

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};
use crate::domain::{RoleId, UserId, WorkspaceId};

/// A workspace as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct WorkspaceRecord {
    /// Its id.
    pub id: WorkspaceId,
    /// Display name.
    pub name: String,
    /// URL handle, unique in the deployment.
    pub slug: String,
    /// Who created it.
    pub created_by: Option<UserId>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A workspace seen by one of its members, with that member's role.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MyWorkspace {
    /// The workspace id.
    pub id: WorkspaceId,
    /// Its name.
    pub name: String,
    /// Its slug.
    pub slug: String,
    /// The member's role name.
    pub role: String,
}

/// A member of a workspace with what others may see of them.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MemberRecord {
    /// The account.
    pub user_id: UserId,
    /// Their display name, encrypted under their key.
    pub display_name_enc: Option<Vec<u8>>,
    /// Their email, encrypted under their key.
    pub email_enc: Option<Vec<u8>>,
    /// Their role's id.
    pub role_id: RoleId,
    /// Their role's name.
    pub role: String,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
}

/// Creates a workspace; a taken slug is a [`StoreError::Constraint`].
pub async fn insert(conn: &mut Conn<'_>, w: &WorkspaceRecord) -> Result<(), StoreError> {
    let sql = "INSERT INTO workspaces (id, name, slug, created_by, created_at) VALUES ($1, $2, $3, $4, $5)";
    on!(conn, |c| sqlx::query(sql)
        .bind(w.id)
        .bind(&w.name)
        .bind(&w.slug)
        .bind(w.created_by)
        .bind(w.created_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The workspace with this id.
pub async fn by_id(
    conn: &mut Conn<'_>,
    id: WorkspaceId,
) -> Result<Option<WorkspaceRecord>, StoreError> {
    let sql = "SELECT id, name, slug, created_by, created_at FROM workspaces WHERE id = $1";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// Renames a workspace.
pub async fn rename(conn: &mut Conn<'_>, id: WorkspaceId, name: &str) -> Result<bool, StoreError> {
    let done = on!(conn, |c| sqlx::query(
        "UPDATE workspaces SET name = $1 WHERE id = $2"
    )
    .bind(name)
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// The workspaces a user belongs to, with their role in each.
pub async fn list_for_user(
    conn: &mut Conn<'_>,
    user: UserId,
) -> Result<Vec<MyWorkspace>, StoreError> {
    let sql = "SELECT w.id, w.name, w.slug, r.name AS role FROM memberships m \
               JOIN workspaces w ON w.id = m.workspace_id JOIN roles r ON r.id = m.role_id \
               WHERE m.user_id = $1 ORDER BY w.name, w.id";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(user)
        .fetch_all(c)
        .await)?)
}

/// A user's role in a workspace, if they are a member.
pub async fn member_role(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    user: UserId,
) -> Result<Option<RoleId>, StoreError> {
    let sql = "SELECT role_id FROM memberships WHERE workspace_id = $1 AND user_id = $2";
    let row: Option<(RoleId,)> = on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .bind(user)
        .fetch_optional(c)
        .await)?;
    Ok(row.map(|(r,)| r))
}

/// Adds a member; an existing membership is a [`StoreError::Constraint`].
pub async fn add_member(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    user: UserId,
    role: RoleId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO memberships (workspace_id, user_id, role_id, created_at) VALUES ($1, $2, $3, $4)";
    on!(conn, |c| sqlx::query(sql)
        .bind(workspace)
        .bind(user)
        .bind(role)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Changes a member's role; false if they are not a member.
pub async fn set_member_role(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    user: UserId,
    role: RoleId,
) -> Result<bool, StoreError> {
    let sql = "UPDATE memberships SET role_id = $1 WHERE workspace_id = $2 AND user_id = $3";
    let done = on!(conn, |c| sqlx::query(sql)
        .bind(role)
        .bind(workspace)
        .bind(user)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Removes a member; false if they were not one.
pub async fn remove_member(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    user: UserId,
) -> Result<bool, StoreError> {
    let sql = "DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2";
    let done = on!(conn, |c| sqlx::query(sql)
        .bind(workspace)
        .bind(user)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// A workspace's members, in the order they joined.
pub async fn members(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<MemberRecord>, StoreError> {
    let sql = "SELECT u.id AS user_id, u.display_name_enc, u.email_enc, m.role_id, r.name AS role, m.created_at AS joined_at \
               FROM memberships m JOIN users u ON u.id = m.user_id JOIN roles r ON r.id = m.role_id \
               WHERE m.workspace_id = $1 ORDER BY m.created_at, u.id";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .fetch_all(c)
        .await)?)
}

/// How many members hold a role in a workspace.
pub async fn count_with_role(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    role: RoleId,
) -> Result<i64, StoreError> {
    let sql = "SELECT COUNT(*) FROM memberships WHERE workspace_id = $1 AND role_id = $2";
    let row: (i64,) = on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .bind(role)
        .fetch_one(c)
        .await)?;
    Ok(row.0)
}
