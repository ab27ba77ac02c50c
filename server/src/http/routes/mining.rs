//! Process mining: the workspace's workflow history as an event log file (XES, OCEL 2.0
//! JSON, CSV), and a process's variants, directly-follows graph and deviations.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Deserialize;

use crate::domain::WorkspaceId;
use crate::http::error::ApiError;
use crate::http::extract::{ApiPath, ApiQuery, Auth};
use crate::http::state::AppState;
use crate::workflow::mining::{self, LogQueryError, LogRequest, ProcessMining};

/// What an event log covers (the query string; `process` may be repeated).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct LogParams {
    /// A process to include; repeat for several (`process=a&process=b`); none: every
    /// process of the workspace.
    #[param(style = Form, explode)]
    pub process: Option<Vec<String>>,
    /// `xes` (default), `ocel` (OCEL 2.0 JSON) or `csv`.
    pub format: Option<String>,
    /// Only instances started at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Only instances started before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// OCEL only: instance variables whose values name objects, as `variable:type` pairs
    /// separated by commas (`order_id:order,invoice_id:invoice`); instances naming the same
    /// object are linked through it.
    pub objects: Option<String>,
}

fn refused(e: LogQueryError) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, e.code(), e.to_string())
}

/// The workspace's workflow history as an event log file (`workflows.manage`), streamed:
/// XES (IEEE 1849; a trace per instance, `start`, `complete` and `ate_abort` events per
/// activity, `org:resource` the completer's user id), OCEL 2.0 JSON (an event per completed
/// activity, related to its instance, an object of the process's type, and to the objects
/// `objects` names) or CSV (`case_id,process_id,version,activity,lifecycle,timestamp,resource,element`).
/// Audited as `workflow.log_exported`.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/workflow-log", operation_id = "export_workflow_log", tag = "workflows",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), LogParams),
    responses((status = 200, description = "the log as an attachment",
            content((String = "application/xml"), (String = "application/json"), (String = "text/csv"))),
        (status = 400, description = "`invalid_format`, `invalid_time`, `invalid_process`, `invalid_objects` or `invalid_query`"),
        (status = 403, description = "missing workflows.manage"),
        (status = 404, description = "a process named is not deployed in the workspace")))]
pub async fn export_log(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let request = LogRequest::from_query(query.as_deref().unwrap_or("")).map_err(refused)?;
    let export = state.workflows.export_log(&actor, ws, request).await?;
    let body = Body::from_stream(
        export
            .chunks
            .map(|r| r.map_err(|e| std::io::Error::other(e.to_string()))),
    );
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, export.format.content_type())
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", export.filename),
        )
        .header("x-concord-instances", export.instances.to_string())
        .body(body)
        .map_err(|e| ApiError::internal(&e))
}

/// Which instances to mine.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MiningQuery {
    /// Only instances started at or after this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub from: Option<String>,
    /// Only instances started before this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub to: Option<String>,
}

/// What a process's instances really did (`workflows.manage`): its variants (the sequences
/// of completed activities, most frequent first, with counts, shares and durations), the
/// directly-follows graph discovered from them, and the instances that deviated (cancelled,
/// failed, incidents, boundary events, compensation, escalated or reassigned tasks).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/workflows/{process_id}/mining", operation_id = "mine_workflow", tag = "workflows",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("process_id" = String, Path), MiningQuery),
    responses((status = 200, body = ProcessMining),
        (status = 400, description = "`invalid_time`"),
        (status = 403, description = "missing workflows.manage"),
        (status = 404, description = "the process is not deployed in the workspace")))]
pub async fn mine(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, process)): ApiPath<(WorkspaceId, String)>,
    ApiQuery(q): ApiQuery<MiningQuery>,
) -> Result<axum::Json<ProcessMining>, ApiError> {
    let from = q
        .from
        .as_deref()
        .map(|t| mining::time("from", t))
        .transpose()
        .map_err(refused)?;
    let to =
        q.to.as_deref()
            .map(|t| mining::time("to", t))
            .transpose()
            .map_err(refused)?;
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err(refused(LogQueryError::Range));
        }
    }
    Ok(axum::Json(
        state.workflows.mine(&actor, ws, &process, from, to).await?,
    ))
}
