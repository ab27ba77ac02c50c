//! A workspace index's writer, opened by the first change and closed once the index has been
//! idle for a while.
//!
//! An open tantivy writer keeps three threads (indexing, segment updates, merges) and a queue
//! of 10,000 document slots (about 2.4 MB, written through when it is made, and made again at
//! every commit). An index that only answers queries, or has not changed for minutes, needs
//! none of it; and the service opens every workspace's index at start to check that it is
//! complete, so an always-open writer cost that much for every workspace of an idle server.
//!
//! Whether changes await a commit is kept under the same lock as the writer: the writer is
//! closed only when none do, so closing never drops an uncommitted change.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tantivy::indexer::IndexWriterOptions;
use tantivy::{Index, IndexWriter};

use super::SearchError;

/// Memory the writer may buffer before it writes a segment.
const WRITER_MEMORY: usize = 32 * 1024 * 1024;
/// Threads a writer indexes and merges with: one each, as chat-sized entries need no more and
/// every workspace index with recent changes has its own writer.
const WRITER_THREADS: usize = 1;

/// The writer of one index, open only while the index changes.
pub(super) struct LazyWriter {
    index: Index,
    slot: Mutex<Slot>,
}

struct Slot {
    writer: Option<IndexWriter>,
    /// Changes (or a new payload) await a commit.
    pending: bool,
    last_used: Instant,
}

fn internal(e: impl std::fmt::Display) -> SearchError {
    SearchError::Index(e.to_string())
}

impl LazyWriter {
    /// The writer of `index`, not opened yet.
    pub fn new(index: Index) -> LazyWriter {
        LazyWriter {
            index,
            slot: Mutex::new(Slot {
                writer: None,
                pending: false,
                last_used: Instant::now(),
            }),
        }
    }

    fn slot(&self) -> Result<std::sync::MutexGuard<'_, Slot>, SearchError> {
        self.slot
            .lock()
            .map_err(|_| SearchError::Index("index writer poisoned".into()))
    }

    fn open(&self, slot: &mut Slot) -> Result<(), SearchError> {
        if slot.writer.is_none() {
            let writer = self
                .index
                .writer_with_options(
                    IndexWriterOptions::builder()
                        .num_worker_threads(WRITER_THREADS)
                        .num_merge_threads(WRITER_THREADS)
                        .memory_budget_per_thread(WRITER_MEMORY)
                        .build(),
                )
                .map_err(internal)?;
            slot.writer = Some(writer);
        }
        Ok(())
    }

    /// Runs a change on the writer (opening it if needed); the change then awaits a commit,
    /// even if it failed part way (what it queued before failing is committed with the rest).
    pub fn change<T>(
        &self,
        f: impl FnOnce(&mut IndexWriter) -> Result<T, SearchError>,
    ) -> Result<T, SearchError> {
        let mut slot = self.slot()?;
        self.open(&mut slot)?;
        slot.last_used = Instant::now();
        slot.pending = true;
        let Some(writer) = slot.writer.as_mut() else {
            return Err(internal("index writer not open"));
        };
        f(writer)
    }

    /// Records that the next commit has something to write without touching the writer (a
    /// new payload, thread roots to mark).
    pub fn touch(&self) {
        if let Ok(mut slot) = self.slot() {
            slot.pending = true;
        }
    }

    /// Commits with `commit` if anything awaits a commit; whether it did.
    pub fn commit(
        &self,
        commit: impl FnOnce(&mut IndexWriter) -> Result<(), SearchError>,
    ) -> Result<bool, SearchError> {
        let mut slot = self.slot()?;
        if !std::mem::take(&mut slot.pending) {
            return Ok(false);
        }
        self.open(&mut slot)?;
        slot.last_used = Instant::now();
        let Some(writer) = slot.writer.as_mut() else {
            return Err(internal("index writer not open"));
        };
        commit(writer)?;
        Ok(true)
    }

    /// Closes the writer if nothing awaits a commit and it has not been used for `idle`
    /// (waiting for its merges to finish); whether it closed it.
    pub fn close_if_idle(&self, idle: Duration) -> Result<bool, SearchError> {
        let mut slot = self.slot()?;
        if slot.pending || slot.writer.is_none() || slot.last_used.elapsed() < idle {
            return Ok(false);
        }
        if let Some(writer) = slot.writer.take() {
            // Held under the lock: a writer opened meanwhile would find the directory locked.
            writer.wait_merging_threads().map_err(internal)?;
        }
        Ok(true)
    }

    /// Whether the writer is open.
    pub fn is_open(&self) -> bool {
        self.slot().map(|s| s.writer.is_some()).unwrap_or(false)
    }
}
