//! Workspaces, their members, roles and invitations.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use crate::domain::{
    Email, InvitationId, RoleId, RoleName, Slug, UserId, WorkspaceId, WorkspaceName,
};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, Auth};
use crate::http::state::AppState;
use crate::workspaces::{
    CreatedInvitation, InvitationView, MemberView, NewInvitation, RoleChange, RoleView,
    WorkspaceView,
};

/// A new workspace.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Acme Health", "slug": "acme-health"}))]
pub struct CreateWorkspaceRequest {
    /// Name (1 to 80 characters).
    pub name: String,
    /// URL handle; derived from the name if omitted.
    #[serde(default)]
    pub slug: Option<String>,
}

/// A workspace rename.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Acme Health Ops"}))]
pub struct UpdateWorkspaceRequest {
    /// New name.
    pub name: String,
}

/// A member's new role.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "admin"}))]
pub struct MemberRoleRequest {
    /// Role name usable in this workspace.
    pub role: String,
}

/// A custom role.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "auditor", "description": "Reads member lists", "permissions": ["workspace.read", "members.read"]}))]
pub struct CreateRoleRequest {
    /// Name (a-z, 0-9, _).
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Workspace actions it grants.
    pub permissions: Vec<String>,
}

/// Changes to a custom role: what is given is replaced, what is left out stays.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"permissions": ["workspace.read", "members.read", "channels.read"]}))]
pub struct UpdateRoleRequest {
    /// A new name (a-z, 0-9, _).
    #[serde(default)]
    pub name: Option<String>,
    /// A new description (at most 200 characters).
    #[serde(default)]
    pub description: Option<String>,
    /// The workspace actions it grants from now on (replaces the list).
    #[serde(default)]
    pub permissions: Option<Vec<String>>,
}

/// A new invitation.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "bo@example.org", "role": "member", "expires_in_hours": 168}))]
pub struct CreateInvitationRequest {
    /// Restrict to this email (then it is single-use).
    #[serde(default)]
    pub email: Option<String>,
    /// Role on joining; `member` if omitted.
    #[serde(default)]
    pub role: Option<String>,
    /// Lifetime in hours (1 to 720, default 168).
    #[serde(default)]
    pub expires_in_hours: Option<i64>,
    /// How many people may accept (1 to 1000, default 1).
    #[serde(default)]
    pub max_uses: Option<i64>,
}

/// The workspaces the signed-in user belongs to.
#[utoipa::path(get, path = "/api/v1/workspaces", operation_id = "list_workspaces", tag = "workspaces", security(("bearer" = [])),
    responses((status = 200, body = [WorkspaceView])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<axum::Json<Vec<WorkspaceView>>, ApiError> {
    Ok(axum::Json(state.workspaces.list_mine(&actor).await?))
}

/// Create a workspace; you become its owner.
#[utoipa::path(post, path = "/api/v1/workspaces", operation_id = "create_workspace", tag = "workspaces", security(("bearer" = [])),
    request_body = CreateWorkspaceRequest,
    responses((status = 201, body = WorkspaceView), (status = 409, description = "slug taken")))]
pub async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(req): ApiJson<CreateWorkspaceRequest>,
) -> Result<(StatusCode, axum::Json<WorkspaceView>), ApiError> {
    let name = WorkspaceName::parse("name", &req.name)?;
    let slug = req
        .slug
        .as_deref()
        .map(|s| Slug::parse("slug", s))
        .transpose()?;
    Ok((
        StatusCode::CREATED,
        axum::Json(state.workspaces.create(&actor, name, slug).await?),
    ))
}

/// One workspace.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}", operation_id = "get_workspace", tag = "workspaces", security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid)), responses((status = 200, body = WorkspaceView)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<WorkspaceId>,
) -> Result<axum::Json<WorkspaceView>, ApiError> {
    Ok(axum::Json(state.workspaces.get(&actor, id).await?))
}

/// Rename a workspace.
#[utoipa::path(patch, path = "/api/v1/workspaces/{workspace_id}", operation_id = "update_workspace", tag = "workspaces", security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid)), request_body = UpdateWorkspaceRequest,
    responses((status = 200, body = WorkspaceView)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<WorkspaceId>,
    ApiJson(req): ApiJson<UpdateWorkspaceRequest>,
) -> Result<axum::Json<WorkspaceView>, ApiError> {
    let name = WorkspaceName::parse("name", &req.name)?;
    Ok(axum::Json(state.workspaces.rename(&actor, id, name).await?))
}

/// A workspace's members.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/members", operation_id = "workspace_members", tag = "workspaces",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    responses((status = 200, body = [MemberView])))]
pub async fn members(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<WorkspaceId>,
) -> Result<axum::Json<Vec<MemberView>>, ApiError> {
    Ok(axum::Json(state.workspaces.members(&actor, id).await?))
}

