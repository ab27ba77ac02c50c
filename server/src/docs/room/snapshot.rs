//! Storing a compacted snapshot: the document's full state up to a sequence number,
//! encrypted, replacing the updates it covers.

use chrono::Utc;

use super::load::update_aad;
use super::Shared;
use crate::crypto::{Aad, Scope};
use crate::domain::{DocumentId, WorkspaceId};
use crate::error::Error;
use crate::store::{documents, Tx};

/// Stores the snapshot; `false` if nothing was stored because the stored snapshot already
/// covers `upto` (another process compacted further: the room's copy is stale and must be
/// loaded again) or the document is gone.
pub(super) async fn store_snapshot(
    shared: &Shared,
    id: DocumentId,
    workspace: WorkspaceId,
    upto: i64,
    state: Vec<u8>,
) -> Result<bool, Error> {
    let keyring = shared.keyring.clone();
    shared
        .store
        .write(move |tx: &mut Tx| {
            Box::pin(async move {
                let row = update_aad(id, upto);
                let sealed = keyring
                    .encrypt(
                        tx,
                        &Scope::Workspace(workspace),
                        Aad {
                            table: "document_snapshots",
                            row: &row,
                            column: "state",
                        },
                        &state,
                    )
                    .await?;
                let stored =
                    documents::save_snapshot(&mut tx.conn(), id, upto, &sealed, Utc::now()).await?;
                Ok::<bool, Error>(stored)
            })
        })
        .await
}
