//! The test harness: a real Concord on port 0 with a fresh database, and typed helpers.
//!
//! `spawn_app(Backend::Sqlite)` gives a server on a new SQLite file in a temporary data dir;
//! `Backend::Postgres` creates a new database on the server named by
//! `CONCORD_TEST_POSTGRES_URL` (default: this machine's `postgres://postgres@127.0.0.1:5432/test`)
//! and drops it afterwards, so tests are isolated and run in parallel. The database and the data
//! dir belong to the [`TestApp`] and outlive a stop or a restart; they are removed when it is
//! dropped, also when the test panics (or when starting the server fails).
//!
//! A stopped server's storage can be examined and tampered with as an operator would:
//! [`TestApp::open_store`], [`TestApp::raw_sql`], [`TestApp::scalar`] and the command line with
//! [`TestApp::cli_args`]. [`TestApp::team`] builds the workspace most tests start from.

use std::path::PathBuf;

use concord::config::Config;
use concord::App;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A password that meets the policy.
pub const PASSWORD: &str = "correct horse battery staple";

/// The bearer token test servers want at `/metrics` (`metrics.token`; see [`TestApp::metrics`]).
pub const METRICS_TOKEN: &str = "metrics-scraper-token-for-tests";

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("CONCORD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub setup_token: Option<String>,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub backend: Backend,
    /// The configuration the server runs with; a restart keeps it.
    pub config: Config,
    /// The server's committed domain events.
    pub events: concord::events::Events,
    /// The server's search service (to observe its indexes).
    pub search: concord::search::SearchService,
    /// The server's store (to observe its writer).
    pub store: concord::store::Store,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// Drops the PostgreSQL database when the app is dropped (declared before the data dir:
    /// fields drop in order).
    pg: Option<PgGuard>,
    _dir: tempfile::TempDir,
}

/// A signed-in user.
#[derive(Clone, Debug)]
pub struct Session {
    pub user_id: String,
    pub session_id: String,
    pub access: String,
    pub refresh: String,
}

/// A response: status, headers and JSON body (Null if none).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The stable error code of an error response.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        &self.body
    }

    /// Asserts an error status and code.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(
            self.code(),
            code,
            "unexpected error code; body: {}",
            self.body
        );
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "error without a message: {}",
            self.body
        );
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Spawns a server after letting the test adjust its configuration.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    spawn_app_on(backend, listener, adjust).await
}

/// Spawns a server on a listener the test bound first (so it knows the server's address, for
/// example to register callback URLs elsewhere, before configuring it).
pub async fn spawn_app_on(
    backend: Backend,
    listener: tokio::net::TcpListener,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let (database_url, pg_database) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("concord.db").display()),
            None,
        ),
        Backend::Postgres => {
            let (url, name) = create_pg_database().await;
            // Guarded from here on: a server that fails to start drops it too.
            (url, Some(PgGuard(name)))
        }
    };
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    config.database.url = Some(database_url.clone().into());
    config.metrics.token = Some(METRICS_TOKEN.to_owned().into());
    adjust(&mut config);
    start(config, backend, dir, database_url, pg_database, listener).await
}

async fn start(
    config: Config,
    backend: Backend,
    dir: tempfile::TempDir,
    database_url: String,
    pg: Option<PgGuard>,
    listener: tokio::net::TcpListener,
) -> TestApp {
    let addr = listener.local_addr().expect("addr");
    let app = App::build(config.clone()).await.expect("server builds");
    let events = app.events().clone();
    let search = app.search().clone();
    let store = app.store().clone();
    let setup_token = app.setup_url(addr).await.expect("setup url").map(|url| {
        url.rsplit_once("token=")
            .map(|(_, t)| t.to_owned())
            .expect("token in setup url")
    });
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.serve(listener, async move {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        setup_token,
        data_dir: dir.path().to_owned(),
        database_url,
        backend,
        config,
        events,
        search,
        store,
        shutdown: Some(tx),
        server: Some(server),
        pg,
        _dir: dir,
    }
}

pub async fn create_pg_database() -> (String, String) {
    use sqlx::Connection;
    let admin = postgres_admin_url();
    let name = format!("concord_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("PostgreSQL reachable for tests");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let mut url = url::Url::parse(&admin).expect("postgres url");
    url.set_path(&name);
    (url.to_string(), name)
}

fn drop_pg_database(name: String) {
    let admin = postgres_admin_url();
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            use sqlx::Connection;
            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            }
        });
    })
    .join();
}

