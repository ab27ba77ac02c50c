//! The blob store: where encrypted file contents live, behind one small interface.
//!
//! Blobs are immutable once written, named by keys Concord makes from ids only (never from
//! file names), and only ever hold ciphertext. [`LocalBlobs`] keeps them in a directory
//! (the default: `<data_dir>/blobs`), writing each to a temporary file that is synced and
//! renamed into place, so a blob either exists whole or not at all. [`ObjectBlobs`] keeps
//! them in an S3-compatible bucket through the `object_store` crate, uploading in parts so a
//! large blob never sits in memory.
//!
//! A resumable upload's segment on local disk is the exception to "whole or not at all": it
//! is appended to in place ([`BlobStore::append`]) and synced at checkpoints, and the
//! database records how many of its bytes are durable; bytes past that (written before a
//! crash) are never read. [`BlobStore::list`] and [`BlobStore::delete_file`] serve the
//! orphan collector.

use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::config::{BlobBackend, Config};

/// Why the blob store failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The blob does not exist.
    #[error("blob {0} not found")]
    NotFound(String),
    /// The blob is shorter than the range asked for.
    #[error("blob {0} is shorter than expected")]
    Truncated(String),
    /// The data to store failed to arrive.
    #[error("blob source failed: {0}")]
    Source(io::Error),
    /// The local file system failed.
    #[error("blob store I/O on {0}: {1}")]
    Io(String, io::Error),
    /// The object store failed.
    #[error("object store: {0}")]
    Object(#[from] object_store::Error),
    /// The configuration cannot be used.
    #[error("blob store configuration: {0}")]
    Config(String),
}

/// A blob's name: `files/<file id>/<segment number>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobKey(String);

impl BlobKey {
    /// The key of segment `seq` of file `file`.
    pub fn segment(file: crate::domain::FileId, seq: i64) -> BlobKey {
        BlobKey(format!("files/{file}/{seq:08}"))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A blob as listed: the file it belongs to and when it was last written.
#[derive(Clone, Debug)]
pub struct Listed {
    /// Its key (for a local write in progress or abandoned: the `.partial` file's key).
    pub key: BlobKey,
    /// The file whose contents it holds (`None`: a name Concord did not make).
    pub file: Option<crate::domain::FileId>,
    /// Whether it is an unfinished local write (`*.partial`), never read by anyone.
    pub partial: bool,
    /// When it was last written.
    pub modified: std::time::SystemTime,
}

/// A blob being appended to in place; what was written before the last `sync` survives a
/// crash.
pub trait Appender: Send {
    /// Appends `bytes`.
    fn write(&mut self, bytes: Bytes) -> BoxFuture<'_, Result<(), BlobError>>;
    /// Makes everything written so far durable.
    fn sync(&mut self) -> BoxFuture<'_, Result<(), BlobError>>;
}

/// Bytes to store, as they are produced.
pub type Source = BoxStream<'static, Result<Bytes, io::Error>>;
/// Bytes read back.
pub type Sink = BoxStream<'static, Result<Bytes, BlobError>>;

/// Where encrypted file contents are kept.
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `data` under `key` (replacing any blob there) and returns its length. The
    /// blob becomes visible only once complete.
    fn put(&self, key: BlobKey, data: Source) -> BoxFuture<'_, Result<u64, BlobError>>;
    /// Streams the bytes of `range` of the blob; fails with [`BlobError::Truncated`] if the
    /// blob ends before the range does.
    fn get(&self, key: BlobKey, range: Range<u64>) -> BoxFuture<'_, Result<Sink, BlobError>>;
    /// Removes the blob (no error if it is already gone).
    fn delete(&self, key: BlobKey) -> BoxFuture<'_, Result<(), BlobError>>;
    /// Starts blob `key` afresh (replacing any blob there) to append to in place, if this
    /// store can make appends durable as they go; `None` if it cannot (use `put`).
    fn append(&self, key: BlobKey) -> BoxFuture<'_, Result<Option<Box<dyn Appender>>, BlobError>> {
        let _ = key;
        Box::pin(async { Ok(None) })
    }
    /// Removes every blob of `file`, listed or not (no error if there are none).
    fn delete_file(&self, file: crate::domain::FileId) -> BoxFuture<'_, Result<(), BlobError>>;
    /// Every blob stored, with the file it belongs to.
    fn list(&self) -> BoxFuture<'_, Result<Vec<Listed>, BlobError>>;
}

