//! File sharing: uploads (simple and resumable), encrypted storage, safe downloads.
//!
//! A file is shared in a channel (the `parent`; documents will be a second kind) and, once
//! its upload completes, attached to a message posted there; whoever can see the channel
//! can see the file, and nobody else learns it exists (404). Contents are sealed in chunks
//! under a per-file key ([`cipher`]) as they stream in ([`writer`]) and are kept in a
//! [`blob::BlobStore`]; the key is wrapped under the workspace's data key and stored with
//! the file's row, bound to it. Reading back ([`reader`]) authenticates every chunk, so a
//! damaged or rearranged file fails instead of serving other bytes.
//!
//! A resumable upload is a file row in status `uploading` that receives its bytes over any
//! number of requests; whole chunks go to a new blob segment per request and the partial
//! chunk at the end is kept encrypted in the row until the next request. When the last byte
//! arrives the file is inspected ([`inspect`]: content type from the bytes, a thumbnail for
//! images), optionally scanned ([`scan`], clamd; infected files are quarantined), and
//! posted, all recorded in the audit log. Downloads are audited too.
//!
//! Progress is durable at chunk boundaries: on a store that appends in place (local disk),
//! each batch of whole chunks is synced and recorded as it arrives ([`writer`]), so a server
//! killed mid-request loses at most the last batch. An upload that makes no progress for
//! `files.upload_expiry_seconds` expires: it stops counting against the quota at once and
//! [`housekeeping`] removes it, together with blobs no row refers to (deleted files,
//! messages, workspaces, writes cut by a crash). Admins see and cancel uploads in
//! progress ([`admin`]).
//!
//! This file is [`FileService`] (construction, shared helpers, deletion); [`uploads`] holds
//! the upload paths, [`downloads`] reading back, [`options`] the limits and hooks.
//!
//! Invariants: contents and names never reach storage in plaintext; blob keys are made from
//! ids only; a file's row is written before its blobs are trusted and deleted before they
//! are removed; one request at a time writes to an upload.

mod admin;
pub mod blob;
pub use concord_file_cipher as cipher;
mod downloads;
mod held;
pub mod housekeeping;
mod indexable;
pub mod inspect;
mod inventory;
mod options;
pub mod reader;
pub mod scan;
mod uploads;
mod views;
pub mod writer;

pub use downloads::Opened;
pub use held::HeldFile;
pub use indexable::{text_like, IndexableFile, INDEXED_TEXT_BYTES};
pub use inventory::INVENTORY;
pub use options::FilesOptions;
use uploads::Busy;
pub use views::{FileView, UploadInProgress, UploadState};

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::TryStreamExt;
use uuid::Uuid;

use self::blob::BlobStore;
use self::inspect::Thumbnailer;
use crate::audit::{Auditor, Event, Outcome};
use crate::chat::ChatService;
use crate::compliance::holds::InForce;
use crate::crypto::{Aad, Keyring};
use crate::domain::{ChannelId, FileId, UserId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::rbac::{Action, Actor, Resource};
use crate::store::files::{self, FileRecord};
use crate::store::{channels, Conn, Store, Tx};

/// Bytes read to detect a content type.
const SNIFF_BYTES: u64 = 8192;
/// Most files in one listing.
const MAX_LIST: i64 = 500;
/// File operations; cheap to clone.
#[derive(Clone)]
pub struct FileService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    keyring: Keyring,
    auditor: Auditor,
    chat: ChatService,
    blobs: Arc<dyn BlobStore>,
    options: FilesOptions,
    thumbnails: Thumbnailer,
    busy: Mutex<HashSet<FileId>>,
}

fn aad<'a>(row: &'a str, column: &'a str) -> Aad<'a> {
    Aad {
        table: "files",
        row,
        column,
    }
}

/// When an upload that makes progress now expires.
fn expiry(after: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::days(1))
}

fn internal(err: impl std::fmt::Display) -> Error {
    Error::Internal(err.to_string())
}

fn too_large(code: &'static str, message: String, limit: u64) -> Error {
    Error::TooLarge {
        code,
        message,
        limit,
    }
}

/// The channel a file is shared in; files of other parents are not reachable yet.
fn channel_of(record: Option<&FileRecord>) -> ChannelId {
    match record {
        Some(f) if f.parent_kind == "channel" => ChannelId(f.parent_id),
        // Unknown files (and parents this version cannot authorize) are decided like a
        // hidden channel: not found either way.
        _ => ChannelId(Uuid::nil()),
    }
}

