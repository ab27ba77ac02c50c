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

use std::panic::AssertUnwindSafe;

use futures::future::BoxFuture;
use futures::FutureExt;
use sqlx::{Executor, PgPool, SqlitePool};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::audit::{ChainHead, CheckpointRecord, CheckpointSigner, PendingAudit};
use super::backend::{Tx, TxInner, TxLog};
use super::batch_append::{self, AppendError};
use super::raw::{self, Raw, RawTx};
use super::StoreError;
use crate::events::Events;

/// The future a write closure returns; it borrows the transaction.
pub type WriteFuture<'t, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 't>>;

/// Delivers a job's result once the fate of its commit is known.
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A job that runs in the shared transaction through sqlx and tells how it ended.
type AsyncJob = Box<dyn for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Ended> + Send>;
/// A job's synchronous form (SQLite, see [`super::raw`]): how it ended, or, if it declined,
/// its asynchronous form to run in its place.
type RawJob = Box<dyn for<'a, 'c> FnOnce(&'a mut RawTx<'c>) -> Result<Ended, AsyncJob> + Send>;

enum Job {
    Async(AsyncJob),
    Raw(RawJob),
}

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
    fn answer(&mut self, log: &TxLog, marks: Marks, done: Completion) {
        if log.audit.len() > marks.audit {
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
    /// Whether jobs' synchronous forms run (SQLite).
    sqlite: bool,
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
    /// Jobs whose synchronous form ran to an end, and jobs whose synchronous form declined.
    pub(super) raw_ran: AtomicU64,
    pub(super) raw_declined: AtomicU64,
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
        let sqlite = matches!(pool, WritePool::Sqlite(_));
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
            sqlite,
            counts,
            outbox_head,
        }
    }

    /// Changes whenever this writer commits events to the outbox (the value is the last id).
    pub(super) fn outbox_head(&self) -> watch::Receiver<i64> {
        self.outbox_head.clone()
    }

    /// Jobs whose synchronous form ran to an end and jobs whose synchronous form declined:
    /// `(ran, declined)`.
    pub(super) fn raw_counts(&self) -> (u64, u64) {
        (
            self.counts.raw_ran.load(Ordering::Relaxed),
            self.counts.raw_declined.load(Ordering::Relaxed),
        )
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
        let (reply, answer) = oneshot::channel::<Result<T, E>>();
        self.send(Job::Async(async_job(work, reply))).await?;
        Ok(answered(answer))
    }

    /// Like [`Writer::enqueue`], for a write that also has a synchronous form (see
    /// [`super::raw`]): on SQLite `raw` runs on the writer's thread and `work` only if `raw`
    /// declines; on PostgreSQL `work` runs.
    pub(super) async fn enqueue_raw<T, E, P, R, F>(
        &self,
        input: P,
        raw: R,
        work: F,
    ) -> Result<impl Future<Output = Result<T, E>> + Send + 'static, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        P: Send + 'static,
        R: for<'a, 'c> FnOnce(&'a mut RawTx<'c>, P) -> Raw<T, E, P> + Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx, P) -> WriteFuture<'t, T, E> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, E>>();
        let job = if self.sqlite {
            Job::Raw(Box::new(move |tx: &mut RawTx<'_>| match raw(tx, input) {
                Raw::Done(value) => Ok(done(reply, value)),
                Raw::Failed(err) => Ok(failed(reply, err)),
                Raw::Declined(input) => Err(async_job(move |tx: &mut Tx| work(tx, input), reply)),
            }))
        } else {
            Job::Async(async_job(move |tx: &mut Tx| work(tx, input), reply))
        };
        self.send(job).await?;
        Ok(answered(answer))
    }

    async fn send(&self, job: Job) -> Result<(), StoreError> {
        let sender = self
            .sender
            .lock()
            .map_err(|_| StoreError::ShuttingDown)?
            .clone()
            .ok_or(StoreError::ShuttingDown)?;
        sender.send(job).await.map_err(|_| StoreError::ShuttingDown)
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

/// A job's asynchronous form, answering through `reply`.
fn async_job<T, E, F>(work: F, reply: oneshot::Sender<Result<T, E>>) -> AsyncJob
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: for<'t> FnOnce(&'t mut Tx) -> WriteFuture<'t, T, E> + Send + 'static,
{
    Box::new(move |tx: &mut Tx| {
        Box::pin(async move {
            match work(tx).await {
                Ok(value) => done(reply, value),
                Err(err) => failed(reply, err),
            }
        })
    })
}

