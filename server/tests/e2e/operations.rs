//! Operations: health, readiness, metrics, request ids, error shapes for unknown routes.

use reqwest::Method;

use crate::harness::both_backends;

both_backends! {
    async fn health_metrics_and_request_ids(app) {
        let health = app.call(Method::GET, "/healthz", None, None).await;
        assert_eq!(health.expect(200)["status"], "ok");
        let ready = app.call(Method::GET, "/readyz", None, None).await;
        assert_eq!(ready.expect(200)["status"], "ok");
        let id = ready.headers.get("x-request-id").expect("request id header").to_str().unwrap();
        assert_eq!(id.len(), 36);

        // Every response carries a request id; a client-supplied one is kept.
        let resp = app.client.get(format!("{}/healthz", app.base)).header("x-request-id", "trace-me-123").send().await.unwrap();
        assert_eq!(resp.headers()["x-request-id"], "trace-me-123");

        // Unknown routes and methods answer in the error format.
        app.call(Method::GET, "/api/v1/nope", None, None).await.expect_error(404, "route_not_found");
        app.call(Method::DELETE, "/healthz", None, None).await.expect_error(405, "method_not_allowed");

        // Metrics in Prometheus text format, by route, with pool usage.
        let text = app.metrics().await;
        assert!(text.contains("concord_http_requests_total"), "{text}");
        assert!(text.contains(r#"route="/readyz""#), "{text}");
        assert!(text.contains("concord_http_request_duration_seconds_bucket"), "{text}");
        assert!(text.contains("concord_db_pool_connections"), "{text}");

        // The landing page is served.
        let page = app.client.get(format!("{}/", app.base)).send().await.unwrap();
        assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    }
}
