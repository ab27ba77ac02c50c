//! Group commit: one task owns the write connection and commits many callers' writes at once.
//!
//! Callers submit a closure that runs inside the shared transaction. The writer takes every
//! job waiting in its queue (up to a batch limit), runs each under its own savepoint so that a
//! failing job rolls back alone, commits once, and only then answers each caller and
//! publishes the events the batch emitted. Audit entries the jobs recorded are numbered,
//! hash-chained and (every so often) covered by a signed checkpoint here, at commit time and
//! in the same transaction: chaining costs one pass over the batch, never a lock per write,
//! and no action commits without its record. Under load a durable commit (an fsync) is paid
//! once per batch instead of once per write; with a single caller it costs nothing extra.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use futures::future::BoxFuture;
use sqlx::{Executor, PgPool, SqlitePool};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::audit::{ChainHead, CheckpointRecord, CheckpointSigner, PendingAudit};
use super::backend::{Tx, TxInner};
use super::batch_append::{self, AppendError};
use super::StoreError;
use crate::events::Events;

/// The future a write closure returns; it borrows the transaction.
pub type WriteFuture<'t, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 't>>;

/// Delivers a job's result once the fate of its commit is known.
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A job runs in the shared transaction and tells how it ended.
type Job = Box<dyn for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Ended> + Send>;

/// How a job ended, with what answers its caller.
enum Ended {
    /// It succeeded and awaits the commit.
    Done(Completion),
    /// It failed; the completion answers with its error whatever the commit does.
    Failed(Completion),
}

/// The answers of failed jobs that left a record to keep (a denial): given when the batch's
/// work ends, after the commit that stores the record, so a refusal is not answered before its
/// record is durable. If that commit fails, the record is lost (and logged) and the refusal
/// is still answered.
struct Refusals(Vec<Completion>);

impl Refusals {
    /// Answers a failed job now if it left no record, else once the batch's work ends.
    fn answer(&mut self, tx: &Tx, marks: Marks, done: Completion) {
        if tx.audit.len() > marks.audit {
            self.0.push(done);
        } else {
            done(Ok(()));
        }
    }
}

impl Drop for Refusals {
    fn drop(&mut self) {
        for done in self.0.drain(..) {
            done(Ok(()));
        }
    }
}

/// How many writes may wait for the writer before callers wait to submit.
const QUEUE_DEPTH: usize = 4096;

#[derive(Clone)]
enum WritePool {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

/// What the writer needs to sign checkpoints; set once the keyring is open.
#[derive(Default)]
pub(super) struct Checkpointing {
    pub(super) signer: OnceLock<Arc<dyn CheckpointSigner>>,
    pub(super) every: AtomicU64,
    /// Where committed checkpoints go for the outside witness (`audit.witness`), if anywhere.
    pub(super) witness: Mutex<Option<mpsc::Sender<CheckpointRecord>>>,
    /// The task that publishes them, drained when the store closes.
    pub(super) witness_task: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointing {
    /// Hands a committed checkpoint to the witness without waiting: a full queue drops it
    /// (the next checkpoint vouches for everything before it too).
    fn publish(&self, cp: CheckpointRecord) {
        let Ok(witness) = self.witness.lock() else {
            return;
        };
        if let Some(queue) = witness.as_ref() {
            if queue.try_send(cp).is_err() {
                tracing::warn!(
                    "audit witness queue full or closed: a signed head was not published"
                );
            }
        }
    }
}

pub(super) struct Writer {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    task: Mutex<Option<JoinHandle<()>>>,
    counts: Arc<BatchCounts>,
    /// The id of the last outbox event this writer committed, for in-process consumers.
    outbox_head: watch::Receiver<i64>,
}

/// How many batches (transactions) the writer ran and how many writes they carried: their
/// ratio is the mean batch size, which tests assert to show writes are grouped.
#[derive(Default)]
pub(super) struct BatchCounts {
    pub(super) batches: AtomicU64,
    pub(super) writes: AtomicU64,
}

impl Writer {
    pub(super) fn start_sqlite(
        pool: SqlitePool,
        max_batch: usize,
        events: Events,
        checkpointing: Arc<Checkpointing>,
    ) -> Writer {
        Self::start(WritePool::Sqlite(pool), max_batch, events, checkpointing)
    }

    pub(super) fn start_pg(
        pool: PgPool,
        max_batch: usize,
        events: Events,
        checkpointing: Arc<Checkpointing>,
    ) -> Writer {
        Self::start(WritePool::Pg(pool), max_batch, events, checkpointing)
    }

