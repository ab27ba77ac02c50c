//! Uploads: simple (one request) and resumable (any number of requests), their checks,
//! durable progress, completion (inspection, scanning) and posting.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::Stream;
use zeroize::Zeroizing;

use super::blob::BlobKey;
use super::cipher::{ContentKey, Layout, CHUNK_BYTES};
use super::inspect::NoThumbnail;
use super::reader::Contents;
use super::scan::Verdict;
use super::writer::{Checkpoint, Ended, SealError, SealJob, Sealed};
use super::{
    aad, collect, expiry, internal, shareable, state_of, too_large, user_of, view, FileService,
    Inner, SNIFF_BYTES,
};
use super::{cipher, inspect, writer, FileView, UploadState};
use crate::audit::{Event, Outcome};
use crate::crypto::Scope;
use crate::domain::{ChannelId, FileId, FileName, MessageBody};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::rbac::{Action, Actor, Resource};
use crate::store::files::{Completion, FileRecord, SegmentRecord};
use crate::store::{channels, files, Conn, Tx};

/// Marks an upload as being written to until dropped.
pub(super) struct Busy {
    pub(super) inner: Arc<Inner>,
    pub(super) id: FileId,
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.inner.busy.lock() {
            busy.remove(&self.id);
        }
    }
}

/// What inspecting a complete file found.
struct Inspection {
    content_type: String,
    verdict: Option<Verdict>,
    thumbnail: Option<Vec<u8>>,
    thumbnail_error: Option<NoThumbnail>,
}

impl Inspection {
    fn status(&self) -> &'static str {
        match self.verdict {
            None | Some(Verdict::Clean) => "ready",
            Some(_) => "quarantined",
        }
    }
}

impl FileService {
    /// Checks that `actor` may share files in `channel` now (authorized, a member, channel
    /// not archived) and that a file of `size` bytes (if known) fits the limit.
    pub async fn check_upload(
        &self,
        actor: &Actor,
        channel: ChannelId,
        size: Option<u64>,
    ) -> Result<(), Error> {
        let inner = &self.inner;
        let mut conn = inner.store.reader().await?;
        inner
            .auditor
            .authorize_read(
                &inner.store,
                &mut conn.conn(),
                actor,
                Action::UploadFiles,
                Resource::Channel(channel),
            )
            .await?;
        shareable(&mut conn.conn(), actor, channel).await?;
        if let Some(size) = size {
            self.check_size(size)?;
        }
        Ok(())
    }

    /// Starts a resumable upload of `size` bytes into `channel`; `text` is the message
    /// posted with it when it completes (the file name if none).
    #[tracing::instrument(skip(self, actor, name, text), fields(actor = ?actor.user_id()))]
    pub async fn create_upload(
        &self,
        actor: &Actor,
        channel: ChannelId,
        name: FileName,
        text: Option<MessageBody>,
        size: u64,
    ) -> Result<FileView, Error> {
        self.check_size(size)?;
        let creator = actor.clone();
        let this = self.clone();
        let started = self
            .inner
            .store
            .write(move |tx: &mut Tx| {
                let actor = creator;
                Box::pin(async move {
                    let inner = &this.inner;
                    inner
                        .auditor
                        .authorize(tx, &actor, Action::UploadFiles, Resource::Channel(channel))
                        .await?;
                    let c = shareable(&mut tx.conn(), &actor, channel).await?;
                    this.check_quota(tx, c.workspace_id, size).await?;
                    let key = ContentKey::generate();
                    let mut record = this
                        .new_record(tx, &actor, &c, FileId::generate(), &key, &name, size)
                        .await?;
                    if let Some(text) = &text {
                        let row = record.id.to_string();
                        record.text_enc = Some(
                            inner
                                .keyring
                                .encrypt(
                                    tx,
                                    &Scope::Workspace(c.workspace_id),
                                    aad(&row, "text"),
                                    text.as_str().as_bytes(),
                                )
                                .await?,
                        );
                    }
                    files::insert(&mut tx.conn(), &record).await?;
                    let event = Event::by(&actor, "file.upload_started", Outcome::Allowed)
                        .target("file", record.id)
                        .workspace(c.workspace_id)
                        .details(serde_json::json!({ "channel_id": channel, "size": size }));
                    inner.auditor.record(tx, event).await?;
                    Ok::<_, Error>(view(&record, name.as_str()))
                })
            })
            .await?;
        if size > 0 {
            return Ok(started);
        }
        // An empty file has every byte it will get (tus clients send no PATCH for it): it
        // is complete, and posted, now.
        let _busy = self.busy(started.id)?;
        self.complete(actor, started.id).await
    }

