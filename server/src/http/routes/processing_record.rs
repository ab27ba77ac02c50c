//! The record of processing activities (GDPR Art. 30), generated from the policy modules,
//! the data inventory and what is installed.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::compliance::ProcessingRecord;
use crate::domain::ParseError;
use crate::http::error::ApiError;
use crate::http::extract::{ApiQuery, Auth};
use crate::http::state::AppState;

/// How the record is answered.
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordQuery {
    /// `json` (default) or `markdown`.
    pub format: Option<String>,
}

/// The record of processing activities (`processing_record.read`: compliance officers and
/// system administrators): controller, purposes, categories of data subjects and personal
/// data (the data inventory), recipients, transfers, retention per category (per workspace
/// where it differs) and security measures, as of now. `format=markdown` answers a document
/// for people. Audited as `processing_record.generated`.
#[utoipa::path(get, path = "/api/v1/compliance/processing-record", operation_id = "processing_record", tag = "compliance",
    security(("bearer" = [])), params(RecordQuery),
    responses((status = 200, body = ProcessingRecord, description = "JSON, or Markdown (`text/markdown`) with `format=markdown`"),
        (status = 403, description = "missing processing_record.read"),
        (status = 422, description = "`validation_failed`: `format`")))]
pub async fn get(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<RecordQuery>,
) -> Result<Response, ApiError> {
    let markdown = match q.format.as_deref() {
        None | Some("json") => false,
        Some("markdown" | "md") => true,
        Some(_) => return Err(ParseError::new("format", "json or markdown").into()),
    };
    let record = state.processing_record.generate(&actor).await?;
    if markdown {
        Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            record.markdown(),
        )
            .into_response())
    } else {
        Ok(axum::Json(record).into_response())
    }
}