/// The file id in a blob key's second component (`files/<file id>/...`).
fn file_of(key: &str) -> Option<crate::domain::FileId> {
    let mut parts = key.split('/');
    match (parts.next(), parts.next()) {
        (Some("files"), Some(id)) => uuid::Uuid::parse_str(id).ok().map(crate::domain::FileId),
        _ => None,
    }
}

/// Opens the configured blob store.
pub fn open(config: &Config) -> Result<Arc<dyn BlobStore>, BlobError> {
    match config.files.blob.backend {
        BlobBackend::Local => Ok(Arc::new(LocalBlobs::new(config.blob_dir())?)),
        BlobBackend::S3 => Ok(Arc::new(ObjectBlobs::s3(&config.files.blob.s3)?)),
    }
}

/// Blobs as files in a local directory.
pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    /// A store rooted at `root` (created if missing, mode 0700).
    pub fn new(root: PathBuf) -> Result<LocalBlobs, BlobError> {
        std::fs::create_dir_all(&root).map_err(|e| BlobError::Io(root.display().to_string(), e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700));
        }
        Ok(LocalBlobs { root })
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        // Keys are made from ids and digits only; no component can climb out of the root.
        self.root.join(key.as_str())
    }

    async fn write(&self, key: BlobKey, mut data: Source) -> Result<u64, BlobError> {
        let path = self.path(&key);
        let io = |e| BlobError::Io(key.as_str().to_owned(), e);
        let dir = path
            .parent()
            .map(ToOwned::to_owned)
            .unwrap_or(self.root.clone());
        tokio::fs::create_dir_all(&dir).await.map_err(io)?;
        let partial = path.with_extension("partial");
        let mut file = tokio::fs::File::create(&partial).await.map_err(io)?;
        let mut written = 0u64;
        let result = async {
            while let Some(piece) = data.next().await {
                let piece = piece.map_err(BlobError::Source)?;
                file.write_all(&piece).await.map_err(io)?;
                written += piece.len() as u64;
            }
            file.flush().await.map_err(io)?;
            file.sync_all().await.map_err(io)?;
            Ok::<_, BlobError>(())
        }
        .await;
        drop(file);
        if let Err(err) = result {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(err);
        }
        tokio::fs::rename(&partial, &path).await.map_err(io)?;
        // The rename itself must survive a crash before the database says the blob exists.
        if let Ok(d) = tokio::fs::File::open(&dir).await {
            let _ = d.sync_all().await;
        }
        Ok(written)
    }

    async fn read(&self, key: BlobKey, range: Range<u64>) -> Result<Sink, BlobError> {
        let path = self.path(&key);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(key.as_str().to_owned()))
            }
            Err(e) => return Err(BlobError::Io(key.as_str().to_owned(), e)),
        };
        file.seek(io::SeekFrom::Start(range.start))
            .await
            .map_err(|e| BlobError::Io(key.as_str().to_owned(), e))?;
        let want = range.end.saturating_sub(range.start);
        let reader = file.take(want);
        let name = key.as_str().to_owned();
        let stream = tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024);
        Ok(exact_length(
            stream.map_err(move |e| BlobError::Io(name.clone(), e)),
            key,
            want,
        ))
    }

    async fn remove(&self, key: BlobKey) -> Result<(), BlobError> {
        let path = self.path(&key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(BlobError::Io(key.as_str().to_owned(), e)),
        }
        // Drop the file's directory once its last segment is gone.
        if let Some(dir) = path.parent() {
            let _ = tokio::fs::remove_dir(dir).await;
        }
        Ok(())
    }

    async fn open_append(&self, key: BlobKey) -> Result<Option<Box<dyn Appender>>, BlobError> {
        let path = self.path(&key);
        let io = |e| BlobError::Io(key.as_str().to_owned(), e);
        let dir = path
            .parent()
            .map(ToOwned::to_owned)
            .unwrap_or(self.root.clone());
        tokio::fs::create_dir_all(&dir).await.map_err(io)?;
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .map_err(io)?;
        Ok(Some(Box::new(LocalAppender {
            key,
            file,
            dir: Some(dir),
        })))
    }

    async fn remove_file(&self, file: crate::domain::FileId) -> Result<(), BlobError> {
        let dir = self.root.join("files").join(file.to_string());
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BlobError::Io(dir.display().to_string(), e)),
        }
    }

    async fn list_all(&self) -> Result<Vec<Listed>, BlobError> {
        let files = self.root.join("files");
        let io = |e| BlobError::Io("files".to_owned(), e);
        let mut out = Vec::new();
        let mut dirs = match tokio::fs::read_dir(&files).await {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io(e)),
        };
        while let Some(dir) = dirs.next_entry().await.map_err(io)? {
            let name = dir.file_name().to_string_lossy().into_owned();
            let mut blobs = match tokio::fs::read_dir(dir.path()).await {
                Ok(b) => b,
                // A file rather than a directory, or removed meanwhile: nothing inside.
                Err(_) => continue,
            };
            while let Some(blob) = blobs.next_entry().await.map_err(io)? {
                let Ok(meta) = blob.metadata().await else {
                    continue;
                };
                let blob_name = blob.file_name().to_string_lossy().into_owned();
                let key = format!("files/{name}/{blob_name}");
                out.push(Listed {
                    file: file_of(&key),
                    partial: blob_name.ends_with(".partial"),
                    key: BlobKey(key),
                    modified: meta.modified().unwrap_or(std::time::SystemTime::now()),
                });
            }
        }
        Ok(out)
    }
}

