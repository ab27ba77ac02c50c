//! What search may index of a document, in the document's own terms: search maps an
//! [`IndexableDocument`] into its index entry, so `docs` does not depend on `search`.
//!
//! The content is the document's committed state, read without opening a room
//! ([`Rooms::committed_state`](super::Rooms::committed_state)): indexing never keeps a
//! document in memory nor writes (a snapshot) on its behalf.

use chrono::{DateTime, Utc};

use super::{content, title_aad, DocService};
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
        let state = self.rooms.committed_state(doc).await?;
        let loaded = content::doc_from_state(&state).map_err(|e| Error::Internal(e.to_string()))?;
        let text = content::Content::read(&loaded).plain_text();
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
