//! Channel names, topics and purposes, and messages' client ids, encrypted at rest.
//!
//! Each value is encrypted under the workspace's key, bound to (table, row, column). A name's
//! uniqueness within its workspace is kept by a keyed blind index of the workspace id and the
//! name (`channel-name`), a client id's (per channel and author) by one of channel, author and
//! id (`client-msg-id`), so neither equal names in two workspaces nor equal ids of two
//! authors can be matched. Rows written before encryption at rest are encrypted at start by
//! [`encrypt_legacy_details`].

use crate::crypto::{Aad, Keyring, Scope};
use crate::domain::{ChannelId, UserId, WorkspaceId};
use crate::error::Error;
use crate::store::channels::{self, ChannelRecord, SealedDetails};
use crate::store::messages;
use crate::store::{Conn, Store, Tx};

/// Rows encrypted per write by the start-up backfill.
const BACKFILL_BATCH: i64 = 500;

fn channel_aad<'a>(row: &'a str, column: &'static str) -> Aad<'a> {
    Aad {
        table: "channels",
        row,
        column,
    }
}

pub(super) fn client_msg_aad(row: &str) -> Aad<'_> {
    Aad {
        table: "messages",
        row,
        column: "client_msg_id",
    }
}

/// The blind index a channel's name is kept unique by within its workspace.
pub fn name_index(keyring: &Keyring, workspace: WorkspaceId, name: &str) -> String {
    keyring.blind_index("channel-name", &format!("{workspace}:{name}"))
}

/// The blind index a message's client id is found by (per channel and author).
pub(super) fn client_msg_index(
    keyring: &Keyring,
    channel: ChannelId,
    author: UserId,
    client_msg_id: &str,
) -> String {
    keyring.blind_index(
        "client-msg-id",
        &format!("{channel}:{author}:{client_msg_id}"),
    )
}

/// A channel's name, topic and purpose in plaintext.
#[derive(Clone, Debug, Default)]
pub struct ChannelDetails {
    /// Name (none for conversations).
    pub name: Option<String>,
    /// Topic.
    pub topic: String,
    /// Purpose.
    pub purpose: String,
}

/// A channel's details, encrypted, ready for [`channels::insert`] or
/// [`channels::update_details`].
pub(super) struct Sealed {
    pub name_index: Option<String>,
    pub name_enc: Option<Vec<u8>>,
    pub topic_enc: Option<Vec<u8>>,
    pub purpose_enc: Option<Vec<u8>>,
}

impl Sealed {
    pub(super) fn as_details(&self) -> SealedDetails<'_> {
        SealedDetails {
            name_index: self.name_index.as_deref(),
            name_enc: self.name_enc.as_deref(),
            topic_enc: self.topic_enc.as_deref(),
            purpose_enc: self.purpose_enc.as_deref(),
        }
    }
}

/// Encrypts a channel's details inside the write `tx` (empty topics and purposes are stored
/// as nothing).
pub(super) async fn seal(
    tx: &mut Tx,
    keyring: &Keyring,
    workspace: WorkspaceId,
    id: ChannelId,
    d: &ChannelDetails,
) -> Result<Sealed, Error> {
    let row = id.to_string();
    let scope = Scope::Workspace(workspace);
    let mut out = [None, None, None];
    let values = [
        ("name", d.name.as_deref().unwrap_or("")),
        ("topic", d.topic.as_str()),
        ("purpose", d.purpose.as_str()),
    ];
    for (slot, (column, value)) in out.iter_mut().zip(values) {
        if !value.is_empty() {
            *slot = Some(
                keyring
                    .encrypt(tx, &scope, channel_aad(&row, column), value.as_bytes())
                    .await?,
            );
        }
    }
    let [name_enc, topic_enc, purpose_enc] = out;
    Ok(Sealed {
        name_index: d.name.as_deref().map(|n| name_index(keyring, workspace, n)),
        name_enc,
        topic_enc,
        purpose_enc,
    })
}

/// A channel's details, decrypted.
pub async fn open(
    keyring: &Keyring,
    conn: &mut Conn<'_>,
    c: &ChannelRecord,
) -> Result<ChannelDetails, Error> {
    let row = c.id.to_string();
    let scope = Scope::Workspace(c.workspace_id);
    let mut out = [None, None, None];
    let values = [
        ("name", &c.name_enc),
        ("topic", &c.topic_enc),
        ("purpose", &c.purpose_enc),
    ];
    for (slot, (column, value)) in out.iter_mut().zip(values) {
        if let Some(ct) = value {
            *slot = Some(
                keyring
                    .decrypt_text(conn, &scope, channel_aad(&row, column), ct)
                    .await?,
            );
        }
    }
    let [name, topic, purpose] = out;
    Ok(ChannelDetails {
        name,
        topic: topic.unwrap_or_default(),
        purpose: purpose.unwrap_or_default(),
    })
}

/// Encrypts channel details and message client ids stored in plaintext before encryption at
/// rest, replacing them by ciphertext and blind indexes. Runs at start, a batch per write,
/// so an interrupted run resumes where it stopped; returns the rows encrypted.
pub async fn encrypt_legacy_details(store: &Store, keyring: &Keyring) -> Result<usize, Error> {
    let mut total = 0;
    loop {
        let keyring = keyring.clone();
        let done = store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let batch = channels::legacy_plaintext(&mut tx.conn(), BACKFILL_BATCH).await?;
                    for c in &batch {
                        let existing = channels::by_id(&mut tx.conn(), c.id)
                            .await?
                            .ok_or(Error::NotFound("channel"))?;
                        // A name encrypted already (only the topic was left) stays as it is.
                        let name = match &c.name {
                            Some(plain) => Some(plain.clone()),
                            None => open(&keyring, &mut tx.conn(), &existing).await?.name,
                        };
                        let details = ChannelDetails {
                            name,
                            topic: c.topic.clone(),
                            purpose: c.purpose.clone(),
                        };
                        let sealed = seal(tx, &keyring, c.workspace_id, c.id, &details).await?;
                        channels::update_details(&mut tx.conn(), c.id, &sealed.as_details())
                            .await?;
                    }
                    let ids = messages::legacy_client_ids(&mut tx.conn(), BACKFILL_BATCH).await?;
                    for (id, channel, author, workspace, cid) in &ids {
                        let row = id.to_string();
                        let sealed = keyring
                            .encrypt(
                                tx,
                                &Scope::Workspace(*workspace),
                                client_msg_aad(&row),
                                cid.as_bytes(),
                            )
                            .await?;
                        let index = client_msg_index(&keyring, *channel, *author, cid);
                        messages::set_client_id(&mut tx.conn(), *id, &index, &sealed).await?;
                    }
                    Ok::<_, Error>(batch.len() + ids.len())
                })
            })
            .await?;
        total += done;
        if done == 0 {
            return Ok(total);
        }
    }
}
