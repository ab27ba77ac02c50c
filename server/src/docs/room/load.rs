//! Reading a document into memory: its snapshot and the updates after it, decrypted and
//! applied to a fresh Yrs `Doc`.

use yrs::updates::decoder::Decode;
use yrs::{Doc, Transact, Update};

use super::{content, RoomError, Shared};
use crate::crypto::{Aad, Scope};
use crate::domain::{DocumentId, WorkspaceId};
use crate::error::Error;
use crate::store::documents;

pub(super) struct Loaded {
    pub(super) doc: Doc,
    pub(super) workspace: WorkspaceId,
    pub(super) last_seq: i64,
    pub(super) snapshot_seq: i64,
    pub(super) bytes: usize,
}

pub(super) fn update_aad(id: DocumentId, seq: i64) -> String {
    format!("{id}:{seq}")
}

pub(super) async fn load(shared: &Shared, id: DocumentId) -> Result<Loaded, RoomError> {
    load_until(shared, id, i64::MAX).await
}

/// The document as it was after update `until`: its snapshot and the stored updates up to
/// that number (the retention job folds a document's old history this way). A snapshot
/// already past `until` is loaded whole (`snapshot_seq` says so).
pub(super) async fn load_until(
    shared: &Shared,
    id: DocumentId,
    until: i64,
) -> Result<Loaded, RoomError> {
    let mut reader = shared.store.reader().await?;
    let mut conn = reader.conn();
    let record = documents::by_id(&mut conn, id)
        .await?
        .ok_or(RoomError::Gone)?;
    let (snapshot, updates) = documents::load(&mut conn, id).await?;
    let scope = Scope::Workspace(record.workspace_id);
    let doc = Doc::new();
    let mut bytes = 0;
    let mut snapshot_seq = 0;
    // The details and the log are read in two statements: count what was actually loaded too.
    let mut last_seq = record.last_seq;
    {
        let mut parts = Vec::with_capacity(updates.len() + 1);
        if let Some(s) = snapshot {
            let row = update_aad(id, s.upto_seq);
            let plain = shared
                .keyring
                .decrypt(
                    &mut conn,
                    &scope,
                    Aad {
                        table: "document_snapshots",
                        row: &row,
                        column: "state",
                    },
                    &s.state,
                )
                .await
                .map_err(Error::from)?;
            snapshot_seq = s.upto_seq;
            last_seq = last_seq.max(s.upto_seq);
            parts.push(plain);
        }
        for u in updates.into_iter().filter(|u| u.seq <= until) {
            last_seq = last_seq.max(u.seq);
            let row = update_aad(id, u.seq);
            let plain = shared
                .keyring
                .decrypt(
                    &mut conn,
                    &scope,
                    Aad {
                        table: "document_updates",
                        row: &row,
                        column: "body",
                    },
                    &u.body,
                )
                .await
                .map_err(Error::from)?;
            parts.push(plain);
        }
        let mut txn = doc.transact_mut();
        for part in parts {
            bytes += part.len();
            let update =
                Update::decode_v1(&part).map_err(|e| content::StateError(e.to_string()))?;
            txn.apply_update(update)
                .map_err(|e| content::StateError(e.to_string()))?;
        }
    }
    Ok(Loaded {
        doc,
        workspace: record.workspace_id,
        last_seq,
        snapshot_seq,
        bytes,
    })
}