/// A local blob appended to in place.
struct LocalAppender {
    key: BlobKey,
    file: tokio::fs::File,
    /// The directory whose entry for the new file is yet to be synced.
    dir: Option<PathBuf>,
}

impl Appender for LocalAppender {
    fn write(&mut self, bytes: Bytes) -> BoxFuture<'_, Result<(), BlobError>> {
        Box::pin(async move {
            self.file
                .write_all(&bytes)
                .await
                .map_err(|e| BlobError::Io(self.key.as_str().to_owned(), e))
        })
    }

    fn sync(&mut self) -> BoxFuture<'_, Result<(), BlobError>> {
        Box::pin(async move {
            let io = |e| BlobError::Io(self.key.as_str().to_owned(), e);
            self.file.flush().await.map_err(io)?;
            self.file.sync_data().await.map_err(io)?;
            // The first sync also makes the new file's name durable (and its directory's).
            if let Some(dir) = self.dir.take() {
                for d in [Some(dir.as_path()), dir.parent()].into_iter().flatten() {
                    if let Ok(d) = tokio::fs::File::open(d).await {
                        d.sync_all().await.map_err(io)?;
                    }
                }
            }
            Ok(())
        })
    }
}

impl BlobStore for LocalBlobs {
    fn put(&self, key: BlobKey, data: Source) -> BoxFuture<'_, Result<u64, BlobError>> {
        Box::pin(self.write(key, data))
    }

    fn get(&self, key: BlobKey, range: Range<u64>) -> BoxFuture<'_, Result<Sink, BlobError>> {
        Box::pin(self.read(key, range))
    }

    fn delete(&self, key: BlobKey) -> BoxFuture<'_, Result<(), BlobError>> {
        Box::pin(self.remove(key))
    }

    fn append(&self, key: BlobKey) -> BoxFuture<'_, Result<Option<Box<dyn Appender>>, BlobError>> {
        Box::pin(self.open_append(key))
    }

    fn delete_file(&self, file: crate::domain::FileId) -> BoxFuture<'_, Result<(), BlobError>> {
        Box::pin(self.remove_file(file))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Listed>, BlobError>> {
        Box::pin(self.list_all())
    }
}

/// Fails the stream with [`BlobError::Truncated`] if it ends before `want` bytes.
fn exact_length(
    inner: impl futures::Stream<Item = Result<Bytes, BlobError>> + Send + 'static,
    key: BlobKey,
    want: u64,
) -> Sink {
    let mut seen = 0u64;
    let mut done = false;
    let checked = inner
        .map(Some)
        .chain(futures::stream::once(async { None }))
        .filter_map(move |item| {
            let out = match item {
                Some(Ok(bytes)) => {
                    seen += bytes.len() as u64;
                    Some(Ok(bytes))
                }
                Some(Err(e)) => Some(Err(e)),
                None if !done && seen < want => Some(Err(BlobError::Truncated(key.0.clone()))),
                None => None,
            };
            done = done || out.is_none();
            futures::future::ready(out)
        });
    checked.boxed()
}

/// Blobs in an object store (S3 and compatible services).
pub struct ObjectBlobs {
    store: Arc<dyn object_store::ObjectStore>,
}

impl ObjectBlobs {
    /// A store over any `object_store` implementation.
    pub fn new(store: Arc<dyn object_store::ObjectStore>) -> ObjectBlobs {
        ObjectBlobs { store }
    }

