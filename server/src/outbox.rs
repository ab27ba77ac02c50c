//! Durable event consumers over the transactional outbox.
//!
//! Every batch of writes stores the domain events it emitted in the outbox, in the batch's own
//! transaction ([`crate::store::outbox`]); the in-process bus ([`crate::events`]) still carries
//! the same events to live subscribers right after the commit. A [`Consumer`] is a named,
//! durable reader of that table: it reads the events after its cursor in commit order
//! ([`Consumer::next_batch`]), handles them, then records how far it got ([`Consumer::ack`]).
//! Delivery is at least once: a consumer stopped (or killed) between handling and
//! acknowledging sees those events again when it resumes, and deduplicates by event id. A
//! consumer reads at its own pace from the database: one far behind costs writers nothing
//! (the writer never waits for consumers) and other consumers nothing.
//!
//! When it has read everything, a consumer waits ([`Consumer::wait`]) for this process's next
//! commit of events, or at most its poll interval (for events committed by another process,
//! such as a server while the command line reads).
//!
//! [`spawn_pruning`], run by the server, deletes the events every registered consumer has
//! passed, and those older than `outbox.max_age_seconds` whoever still needs them: a consumer
//! that never comes back does not make the table grow forever. When it does come back, the
//! events it missed are counted ([`Batch::missed`]: ids are contiguous, so a jump after the
//! cursor, or the head beyond it when no event is left after it, is exactly the pruned
//! events) and it must resynchronise from storage, or it can be removed ([`remove`]).

mod inventory;

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::OutboxConfig;
pub use crate::store::outbox::{ConsumerRecord, OutboxRecord, Start};
use crate::store::{outbox, Store, StoreError, Tx, WriteFuture};
pub use inventory::INVENTORY;

/// Rows deleted per pruning transaction, so no shared write transaction grows large.
const PRUNE_CHUNK: i64 = 5_000;

/// Why a consumer operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A consumer name must be 1 to 64 of `a-z`, `0-9`, `.`, `_` and `-`.
    #[error("invalid consumer name {0:?}: use 1 to 64 of a-z, 0-9, '.', '_' and '-'")]
    InvalidName(String),
    /// The consumer is not registered (it was removed while running).
    #[error("consumer {0:?} is not registered")]
    NotRegistered(String),
    /// A cursor beyond what was read cannot be acknowledged.
    #[error("cannot acknowledge {cursor}: only events up to {read} were read")]
    AheadOfRead {
        /// The cursor asked for.
        cursor: i64,
        /// The last event read.
        read: i64,
    },
}

/// What [`Consumer::next_batch`] read.
#[derive(Debug, Default)]
pub struct Batch {
    /// Events after the previous batch, in commit order.
    pub events: Vec<OutboxRecord>,
    /// Events that were pruned before this consumer read them (0 normally).
    pub missed: i64,
    /// The last id this batch accounts for: its last event, or the last missed one.
    through: i64,
}

impl Batch {
    /// The id to acknowledge once every event of this batch is handled (and, after missed
    /// events, once the consumer has resynchronised); `None` when there was nothing new.
    pub fn last_id(&self) -> Option<i64> {
        (!self.events.is_empty() || self.missed > 0).then_some(self.through)
    }
}

