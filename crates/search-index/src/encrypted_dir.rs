//! A tantivy [`Directory`] that keeps every file encrypted on disk.
//!
//! Each file starts with a header (magic, the index key version, a random 16-byte salt); the
//! file's own AES-256-GCM key is derived from the workspace's index key and that salt with
//! HKDF-SHA256, so no two files share a key and nonces can simply count chunks. The body is a
//! sequence of chunks of [`CHUNK`] plaintext bytes, each sealed with its index as nonce and
//! (file name, index, is-last) as associated data: chunks cannot be swapped between files or
//! positions, and a truncated file fails on its last chunk. A read decrypts only the chunks the
//! requested range covers, and keeps decrypted chunks in a [`ChunkCache`] shared by every
//! index the server has open: bounded in bytes, least recently used evicted first, each chunk
//! zeroized when the last reader lets go of it. Memory stays bounded whatever the index size,
//! and a query over hot postings decrypts nothing. `meta.json` and `.managed.json` go through
//! the same format. Element's seshat takes the same approach with whole-file encryption; the
//! chunking here is what keeps query memory bounded.
//!
//! Writer locks use tantivy's own file locks on empty lock files (they hold no content).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use lru::LruCache;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, Directory, DirectoryLock, FileHandle, Lock, MmapDirectory, OwnedBytes,
    TerminatingWrite, WatchCallback, WatchHandle, WritePtr,
};
use tantivy::HasLen;
use zeroize::Zeroizing;

/// Plaintext bytes per chunk.
const CHUNK: usize = 8 * 1024;
/// The GCM tag after each chunk.
const TAG: usize = 16;
/// Stored chunk size.
const STRIDE: usize = CHUNK + TAG;
/// File format marker and version.
const MAGIC: &[u8; 4] = b"CSX1";
/// Magic, key version, salt.
const HEADER: usize = 4 + 4 + 16;
/// Independent locks in the shared chunk cache.
const SHARDS: usize = 8;

/// The versions of one workspace's index key; files name the version they were written with.
#[derive(Clone)]
pub struct IndexKeys {
    current: u32,
    keys: Arc<HashMap<u32, Zeroizing<[u8; 32]>>>,
}

impl std::fmt::Debug for IndexKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexKeys")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl IndexKeys {
    /// Keys by version; new files use `current`.
    pub fn new(current: u32, keys: HashMap<u32, Zeroizing<[u8; 32]>>) -> IndexKeys {
        IndexKeys {
            current,
            keys: Arc::new(keys),
        }
    }

    fn file_cipher(&self, version: u32, salt: &[u8]) -> io::Result<Aes256Gcm> {
        let key = self.keys.get(&version).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("index file needs key version {version}, which is not available"),
            )
        })?;
        let mut derived = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(salt), key.as_ref())
            .expand(b"concord search index file", derived.as_mut())
            .map_err(|_| io::Error::other("key derivation failed"))?;
        Aes256Gcm::new_from_slice(derived.as_ref()).map_err(|_| io::Error::other("bad key length"))
    }
}

fn nonce(index: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&index.to_le_bytes());
    n
}

fn chunk_aad(name: &str, index: u64, last: bool) -> Vec<u8> {
    let mut aad = Vec::with_capacity(name.len() + 9);
    aad.extend_from_slice(name.as_bytes());
    aad.extend_from_slice(&index.to_le_bytes());
    aad.push(u8::from(last));
    aad
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

/// The name bound into a file's chunks: its path inside the index folder.
fn logical_name(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// A decrypted chunk; its bytes are wiped when the last holder drops it.
type Chunk = Arc<Zeroizing<Vec<u8>>>;

/// Identifies one chunk of one file in one opened directory.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct ChunkKey {
    file: u128,
    index: u64,
}

/// Decrypted index chunks shared by every open [`EncryptedDirectory`], bounded in bytes.
///
/// Entries are keyed by the directory they were opened through, the file's name and its
/// random salt, so a file copied under another name or into another workspace's folder never
/// reads a cached chunk it could not decrypt itself. Eviction is least recently used per shard.
#[derive(Clone)]
pub struct ChunkCache {
    shards: Arc<[Mutex<Shard>]>,
    shard_budget: usize,
}

struct Shard {
    chunks: LruCache<ChunkKey, Chunk>,
    bytes: usize,
}

impl std::fmt::Debug for ChunkCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChunkCache({} bytes)", self.shard_budget * SHARDS)
    }
}

