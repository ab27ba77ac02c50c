//! What a batch appends when it commits: its audit entries, numbered, hash-chained and (every
//! so often) covered by a signed checkpoint, and the events it emitted, in the outbox. Every
//! statement costs the writer a thread hand-off (SQLite) or a round trip (PostgreSQL), so this
//! is done in as few as each backend allows:
//!
//! - SQLite: one command. The writer remembers the chain head it last committed and chains
//!   the entries after it; each insert is guarded by the head it continues, so if another
//!   process (the command line beside a server) appended in between, nothing is inserted and
//!   the head is read and the entries chained again, in the same transaction (SQLite's write
//!   lock, held since the batch began, keeps anyone else out until the commit).
//! - PostgreSQL: two round trips. The chain's advisory lock and the head read (a statement of
//!   its own, so that its snapshot follows the lock), then the audit insert and the outbox
//!   append in one statement (data-modifying CTEs).
//!
//! Appends take the chain's lock, then the outbox head's, on both backends.

use std::sync::atomic::Ordering;

use futures::future::BoxFuture;
use futures::TryStreamExt;
use sqlx::{Either, Executor, QueryBuilder, Row};

use super::audit::{
    self, ChainHead, ChainedRow, CheckpointRecord, PendingAudit, INSERT_CHUNK as AUDIT_CHUNK,
};
use super::audit_chain as chain;
use super::backend::{Tx, TxInner};
use super::keys;
use super::outbox::{self, NewOutboxEvent, INSERT_CHUNK as OUTBOX_CHUNK};
use super::writer::Checkpointing;
use super::StoreError;
use crate::events::DomainEvent;

/// What a batch appended, to act on once it commits.
pub(super) struct Appended {
    /// Checkpoints signed, to hand to the witness.
    pub(super) signed: Vec<CheckpointRecord>,
    /// The last outbox id given, if the batch emitted events.
    pub(super) last_outbox_id: Option<i64>,
    /// The chain head after this batch, if it appended to the chain.
    pub(super) head: Option<ChainHead>,
}

/// Why an append failed.
pub(super) enum AppendError {
    /// The statements to run `first` (or the chain's lock) failed; nothing was appended and
    /// the entries are still in place.
    First(StoreError),
    /// The append failed: the batch cannot commit.
    Append(StoreError),
}

impl From<StoreError> for AppendError {
    fn from(err: StoreError) -> Self {
        AppendError::Append(err)
    }
}

impl From<sqlx::Error> for AppendError {
    fn from(err: sqlx::Error) -> Self {
        AppendError::Append(err.into())
    }
}

/// Appends the batch's audit entries (taken from `entries` once the chain is locked) and
/// `events`, and signs checkpoints when due. `known` is the head the writer committed last
/// (used on SQLite, guarded). `first` (PostgreSQL, statements ending with `;`) runs in the
/// round trip that locks the chain, when there is one. A checkpoint is signed as soon as
/// `checkpoint_every` entries follow the last one, inside the batch if need be, so two
/// consecutive checkpoints (and the log's start and the first) are never more than
/// `checkpoint_every` entries apart, however large the batch: the verifiers rely on it.
pub(super) fn append<'a>(
    tx: &'a mut Tx,
    entries: &'a mut Vec<PendingAudit>,
    checkpoint_requested: bool,
    events: &'a [DomainEvent],
    checkpointing: &'a Checkpointing,
    known: Option<&'a ChainHead>,
    first: &'a str,
) -> BoxFuture<'a, Result<Appended, AppendError>> {
    Box::pin(append_inner(
        tx,
        entries,
        checkpoint_requested,
        events,
        checkpointing,
        known,
        first,
    ))
}