/// A named, durable reader of the outbox.
pub struct Consumer {
    store: Store,
    name: String,
    /// The last event read (at or ahead of the stored cursor).
    read: i64,
    /// The stored cursor.
    acked: i64,
    commits: watch::Receiver<i64>,
    poll: Duration,
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

impl Consumer {
    /// Opens consumer `name`, registering it if it is new (`start` says where a new one
    /// begins); an existing one resumes after its stored cursor.
    pub async fn open(store: &Store, name: &str, start: Start) -> Result<Consumer, OutboxError> {
        if !valid_name(name) {
            return Err(OutboxError::InvalidName(name.to_owned()));
        }
        let commits = store.outbox_commits();
        let owned = name.to_owned();
        let record = store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    outbox::register(&mut tx.conn(), &owned, start, Utc::now()).await
                })
            })
            .await?;
        Ok(Consumer {
            store: store.clone(),
            name: name.to_owned(),
            read: record.cursor,
            acked: record.cursor,
            commits,
            poll: Duration::from_secs(1),
        })
    }

    /// How long [`Consumer::wait`] waits at most for a commit of this process (default 1 s):
    /// the delay before events committed by another process are seen.
    pub fn with_poll_interval(mut self, poll: Duration) -> Consumer {
        self.poll = poll.max(Duration::from_millis(10));
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stored cursor: every event up to it was handled.
    pub fn cursor(&self) -> i64 {
        self.acked
    }

    /// Reads up to `max` events after the last one read, in commit order, without waiting;
    /// an empty batch with nothing missed means there is nothing new.
    pub async fn next_batch(&mut self, max: usize) -> Result<Batch, OutboxError> {
        // Marks what this process committed so far as seen before reading, so a commit
        // after the read wakes the next wait.
        self.commits.borrow_and_update();
        let limit = max.max(1) as i64;
        let mut conn = self.store.reader().await?;
        let mut events = outbox::after(&mut conn.conn(), self.read, limit).await?;
        let mut head = self.read;
        if events.is_empty() {
            // Nothing stored after the cursor: the events up to the head, if it is ahead,
            // were pruned, unless they committed since the read above. The head is read
            // first, then the rows again: every id up to a head seen is committed (ids
            // follow commit order), so what is still absent then was pruned.
            head = outbox::head(&mut conn.conn()).await?;
            if head > self.read {
                events = outbox::after(&mut conn.conn(), self.read, limit).await?;
            }
        }
        let missed = match events.first() {
            Some(first) => first.id - self.read - 1,
            None => (head - self.read).max(0),
        };
        if missed > 0 {
            tracing::warn!(
                consumer = %self.name,
                missed,
                "outbox events were pruned before this consumer read them"
            );
        }
        if let Some(last) = events.last() {
            self.read = last.id;
        } else {
            self.read += missed;
        }
        Ok(Batch {
            through: self.read,
            events,
            missed,
        })
    }

    /// Waits until this process commits events, or the poll interval passes.
    pub async fn wait(&mut self) {
        let _ = tokio::time::timeout(self.poll, self.commits.changed()).await;
    }

    /// Records that every event up to `cursor` (an id from a batch read) is handled, in the
    /// same write as `work` (which stores what handling them produced): the two commit
    /// together, so a consumer stopped at any point neither loses nor repeats that work.
    pub async fn ack_with<T, F>(&mut self, cursor: i64, work: F) -> Result<T, OutboxError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> WriteFuture<'t, T, StoreError> + Send + 'static,
    {
        if cursor > self.read {
            return Err(OutboxError::AheadOfRead {
                cursor,
                read: self.read,
            });
        }
        let name = self.name.clone();
        let (out, registered) = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let out = work(&mut *tx).await?;
                    let registered =
                        outbox::advance(&mut tx.conn(), &name, cursor, Utc::now()).await?;
                    Ok::<_, StoreError>((out, registered))
                })
            })
            .await?;
        if !registered {
            return Err(OutboxError::NotRegistered(self.name.clone()));
        }
        self.acked = self.acked.max(cursor);
        Ok(out)
    }

    /// Records that every event up to `cursor` (an id from a batch read) is handled; a
    /// restart resumes after it. A cursor at or behind the stored one changes nothing.
    pub async fn ack(&mut self, cursor: i64) -> Result<(), OutboxError> {
        if cursor > self.read {
            return Err(OutboxError::AheadOfRead {
                cursor,
                read: self.read,
            });
        }
        if cursor <= self.acked {
            return Ok(());
        }
        let name = self.name.clone();
        let registered = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(
                    async move { outbox::advance(&mut tx.conn(), &name, cursor, Utc::now()).await },
                )
            })
            .await?;
        if !registered {
            return Err(OutboxError::NotRegistered(self.name.clone()));
        }
        self.acked = cursor;
        Ok(())
    }
}

/// Every registered consumer, with the newest event id (`head`) to compare cursors against.
pub async fn consumers(store: &Store) -> Result<(Vec<ConsumerRecord>, i64), OutboxError> {
    let mut conn = store.reader().await?;
    let list = outbox::consumers(&mut conn.conn()).await?;
    let head = outbox::head(&mut conn.conn()).await?;
    Ok((list, head))
}

/// Unregisters consumer `name`, so pruning no longer waits for it; false if it was unknown.
pub async fn remove(store: &Store, name: &str) -> Result<bool, OutboxError> {
    let name = name.to_owned();
    Ok(store
        .write(move |tx: &mut Tx| {
            Box::pin(async move { outbox::remove(&mut tx.conn(), &name).await })
        })
        .await?)
}

/// Deletes the events every registered consumer has passed and those older than
/// `max_age` (if any), a bounded chunk per write; returns how many.
pub async fn prune(store: &Store, max_age: Option<Duration>) -> Result<u64, OutboxError> {
    let mut total = 0;
    loop {
        let older_than = max_age
            .and_then(|age| chrono::Duration::from_std(age).ok())
            .and_then(|age| Utc::now().checked_sub_signed(age));
        let deleted = store
            .write(move |tx: &mut Tx| {
                Box::pin(
                    async move { outbox::prune(&mut tx.conn(), older_than, PRUNE_CHUNK).await },
                )
            })
            .await?;
        total += deleted;
        if deleted < PRUNE_CHUNK as u64 {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

/// Prunes the outbox every `outbox.prune_interval_seconds` until `stop` (the server's task).
pub fn spawn_pruning(
    store: Store,
    config: &OutboxConfig,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let period = Duration::from_secs(config.prune_interval_seconds.max(1));
    let max_age = (config.max_age_seconds > 0).then(|| Duration::from_secs(config.max_age_seconds));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticks.tick() => {
                    match prune(&store, max_age).await {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(events = n, "outbox pruned"),
                        Err(err) => tracing::warn!(error = %err, "outbox pruning failed"),
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn consumer_names() {
        assert!(valid_name("search"));
        assert!(valid_name("bots.delivery-1_a"));
        assert!(!valid_name(""));
        assert!(!valid_name("Upper"));
        assert!(!valid_name("with space"));
        assert!(!valid_name(&"a".repeat(65)));
    }
}