/// Change a member's role.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/members/{user_id}", tag = "workspaces",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("user_id" = String, Path, format = Uuid)),
    request_body = MemberRoleRequest, responses((status = 200, body = MemberView)))]
pub async fn set_member_role(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((id, user)): ApiPath<(WorkspaceId, UserId)>,
    ApiJson(req): ApiJson<MemberRoleRequest>,
) -> Result<axum::Json<MemberView>, ApiError> {
    Ok(axum::Json(
        state
            .workspaces
            .set_member_role(&actor, id, user, req.role)
            .await?,
    ))
}

/// Remove a member, or leave.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/members/{user_id}", operation_id = "remove_workspace_member", tag = "workspaces",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("user_id" = String, Path, format = Uuid)),
    responses((status = 204, description = "removed")))]
pub async fn remove_member(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((id, user)): ApiPath<(WorkspaceId, UserId)>,
) -> Result<StatusCode, ApiError> {
    state.workspaces.remove_member(&actor, id, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Roles usable in a workspace.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/roles", tag = "workspaces",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    responses((status = 200, body = [RoleView])))]
pub async fn roles(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<WorkspaceId>,
) -> Result<axum::Json<Vec<RoleView>>, ApiError> {
    Ok(axum::Json(state.workspaces.roles(&actor, id).await?))
}

/// Define a custom role.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/roles", tag = "workspaces",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    request_body = CreateRoleRequest, responses((status = 201, body = RoleView)))]
pub async fn create_role(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<WorkspaceId>,
    ApiJson(req): ApiJson<CreateRoleRequest>,
) -> Result<(StatusCode, axum::Json<RoleView>), ApiError> {
    let name = RoleName::parse("name", &req.name)?;
    let role = state
        .workspaces
        .create_role(&actor, id, name, req.description, req.permissions)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(role)))
}

/// Change a custom role's name, description or permissions. The new permissions must all
/// be held by whoever changes it; built-in roles cannot be changed.
#[utoipa::path(patch, path = "/api/v1/workspaces/{workspace_id}/roles/{role_id}", tag = "workspaces",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("role_id" = String, Path, format = Uuid)),
    request_body = UpdateRoleRequest,
    responses((status = 200, body = RoleView),
        (status = 404, description = "no such role in this workspace"),
        (status = 409, description = "`role_exists`: the new name is taken"),
        (status = 422, description = "`builtin_role`, `unknown_permission`, `description_too_long`, `nothing_to_change`")))]
pub async fn update_role(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((id, role_id)): ApiPath<(WorkspaceId, RoleId)>,
    ApiJson(req): ApiJson<UpdateRoleRequest>,
) -> Result<axum::Json<RoleView>, ApiError> {
    let change = RoleChange {
        name: req
            .name
            .as_deref()
            .map(|n| RoleName::parse("name", n))
            .transpose()?,
        description: req.description,
        permissions: req.permissions,
    };
    Ok(axum::Json(
        state
            .workspaces
            .update_role(&actor, id, role_id, change)
            .await?,
    ))
}

/// A workspace's invitations.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/invitations", tag = "workspaces",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    responses((status = 200, body = [InvitationView])))]
pub async fn invitations(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<WorkspaceId>,
) -> Result<axum::Json<Vec<InvitationView>>, ApiError> {
    Ok(axum::Json(state.workspaces.invitations(&actor, id).await?))
}

/// Invite someone by link or email address. With no mail server configured, the link is
/// returned (`delivery: "shown"`) for you to pass on.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/invitations", tag = "workspaces",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    request_body = CreateInvitationRequest, responses((status = 201, body = CreatedInvitation)))]
pub async fn invite(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<WorkspaceId>,
    ApiJson(req): ApiJson<CreateInvitationRequest>,
) -> Result<(StatusCode, axum::Json<CreatedInvitation>), ApiError> {
    let invitation = NewInvitation {
        email: req
            .email
            .as_deref()
            .map(|e| Email::parse("email", e))
            .transpose()?,
        role: req.role,
        expires_in_hours: req.expires_in_hours.unwrap_or(168),
        max_uses: req.max_uses.unwrap_or(1),
    };
    let created = state
        .workspaces
        .invite(&actor, id, invitation, &state.public_base)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// Revoke an invitation.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/invitations/{invitation_id}", tag = "workspaces",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("invitation_id" = String, Path, format = Uuid)),
    responses((status = 204, description = "revoked")))]
pub async fn revoke_invitation(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((id, invitation)): ApiPath<(WorkspaceId, InvitationId)>,
) -> Result<StatusCode, ApiError> {
    state
        .workspaces
        .revoke_invitation(&actor, id, invitation)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
