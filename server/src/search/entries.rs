//! Index entries made from what other modules expose: search maps the neutral types of
//! `docs` and `files` into its own entries here, so neither module depends on search.

use super::index::{DocumentEntry, FileEntry};
use crate::docs::IndexableDocument;
use crate::files::IndexableFile;

/// A document's entry.
pub(super) fn document_entry(d: IndexableDocument) -> DocumentEntry {
    DocumentEntry {
        id: d.id.to_string(),
        created_by: d.created_by.to_string(),
        updated_at_ms: d.updated_at.timestamp_millis(),
        title: d.title,
        text: d.text,
    }
}

/// A shared file's entry.
pub(super) fn file_entry(f: IndexableFile) -> FileEntry {
    FileEntry {
        id: f.id.to_string(),
        channel_id: f.channel.to_string(),
        uploader_id: f.uploader.to_string(),
        message_id: f.message.map(|m| m.to_string()),
        shared_at_ms: f.shared_at.timestamp_millis(),
        name: f.name,
        content_type: f.content_type,
        size: f.size,
        text: f.text,
    }
}
