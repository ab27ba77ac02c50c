//! Documents: details, sharing, versions, export, and the Yjs sync endpoint.

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::docs::{
    self, Changes, CommentView, DocumentView, Format, GrantView, Principal, VersionView,
};
use crate::domain::{
    ChannelId, CommentId, DocumentId, ParseError, RoleId, UserId, VersionId, WorkspaceId,
};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, Auth, Client};
use crate::http::routes::sso::cookie;
use crate::http::state::AppState;
use crate::rbac::Level;

/// Cookie a browser may carry the access token in for the Yjs endpoint (accepted only from
/// an allowed `Origin`).
pub const TOKEN_COOKIE: &str = "concord_access_token";

/// The subprotocol the Yjs endpoint answers when a client offers it.
pub const YJS_PROTOCOL: &str = "concord.yjs.v1";

/// Prefix of the offered subprotocol that carries an access token.
const BEARER_PROTOCOL: &str = "concord.bearer.";

/// A new document.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"title": "Release plan", "general_access": "edit"}))]
pub struct CreateDocumentRequest {
    /// Title (1 to 200 characters).
    pub title: String,
    /// Link it to this channel: its members may edit.
    #[serde(default)]
    pub channel_id: Option<ChannelId>,
    /// What every workspace member gets: `none` (default), `view`, `comment` or `edit`.
    #[serde(default)]
    pub general_access: Option<String>,
}

/// Changes; omitted fields stay.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"title": "Release plan v2"}))]
pub struct UpdateDocumentRequest {
    /// New title.
    #[serde(default)]
    pub title: Option<String>,
    /// Move to this channel; `null` unlinks.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub channel_id: Option<Option<ChannelId>>,
    /// New general access.
    #[serde(default)]
    pub general_access: Option<String>,
}

/// A field that may be absent (left as it is), `null` (cleared) or a value.
pub(super) mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// A grant of access to a person or to everyone holding a workspace role.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user_id": "01939e4e-0000-7000-8000-000000000001", "level": "view"}))]
pub struct GrantRequest {
    /// A member of the workspace.
    #[serde(default)]
    pub user_id: Option<UserId>,
    /// Or a workspace role.
    #[serde(default)]
    pub role_id: Option<RoleId>,
    /// `view`, `comment`, `edit` or `manage`.
    pub level: Level,
}

/// A new named version of the current content.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Before review"}))]
pub struct CreateVersionRequest {
    /// Name (1 to 200 characters).
    pub name: String,
}

/// A new comment.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"text": "Should this say Friday?"}))]
pub struct CommentRequest {
    /// Text (1 to 4,000 characters).
    pub text: String,
    /// Where it points: a Yjs relative position (`Y.relativePositionToJSON`), kept as given.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub anchor: Option<serde_json::Value>,
}

/// Resolve or reopen a comment.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"resolved": true}))]
pub struct ResolveRequest {
    /// Whether the comment is resolved.
    pub resolved: bool,
}

/// Export options.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `text`, `markdown` or `json` (default `text`).
    #[serde(default)]
    pub format: Option<String>,
}

/// Yjs connection options (the stock y-websocket client's `params`).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SyncQuery {
    /// An access token, for clients that cannot set `Sec-WebSocket-Protocol` (URLs reach
    /// proxy logs: prefer the `concord.bearer.<token>` subprotocol).
    #[serde(default)]
    pub token: Option<String>,
}

fn principal(user: Option<UserId>, role: Option<RoleId>) -> Result<Principal, ApiError> {
    match (user, role) {
        (Some(u), None) => Ok(Principal::User(u)),
        (None, Some(r)) => Ok(Principal::Role(r)),
        _ => Err(ParseError {
            field: "user_id",
            message: "give exactly one of user_id and role_id".into(),
        }
        .into()),
    }
}

/// Create a document.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/documents", operation_id = "create_document", tag = "documents", security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid)), request_body = CreateDocumentRequest,
    responses((status = 201, body = DocumentView)))]
