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
use sqlx::{PgPool, SqlitePool};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::audit::{self, CheckpointRecord, CheckpointSigner, PendingAudit};
use super::audit_chain as chain;
use super::backend::{Tx, TxInner};
use super::keys;
use super::outbox::{self, NewOutboxEvent};
use super::StoreError;
use crate::events::{DomainEvent, Events};

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

/// The chain head, read inside each batch's transaction: another process (the command line
/// while a server runs) may have appended since the last batch.
#[derive(Clone, Default)]
struct ChainHead {
    seq: i64,
    hash: Vec<u8>,
    checkpointed: i64,
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
        audit: Vec::new(),
        rollback_hooks: Vec::new(),
        checkpoint_requested: false,
    })
}

async fn exec(tx: &mut Tx, sql: &'static str) -> Result<(), StoreError> {
    match &mut tx.inner {
        TxInner::Sqlite(t) => sqlx::query(sql).execute(&mut **t).await.map(|_| ())?,
        TxInner::Pg(t) => sqlx::query(sql).execute(&mut **t).await.map(|_| ())?,
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

/// Numbers, chains and stores the batch's audit entries, and signs checkpoints when due
/// (returned, to be published once committed). A checkpoint is signed as soon as
/// `checkpoint_every` entries follow the last one, inside the batch if need be, so two
/// consecutive checkpoints (and the log's start and the first) are never more than
/// `checkpoint_every` entries apart, however large the batch: the verifiers rely on it.
async fn append_audit(
    tx: &mut Tx,
    entries: Vec<PendingAudit>,
    checkpoint_requested: bool,
    checkpointing: &Checkpointing,
) -> Result<Vec<CheckpointRecord>, StoreError> {
    if entries.is_empty() && !checkpoint_requested {
        return Ok(Vec::new());
    }
    // Serializes appends across processes (SQLite's write lock already does).
    audit::lock_chain(&mut tx.conn()).await?;
    let (seq, hash, checkpointed) = audit::chain_state(&mut tx.conn()).await?;
    let mut head = ChainHead {
        seq,
        hash: if seq == 0 {
            chain::GENESIS.to_vec()
        } else {
            hash
        },
        checkpointed,
    };
    let signer = checkpointing.signer.get();
    let every = checkpointing.every.load(Ordering::Relaxed).max(1) as i64;
    // Heads (sequence number, hash) to sign, in order.
    let mut due: Vec<(i64, Vec<u8>)> = Vec::new();
    let mut rows = Vec::with_capacity(entries.len());
    for entry in entries {
        let seq = head.seq + 1;
        let hash = chain::entry_hash(&head.hash, seq, &entry.fields).to_vec();
        let prev = std::mem::replace(&mut head.hash, hash.clone());
        head.seq = seq;
        rows.push((seq, entry.fields, prev, hash.clone()));
        if signer.is_some() && seq - head.checkpointed >= every {
            due.push((seq, hash));
            head.checkpointed = seq;
        }
    }
    audit::insert_many(&mut tx.conn(), &rows).await?;
    let Some(signer) = signer else {
        return Ok(Vec::new());
    };
    if checkpoint_requested && head.seq > head.checkpointed {
        due.push((head.seq, head.hash.clone()));
    }
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let key = keys::latest(&mut tx.conn(), keys::AUDIT_SIGNING_SCOPE)
        .await?
        .ok_or(StoreError::Corrupt("data_keys (no audit signing key)"))?;
    let mut signed = Vec::with_capacity(due.len());
    for (seq, head_hash) in due {
        let signed_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let message = chain::checkpoint_message(seq, &head_hash, key.version, &signed_at);
        let signature = signer
            .sign(&key, &message)
            .map_err(|e| StoreError::Commit(format!("cannot sign the audit checkpoint: {e}")))?;
        let record = CheckpointRecord {
            seq,
            head_hash,
            signed_at,
            key_version: key.version,
            signature,
        };
        audit::insert_checkpoint(&mut tx.conn(), &record).await?;
        signed.push(record);
    }
    Ok(signed)
}

/// Stores the batch's events in the outbox, in emit order, numbered after every batch
/// committed before (ours included, across processes): see [`outbox`].
async fn append_outbox(tx: &mut Tx, events: &[DomainEvent]) -> Result<Option<i64>, StoreError> {
    if events.is_empty() {
        return Ok(None);
    }
    let mut rows = Vec::with_capacity(events.len());
    for event in events {
        let value = serde_json::to_value(event)
            .map_err(|e| StoreError::Commit(format!("cannot serialize an event: {e}")))?;
        let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        rows.push(NewOutboxEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            kind: text("type").unwrap_or_default(),
            workspace_id: text("workspace_id"),
            payload: value.to_string(),
        });
    }
    outbox::append(&mut tx.conn(), &rows).await.map(Some)
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
        counts.batches.fetch_add(1, Ordering::Relaxed);
        counts.writes.fetch_add(size as u64, Ordering::Relaxed);
        let mut completions: Vec<Completion> = Vec::with_capacity(size);
        // A batch of one job needs no savepoint: if the job fails, the whole transaction
        // rolls back (two statements fewer for every write made alone).
        let alone = size == 1;
        let mut failed_alone = false;
        for job in batch.drain(..) {
            let events_before = tx.events.len();
            let audit_before = tx.audit.len();
            let hooks_before = tx.rollback_hooks.len();
            if !alone {
                if let Err(err) = exec(&mut tx, "SAVEPOINT job").await {
                    tracing::error!(error = %err, "savepoint failed");
                    drop(job);
                    continue;
                }
            }
            match job(&mut tx).await {
                Some(done) => {
                    if !alone {
                        if let Err(err) = exec(&mut tx, "RELEASE SAVEPOINT job").await {
                            tracing::error!(error = %err, "release savepoint failed");
                            // The job failed: its events are neither published nor stored.
                            tx.events.truncate(events_before);
                            done(Err(StoreError::Commit(err.to_string())));
                            continue;
                        }
                    }
                    completions.push(done);
                }
                None if alone => {
                    tx.events.truncate(events_before);
                    let kept: Vec<PendingAudit> = tx
                        .audit
                        .drain(audit_before..)
                        .filter(|e| e.survives_rollback)
                        .collect();
                    tx.audit.truncate(audit_before);
                    tx.audit.extend(kept);
                    run_hooks(&mut tx, hooks_before);
                    failed_alone = true;
                }
                None => {
                    tx.events.truncate(events_before);
                    // Denials and failed attempts are recorded even though the write failed.
                    let kept: Vec<PendingAudit> = tx
                        .audit
                        .drain(audit_before..)
                        .filter(|e| e.survives_rollback)
                        .collect();
                    tx.audit.extend(kept);
                    run_hooks(&mut tx, hooks_before);
                    if let Err(err) = exec(&mut tx, "ROLLBACK TO SAVEPOINT job").await {
                        tracing::error!(error = %err, "rollback to savepoint failed");
                    }
                    let _ = exec(&mut tx, "RELEASE SAVEPOINT job").await;
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
            tx = match begin(&pool).await {
                Ok(tx) => tx,
                Err(err) => {
                    tracing::error!(error = %err, "cannot begin a write transaction");
                    continue;
                }
            };
            tx.audit = kept;
            tx.checkpoint_requested = checkpoint_requested;
        }
        let emitted = std::mem::take(&mut tx.events);
        let entries = std::mem::take(&mut tx.audit);
        let checkpoint_requested = tx.checkpoint_requested;
        let signed = match append_audit(&mut tx, entries, checkpoint_requested, &checkpointing)
            .await
        {
            Ok(signed) => signed,
            Err(err) => {
                tracing::error!(error = %err, jobs = size, "cannot append the audit records; the batch is rolled back");
                abandon(&mut tx, completions, &err);
                continue;
            }
        };
        // After the audit append: every writer takes the chain's lock, then the outbox head's.
        let last_outbox_id = match append_outbox(&mut tx, &emitted).await {
            Ok(last) => last,
            Err(err) => {
                tracing::error!(error = %err, jobs = size, "cannot store the batch's events in the outbox; the batch is rolled back");
                abandon(&mut tx, completions, &err);
                continue;
            }
        };
        let mut hooks = std::mem::take(&mut tx.rollback_hooks);
        metrics::histogram!("concord_store_commit_batch_size").record(size as f64);
        match commit(tx).await {
            Ok(()) => {
                hooks.clear();
                for cp in signed {
                    checkpointing.publish(cp);
                }
                for done in completions {
                    done(Ok(()));
                }
                if let Some(last) = last_outbox_id {
                    outbox_head.send_replace(last);
                }
                for event in emitted {
                    events.publish(event);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, jobs = size, "group commit failed");
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
