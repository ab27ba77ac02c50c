//! The registry of re-encryptable columns.
//!
//! Every table that stores ciphertext under a data key owns one [`Target`]: how many rows it
//! has, and how to re-encrypt a batch of them (in id order, after a cursor) under their
//! scope's current key version. A data-key rotation ([`super::KeyService::rotate_dek`])
//! records progress for every target listed in [`TARGETS`], and the re-encryption job
//! ([`super::Reencryptor`]) walks them batch by batch through the group-commit writer. A
//! feature that adds encrypted columns adds its entry to [`TARGETS`]; rotations started
//! before it existed pick it up when they resume.
//!
//! Invariants: a batch function only touches rows whose ciphertext is under an older key
//! version than its scope's current one, re-encrypts them for the same place (table, row,
//! column), and returns the last id it examined as a cursor that orders rows the same way
//! on both backends. Audit entries are not a target: the log is append-only and its hash
//! covers the ciphertext, so they stay under the key version they were written with (old
//! versions are kept for reading).

use futures::future::BoxFuture;

use crate::crypto::Keyring;
use crate::error::Error;
use crate::store::Tx;

/// What one batch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Rows examined.
    pub scanned: usize,
    /// Rows re-encrypted (the others were already under the current key).
    pub changed: usize,
    /// The last row id examined, to resume after; `None` if the batch was empty.
    pub last: Option<String>,
}

/// Counts a target's rows inside a write.
pub type CountFn = for<'t> fn(&'t mut Tx) -> BoxFuture<'t, Result<i64, Error>>;

/// Re-encrypts at most `limit` rows after the cursor inside a write.
pub type BatchFn = for<'t> fn(
    &'t mut Tx,
    &'t Keyring,
    Option<String>,
    usize,
) -> BoxFuture<'t, Result<Batch, Error>>;

/// A set of encrypted columns a data-key rotation re-encrypts.
pub struct Target {
    /// Stable name, stored with the progress (`users`, `messages`, ...).
    pub name: &'static str,
    /// How many rows there are (the progress total).
    pub count: CountFn,
    /// Re-encrypts one batch.
    pub reencrypt: BatchFn,
}

/// Every re-encryptable target, in the order a rotation walks them.
pub const TARGETS: &[Target] = &[
    crate::accounts::REENCRYPT_PROFILES,
    crate::chat::REENCRYPT_MESSAGES,
    crate::docs::REENCRYPT_DOCUMENTS,
    crate::auth::REENCRYPT_SESSIONS,
    crate::workspaces::REENCRYPT_INVITATIONS,
    crate::workspaces::REENCRYPT_WORKSPACES,
    crate::workspaces::REENCRYPT_ROLES,
    crate::chat::REENCRYPT_CHANNELS,
];

/// The target with this name.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_are_unique_and_found() {
        let mut names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names.len(),
            TARGETS.len(),
            "progress rows are keyed by name"
        );
        for t in TARGETS {
            assert!(target(t.name).is_some_and(|found| found.name == t.name));
        }
    }
}
