//! Legal holds and runs of the retention job on demand.

use axum::extract::State;
use axum::http::StatusCode;

use serde::Deserialize;

use crate::compliance::holds::HeldContentPage;
use crate::compliance::{HoldList, HoldView, NewHold, RetentionReport, RunRequest};
use crate::domain::{LegalHoldId, WorkspaceId};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::http::state::AppState;

/// A workspace's legal holds, released ones included (`legal_holds.manage`: workspace owners
/// and admins, compliance officers).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/legal-holds", operation_id = "list_legal_holds", tag = "compliance",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    responses((status = 200, body = HoldList), (status = 403, description = "missing legal_holds.manage")))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
) -> Result<axum::Json<HoldList>, ApiError> {
    Ok(axum::Json(state.holds.list(&actor, ws).await?))
}

/// Place a legal hold: the workspace's messages by its custodians, in its channels and
/// posted within its range (each criterion optional) are kept whatever retention says,
/// until it is released. Audited.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/legal-holds", operation_id = "create_legal_hold", tag = "compliance",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    request_body = NewHold,
    responses((status = 201, body = HoldView), (status = 403, description = "missing legal_holds.manage"),
        (status = 422, description = "`validation_failed`: the field named in `field` (an empty name, an unknown custodian or channel, a range that ends before it starts)")))]
pub async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
    ApiJson(new): ApiJson<NewHold>,
) -> Result<(StatusCode, axum::Json<HoldView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.holds.create(&actor, ws, new).await?),
    ))
}

/// Release a legal hold: it stays listed, with who released it and when, and what it held
/// is subject to retention again at the next pass. Audited.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/legal-holds/{hold_id}", operation_id = "release_legal_hold", tag = "compliance",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("hold_id" = String, Path, format = Uuid)),
    responses((status = 200, body = HoldView), (status = 403, description = "missing legal_holds.manage"),
        (status = 409, description = "`already_released`")))]
pub async fn release(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, hold)): ApiPath<(WorkspaceId, LegalHoldId)>,
) -> Result<axum::Json<HoldView>, ApiError> {
    Ok(axum::Json(state.holds.release(&actor, ws, hold).await?))
}

/// Which page of a hold's content.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ContentQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// At most this many messages (1 to 200, default 100).
    pub limit: Option<i64>,
}

/// The messages a legal hold covers, oldest first, for eDiscovery (`ediscovery.read`:
/// compliance officers and system administrators, not the workspace's own administrators).
/// Messages their authors deleted while the hold was in force (or within the workspace's
/// deletion grace period) come with the text they had and their earlier versions; the
/// channel itself shows only a tombstone. Released holds can still be read. Each page is
/// audited as `legal_hold.content_read`.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/legal-holds/{hold_id}/messages", operation_id = "read_legal_hold_content", tag = "compliance",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("hold_id" = String, Path, format = Uuid), ContentQuery),
    responses((status = 200, body = HeldContentPage), (status = 403, description = "missing ediscovery.read"),
        (status = 404, description = "no such workspace or hold"),
        (status = 422, description = "`validation_failed`: `cursor` or `limit`")))]
pub async fn held_content(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, hold)): ApiPath<(WorkspaceId, LegalHoldId)>,
    ApiQuery(q): ApiQuery<ContentQuery>,
) -> Result<axum::Json<HeldContentPage>, ApiError> {
    Ok(axum::Json(
        state
            .holds
            .content(&actor, ws, hold, q.cursor.as_deref(), q.limit)
            .await?,
    ))
}

/// Run one retention pass over the workspace now (`policies.manage`): messages older than
/// the effective `retention.messages_days` (a channel's own where it has one) are destroyed
/// unless a legal hold covers them. `now` names the time the pass runs at, only where
/// `retention.allow_explicit_now` is set. Audited as `retention.run`.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/retention/run", operation_id = "run_retention", tag = "compliance",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    request_body = RunRequest,
    responses((status = 200, body = RetentionReport), (status = 403, description = "missing policies.manage"),
        (status = 422, description = "`explicit_now_disabled`: `now` given where the configuration does not allow it")))]
pub async fn run_retention(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
    ApiJson(request): ApiJson<RunRequest>,
) -> Result<axum::Json<RetentionReport>, ApiError> {
    Ok(axum::Json(
        state.retention.run_workspace(&actor, ws, request).await?,
    ))
}