impl ChunkCache {
    /// A cache holding at most `bytes` of decrypted chunks (0 turns caching off).
    pub fn new(bytes: usize) -> ChunkCache {
        let shards: Vec<Mutex<Shard>> = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    chunks: LruCache::unbounded(),
                    bytes: 0,
                })
            })
            .collect();
        ChunkCache {
            shards: shards.into(),
            shard_budget: bytes / SHARDS,
        }
    }

    /// Bytes of decrypted chunks held now.
    pub fn held_bytes(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.lock().ok().map(|s| s.bytes))
            .sum()
    }

    fn shard(&self, key: &ChunkKey) -> &Mutex<Shard> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    fn get(&self, key: &ChunkKey) -> Option<Chunk> {
        let mut shard = self.shard(key).lock().ok()?;
        shard.chunks.get(key).cloned()
    }

    /// Drops every cached chunk of the file `file` (of `chunks` chunks).
    fn forget(&self, file: u128, chunks: u64) {
        for index in 0..chunks {
            let key = ChunkKey { file, index };
            if let Ok(mut shard) = self.shard(&key).lock() {
                if let Some(old) = shard.chunks.pop(&key) {
                    shard.bytes -= old.len();
                }
            }
        }
    }

    fn put(&self, key: ChunkKey, chunk: Chunk) {
        if chunk.len() > self.shard_budget {
            return;
        }
        let Ok(mut shard) = self.shard(&key).lock() else {
            return;
        };
        if let Some(old) = shard.chunks.put(key, chunk.clone()) {
            shard.bytes -= old.len();
        }
        shard.bytes += chunk.len();
        while shard.bytes > self.shard_budget {
            match shard.chunks.pop_lru() {
                Some((_, old)) => shard.bytes -= old.len(),
                None => break,
            }
        }
    }
}

/// Tells apart the directories opened in this process, for the cache's keys.
static DIRECTORY_IDS: AtomicU64 = AtomicU64::new(1);

/// A folder of encrypted index files.
#[derive(Clone)]
pub struct EncryptedDirectory {
    root: PathBuf,
    keys: IndexKeys,
    locks: MmapDirectory,
    cache: ChunkCache,
    id: u64,
}

impl std::fmt::Debug for EncryptedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncryptedDirectory({})", self.root.display())
    }
}

impl EncryptedDirectory {
    /// Opens (creating) the folder `root`, encrypting under `keys` and keeping decrypted
    /// chunks in `cache`.
    pub fn open(root: &Path, keys: IndexKeys, cache: ChunkCache) -> io::Result<EncryptedDirectory> {
        fs::create_dir_all(root)?;
        let locks = MmapDirectory::open(root).map_err(|e| io::Error::other(e.to_string()))?;
        Ok(EncryptedDirectory {
            root: root.to_owned(),
            keys,
            locks,
            cache,
            id: DIRECTORY_IDS.fetch_add(1, Ordering::Relaxed),
        })
    }

    fn new_writer(&self, path: &Path, file: File) -> io::Result<EncryptedWriter> {
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let cipher = self.keys.file_cipher(self.keys.current, &salt)?;
        let mut out = BufWriter::with_capacity(STRIDE * 4, file);
        out.write_all(MAGIC)?;
        out.write_all(&self.keys.current.to_le_bytes())?;
        out.write_all(&salt)?;
        Ok(EncryptedWriter {
            out,
            cipher,
            name: logical_name(path),
            buf: Vec::with_capacity(CHUNK),
            index: 0,
            done: false,
        })
    }

    fn open_file(&self, path: &Path) -> Result<EncryptedFile, OpenReadError> {
        let full = self.root.join(path);
        let file = File::open(&full).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                OpenReadError::FileDoesNotExist(path.to_owned())
            } else {
                OpenReadError::wrap_io_error(e, path.to_owned())
            }
        })?;
        EncryptedFile::open(file, path, self)
            .map_err(|e| OpenReadError::wrap_io_error(e, path.to_owned()))
    }
}

