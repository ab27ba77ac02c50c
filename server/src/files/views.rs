//! What the API shows of files and uploads.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{FileId, MessageId, UserId};

/// A shared file as the people who can see its channel see it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct FileView {
    /// Its id (also its upload's id).
    pub id: FileId,
    /// The sanitized name.
    pub name: String,
    /// Length in bytes.
    pub size: u64,
    /// Bytes received so far (equal to `size` once complete).
    pub received: u64,
    /// Content type detected from the bytes (`null` until the upload completes).
    pub content_type: Option<String>,
    /// `uploading`, `ready`, or `quarantined` (flagged by the malware scanner; not downloadable).
    pub status: String,
    /// What it is shared in: `channel`.
    pub parent_kind: String,
    /// The channel's id.
    #[schema(value_type = String, format = Uuid)]
    pub parent_id: uuid::Uuid,
    /// The message it is attached to, once the upload completed.
    pub message_id: Option<MessageId>,
    /// Who shared it.
    pub uploader_id: UserId,
    /// Whether `/thumbnail` has an image.
    pub has_thumbnail: bool,
    /// When the upload started.
    pub created_at: DateTime<Utc>,
    /// When it completed.
    pub completed_at: Option<DateTime<Utc>>,
}

/// Where a resumable upload stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadState {
    /// Bytes received.
    pub offset: u64,
    /// Declared length.
    pub length: u64,
}
