//! A real Concord server started in-process on a loopback port, with a fresh SQLite database
//! in a temporary directory that is removed when the server is stopped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a graceful shutdown may take before the bench gives up waiting.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

/// A directory removed (with its contents) when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory under the system's temporary directory.
    pub fn new() -> anyhow::Result<TempDir> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let path =
            std::env::temp_dir().join(format!("concord-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path)
            .with_context(|| format!("creating temp dir {}", path.display()))?;
        Ok(TempDir(path))
    }

    /// Where it is.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A serving Concord and what is needed to talk to it and stop it.
pub struct Server {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The one-time setup token for the first administrator.
    pub setup_token: String,
    /// The server's store, for benchmarks that load data the way the server writes it.
    pub store: concord::store::Store,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<(), concord::StartupError>>,
    dir: TempDir,
}

impl Server {
    /// Builds Concord with default settings, a fresh database and sign-in throttling out of
    /// the way, and serves it on an ephemeral loopback port.
    pub async fn start() -> anyhow::Result<Server> {
        Server::start_with(|_| {}).await
    }

    /// As [`Server::start`], with `adjust` applied to the configuration first (a database
    /// URL, networks service tasks may call).
    pub async fn start_with(adjust: impl FnOnce(&mut concord::Config)) -> anyhow::Result<Server> {
        let dir = TempDir::new()?;
        let defaults = concord::Config::default();
        let mut config = concord::Config {
            data_dir: dir.0.clone(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            auth: concord::config::AuthConfig {
                lockout_threshold: 1_000_000,
                ip_lockout_threshold: 1_000_000,
                // The longest allowed, so tokens taken before a measurement stay valid.
                access_token_seconds: 3600,
                ..defaults.auth.clone()
            },
            ..defaults
        };
        adjust(&mut config);

        let listener = TcpListener::bind(config.bind)
            .await
            .context("binding 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let app = concord::App::build(config)
            .await
            .context("building Concord")?;
        let setup_url = app
            .setup_url(addr)
            .await
            .context("preparing setup")?
            .context("a fresh database should offer first-admin setup")?;
        let setup_token = reqwest::Url::parse(&setup_url)
            .context("parsing the setup URL")?
            .query_pairs()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .context("the setup URL has no token")?;

        let store = app.store().clone();
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(app.serve(listener, async move {
            let _ = stop.await;
        }));
        Ok(Server {
            base: format!("http://{addr}"),
            setup_token,
            store,
            shutdown,
            task,
            dir,
        })
    }

    /// Shuts the server down gracefully, then removes its directory.
    pub async fn stop(self) -> anyhow::Result<()> {
        let Server {
            shutdown,
            task,
            dir,
            ..
        } = self;
        let _ = shutdown.send(());
        let result = tokio::time::timeout(SHUTDOWN_WAIT, task)
            .await
            .context("the server did not shut down in time")?
            .context("the server task failed")?;
        drop(dir);
        result.context("the server stopped with an error")
    }
}