/// Writes chunks as they fill; the last one is sealed as last on terminate.
struct EncryptedWriter {
    out: BufWriter<File>,
    cipher: Aes256Gcm,
    name: String,
    buf: Vec<u8>,
    index: u64,
    done: bool,
}

impl EncryptedWriter {
    fn seal_chunk(&mut self, last: bool) -> io::Result<()> {
        let aad = chunk_aad(&self.name, self.index, last);
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce(self.index)),
                Payload {
                    msg: &self.buf,
                    aad: &aad,
                },
            )
            .map_err(|_| io::Error::other("chunk encryption failed"))?;
        self.out.write_all(&sealed)?;
        self.buf.clear();
        self.index += 1;
        Ok(())
    }
}

impl Write for EncryptedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.done {
            return Err(io::Error::other("write after terminate"));
        }
        let mut rest = data;
        while !rest.is_empty() {
            // A full chunk is sealed only when more data follows, so the last chunk is never
            // empty unless the whole file is.
            if self.buf.len() == CHUNK {
                self.seal_chunk(false)?;
            }
            let take = (CHUNK - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl TerminatingWrite for EncryptedWriter {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        self.terminate_ref_internal()
    }
}

/// An open encrypted file: decrypts the chunks a read covers.
struct EncryptedFile {
    file: File,
    cipher: Aes256Gcm,
    name: String,
    len: usize,
    chunks: u64,
    cache: ChunkCache,
    /// This file's identity in the cache.
    id: u128,
}

impl std::fmt::Debug for EncryptedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncryptedFile({}, {} bytes)", self.name, self.len)
    }
}

impl EncryptedFile {
    fn open(file: File, path: &Path, dir: &EncryptedDirectory) -> io::Result<EncryptedFile> {
        let size = file.metadata()?.len() as usize;
        if size < HEADER + TAG {
            return Err(invalid("index file too short"));
        }
        let mut header = [0u8; HEADER];
        file.read_exact_at(&mut header, 0)?;
        if &header[..4] != MAGIC {
            return Err(invalid("not an encrypted index file"));
        }
        let version = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let cipher = dir.keys.file_cipher(version, &header[8..HEADER])?;
        let name = logical_name(path);
        let digest = Sha256::new()
            .chain_update(dir.id.to_le_bytes())
            .chain_update(&header[4..HEADER])
            .chain_update(name.as_bytes())
            .finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        let body = size - HEADER;
        let (chunks, len) = if body == TAG {
            (1, 0)
        } else {
            let full = (body - TAG - 1) / STRIDE;
            let last = body - TAG - full * STRIDE;
            (full as u64 + 1, full * CHUNK + last)
        };
        Ok(EncryptedFile {
            file,
            cipher,
            name,
            len,
            chunks,
            cache: dir.cache.clone(),
            id: u128::from_le_bytes(id),
        })
    }