/// A job that succeeded: its caller gets `value` once the commit is known.
fn done<T, E>(reply: oneshot::Sender<Result<T, E>>, value: T) -> Ended
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    Ended::Done(Box::new(move |committed: Result<(), StoreError>| {
        let _ = reply.send(committed.map(|()| value).map_err(E::from));
    }))
}

/// A job that failed: its caller gets `err` whatever the commit does.
fn failed<T, E>(reply: oneshot::Sender<Result<T, E>>, err: E) -> Ended
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    Ended::Failed(Box::new(move |_| {
        let _ = reply.send(Err(err));
    }))
}

/// What resolves with a job's answer. A dropped reply means the batch never ran (the
/// transaction could not begin).
async fn answered<T, E: From<StoreError>>(answer: oneshot::Receiver<Result<T, E>>) -> Result<T, E> {
    answer.await.unwrap_or(Err(E::from(StoreError::Commit(
        "transaction did not start".into(),
    ))))
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
        log: TxLog::default(),
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
fn abandon(log: &mut TxLog, completions: Vec<Completion>, err: &StoreError) {
    run_hooks(log, 0);
    log.commit_hooks.clear();
    let message = err.to_string();
    for done in completions {
        done(Err(StoreError::Commit(message.clone())));
    }
}

fn run_hooks(log: &mut TxLog, from: usize) {
    let from = from.min(log.rollback_hooks.len());
    for hook in log.rollback_hooks.drain(from..) {
        hook();
    }
}

/// Where a job's events, audit entries and rollback hooks start in the transaction's lists.
#[derive(Clone, Copy)]
struct Marks {
    events: usize,
    audit: usize,
    hooks: usize,
    commit_hooks: usize,
}

impl Marks {
    fn of(log: &TxLog) -> Marks {
        Marks {
            events: log.events.len(),
            audit: log.audit.len(),
            hooks: log.rollback_hooks.len(),
            commit_hooks: log.commit_hooks.len(),
        }
    }

    /// Forgets what a failed job left in memory: its events, its audit entries except those
    /// that survive a failed write (denials and failed attempts), and runs its rollback hooks.
    fn discard(self, log: &mut TxLog) {
        log.events.truncate(self.events);
        let from = self.audit.min(log.audit.len());
        let kept: Vec<PendingAudit> = log
            .audit
            .drain(from..)
            .filter(|e| e.survives_rollback)
            .collect();
        log.audit.extend(kept);
        log.commit_hooks.truncate(self.commit_hooks);
        run_hooks(log, self.hooks);
    }

    /// Forgets everything a job left in memory, kept audit entries included.
    fn forget(self, log: &mut TxLog) {
        log.events.truncate(self.events);
        log.audit.truncate(self.audit);
        log.commit_hooks.truncate(self.commit_hooks);
        run_hooks(log, self.hooks);
    }
}

/// Where a batch's jobs stand as they run, and what the writer does after each.
struct Settling {
    size: usize,
    completions: Vec<Completion>,
    refusals: Refusals,
    failed_alone: bool,
    /// The last job, if it succeeded with its savepoint still open.
    last_open: Option<Marks>,
}

/// What follows a job.
enum Then {
    /// Nothing to run.
    Nothing,
    /// Release its savepoint and open the next job's ([`NEXT_JOB`]); if that fails, undo it
    /// with [`Settling::release_failed`].
    Next(Marks),
    /// Roll back to its savepoint ([`UNDO_JOB`]).
    Undo,
}

impl Settling {
    /// Takes the end of job `i`, which started at `marks`.
    fn settle(&mut self, log: &mut TxLog, i: usize, marks: Marks, ended: Ended) -> Then {
        let alone = self.size == 1;
        let last = i + 1 == self.size;
        match ended {
            Ended::Done(done) => {
                self.completions.push(done);
                if alone {
                    Then::Nothing
                } else if last {
                    self.last_open = Some(marks);
                    Then::Nothing
                } else {
                    Then::Next(marks)
                }
            }
            Ended::Failed(done) => {
                marks.discard(log);
                self.refusals.answer(log, marks, done);
                if alone {
                    self.failed_alone = true;
                    Then::Nothing
                } else {
                    Then::Undo
                }
            }
        }
    }

    /// The savepoint of the job that just succeeded could not be released: it fails (and
    /// must be undone).
    fn release_failed(&mut self, log: &mut TxLog, marks: Marks, err: &StoreError) {
        tracing::error!(error = %err, "release savepoint failed");
        marks.discard(log);
        if let Some(done) = self.completions.pop() {
            done(Err(StoreError::Commit(err.to_string())));
        }
    }
}

/// Runs an asynchronous job; `Err` if the batch cannot go on.
async fn run_async(
    tx: &mut Tx,
    settling: &mut Settling,
    i: usize,
    job: AsyncJob,
) -> Result<(), StoreError> {
    let marks = Marks::of(&tx.log);
    let ended = match AssertUnwindSafe(job(tx)).catch_unwind().await {
        Ok(ended) => ended,
        Err(_) => {
            // Its caller was answered with an error when the job unwound.
            tracing::error!("a write panicked in the writer; it is undone");
            Ended::Failed(Box::new(|_| {}))
        }
    };
    let undo = match settling.settle(&mut tx.log, i, marks, ended) {
        Then::Nothing => false,
        Then::Undo => true,
        Then::Next(marks) => match exec(tx, NEXT_JOB).await {
            Ok(()) => false,
            Err(err) => {
                settling.release_failed(&mut tx.log, marks, &err);
                true
            }
        },
    };
    if undo {
        exec(tx, UNDO_JOB).await?;
    }
    Ok(())
}

/// Runs synchronous job `i`, then each synchronous job queued right after it, on the write
/// connection's handle, taken from the driver once for all of them. Returns the first job
/// that declined, with its index, to run in its asynchronous form (its savepoint is open);
/// `Err` if the batch cannot go on.
async fn run_raw<I>(
    tx: &mut Tx,
    counts: &BatchCounts,
    settling: &mut Settling,
    i: usize,
    first: RawJob,
    rest: &mut std::iter::Peekable<I>,
) -> Result<Option<(usize, AsyncJob)>, StoreError>
where
    I: Iterator<Item = (usize, Job)>,
{
    let TxInner::Sqlite(t) = &mut tx.inner else {
        return Err(StoreError::Corrupt("writer backend"));
    };
    let mut handle = t.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    let log = &mut tx.log;
    let run = || -> Result<Option<(usize, AsyncJob)>, StoreError> {
        // SAFETY: the handle stays valid and unused by the driver while `handle` is held (it
        // is dropped after this closure returns), and `conn`, which does not close it, is
        // dropped when the closure returns.
        let conn = unsafe { rusqlite::Connection::from_handle(db) }?;
        let mut next = Some((i, first));
        while let Some((i, job)) = next.take() {
            let marks = Marks::of(log);
            let changes = conn.total_changes();
            let ended = {
                let mut raw_tx = RawTx {
                    conn: &conn,
                    log: &mut *log,
                };
                std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut raw_tx)))
            };
            let ended = match ended {
                Ok(Ok(ended)) => ended,
                Ok(Err(fallback)) if conn.total_changes() == changes => {
                    counts.raw_declined.fetch_add(1, Ordering::Relaxed);
                    // It wrote nothing; anything it left in memory is dropped.
                    marks.forget(log);
                    return Ok(Some((i, fallback)));
                }
                Ok(Err(fallback)) => {
                    // Its caller is answered with an error when the fallback is dropped.
                    tracing::error!(
                        "a write declined its synchronous form after writing; it is undone"
                    );
                    drop(fallback);
                    Ended::Failed(Box::new(|_| {}))
                }
                Err(_) => {
                    // Its caller was answered with an error when the job unwound.
                    tracing::error!("a write panicked in its synchronous form; it is undone");
                    Ended::Failed(Box::new(|_| {}))
                }
            };
            if conn.is_autocommit() {
                return Err(StoreError::Commit(
                    "a write ended the batch's transaction".into(),
                ));
            }
            counts.raw_ran.fetch_add(1, Ordering::Relaxed);
            let undo = match settling.settle(log, i, marks, ended) {
                Then::Nothing => false,
                Then::Undo => true,
                Then::Next(marks) => match raw::exec(&conn, NEXT_JOB) {
                    Ok(()) => false,
                    Err(err) => {
                        settling.release_failed(log, marks, &err);
                        true
                    }
                },
            };
            if undo {
                raw::exec(&conn, UNDO_JOB)?;
            }
            if let Some((_, Job::Raw(_))) = rest.peek() {
                if let Some((i, Job::Raw(job))) = rest.next() {
                    next = Some((i, job));
                }
            }
        }
        Ok(None)
    };
    // The run blocks its thread: on a runtime of several threads, the thread's other tasks
    // move to another for the time being.
    let outcome = match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(run),
        _ => run(),
    };
    drop(handle);
    outcome
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
        let mut settling = Settling {
            size,
            completions: Vec::with_capacity(size),
            // Declared before the transaction's work, so answered after it, on every path.
            refusals: Refusals(Vec::new()),
            failed_alone: false,
            last_open: None,
        };
        let jobs = std::mem::replace(&mut batch, Vec::with_capacity(max_batch));
        let mut jobs = jobs.into_iter().enumerate().peekable();
        while let Some((i, job)) = jobs.next() {
            let ran = match job {
                Job::Async(job) => run_async(&mut tx, &mut settling, i, job).await,
                Job::Raw(job) => match run_raw(&mut tx, &counts, &mut settling, i, job, &mut jobs)
                    .await
                {
                    Ok(Some((i, declined))) => run_async(&mut tx, &mut settling, i, declined).await,
                    Ok(None) => Ok(()),
                    Err(err) => Err(err),
                },
            };
            if let Err(err) = ran {
                // The jobs not yet run are dropped, which fails them.
                tracing::error!(error = %err, jobs = size, "a job's savepoint could not be rolled back; the batch is rolled back");
                abandon(&mut tx.log, settling.completions, &err);
                continue 'batches;
            }
        }
        let Settling {
            mut completions,
            // Answered when dropped, after the batch's commit.
            refusals: _refusals,
            failed_alone,
            last_open,
            ..
        } = settling;
        if failed_alone {
            // Keep only what survives a failed write (recorded denials), in a transaction
            // of its own.
            let kept = std::mem::take(&mut tx.log.audit);
            let checkpoint_requested = tx.log.checkpoint_requested;
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
            tx.log.audit = kept;
            tx.log.checkpoint_requested = checkpoint_requested;
        }
        let pg = matches!(tx.inner, TxInner::Pg(_));
        let mut release_last = if pg { last_open } else { None };
        let checkpoint_requested = tx.log.checkpoint_requested;
        let chains = !tx.log.audit.is_empty() || checkpoint_requested;
        if let (Some(marks), false) = (release_last, chains) {
            release_last = None;
            if let Err(err) = exec(&mut tx, RELEASE).await {
                if let Err(err) = undo_last(&mut tx, marks, &mut completions, &err).await {
                    abandon(&mut tx.log, completions, &err);
                    continue;
                }
            }
        }
        let mut emitted = std::mem::take(&mut tx.log.events);
        let mut entries = std::mem::take(&mut tx.log.audit);
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
            tx.log.events = std::mem::take(&mut emitted);
            tx.log.audit = std::mem::take(&mut entries);
            if let Err(err) = undo_last(&mut tx, marks, &mut completions, &err).await {
                break Err(err);
            }
            emitted = std::mem::take(&mut tx.log.events);
            entries = std::mem::take(&mut tx.log.audit);
        };
        let appended = match appended {
            Ok(appended) => appended,
            Err(err) => {
                tracing::error!(error = %err, jobs = size, "cannot append the audit records or the outbox events; the batch is rolled back");
                abandon(&mut tx.log, completions, &err);
                continue;
            }
        };
        let mut hooks = std::mem::take(&mut tx.log.rollback_hooks);
        let committed = std::mem::take(&mut tx.log.commit_hooks);
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
                // Published before the callers hear of their commit, so whoever wrote
                // something and then asks (a search, say) finds it on the bus already.
                if let Some(last) = appended.last_outbox_id {
                    outbox_head.send_replace(last);
                }
                for event in emitted {
                    events.publish(event);
                }
                for then in committed {
                    then();
                }
                for done in completions {
                    done(Ok(()));
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
    marks.discard(&mut tx.log);
    if let Some(done) = completions.pop() {
        done(Err(StoreError::Commit(err.to_string())));
    }
    Ok(())
}
