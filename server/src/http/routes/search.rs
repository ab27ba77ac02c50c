//! Full-text search over a workspace's messages, documents and files.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use crate::domain::WorkspaceId;
use crate::http::error::ApiError;
use crate::http::extract::{ApiPath, ApiQuery, Auth};
use crate::http::state::AppState;
use crate::search::{SearchPage, SearchRequest};

/// What to search for.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Slack-like query: words, `"phrases"`, `-excluded`, `in:#channel`, `in:@user`,
    /// `from:@user` (id, email, display name or email handle; `from:@"Ann Lee"`), `before:`/`after:`/`on:YYYY-MM-DD`, `has:link|file|reaction|pin`,
    /// `is:thread`. Empty lists everything visible.
    #[param(example = "deploy in:#general -friday")]
    #[serde(default)]
    pub q: String,
    /// `relevance` (default) or `date` (newest first).
    #[serde(default)]
    pub sort: Option<String>,
    /// Results per page (1 to 100, default 20).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Search the messages, documents and files of a workspace the caller may read now.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/search", tag = "search", security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), SearchQuery),
    responses((status = 200, body = SearchPage), (status = 422, description = "malformed query; the message says where")))]
pub async fn search(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(workspace): ApiPath<WorkspaceId>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<SearchPage>, ApiError> {
    let by_date = match q.sort.as_deref() {
        None | Some("relevance") => false,
        Some("date") => true,
        Some(other) => {
            return Err(crate::domain::ParseError {
                field: "sort",
                message: format!("must be relevance or date, not {other:?}"),
            }
            .into())
        }
    };
    let request = SearchRequest {
        workspace,
        q: q.q,
        by_date,
        limit: q.limit,
        cursor: q.cursor,
    };
    Ok(Json(s.search.search(&a, request).await?))
}