    fn decrypt_chunk(&self, index: u64) -> io::Result<Zeroizing<Vec<u8>>> {
        let last = index + 1 == self.chunks;
        let plain_len = if last {
            self.len - (index as usize) * CHUNK
        } else {
            CHUNK
        };
        let mut sealed = vec![0u8; plain_len + TAG];
        self.file
            .read_exact_at(&mut sealed, (HEADER + index as usize * STRIDE) as u64)?;
        let aad = chunk_aad(&self.name, index, last);
        self.cipher
            .decrypt(
                &Nonce::from(nonce(index)),
                Payload {
                    msg: &sealed,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| invalid("index chunk failed authentication"))
    }

    /// Chunk `index`, from the cache if it is there; a decrypted one is kept only if `keep`.
    fn chunk(&self, index: u64, keep: bool) -> io::Result<Chunk> {
        let key = ChunkKey {
            file: self.id,
            index,
        };
        if let Some(chunk) = self.cache.get(&key) {
            return Ok(chunk);
        }
        let chunk = Arc::new(self.decrypt_chunk(index)?);
        if keep {
            self.cache.put(key, chunk.clone());
        }
        Ok(chunk)
    }

    fn read_range(&self, range: Range<usize>) -> io::Result<Vec<u8>> {
        if range.end > self.len || range.start > range.end {
            return Err(invalid("read past the end of an index file"));
        }
        let mut out = Vec::with_capacity(range.len());
        if range.is_empty() {
            return Ok(out);
        }
        let first = (range.start / CHUNK) as u64;
        let last = ((range.end - 1) / CHUNK) as u64;
        // A read too large to be worth keeping (a merge reading whole segments) uses what is
        // cached but does not push out what queries need.
        let keep = ((last - first + 1) as usize) * CHUNK <= self.cache.shard_budget;
        for index in first..=last {
            let start = index as usize * CHUNK;
            let from = range.start.max(start) - start;
            let to = range.end.min(start + CHUNK) - start;
            out.extend_from_slice(&self.chunk(index, keep)?[from..to]);
        }
        Ok(out)
    }
}

impl HasLen for EncryptedFile {
    fn len(&self) -> usize {
        self.len
    }
}

impl FileHandle for EncryptedFile {
    fn read_bytes(&self, range: Range<usize>) -> io::Result<OwnedBytes> {
        Ok(OwnedBytes::new(self.read_range(range)?))
    }
}

impl Directory for EncryptedDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        Ok(Arc::new(self.open_file(path)?))
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        // What was cached of a deleted file (a merged-away segment holding erased messages)
        // leaves memory with it.
        if let Ok(file) = self.open_file(path) {
            self.cache.forget(file.id, file.chunks);
        }
        fs::remove_file(self.root.join(path)).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                DeleteError::FileDoesNotExist(path.to_owned())
            } else {
                DeleteError::IoError {
                    io_error: Arc::new(e),
                    filepath: path.to_owned(),
                }
            }
        })
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        Ok(self.root.join(path).exists())
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        let full = self.root.join(path);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&full)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    OpenWriteError::FileAlreadyExists(path.to_owned())
                } else {
                    OpenWriteError::wrap_io_error(e, path.to_owned())
                }
            })?;
        let writer = self
            .new_writer(path, file)
            .map_err(|e| OpenWriteError::wrap_io_error(e, path.to_owned()))?;
        Ok(BufWriter::with_capacity(CHUNK, Box::new(writer)))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        let file = self.open_file(path)?;
        file.read_range(0..file.len)
            .map_err(|e| OpenReadError::wrap_io_error(e, path.to_owned()))
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let full = self.root.join(path);
        let mut tmp_name = full.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let _ = fs::remove_file(&tmp);
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        // Chunks are bound to the final name, not the temporary one.
        let mut writer = self.new_writer(path, file)?;
        writer.write_all(data)?;
        writer.terminate_ref_internal()?;
        fs::rename(&tmp, &full)?;
        self.sync_directory()
    }

    fn sync_directory(&self) -> io::Result<()> {
        File::open(&self.root)?.sync_all()
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        self.locks.acquire_lock(lock)
    }

    fn watch(&self, _: WatchCallback) -> tantivy::Result<WatchHandle> {
        // Readers are reloaded explicitly after each commit.
        Ok(WatchHandle::empty())
    }
}

impl EncryptedWriter {
    fn terminate_ref_internal(&mut self) -> io::Result<()> {
        if self.done {
            return Ok(());
        }
        self.seal_chunk(true)?;
        self.done = true;
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> IndexKeys {
        let mut map = HashMap::new();
        map.insert(1, Zeroizing::new([7u8; 32]));
        IndexKeys::new(1, map)
    }

    fn roundtrip(len: usize) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = EncryptedDirectory::open(tmp.path(), keys(), ChunkCache::new(1 << 20)).unwrap();
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let path = Path::new("f.bin");
        let mut w = dir.open_write(path).unwrap();
        w.write_all(&data).unwrap();
        w.terminate().unwrap();
        let slice = dir.open_read(path).unwrap();
        assert_eq!(slice.len(), len);
        assert_eq!(slice.read_bytes().unwrap().as_slice(), &data[..]);
        if len > 10 {
            let r = slice.read_bytes_slice(3..len - 5).unwrap();
            assert_eq!(r.as_slice(), &data[3..len - 5]);
        }
    }