async fn append_inner(
    tx: &mut Tx,
    entries: &mut Vec<PendingAudit>,
    checkpoint_requested: bool,
    events: &[DomainEvent],
    checkpointing: &Checkpointing,
    known: Option<&ChainHead>,
    first: &str,
) -> Result<Appended, AppendError> {
    let outbox_rows = outbox_rows(events)?;
    let plan = Plan {
        signing: checkpointing.signer.get().is_some(),
        every: checkpointing.every.load(Ordering::Relaxed).max(1) as i64,
        checkpoint_requested,
    };
    let chained = !entries.is_empty() || checkpoint_requested;
    let sqlite = matches!(tx.inner, TxInner::Sqlite(_));
    let (mut chained, last_outbox_id) = match sqlite {
        true if chained => {
            let fields = take_fields(entries);
            let (known, head) = match known {
                // A checkpoint alone (no entries) has no insert to guard: read the head.
                Some(head) if !fields.is_empty() => (true, head.clone()),
                _ => (false, audit::chain_state(&mut tx.conn()).await?),
            };
            let ch = plan.chain(head, fields);
            let mut q = QueryBuilder::new("");
            if known {
                audit::push_guarded_insert_sqlite(&mut q, &ch.rows, &ch.start);
            } else {
                for chunk in ch.rows.chunks(AUDIT_CHUNK) {
                    audit::push_insert(&mut q, chunk);
                    q.push("; ");
                }
            }
            let committed_at = chrono::Utc::now();
            for chunk in outbox_rows.chunks(OUTBOX_CHUNK) {
                outbox::push_append_sqlite(&mut q, chunk, committed_at);
            }
            let (changes, last_id) = if ch.rows.is_empty() && outbox_rows.is_empty() {
                (Vec::new(), None)
            } else {
                run_sqlite(tx, q).await?
            };
            let audit_statements = ch.rows.len().div_ceil(AUDIT_CHUNK);
            let inserted: u64 = changes.iter().take(audit_statements).sum();
            let last_outbox_id = (!outbox_rows.is_empty()).then_some(last_id).flatten();
            if inserted == ch.rows.len() as u64 {
                (ch, last_outbox_id)
            } else if known && inserted == 0 {
                // Another process appended since this writer's last commit.
                tracing::debug!("the audit chain moved since the last batch; chaining again");
                let head = audit::chain_state(&mut tx.conn()).await?;
                let ch = plan.chain(head, ch.rows.into_iter().map(|r| r.1).collect());
                audit::insert_many(&mut tx.conn(), &ch.rows).await?;
                (ch, last_outbox_id)
            } else {
                return Err(StoreError::Corrupt("audit_events (partial append)").into());
            }
        }
        false if chained => {
            let TxInner::Pg(c) = &mut tx.inner else {
                return Err(StoreError::Corrupt("writer backend").into());
            };
            let head = audit::lock_and_read_chain_pg(c, first)
                .await
                .map_err(AppendError::First)?;
            let ch = plan.chain(head, take_fields(entries));
            let one_statement = !ch.rows.is_empty()
                && ch.rows.len() <= AUDIT_CHUNK
                && !outbox_rows.is_empty()
                && outbox_rows.len() <= OUTBOX_CHUNK;
            if let (true, TxInner::Pg(c)) = (one_statement, &mut tx.inner) {
                let mut q = QueryBuilder::new("WITH audit AS (");
                audit::push_insert(&mut q, &ch.rows);
                q.push("), ");
                outbox::push_append_pg(&mut q, &outbox_rows);
                let row = (&mut **c).fetch_one(q.build()).await?;
                let last: i64 = row.try_get(0)?;
                (ch, Some(last))
            } else {
                audit::insert_many(&mut tx.conn(), &ch.rows).await?;
                let last = if outbox_rows.is_empty() {
                    None
                } else {
                    Some(outbox::append(&mut tx.conn(), &outbox_rows).await?)
                };
                (ch, last)
            }
        }
        true => {
            if outbox_rows.is_empty() {
                return Ok(Appended {
                    signed: Vec::new(),
                    last_outbox_id: None,
                    head: None,
                });
            }
            let committed_at = chrono::Utc::now();
            let mut q = QueryBuilder::new("");
            for chunk in outbox_rows.chunks(OUTBOX_CHUNK) {
                outbox::push_append_sqlite(&mut q, chunk, committed_at);
            }
            let (_, last_id) = run_sqlite(tx, q).await?;
            return Ok(Appended {
                signed: Vec::new(),
                last_outbox_id: last_id,
                head: None,
            });
        }
        false => {
            let last_outbox_id = if outbox_rows.is_empty() {
                None
            } else {
                Some(outbox::append(&mut tx.conn(), &outbox_rows).await?)
            };
            return Ok(Appended {
                signed: Vec::new(),
                last_outbox_id,
                head: None,
            });
        }
    };
    let signed = sign_checkpoints(tx, checkpointing, std::mem::take(&mut chained.due)).await?;
    Ok(Appended {
        signed,
        last_outbox_id,
        head: Some(chained.end),
    })
}

