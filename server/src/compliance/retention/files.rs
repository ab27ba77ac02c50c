//! Retention of files: finished files uploaded before *now − `retention.files_days`* are
//! deleted, except what a legal hold covers.
//!
//! A file is held like a message: by its uploader (the custodian), its channel and its
//! upload time; a file attached to a message is also held whenever a hold covers that
//! message (its author, channel and time), and a file shared in a document is judged by the
//! channel the document is linked to (a document linked to no channel has none, so a hold
//! naming only channels does not cover its files). Each batch is one write that reads the holds in force, deletes the rows
//! no hold covers and emits `FileDeleted`, on which the files housekeeping removes the blobs
//! and thumbnail, the search index drops the file and re-indexes the message it was posted
//! with, and the hub tells the channel's members. A file stays attached to nothing: its
//! message, if newer or kept, simply loses it.

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{cutoff, start_of_time, RetentionReport, RetentionService};
use crate::compliance::holds::InForce;
use crate::domain::{ChannelId, FileId, WorkspaceId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::policy::Days;
use crate::store::retention as retention_store;
use crate::store::{self, Tx};

impl RetentionService {
    /// Deletes the finished files of `workspace` older than `days` at `now` that no hold
    /// covers, oldest first, a batch per write.
    pub(super) async fn expire_files(
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
        let mut after = (start_of_time(), FileId(uuid::Uuid::nil()));
        loop {
            if stop.is_some_and(|s| s.is_cancelled()) {
                return Ok(());
            }
            let batch = {
                let mut conn = self.store.reader().await?;
                retention_store::files_older_than(
                    &mut conn.conn(),
                    workspace,
                    cutoff,
                    after,
                    self.options.batch,
                )
                .await?
            };
            let Some(last) = batch.last() else {
                return Ok(());
            };
            after = (last.created_at, last.id);
            let full = batch.len() as i64 == self.options.batch;
            let (destroyed, held) = self
                .store
                .write(move |tx: &mut Tx| {
                    Box::pin(async move {
                        // Read in this write: a hold placed since the batch was read counts.
                        let holds = InForce::read(&mut tx.conn(), workspace).await?;
                        let (mut destroyed, mut held) = (0u64, 0u64);
                        for f in &batch {
                            let channel = ChannelId(f.parent_id);
                            let shared_in = match f.parent_kind.as_str() {
                                "document" => {
                                    f.document_channel.unwrap_or(ChannelId(uuid::Uuid::nil()))
                                }
                                _ => channel,
                            };
                            let message_held = match (f.message_author, f.message_at) {
                                (Some(author), Some(at)) => holds.covers_parts(
                                    author,
                                    f.message_channel.unwrap_or(channel),
                                    at,
                                ),
                                _ => false,
                            };
                            if message_held
                                || holds.covers_parts(f.uploader_id, shared_in, f.created_at)
                            {
                                held += 1;
                            } else if store::files::delete(&mut tx.conn(), f.id).await? {
                                destroyed += 1;
                                tx.emit(DomainEvent::FileDeleted {
                                    workspace_id: workspace,
                                    channel_id: channel,
                                    file_id: f.id,
                                    message_id: f.message_id,
                                });
                            }
                        }
                        Ok::<_, Error>((destroyed, held))
                    })
                })
                .await?;
            report.batches += 1;
            report.files_expired += destroyed;
            report.files_expired_held += held;
            if !full {
                return Ok(());
            }
        }
    }
}