    #[test]
    fn files_of_every_size_round_trip() {
        for len in [
            0,
            1,
            100,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            3 * CHUNK,
            3 * CHUNK + 17,
        ] {
            roundtrip(len);
        }
    }

    #[test]
    fn truncated_or_foreign_files_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = EncryptedDirectory::open(tmp.path(), keys(), ChunkCache::new(1 << 20)).unwrap();
        let data = vec![42u8; 3 * CHUNK];
        let mut w = dir.open_write(Path::new("a")).unwrap();
        w.write_all(&data).unwrap();
        w.terminate().unwrap();
        // Cut at a chunk boundary: the new last chunk was not sealed as last.
        let full = tmp.path().join("a");
        let bytes = fs::read(&full).unwrap();
        fs::write(tmp.path().join("b"), &bytes[..HEADER + 2 * STRIDE]).unwrap();
        assert!(dir.open_read(Path::new("b")).unwrap().read_bytes().is_err());
        // Same bytes under another name: bound to the name, even with the original's chunks
        // in the cache.
        assert_eq!(
            dir.open_read(Path::new("a"))
                .unwrap()
                .read_bytes()
                .unwrap()
                .as_slice(),
            &data[..]
        );
        fs::write(tmp.path().join("c"), &bytes).unwrap();
        assert!(dir.open_read(Path::new("c")).unwrap().read_bytes().is_err());
        assert!(!bytes.windows(8).any(|w| w == [42u8; 8]));
    }

    #[test]
    fn meta_files_are_encrypted_too() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = EncryptedDirectory::open(tmp.path(), keys(), ChunkCache::new(1 << 20)).unwrap();
        dir.atomic_write(Path::new("meta.json"), b"{\"secret\":1}")
            .unwrap();
        assert_eq!(
            dir.atomic_read(Path::new("meta.json")).unwrap(),
            b"{\"secret\":1}"
        );
        let raw = fs::read(tmp.path().join("meta.json")).unwrap();
        assert!(!raw.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn the_shared_cache_stays_within_its_budget_and_serves_every_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ChunkCache::new(SHARDS * 4 * CHUNK);
        let one = EncryptedDirectory::open(&tmp.path().join("one"), keys(), cache.clone()).unwrap();
        let two = EncryptedDirectory::open(&tmp.path().join("two"), keys(), cache.clone()).unwrap();
        let data: Vec<u8> = (0..20 * CHUNK).map(|i| (i % 253) as u8).collect();
        for dir in [&one, &two] {
            let mut w = dir.open_write(Path::new("f")).unwrap();
            w.write_all(&data).unwrap();
            w.terminate().unwrap();
        }
        for _ in 0..3 {
            for dir in [&one, &two] {
                let slice = dir.open_read(Path::new("f")).unwrap();
                for start in (0..data.len() - 100).step_by(CHUNK / 2) {
                    let r = slice.read_bytes_slice(start..start + 100).unwrap();
                    assert_eq!(r.as_slice(), &data[start..start + 100]);
                }
            }
            assert!(cache.held_bytes() <= SHARDS * 4 * CHUNK);
            assert!(cache.held_bytes() > 0);
        }
        // A deleted file's chunks leave the cache with it.
        let slice = one.open_read(Path::new("f")).unwrap();
        slice.read_bytes_slice(0..100).unwrap();
        drop(slice);
        let before = cache.held_bytes();
        one.delete(Path::new("f")).unwrap();
        assert!(cache.held_bytes() < before);
        let mut w = one.open_write(Path::new("f")).unwrap();
        w.write_all(&data).unwrap();
        w.terminate().unwrap();
        // Switched off, reads still work.
        let off =
            EncryptedDirectory::open(&tmp.path().join("one"), keys(), ChunkCache::new(0)).unwrap();
        let slice = off.open_read(Path::new("f")).unwrap();
        assert_eq!(slice.read_bytes().unwrap().as_slice(), &data[..]);
    }
}