/// Runs a multi-statement command on SQLite in one hand-off to its worker thread; returns
/// each statement's changed-row count and the last value a statement returned (the outbox
/// head). sqlx 0.8's SQLite driver runs every statement of a query and binds anonymous
/// parameters across them in order (`sqlx-sqlite`'s `ExecuteIter`); only SQLite does, and
/// sqlx has deprecated it (launchbadge/sqlx#3108): if an upgrade drops it, every audited
/// write's test fails.
async fn run_sqlite(
    tx: &mut Tx,
    mut q: QueryBuilder<'_, sqlx::Sqlite>,
) -> Result<(Vec<u64>, Option<i64>), StoreError> {
    let TxInner::Sqlite(c) = &mut tx.inner else {
        return Err(StoreError::Corrupt("writer backend"));
    };
    let mut changes = Vec::new();
    let mut last = None;
    let mut results = (&mut **c).fetch_many(q.build());
    while let Some(step) = results.try_next().await? {
        match step {
            Either::Left(done) => changes.push(done.rows_affected()),
            Either::Right(row) => last = Some(outbox::last_id_of(Some(&row))?),
        }
    }
    Ok((changes, last))
}

fn take_fields(entries: &mut Vec<PendingAudit>) -> Vec<audit::AuditFields> {
    std::mem::take(entries)
        .into_iter()
        .map(|e| e.fields)
        .collect()
}

/// The outbox rows of the batch's events, in emit order.
fn outbox_rows(events: &[DomainEvent]) -> Result<Vec<NewOutboxEvent>, StoreError> {
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
    Ok(rows)
}

/// How entries are chained and when checkpoints fall due.
struct Plan {
    signing: bool,
    every: i64,
    checkpoint_requested: bool,
}

/// Entries chained after a head.
struct Chained {
    /// The head they continue (the empty log's hash is the genesis hash).
    start: ChainHead,
    rows: Vec<ChainedRow>,
    /// Heads (sequence number, hash) to sign, in order.
    due: Vec<(i64, Vec<u8>)>,
    /// The head after them, checkpoints included.
    end: ChainHead,
}

impl Plan {
    fn chain(&self, mut head: ChainHead, entries: Vec<audit::AuditFields>) -> Chained {
        if head.seq == 0 {
            head.hash = chain::GENESIS.to_vec();
        }
        let start = head.clone();
        let mut due = Vec::new();
        let mut rows = Vec::with_capacity(entries.len());
        for fields in entries {
            let seq = head.seq + 1;
            let hash = chain::entry_hash(&head.hash, seq, &fields).to_vec();
            let prev = std::mem::replace(&mut head.hash, hash.clone());
            head.seq = seq;
            rows.push((seq, fields, prev, hash.clone()));
            if self.signing && seq - head.checkpointed >= self.every {
                due.push((seq, hash));
                head.checkpointed = seq;
            }
        }
        if self.signing && self.checkpoint_requested && head.seq > head.checkpointed {
            due.push((head.seq, head.hash.clone()));
            head.checkpointed = head.seq;
        }
        Chained {
            start,
            rows,
            due,
            end: head,
        }
    }
}

/// Signs and stores the due checkpoints with the newest signing key, read in this
/// transaction (checkpoints are rare: every `audit.checkpoint_every` entries).
async fn sign_checkpoints(
    tx: &mut Tx,
    checkpointing: &Checkpointing,
    due: Vec<(i64, Vec<u8>)>,
) -> Result<Vec<CheckpointRecord>, StoreError> {
    let Some(signer) = checkpointing.signer.get() else {
        return Ok(Vec::new());
    };
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
