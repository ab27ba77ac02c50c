//! What a workspace admin sees of uploads in progress, and cancelling one.
//!
//! An unfinished upload reserves its declared length from the workspace's quota until it
//! completes or expires, so admins can list them (who, where, how much declared and
//! received, when they expire) and cancel one. Both need `messages.moderate` on the
//! workspace (the permission that deletes others' files); names are not shown, since the
//! channel may be private to the uploader's team.

use chrono::Utc;

use super::{FileService, UploadInProgress};
use crate::audit::{Event, Outcome};
use crate::domain::{ChannelId, FileId, WorkspaceId};
use crate::error::Error;
use crate::rbac::{Action, Actor, Resource};
use crate::store::files;
use crate::store::Tx;

/// Most uploads in one listing.
const MAX_LISTED: i64 = 1000;

impl FileService {
    /// A workspace's uploads in progress, oldest first.
    #[tracing::instrument(skip(self, actor), fields(actor = ?actor.user_id()))]
    pub async fn uploads_in_progress(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
    ) -> Result<Vec<UploadInProgress>, Error> {
        let inner = &self.inner;
        let mut conn = inner.store.reader().await?;
        inner
            .auditor
            .authorize_read(
                &inner.store,
                &mut conn.conn(),
                actor,
                Action::ModerateMessages,
                Resource::Workspace(workspace),
            )
            .await?;
        let now = Utc::now();
        let records = files::uploads_in_workspace(&mut conn.conn(), workspace, MAX_LISTED).await?;
        Ok(records
            .into_iter()
            .map(|r| UploadInProgress {
                id: r.id,
                uploader_id: r.uploader_id,
                channel_id: ChannelId(r.parent_id),
                size: r.size as u64,
                received: r.received as u64,
                created_at: r.created_at,
                expires_at: r.expires_at,
                expired: r.expires_at.is_some_and(|at| at < now),
            })
            .collect())
    }

    /// Cancels an upload in progress in `workspace` (its row and blobs are removed, and its
    /// reservation released), recorded as `file.upload_cancelled`.
    #[tracing::instrument(skip(self, actor), fields(actor = ?actor.user_id()))]
    pub async fn cancel_upload(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: FileId,
    ) -> Result<(), Error> {
        // Who may not cancel it learns nothing of a request writing to it: the permission
        // (and the upload, as the actor may see it) is checked before the upload's lock is
        // taken, and again in the write.
        {
            let inner = &self.inner;
            let mut conn = inner.store.reader().await?;
            inner
                .auditor
                .authorize_read(
                    &inner.store,
                    &mut conn.conn(),
                    actor,
                    Action::ModerateMessages,
                    Resource::Workspace(workspace),
                )
                .await?;
            files::by_id(&mut conn.conn(), id)
                .await?
                .filter(|r| r.workspace_id == workspace && r.status == "uploading")
                .ok_or(Error::NotFound("upload"))?;
        }
        let _busy = self.busy(id)?;
        let actor = actor.clone();
        let this = self.clone();
        self.inner
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let auditor = &this.inner.auditor;
                    auditor
                        .authorize(
                            tx,
                            &actor,
                            Action::ModerateMessages,
                            Resource::Workspace(workspace),
                        )
                        .await?;
                    let record = files::by_id(&mut tx.conn(), id)
                        .await?
                        .filter(|r| r.workspace_id == workspace && r.status == "uploading")
                        .ok_or(Error::NotFound("upload"))?;
                    files::delete(&mut tx.conn(), id).await?;
                    let event = Event::by(&actor, "file.upload_cancelled", Outcome::Allowed)
                        .target("file", id)
                        .workspace(workspace)
                        .subject(record.uploader_id)
                        .details(serde_json::json!({
                            "channel_id": record.parent_id,
                            "size": record.size,
                            "received": record.received,
                        }));
                    auditor.record(tx, event).await?;
                    Ok::<_, Error>(())
                })
            })
            .await?;
        self.remove_blobs(id).await;
        Ok(())
    }
}