/// Drops a test database when dropped.
pub struct PgGuard(pub String);

impl Drop for PgGuard {
    fn drop(&mut self) {
        drop_pg_database(self.0.clone());
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // The PostgreSQL database goes with the `pg` guard, dropped after this.
    }
}

impl TestApp {
    /// Stops the server gracefully and waits until storage is flushed.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task");
        }
    }

    /// The absolute URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The Prometheus metrics text, read as a scraper does (with the metrics token).
    pub async fn metrics(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.base))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .expect("metrics");
        assert_eq!(response.status(), StatusCode::OK, "metrics");
        response.text().await.expect("metrics text")
    }

    /// Stops this server and starts a new one on the same database, data dir and configuration.
    pub async fn restart(self) -> TestApp {
        self.restart_with(|_| {}).await
    }

    /// Stops this server and starts a new one on the same database and data dir, with its
    /// configuration adjusted.
    pub async fn restart_with(mut self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        self.stop().await;
        let mut config = self.config.clone();
        adjust(&mut config);
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().expect("temp dir"));
        let pg = self.pg.take();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        start(
            config,
            self.backend,
            dir,
            self.database_url.clone(),
            pg,
            listener,
        )
        .await
    }

    /// Folds SQLite's write-ahead log into the database file, so a scan of the file sees
    /// everything written.
    pub async fn checkpoint_sqlite(&self) {
        use sqlx::Connection;
        if self.backend == Backend::Sqlite {
            let mut c = sqlx::SqliteConnection::connect(&self.database_url)
                .await
                .expect("sqlite");
            let _ = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&mut c)
                .await;
        }
    }

    /// Opens the store directly, as an operator (or an attacker) with database access would;
    /// close it before starting the server again.
    pub async fn open_store(&self) -> concord::store::Store {
        concord::store::Store::connect(
            &concord::App::store_options(&self.config),
            Default::default(),
        )
        .await
        .expect("store opens")
    }

    /// Runs raw SQL with the table owner's rights, bypassing Concord; `Err` if the database
    /// refuses it.
    pub async fn raw_sql(&self, sql: &str) -> Result<(), sqlx::Error> {
        use sqlx::Connection;
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.database_url).await?;
                sqlx::raw_sql(sql).execute(&mut c).await.map(|_| ())
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.database_url).await?;
                sqlx::raw_sql(sql).execute(&mut c).await.map(|_| ())
            }
        }
    }

    /// The one integer a query returns, read with the table owner's rights.
    pub async fn scalar(&self, sql: &str) -> i64 {
        use sqlx::Connection;
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.database_url)
                    .await
                    .expect("sqlite");
                sqlx::query_scalar(sql).fetch_one(&mut c).await
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.database_url)
                    .await
                    .expect("postgres");
                sqlx::query_scalar(sql).fetch_one(&mut c).await
            }
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Arguments that point the `concord` command line at this server's data dir and database.
    pub fn cli_args(&self) -> Vec<String> {
        vec![
            "--data-dir".into(),
            self.data_dir.display().to_string(),
            "--database-url".into(),
            self.database_url.clone(),
        ]
    }

    /// Every audit entry, oldest first, through the compliance API.
    pub async fn audit_events(&self, token: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/audit/events?limit=1000&cursor={c}"),
                None => "/api/v1/audit/events?limit=1000".into(),
            };
            let r = self.get(&path, token).await;
            let body = r.expect(200);
            out.extend(body["events"].as_array().cloned().unwrap_or_default());
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }

    /// Sends a request; `token` is a bearer access token.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        reply(resp).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Creates the first administrator (admin@example.org) with the setup token and signs in.
    pub async fn bootstrap_admin(&self) -> Session {
        self.bootstrap_admin_as("admin@example.org", "Ada Admin")
            .await
    }

    /// Creates the first administrator with this address and name, and signs in.
    pub async fn bootstrap_admin_as(&self, email: &str, name: &str) -> Session {
        let token = self
            .setup_token
            .clone()
            .expect("a fresh server offers setup");
        self.post(
            "/api/v1/setup",
            None,
            json!({"token": token, "email": email, "display_name": name, "password": PASSWORD}),
        )
        .await
        .expect(201);
        self.login(email, PASSWORD).await
    }

    /// Signs in, asserting success.
    pub async fn login(&self, email: &str, password: &str) -> Session {
        let r = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        session(r.expect(200))
    }

    /// An administrator creates an account; returns its id.
    pub async fn create_user(&self, admin: &Session, email: &str, name: &str) -> String {
        let r = self
            .post(
                "/api/v1/users",
                Some(&admin.access),
                json!({"email": email, "display_name": name, "password": PASSWORD}),
            )
            .await;
        r.expect(201)["id"].as_str().expect("id").to_owned()
    }

    /// Creates a workspace as `owner`; returns its id.
    pub async fn create_workspace(&self, owner: &Session, name: &str) -> String {
        let r = self
            .post(
                "/api/v1/workspaces",
                Some(&owner.access),
                json!({"name": name}),
            )
            .await;
        r.expect(201)["id"].as_str().expect("id").to_owned()
    }

    /// Adds an existing account to a workspace through an invitation it accepts.
    pub async fn add_member(&self, by: &Session, workspace: &str, member: &Session, role: &str) {
        let inv = self
            .post(
                &format!("/api/v1/workspaces/{workspace}/invitations"),
                Some(&by.access),
                json!({"role": role}),
            )
            .await;
        let token = inv.expect(201)["token"].as_str().expect("token").to_owned();
        self.post(
            &format!("/api/v1/invitations/{token}/accept"),
            Some(&member.access),
            json!({}),
        )
        .await
        .expect(201);
    }
}

