//! Resumable uploads: the tus 1.0 protocol (core, creation, expiration and termination), so
//! existing tus clients such as tus-js-client work unchanged.
//!
//! `POST /api/v1/channels/{id}/uploads` with `Upload-Length` and `Upload-Metadata`
//! (`filename`, optional `text`: the message to post) creates an upload and answers its
//! `Location`; `HEAD` on it tells the offset reached; `PATCH` with
//! `Content-Type: application/offset+octet-stream` and `Upload-Offset` appends bytes (what
//! arrives before a broken connection is kept, and a server that stops mid-request keeps
//! what it had synced, at most 1 MiB short); `DELETE` abandons it. When the last byte
//! arrives, the file is posted in the channel; an empty file (`Upload-Length: 0`) is
//! complete, and posted, as it is created, since tus clients send no `PATCH` for it
//! (one that does gets `204` at offset 0). Creation, `HEAD` and `PATCH` answer
//! `Upload-Expires`: an upload that makes no progress until then is removed (`410
//! upload_expired` until it is). Every tus response carries `Tus-Resumable`.
//! Authorization is decided before protocol headers are checked, so a stranger learns
//! nothing from the answers.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::domain::{ChannelId, FileId, FileName, MessageBody};
use crate::error::Error;
use crate::files::UploadState;
use crate::http::error::ApiError;
use crate::http::extract::{ApiPath, Auth};
use crate::http::state::AppState;

const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
const TUS_VERSION: HeaderName = HeaderName::from_static("tus-version");
const TUS_EXTENSION: HeaderName = HeaderName::from_static("tus-extension");
const TUS_MAX_SIZE: HeaderName = HeaderName::from_static("tus-max-size");
const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
const UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
const UPLOAD_DEFER_LENGTH: HeaderName = HeaderName::from_static("upload-defer-length");
const UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
const VERSION: &str = "1.0.0";

/// Adds `Tus-Resumable` to any answer, success or error.
fn tus<E: IntoResponse>(result: Result<Response, E>) -> Response {
    let mut response = match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let h = response.headers_mut();
    h.insert(TUS_RESUMABLE, HeaderValue::from_static(VERSION));
    if response.status() == StatusCode::PRECONDITION_FAILED {
        response
            .headers_mut()
            .insert(TUS_VERSION, HeaderValue::from_static(VERSION));
    }
    response
}

/// Maps a service error, answering `423 Locked` for an upload another request is writing to.
pub(crate) fn service(err: Error) -> ApiError {
    if let Error::Conflict {
        code: "upload_busy",
        message,
    } = &err
    {
        return ApiError::new(StatusCode::LOCKED, "upload_busy", message.clone());
    }
    err.into()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn require_version(headers: &HeaderMap) -> Result<(), ApiError> {
    if header_str(headers, &TUS_RESUMABLE) == Some(VERSION) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "tus_version_unsupported",
        "send Tus-Resumable: 1.0.0",
    ))
}

fn bad(code: &'static str, message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

fn parse_u64(headers: &HeaderMap, name: &HeaderName, code: &'static str) -> Result<u64, ApiError> {
    header_str(headers, name)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| bad(code, &format!("send {name} as a non-negative integer")))
}

/// `Upload-Metadata`: comma-separated `key base64value` pairs.
fn metadata(headers: &HeaderMap) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
    let Some(raw) = header_str(headers, &UPLOAD_METADATA) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = match pair.split_once(' ') {
            Some((k, v)) => (k, v.trim()),
            None => (pair, ""),
        };
        let value = base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|_| bad("invalid_metadata", "Upload-Metadata values must be base64"))?;
        out.push((key.to_owned(), value));
    }
    Ok(out)
}

/// `Upload-Expires` (tus expiration: an RFC 9110 HTTP date), for an unfinished upload.
fn expires_header(response: &mut Response, at: Option<chrono::DateTime<chrono::Utc>>) {
    let Some(at) = at else {
        return;
    };
    let date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    if let Ok(v) = HeaderValue::from_str(&date) {
        response.headers_mut().insert(UPLOAD_EXPIRES, v);
    }
}

fn offset_headers(response: &mut Response, state: UploadState) {
    expires_header(response, state.expires_at);
    let h = response.headers_mut();
    h.insert(UPLOAD_OFFSET, HeaderValue::from(state.offset));
    h.insert(UPLOAD_LENGTH, HeaderValue::from(state.length));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// What the server supports (tus discovery).
#[utoipa::path(options, path = "/api/v1/channels/{channel_id}/uploads", tag = "files",
    params(("channel_id" = String, Path, format = Uuid)), responses((status = 204)))]
