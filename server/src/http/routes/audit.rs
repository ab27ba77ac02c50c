//! The audit log for compliance officers: filtered listing, streamed exports and
//! verification of the live log on demand.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::Response;
use futures::StreamExt;
use serde::Deserialize;

use crate::audit::service::{AuditPage, ExportFormat};
use crate::audit::verification::{VerificationResult, VerificationStatus};
use crate::domain::ParseError;
use crate::error::Error;
use crate::http::error::ApiError;
use crate::http::extract::{ApiQuery, Auth};
use crate::http::state::AppState;
use crate::store::audit::AuditFilter;

/// Filters and paging for audit entries.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Entries before this time (RFC 3339).
    pub to: Option<String>,
    /// Acting user id.
    pub actor: Option<String>,
    /// Action, such as `auth.sign_in`.
    pub action: Option<String>,
    /// Target id.
    pub target: Option<String>,
    /// Workspace id.
    pub workspace: Option<String>,
    /// `allowed`, `denied` or `failed`.
    pub outcome: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// At most this many (1 to 1000, default 100).
    pub limit: Option<i64>,
}

/// What to export.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `jsonl` (default; verifiable offline) or `csv`.
    pub format: Option<String>,
    /// Entries at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Entries before this time (RFC 3339).
    pub to: Option<String>,
}

fn time(field: &'static str, value: Option<String>) -> Result<Option<String>, ParseError> {
    value
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(&v)
                .map(|t| {
                    t.with_timezone(&chrono::Utc)
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                })
                .map_err(|_| ParseError::new(field, "must be an RFC 3339 time"))
        })
        .transpose()
}

/// Audit entries matching the filters (compliance officers).
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 403, description = "missing audit.read")))]
pub async fn events(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<axum::Json<AuditPage>, ApiError> {
    let after_seq = match q.cursor {
        Some(c) => c
            .parse::<i64>()
            .map_err(|_| Error::from(ParseError::new("cursor", "is not a cursor from this API")))?,
        None => 0,
    };
    if let Some(outcome) = &q.outcome {
        if !matches!(outcome.as_str(), "allowed" | "denied" | "failed") {
            return Err(ParseError::new("outcome", "must be allowed, denied or failed").into());
        }
    }
    let filter = AuditFilter {
        after_seq,
        from: time("from", q.from)?,
        to: time("to", q.to)?,
        actor_id: q.actor,
        action: q.action,
        target_id: q.target,
        workspace_id: q.workspace,
        outcome: q.outcome,
    };
    Ok(axum::Json(
        state
            .audit
            .list(&actor, filter, q.limit.unwrap_or(100))
            .await?,
    ))
}

/// Streams the audit entries of a time range with the checkpoints it spans (compliance officers).
#[utoipa::path(get, path = "/api/v1/audit/export", operation_id = "export_audit_log", tag = "audit", security(("bearer" = [])), params(ExportQuery),
    responses((status = 200, description = "JSON Lines or CSV", content_type = "application/jsonl"),
        (status = 403, description = "missing audit.read")))]
pub async fn export(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let format = match q.format.as_deref() {
        None | Some("jsonl") => ExportFormat::Jsonl,
        Some("csv") => ExportFormat::Csv,
        Some(_) => return Err(ParseError::new("format", "must be jsonl or csv").into()),
    };
    let from = time("from", q.from)?;
    let to = time("to", q.to)?;
    let lines = state.audit.export(&actor, from, to, format).await?;
    let body =
        Body::from_stream(lines.map(|r| r.map_err(|e| std::io::Error::other(e.to_string()))));
    let (content_type, name) = match format {
        ExportFormat::Jsonl => ("application/jsonl", "audit-export.jsonl"),
        ExportFormat::Csv => ("text/csv; charset=utf-8", "audit-export.csv"),
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        )
        .body(body)
        .map_err(|e| ApiError::internal(&e))
}

/// Verifies the live audit log now, as `concord audit verify` does, and records it as
/// `audit.verify` (compliance officers). One verification runs at a time: while one runs,
/// another is refused with 409 `verification_running` (`GET /api/v1/audit/verification`
/// shows it running, then its result). The verification reads only and runs apart from the
/// request: if the request ends first (a very large log), it still finishes and its result
/// is kept.
#[utoipa::path(post, path = "/api/v1/audit/verify", operation_id = "verify_audit_log", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = VerificationResult, description = "the verification's result, `ok` or the first problem"),
        (status = 403, description = "missing audit.read"),
        (status = 409, description = "`verification_running`: another verification is running")))]
pub async fn verify(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<axum::Json<VerificationResult>, ApiError> {
    Ok(axum::Json(state.audit_verification.verify(&actor).await?))
}

/// Whether a verification of the live audit log runs, and the last result since the server
/// started (`last` is null before the first) (compliance officers).
#[utoipa::path(get, path = "/api/v1/audit/verification", operation_id = "audit_verification_status", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = VerificationStatus), (status = 403, description = "missing audit.read")))]
pub async fn verification(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<axum::Json<VerificationStatus>, ApiError> {
    Ok(axum::Json(state.audit_verification.status(&actor).await?))
}