/// The team most tests start from: the first administrator owns the workspace "Clinic", and
/// Ann, Bo and Cy (`ann@example.org`, ...; password [`PASSWORD`]) are signed in and members of it.
pub struct Team {
    pub admin: Session,
    pub ann: Session,
    pub bo: Session,
    pub cy: Session,
    pub ws: String,
}

impl TestApp {
    /// Sets up the [`Team`] on a fresh server.
    pub async fn team(&self) -> Team {
        let admin = self.bootstrap_admin().await;
        for (email, name) in [
            ("ann@example.org", "Ann"),
            ("bo@example.org", "Bo"),
            ("cy@example.org", "Cy"),
        ] {
            self.create_user(&admin, email, name).await;
        }
        let ann = self.login("ann@example.org", PASSWORD).await;
        let bo = self.login("bo@example.org", PASSWORD).await;
        let cy = self.login("cy@example.org", PASSWORD).await;
        let ws = self.create_workspace(&admin, "Clinic").await;
        for who in [&ann, &bo, &cy] {
            self.add_member(&admin, &ws, who, "member").await;
        }
        Team {
            admin,
            ann,
            bo,
            cy,
            ws,
        }
    }
}

pub async fn reply(resp: reqwest::Response) -> Reply {
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Reply {
        status,
        headers,
        body,
    }
}

pub fn session(body: &Value) -> Session {
    let s = |k: &str| {
        body[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k} in {body}"))
            .to_owned()
    };
    Session {
        user_id: s("user_id"),
        session_id: s("session_id"),
        access: s("access_token"),
        refresh: s("refresh_token"),
    }
}

