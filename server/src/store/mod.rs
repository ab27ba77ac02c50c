//! Storage: the only place in Concord that holds SQL.
//!
//! One [`Store`] fronts either SQLite (the embedded default) or PostgreSQL. Every query is a
//! function in one of the submodules, named for what it does, and takes a [`Conn`]: the same
//! function runs on a pooled reader connection or inside a write transaction, on either
//! backend. SQL is written once where both dialects agree; where they differ the function
//! matches on the backend.
//!
//! Writes go through [`Store::write`], which hands the work to the group-commit writer
//! ([`writer`]): many concurrent callers share one transaction and one durable commit, and
//! none of them is acknowledged before that commit. Domain events gathered in the
//! transaction ([`Tx::emit`]) are published only after it commits.
//!
//! Invariant: storage never decides permissions; callers authorize first.

pub mod audit;
pub mod audit_chain;
pub mod audit_cuts;
mod backend;
mod batch_append;
pub mod bot_commands;
pub mod bot_events;
pub mod bots;
pub mod breaches;
pub mod break_glass;
pub mod channels;
pub mod documents;
pub mod ediscovery;
pub mod erasure;
pub mod files;
pub mod holds;
pub mod inventory;
pub mod invitations;
pub mod keys;
pub mod messages;
pub mod migrate;
pub mod mining;
pub mod outbox;
pub mod policies;
pub(crate) mod raw;
pub mod remnants;
pub mod restrictions;
pub mod retention;
pub mod roles;
pub mod routing;
pub mod search;
pub mod sessions;
pub mod setup;
pub mod sso;
pub mod subject_requests;
pub mod task_comments;
pub mod task_notices;
pub mod throttle;
pub mod users;
pub mod workflow_facts;
pub mod workflows;
pub mod workspaces;
mod writer;

pub(crate) use backend::on;
pub use backend::{Backend, Conn, PooledConn, Tx, TxLog};
pub use raw::{Raw, RawTx};
pub use writer::WriteFuture;

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::events::Events;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness or foreign-key constraint refused the write.
    #[error("constraint violated: {0}")]
    Constraint(String),
    /// The database URL or options could not be understood.
    #[error("invalid database configuration: {0}")]
    Config(String),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The commit of a group of writes failed; every write in the group failed with it.
    #[error("commit failed: {0}")]
    Commit(String),
    /// The store is shutting down and accepts no more writes.
    #[error("storage is shutting down")]
    ShuttingDown,
    /// Stored data could not be decoded into a domain value.
    #[error("corrupt stored value in {0}")]
    Corrupt(&'static str),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// A database error on the writer's own thread (see [`raw`]).
    #[error("database error: {0}")]
    Engine(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            if db.is_unique_violation() || db.is_foreign_key_violation() {
                let name = db
                    .constraint()
                    .map(str::to_owned)
                    .unwrap_or_else(|| db.message().to_owned());
                return StoreError::Constraint(name);
            }
        }
        StoreError::Database(err)
    }
}

/// Settings the store needs from the configuration.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// `sqlite://path` or `postgres://...`.
    pub url: String,
    /// Upper bound on pooled reader connections.
    pub max_connections: u32,
    /// Upper bound on writes that share one commit.
    pub max_batch: usize,
}

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

enum Pools {
    Sqlite {
        readers: SqlitePool,
        writer: SqlitePool,
    },
    Pg(PgPool),
}

struct Inner {
    pools: Pools,
    writer: writer::Writer,
    checkpointing: Arc<writer::Checkpointing>,
}

