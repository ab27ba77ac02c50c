//! Encryption at rest: envelope encryption of everything personal or user-authored.
//!
//! A key-encryption key (KEK, [`kek`]) comes from a file, the environment or a
//! [`KeyProvider`]; it never touches data. It wraps data-encryption keys (DEKs), one per
//! [`Scope`] (a user for personal data, a workspace for its content, a few system scopes),
//! versioned and stored wrapped in `data_keys`. The [`Keyring`] caches unwrapped DEKs and is
//! the only way to encrypt or decrypt a column: [`Keyring::encrypt`] inside a write
//! transaction, [`Keyring::decrypt`] on any connection. Ciphertexts ([`aead`]) carry a format
//! version and the key version, and their associated data binds them to table, row, column
//! and key, so a ciphertext copied elsewhere fails to decrypt. Lookups by email go through a
//! keyed [`blind_index`].
//!
//! The keyring notes every place (table, column) it encrypts into ([`written_places`]), so a
//! test can check each against the data inventory (`inventory`).
//!
//! Invariants: no plaintext personal data reaches storage; the hot path never unwraps a key
//! (DEKs are cached, zeroized on drop); a DEK is retired long before 2^32 random nonces.

pub mod aead;
pub mod blind_index;
pub mod kek;
mod keyring;

pub use aead::Aad;
pub use kek::{EnvKeyProvider, FileKeyProvider, Kek, KeyProvider};
pub use keyring::{KeyStatus, Keyring, Scope, Sealed, SigningKeyInfo};

use std::path::PathBuf;
use std::sync::RwLock;

use crate::store::StoreError;

/// The places (table, column) this process's keyrings have encrypted into.
static WRITTEN: RwLock<Vec<(String, String)>> = RwLock::new(Vec::new());

/// Notes that a value was encrypted for `table`.`column` (a read lock once it is known).
fn note_place(table: &str, column: &str) {
    let known = |w: &Vec<(String, String)>| w.iter().any(|(t, c)| t == table && c == column);
    if WRITTEN.read().is_ok_and(|w| known(&w)) {
        return;
    }
    if let Ok(mut w) = WRITTEN.write() {
        if !known(&w) {
            w.push((table.to_owned(), column.to_owned()));
        }
    }
}

/// Every place (table, column of the associated data) a keyring in this process has
/// encrypted into since it started.
pub fn written_places() -> Vec<(String, String)> {
    WRITTEN.read().map(|w| w.clone()).unwrap_or_default()
}

/// Why a key could not be loaded or a value could not be encrypted or decrypted.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Production mode and no key-encryption key was provided.
    #[error("no key-encryption key: set keys.kek (CONCORD_KEYS__KEK) or create {0} (mode 0600)")]
    KekMissing(PathBuf),
    /// The key file can be read by other users.
    #[error("{0} is readable by other users (mode {1:o}); run chmod 600 on it")]
    KekPermissions(PathBuf, u32),
    /// The key-encryption key is not 32 bytes of base64.
    #[error("the key-encryption key from {0} is not base64 of 32 bytes")]
    KekMalformed(String),
    /// Reading or writing a key file failed.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The configured KEK is not the one the database's keys are wrapped with.
    #[error("wrong key-encryption key: the database's keys are wrapped by KEK {expected}, but the configured KEK is {configured}; start Concord with the right key (refusing to serve data it cannot decrypt)")]
    WrongKek {
        /// Id of the configured KEK.
        configured: String,
        /// Id of the KEK the stored keys need.
        expected: String,
    },
    /// Stored keys exist but their check value is missing.
    #[error("the database holds data keys but no KEK check value; it is incomplete or was tampered with")]
    CheckMissing,
    /// Authentication failed: wrong key, or the ciphertext was altered or moved.
    #[error("decryption failed for {0}: wrong key, or the value was altered or moved")]
    Decrypt(String),
    /// The ciphertext does not have Concord's format.
    #[error("not a Concord ciphertext ({0})")]
    Malformed(&'static str),
    /// A ciphertext names a key version that does not exist.
    #[error("no data key {scope} version {version}")]
    UnknownKey {
        /// The key's scope.
        scope: String,
        /// Its version.
        version: u32,
    },
    /// The scope's key was destroyed (its person erased): nothing is sealed under it again.
    #[error("the data key {0} was destroyed (its person was erased)")]
    Destroyed(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CryptoError> for crate::error::Error {
    fn from(err: CryptoError) -> Self {
        match err {
            CryptoError::Store(e) => crate::error::Error::Store(e),
            CryptoError::Destroyed(_) => crate::error::Error::gone(
                "erased",
                "this person was erased: nothing of theirs can be stored again",
            ),
            other => crate::error::Error::Internal(other.to_string()),
        }
    }
}
