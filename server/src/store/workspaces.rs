//! Workspaces and their memberships.

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};
use crate::domain::{RoleId, UserId, WorkspaceId};

/// A workspace as stored: its name and slug only encrypted (under the workspace's key), the
/// slug also as a keyed blind index for lookups and uniqueness.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct WorkspaceRecord {
    /// Its id.
    pub id: WorkspaceId,
    /// Display name, encrypted.
    pub name_enc: Option<Vec<u8>>,
    /// URL handle, encrypted.
    pub slug_enc: Option<Vec<u8>>,
    /// Blind index of the slug, unique in the deployment.
    pub slug_index: String,
    /// Who created it.
    pub created_by: Option<UserId>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A workspace seen by one of its members, with that member's role.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MyWorkspace {
    /// The workspace.
    #[sqlx(flatten)]
    pub workspace: WorkspaceRecord,
    /// The member's role id.
    pub role_id: RoleId,
    /// The role's stored name (built-in roles) or blind index (custom roles).
    pub role: String,
    /// A custom role's encrypted name.
    pub role_name_enc: Option<Vec<u8>>,
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
    /// Their role's stored name (built-in roles) or blind index (custom roles).
    pub role: String,
    /// A custom role's encrypted name.
    pub role_name_enc: Option<Vec<u8>>,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
}

/// A workspace still holding the plaintext name and slug of before encryption at rest.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LegacyWorkspace {
    /// Its id.
    pub id: WorkspaceId,
    /// Plaintext name.
    pub name: String,
    /// Plaintext slug (kept in `slug_index` until encrypted).
    pub slug: String,
}

const COLUMNS: &str = "w.id, w.name_enc, w.slug_enc, w.slug_index, w.created_by, w.created_at";

/// Creates a workspace; a taken slug is a [`StoreError::Constraint`].
pub async fn insert(conn: &mut Conn<'_>, w: &WorkspaceRecord) -> Result<(), StoreError> {
    let sql = "INSERT INTO workspaces (id, name, name_enc, slug_enc, slug_index, created_by, created_at) \
               VALUES ($1, '', $2, $3, $4, $5, $6)";
    on!(conn, |c| sqlx::query(sql)
        .bind(w.id)
        .bind(&w.name_enc)
        .bind(&w.slug_enc)
        .bind(&w.slug_index)
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
    let sql = format!("SELECT {COLUMNS} FROM workspaces w WHERE w.id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// Renames a workspace (the new name encrypted).
pub async fn rename(
    conn: &mut Conn<'_>,
    id: WorkspaceId,
    name_enc: &[u8],
) -> Result<bool, StoreError> {
    let done = on!(conn, |c| sqlx::query(
        "UPDATE workspaces SET name = '', name_enc = $1 WHERE id = $2"
    )
    .bind(name_enc)
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// The workspaces a user belongs to, with their role in each, in id order (names are
/// encrypted: callers sort by name after decrypting).
pub async fn list_for_user(
    conn: &mut Conn<'_>,
    user: UserId,
) -> Result<Vec<MyWorkspace>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS}, m.role_id, r.name AS role, r.name_enc AS role_name_enc FROM memberships m \
         JOIN workspaces w ON w.id = m.workspace_id JOIN roles r ON r.id = m.role_id \
         WHERE m.user_id = $1 ORDER BY w.id"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
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

/// Removes a member, with their routing attributes there; false if they were not one.
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
    // What routing knew about them there goes with the membership.
    let sql = "DELETE FROM person_attributes WHERE workspace_id = $1 AND user_id = $2";
    on!(conn, |c| sqlx::query(sql)
        .bind(workspace)
        .bind(user)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(done == 1)
}

/// A workspace's members, in the order they joined.
pub async fn members(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<MemberRecord>, StoreError> {
    let sql = "SELECT u.id AS user_id, u.display_name_enc, u.email_enc, m.role_id, r.name AS role, \
               r.name_enc AS role_name_enc, m.created_at AS joined_at \
               FROM memberships m JOIN users u ON u.id = m.user_id JOIN roles r ON r.id = m.role_id \
               WHERE m.workspace_id = $1 ORDER BY m.created_at, u.id";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .fetch_all(c)
        .await)?)
}

/// The members of a workspace holding `role`.
pub async fn holders_of(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    role: RoleId,
) -> Result<Vec<UserId>, StoreError> {
    let sql =
        "SELECT user_id FROM memberships WHERE workspace_id = $1 AND role_id = $2 ORDER BY user_id";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .bind(workspace)
        .bind(role)
        .fetch_all(c)
        .await)?)
}

/// The members of a workspace whose role there holds `permission` (a workspace permission,
/// such as `workflows.manage`).
pub async fn holding_permission(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    permission: &str,
) -> Result<Vec<UserId>, StoreError> {
    let sql = "SELECT m.user_id FROM memberships m \
               JOIN role_permissions p ON p.role_id = m.role_id \
               WHERE m.workspace_id = $1 AND p.permission = $2 ORDER BY m.user_id";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .bind(workspace)
        .bind(permission)
        .fetch_all(c)
        .await)?)
}

