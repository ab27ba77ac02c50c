//! Reading files back: who may, their details and listings, contents and thumbnails.

use super::cipher::{ContentKey, Layout};
use super::reader::Contents;
use super::{aad, channel_of, internal, view, FileService, FileView, MAX_LIST};
use crate::audit::{Event, Outcome};
use crate::crypto::Scope;
use crate::domain::{ChannelId, FileId, UserId};
use crate::error::Error;
use crate::policy::PhiRead;
use crate::rbac::{Action, Actor, Resource};
use crate::store::files::FileRecord;
use crate::store::{files, Conn, Tx};

/// A file opened for download: what it is and how to read it.
pub struct Opened {
    /// The file.
    pub view: FileView,
    /// Its contents, to read any range of.
    pub contents: Contents,
}

impl FileService {
    /// Reads a file `actor` may see (`action` on its channel), or not found.
    pub(super) async fn readable(
        &self,
        conn: &mut Conn<'_>,
        actor: &Actor,
        id: FileId,
        action: Action,
    ) -> Result<FileRecord, Error> {
        let inner = &self.inner;
        let record = files::by_id(conn, id).await?;
        inner
            .auditor
            .authorize_read(
                &inner.store,
                conn,
                actor,
                action,
                Resource::Channel(channel_of(record.as_ref())),
            )
            .await?;
        record.ok_or(Error::NotFound("file"))
    }
}

impl FileService {
    pub(super) async fn unwrap_key(
        &self,
        conn: &mut Conn<'_>,
        record: &FileRecord,
    ) -> Result<ContentKey, Error> {
        let row = record.id.to_string();
        let key = self
            .inner
            .keyring
            .decrypt(
                conn,
                &Scope::Workspace(record.workspace_id),
                aad(&row, "content_key"),
                &record.content_key,
            )
            .await?;
        ContentKey::from_bytes(&key).map_err(internal)
    }

    pub(super) async fn contents(
        &self,
        conn: &mut Conn<'_>,
        record: &FileRecord,
    ) -> Result<Contents, Error> {
        Ok(Contents {
            file: record.id,
            key: self.unwrap_key(conn, record).await?,
            layout: Layout {
                size: record.size as u64,
            },
            segments: files::segments(conn, record.id).await?,
            blobs: self.inner.blobs.clone(),
        })
    }
}

impl FileService {
    /// A file's details.
    pub async fn get(&self, actor: &Actor, id: FileId) -> Result<FileView, Error> {
        let mut conn = self.inner.store.reader().await?;
        let record = self
            .readable(&mut conn.conn(), actor, id, Action::ReadChannels)
            .await?;
        let view = self.view_of(&mut conn.conn(), &record).await?;
        drop(conn);
        self.audit_phi_read(actor, &record, "file").await?;
        Ok(view)
    }

    /// Audits `actor`'s read of `record` where its channel's PHI reads are audited
    /// (`phi.audit_reads`; see [`crate::policy::PhiScope`]). Downloads are audited for
    /// every file (`file.downloaded`).
    async fn audit_phi_read(
        &self,
        actor: &Actor,
        record: &FileRecord,
        kind: &'static str,
    ) -> Result<(), Error> {
        let channel = (record.parent_kind == "channel").then_some(ChannelId(record.parent_id));
        let read = PhiRead {
            workspace: record.workspace_id,
            kind,
            target: ("file", record.id.to_string()),
            ids: vec![record.id.to_string()],
        };
        self.inner
            .chat
            .policies()
            .audit_phi_read(actor, channel, read)
            .await
    }

    pub(super) async fn view_of(
        &self,
        conn: &mut Conn<'_>,
        record: &FileRecord,
    ) -> Result<FileView, Error> {
        let row = record.id.to_string();
        let name = self
            .inner
            .keyring
            .decrypt_text(
                conn,
                &Scope::Workspace(record.workspace_id),
                aad(&row, "name"),
                &record.name_enc,
            )
            .await?;
        Ok(view(record, &name))
    }

    /// The files shared in a channel, newest first.
    pub async fn list(&self, actor: &Actor, channel: ChannelId) -> Result<Vec<FileView>, Error> {
        let inner = &self.inner;
        let mut conn = inner.store.reader().await?;
        inner
            .auditor
            .authorize_read(
                &inner.store,
                &mut conn.conn(),
                actor,
                Action::ReadChannels,
                Resource::Channel(channel),
            )
            .await?;
        let mut out = Vec::new();
        let mut workspace = None;
        for record in files::in_parent(&mut conn.conn(), "channel", channel.0, MAX_LIST).await? {
            workspace = Some(record.workspace_id);
            out.push(self.view_of(&mut conn.conn(), &record).await?);
        }
        if let Some(workspace) = workspace {
            let read = PhiRead {
                workspace,
                kind: "files",
                target: ("channel", channel.to_string()),
                ids: out.iter().map(|f| f.id.to_string()).collect(),
            };
            drop(conn);
            inner
                .chat
                .policies()
                .audit_phi_read(actor, Some(channel), read)
                .await?;
        }
        Ok(out)
    }

