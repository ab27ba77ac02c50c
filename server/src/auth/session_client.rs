//! Where a session began (the client's User-Agent and address), encrypted at rest.
//!
//! Both are personal data of the session's owner: encrypted under the user's key, bound to
//! (`sessions`, session id, column), decrypted only to show the owner (or an admin) their
//! sessions. Sessions stored before encryption at rest are encrypted at start by
//! [`encrypt_legacy_clients`].

use crate::crypto::{Aad, Keyring, Scope};
use crate::domain::{SessionId, UserId};
use crate::error::Error;
use crate::store::sessions;
use crate::store::{Conn, Store, Tx};

/// Sessions encrypted per write by the start-up backfill.
const BACKFILL_BATCH: i64 = 500;

fn aad<'a>(row: &'a str, column: &'static str) -> Aad<'a> {
    Aad {
        table: "sessions",
        row,
        column,
    }
}

/// A session's client details, encrypted.
pub(super) struct SealedClient {
    pub user_agent_enc: Option<Vec<u8>>,
    pub ip_enc: Option<Vec<u8>>,
}

/// Encrypts a session's User-Agent and address under `user`'s key inside the write `tx`.
pub(super) async fn seal(
    tx: &mut Tx,
    keyring: &Keyring,
    user: UserId,
    session: SessionId,
    user_agent: Option<&str>,
    ip: Option<&str>,
) -> Result<SealedClient, Error> {
    let row = session.to_string();
    let scope = Scope::User(user);
    let mut out = [None, None];
    for (slot, (column, value)) in out.iter_mut().zip([("user_agent", user_agent), ("ip", ip)]) {
        if let Some(value) = value {
            *slot = Some(
                keyring
                    .encrypt(tx, &scope, aad(&row, column), value.as_bytes())
                    .await?,
            );
        }
    }
    let [user_agent_enc, ip_enc] = out;
    Ok(SealedClient {
        user_agent_enc,
        ip_enc,
    })
}

/// A session's User-Agent and address, decrypted.
pub(super) async fn open(
    keyring: &Keyring,
    conn: &mut Conn<'_>,
    user: UserId,
    session: SessionId,
    user_agent_enc: Option<&[u8]>,
    ip_enc: Option<&[u8]>,
) -> Result<(Option<String>, Option<String>), Error> {
    let row = session.to_string();
    let scope = Scope::User(user);
    let mut out = [None, None];
    for (slot, (column, value)) in out
        .iter_mut()
        .zip([("user_agent", user_agent_enc), ("ip", ip_enc)])
    {
        if let Some(ct) = value {
            *slot = Some(
                keyring
                    .decrypt_text(conn, &scope, aad(&row, column), ct)
                    .await?,
            );
        }
    }
    let [user_agent, ip] = out;
    Ok((user_agent, ip))
}

/// Encrypts the User-Agents and addresses of sessions stored in plaintext before encryption
/// at rest, emptying the plaintext columns. Runs at start, a batch per write, so an
/// interrupted run resumes where it stopped; returns the sessions encrypted.
pub async fn encrypt_legacy_clients(store: &Store, keyring: &Keyring) -> Result<usize, Error> {
    let mut total = 0;
    loop {
        let keyring = keyring.clone();
        let done = store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let batch = sessions::legacy_plaintext(&mut tx.conn(), BACKFILL_BATCH).await?;
                    for s in &batch {
                        let sealed = seal(
                            tx,
                            &keyring,
                            s.user_id,
                            s.id,
                            s.user_agent.as_deref(),
                            s.ip.as_deref(),
                        )
                        .await?;
                        sessions::set_client(
                            &mut tx.conn(),
                            s.id,
                            sealed.user_agent_enc.as_deref(),
                            sealed.ip_enc.as_deref(),
                        )
                        .await?;
                    }
                    Ok::<_, Error>(batch.len())
                })
            })
            .await?;
        total += done;
        if done == 0 {
            return Ok(total);
        }
    }
}
