//! Group commit: one task owns the write connection and commits many callers' writes at once.
//!
//! Callers submit a closure that runs inside the shared transaction. The writer takes every
//! job waiting in its queue (up to a batch limit), runs each under its own savepoint so that a
//! failing job rolls back alone, commits once, and only then answers each caller and
//! publishes the events the batch emitted. Under load a durable commit (an fsync) is paid
//! once per batch instead of once per write; with a single caller it costs nothing extra.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use futures::future::BoxFuture;
use sqlx::{PgPool, SqlitePool};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::backend::{Tx, TxInner};
use super::StoreError;
use crate::events::EventBus;

/// The future a write closure returns; it borrows the transaction.
pub type WriteFuture<'t, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 't>>;

/// Delivers a job's result once the fate of its commit is known.
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A job runs in the shared transaction; `Some` means it succeeded and awaits the commit.
type Job = Box<dyn for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Option<Completion>> + Send>;

/// How many writes may wait for the writer before callers wait to submit.
const QUEUE_DEPTH: usize = 4096;

#[derive(Clone)]
enum WritePool {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

pub(super) struct Writer {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    pub(super) fn start_sqlite(pool: SqlitePool, max_batch: usize, events: EventBus) -> Writer {
        Self::start(WritePool::Sqlite(pool), max_batch, events)
    }

    pub(super) fn start_pg(pool: PgPool, max_batch: usize, events: EventBus) -> Writer {
        Self::start(WritePool::Pg(pool), max_batch, events)
    }

    fn start(pool: WritePool, max_batch: usize, events: EventBus) -> Writer {
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        let task = tokio::spawn(run(pool, receiver, max_batch.max(1), events));
        Writer {
            sender: Mutex::new(Some(sender)),
            task: Mutex::new(Some(task)),
        }
    }

    pub(super) async fn submit<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> WriteFuture<'t, T, E> + Send + 'static,
    {
        let sender = self
            .sender
            .lock()
            .map_err(|_| StoreError::ShuttingDown)?
            .clone()
            .ok_or(StoreError::ShuttingDown)?;
        let (reply, answer) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |tx: &mut Tx| {
            Box::pin(async move {
                match work(tx).await {
                    Ok(value) => {
                        let done: Completion =
                            Box::new(move |committed: Result<(), StoreError>| {
                                let _ = reply.send(committed.map(|()| value).map_err(E::from));
                            });
                        Some(done)
                    }
                    Err(err) => {
                        let _ = reply.send(Err(err));
                        None
                    }
                }
            })
        });
        sender
            .send(job)
            .await
            .map_err(|_| StoreError::ShuttingDown)?;
        // A dropped reply means the batch never ran (the transaction could not begin).
        answer.await.unwrap_or(Err(E::from(StoreError::Commit(
            "transaction did not start".into(),
        ))))
    }

    /// Stops accepting writes, lets the queue drain and waits for the last commit.
    pub(super) async fn shutdown(&self) {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

async fn begin(pool: &WritePool) -> Result<Tx, StoreError> {
    let inner = match pool {
        WritePool::Sqlite(p) => TxInner::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
        WritePool::Pg(p) => TxInner::Pg(p.begin().await?),
    };
    Ok(Tx {
        inner,
        events: Vec::new(),
    })
}

async fn exec(tx: &mut Tx, sql: &'static str) -> Result<(), StoreError> {
    match &mut tx.inner {
        TxInner::Sqlite(t) => sqlx::query(sql).execute(&mut **t).await.map(|_| ())?,
        TxInner::Pg(t) => sqlx::query(sql).execute(&mut **t).await.map(|_| ())?,
    }
    Ok(())
}

async fn commit(tx: Tx) -> Result<(), StoreError> {
    match tx.inner {
        TxInner::Sqlite(t) => t.commit().await?,
        TxInner::Pg(t) => t.commit().await?,
    }
    Ok(())
}

async fn run(pool: WritePool, mut queue: mpsc::Receiver<Job>, max_batch: usize, events: EventBus) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    while queue.recv_many(&mut batch, max_batch).await > 0 {
        let size = batch.len();
        let mut tx = match begin(&pool).await {
            Ok(tx) => tx,
            Err(err) => {
                tracing::error!(error = %err, jobs = size, "cannot begin a write transaction");
                batch.clear();
                continue;
            }
        };
        let mut completions: Vec<Completion> = Vec::with_capacity(size);
        for job in batch.drain(..) {
            let events_before = tx.events.len();
            if let Err(err) = exec(&mut tx, "SAVEPOINT job").await {
                tracing::error!(error = %err, "savepoint failed");
                drop(job);
                continue;
            }
            match job(&mut tx).await {
                Some(done) => {
                    if let Err(err) = exec(&mut tx, "RELEASE SAVEPOINT job").await {
                        tracing::error!(error = %err, "release savepoint failed");
                        done(Err(StoreError::Commit(err.to_string())));
                        continue;
                    }
                    completions.push(done);
                }
                None => {
                    tx.events.truncate(events_before);
                    if let Err(err) = exec(&mut tx, "ROLLBACK TO SAVEPOINT job").await {
                        tracing::error!(error = %err, "rollback to savepoint failed");
                    }
                    let _ = exec(&mut tx, "RELEASE SAVEPOINT job").await;
                }
            }
        }
        let emitted = std::mem::take(&mut tx.events);
        metrics::histogram!("concord_store_commit_batch_size").record(size as f64);
        match commit(tx).await {
            Ok(()) => {
                for done in completions {
                    done(Ok(()));
                }
                for event in emitted {
                    events.publish(event);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, jobs = size, "group commit failed");
                let message = err.to_string();
                for done in completions {
                    done(Err(StoreError::Commit(message.clone())));
                }
            }
        }
    }
}