    fn start(
        pool: WritePool,
        max_batch: usize,
        events: Events,
        checkpointing: Arc<Checkpointing>,
    ) -> Writer {
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        let counts = Arc::new(BatchCounts::default());
        let (outbox_sender, outbox_head) = watch::channel(0);
        let task = tokio::spawn(run(
            pool,
            receiver,
            max_batch.max(1),
            events,
            checkpointing,
            counts.clone(),
            outbox_sender,
        ));
        Writer {
            sender: Mutex::new(Some(sender)),
            task: Mutex::new(Some(task)),
            counts,
            outbox_head,
        }
    }

    /// Changes whenever this writer commits events to the outbox (the value is the last id).
    pub(super) fn outbox_head(&self) -> watch::Receiver<i64> {
        self.outbox_head.clone()
    }

    /// Batches and writes run so far: `(batches, writes)`.
    pub(super) fn batch_counts(&self) -> (u64, u64) {
        (
            self.counts.batches.load(Ordering::Relaxed),
            self.counts.writes.load(Ordering::Relaxed),
        )
    }

    pub(super) async fn submit<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> WriteFuture<'t, T, E> + Send + 'static,
    {
        self.enqueue(work).await?.await
    }

    /// Puts a write in the queue and returns what resolves once it is committed (or failed).
    /// Writes enqueued one after another by one caller run, and commit, in that order, so a
    /// caller may enqueue its next write before the previous one is committed.
    pub(super) async fn enqueue<T, E, F>(
        &self,
        work: F,
    ) -> Result<impl Future<Output = Result<T, E>> + Send + 'static, E>
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
                    Ok(value) => Ended::Done(Box::new(move |committed: Result<(), StoreError>| {
                        let _ = reply.send(committed.map(|()| value).map_err(E::from));
                    })),
                    Err(err) => Ended::Failed(Box::new(move |_| {
                        let _ = reply.send(Err(err));
                    })),
                }
            })
        });
        sender
            .send(job)
            .await
            .map_err(|_| StoreError::ShuttingDown)?;
        // A dropped reply means the batch never ran (the transaction could not begin).
        Ok(async move {
            answer.await.unwrap_or(Err(E::from(StoreError::Commit(
                "transaction did not start".into(),
            ))))
        })
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

/// Keeps a job's writes and opens the next job's savepoint, in one hand-off.
const NEXT_JOB: &str = "RELEASE SAVEPOINT job; SAVEPOINT job";
/// Undoes a job's writes; the savepoint stays open, for the next job.
const UNDO_JOB: &str = "ROLLBACK TO SAVEPOINT job";
/// Keeps the last job's writes (PostgreSQL: see [`run`]).
const RELEASE: &str = "RELEASE SAVEPOINT job; ";

/// Begins a batch's transaction, with the first job's savepoint open if `savepoint`, in one
/// statement.
async fn begin(pool: &WritePool, savepoint: bool) -> Result<Tx, StoreError> {
    let inner = match (pool, savepoint) {
        (WritePool::Sqlite(p), false) => TxInner::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
        (WritePool::Sqlite(p), true) => {
            TxInner::Sqlite(p.begin_with("BEGIN IMMEDIATE; SAVEPOINT job").await?)
        }
        (WritePool::Pg(p), false) => TxInner::Pg(p.begin().await?),
        (WritePool::Pg(p), true) => TxInner::Pg(p.begin_with("BEGIN; SAVEPOINT job").await?),
    };
    Ok(Tx {
        inner,
        events: Vec::new(),
        audit: Vec::new(),
        rollback_hooks: Vec::new(),
        checkpoint_requested: false,
    })
}

/// Runs savepoint statements (one or more, in one hand-off or round trip).
async fn exec(tx: &mut Tx, sql: &'static str) -> Result<(), StoreError> {
    match &mut tx.inner {
        TxInner::Sqlite(t) => sqlx::query(sql).execute(&mut **t).await.map(|_| ())?,
        TxInner::Pg(t) => (&mut **t).execute(sqlx::raw_sql(sql)).await.map(|_| ())?,
    }
    Ok(())
}

