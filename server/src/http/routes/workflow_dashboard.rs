//! A process's dashboard: instances over time, step durations and SLA breaches, incidents
//! and the heat overlay, from the figures kept as each step is recorded.

use axum::extract::State;
use chrono::Utc;

use crate::domain::WorkspaceId;
use crate::http::error::ApiError;
use crate::http::extract::{ApiPath, ApiQuery, Auth};
use crate::http::state::AppState;
use crate::workflow::dashboard::{DashboardQuery, DashboardView, Range};

/// A process's dashboard (`workflows.manage`): instances started, running and ended (by
/// status) per hour or day, each activity's waiting and working time percentiles, SLA
/// breaches, open incidents and each step's share of the slowest for a heat overlay. The
/// range is widened to whole buckets (UTC); `running`, `incidents_open` and what is open
/// are as of now. Live: `workflow_instance_changed` tells the same people when to read it
/// again.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/workflows/{process_id}/dashboard", operation_id = "get_workflow_dashboard", tag = "workflows",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("process_id" = String, Path), DashboardQuery),
    responses((status = 200, body = DashboardView),
        (status = 400, description = "`invalid_query` (a time that is not RFC 3339, a bucket other than `hour` or `day`) or `invalid_range` (`from` not before `to`, more than 400 buckets)"),
        (status = 403, description = "missing workflows.manage"), (status = 404, description = "no such process")))]
pub async fn dashboard(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, process)): ApiPath<(WorkspaceId, String)>,
    ApiQuery(q): ApiQuery<DashboardQuery>,
) -> Result<axum::Json<DashboardView>, ApiError> {
    let range = Range::parse(&q, Utc::now())?;
    Ok(axum::Json(
        state
            .workflows
            .dashboard(&actor, ws, &process, range)
            .await?,
    ))
}