    /// Opens a file's contents for download, recording the download in the audit log
    /// (`range` is the requested byte range as the client wrote it, if any).
    #[tracing::instrument(skip(self, actor, range), fields(actor = ?actor.user_id()))]
    pub async fn open(
        &self,
        actor: &Actor,
        id: FileId,
        range: Option<String>,
    ) -> Result<Opened, Error> {
        let actor = actor.clone();
        let this = self.clone();
        let record = self
            .inner
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let record = files::by_id(&mut tx.conn(), id).await?;
                    this.inner
                        .auditor
                        .authorize(
                            tx,
                            &actor,
                            Action::ReadChannels,
                            Resource::Channel(channel_of(record.as_ref())),
                        )
                        .await?;
                    let record = record.ok_or(Error::NotFound("file"))?;
                    match record.status.as_str() {
                        "ready" => {}
                        "quarantined" => {
                            return Err(Error::gone(
                                "file_quarantined",
                                "the malware scan flagged this file; it cannot be downloaded",
                            ))
                        }
                        _ => {
                            return Err(Error::conflict(
                                "upload_incomplete",
                                "this file is still being uploaded",
                            ))
                        }
                    }
                    let range: Option<String> = range.map(|r| r.chars().take(100).collect());
                    let event = Event::by(&actor, "file.downloaded", Outcome::Allowed)
                        .target("file", id)
                        .workspace(record.workspace_id)
                        .details(serde_json::json!({
                            "channel_id": record.parent_id,
                            "range": range,
                        }));
                    this.inner.auditor.record(tx, event).await?;
                    Ok::<_, Error>(record)
                })
            })
            .await?;
        let mut conn = self.inner.store.reader().await?;
        let contents = self.contents(&mut conn.conn(), &record).await?;
        let view = self.view_of(&mut conn.conn(), &record).await?;
        Ok(Opened { view, contents })
    }

    /// The completed files `user` uploaded, oldest first, each with its name and whole
    /// contents, for a data-subject export (the caller authorizes). Refused once the contents
    /// together pass `max_bytes`.
    pub async fn uploads_of(
        &self,
        user: UserId,
        max_bytes: u64,
    ) -> Result<Vec<(FileView, Vec<u8>)>, Error> {
        let mut conn = self.inner.store.reader().await?;
        let records = files::uploaded_by(&mut conn.conn(), user).await?;
        let total: u64 = records.iter().map(|r| r.size.max(0) as u64).sum();
        if total > max_bytes {
            return Err(Error::refused(
                "export_too_large",
                format!(
                    "this person's files come to {total} bytes, over the {max_bytes} an export \
                     holds; export them in parts through the files API"
                ),
            ));
        }
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            let contents = self.contents(&mut conn.conn(), &record).await?;
            let view = self.view_of(&mut conn.conn(), &record).await?;
            let mut bytes = Vec::with_capacity(record.size.max(0) as usize);
            let mut stream = contents.read(0..record.size.max(0) as u64);
            while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
                bytes.extend_from_slice(&chunk.map_err(|e| internal(e.to_string()))?);
            }
            out.push((view, bytes));
        }
        Ok(out)
    }

    /// A file's thumbnail (PNG).
    pub async fn thumbnail(&self, actor: &Actor, id: FileId) -> Result<Vec<u8>, Error> {
        let mut conn = self.inner.store.reader().await?;
        let record = self
            .readable(&mut conn.conn(), actor, id, Action::ReadChannels)
            .await?;
        if record.status != "ready" {
            return Err(Error::NotFound("thumbnail"));
        }
        let Some(sealed) = files::thumbnail(&mut conn.conn(), id).await? else {
            let options = &self.inner.options;
            return Err(match record.thumbnail_error.as_deref() {
                Some("too_large") => Error::refused(
                    "image_too_large",
                    format!(
                        "this image is over the thumbnail limits ({} pixels, {} bytes); it has no thumbnail",
                        options.thumbnail_max_pixels, options.thumbnail_max_source_bytes
                    ),
                ),
                Some(_) => Error::refused(
                    "image_undecodable",
                    "this image could not be decoded; it has no thumbnail",
                ),
                None => Error::NotFound("thumbnail"),
            });
        };
        let row = id.to_string();
        let png = self
            .inner
            .keyring
            .decrypt(
                &mut conn.conn(),
                &Scope::Workspace(record.workspace_id),
                aad(&row, "thumbnail"),
                &sealed,
            )
            .await?;
        drop(conn);
        self.audit_phi_read(actor, &record, "thumbnail").await?;
        Ok(png.to_vec())
    }
}
