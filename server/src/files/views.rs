//! What the API shows of files and uploads.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{ChannelId, FileId, MessageId, UserId};

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
    /// While uploading: when it expires unless more bytes arrive.
    pub expires_at: Option<DateTime<Utc>>,
}

/// An upload in progress as a workspace admin sees it (no name: the channel may be one the
/// admin cannot read).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct UploadInProgress {
    /// The upload's id.
    pub id: FileId,
    /// Who is uploading.
    pub uploader_id: UserId,
    /// The channel it is shared in.
    pub channel_id: ChannelId,
    /// Declared length in bytes (reserved from the quota until it expires).
    pub size: u64,
    /// Bytes received so far.
    pub received: u64,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it expires unless more bytes arrive.
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether it has expired (it no longer counts against the quota and is removed soon).
    pub expired: bool,
}

/// Where a resumable upload stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadState {
    /// Bytes received.
    pub offset: u64,
    /// Declared length.
    pub length: u64,
    /// When it expires unless more bytes arrive (`None` once complete).
    pub expires_at: Option<DateTime<Utc>>,
}
