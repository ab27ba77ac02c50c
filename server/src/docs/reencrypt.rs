//! Re-encryption of documents after a data-key rotation: titles, the update log, snapshots,
//! named versions and comments, one document at a time (see `keys::registry`).

use futures::future::BoxFuture;

use super::{comment_aad, room::update_aad, title_aad, version_aad};
use crate::crypto::{Aad, Keyring, Scope};
use crate::domain::DocumentId;
use crate::error::Error;
use crate::keys::registry::{Batch, Target};
use crate::store::documents;
use crate::store::Tx;

/// The documents' entry in the re-encryption registry.
pub const REENCRYPT_DOCUMENTS: Target = Target {
    name: "documents",
    count: count_documents,
    reencrypt: reencrypt_documents,
};

fn count_documents(tx: &mut Tx) -> BoxFuture<'_, Result<i64, Error>> {
    Box::pin(async move { Ok(documents::count(&mut tx.conn()).await?) })
}

/// Re-seals `sealed` for the same place if it is under an older key than `current`.
async fn reseal(
    tx: &mut Tx,
    keyring: &Keyring,
    scope: &Scope,
    aad: Aad<'_>,
    sealed: &[u8],
    current: Option<u32>,
) -> Result<Option<Vec<u8>>, Error> {
    if current == Some(Keyring::version_of(sealed)?) {
        return Ok(None);
    }
    let plain = keyring.decrypt(&mut tx.conn(), scope, aad, sealed).await?;
    Ok(Some(keyring.encrypt(tx, scope, aad, &plain).await?))
}

fn reencrypt_documents<'t>(
    tx: &'t mut Tx,
    keyring: &'t Keyring,
    cursor: Option<String>,
    limit: usize,
) -> BoxFuture<'t, Result<Batch, Error>> {
    Box::pin(async move {
        let cursor = cursor
            .map(|c| c.parse::<DocumentId>())
            .transpose()
            .map_err(|_| Error::Internal("malformed re-encryption cursor".into()))?;
        let batch = documents::after(&mut tx.conn(), cursor, limit as i64).await?;
        let mut changed = 0;
        for doc in &batch {
            let scope = Scope::Workspace(doc.workspace_id);
            let current = keyring.current_version(&mut tx.conn(), &scope).await?;
            let id = doc.id.to_string();
            let mut touched = false;
            if let Some(t) =
                reseal(tx, keyring, &scope, title_aad(&id), &doc.title, current).await?
            {
                documents::set_title(&mut tx.conn(), doc.id, &t).await?;
                touched = true;
            }
            let (snapshot, updates) = documents::load(&mut tx.conn(), doc.id).await?;
            if let Some(s) = snapshot {
                let row = update_aad(doc.id, s.upto_seq);
                let aad = Aad {
                    table: "document_snapshots",
                    row: &row,
                    column: "state",
                };
                if let Some(new) = reseal(tx, keyring, &scope, aad, &s.state, current).await? {
                    documents::set_snapshot_state(&mut tx.conn(), doc.id, s.upto_seq, &new).await?;
                    touched = true;
                }
            }
            for u in updates {
                let row = update_aad(doc.id, u.seq);
                let aad = Aad {
                    table: "document_updates",
                    row: &row,
                    column: "body",
                };
                if let Some(new) = reseal(tx, keyring, &scope, aad, &u.body, current).await? {
                    documents::set_update_body(&mut tx.conn(), doc.id, u.seq, &new).await?;
                    touched = true;
                }
            }
            for v in documents::versions(&mut tx.conn(), doc.id).await? {
                let row = v.id.to_string();
                let name = reseal(
                    tx,
                    keyring,
                    &scope,
                    version_aad(&row, "name"),
                    &v.name,
                    current,
                )
                .await?;
                let state = reseal(
                    tx,
                    keyring,
                    &scope,
                    version_aad(&row, "state"),
                    &v.state,
                    current,
                )
                .await?;
                if name.is_some() || state.is_some() {
                    let name = name.unwrap_or(v.name);
                    let state = state.unwrap_or(v.state);
                    documents::set_version(&mut tx.conn(), v.id, &name, &state).await?;
                    touched = true;
                }
            }
            for c in documents::comments(&mut tx.conn(), doc.id).await? {
                let row = c.id.to_string();
                let body = reseal(
                    tx,
                    keyring,
                    &scope,
                    comment_aad(&row, "body"),
                    &c.body,
                    current,
                )
                .await?;
                let anchor = match &c.anchor {
                    Some(a) => {
                        reseal(tx, keyring, &scope, comment_aad(&row, "anchor"), a, current).await?
                    }
                    None => None,
                };
                if body.is_some() || anchor.is_some() {
                    let body = body.unwrap_or(c.body);
                    let anchor = anchor.or(c.anchor);
                    documents::set_comment(&mut tx.conn(), c.id, &body, anchor.as_deref()).await?;
                    touched = true;
                }
            }
            changed += usize::from(touched);
        }
        Ok(Batch {
            scanned: batch.len(),
            changed,
            last: batch.last().map(|d| d.id.to_string()),
        })
    })
}
