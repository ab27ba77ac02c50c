//! Helpers for the write benchmark (`concord-bench-writes`); not part of the server's API.

use crate::accounts::{insert_user, NewAccount};
use crate::crypto::Keyring;
use crate::domain::{DisplayName, Email, Password, UserId};
use crate::error::Error;
use crate::store::{Store, Tx};

/// Creates `n` accounts (with their data keys) and returns their ids.
pub async fn seed_accounts(
    store: &Store,
    keyring: &Keyring,
    n: usize,
) -> Result<Vec<UserId>, Error> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = UserId::generate();
        ids.push(id);
        let keyring = keyring.clone();
        let account = NewAccount {
            email: Email::parse("email", &format!("seed{i}@example.org"))?,
            display_name: DisplayName::parse("name", &format!("Seed {i}"))?,
            password: Password::parse_new("password", "not used by the benchmark".into())?,
            system_role: None,
        };
        store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    insert_user(tx, &keyring, id, &account, None, "x", None).await?;
                    Ok::<_, Error>(())
                })
            })
            .await?;
    }
    Ok(ids)
}
