//! eDiscovery: search a workspace's content and export it, for compliance officers.

use axum::extract::State;
use axum::response::IntoResponse;

use crate::ediscovery::{DiscoveryPage, ExportRequest, SearchRequest};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, Auth};
use crate::http::state::AppState;

/// Search a workspace's messages, files and named document versions by custodian, channel,
/// date range and keywords (`ediscovery.read`: compliance officers and system
/// administrators; no channel membership needed). Deleted content a legal hold or grace
/// period keeps is included, flagged `deleted`. Without `query` the results come straight
/// from storage (messages, then files, then versions, each oldest first); with it, from the
/// search index (live content) plus the kept deleted messages matching it, oldest first, at
/// most `ediscovery.max_keyword_matches` of them (`truncated: true` when there were more).
/// Audited as `ediscovery.searched` with the criteria and the counts (never the keywords).
#[utoipa::path(post, path = "/api/v1/compliance/ediscovery/search", operation_id = "ediscovery_search", tag = "compliance",
    security(("bearer" = [])), request_body = SearchRequest,
    responses((status = 200, body = DiscoveryPage), (status = 403, description = "missing ediscovery.read"),
        (status = 404, description = "no such workspace"),
        (status = 422, description = "`invalid_criteria`: a date, kind, limit, cursor or id the workspace does not know, named in the message")))]
pub async fn search(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(request): ApiJson<SearchRequest>,
) -> Result<axum::Json<DiscoveryPage>, ApiError> {
    Ok(axum::Json(state.ediscovery.search(&actor, request).await?))
}

/// Export everything the criteria select, as the response body (`ediscovery.read`):
/// `jsonl` (one item per line), `csv` (RFC 4180), `zip` (`messages.jsonl`, the files' bytes
/// under `files/`, document versions as text under `documents/`, and `manifest.json` with
/// every entry's SHA-256), `actiance` (Actiance XML) or `globalrelay` (a ZIP of RFC 5322
/// messages, one per conversation and day). CSV cells a spreadsheet would read as a formula
/// (led by `=`, `+`, `-`, `@`, a tab or a carriage return) are prefixed with `'`. Built whole
/// within `ediscovery.max_export_items` and `ediscovery.max_export_mib` (texts, and files'
/// bytes in a ZIP), and complete or refused: larger criteria, or keywords matching more than
/// a search considers, are refused (`export_too_large`), to be narrowed (date ranges,
/// channels, custodians) and exported in parts. At most `ediscovery.concurrent_exports` are
/// built at once; a further one waits up to `ediscovery.export_wait_seconds`, then is
/// refused (`export_busy`, 503 with `Retry-After`). Audited as `ediscovery.exported` with
/// the criteria, counts and the output's SHA-256.
#[utoipa::path(post, path = "/api/v1/compliance/ediscovery/exports", operation_id = "ediscovery_export", tag = "compliance",
    security(("bearer" = [])), request_body = ExportRequest,
    responses((status = 200, description = "the export, as an attachment (`Content-Disposition`)", content_type = "application/octet-stream"),
        (status = 403, description = "missing ediscovery.read"),
        (status = 404, description = "no such workspace"),
        (status = 422, description = "`unknown_format`; `invalid_criteria`; `export_too_large`"),
        (status = 503, description = "`export_busy`: other exports are being built; try again after `Retry-After` seconds")))]
pub async fn export(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(request): ApiJson<ExportRequest>,
) -> Result<axum::response::Response, ApiError> {
    let export = state.ediscovery.export(&actor, request).await?;
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                export.content_type.to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", export.file_name),
            ),
            (axum::http::header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        export.bytes,
    )
        .into_response())
}
