//! Sign-in limits: a burst of parallel guesses is counted before any is evaluated, a lock
//! refuses even the right password, counters name nobody at rest, and behind a trusted
//! reverse proxy each client is limited by its own address (and only then).

use serde_json::{json, Value};

use crate::harness::{both_backends, spawn_app_with, Backend, TestApp, PASSWORD};

const LOGIN: &str = "/api/v1/auth/login";

/// Signs in (or tries to) as if relayed with `X-Forwarded-For: forwarded`.
async fn login_via(
    app: &TestApp,
    forwarded: &str,
    email: &str,
    password: &str,
) -> crate::harness::Reply {
    let resp = app
        .client
        .post(format!("{}{LOGIN}", app.base))
        .header("x-forwarded-for", forwarded)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("request sent");
    crate::harness::reply(resp).await
}

/// The throttle keys stored, read straight from the database.
async fn stored_throttle_keys(app: &TestApp) -> Vec<String> {
    use sqlx::Connection;
    let sql = "SELECT throttle_key FROM login_throttle";
    match app.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .expect("sqlite");
            sqlx::query_scalar(sql)
                .fetch_all(&mut c)
                .await
                .expect("keys")
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.database_url)
                .await
                .expect("postgres");
            sqlx::query_scalar(sql)
                .fetch_all(&mut c)
                .await
                .expect("keys")
        }
    }
}

both_backends! {
    async fn parallel_guesses_cannot_outrun_the_lock(app) {
        let admin = app.bootstrap_admin().await;
        app.create_user(&admin, "vic@example.org", "Vic").await;

        // Forty guesses at once against a threshold of ten.
        let guesses = (0..40).map(|i| {
            let app = &app;
            async move {
                app.post(LOGIN, None, json!({"email": "vic@example.org", "password": format!("wrong password {i}")})).await
            }
        });
        let replies = futures::future::join_all(guesses).await;
        let evaluated = replies.iter().filter(|r| r.status == 401).count();
        let refused: Vec<_> = replies.iter().filter(|r| r.status == 429).collect();
        assert_eq!(evaluated + refused.len(), 40, "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
        assert_eq!(evaluated, 10, "only the threshold's worth of guesses is evaluated");
        for r in refused {
            r.expect_error(429, "too_many_attempts");
        }
        let failed = app.get("/api/v1/audit/events?action=auth.sign_in&outcome=failed&limit=1000", &admin.access).await;
        assert_eq!(failed.expect(200)["events"].as_array().unwrap().len(), 10);

        // Locked: the right password is refused too, and says when to come back.
        let locked = app.post(LOGIN, None, json!({"email": "vic@example.org", "password": PASSWORD})).await;
        locked.expect_error(429, "too_many_attempts");
        let retry: u64 = locked.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry > 0 && retry <= 15 * 60, "{retry}");
        // Someone else signs in from the same address.
        app.login("admin@example.org", PASSWORD).await;
    }

    async fn throttle_counters_name_no_account_or_address(app) {
        let admin = app.bootstrap_admin().await;
        app.create_user(&admin, "wes@example.org", "Wes").await;
        for _ in 0..2 {
            app.post(LOGIN, None, json!({"email": "wes@example.org", "password": "wrong password!!"})).await
                .expect_error(401, "invalid_credentials");
        }
        let keys = stored_throttle_keys(&app).await;
        assert_eq!(keys.len(), 2, "one counter for the account, one for the address: {keys:?}");
        for key in &keys {
            assert!(key.len() == 64 && key.chars().all(|c| c.is_ascii_hexdigit()), "not a blind index: {key}");
            for leak in ["127.0.0.1", "wes", "ip:", "acct:"] {
                assert!(!key.contains(leak), "{leak} in {key}");
            }
        }
    }
}

/// A server whose address limit is three failures, configured by `adjust`.
async fn limited(backend: Backend, trusted: &[&str]) -> TestApp {
    let trusted: Vec<concord::config::ProxyNet> =
        trusted.iter().map(|t| t.parse().unwrap()).collect();
    spawn_app_with(backend, move |c| {
        c.auth.ip_lockout_threshold = 3;
        c.http.trusted_proxies = trusted;
    })
    .await
}

/// Three failures relayed for 203.0.113.5, each for another (unknown) account.
async fn fail_three_times_as(app: &TestApp, forwarded: &str) {
    for i in 0..3 {
        login_via(
            app,
            forwarded,
            &format!("nobody{i}@example.org"),
            "wrong password!!",
        )
        .await
        .expect_error(401, "invalid_credentials");
    }
}

async fn session_address(app: &TestApp, forwarded: &str) -> Value {
    let r = login_via(app, forwarded, "admin@example.org", PASSWORD).await;
    let s = crate::harness::session(r.expect(200));
    let list = app.get("/api/v1/users/me/sessions", &s.access).await;
    let list = list.expect(200).as_array().unwrap().clone();
    list.iter()
        .find(|x| x["current"] == true)
        .map(|x| x["ip"].clone())
        .unwrap_or(Value::Null)
}

async fn behind_a_trusted_proxy_each_client_has_its_address(backend: Backend) {
    let app = limited(backend, &["127.0.0.1/32"]).await;
    app.bootstrap_admin().await;
    assert_eq!(session_address(&app, "198.51.100.7").await, "198.51.100.7");
    // The client's claim left of what the proxy appended is not believed.
    assert_eq!(
        session_address(&app, "6.6.6.6, 198.51.100.8").await,
        "198.51.100.8"
    );

    fail_three_times_as(&app, "203.0.113.5").await;
    login_via(
        &app,
        "203.0.113.5",
        "nobody9@example.org",
        "wrong password!!",
    )
    .await
    .expect_error(429, "too_many_attempts");
    // Another client behind the same proxy is not locked out.
    login_via(
        &app,
        "203.0.113.6",
        "nobody9@example.org",
        "wrong password!!",
    )
    .await
    .expect_error(401, "invalid_credentials");
    session_address(&app, "203.0.113.6").await;
}

async fn forwarding_headers_from_anyone_else_are_ignored(backend: Backend, trusted: &[&str]) {
    let app = limited(backend, trusted).await;
    app.bootstrap_admin().await;
    assert_eq!(session_address(&app, "198.51.100.7").await, "127.0.0.1");

    fail_three_times_as(&app, "203.0.113.5").await;
    // The peer is the client: a new claimed address does not escape its lock.
    login_via(
        &app,
        "203.0.113.6",
        "nobody9@example.org",
        "wrong password!!",
    )
    .await
    .expect_error(429, "too_many_attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxy_sqlite() {
    behind_a_trusted_proxy_each_client_has_its_address(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxy_postgres() {
    behind_a_trusted_proxy_each_client_has_its_address(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_trusted_proxy_sqlite() {
    forwarding_headers_from_anyone_else_are_ignored(Backend::Sqlite, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_peer_postgres() {
    forwarding_headers_from_anyone_else_are_ignored(Backend::Postgres, &["10.0.0.0/8"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_peer_sqlite() {
    forwarding_headers_from_anyone_else_are_ignored(Backend::Sqlite, &["10.0.0.0/8"]).await;
}
