//! What the server shows before anyone signs in: every HTML page forbids framing and foreign
//! script whichever path served it, and metrics are read only as configured.

use concord::config::{MetricsConfig, MetricsMode};
use reqwest::Method;

use crate::harness::{spawn_app, spawn_app_with, Backend, TestApp, METRICS_TOKEN};

/// Asserts that `path` answers an HTML page carrying the document headers.
async fn assert_protected_page(app: &TestApp, path: &str, marker: &str) {
    let resp = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    let h = resp.headers().clone();
    let header = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        header("content-type").starts_with("text/html"),
        "{path}: {h:?}"
    );
    let csp = header("content-security-policy");
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{path}: {h:?}"
    );
    assert_eq!(header("x-frame-options"), "DENY", "{path}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
    assert_eq!(header("referrer-policy"), "same-origin", "{path}");
    let body = resp.text().await.unwrap();
    assert!(body.contains(marker), "{path}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_html_page_forbids_framing_and_foreign_script() {
    let web = tempfile::tempdir().unwrap();
    std::fs::write(
        web.path().join("index.html"),
        "<!doctype html><title>client entry</title>",
    )
    .unwrap();
    std::fs::write(
        web.path().join("some.file.html"),
        "<!doctype html><title>another page</title>",
    )
    .unwrap();
    std::fs::create_dir(web.path().join("assets")).unwrap();
    std::fs::write(web.path().join("assets/app.1234.js"), "console.log(1)").unwrap();
    let root = web.path().to_owned();
    let app = spawn_app_with(Backend::Sqlite, move |c| c.http.web_root = Some(root)).await;
    for (path, marker) in [
        ("/", "client entry"),
        ("/index.html", "client entry"),
        (
            "/w/0190f000-0000-7000-8000-000000000000/c/general",
            "client entry",
        ),
        ("/setup?token=abc", "client entry"),
        ("/some.file.html", "another page"),
    ] {
        assert_protected_page(&app, path, marker).await;
    }
    // Scripts are not documents: cached for a year, never sniffed.
    let js = app
        .client
        .get(format!("{}/assets/app.1234.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert_eq!(js.headers()["x-content-type-options"], "nosniff");

    // Without a built client, the landing page is protected the same way.
    let bare = spawn_app(Backend::Sqlite).await;
    assert_protected_page(&bare, "/", "Concord").await;
}

async fn metrics_status(app: &TestApp, bearer: Option<&str>) -> (u16, String) {
    let mut req = app.client.get(format!("{}/metrics", app.base));
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_off_by_default() {
    let app = spawn_app_with(Backend::Sqlite, |c| c.metrics = MetricsConfig::default()).await;
    app.call(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
    for bearer in [None, Some(METRICS_TOKEN)] {
        let (status, body) = metrics_status(&app, bearer).await;
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("route_not_found"), "{body}");
        assert!(!body.contains("concord_http_requests_total"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_in_token_mode_need_the_metrics_token() {
    // The harness configures `metrics.token`, which selects the token mode.
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    for bearer in [
        None,
        Some("wrong-token-wrong-token"),
        Some(admin.access.as_str()),
    ] {
        let (status, body) = metrics_status(&app, bearer).await;
        assert_eq!(status, 401, "{bearer:?}: {body}");
        assert!(body.contains("metrics_token_required"), "{body}");
        assert!(!body.contains("concord_http_requests_total"), "{body}");
    }
    let (status, body) = metrics_status(&app, Some(METRICS_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("concord_http_requests_total"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_in_public_mode_are_open() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.metrics = MetricsConfig {
            mode: Some(MetricsMode::Public),
            token: None,
        }
    })
    .await;
    app.call(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
    let (status, body) = metrics_status(&app, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("concord_http_requests_total"), "{body}");
}