impl Store {
    /// Connects (creating a SQLite file if needed), applies migrations and starts the writer.
    pub async fn open(options: &StoreOptions, events: Events) -> Result<Store, StoreError> {
        let store = Self::connect(options, events).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating (for `concord migrate` and checks).
    pub async fn connect(options: &StoreOptions, events: Events) -> Result<Store, StoreError> {
        let url = options.url.as_str();
        let pools = if url.starts_with("sqlite:") {
            let connect = url
                .parse::<SqliteConnectOptions>()
                .map_err(|e| StoreError::Config(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .pragma("temp_store", "memory")
                // What is deleted is overwritten with zeros, so destroyed content (tombstoned
                // messages, purged kept text, deleted files' keys) leaves no copy in the
                // file's free pages.
                .pragma("secure_delete", "on");
            if let Some(dir) = sqlite_parent_dir(url) {
                std::fs::create_dir_all(&dir).map_err(|e| {
                    StoreError::Config(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            // One writer connection: SQLite allows one writer at a time, and the group-commit
            // writer owns it. Readers run in parallel thanks to WAL.
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .connect_with(connect.clone())
                .await?;
            let readers = SqlitePoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .connect_with(connect.read_only(true))
                .await?;
            Pools::Sqlite { readers, writer }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let connect = url
                .parse::<PgConnectOptions>()
                .map_err(|e| StoreError::Config(e.to_string()))?;
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections.max(2))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(connect)
                .await?;
            Pools::Pg(pool)
        } else {
            return Err(StoreError::Config(format!(
                "database URL must start with sqlite: or postgres:, got {:?}",
                url.split(':').next().unwrap_or_default()
            )));
        };
        let checkpointing = Arc::new(writer::Checkpointing::default());
        let writer = match &pools {
            Pools::Sqlite { writer, .. } => writer::Writer::start_sqlite(
                writer.clone(),
                options.max_batch,
                events,
                checkpointing.clone(),
            ),
            Pools::Pg(pool) => writer::Writer::start_pg(
                pool.clone(),
                options.max_batch,
                events,
                checkpointing.clone(),
            ),
        };
        Ok(Store {
            inner: Arc::new(Inner {
                pools,
                writer,
                checkpointing,
            }),
        })
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        match self.inner.pools {
            Pools::Sqlite { .. } => Backend::Sqlite,
            Pools::Pg(_) => Backend::Postgres,
        }
    }

    /// Applies pending migrations for this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.inner.pools {
            Pools::Sqlite { writer, .. } => migrate::SQLITE.run(writer).await?,
            Pools::Pg(pool) => migrate::POSTGRES.run(pool).await?,
        }
        Ok(())
    }

    /// A pooled connection for reads outside any write transaction.
    pub async fn reader(&self) -> Result<PooledConn, StoreError> {
        Ok(match &self.inner.pools {
            Pools::Sqlite { readers, .. } => PooledConn::Sqlite(readers.acquire().await?),
            Pools::Pg(pool) => PooledConn::Pg(pool.acquire().await?),
        })
    }

    /// Runs `work` inside a transaction shared with other concurrent writes and resolves
    /// once that transaction is durably committed. If `work` fails, only its own changes
    /// are rolled back (a savepoint), and its error is returned.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> WriteFuture<'t, T, E> + Send + 'static,
    {
        self.inner.writer.submit(work).await
    }

    /// Puts a write in the writer's queue and returns what resolves once it is committed:
    /// writes one caller enqueues one after another commit in that order, so a caller can
    /// have several in flight (a socket's posts) and still keep their order.
    pub async fn write_enqueued<T, E, F>(
        &self,
        work: F,
    ) -> Result<impl std::future::Future<Output = Result<T, E>> + Send + 'static, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> WriteFuture<'t, T, E> + Send + 'static,
    {
        self.inner.writer.enqueue(work).await
    }

    /// Like [`Store::write_enqueued`], for a write that also has a synchronous form: on
    /// SQLite, `raw` runs on the writer's thread with no hand-off per statement and `work`
    /// only if `raw` declines (see [`raw`]); on PostgreSQL, `work` runs.
    pub async fn write_enqueued_raw<T, E, P, R, F>(
        &self,
        input: P,
        raw: R,
        work: F,
    ) -> Result<impl std::future::Future<Output = Result<T, E>> + Send + 'static, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        P: Send + 'static,
        R: for<'a, 'c> FnOnce(&'a mut RawTx<'c>, P) -> Raw<T, E, P> + Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx, P) -> WriteFuture<'t, T, E> + Send + 'static,
    {
        self.inner.writer.enqueue_raw(input, raw, work).await
    }

    /// Changes each time this process commits events to the outbox ([`outbox`]), so an
    /// in-process consumer waits for a commit instead of polling; commits of other processes
    /// are only seen by reading.
    pub fn outbox_commits(&self) -> tokio::sync::watch::Receiver<i64> {
        self.inner.writer.outbox_head()
    }

    /// Writes given with a synchronous form (see [`raw`]) that ran in it, and that declined
    /// it: `(ran, declined)`; both stay 0 on PostgreSQL.
    pub fn raw_writes(&self) -> (u64, u64) {
        self.inner.writer.raw_counts()
    }

    /// How many batches (transactions) the group-commit writer has run and how many writes
    /// they carried, as `(batches, writes)`; more writes than batches means writes were grouped.
    pub fn commit_batches(&self) -> (u64, u64) {
        self.inner.writer.batch_counts()
    }

    /// Lets the writer sign audit checkpoints with `signer` every `every` entries. Only the
    /// first call has effect.
    pub fn set_checkpoint_signer(&self, signer: Arc<dyn audit::CheckpointSigner>, every: u64) {
        self.inner
            .checkpointing
            .every
            .store(every, std::sync::atomic::Ordering::Relaxed);
        let _ = self.inner.checkpointing.signer.set(signer);
    }

    /// The most entries between two consecutive checkpoints the writer signs
    /// (`audit.checkpoint_every`), once a signer is set.
    pub fn checkpoint_every(&self) -> Option<u64> {
        self.inner.checkpointing.signer.get()?;
        Some(
            self.inner
                .checkpointing
                .every
                .load(std::sync::atomic::Ordering::Relaxed)
                .max(1),
        )
    }

    /// Publishes every checkpoint committed from now on to an outside witness: `queue` feeds
    /// `task`, which the store drains when it closes. Only the first call has effect.
    pub fn set_checkpoint_witness(
        &self,
        queue: tokio::sync::mpsc::Sender<audit::CheckpointRecord>,
        task: tokio::task::JoinHandle<()>,
    ) {
        let checkpointing = &self.inner.checkpointing;
        if let (Ok(mut witness), Ok(mut owner)) = (
            checkpointing.witness.lock(),
            checkpointing.witness_task.lock(),
        ) {
            if witness.is_none() {
                *witness = Some(queue);
                *owner = Some(task);
                return;
            }
        }
        task.abort();
    }

    /// Signs a checkpoint over the current audit chain head, if it moved since the last one.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        self.write(|tx: &mut Tx| {
            Box::pin(async move {
                tx.request_checkpoint();
                Ok::<_, StoreError>(())
            })
        })
        .await
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.reader().await?;
        conn.conn().ping().await
    }