/// One member of a workspace (`None`: not a member).
pub async fn member(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    user: UserId,
) -> Result<Option<MemberRecord>, StoreError> {
    let sql = "SELECT u.id AS user_id, u.display_name_enc, u.email_enc, m.role_id, r.name AS role, \
               r.name_enc AS role_name_enc, m.created_at AS joined_at \
               FROM memberships m JOIN users u ON u.id = m.user_id JOIN roles r ON r.id = m.role_id \
               WHERE m.workspace_id = $1 AND m.user_id = $2";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .bind(user)
        .fetch_optional(c)
        .await)?)
}

/// The ids of a workspace's members.
pub async fn member_ids(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<UserId>, StoreError> {
    let sql = "SELECT user_id FROM memberships WHERE workspace_id = $1";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .bind(workspace)
        .fetch_all(c)
        .await)?)
}

/// Everyone who shares a workspace with `user` (`user` too, if they belong to one).
pub async fn co_members(conn: &mut Conn<'_>, user: UserId) -> Result<Vec<UserId>, StoreError> {
    let sql = "SELECT DISTINCT theirs.user_id FROM memberships mine \
               JOIN memberships theirs ON theirs.workspace_id = mine.workspace_id \
               WHERE mine.user_id = $1";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .bind(user)
        .fetch_all(c)
        .await)?)
}

/// The workspaces both `a` and `b` belong to, in id order.
pub async fn shared(
    conn: &mut Conn<'_>,
    a: UserId,
    b: UserId,
) -> Result<Vec<WorkspaceId>, StoreError> {
    let sql = "SELECT mine.workspace_id FROM memberships mine \
               JOIN memberships theirs ON theirs.workspace_id = mine.workspace_id \
               WHERE mine.user_id = $1 AND theirs.user_id = $2 ORDER BY mine.workspace_id";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .bind(a)
        .bind(b)
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

/// The workspace whose slug has this blind index.
pub async fn by_slug_index(
    conn: &mut Conn<'_>,
    slug_index: &str,
) -> Result<Option<WorkspaceRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM workspaces w WHERE w.slug_index = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(slug_index)
        .fetch_optional(c)
        .await)?)
}

/// A user's membership in a workspace: role and where it came from (`manual`, `sso:<provider>`).
pub async fn membership(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    user: UserId,
) -> Result<Option<(RoleId, String)>, StoreError> {
    let sql = "SELECT role_id, source FROM memberships WHERE workspace_id = $1 AND user_id = $2";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .bind(user)
        .fetch_optional(c)
        .await)?)
}

/// Adds a member and records where the membership came from.
pub async fn add_member_from(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    user: UserId,
    role: RoleId,
    source: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO memberships (workspace_id, user_id, role_id, created_at, source) \
               VALUES ($1, $2, $3, $4, $5)";
    on!(conn, |c| sqlx::query(sql)
        .bind(workspace)
        .bind(user)
        .bind(role)
        .bind(now)
        .bind(source)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A user's memberships that came from `source`, with their roles.
pub async fn memberships_from(
    conn: &mut Conn<'_>,
    user: UserId,
    source: &str,
) -> Result<Vec<(WorkspaceId, RoleId)>, StoreError> {
    let sql = "SELECT workspace_id, role_id FROM memberships WHERE user_id = $1 AND source = $2";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(user)
        .bind(source)
        .fetch_all(c)
        .await)?)
}

/// Up to `limit` workspaces whose name and slug are still in plaintext.
pub async fn legacy_plaintext(
    conn: &mut Conn<'_>,
    limit: i64,
) -> Result<Vec<LegacyWorkspace>, StoreError> {
    let sql = "SELECT id, name, slug_index AS slug FROM workspaces WHERE slug_enc IS NULL \
               ORDER BY id LIMIT $1";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// Stores a workspace's name and slug encrypted (and the slug's index), emptying the
/// plaintext name; also used to re-encrypt them under a new key version.
pub async fn set_encrypted(
    conn: &mut Conn<'_>,
    id: WorkspaceId,
    name_enc: &[u8],
    slug_enc: &[u8],
    slug_index: &str,
) -> Result<(), StoreError> {
    let sql = "UPDATE workspaces SET name = '', name_enc = $1, slug_enc = $2, slug_index = $3 \
               WHERE id = $4";
    on!(conn, |c| sqlx::query(sql)
        .bind(name_enc)
        .bind(slug_enc)
        .bind(slug_index)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// How many workspaces there are.
pub async fn count(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    Ok(on!(conn, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM workspaces"
    )
    .fetch_one(c)
    .await)?)
}

/// Up to `limit` workspaces in id order after `after`, for re-encryption.
pub async fn after(
    conn: &mut Conn<'_>,
    after: Option<WorkspaceId>,
    limit: i64,
) -> Result<Vec<WorkspaceRecord>, StoreError> {
    Ok(match after {
        Some(a) => {
            let sql = format!(
                "SELECT {COLUMNS} FROM workspaces w WHERE w.id > $1 ORDER BY w.id LIMIT $2"
            );
            on!(conn, |c| sqlx::query_as(&sql)
                .bind(a)
                .bind(limit)
                .fetch_all(c)
                .await)?
        }
        None => {
            let sql = format!("SELECT {COLUMNS} FROM workspaces w ORDER BY w.id LIMIT $1");
            on!(conn, |c| sqlx::query_as(&sql)
                .bind(limit)
                .fetch_all(c)
                .await)?
        }
    })
}
