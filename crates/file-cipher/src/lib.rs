//! Chunked authenticated encryption of file contents.
//!
//! A file's plaintext is cut into chunks of [`CHUNK_BYTES`] (the last one shorter, possibly
//! empty for an empty file, so every file has at least one chunk). Each chunk is sealed with
//! AES-256-GCM under the file's own random content key: `nonce (12 bytes, random) |
//! ciphertext | tag (16 bytes)`. The associated data binds the file id, the chunk's index
//! and whether it is the last chunk (the STREAM construction's counter and last-block flag,
//! carried in the associated data so nonces can stay random across retried uploads). So a
//! chunk moved to another position or another file, a dropped chunk, or a file cut short
//! fails authentication instead of yielding different plaintext.
//!
//! A partial chunk of an unfinished resumable upload (its "tail") is sealed the same way
//! with associated data naming the tail and the offset it ends at.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand::RngCore;
use zeroize::Zeroizing;

use concord_domain::FileId;

/// Plaintext bytes per chunk.
pub const CHUNK_BYTES: u64 = 64 * 1024;
/// Bytes a sealed chunk adds to its plaintext (nonce and tag).
pub const OVERHEAD: u64 = 12 + 16;

/// A sealed value did not authenticate: the stored bytes were altered, moved or cut.
#[derive(Debug, thiserror::Error)]
#[error("encrypted file data failed authentication ({0})")]
pub struct Corrupt(pub String);

/// A file's content key (zeroized on drop).
#[derive(Clone)]
pub struct ContentKey(Zeroizing<[u8; 32]>);

impl ContentKey {
    /// A fresh random key.
    pub fn generate() -> ContentKey {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        ContentKey(key)
    }

    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<ContentKey, Corrupt> {
        let mut key = Zeroizing::new([0u8; 32]);
        if bytes.len() != 32 {
            return Err(Corrupt("content key length".into()));
        }
        key.copy_from_slice(bytes);
        Ok(ContentKey(key))
    }

    /// The raw key, for wrapping.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(*self.0))
    }
}

/// Where a file's chunks fall: how many there are and how long each is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The file's length in bytes.
    pub size: u64,
}

impl Layout {
    /// Number of chunks (at least one).
    pub fn chunks(&self) -> u64 {
        self.size.div_ceil(CHUNK_BYTES).max(1)
    }

    /// Plaintext length of chunk `index`.
    pub fn plain_len(&self, index: u64) -> u64 {
        if index + 1 < self.chunks() {
            CHUNK_BYTES
        } else {
            self.size - (self.chunks() - 1) * CHUNK_BYTES
        }
    }

    /// Whether `index` is the last chunk.
    pub fn is_last(&self, index: u64) -> bool {
        index + 1 == self.chunks()
    }

    /// Sealed length of chunk `index`.
    pub fn sealed_len(&self, index: u64) -> u64 {
        self.plain_len(index) + OVERHEAD
    }

    /// Sealed length of a whole file.
    pub fn sealed_size(&self) -> u64 {
        self.size + self.chunks() * OVERHEAD
    }
}

fn chunk_ad(file: FileId, index: u64, last: bool) -> Vec<u8> {
    let mut ad = Vec::with_capacity(48);
    ad.extend_from_slice(b"concord-file-chunk-v1");
    ad.extend_from_slice(file.0.as_bytes());
    ad.extend_from_slice(&index.to_be_bytes());
    ad.push(u8::from(last));
    ad
}

fn tail_ad(file: FileId, ends_at: u64) -> Vec<u8> {
    let mut ad = Vec::with_capacity(48);
    ad.extend_from_slice(b"concord-file-tail-v1");
    ad.extend_from_slice(file.0.as_bytes());
    ad.extend_from_slice(&ends_at.to_be_bytes());
    ad
}

fn seal(key: &ContentKey, ad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), Corrupt> {
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = key
        .cipher()
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: ad,
            },
        )
        .map_err(|_| Corrupt("encryption failed".into()))?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(())
}

fn open(key: &ContentKey, ad: &[u8], sealed: &[u8], what: &str) -> Result<Vec<u8>, Corrupt> {
    if sealed.len() < OVERHEAD as usize {
        return Err(Corrupt(format!("{what} too short")));
    }
    let (nonce, body) = sealed.split_at(12);
    let mut n = [0u8; 12];
    n.copy_from_slice(nonce);
    key.cipher()
        .decrypt(&Nonce::from(n), Payload { msg: body, aad: ad })
        .map_err(|_| Corrupt(what.to_owned()))
}

/// Seals chunk `index` of `file` and appends it to `out`.
pub fn seal_chunk(
    key: &ContentKey,
    file: FileId,
    index: u64,
    last: bool,
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Corrupt> {
    seal(key, &chunk_ad(file, index, last), plaintext, out)
}

/// Opens chunk `index` of `file`, which must be sealed as (not) the last chunk.
pub fn open_chunk(
    key: &ContentKey,
    file: FileId,
    index: u64,
    last: bool,
    sealed: &[u8],
) -> Result<Vec<u8>, Corrupt> {
    open(
        key,
        &chunk_ad(file, index, last),
        sealed,
        &format!("chunk {index}"),
    )
}

/// Seals the partial chunk of an upload that has received `ends_at` bytes.
pub fn seal_tail(
    key: &ContentKey,
    file: FileId,
    ends_at: u64,
    plaintext: &[u8],
) -> Result<Vec<u8>, Corrupt> {
    let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD as usize);
    seal(key, &tail_ad(file, ends_at), plaintext, &mut out)?;
    Ok(out)
}

/// Opens the partial chunk of an upload that has received `ends_at` bytes.
pub fn open_tail(
    key: &ContentKey,
    file: FileId,
    ends_at: u64,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Corrupt> {
    open(key, &tail_ad(file, ends_at), sealed, "partial chunk").map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_bound_to_file_index_and_end() {
        let key = ContentKey::generate();
        let file = FileId::generate();
        let mut a = Vec::new();
        seal_chunk(&key, file, 3, false, b"hello", &mut a).unwrap();
        assert_eq!(open_chunk(&key, file, 3, false, &a).unwrap(), b"hello");
        assert!(open_chunk(&key, file, 4, false, &a).is_err(), "moved");
        assert!(open_chunk(&key, file, 3, true, &a).is_err(), "claimed last");
        assert!(
            open_chunk(&key, FileId::generate(), 3, false, &a).is_err(),
            "other file"
        );
        let mut flipped = a.clone();
        flipped[20] ^= 1;
        assert!(
            open_chunk(&key, file, 3, false, &flipped).is_err(),
            "altered"
        );
        assert!(
            open_chunk(&key, file, 3, false, &a[..a.len() - 1]).is_err(),
            "cut"
        );
    }

    #[test]
    fn layout_counts_chunks() {
        let empty = Layout { size: 0 };
        assert_eq!((empty.chunks(), empty.plain_len(0)), (1, 0));
        let exact = Layout {
            size: 2 * CHUNK_BYTES,
        };
        assert_eq!((exact.chunks(), exact.plain_len(1)), (2, CHUNK_BYTES));
        let odd = Layout {
            size: 2 * CHUNK_BYTES + 5,
        };
        assert_eq!((odd.chunks(), odd.plain_len(2)), (3, 5));
        assert!(odd.is_last(2) && !odd.is_last(1));
        assert_eq!(odd.sealed_size(), odd.size + 3 * OVERHEAD);
    }
}
