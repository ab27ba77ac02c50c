//! Housekeeping: expired uploads and orphaned blobs.
//!
//! A running server owns one housekeeping task ([`FileService::spawn_housekeeping`], stopped
//! by the shutdown token). At start and every `files.sweep_interval_seconds` it removes
//! uploads whose expiry passed (row first, audited as `file.upload_expired`, then blobs) and
//! collects orphaned blobs: blobs whose file has no row (a deleted message's or workspace's
//! files, a removal that failed, a simple upload refused after its blob was written) and
//! `.partial` writes a crash cut short, once older than `files.orphan_grace_seconds` and
//! only if no request is writing that file, so a write still in flight is never taken.
//! Between passes it follows the events bus and removes the blobs of every `FileDeleted`
//! file at once (whoever deleted the row: a file deletion or a message deletion).

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use chrono::Utc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{internal, FileService};
use crate::audit::{Event, Outcome};
use crate::domain::FileId;
use crate::error::Error;
use crate::events::{DomainEvent, Events, RecvError};
use crate::rbac::Actor;
use crate::store::files;
use crate::store::Tx;

/// Expired uploads removed per query.
const SWEEP_BATCH: i64 = 200;

/// What one housekeeping pass removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Expired uploads.
    pub expired: usize,
    /// Orphaned blobs.
    pub orphans: usize,
}

impl FileService {
    /// Runs housekeeping until `stop` is cancelled: a pass at once and every sweep interval,
    /// and blob removal for every deleted file in between.
    pub fn spawn_housekeeping(&self, events: &Events, stop: CancellationToken) -> JoinHandle<()> {
        let mut bus = Some(events.subscribe());
        let this = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(this.inner.options.sweep_interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let next = async {
                    match bus.as_mut() {
                        Some(b) => Some(b.recv().await),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = ticks.tick() => {
                        this.sweep().await;
                    }
                    event = next => match event {
                        Some(Ok(DomainEvent::FileDeleted { file_id, .. })) => {
                            // A file a legal hold keeps is hidden, not deleted: its row
                            // stays, and so do its blobs.
                            if this.row_gone(file_id).await {
                                this.remove_blobs(file_id).await;
                            }
                        }
                        // Missed events leave orphans, which the next pass collects.
                        Some(Ok(_)) | Some(Err(RecvError::Lagged(_))) => {}
                        Some(Err(RecvError::Closed)) | None => bus = None,
                    }
                }
            }
        })
    }

    /// Whether a file's row is gone (false, to keep its blobs, if that cannot be read).
    async fn row_gone(&self, id: FileId) -> bool {
        let found = match self.inner.store.reader().await {
            Ok(mut conn) => files::existing(&mut conn.conn(), &[id]).await,
            Err(err) => Err(err),
        };
        match found {
            Ok(live) => !live.contains(&id),
            Err(err) => {
                tracing::warn!(file = %id, error = %err, "could not check a deleted file's row; its blobs wait for the orphan collector");
                false
            }
        }
    }

    /// One housekeeping pass; failures are logged and retried at the next.
    pub async fn sweep(&self) -> Swept {
        let mut swept = Swept::default();
        match self.sweep_expired().await {
            Ok(n) => swept.expired = n,
            Err(err) => tracing::warn!(error = %err, "could not remove expired uploads"),
        }
        match self.collect_orphans(self.inner.options.orphan_grace).await {
            Ok(n) => swept.orphans = n,
            Err(err) => tracing::warn!(error = %err, "could not collect orphaned blobs"),
        }
        if swept != Swept::default() {
            tracing::info!(
                expired = swept.expired,
                orphans = swept.orphans,
                "removed expired uploads and orphaned blobs"
            );
        }
        swept
    }

    /// Removes every upload whose expiry has passed, skipping any a request is writing to.
    pub async fn sweep_expired(&self) -> Result<usize, Error> {
        let now = Utc::now();
        let mut removed = 0;
        loop {
            let ids = {
                let mut conn = self.inner.store.reader().await?;
                files::expired_uploads(&mut conn.conn(), now, SWEEP_BATCH).await?
            };
            let batch = ids.len();
            let mut progressed = false;
            for id in ids {
                // A request writing to it now keeps it alive (its next record moves the expiry).
                let Ok(_busy) = self.busy(id) else {
                    continue;
                };
                if self.expire(id, now).await? {
                    self.remove_blobs(id).await;
                    removed += 1;
                    progressed = true;
                }
            }
            if (batch as i64) < SWEEP_BATCH || !progressed {
                return Ok(removed);
            }
        }
    }

    /// Deletes upload `id` if its expiry passed before `now`, recording it.
    async fn expire(&self, id: FileId, now: chrono::DateTime<Utc>) -> Result<bool, Error> {
        let this = self.clone();
        self.inner
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let Some(record) = files::by_id(&mut tx.conn(), id).await? else {
                        return Ok(false);
                    };
                    if !files::delete_expired(&mut tx.conn(), id, now).await? {
                        return Ok(false);
                    }
                    let event =
                        Event::by(&Actor::system(), "file.upload_expired", Outcome::Allowed)
                            .target("file", id)
                            .workspace(record.workspace_id)
                            .subject(record.uploader_id)
                            .details(serde_json::json!({
                                "channel_id": record.parent_id,
                                "size": record.size,
                                "received": record.received,
                            }));
                    this.inner.auditor.record(tx, event).await?;
                    Ok::<_, Error>(true)
                })
            })
            .await
    }

    /// Removes blobs older than `grace` that no file row refers to, and `.partial` writes
    /// untouched for that long; returns how many.
    pub async fn collect_orphans(&self, grace: Duration) -> Result<usize, Error> {
        let listed = self.inner.blobs.list().await.map_err(internal)?;
        let cutoff = SystemTime::now()
            .checked_sub(grace)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        // Only blobs Concord named (files/<id>/...) and old enough are candidates.
        let old: Vec<_> = listed
            .into_iter()
            .filter(|b| b.file.is_some() && b.modified < cutoff)
            .collect();
        if old.is_empty() {
            return Ok(0);
        }
        let ids: Vec<FileId> = old
            .iter()
            .filter_map(|b| b.file)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        // Files a request is writing now (read before their rows: a write that ends after
        // this has its row in place by then). Their blobs may be older than the grace period
        // (a slow upload, a long scan, an object store that dates a blob by its start) while
        // their rows are yet to be written.
        let writing: HashSet<FileId> = self.inner.busy.lock().map_err(internal)?.clone();
        let live = {
            let mut conn = self.inner.store.reader().await?;
            files::existing(&mut conn.conn(), &ids).await?
        };
        let mut removed = 0;
        for blob in old {
            if blob.file.is_some_and(|f| writing.contains(&f)) {
                continue;
            }
            let orphan = blob.file.is_some_and(|f| !live.contains(&f));
            if !(orphan || blob.partial) {
                continue;
            }
            match self.inner.blobs.delete(blob.key.clone()).await {
                Ok(()) => removed += 1,
                Err(err) => {
                    tracing::warn!(blob = blob.key.as_str(), error = %err, "could not remove an orphaned blob")
                }
            }
        }
        Ok(removed)
    }
}
