//! Retention of document history: a document's edit history and named versions older than
//! *now − `retention.document_history_days`* are destroyed; its current state stays.
//!
//! The edit history is the log of stored update batches (`document_updates`). Its old part
//! is folded into the document's snapshot: the snapshot and the updates up to the last old
//! one are merged in a fresh Yrs document (which leaves deleted content out) and stored as
//! the snapshot covering that number, which drops those updates; newer updates stay as they
//! are. Named versions made before the cutoff are deleted. Folding goes through
//! `store::documents::save_snapshot`, the rule room compaction follows: only an older
//! snapshot is replaced, and a room holding the document open keeps appending after it (its
//! own next compaction covers more), so live Yjs sync goes on.
//!
//! Holds: a document is held as its history is old: by its creator (the custodian), its
//! linked channel and the time of each update or version. An update a hold covers stops the
//! fold before it (so everything from it on stays in the log), and a held version stays.
//! The merge is prepared before the write by the document service ([`HistoryFolder`], given
//! by the composition root, so this module imports no feature); the write decides the holds
//! again and stores nothing if one now covers what it would fold.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::{cutoff, RetentionReport, RetentionService};
use crate::compliance::holds::InForce;
use crate::crypto::Sealed;
use crate::domain::{ChannelId, DocumentId, WorkspaceId};
use crate::error::Error;
use crate::policy::Days;
use crate::store::retention::{self as retention_store, DocumentWithHistory, UpdateTime};
use crate::store::{documents, Tx};

/// Prepares a document's folded history: its state after update `upto_seq`, sealed ahead as
/// the snapshot covering that number (`None` if its snapshot already covers it).
pub trait HistoryFolder: Send + Sync {
    /// The sealed state after `upto_seq`.
    fn seal(
        &self,
        document: DocumentId,
        upto_seq: i64,
    ) -> BoxFuture<'_, Result<Option<Sealed>, Error>>;
}

/// What one document's write did.
#[derive(Default)]
struct Folded {
    documents: u64,
    updates: u64,
    versions: u64,
    held: u64,
}

impl RetentionService {
    /// Folds into their snapshots the edit history of `workspace`'s documents older than
    /// `days` at `now`, and deletes their named versions as old, under holds; a write per
    /// document.
    pub(super) async fn expire_history(
        &self,
        workspace: WorkspaceId,
        now: DateTime<Utc>,
        days: Days,
        stop: Option<&CancellationToken>,
        report: &mut RetentionReport,
    ) -> Result<(), Error> {
        let Some(cutoff) = cutoff(now, days) else {
            return Ok(());
        };
        let mut after = DocumentId(uuid::Uuid::nil());
        loop {
            if stop.is_some_and(|s| s.is_cancelled()) {
                return Ok(());
            }
            let documents = {
                let mut conn = self.store.reader().await?;
                retention_store::documents_with_history_before(
                    &mut conn.conn(),
                    workspace,
                    cutoff,
                    after,
                    self.options.batch,
                )
                .await?
            };
            let Some(last) = documents.last() else {
                return Ok(());
            };
            after = last.id;
            let full = documents.len() as i64 == self.options.batch;
            for document in documents {
                if stop.is_some_and(|s| s.is_cancelled()) {
                    return Ok(());
                }
                let done = self.expire_document(workspace, cutoff, document).await?;
                report.batches += 1;
                report.documents_folded += done.documents;
                report.updates_folded += done.updates;
                report.versions_destroyed += done.versions;
                report.history_held += done.held;
            }
            if !full {
                return Ok(());
            }
        }
    }

    async fn expire_document(
        &self,
        workspace: WorkspaceId,
        cutoff: DateTime<Utc>,
        document: DocumentWithHistory,
    ) -> Result<Folded, Error> {
        let channel = document.channel_id.unwrap_or(ChannelId(uuid::Uuid::nil()));
        let (updates, versions, holds) = {
            let mut conn = self.store.reader().await?;
            let updates = retention_store::update_times(&mut conn.conn(), document.id).await?;
            let versions =
                retention_store::versions_before(&mut conn.conn(), document.id, cutoff).await?;
            let holds = InForce::read(&mut conn.conn(), workspace).await?;
            (updates, versions, holds)
        };
        // The old part of the log, up to (not including) the first update a hold covers.
        let old: Vec<UpdateTime> = updates
            .iter()
            .take_while(|u| {
                u.created_at < cutoff
                    && !holds.covers_parts(document.created_by, channel, u.created_at)
            })
            .copied()
            .collect();
        // An old update a hold covers, where the fold stops.
        let held_early = u64::from(
            updates
                .get(old.len())
                .is_some_and(|u| u.created_at < cutoff),
        );
        let sealed = match (old.last(), &self.history) {
            (Some(last), Some(folder)) => match folder.seal(document.id, last.seq).await {
                Ok(sealed) => sealed.map(|s| (last.seq, s)),
                // Deleted meanwhile: nothing left to fold.
                Err(Error::NotFound(_)) => None,
                Err(e) => return Err(e),
            },
            _ => None,
        };
        if sealed.is_none() && versions.is_empty() {
            return Ok(Folded {
                held: held_early,
                ..Folded::default()
            });
        }
        let keyring = self.auditor.keyring().clone();
        let id = document.id;
        let custodian = document.created_by;
        let mut done = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    // Read in this write: a hold placed since the history was read counts.
                    let holds = InForce::read(&mut tx.conn(), workspace).await?;
                    let held = |at: DateTime<Utc>| holds.covers_parts(custodian, channel, at);
                    let mut out = Folded::default();
                    if let Some((upto, sealed)) = sealed {
                        if old.iter().any(|u| held(u.created_at)) {
                            out.held += 1;
                        } else {
                            let state = keyring.finish(tx, sealed).await?;
                            if documents::save_snapshot(
                                &mut tx.conn(),
                                id,
                                upto,
                                &state,
                                Utc::now(),
                            )
                            .await?
                            {
                                out.documents += 1;
                                out.updates += old.len() as u64;
                            }
                        }
                    }
                    for v in &versions {
                        if held(v.created_at) {
                            out.held += 1;
                        } else if retention_store::destroy_version(&mut tx.conn(), v.id).await? {
                            out.versions += 1;
                        }
                    }
                    Ok::<_, Error>(out)
                })
            })
            .await?;
        done.held += held_early;
        Ok(done)
    }
}

/// The composition root's folder, shared by the job's clones.
pub type SharedFolder = Arc<dyn HistoryFolder>;
