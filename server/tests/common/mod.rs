//! A small harness: a real Concord on port 0 with a fresh SQLite or PostgreSQL database.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use concord::config::{Config, Secret};
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// Which database backs a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Generates one test per backend from an `async fn(Db)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Db::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Db::Postgres).await })*
        }
    };
}

pub const PASSWORD: &str = "correct horse battery staple";

/// A database and data directory that outlive one server run.
pub struct Env {
    pub db: Db,
    pub dir: tempfile::TempDir,
    pub url: String,
    pub pg_name: Option<String>,
}

fn pg_base() -> String {
    std::env::var("CONCORD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl Env {
    pub async fn new(db: Db) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let (url, pg_name) = match db {
            Db::Sqlite => (
                format!("sqlite://{}", dir.path().join("concord.db").display()),
                None,
            ),
            Db::Postgres => {
                let name = format!("concord_t_{}", uuid::Uuid::new_v4().simple());
                let base = pg_base();
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&base)
                    .await
                    .expect("connect to PostgreSQL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create database");
                let url = match base.rsplit_once('/') {
                    Some((prefix, _)) => format!("{prefix}/{name}"),
                    None => panic!("bad CONCORD_TEST_POSTGRES_URL"),
                };
                (url, Some(name))
            }
        };
        Env {
            db,
            dir,
            url,
            pg_name,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn config(&self) -> Config {
        let mut config = Config {
            data_dir: self.data_dir(),
            ..Config::default()
        };
        config.database.url = Some(serde_json::from_value::<Secret>(json!(self.url)).unwrap());
        config.auth.lockout_threshold = 3;
        config.audit.checkpoint_every = 5;
        config
    }

    pub async fn start(&self) -> TestApp {
        self.start_with(self.config()).await
    }

    pub async fn start_with(&self, config: Config) -> TestApp {
        let app = concord::App::build(config).await.expect("build");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let setup = app.setup_url(addr).await.unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            app.serve(listener, async move {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        TestApp {
            addr,
            client: reqwest::Client::new(),
            setup_token: setup.and_then(|u| u.rsplit_once("token=").map(|(_, t)| t.to_owned())),
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    /// Opens the store directly, as an operator (or an attacker) with database access would.
    pub async fn store(&self) -> concord::store::Store {
        concord::store::Store::connect(
            &concord::App::store_options(&self.config()),
            concord::events::Events::in_process(),
        )
        .await
        .expect("connect")
    }

    /// Runs raw SQL with table-owner rights (bypassing Concord).
    pub async fn raw(&self, sql: &str) {
        match self.db {
            Db::Sqlite => {
                let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&self.url)
                    .await
                    .unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
            Db::Postgres => {
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url)
                    .await
                    .unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
        }
    }

    /// Runs raw SQL expecting the database to refuse it.
    pub async fn raw_refused(&self, sql: &str) -> bool {
        match self.db {
            Db::Sqlite => {
                let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&self.url)
                    .await
                    .unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.is_err()
            }
            Db::Postgres => {
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url)
                    .await
                    .unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.is_err()
            }
        }
    }

    /// Command-line arguments that point the `concord` binary at this environment.
    pub fn cli_args(&self) -> Vec<String> {
        vec![
            "--data-dir".into(),
            self.data_dir().display().to_string(),
            "--database-url".into(),
            self.url.clone(),
        ]
    }
}

/// A running server.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub setup_token: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops gracefully (the final audit checkpoint is written).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap();
        }
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.client.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// GETs `path` and returns the status and the body as text.
    pub async fn send_text(&self, path: &str, token: &str) -> (u16, String) {
        let resp = self
            .client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    /// Creates the first admin through the setup link and signs in.
    pub async fn setup_admin(&self, email: &str, name: &str) -> Value {
        let token = self.setup_token.clone().expect("fresh install");
        let (status, body) = self
            .post(
                "/api/v1/setup",
                None,
                json!({"token": token, "email": email, "display_name": name, "password": PASSWORD}),
            )
            .await;
        assert!(status < 300, "setup: {status} {body}");
        self.login(email).await
    }

    pub async fn login(&self, email: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "login {email}: {body}");
        body
    }

    pub async fn create_user(
        &self,
        admin: &str,
        email: &str,
        name: &str,
        role: Option<&str>,
    ) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/users",
                Some(admin),
                json!({"email": email, "display_name": name, "password": PASSWORD, "system_role": role}),
            )
            .await;
        assert_eq!(status, 201, "create user: {body}");
        body
    }

    /// Every audit entry, through the compliance API.
    pub async fn audit_events(&self, token: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/audit/events?limit=1000&cursor={c}"),
                None => "/api/v1/audit/events?limit=1000".into(),
            };
            let (status, body) = self.get(&path, token).await;
            assert_eq!(status, 200, "audit events: {body}");
            out.extend(body["events"].as_array().cloned().unwrap_or_default());
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }
}

pub fn token(pair: &Value) -> String {
    pair["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}
