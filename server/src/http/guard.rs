//! Per-request middleware: the authorization guard, request metrics and the trace span.
//!
//! The guard gives every request a [`DecisionSlot`]; the `Auth` extractor wires the actor's
//! decisions into it. After the handler, a non-public route that answered with success
//! without any authorization decision is a bug: the response is replaced by a 500 so the
//! data never leaves, and the event is logged. The decision is exposed in the
//! `x-concord-authz` response header (`allowed`, `denied`, `public` or `none`), which the
//! route-coverage test reads.

use std::any::Any;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Response};
use axum::middleware::Next;
use axum::response::IntoResponse;
use tracing::Span;

use super::error::ApiError;
use super::PUBLIC_ROUTES;
use crate::rbac::{Decision, DecisionSlot};

/// The response header naming the authorization outcome.
pub const AUTHZ_HEADER: &str = "x-concord-authz";

/// Runs the handler, checks it reached an authorization decision, records metrics.
pub async fn guard(mut req: Request, next: Next) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    Span::current().record("route", route.as_deref().unwrap_or("unmatched"));
    let slot = DecisionSlot::default();
    req.extensions_mut().insert(slot.clone());
    metrics::gauge!("concord_http_requests_in_flight").increment(1.0);
    let mut response = next.run(req).await;
    metrics::gauge!("concord_http_requests_in_flight").decrement(1.0);

    // A HEAD request is answered by the GET route (without its body): it is as public.
    let as_method = if method == "HEAD" {
        "GET"
    } else {
        method.as_str()
    };
    let public = route.as_deref().is_none_or(|r| {
        PUBLIC_ROUTES
            .iter()
            .any(|(m, p)| *m == as_method && *p == r)
    });
    let outcome = match slot.get() {
        Some(Decision::Allowed) => "allowed",
        Some(Decision::Denied) => "denied",
        None if public => "public",
        None => "none",
    };
    if outcome == "none" && response.status().is_success() {
        tracing::error!(route = route.as_deref().unwrap_or("?"), %method, "response withheld: no authorization decision");
        response =
            ApiError::internal(&"route answered without an authorization decision").into_response();
    }
    response
        .headers_mut()
        .insert(AUTHZ_HEADER, HeaderValue::from_static(outcome));

    let route_label = route.unwrap_or_else(|| "unmatched".into());
    let status = response.status().as_u16().to_string();
    metrics::counter!("concord_http_requests_total", "method" => method.clone(), "route" => route_label.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("concord_http_request_duration_seconds", "method" => method, "route" => route_label)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The span of one request: method, matched route (filled in by [`guard`] after routing;
/// never the raw URI, which may hold tokens) and request id.
pub fn make_span(req: &Request) -> Span {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!("request", method = %req.method(), route = tracing::field::Empty, request_id)
}

/// A panic in a handler becomes an opaque 500, logged with its reference.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let detail = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into());
    ApiError::internal(&format!("handler panicked: {detail}")).into_response()
}