    /// An S3-compatible bucket from the configuration.
    pub fn s3(config: &crate::config::S3Config) -> Result<ObjectBlobs, BlobError> {
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_region(config.region.as_deref().unwrap_or("us-east-1"))
            .with_allow_http(config.allow_http);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(id) = &config.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret.expose());
        }
        let store = builder
            .build()
            .map_err(|e| BlobError::Config(e.to_string()))?;
        Ok(ObjectBlobs::new(Arc::new(store)))
    }

    async fn write(&self, key: BlobKey, mut data: Source) -> Result<u64, BlobError> {
        let path = object_store::path::Path::from(key.as_str());
        let mut writer = object_store::buffered::BufWriter::new(self.store.clone(), path);
        let mut written = 0u64;
        let result = async {
            while let Some(piece) = data.next().await {
                let piece = piece.map_err(BlobError::Source)?;
                written += piece.len() as u64;
                writer.put(piece).await?;
            }
            writer
                .shutdown()
                .await
                .map_err(|e| BlobError::Io(key.as_str().to_owned(), e))?;
            Ok::<_, BlobError>(())
        }
        .await;
        if let Err(err) = result {
            let _ = writer.abort().await;
            return Err(err);
        }
        Ok(written)
    }

    async fn read(&self, key: BlobKey, range: Range<u64>) -> Result<Sink, BlobError> {
        let path = object_store::path::Path::from(key.as_str());
        let want = range.end.saturating_sub(range.start);
        let options = object_store::GetOptions {
            range: Some(object_store::GetRange::Bounded(range)),
            ..Default::default()
        };
        let found = match self.store.get_opts(&path, options).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(BlobError::NotFound(key.as_str().to_owned()))
            }
            Err(e) => return Err(e.into()),
        };
        let stream = found.into_stream().map_err(BlobError::from);
        Ok(exact_length(stream, key, want))
    }

    async fn remove(&self, key: BlobKey) -> Result<(), BlobError> {
        let path = object_store::path::Path::from(key.as_str());
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn list_prefix(&self, prefix: &str) -> Result<Vec<Listed>, BlobError> {
        let prefix = object_store::path::Path::from(prefix);
        let metas: Vec<object_store::ObjectMeta> =
            self.store.list(Some(&prefix)).try_collect().await?;
        Ok(metas
            .into_iter()
            .map(|m| {
                let key = m.location.to_string();
                Listed {
                    file: file_of(&key),
                    partial: false,
                    key: BlobKey(key),
                    modified: m.last_modified.into(),
                }
            })
            .collect())
    }

    async fn remove_file(&self, file: crate::domain::FileId) -> Result<(), BlobError> {
        for blob in self.list_prefix(&format!("files/{file}")).await? {
            self.remove(blob.key).await?;
        }
        Ok(())
    }
}

impl BlobStore for ObjectBlobs {
    fn put(&self, key: BlobKey, data: Source) -> BoxFuture<'_, Result<u64, BlobError>> {
        Box::pin(self.write(key, data))
    }

    fn get(&self, key: BlobKey, range: Range<u64>) -> BoxFuture<'_, Result<Sink, BlobError>> {
        Box::pin(self.read(key, range))
    }

    fn delete(&self, key: BlobKey) -> BoxFuture<'_, Result<(), BlobError>> {
        Box::pin(self.remove(key))
    }

    fn delete_file(&self, file: crate::domain::FileId) -> BoxFuture<'_, Result<(), BlobError>> {
        Box::pin(self.remove_file(file))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Listed>, BlobError>> {
        Box::pin(self.list_prefix("files"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn round_trip(store: &dyn BlobStore) {
        let key = BlobKey::segment(crate::domain::FileId::generate(), 0);
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let pieces: Vec<Result<Bytes, io::Error>> = data
            .chunks(70_000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let n = store
            .put(key.clone(), futures::stream::iter(pieces).boxed())
            .await
            .unwrap();
        assert_eq!(n, data.len() as u64);
        let read: Vec<Bytes> = store
            .get(key.clone(), 1000..250_000)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(read.concat(), &data[1000..250_000]);
        let past_end = match store.get(key.clone(), 299_000..300_001).await {
            Ok(s) => s.try_collect::<Vec<Bytes>>().await.map(|_| ()),
            Err(e) => Err(e),
        };
        assert!(past_end.is_err(), "a range past the end is an error");
        store.delete(key.clone()).await.unwrap();
        store.delete(key.clone()).await.unwrap();
        assert!(matches!(
            store.get(key, 0..1).await,
            Err(BlobError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn local_blobs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        round_trip(&LocalBlobs::new(dir.path().join("blobs")).unwrap()).await;
    }

    #[tokio::test]
    async fn object_store_blobs_round_trip() {
        // The same code path the S3 backend uses, over object_store's in-memory store.
        let store = ObjectBlobs::new(Arc::new(object_store::memory::InMemory::new()));
        round_trip(&store).await;
    }
}
