//! Storing a compacted snapshot: the document's full state up to a sequence number,
//! encrypted, replacing the updates it covers.

use chrono::Utc;

use super::load::update_aad;
use super::Shared;
use crate::crypto::{Aad, Scope};
use crate::domain::{DocumentId, WorkspaceId};
use crate::error::Error;
use crate::store::{documents, Tx};

pub(super) async fn store_snapshot(
    shared: &Shared,
    id: DocumentId,
    workspace: WorkspaceId,
    upto: i64,
    state: Vec<u8>,
) -> Result<(), Error> {
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
                documents::save_snapshot(&mut tx.conn(), id, upto, &sealed, Utc::now()).await?;
                Ok::<(), Error>(())
            })
        })
        .await
}