    async fn check_quota(
        &self,
        tx: &mut Tx,
        workspace: crate::domain::WorkspaceId,
        size: u64,
    ) -> Result<(), Error> {
        let quota = self.inner.options.workspace_quota_bytes;
        let used = files::workspace_usage(&mut tx.conn(), workspace, Utc::now())
            .await?
            .max(0) as u64;
        if used.saturating_add(size) > quota {
            return Err(too_large(
                "quota_exceeded",
                format!("this workspace's files may take at most {quota} bytes; {used} are in use"),
                quota,
            ));
        }
        Ok(())
    }

    /// A new row for file `id` of `size` bytes with content key `key` (wrapped here).
    #[allow(clippy::too_many_arguments)]
    async fn new_record(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        c: &channels::ChannelRecord,
        id: FileId,
        key: &ContentKey,
        name: &FileName,
        size: u64,
    ) -> Result<FileRecord, Error> {
        let row = id.to_string();
        let scope = Scope::Workspace(c.workspace_id);
        let keyring = &self.inner.keyring;
        let content_key = keyring
            .encrypt(tx, &scope, aad(&row, "content_key"), key.as_bytes())
            .await?;
        let name_enc = keyring
            .encrypt(tx, &scope, aad(&row, "name"), name.as_str().as_bytes())
            .await?;
        Ok(FileRecord {
            id,
            workspace_id: c.workspace_id,
            parent_kind: "channel".into(),
            parent_id: c.id.0,
            message_id: None,
            uploader_id: user_of(actor)?,
            name_enc,
            text_enc: None,
            size: size as i64,
            received: 0,
            chunk_bytes: CHUNK_BYTES as i64,
            content_key,
            content_type: None,
            status: "uploading".into(),
            scan_result: None,
            has_thumbnail: false,
            created_at: Utc::now(),
            completed_at: None,
            expires_at: Some(expiry(self.inner.options.upload_expiry)),
            thumbnail_error: None,
        })
    }
}

impl FileService {
    /// The upload `actor` started (others' uploads are not found).
    async fn own_upload(
        &self,
        conn: &mut Conn<'_>,
        actor: &Actor,
        id: FileId,
    ) -> Result<FileRecord, Error> {
        let record = self.readable(conn, actor, id, Action::UploadFiles).await?;
        if Some(record.uploader_id) != actor.user_id() {
            return Err(Error::NotFound("upload"));
        }
        Ok(record)
    }

    /// Where `actor`'s upload stands. An upload whose last byte was recorded but that did
    /// not complete (the server stopped in between) completes now.
    pub async fn upload_state(&self, actor: &Actor, id: FileId) -> Result<UploadState, Error> {
        let mut conn = self.inner.store.reader().await?;
        let record = self.own_upload(&mut conn.conn(), actor, id).await?;
        drop(conn);
        if self.inner.busy.lock().map_err(internal)?.contains(&id) {
            return Err(Error::conflict(
                "upload_busy",
                "another request is writing to this upload; try again shortly",
            ));
        }
        self.live(&record)?;
        if record.status == "uploading" && record.received == record.size {
            let _busy = self.busy(id)?;
            self.complete(actor, id).await?;
            return Ok(UploadState {
                offset: record.size as u64,
                length: record.size as u64,
                expires_at: None,
            });
        }
        Ok(state_of(&record))
    }

    /// Refuses an upload whose expiry has passed (the sweeper removes it soon).
    fn live(&self, record: &FileRecord) -> Result<(), Error> {
        match record.expires_at {
            Some(at) if record.status == "uploading" && at < Utc::now() => Err(Error::gone(
                "upload_expired",
                format!(
                    "this upload expired after {} seconds without progress; start it again",
                    self.inner.options.upload_expiry.as_secs()
                ),
            )),
            _ => Ok(()),
        }
    }
}

