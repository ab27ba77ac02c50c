//! The built web client (`client-web/dist`), served at `/`. Content-hashed assets are cached for
//! a year; every other path outside `/api` answers with `index.html`, so the client's own routes
//! (`/w/…/c/…`, `/setup?token=…`) survive a reload. Every HTML response, whichever route or file
//! produced it, leaves through [`document_headers`], which gives it a strict
//! Content-Security-Policy (user content can never bring its own script) and forbids framing.

use std::convert::Infallible;
use std::path::Path;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::ServeDir;

use crate::http::error::ApiError;
use crate::http::state::AppState;

/// Scripts only from the server itself; inline styles are allowed for the editor's carets.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' blob: data:; media-src 'self' blob:; font-src 'self' data:; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// Headers every document (HTML, XHTML, SVG) is served with.
const DOCUMENT_HEADERS: [(HeaderName, &str); 4] = [
    (header::CONTENT_SECURITY_POLICY, CSP),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "same-origin"),
];

/// Adds the CSP and framing headers to a response that a browser would render as a document,
/// whichever handler or file it came from (`/`, `/index.html`, a deep link, any `.html` file of
/// the client, the landing page). A handler that set its own policy keeps it.
pub async fn document_headers(mut response: Response) -> Response {
    let document = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let essence = v.split(';').next().unwrap_or_default().trim();
            ["text/html", "application/xhtml+xml", "image/svg+xml"]
                .iter()
                .any(|t| essence.eq_ignore_ascii_case(t))
        })
        .unwrap_or(false);
    if document {
        let headers = response.headers_mut();
        for (name, value) in DOCUMENT_HEADERS {
            headers
                .entry(name)
                .or_insert(HeaderValue::from_static(value));
        }
    }
    response
}

/// Answers what no API route matched: a file of the web client, its `index.html`, or the API's
/// JSON 404.
pub async fn fallback(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let api = path == "/api" || path.starts_with("/api/");
    let root = match (&state.web_root, api) {
        (Some(root), false) => root.clone(),
        _ => return super::not_found(req).await.into_response(),
    };
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return super::not_found(req).await.into_response();
    }
    let file_like = path
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'));
    if !file_like {
        return index_html(&root).await;
    }
    let Ok(mut response) = ServeDir::new(&*root)
        .oneshot(req)
        .await
        .map_err(|e: Infallible| e);
    if response.status() == StatusCode::NOT_FOUND {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            format!("no file {path} in the web client"),
        )
        .into_response();
    }
    let cache = if path.starts_with("/assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response.map(Body::new)
}

/// The client's entry page, never cached so a new build is picked up at once.
pub async fn index_html(root: &Path) -> Response {
    match tokio::fs::read(root.join("index.html")).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, root = %root.display(), "the web client cannot be read");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "web_client_unavailable",
                "the web client is not built: run `npm ci && npm run build` in client-web",
            )
            .into_response()
        }
    }
}
