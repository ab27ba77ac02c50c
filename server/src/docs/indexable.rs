//! What search may index of a document, in the document's own terms: search maps an
//! [`IndexableDocument`] into its index entry, so `docs` does not depend on `search`.
//!
//! The content is the document's committed text, read without opening a room
//! ([`Rooms::committed_text`](super::Rooms::committed_text)): indexing never keeps a
//! document in memory nor writes (a snapshot) on its behalf, and reads an open document in
//! its room instead of decoding a second copy of it.

use chrono::{DateTime, Utc};

use super::{title_aad, DocService};
use crate::crypto::Scope;
use crate::domain::{DocumentId, UserId, WorkspaceId};
use crate::error::Error;
use crate::store::documents;

/// A document's searchable text and what a result shows of it: derived data, held in
/// memory only until the index (encrypted) takes it.
#[derive(Clone, Debug)]
pub struct IndexableDocument {
    /// The workspace it belongs to.
    pub workspace: WorkspaceId,
    /// The document.
    pub id: DocumentId,
    /// Who created it.
    pub created_by: UserId,
    /// When its details last changed.
    pub updated_at: DateTime<Utc>,
    /// Its title, decrypted.
    pub title: String,
    /// Its content as plain text.
    pub text: String,
}

impl DocService {
    /// The workspace, title and plain text of `doc` for the search index (a system read of
    /// derived data: not authorized per person, not audited); `None` once deleted.
    pub async fn indexable(&self, doc: DocumentId) -> Result<Option<IndexableDocument>, Error> {
        let record = {
            let mut reader = self.store.reader().await?;
            match documents::by_id(&mut reader.conn(), doc).await? {
                Some(r) => r,
                None => return Ok(None),
            }
        };
        let text = self.rooms.committed_text(doc).await?;
        let id = record.id.to_string();
        let mut reader = self.store.reader().await?;
        let title = self
            .keyring
            .decrypt_text(
                &mut reader.conn(),
                &Scope::Workspace(record.workspace_id),
                title_aad(&id),
                &record.title,
            )
            .await?;
        Ok(Some(IndexableDocument {
            workspace: record.workspace_id,
            id: record.id,
            created_by: record.created_by,
            updated_at: record.updated_at,
            title,
            text,
        }))
    }
}