impl FileService {
    /// Appends the bytes of `body` to `actor`'s upload, which must stand at `offset`. What
    /// arrives is kept even if `body` fails part-way, so the upload can continue from the
    /// new offset; when the last byte arrives the file is completed and posted.
    #[tracing::instrument(skip(self, actor, body), fields(actor = ?actor.user_id()))]
    pub async fn append<S, E>(
        &self,
        actor: &Actor,
        id: FileId,
        offset: u64,
        body: S,
    ) -> Result<UploadState, Error>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let mut conn = self.inner.store.reader().await?;
        let record = self.own_upload(&mut conn.conn(), actor, id).await?;
        let busy = self.busy(id)?;
        // Re-read under the lock: the request before may just have moved the offset.
        drop(record);
        let record = files::by_id(&mut conn.conn(), id)
            .await?
            .ok_or(Error::NotFound("upload"))?;
        let (received, size) = (record.received as u64, record.size as u64);
        self.live(&record)?;
        if record.status != "uploading" || offset != received {
            if record.status != "uploading" && offset == size {
                return Ok(UploadState {
                    offset: size,
                    length: size,
                    expires_at: None,
                });
            }
            return Err(Error::conflict(
                "offset_mismatch",
                format!("the upload is at offset {received}, not {offset}"),
            ));
        }
        let key = self.unwrap_key(&mut conn.conn(), &record).await?;
        let tail = match files::tail(&mut conn.conn(), id).await? {
            Some(sealed) => cipher::open_tail(&key, id, received, &sealed).map_err(internal)?,
            None => Zeroizing::new(Vec::new()),
        };
        let segments = files::segments(&mut conn.conn(), id).await?;
        drop(conn);
        let first_chunk = segments
            .last()
            .map(|s| (s.first_chunk + s.chunks) as u64)
            .unwrap_or(0);
        if first_chunk * CHUNK_BYTES + tail.len() as u64 != received {
            return Err(internal(format!("upload {id} does not add up")));
        }
        let seq = segments.len() as i64;
        let job = SealJob {
            file: id,
            key: key.clone(),
            blobs: self.inner.blobs.clone(),
            segment: BlobKey::segment(id, seq),
            first_chunk,
            tail,
            size: Some(size),
            limit: size,
            idle: self.inner.options.idle,
            checkpoint: Some(self.checkpointer(id, seq, first_chunk, size)),
        };
        let this = self.clone();
        let actor = actor.clone();
        // Its own task: a client that disconnects drops this request, but what it sent
        // must still be recorded so the upload can resume from there.
        let task = tokio::spawn(async move {
            let _busy = busy;
            let sealed = seal(job, body, size).await?;
            let expires_at = this
                .record_progress(&actor, &record, &key, (seq, first_chunk), &sealed)
                .await?;
            if let Ended::Failed(err) = &sealed.ended {
                tracing::info!(file = %id, received = sealed.received, error = %err, "upload interrupted; it can resume");
                return Err(Error::refused(
                    "upload_interrupted",
                    "the upload was interrupted; resume it from the new offset",
                ));
            }
            if sealed.received == size {
                this.complete(&actor, id).await?;
                return Ok(UploadState {
                    offset: size,
                    length: size,
                    expires_at: None,
                });
            }
            Ok(UploadState {
                offset: sealed.received,
                length: size,
                expires_at: Some(expires_at),
            })
        });
        task.await.map_err(internal)?
    }

    /// Records each durable batch of segment `seq` of upload `id` (whose chunks start at
    /// `first_chunk`) as it is synced: the segment, the offset reached and a new expiry.
    fn checkpointer(&self, id: FileId, seq: i64, first_chunk: u64, size: u64) -> Checkpoint {
        let this = self.clone();
        Box::new(move |chunks, bytes| {
            let this = this.clone();
            Box::pin(async move {
                let received = (first_chunk + chunks) * CHUNK_BYTES;
                // The batch holding the last byte is recorded as the request ends, just
                // before the upload completes: an upload at its full length is complete.
                if received >= size {
                    return Ok(());
                }
                let segment = SegmentRecord {
                    file_id: id,
                    seq,
                    first_chunk: first_chunk as i64,
                    chunks: chunks as i64,
                    bytes: bytes as i64,
                };
                let expires_at = expiry(this.inner.options.upload_expiry);
                this.inner
                    .store
                    .write(move |tx: &mut Tx| {
                        Box::pin(async move {
                            files::put_segment(&mut tx.conn(), &segment).await?;
                            let found = files::record_progress(
                                &mut tx.conn(),
                                id,
                                received as i64,
                                None,
                                expires_at,
                            )
                            .await?;
                            if !found {
                                return Err(Error::NotFound("upload"));
                            }
                            Ok::<_, Error>(())
                        })
                    })
                    .await
                    .map_err(|e| e.to_string())
            })
        })
    }

    async fn record_progress(
        &self,
        actor: &Actor,
        record: &FileRecord,
        key: &ContentKey,
        (seq, first_chunk): (i64, u64),
        sealed: &Sealed,
    ) -> Result<DateTime<Utc>, Error> {
        let id = record.id;
        let tail_enc = if sealed.tail.is_empty() {
            None
        } else {
            Some(cipher::seal_tail(key, id, sealed.received, &sealed.tail).map_err(internal)?)
        };
        let segment = (sealed.chunks > 0).then_some(SegmentRecord {
            file_id: id,
            seq,
            first_chunk: first_chunk as i64,
            chunks: sealed.chunks as i64,
            bytes: sealed.sealed_bytes as i64,
        });
        let received = sealed.received as i64;
        let channel = ChannelId(record.parent_id);
        // Only progress pushes the expiry back: requests that bring no byte (an empty
        // PATCH, say) cannot hold an upload, and its share of the quota, forever.
        let expires_at = match record.expires_at {
            Some(at) if received <= record.received => at,
            _ => expiry(self.inner.options.upload_expiry),
        };
        let actor = actor.clone();
        let this = self.clone();
        self.inner
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.inner
                        .auditor
                        .authorize(tx, &actor, Action::UploadFiles, Resource::Channel(channel))
                        .await?;
                    if let Some(segment) = &segment {
                        files::put_segment(&mut tx.conn(), segment).await?;
                    }
                    let found = files::record_progress(
                        &mut tx.conn(),
                        id,
                        received,
                        tail_enc.as_deref(),
                        expires_at,
                    )
                    .await?;
                    if !found {
                        return Err(Error::NotFound("upload"));
                    }
                    Ok::<_, Error>(())
                })
            })
            .await?;
        Ok(expires_at)
    }

    /// Inspects, scans and posts a fully received upload.
    async fn complete(&self, actor: &Actor, id: FileId) -> Result<FileView, Error> {
        let mut conn = self.inner.store.reader().await?;
        let record = files::by_id(&mut conn.conn(), id)
            .await?
            .ok_or(Error::NotFound("upload"))?;
        let mut contents = self.contents(&mut conn.conn(), &record).await?;
        drop(conn);
        let empty = self.seal_empty(&mut contents).await?;
        let inspection = self.inspect(&contents).await?;
        let actor = actor.clone();
        let this = self.clone();
        self.inner
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let channel = ChannelId(record.parent_id);
                    this.inner
                        .auditor
                        .authorize(tx, &actor, Action::UploadFiles, Resource::Channel(channel))
                        .await?;
                    let mut record = files::by_id(&mut tx.conn(), id)
                        .await?
                        .ok_or(Error::NotFound("upload"))?;
                    if record.status != "uploading" || record.received != record.size {
                        return Err(Error::conflict(
                            "upload_incomplete",
                            "the upload is not complete",
                        ));
                    }
                    if let Some(segment) = &empty {
                        files::put_segment(&mut tx.conn(), segment).await?;
                    }
                    let scope = Scope::Workspace(record.workspace_id);
                    let row = id.to_string();
                    let name = this
                        .inner
                        .keyring
                        .decrypt_text(&mut tx.conn(), &scope, aad(&row, "name"), &record.name_enc)
                        .await?;
                    let text = match &record.text_enc {
                        Some(t) => Some(
                            this.inner
                                .keyring
                                .decrypt_text(&mut tx.conn(), &scope, aad(&row, "text"), t)
                                .await?,
                        ),
                        None => None,
                    };
                    this.attach(tx, &actor, &mut record, &name, text, inspection)
                        .await
                })
            })
            .await
    }

    /// Seals the one chunk of an empty upload, which no request brings (it is empty), into
    /// its first segment, unless it is there already; returns the segment for the caller to
    /// record with the completion.
    async fn seal_empty(&self, contents: &mut Contents) -> Result<Option<SegmentRecord>, Error> {
        if contents.layout.size != 0 || !contents.segments.is_empty() {
            return Ok(None);
        }
        let id = contents.file;
        let job = SealJob {
            file: id,
            key: contents.key.clone(),
            blobs: self.inner.blobs.clone(),
            segment: BlobKey::segment(id, 0),
            first_chunk: 0,
            tail: Zeroizing::new(Vec::new()),
            size: Some(0),
            limit: 0,
            idle: self.inner.options.idle,
            checkpoint: None,
        };
        let nothing = futures::stream::empty::<Result<Bytes, std::convert::Infallible>>();
        let sealed = seal(job, nothing, 0).await?;
        let segment = SegmentRecord {
            file_id: id,
            seq: 0,
            first_chunk: 0,
            chunks: sealed.chunks as i64,
            bytes: sealed.sealed_bytes as i64,
        };
        contents.segments.push(segment.clone());
        Ok(Some(segment))
    }

    /// Posts the message carrying a complete file and records the file as complete, in the
    /// write `tx`.
    async fn attach(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        record: &mut FileRecord,
        name: &str,
        text: Option<String>,
        inspection: Inspection,
    ) -> Result<FileView, Error> {
        let channel = ChannelId(record.parent_id);
        let c = channels::by_id(&mut tx.conn(), channel)
            .await?
            .ok_or(Error::NotFound("channel"))?;
        if c.archived_at.is_some() {
            return Err(Error::refused(
                "channel_archived",
                "this channel is archived and read-only",
            ));
        }
        let body = MessageBody::parse("text", text.unwrap_or_else(|| name.to_owned()))?;
        let message = self
            .inner
            .chat
            .post_in(tx, actor, channel, body, None, None)
            .await?;
        let row = record.id.to_string();
        let thumbnail_enc = match &inspection.thumbnail {
            Some(png) => Some(
                self.inner
                    .keyring
                    .encrypt(
                        tx,
                        &Scope::Workspace(record.workspace_id),
                        aad(&row, "thumbnail"),
                        png,
                    )
                    .await?,
            ),
            None => None,
        };
        let scan_result = inspection.verdict.as_ref().map(Verdict::as_stored);
        let now = Utc::now();
        files::complete(
            &mut tx.conn(),
            record.id,
            &Completion {
                content_type: &inspection.content_type,
                status: inspection.status(),
                scan_result: scan_result.as_deref(),
                thumbnail_enc: thumbnail_enc.as_deref(),
                thumbnail_error: inspection.thumbnail_error.map(NoThumbnail::as_str),
                message_id: Some(message.id),
                at: now,
            },
        )
        .await?;
        record.content_type = Some(inspection.content_type.clone());
        record.status = inspection.status().into();
        record.scan_result = scan_result.clone();
        record.has_thumbnail = thumbnail_enc.is_some();
        record.thumbnail_error = inspection.thumbnail_error.map(|e| e.as_str().to_owned());
        record.expires_at = None;
        record.message_id = Some(message.id);
        record.completed_at = Some(now);
        if record.status == "quarantined" {
            tracing::warn!(file = %record.id, verdict = ?scan_result, "file quarantined by the malware scan");
        }
        let event = Event::by(actor, "file.uploaded", Outcome::Allowed)
            .target("file", record.id)
            .workspace(record.workspace_id)
            .details(serde_json::json!({
                "channel_id": channel,
                "message_id": message.id,
                "size": record.size,
                "content_type": inspection.content_type,
                "status": record.status,
                "scan": scan_result,
            }));
        self.inner.auditor.record(tx, event).await?;
        tx.emit(DomainEvent::FileShared {
            workspace_id: record.workspace_id,
            channel_id: channel,
            file_id: record.id,
            message_id: record.message_id,
        });
        Ok(view(record, name))
    }

    /// Learns the content type, scans, and makes a thumbnail.
    async fn inspect(&self, contents: &Contents) -> Result<Inspection, Error> {
        let size = contents.layout.size;
        let head = collect(contents.read(0..size.min(SNIFF_BYTES))).await?;
        let content_type = inspect::sniff(&head);
        let verdict = match &self.inner.options.scanner {
            Some(scanner) => Some(scanner.scan(contents.read(0..size)).await),
            None => None,
        };
        let clean = matches!(verdict, None | Some(Verdict::Clean));
        let mut thumbnail_error = None;
        let mut thumbnail = None;
        if clean && inspect::thumbnailable(&content_type) {
            if size > self.inner.options.thumbnail_max_source_bytes {
                thumbnail_error = Some(NoThumbnail::TooLarge);
            } else if let Some(turn) = self.inner.thumbnails.turn().await {
                // Read only once it is this image's turn: waiting images hold no memory.
                let bytes = collect(contents.read(0..size)).await?;
                match self
                    .inner
                    .thumbnails
                    .make(turn, bytes, content_type.clone())
                    .await
                {
                    Ok(png) => thumbnail = Some(png),
                    Err(why) => thumbnail_error = Some(why),
                }
            }
        }
        Ok(Inspection {
            content_type,
            verdict,
            thumbnail,
            thumbnail_error,
        })
    }

    /// Shares a file sent in one request (its length not known up front) in `channel`.
    #[tracing::instrument(skip(self, actor, name, text, body), fields(actor = ?actor.user_id()))]
    pub async fn upload<S, E>(
        &self,
        actor: &Actor,
        channel: ChannelId,
        name: FileName,
        text: Option<MessageBody>,
        body: S,
    ) -> Result<FileView, Error>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        self.check_upload(actor, channel, None).await?;
        let id = FileId::generate();
        // Held until the row is written or the blob removed: the orphan collector leaves the
        // blob of a file being written alone, however old it looks.
        let busy = self.busy(id)?;
        let key = ContentKey::generate();
        let segment = BlobKey::segment(id, 0);
        let job = SealJob {
            file: id,
            key: key.clone(),
            blobs: self.inner.blobs.clone(),
            segment: segment.clone(),
            first_chunk: 0,
            tail: Zeroizing::new(Vec::new()),
            size: None,
            limit: self.inner.options.max_file_bytes,
            idle: self.inner.options.idle,
            checkpoint: None,
        };
        let this = self.clone();
        let actor = actor.clone();
        // Its own task, so the blob is cleaned up even if the client goes away.
        let task = tokio::spawn(async move {
            let _busy = busy;
            let max = this.inner.options.max_file_bytes;
            let sealed = seal(job, body, max).await?;
            let result = this
                .publish(&actor, channel, id, key, name, text, sealed)
                .await;
            if result.is_err() {
                if let Err(err) = this.inner.blobs.delete(segment).await {
                    tracing::warn!(file = %id, error = %err, "could not remove the blob of a refused upload");
                }
            }
            result
        });
        task.await.map_err(internal)?
    }

    #[allow(clippy::too_many_arguments)]
    async fn publish(
        &self,
        actor: &Actor,
        channel: ChannelId,
        id: FileId,
        key: ContentKey,
        name: FileName,
        text: Option<MessageBody>,
        sealed: Sealed,
    ) -> Result<FileView, Error> {
        if let Ended::Failed(err) = &sealed.ended {
            tracing::info!(file = %id, error = %err, "upload interrupted");
            return Err(Error::refused(
                "upload_interrupted",
                "the upload was interrupted before it completed",
            ));
        }
        let size = sealed.received;
        let contents = Contents {
            file: id,
            key: key.clone(),
            layout: Layout { size },
            segments: vec![SegmentRecord {
                file_id: id,
                seq: 0,
                first_chunk: 0,
                chunks: sealed.chunks as i64,
                bytes: sealed.sealed_bytes as i64,
            }],
            blobs: self.inner.blobs.clone(),
        };
        let inspection = self.inspect(&contents).await?;
        let segment = contents.segments[0].clone();
        let actor = actor.clone();
        let this = self.clone();
        self.inner
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.inner
                        .auditor
                        .authorize(tx, &actor, Action::UploadFiles, Resource::Channel(channel))
                        .await?;
                    let c = shareable(&mut tx.conn(), &actor, channel).await?;
                    this.check_quota(tx, c.workspace_id, size).await?;
                    // The chunks were sealed for this id, so the row takes it.
                    let mut record = this
                        .new_record(tx, &actor, &c, id, &key, &name, size)
                        .await?;
                    record.received = size as i64;
                    files::insert(&mut tx.conn(), &record).await?;
                    files::put_segment(
                        &mut tx.conn(),
                        &SegmentRecord {
                            file_id: id,
                            ..segment
                        },
                    )
                    .await?;
                    let text = text.map(|t| t.as_str().to_owned());
                    this.attach(tx, &actor, &mut record, name.as_str(), text, inspection)
                        .await
                })
            })
            .await
    }
}

/// Seals a request body, mapping the writer's refusals to service errors.
async fn seal<S, E>(job: SealJob, body: S, limit: u64) -> Result<Sealed, Error>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
    E: std::fmt::Display,
{
    writer::seal_stream(job, body).await.map_err(|e| match e {
        SealError::TooLong(_) => too_large(
            "file_too_large",
            format!("this file may be at most {limit} bytes"),
            limit,
        ),
        other => internal(other),
    })
}
