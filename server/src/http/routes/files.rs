//! Shared files: simple uploads, listing, details, downloads (with byte ranges), thumbnails
//! and deletion; a workspace's uploads in progress for its admins. Resumable uploads speak
//! tus in `uploads.rs`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::Deserialize;

use crate::domain::{ChannelId, FileId, FileName, MessageBody, WorkspaceId};
use crate::files::inspect;
use crate::files::{FileView, UploadInProgress};
use crate::http::error::ApiError;
use crate::http::extract::{ApiPath, ApiQuery, Auth};
use crate::http::state::AppState;

/// Largest `text` field of a simple upload (the message posted with the file).
const MAX_TEXT_FIELD: u64 = 20 * 1024;

/// The form of a simple upload: an optional `text` field first, then the `file` field.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The message posted with the file (defaults to the file name); must come before `file`.
    text: Option<String>,
    /// The file; its name is taken from the part's `filename` and sanitized.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Download options.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ContentQuery {
    /// Always download (`Content-Disposition: attachment`), even for images and PDF.
    pub download: Option<bool>,
}

/// Files shared in a channel, newest first.
#[utoipa::path(get, path = "/api/v1/channels/{channel_id}/files", operation_id = "list_files", tag = "files", security(("bearer" = [])),
    params(("channel_id" = String, Path, format = Uuid)), responses((status = 200, body = [FileView])))]
pub async fn list(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(c): ApiPath<ChannelId>,
) -> Result<Json<Vec<FileView>>, ApiError> {
    Ok(Json(s.files.list(&a, c).await?))
}

/// Share a file in a channel in one request (`multipart/form-data`); it is posted as a
/// message. For large files or unreliable networks use the resumable upload endpoint.
#[utoipa::path(post, path = "/api/v1/channels/{channel_id}/files", tag = "files", security(("bearer" = [])),
    params(("channel_id" = String, Path, format = Uuid)),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = FileView), (status = 413, description = "over the file size limit or the workspace quota; `error.limit` holds the limit in bytes")))]
pub async fn upload(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(c): ApiPath<ChannelId>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<FileView>), ClosingError> {
    upload_form(s, a, c, headers, body).await.map_err(closing)
}

/// An error answered before the request body was read to its end: the connection cannot
/// carry another request, so the client is told to close it rather than race the server.
pub struct ClosingError(ApiError);

impl IntoResponse for ClosingError {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// Marks an error as ending its connection.
pub fn closing(err: ApiError) -> ClosingError {
    ClosingError(err)
}

async fn upload_form(
    s: AppState,
    a: crate::rbac::Actor,
    c: ChannelId,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<FileView>), ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A request whose whole body is over the limit (beyond the form's own overhead) is
    // refused before any of it is read.
    let overhead = MAX_TEXT_FIELD + 64 * 1024;
    s.files
        .check_upload(&a, c, declared.map(|d| d.saturating_sub(overhead)))
        .await?;
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "multipart_required",
                "send the file as multipart/form-data with a `file` field",
            )
        })?;
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().for_field("text", MAX_TEXT_FIELD));
    let mut form =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let mut text: Option<MessageBody> = None;
    while let Some(field) = form.next_field().await.map_err(bad_form)? {
        match field.name() {
            Some("text") => {
                let raw = field.text().await.map_err(bad_form)?;
                if !raw.trim().is_empty() {
                    text = Some(MessageBody::parse("text", raw)?);
                }
            }
            Some("file") => {
                let name = FileName::sanitize(field.file_name().unwrap_or("file"));
                let view = s.files.upload(&a, c, name, text, field).await?;
                return Ok((StatusCode::CREATED, Json(view)));
            }
            _ => {}
        }
    }
    Err(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "file_missing",
        "the form has no `file` field",
    ))
}

fn bad_form(err: multer::Error) -> ApiError {
    match err {
        multer::Error::FieldSizeExceeded { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "text_too_large",
            format!("the text field may be at most {MAX_TEXT_FIELD} bytes"),
        ),
        other => ApiError::new(StatusCode::BAD_REQUEST, "invalid_form", other.to_string()),
    }
}

/// A file's details.
#[utoipa::path(get, path = "/api/v1/files/{file_id}", operation_id = "get_file", tag = "files", security(("bearer" = [])),
    params(("file_id" = String, Path, format = Uuid)), responses((status = 200, body = FileView)))]
pub async fn get(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(id): ApiPath<FileId>,
) -> Result<Json<FileView>, ApiError> {
    Ok(Json(s.files.get(&a, id).await?))
}

/// Delete a file (its uploader or a channel moderator); its contents are removed.
#[utoipa::path(delete, path = "/api/v1/files/{file_id}", operation_id = "delete_file", tag = "files", security(("bearer" = [])),
    params(("file_id" = String, Path, format = Uuid)), responses((status = 204)))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(id): ApiPath<FileId>,
) -> Result<StatusCode, ApiError> {
    s.files.delete(&a, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Download a file. Supports a single `Range` (206, or 416 if unsatisfiable). Only images
/// and PDF are served inline; everything else is an attachment of type
/// `application/octet-stream`. Every download is recorded in the audit log.
#[utoipa::path(get, path = "/api/v1/files/{file_id}/content", tag = "files", security(("bearer" = [])),
    params(("file_id" = String, Path, format = Uuid), ContentQuery),
    responses((status = 200, description = "the file", content_type = "application/octet-stream"),
        (status = 206, description = "the requested range"), (status = 416, description = "range not satisfiable"),
        (status = 410, description = "quarantined by the malware scan")))]
