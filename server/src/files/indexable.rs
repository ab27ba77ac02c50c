//! What search may index of a file, in the file's own terms: search maps an
//! [`IndexableFile`] into its index entry, so `files` does not depend on `search`.

use chrono::{DateTime, Utc};

use super::{collect, FileService};
use crate::domain::{ChannelId, FileId, MessageId, UserId, WorkspaceId};
use crate::error::Error;
use crate::store::files;

/// Bytes of a text file's contents that search indexes (the start of longer files).
pub const INDEXED_TEXT_BYTES: u64 = 1024 * 1024;

/// Whether search indexes the contents of files of `content_type` (as detected from the
/// bytes: markdown, CSV and other plain text are `text/plain`).
pub fn text_like(content_type: &str) -> bool {
    matches!(content_type, "text/plain" | "text/markdown" | "text/csv")
}

/// A shared file's searchable name and text and what a result shows of it: held in memory
/// only until the (encrypted) index takes it.
#[derive(Clone, Debug)]
pub struct IndexableFile {
    /// The workspace it belongs to.
    pub workspace: WorkspaceId,
    /// The file.
    pub id: FileId,
    /// The channel it is shared in.
    pub channel: ChannelId,
    /// Who uploaded it.
    pub uploader: UserId,
    /// The message it was posted with.
    pub message: Option<MessageId>,
    /// When it was shared (its upload completed).
    pub shared_at: DateTime<Utc>,
    /// Its name, decrypted.
    pub name: String,
    /// Its content type, detected from its bytes.
    pub content_type: String,
    /// Its length in bytes.
    pub size: i64,
    /// For text, the start of its contents (up to [`INDEXED_TEXT_BYTES`]); otherwise empty.
    pub text: String,
}

impl FileService {
    /// What search indexes of a file: its name and, for text, the start of its contents
    /// (read and decrypted in memory, never written anywhere but the encrypted index). `None`
    /// for a file that is gone, still uploading, quarantined or not in a channel.
    pub async fn indexable(&self, id: FileId) -> Result<Option<IndexableFile>, Error> {
        let mut conn = self.inner.store.reader().await?;
        let Some(record) = files::by_id(&mut conn.conn(), id).await? else {
            return Ok(None);
        };
        if record.status != "ready" || record.parent_kind != "channel" {
            return Ok(None);
        }
        let name = self.view_of(&mut conn.conn(), &record).await?.name;
        let content_type = record.content_type.clone().unwrap_or_default();
        let text = if text_like(&content_type) {
            let contents = self.contents(&mut conn.conn(), &record).await?;
            drop(conn);
            let end = contents.layout.size.min(INDEXED_TEXT_BYTES);
            let bytes = collect(contents.read(0..end)).await?;
            let text = String::from_utf8_lossy(&bytes);
            // The cut may fall inside a character.
            text.trim_end_matches('\u{fffd}').to_owned()
        } else {
            String::new()
        };
        Ok(Some(IndexableFile {
            workspace: record.workspace_id,
            id: record.id,
            channel: ChannelId(record.parent_id),
            uploader: record.uploader_id,
            message: record.message_id,
            shared_at: record.completed_at.unwrap_or(record.created_at),
            name,
            content_type,
            size: record.size,
            text,
        }))
    }
}
