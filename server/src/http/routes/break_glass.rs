//! Emergency access (break-glass) to a channel one cannot otherwise read.

use axum::extract::State;
use axum::http::StatusCode;

use crate::chat::Page;
use crate::domain::{BreakGlassId, ChannelId};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::http::routes::chat::HistoryQuery;
use crate::http::state::AppState;
use crate::phi::{BreakGlassRead, BreakGlassRequest, BreakGlassView};

/// Start an emergency access to a channel you cannot otherwise read (`break_glass.use`:
/// workspace owners and admins, compliance officers), with a reason, for at most the
/// workspace's `phi.break_glass_max_minutes`. Audited (`break_glass.started`) and announced
/// to every compliance officer (`break_glass_started` on the hub).
#[utoipa::path(post, path = "/api/v1/channels/{channel_id}/break-glass", operation_id = "start_break_glass", tag = "compliance",
    security(("bearer" = [])), params(("channel_id" = String, Path, format = Uuid)),
    request_body = BreakGlassRequest,
    responses((status = 201, body = BreakGlassView), (status = 403, description = "missing break_glass.use"),
        (status = 409, description = "`break_glass_not_needed`: you can read the channel already"),
        (status = 422, description = "`validation_failed`: no reason, or `minutes` beyond the workspace's limit")))]
pub async fn start(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(channel): ApiPath<ChannelId>,
    ApiJson(request): ApiJson<BreakGlassRequest>,
) -> Result<(StatusCode, axum::Json<BreakGlassView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.break_glass.start(&actor, channel, request).await?),
    ))
}

/// Read a page of the channel's history under your emergency access (ascending by sequence
/// number). Every read is audited (`break_glass.read`) before anything is read; once the
/// access has ended, reads are refused with `410 break_glass_ended`.
#[utoipa::path(get, path = "/api/v1/break-glass/{grant_id}/messages", operation_id = "read_under_break_glass", tag = "compliance",
    security(("bearer" = [])), params(("grant_id" = String, Path, format = Uuid), HistoryQuery),
    responses((status = 200, body = BreakGlassRead), (status = 404, description = "no such emergency access of yours"),
        (status = 410, description = "`break_glass_ended`: the access has ended")))]
pub async fn read(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(grant): ApiPath<BreakGlassId>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<axum::Json<BreakGlassRead>, ApiError> {
    let page = Page {
        before: q.before,
        after: q.after,
        limit: q.limit,
    };
    Ok(axum::Json(
        state.break_glass.read(&actor, grant, page).await?,
    ))
}

/// End your emergency access before its time. Audited (`break_glass.ended`) and announced
/// to the compliance officers.
#[utoipa::path(post, path = "/api/v1/break-glass/{grant_id}/end", operation_id = "end_break_glass", tag = "compliance",
    security(("bearer" = [])), params(("grant_id" = String, Path, format = Uuid)),
    responses((status = 200, body = BreakGlassView), (status = 404, description = "no such emergency access of yours"),
        (status = 409, description = "`break_glass_ended`: it has ended already")))]
pub async fn end(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(grant): ApiPath<BreakGlassId>,
) -> Result<axum::Json<BreakGlassView>, ApiError> {
    Ok(axum::Json(state.break_glass.end(&actor, grant).await?))
}