    /// Pool usage for metrics: (connections open, idle).
    pub fn pool_usage(&self) -> (u32, u32) {
        match &self.inner.pools {
            Pools::Sqlite { readers, writer } => (
                readers.size() + writer.size(),
                (readers.num_idle() + writer.num_idle()) as u32,
            ),
            Pools::Pg(pool) => (pool.size(), pool.num_idle() as u32),
        }
    }

    /// Removes what a start-up backfill replaced from the database's free space. On SQLite the
    /// old plaintext may stay in the WAL and in pages freed before `secure_delete` was on, so
    /// the WAL is folded into the file, the file is rebuilt (`VACUUM`) and the WAL emptied again.
    /// On PostgreSQL the replaced row versions are dead tuples that its vacuum removes.
    pub async fn compact_after_backfill(&self) -> Result<(), StoreError> {
        match &self.inner.pools {
            Pools::Sqlite { writer, .. } => {
                // Waits for any batch in flight: the writer holds the connection only while one runs.
                let mut conn = writer.acquire().await?;
                let checkpoint = "PRAGMA wal_checkpoint(TRUNCATE)";
                sqlx::query(checkpoint).execute(&mut *conn).await?;
                sqlx::query("VACUUM").execute(&mut *conn).await?;
                let (busy, _, _): (i64, i64, i64) =
                    sqlx::query_as(checkpoint).fetch_one(&mut *conn).await?;
                if busy != 0 {
                    tracing::warn!(
                        "database rebuilt after encrypting stored plaintext, but a reader kept \
                         the write-ahead log from being emptied"
                    );
                } else {
                    tracing::info!(
                        "database rebuilt (VACUUM) and write-ahead log emptied so the plaintext \
                         replaced at start leaves no copy in free space"
                    );
                }
            }
            Pools::Pg(_) => tracing::info!(
                "row versions holding the plaintext replaced at start are removed by PostgreSQL's \
                 vacuum"
            ),
        }
        Ok(())
    }

    /// After an erasure: empties SQLite's write-ahead log into the database file, so the
    /// freed pages (zeroed by `secure_delete`) hold the only copy of what was deleted and
    /// that is gone; on PostgreSQL rewrites the data-key table, so the destroyed keys leave no
    /// dead row version behind (other tables' dead versions go at PostgreSQL's next vacuum).
    pub async fn scrub_after_erasure(&self) -> Result<(), StoreError> {
        match &self.inner.pools {
            Pools::Sqlite { writer, .. } => {
                // Waits for any batch in flight: the writer holds the connection only while one runs.
                let mut conn = writer.acquire().await?;
                let (busy, _, _): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                        .fetch_one(&mut *conn)
                        .await?;
                if busy != 0 {
                    tracing::warn!(
                        "erasure: a reader kept the write-ahead log from being emptied; its \
                         frames are overwritten as the log is reused"
                    );
                }
            }
            Pools::Pg(pool) => {
                sqlx::query("VACUUM FULL data_keys").execute(pool).await?;
            }
        }
        Ok(())
    }

    /// Drains the writer (every accepted write is committed) and closes the pools.
    pub async fn close(&self) {
        if self.inner.checkpointing.signer.get().is_some() {
            // The last checkpoint covers the tail, so cutting it off later is detected.
            if let Err(err) = self.checkpoint().await {
                tracing::error!(error = %err, "final audit checkpoint failed");
            }
        }
        self.inner.writer.shutdown().await;
        // The final checkpoint reaches the witness before the process ends.
        let checkpointing = &self.inner.checkpointing;
        drop(checkpointing.witness.lock().ok().and_then(|mut w| w.take()));
        let task = checkpointing
            .witness_task
            .lock()
            .ok()
            .and_then(|mut t| t.take());
        if let Some(task) = task {
            if tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
            {
                tracing::warn!("audit witness: gave up publishing the last signed heads");
            }
        }
        match &self.inner.pools {
            Pools::Sqlite { readers, writer } => {
                readers.close().await;
                // A checkpoint folds the WAL into the main file so a copied data dir is complete.
                let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(writer)
                    .await;
                writer.close().await;
            }
            Pools::Pg(pool) => pool.close().await,
        }
    }
}

fn sqlite_parent_dir(url: &str) -> Option<std::path::PathBuf> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    std::path::Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.to_path_buf())
}