pub async fn options(State(s): State<AppState>) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(TUS_VERSION, HeaderValue::from_static(VERSION));
    h.insert(
        TUS_EXTENSION,
        HeaderValue::from_static("creation,expiration,termination"),
    );
    h.insert(TUS_MAX_SIZE, HeaderValue::from(s.files.max_file_bytes()));
    tus(Ok::<_, ApiError>(response))
}

/// Start a resumable upload (tus creation): `Upload-Length` and `Upload-Metadata`
/// (`filename`, optional `text`); answers `201` with the upload's `Location`.
#[utoipa::path(post, path = "/api/v1/channels/{channel_id}/uploads", operation_id = "create_upload", tag = "files", security(("bearer" = [])),
    params(("channel_id" = String, Path, format = Uuid)),
    responses((status = 201, description = "created; see Location"), (status = 413, description = "over the size limit or quota")))]
pub async fn create(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(c): ApiPath<ChannelId>,
    headers: HeaderMap,
) -> Response {
    tus::<ApiError>(
        async {
            s.files.check_upload(&a, c, None).await?;
            require_version(&headers)?;
            if headers.contains_key(UPLOAD_DEFER_LENGTH) && !headers.contains_key(UPLOAD_LENGTH) {
                return Err(bad(
                    "length_required",
                    "uploads of unknown length are not supported; send Upload-Length",
                ));
            }
            let length = parse_u64(&headers, &UPLOAD_LENGTH, "length_required")?;
            let mut name = FileName::sanitize("file");
            let mut text = None;
            for (key, value) in metadata(&headers)? {
                let value = String::from_utf8_lossy(&value).into_owned();
                match key.as_str() {
                    "filename" | "name" => name = FileName::sanitize(&value),
                    "text" if !value.trim().is_empty() => {
                        text = Some(MessageBody::parse("text", value)?)
                    }
                    _ => {}
                }
            }
            let view = s
                .files
                .create_upload(&a, c, name, text, length)
                .await
                .map_err(service)?;
            let mut response = (StatusCode::CREATED, axum::Json(&view)).into_response();
            if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/uploads/{}", view.id)) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
                .headers_mut()
                .insert(UPLOAD_OFFSET, HeaderValue::from(0u64));
            expires_header(&mut response, view.expires_at);
            Ok(response)
        }
        .await,
    )
}

/// How far an upload got (tus `HEAD`): `Upload-Offset` and `Upload-Length`.
#[utoipa::path(head, path = "/api/v1/uploads/{upload_id}", tag = "files", security(("bearer" = [])),
    params(("upload_id" = String, Path, format = Uuid)),
    responses((status = 200, description = "see Upload-Offset"), (status = 423, description = "a request is writing to it")))]
pub async fn head(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(id): ApiPath<FileId>,
    headers: HeaderMap,
) -> Response {
    tus::<ApiError>(
        async {
            let state = s.files.upload_state(&a, id).await.map_err(service)?;
            require_version(&headers)?;
            let mut response = StatusCode::OK.into_response();
            offset_headers(&mut response, state);
            Ok(response)
        }
        .await,
    )
}

/// Append bytes at `Upload-Offset` (tus `PATCH`, `Content-Type:
/// application/offset+octet-stream`); answers `204` with the new `Upload-Offset`.
#[utoipa::path(patch, path = "/api/v1/uploads/{upload_id}", tag = "files", security(("bearer" = [])),
    params(("upload_id" = String, Path, format = Uuid)),
    responses((status = 204, description = "see Upload-Offset"), (status = 409, description = "offset mismatch"),
        (status = 423, description = "another request is writing to it")))]
pub async fn patch(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(id): ApiPath<FileId>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        s.files.upload_state(&a, id).await.map_err(service)?;
        require_version(&headers)?;
        if header_str(&headers, &header::CONTENT_TYPE) != Some("application/offset+octet-stream") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the bytes as application/offset+octet-stream",
            ));
        }
        let offset = parse_u64(&headers, &UPLOAD_OFFSET, "offset_required")?;
        let state = s
            .files
            .append(&a, id, offset, body.into_data_stream())
            .await
            .map_err(service)?;
        let mut response = StatusCode::NO_CONTENT.into_response();
        offset_headers(&mut response, state);
        Ok(response)
    }
    .await;
    tus(result.map_err(super::files::closing))
}

/// Abandon an upload (tus termination) or delete the file it became.
#[utoipa::path(delete, path = "/api/v1/uploads/{upload_id}", tag = "files", security(("bearer" = [])),
    params(("upload_id" = String, Path, format = Uuid)), responses((status = 204)))]
pub async fn terminate(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(id): ApiPath<FileId>,
) -> Response {
    tus::<ApiError>(
        async {
            s.files.delete(&a, id).await.map_err(service)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}