pub async fn create(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(w): ApiPath<WorkspaceId>,
    ApiJson(req): ApiJson<CreateDocumentRequest>,
) -> Result<(StatusCode, Json<DocumentView>), ApiError> {
    let view = s
        .docs
        .create(
            &a,
            w,
            &req.title,
            req.channel_id,
            req.general_access.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The workspace's documents you can open.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/documents", operation_id = "list_documents", tag = "documents", security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid)), responses((status = 200, body = [DocumentView])))]
pub async fn list(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(w): ApiPath<WorkspaceId>,
) -> Result<Json<Vec<DocumentView>>, ApiError> {
    Ok(Json(s.docs.list(&a, w).await?))
}

/// One document.
#[utoipa::path(get, path = "/api/v1/documents/{document_id}", operation_id = "get_document", tag = "documents", security(("bearer" = [])),
    params(("document_id" = String, Path, format = Uuid)), responses((status = 200, body = DocumentView)))]
pub async fn get(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(d): ApiPath<DocumentId>,
) -> Result<Json<DocumentView>, ApiError> {
    Ok(Json(s.docs.get(&a, d).await?))
}

/// Rename, move (link to another channel or unlink) or change general access.
#[utoipa::path(patch, path = "/api/v1/documents/{document_id}", operation_id = "update_document", tag = "documents", security(("bearer" = [])),
    params(("document_id" = String, Path, format = Uuid)), request_body = UpdateDocumentRequest,
    responses((status = 200, body = DocumentView)))]
pub async fn update(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(d): ApiPath<DocumentId>,
    ApiJson(req): ApiJson<UpdateDocumentRequest>,
) -> Result<Json<DocumentView>, ApiError> {
    let changes = Changes {
        title: req.title,
        channel: req.channel_id,
        general_access: req.general_access,
    };
    Ok(Json(s.docs.update(&a, d, changes).await?))
}

/// Delete a document, its content and versions.
#[utoipa::path(delete, path = "/api/v1/documents/{document_id}", operation_id = "delete_document", tag = "documents", security(("bearer" = [])),
    params(("document_id" = String, Path, format = Uuid)), responses((status = 204, description = "deleted")))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(d): ApiPath<DocumentId>,
) -> Result<StatusCode, ApiError> {
    s.docs.delete(&a, d).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who has been granted access.
#[utoipa::path(get, path = "/api/v1/documents/{document_id}/access", tag = "documents", security(("bearer" = [])),
    params(("document_id" = String, Path, format = Uuid)), responses((status = 200, body = [GrantView])))]
pub async fn grants(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(d): ApiPath<DocumentId>,
) -> Result<Json<Vec<GrantView>>, ApiError> {
    Ok(Json(s.docs.grants(&a, d).await?))
}

/// Grant a member or a workspace role access (replaces an earlier grant to them).
#[utoipa::path(put, path = "/api/v1/documents/{document_id}/access", tag = "documents", security(("bearer" = [])),
    params(("document_id" = String, Path, format = Uuid)), request_body = GrantRequest,
    responses((status = 200, body = [GrantView])))]
pub async fn grant(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(d): ApiPath<DocumentId>,
    ApiJson(req): ApiJson<GrantRequest>,
) -> Result<Json<Vec<GrantView>>, ApiError> {
    let to = principal(req.user_id, req.role_id)?;
    Ok(Json(s.docs.grant(&a, d, to, req.level).await?))
}

/// Remove a person's grant.
#[utoipa::path(delete, path = "/api/v1/documents/{document_id}/access/users/{user_id}", tag = "documents", security(("bearer" = [])),
    params(("document_id" = String, Path, format = Uuid), ("user_id" = String, Path, format = Uuid)),
    responses((status = 204, description = "removed")))]
pub async fn revoke_user(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath((d, u)): ApiPath<(DocumentId, UserId)>,
) -> Result<StatusCode, ApiError> {
    s.docs.revoke(&a, d, Principal::User(u)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a workspace role's grant.
#[utoipa::path(delete, path = "/api/v1/documents/{document_id}/access/roles/{role_id}", tag = "documents", security(("bearer" = [])),
    params(("document_id" = String, Path, format = Uuid), ("role_id" = String, Path, format = Uuid)),
    responses((status = 204, description = "removed")))]
