//! Liveness, readiness, metrics and the landing page.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::config::MetricsMode;
use crate::http::error::ApiError;
use crate::http::state::AppState;

/// Health status.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`.
    status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// The process can serve: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, description = "database unreachable")))]
pub async fn readyz(State(state): State<AppState>) -> Result<axum::Json<Health>, ApiError> {
    state.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the database is not reachable",
        )
    })?;
    Ok(axum::Json(Health { status: "ok" }))
}

/// Prometheus metrics in text format. Off unless configured (`metrics.mode`); in `token` mode
/// the scraper sends `Authorization: Bearer <metrics.token>`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "text/plain"),
        (status = 401, description = "metrics.mode is token and the token is missing or wrong"),
        (status = 404, description = "metrics.mode is off")))]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.metrics_access.effective_mode() {
        MetricsMode::Off => {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                "route_not_found",
                "no route for GET /metrics",
            )
            .into_response()
        }
        MetricsMode::Token => {
            let expected = state
                .metrics_access
                .token
                .as_ref()
                .map(|t| t.expose().as_bytes())
                .unwrap_or_default();
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default()
                .as_bytes();
            let matches = !expected.is_empty() && bool::from(given.ct_eq(expected));
            if !matches {
                let mut response = ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "metrics_token_required",
                    "send the metrics token as a bearer token",
                )
                .into_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer"),
                );
                return response;
            }
        }
        MetricsMode::Public => {}
    }
    let (open, idle) = state.store.pool_usage();
    metrics::gauge!("concord_db_pool_connections", "state" => "open").set(f64::from(open));
    metrics::gauge!("concord_db_pool_connections", "state" => "idle").set(f64::from(idle));
    // Read at each scrape, so it is right whichever server opened or resolved them.
    match state.workflows.open_incidents().await {
        Ok(n) => metrics::gauge!("concord_workflow_incidents_open").set(n as f64),
        Err(e) => tracing::warn!(error = %e, "cannot count open workflow incidents"),
    }
    let body = state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// The web client, or a landing page when no built client is present.
#[utoipa::path(get, path = "/", tag = "operations", responses((status = 200, content_type = "text/html")))]
pub async fn index(State(state): State<AppState>) -> Response {
    match &state.web_root {
        Some(root) => crate::http::web::index_html(root).await,
        None => Html(include_str!("index.html")).into_response(),
    }
}
