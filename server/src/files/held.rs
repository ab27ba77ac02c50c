//! Files as eDiscovery reads them: deleted-but-kept ones included, with their names and
//! whole contents decrypted. The caller (the eDiscovery service) authorizes and audits.

use chrono::{DateTime, Utc};

use super::{aad, FileService};
use crate::crypto::Scope;
use crate::domain::{FileId, WorkspaceId};
use crate::error::Error;
use crate::store::files::{self, FileRecord};

/// A file found for eDiscovery.
#[derive(Clone, Debug)]
pub struct HeldFile {
    /// The file as stored.
    pub record: FileRecord,
    /// Its name, decrypted.
    pub name: String,
    /// When it was deleted, if it was (kept since under a hold or a grace period).
    pub deleted_at: Option<DateTime<Utc>>,
}

impl FileService {
    /// The file `id` of `workspace` with its name, hidden or not (the caller authorizes).
    pub async fn held_file(
        &self,
        workspace: WorkspaceId,
        id: FileId,
    ) -> Result<Option<HeldFile>, Error> {
        let mut conn = self.inner.store.reader().await?;
        let Some(kept) = files::kept_by_id(&mut conn.conn(), workspace, id).await? else {
            return Ok(None);
        };
        let row = kept.record.id.to_string();
        let name = self
            .inner
            .keyring
            .decrypt_text(
                &mut conn.conn(),
                &Scope::Workspace(workspace),
                aad(&row, "name"),
                &kept.record.name_enc,
            )
            .await?;
        Ok(Some(HeldFile {
            record: kept.record,
            name,
            deleted_at: kept.deleted_at,
        }))
    }

    /// A held file's whole contents, decrypted in memory (the caller bounds the total).
    pub async fn held_bytes(&self, file: &HeldFile) -> Result<Vec<u8>, Error> {
        let mut conn = self.inner.store.reader().await?;
        let contents = self.contents(&mut conn.conn(), &file.record).await?;
        drop(conn);
        let size = file.record.size.max(0) as u64;
        super::collect(contents.read(0..size)).await
    }
}