pub async fn revoke_role(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath((d, r)): ApiPath<(DocumentId, RoleId)>,
) -> Result<StatusCode, ApiError> {
    s.docs.revoke(&a, d, Principal::Role(r)).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn export_response(body: String, title: &str, format: Format) -> Response {
    let safe: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " -_.()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let disposition = format!(
        "attachment; filename=\"{}.{}\"",
        safe.trim(),
        format.extension()
    );
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn format_of(query: &ExportQuery) -> Result<Format, ApiError> {
    let name = query.format.as_deref().unwrap_or("text");
    Format::parse(name).ok_or_else(|| {
        ParseError {
            field: "format",
            message: "must be text, markdown or json".into(),
        }
        .into()
    })
}

/// Export the current content as plain text, markdown or JSON.
#[utoipa::path(get, path = "/api/v1/documents/{document_id}/export", operation_id = "export_document", tag = "documents", security(("bearer" = [])),
    params(("document_id" = String, Path, format = Uuid), ExportQuery),
    responses((status = 200, description = "the document's content")))]
pub async fn export(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(d): ApiPath<DocumentId>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let format = format_of(&q)?;
    let (body, title) = s.docs.export(&a, d, format, None).await?;
    Ok(export_response(body, &title, format))
}

/// The document's named versions, newest first.
#[utoipa::path(get, path = "/api/v1/documents/{document_id}/versions", operation_id = "document_versions", tag = "documents", security(("bearer" = [])),
    params(("document_id" = String, Path, format = Uuid)), responses((status = 200, body = [VersionView])))]
pub async fn versions(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(d): ApiPath<DocumentId>,
) -> Result<Json<Vec<VersionView>>, ApiError> {
    Ok(Json(s.docs.versions(&a, d).await?))
}

/// Save the current content as a named version.
#[utoipa::path(post, path = "/api/v1/documents/{document_id}/versions", tag = "documents", security(("bearer" = [])),
    params(("document_id" = String, Path, format = Uuid)), request_body = CreateVersionRequest,
    responses((status = 201, body = VersionView)))]
pub async fn create_version(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(d): ApiPath<DocumentId>,
    ApiJson(req): ApiJson<CreateVersionRequest>,
) -> Result<(StatusCode, Json<VersionView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.docs.create_version(&a, d, &req.name).await?),
    ))
}

/// View a version's content as plain text, markdown or JSON.
#[utoipa::path(get, path = "/api/v1/documents/{document_id}/versions/{version_id}", tag = "documents", security(("bearer" = [])),
    params(("document_id" = String, Path, format = Uuid), ("version_id" = String, Path, format = Uuid), ExportQuery),
    responses((status = 200, description = "the version's content")))]
pub async fn version(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath((d, v)): ApiPath<(DocumentId, VersionId)>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let format = format_of(&q)?;
    let (body, title) = s.docs.export(&a, d, format, Some(v)).await?;
    Ok(export_response(body, &title, format))
}

/// Restore a version: its content comes back as a new change everyone sees live.
#[utoipa::path(post, path = "/api/v1/documents/{document_id}/versions/{version_id}/restore", tag = "documents", security(("bearer" = [])),
    params(("document_id" = String, Path, format = Uuid), ("version_id" = String, Path, format = Uuid)),
    responses((status = 204, description = "restored")))]
pub async fn restore(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath((d, v)): ApiPath<(DocumentId, VersionId)>,
) -> Result<StatusCode, ApiError> {
    s.docs.restore_version(&a, d, v).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The document's comments, oldest first.
#[utoipa::path(get, path = "/api/v1/documents/{document_id}/comments", tag = "documents", security(("bearer" = [])),
    params(("document_id" = String, Path, format = Uuid)), responses((status = 200, body = [CommentView])))]
pub async fn comments(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(d): ApiPath<DocumentId>,
) -> Result<Json<Vec<CommentView>>, ApiError> {
    Ok(Json(s.docs.comments(&a, d).await?))
}