pub async fn content(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(id): ApiPath<FileId>,
    ApiQuery(q): ApiQuery<ContentQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let range_header = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let opened = s.files.open(&a, id, range_header.clone()).await?;
    let size = opened.view.size;
    let range = match range_header
        .as_deref()
        .map(http_range_header::parse_range_header)
    {
        // Malformed ranges are ignored (the whole file is sent), as HTTP allows.
        None | Some(Err(_)) => None,
        Some(Ok(parsed)) => match parsed.validate(size) {
            Ok(ranges) if ranges.len() == 1 => Some(ranges[0].clone()),
            // Several ranges: the whole file instead of a multipart answer.
            Ok(_) => None,
            Err(_) => {
                let mut response = ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "range_not_satisfiable",
                    format!("the file has {size} bytes"),
                )
                .into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    response.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return Ok(response);
            }
        },
    };
    let (status, start, end) = match &range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, *r.start(), *r.end() + 1),
        None => (StatusCode::OK, 0, size),
    };
    let mut stream = opened.contents.read(start..end);
    // The first piece is read before answering, so a damaged file gets an error status
    // rather than a cut-off body in most cases; damage further in cuts the body off.
    let first = if start < end {
        match stream.next().await {
            Some(Ok(bytes)) => Some(bytes),
            Some(Err(err)) => {
                tracing::error!(file = %id, error = %err, "stored file failed verification");
                return Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "file_corrupt",
                    "the stored file failed its integrity check",
                ));
            }
            None => None,
        }
    } else {
        None
    };
    let body = Body::from_stream(
        futures::stream::iter(first.map(Ok))
            .chain(stream.inspect(move |item| {
                if let Err(err) = item {
                    tracing::error!(file = %id, error = %err, "stored file failed verification mid-download");
                }
            })),
    );
    let content_type = opened.view.content_type.as_deref().unwrap_or("");
    let inline = inspect::inline(content_type) && q.download != Some(true);
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    let served_type = if inspect::inline(content_type) {
        content_type
    } else {
        "application/octet-stream"
    };
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(static_type(served_type)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(r) = &range {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{size}", r.start(), r.end())) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&disposition(inline, &opened.view.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{id}\"")) {
        h.insert(header::ETAG, v);
    }
    safety_headers(h);
    Ok(response)
}

/// A workspace's uploads in progress, oldest first: who, in which channel, declared and
/// received bytes, when each expires (needs `messages.moderate` on the workspace).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/uploads", tag = "files", security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid)), responses((status = 200, body = [UploadInProgress])))]
pub async fn uploads_in_progress(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(w): ApiPath<WorkspaceId>,
) -> Result<Json<Vec<UploadInProgress>>, ApiError> {
    Ok(Json(s.files.uploads_in_progress(&a, w).await?))
}

/// Cancel an upload in progress in the workspace: its bytes are removed and its reservation
/// released (needs `messages.moderate` on the workspace; `423` while a request writes to it).
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/uploads/{upload_id}", tag = "files",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("upload_id" = String, Path, format = Uuid)),
    responses((status = 204, description = "cancelled"), (status = 423, description = "a request is writing to it")))]
pub async fn cancel_upload(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath((w, id)): ApiPath<(WorkspaceId, FileId)>,
) -> Result<StatusCode, ApiError> {
    s.files
        .cancel_upload(&a, w, id)
        .await
        .map_err(super::uploads::service)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A thumbnail of an image file (PNG, at most 320 pixels a side). An image over the
/// thumbnail limits has none: `422 image_too_large` (`image_undecodable` if it does not
/// decode).
#[utoipa::path(get, path = "/api/v1/files/{file_id}/thumbnail", tag = "files", security(("bearer" = [])),
    params(("file_id" = String, Path, format = Uuid)),
    responses((status = 200, description = "the thumbnail", content_type = "image/png"), (status = 404),
        (status = 422, description = "no thumbnail: `image_too_large` or `image_undecodable`")))]
pub async fn thumbnail(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(id): ApiPath<FileId>,
) -> Result<Response, ApiError> {
    let png = s.files.thumbnail(&a, id).await?;
    let mut response = Response::new(Body::from(png));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline; filename=\"thumbnail.png\""),
    );
    safety_headers(h);
    Ok(response)
}

/// Headers on every file body: no sniffing, no script, no shared caches.
fn safety_headers(h: &mut HeaderMap) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
        ),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
}

fn static_type(content_type: &str) -> &'static str {
    inspect::INLINE
        .iter()
        .find(|t| **t == content_type)
        .copied()
        .unwrap_or("application/octet-stream")
}

/// `Content-Disposition` with an ASCII fallback and the UTF-8 name (RFC 6266, RFC 8187).
fn disposition(inline: bool, name: &str) -> String {
    let kind = if inline { "inline" } else { "attachment" };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::disposition;

    #[test]
    fn dispositions_quote_safely() {
        assert_eq!(
            disposition(false, "résumé v2.pdf"),
            "attachment; filename=\"r_sum_ v2.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20v2%2Epdf"
        );
    }
}
