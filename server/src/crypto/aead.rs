//! The versioned ciphertext format and the associated data that pins a value to its place.
//!
//! Layout (format version 1): `0x01 | key version (u32, big-endian) | nonce (12 bytes) |
//! AES-256-GCM ciphertext with its 16-byte tag`. Nonces are random (96 bits), which is why
//! each key is retired long before 2^32 uses. The associated data is not stored: it is
//! rebuilt from where the value is read (table, row id, column, key scope and version), so a
//! ciphertext copied to another row, column or key fails authentication.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand::RngCore;
use zeroize::Zeroizing;

use super::CryptoError;

/// The ciphertext format written today.
pub const FORMAT_V1: u8 = 1;
const HEADER: usize = 1 + 4 + 12;
const TAG: usize = 16;

/// Where a value lives: the associated data of its ciphertext.
#[derive(Clone, Copy, Debug)]
pub struct Aad<'a> {
    /// Table name.
    pub table: &'a str,
    /// The row's id, as text.
    pub row: &'a str,
    /// Column name.
    pub column: &'a str,
}

fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u32).to_be_bytes());
    out.extend_from_slice(field);
}

fn associated_data(scope: &str, version: u32, aad: &Aad<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + aad.row.len());
    out.extend_from_slice(b"concord-aead-v1");
    push_field(&mut out, aad.table.as_bytes());
    push_field(&mut out, aad.row.as_bytes());
    push_field(&mut out, aad.column.as_bytes());
    push_field(&mut out, scope.as_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out
}

/// Encrypts `plaintext` under `key` (version `version` of `scope`) for the place `aad`.
pub fn seal(
    key: &[u8; 32],
    scope: &str,
    version: u32,
    aad: &Aad<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
    let mut nonce = [0u8; 12];
    // The thread's CSPRNG (ChaCha, reseeded from the OS) rather than a system call per nonce.
    rand::thread_rng().fill_bytes(&mut nonce);
    let ad = associated_data(scope, version, aad);
    let sealed = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &ad,
            },
        )
        .map_err(|_| CryptoError::Malformed("encryption failed"))?;
    let mut out = Vec::with_capacity(HEADER + sealed.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The key version a ciphertext was made with.
pub fn key_version(ciphertext: &[u8]) -> Result<u32, CryptoError> {
    if ciphertext.len() < HEADER + TAG {
        return Err(CryptoError::Malformed("too short"));
    }
    if ciphertext[0] != FORMAT_V1 {
        return Err(CryptoError::Malformed("unknown format version"));
    }
    let mut v = [0u8; 4];
    v.copy_from_slice(&ciphertext[1..5]);
    Ok(u32::from_be_bytes(v))
}

/// Decrypts a ciphertext made by [`seal`] for the same scope, key and place.
pub fn open(
    key: &[u8; 32],
    scope: &str,
    aad: &Aad<'_>,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let version = key_version(ciphertext)?;
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
    let ad = associated_data(scope, version, aad);
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&ciphertext[5..HEADER]);
    cipher
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &ciphertext[HEADER..],
                aad: &ad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Decrypt(format!("{}.{}", aad.table, aad.column)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn round_trips_and_is_pinned_to_its_place() {
        let here = Aad {
            table: "users",
            row: "a",
            column: "email",
        };
        let ct = seal(&KEY, "user:a", 3, &here, b"ann@example.org").unwrap();
        assert_eq!(key_version(&ct).unwrap(), 3);
        assert_eq!(
            open(&KEY, "user:a", &here, &ct).unwrap().as_slice(),
            b"ann@example.org"
        );
        let elsewhere = Aad { row: "b", ..here };
        assert!(open(&KEY, "user:a", &elsewhere, &ct).is_err());
        let other_column = Aad {
            column: "display_name",
            ..here
        };
        assert!(open(&KEY, "user:a", &other_column, &ct).is_err());
        assert!(open(&KEY, "user:b", &here, &ct).is_err());
        let mut flipped = ct.clone();
        flipped[1] ^= 1;
        assert!(open(&KEY, "user:a", &here, &flipped).is_err());
    }
}
