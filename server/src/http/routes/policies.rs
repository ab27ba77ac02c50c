//! Compliance policies: a workspace's effective policy and its override, and reloading the
//! deployment's policy modules.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};

use crate::domain::WorkspaceId;
use crate::http::error::ApiError;
use crate::http::extract::{ApiPath, Auth};
use crate::http::state::AppState;
use crate::policy::{OverrideFormat, PolicyDocument, ReloadView, WorkspacePolicyView};

/// A workspace's effective policy: every key's value, its version, the enabled modules and
/// where each value comes from (a module, or the workspace's override).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/policy", tag = "workspaces",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    responses((status = 200, body = WorkspacePolicyView)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<WorkspaceId>,
) -> Result<axum::Json<WorkspacePolicyView>, ApiError> {
    Ok(axum::Json(state.policies.workspace(&actor, id).await?))
}

/// Replace the workspace's policy override (system admins: `policies.manage`). The body is
/// TOML (`application/toml`) or JSON of the same shape; it is checked like a module file, and
/// an empty document returns the workspace to the modules. Every override is stored as a new
/// version and audited.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/policy", tag = "workspaces",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    request_body(content(
        (PolicyDocument = "application/json"),
        (String = "application/toml")),
        description = "keys not given keep the modules' values"),
    responses((status = 200, body = WorkspacePolicyView),
        (status = 403, description = "missing policies.manage"),
        (status = 415, description = "neither TOML nor JSON"),
        (status = 422, description = "`invalid_policy`: the message names the line (TOML) and the key")))]
pub async fn put(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<WorkspaceId>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<WorkspacePolicyView>, ApiError> {
    let media = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let format = match media.as_str() {
        "application/json" => OverrideFormat::Json,
        "application/toml" | "text/toml" | "text/x-toml" | "text/plain" => OverrideFormat::Toml,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the policy as TOML (Content-Type: application/toml) or JSON",
            ))
        }
    };
    Ok(axum::Json(
        state
            .policies
            .set_override(&actor, id, format, body.to_vec())
            .await?,
    ))
}

/// Read the enabled policy modules again (from `policy.dir`) and put them in force, if they
/// and every workspace's override are valid; a change is stored as a new version. Audited.
#[utoipa::path(post, path = "/api/v1/admin/policies/reload", tag = "policies",
    security(("bearer" = [])),
    responses((status = 200, body = ReloadView),
        (status = 403, description = "missing policies.manage"),
        (status = 422, description = "`invalid_policy`: the message names the file, line and key; the policy in force is unchanged")))]
pub async fn reload(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<axum::Json<ReloadView>, ApiError> {
    Ok(axum::Json(state.policies.reload(&actor).await?))
}