async fn rollback(tx: Tx) -> Result<(), StoreError> {
    match tx.inner {
        TxInner::Sqlite(t) => t.rollback().await?,
        TxInner::Pg(t) => t.rollback().await?,
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

/// A batch that cannot commit: its rollback hooks run and every job is told why (the
/// transaction rolls back when dropped).
fn abandon(tx: &mut Tx, completions: Vec<Completion>, err: &StoreError) {
    run_hooks(tx, 0);
    let message = err.to_string();
    for done in completions {
        done(Err(StoreError::Commit(message.clone())));
    }
}

fn run_hooks(tx: &mut Tx, from: usize) {
    let from = from.min(tx.rollback_hooks.len());
    for hook in tx.rollback_hooks.drain(from..) {
        hook();
    }
}

/// Where a job's events, audit entries and rollback hooks start in the transaction's lists.
#[derive(Clone, Copy)]
struct Marks {
    events: usize,
    audit: usize,
    hooks: usize,
}

impl Marks {
    fn of(tx: &Tx) -> Marks {
        Marks {
            events: tx.events.len(),
            audit: tx.audit.len(),
            hooks: tx.rollback_hooks.len(),
        }
    }

    /// Forgets what a failed job left in memory: its events, its audit entries except those
    /// that survive a failed write (denials and failed attempts), and runs its rollback hooks.
    fn discard(self, tx: &mut Tx) {
        tx.events.truncate(self.events);
        let from = self.audit.min(tx.audit.len());
        let kept: Vec<PendingAudit> = tx
            .audit
            .drain(from..)
            .filter(|e| e.survives_rollback)
            .collect();
        tx.audit.extend(kept);
        run_hooks(tx, self.hooks);
    }
}

/// Statements per batch of N jobs (besides the jobs' own): `BEGIN` with the first job's
/// savepoint; one command between consecutive jobs (release and open again, or roll back to
/// the savepoint, which leaves it open for the next job); the appends (see
/// [`batch_append`]); `COMMIT`. A batch of one job has no savepoint. On SQLite the last
/// job's savepoint is left to `COMMIT`, which releases it. On PostgreSQL it is released
/// explicitly, in the round trip that locks the audit chain when there is one, because a job
/// may leave the transaction aborted (a statement failed and the job went on) and
/// PostgreSQL answers `COMMIT` of an aborted transaction by rolling back without an error.
async fn run(
    pool: WritePool,
    mut queue: mpsc::Receiver<Job>,
    max_batch: usize,
    events: Events,
    checkpointing: Arc<Checkpointing>,
    counts: Arc<BatchCounts>,
    outbox_head: watch::Sender<i64>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    // The audit chain head this writer committed last (SQLite; its use is guarded).
    let mut known_head: Option<ChainHead> = None;
    'batches: while queue.recv_many(&mut batch, max_batch).await > 0 {
        let size = batch.len();
        // A batch of one job needs no savepoint: if the job fails, the whole transaction
        // rolls back.
        let alone = size == 1;
        let mut tx = match begin(&pool, !alone).await {
            Ok(tx) => tx,
            Err(err) => {
                tracing::error!(error = %err, jobs = size, "cannot begin a write transaction");
                batch.clear();
                continue;
            }
        };
        counts.batches.fetch_add(1, Ordering::Relaxed);
        counts.writes.fetch_add(size as u64, Ordering::Relaxed);
        let mut completions: Vec<Completion> = Vec::with_capacity(size);
        // Declared before the transaction's work, so answered after it, on every path.
        let mut refusals = Refusals(Vec::new());
        let mut failed_alone = false;
        // The last job, if it succeeded with its savepoint still open.
        let mut last_open: Option<Marks> = None;
        let jobs = std::mem::replace(&mut batch, Vec::with_capacity(max_batch));
        for (i, job) in jobs.into_iter().enumerate() {
            let marks = Marks::of(&tx);
            let last = i + 1 == size;
            let undo = match job(&mut tx).await {
                Ended::Done(done) if alone => {
                    completions.push(done);
                    false
                }
                Ended::Done(done) if last => {
                    completions.push(done);
                    last_open = Some(marks);
                    false
                }
                Ended::Done(done) => match exec(&mut tx, NEXT_JOB).await {
                    Ok(()) => {
                        completions.push(done);
                        false
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "release savepoint failed");
                        // The job failed: it is undone like any failed job.
                        marks.discard(&mut tx);
                        done(Err(StoreError::Commit(err.to_string())));
                        true
                    }
                },
                Ended::Failed(done) if alone => {
                    marks.discard(&mut tx);
                    refusals.answer(&tx, marks, done);
                    failed_alone = true;
                    false
                }
                Ended::Failed(done) => {
                    marks.discard(&mut tx);
                    refusals.answer(&tx, marks, done);
                    true
                }
            };
            if undo {
                if let Err(err) = exec(&mut tx, UNDO_JOB).await {
                    // The jobs not yet run are dropped, which fails them.
                    tracing::error!(error = %err, jobs = size, "rollback to savepoint failed; the batch is rolled back");
                    abandon(&mut tx, completions, &err);
                    continue 'batches;
                }
            }
        }
        if failed_alone {
            // Keep only what survives a failed write (recorded denials), in a transaction
            // of its own.
            let kept = std::mem::take(&mut tx.audit);
            let checkpoint_requested = tx.checkpoint_requested;
            if let Err(err) = rollback(tx).await {
                tracing::error!(error = %err, "rollback failed");
            }
            if kept.is_empty() && !checkpoint_requested {
                continue;
            }
            tx = match begin(&pool, false).await {
                Ok(tx) => tx,
                Err(err) => {
                    tracing::error!(error = %err, "cannot begin a write transaction");
                    continue;
                }
            };
            tx.audit = kept;
            tx.checkpoint_requested = checkpoint_requested;
        }
        let pg = matches!(tx.inner, TxInner::Pg(_));
        let mut release_last = if pg { last_open } else { None };
        let checkpoint_requested = tx.checkpoint_requested;
        let chains = !tx.audit.is_empty() || checkpoint_requested;
        if let (Some(marks), false) = (release_last, chains) {
            release_last = None;
            if let Err(err) = exec(&mut tx, RELEASE).await {
                if let Err(err) = undo_last(&mut tx, marks, &mut completions, &err).await {
                    abandon(&mut tx, completions, &err);
                    continue;
                }
            }
        }
        let mut emitted = std::mem::take(&mut tx.events);
        let mut entries = std::mem::take(&mut tx.audit);
        let appended = loop {
            let first = if release_last.is_some() { RELEASE } else { "" };
            let result = batch_append::append(
                &mut tx,
                &mut entries,
                checkpoint_requested,
                &emitted,
                &checkpointing,
                known_head.as_ref(),
                first,
            )
            .await;
            let err = match result {
                Ok(appended) => break Ok(appended),
                Err(AppendError::First(err)) => err,
                Err(AppendError::Append(err)) => break Err(err),
            };
            // The last job's savepoint could not be released (or the chain not locked):
            // undo the last job, then append without it.
            let Some(marks) = release_last.take() else {
                break Err(err);
            };
            tx.events = std::mem::take(&mut emitted);
            tx.audit = std::mem::take(&mut entries);
            if let Err(err) = undo_last(&mut tx, marks, &mut completions, &err).await {
                break Err(err);
            }
            emitted = std::mem::take(&mut tx.events);
            entries = std::mem::take(&mut tx.audit);
        };
        let appended = match appended {
            Ok(appended) => appended,
            Err(err) => {
                tracing::error!(error = %err, jobs = size, "cannot append the audit records or the outbox events; the batch is rolled back");
                abandon(&mut tx, completions, &err);
                continue;
            }
        };
        let mut hooks = std::mem::take(&mut tx.rollback_hooks);
        metrics::histogram!("concord_store_commit_batch_size").record(size as f64);
        match commit(tx).await {
            Ok(()) => {
                hooks.clear();
                if let Some(head) = appended.head {
                    known_head = Some(head);
                }
                for cp in appended.signed {
                    checkpointing.publish(cp);
                }
                for done in completions {
                    done(Ok(()));
                }
                if let Some(last) = appended.last_outbox_id {
                    outbox_head.send_replace(last);
                }
                for event in emitted {
                    events.publish(event);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, jobs = size, "group commit failed");
                known_head = None;
                for hook in hooks.drain(..) {
                    hook();
                }
                let message = err.to_string();
                for done in completions {
                    done(Err(StoreError::Commit(message.clone())));
                }
            }
        }
    }
}

/// Undoes the last job, whose savepoint could not be released: it fails alone (its
/// completion, pushed last, is told why). `Err` if the savepoint is gone: the batch cannot
/// commit.
async fn undo_last(
    tx: &mut Tx,
    marks: Marks,
    completions: &mut Vec<Completion>,
    err: &StoreError,
) -> Result<(), StoreError> {
    tracing::error!(error = %err, "release savepoint failed");
    exec(tx, UNDO_JOB).await?;
    marks.discard(tx);
    if let Some(done) = completions.pop() {
        done(Err(StoreError::Commit(err.to_string())));
    }
    Ok(())
}