/// Declares a test body once and runs it on SQLite and on PostgreSQL, as `NAME::sqlite` and
/// `NAME::postgres`.
///
/// Two forms: test bodies given a fresh server (`both_backends! { async fn NAME(app) { ... } }`),
/// or the names of `async fn NAME(backend: Backend)` functions declared beside it that start
/// their servers themselves (`both_backends!(NAME, OTHER);`), for tests that need a particular
/// configuration.
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::harness::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::harness::Backend::Postgres).await
                }
            }
        )+
    };
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                use $crate::harness::{spawn_app, Backend, TestApp};

                async fn body($app: TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    body(spawn_app(Backend::Sqlite).await).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    body(spawn_app(Backend::Postgres).await).await
                }
            }
        )*
    };
}
pub(crate) use both_backends;

/// A WebSocket client of the hub.
pub struct Socket {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    /// The `hello` frame the server answered with.
    pub hello: Value,
}

/// How long a test waits for something that should arrive.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl TestApp {
    /// Connects to the hub and authenticates with a first frame (optionally resuming).
    pub async fn socket(&self, token: &str, resume: Option<(&str, u64)>) -> Socket {
        let url = format!(
            "ws://127.0.0.1:{}/api/v1/ws",
            self.base.rsplit(':').next().unwrap()
        );
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects");
        let mut socket = Socket {
            stream,
            hello: Value::Null,
        };
        let mut auth = json!({"type": "auth", "token": token});
        if let Some((epoch, seq)) = resume {
            auth["epoch"] = json!(epoch);
            auth["last_seq"] = json!(seq);
        }
        socket.send(auth).await;
        let hello = socket.next().await.expect("hello");
        assert_eq!(hello["type"], "hello", "{hello}");
        socket.hello = hello;
        socket
    }
}

impl Socket {
    /// Wraps a connected stream that has not authenticated yet.
    pub fn from_stream(
        stream: tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    ) -> Socket {
        Socket {
            stream,
            hello: Value::Null,
        }
    }

    /// Sends a JSON frame.
    pub async fn send(&mut self, frame: Value) {
        use futures::SinkExt;
        self.stream
            .send(tokio_tungstenite::tungstenite::Message::text(
                frame.to_string(),
            ))
            .await
            .expect("send");
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) {
        use futures::SinkExt;
        self.stream
            .send(tokio_tungstenite::tungstenite::Message::text(
                text.to_owned(),
            ))
            .await
            .expect("send");
    }

    /// The next JSON frame, or `None` if the connection closed (or nothing came in time).
    pub async fn next(&mut self) -> Option<Value> {
        self.next_within(WAIT).await
    }

    /// The next JSON frame within `wait`.
    pub async fn next_within(&mut self, wait: std::time::Duration) -> Option<Value> {
        use futures::StreamExt;
        loop {
            let msg = tokio::time::timeout(wait, self.stream.next())
                .await
                .ok()??
                .ok()?;
            match msg {
                tokio_tungstenite::tungstenite::Message::Text(t) => {
                    return serde_json::from_str(t.as_str()).ok()
                }
                tokio_tungstenite::tungstenite::Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// The next `event` frame (skipping presence and typing notices).
    pub async fn next_event(&mut self) -> Option<Value> {
        loop {
            let frame = self.next().await?;
            if frame["type"] == "event" {
                return Some(frame);
            }
        }
    }

    /// The next raw message, without interpretation.
    pub async fn next_raw(
        &mut self,
    ) -> Option<
        Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>,
    > {
        use futures::StreamExt;
        tokio::time::timeout(WAIT, self.stream.next()).await.ok()?
    }

    /// Waits for the close frame and returns its code.
    pub async fn closed_with(&mut self) -> Option<u16> {
        use futures::StreamExt;
        loop {
            let msg = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .ok()??;
            match msg {
                Ok(tokio_tungstenite::tungstenite::Message::Close(Some(frame))) => {
                    return Some(frame.code.into())
                }
                Ok(tokio_tungstenite::tungstenite::Message::Close(None)) => return Some(1005),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }
}