impl FileService {
    /// A service storing contents in `blobs`.
    pub fn new(
        store: Store,
        auditor: Auditor,
        chat: ChatService,
        blobs: Arc<dyn BlobStore>,
        options: FilesOptions,
    ) -> FileService {
        FileService {
            inner: Arc::new(Inner {
                store,
                keyring: auditor.keyring().clone(),
                auditor,
                chat,
                blobs,
                thumbnails: Thumbnailer::new(
                    options.thumbnail_concurrency,
                    options.thumbnail_max_pixels,
                ),
                options,
                busy: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// The largest file accepted, in bytes.
    pub fn max_file_bytes(&self) -> u64 {
        self.inner.options.max_file_bytes
    }

    fn busy(&self, id: FileId) -> Result<Busy, Error> {
        let mut busy = self.inner.busy.lock().map_err(internal)?;
        if !busy.insert(id) {
            return Err(Error::conflict(
                "upload_busy",
                "another request is writing to this upload; try again shortly",
            ));
        }
        Ok(Busy {
            inner: self.inner.clone(),
            id,
        })
    }

    fn check_size(&self, size: u64) -> Result<(), Error> {
        let max = self.inner.options.max_file_bytes;
        if size > max {
            return Err(too_large(
                "file_too_large",
                format!("files may be at most {max} bytes"),
                max,
            ));
        }
        Ok(())
    }

    /// Deletes a file or abandons an upload (its uploader, or a channel moderator), then
    /// removes its blobs (all of them, recorded or not).
    #[tracing::instrument(skip(self, actor), fields(actor = ?actor.user_id()))]
    pub async fn delete(&self, actor: &Actor, id: FileId) -> Result<(), Error> {
        // Who may not delete it learns nothing of a request writing to it: the permission
        // is decided before the upload's lock is taken (and again, in the write, after).
        {
            let inner = &self.inner;
            let mut conn = inner.store.reader().await?;
            let record = self
                .readable(&mut conn.conn(), actor, id, Action::ReadChannels)
                .await?;
            if Some(record.uploader_id) != actor.user_id() {
                inner
                    .auditor
                    .authorize_read(
                        &inner.store,
                        &mut conn.conn(),
                        actor,
                        Action::ModerateMessages,
                        Resource::Channel(channel_of(Some(&record))),
                    )
                    .await?;
            }
        }
        let _busy = self.busy(id)?;
        let actor = actor.clone();
        let this = self.clone();
        let gone = self
            .inner
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let auditor = &this.inner.auditor;
                    let record = files::by_id(&mut tx.conn(), id).await?;
                    let channel = channel_of(record.as_ref());
                    auditor
                        .authorize(tx, &actor, Action::ReadChannels, Resource::Channel(channel))
                        .await?;
                    let record = record.ok_or(Error::NotFound("file"))?;
                    if Some(record.uploader_id) != actor.user_id() {
                        auditor
                            .authorize(
                                tx,
                                &actor,
                                Action::ModerateMessages,
                                Resource::Channel(channel),
                            )
                            .await?;
                    }
                    let c = channels::by_id(&mut tx.conn(), channel)
                        .await?
                        .ok_or(Error::NotFound("channel"))?;
                    if c.archived_at.is_some() {
                        return Err(Error::refused(
                            "channel_archived",
                            "this channel is archived and read-only",
                        ));
                    }
                    // A finished file a legal hold covers is hidden, not deleted: its row and
                    // blobs stay for compliance officers until the hold is released.
                    let now = Utc::now();
                    let held = record.status == "ready"
                        && InForce::read(&mut tx.conn(), record.workspace_id)
                            .await?
                            .covers_parts(record.uploader_id, channel, record.created_at);
                    if held {
                        files::hide(&mut tx.conn(), id, now, now).await?;
                    } else {
                        files::delete(&mut tx.conn(), id).await?;
                    }
                    let event = Event::by(&actor, "file.deleted", Outcome::Allowed)
                        .target("file", id)
                        .workspace(record.workspace_id)
                        .subject(record.uploader_id)
                        .details(serde_json::json!({
                            "channel_id": channel,
                            "size": record.size,
                            "status": record.status,
                            "kept": held,
                            "legal_hold": held,
                        }));
                    auditor.record(tx, event).await?;
                    tx.emit(DomainEvent::FileDeleted {
                        workspace_id: record.workspace_id,
                        channel_id: channel,
                        file_id: id,
                        message_id: record.message_id,
                    });
                    Ok::<_, Error>(held)
                })
            })
            .await
            .map(|held| !held)?;
        // The row is gone, so nothing refers to the blobs any more.
        if gone {
            self.remove_blobs(id).await;
        }
        Ok(())
    }

    /// Removes every blob of a file whose row is gone (the orphan collector retries any
    /// that fail).
    async fn remove_blobs(&self, id: FileId) {
        if let Err(err) = self.inner.blobs.delete_file(id).await {
            tracing::warn!(file = %id, error = %err, "could not remove a deleted file's blobs");
        }
    }
}

async fn collect(stream: reader::Plaintext) -> Result<Vec<u8>, Error> {
    let pieces: Vec<Bytes> = stream.try_collect().await.map_err(internal)?;
    Ok(pieces.concat())
}

fn user_of(actor: &Actor) -> Result<UserId, Error> {
    actor
        .user_id()
        .ok_or_else(|| Error::refused("user_required", "only people share files"))
}

/// The channel, if `actor` is in it and it takes new files.
async fn shareable(
    conn: &mut Conn<'_>,
    actor: &Actor,
    channel: ChannelId,
) -> Result<channels::ChannelRecord, Error> {
    let me = user_of(actor)?;
    let found = channels::with_membership(conn, channel, me)
        .await?
        .ok_or(Error::NotFound("channel"))?;
    if found.member_role.is_none() {
        return Err(Error::refused("not_in_channel", "join the channel first"));
    }
    if found.channel.archived_at.is_some() {
        return Err(Error::refused(
            "channel_archived",
            "this channel is archived and read-only",
        ));
    }
    Ok(found.channel)
}

fn state_of(record: &FileRecord) -> UploadState {
    UploadState {
        offset: record.received as u64,
        length: record.size as u64,
        expires_at: record.expires_at.filter(|_| record.status == "uploading"),
    }
}

fn view(record: &FileRecord, name: &str) -> FileView {
    FileView {
        id: record.id,
        name: name.to_owned(),
        size: record.size as u64,
        received: record.received as u64,
        content_type: record.content_type.clone(),
        status: record.status.clone(),
        parent_kind: record.parent_kind.clone(),
        parent_id: record.parent_id,
        message_id: record.message_id,
        uploader_id: record.uploader_id,
        has_thumbnail: record.has_thumbnail,
        created_at: record.created_at,
        completed_at: record.completed_at,
        expires_at: record.expires_at.filter(|_| record.status == "uploading"),
    }
}
