//! Liveness, readiness, metrics and the landing page.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

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

/// Prometheus metrics in text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let (open, idle) = state.store.pool_usage();
    metrics::gauge!("concord_db_pool_connections", "state" => "open").set(f64::from(open));
    metrics::gauge!("concord_db_pool_connections", "state" => "idle").set(f64::from(idle));
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