/// Comment on a document (needs `comment` access or more).
#[utoipa::path(post, path = "/api/v1/documents/{document_id}/comments", tag = "documents", security(("bearer" = [])),
    params(("document_id" = String, Path, format = Uuid)), request_body = CommentRequest,
    responses((status = 201, body = CommentView)))]
pub async fn add_comment(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(d): ApiPath<DocumentId>,
    ApiJson(req): ApiJson<CommentRequest>,
) -> Result<(StatusCode, Json<CommentView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.docs.add_comment(&a, d, &req.text, req.anchor).await?),
    ))
}

/// Resolve or reopen a comment (its author, or anyone who may edit).
#[utoipa::path(patch, path = "/api/v1/documents/{document_id}/comments/{comment_id}", tag = "documents", security(("bearer" = [])),
    params(("document_id" = String, Path, format = Uuid), ("comment_id" = String, Path, format = Uuid)),
    request_body = ResolveRequest, responses((status = 200, body = CommentView)))]
pub async fn resolve_comment(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath((d, c)): ApiPath<(DocumentId, CommentId)>,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> Result<Json<CommentView>, ApiError> {
    Ok(Json(s.docs.resolve_comment(&a, d, c, req.resolved).await?))
}

/// Delete a comment (its author, or a manager of the document).
#[utoipa::path(delete, path = "/api/v1/documents/{document_id}/comments/{comment_id}", tag = "documents", security(("bearer" = [])),
    params(("document_id" = String, Path, format = Uuid), ("comment_id" = String, Path, format = Uuid)),
    responses((status = 204, description = "deleted")))]
pub async fn delete_comment(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath((d, c)): ApiPath<(DocumentId, CommentId)>,
) -> Result<StatusCode, ApiError> {
    s.docs.delete_comment(&a, d, c).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The Yjs sync endpoint for a stock `y-websocket` client:
/// `new WebsocketProvider('wss://HOST/api/v1/yjs', documentId, ydoc,
/// {protocols: ['concord.yjs.v1', 'concord.bearer.' + token]})` (the server answers
/// `concord.yjs.v1`); clients that cannot set protocols pass `{params: {token}}` instead. A
/// browser's `concord_access_token` cookie is accepted only from an allowed `Origin`
/// (`public_url`, `http.allowed_origins`); from any other page the handshake gets 403
/// `origin_not_allowed`. Refusals after the handshake close with 4401 (not signed in), 4403
/// (no access), 4400 (malformed) or 4413 (too large).
#[utoipa::path(get, path = "/api/v1/yjs/{document_id}", tag = "documents",
    params(("document_id" = String, Path, format = Uuid), SyncQuery),
    responses((status = 101, description = "switching to the WebSocket protocol"),
        (status = 403, description = "`origin_not_allowed`: a sign-in cookie sent from a page that may not use it")))]
pub async fn sync(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    ApiPath(d): ApiPath<DocumentId>,
    ApiQuery(q): ApiQuery<SyncQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let offered: Vec<String> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_owned()))
        .collect();
    let explicit = offered
        .iter()
        .find_map(|p| p.strip_prefix(BEARER_PROTOCOL).map(str::to_owned))
        .or(q.token);
    let token = match explicit {
        Some(token) => Some(token),
        None => match cookie(&headers, TOKEN_COOKIE) {
            // A cookie is sent whatever page opens the socket: only allowed pages may use it.
            Some(_) if !state.socket_origins.allows(&headers) => {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "origin_not_allowed",
                    "this page may not open a document connection with the sign-in cookie",
                )
                .into_response();
            }
            found => found,
        },
    };
    let max = state.docs.limits().max_update_bytes + 64 * 1024;
    let services = docs::sync::Services {
        docs: state.docs.clone(),
        auth: state.auth.clone(),
        going_away: state.going_away.clone(),
    };
    let mut upgrade = upgrade.max_message_size(max).max_frame_size(max);
    if offered.iter().any(|p| p == YJS_PROTOCOL) {
        upgrade = upgrade.protocols([YJS_PROTOCOL]);
    }
    upgrade.on_upgrade(move |socket| docs::sync::serve(socket, services, d, token, client.ip))
}
