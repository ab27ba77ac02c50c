//! Sealing an incoming byte stream into one blob segment of encrypted chunks.
//!
//! The writer cuts the stream into chunks, seals a batch of them at a time on the blocking
//! pool, and feeds the sealed bytes to the blob store as they are ready, so an upload of any
//! size holds at most a few batches in memory. Only whole chunks go to the blob; bytes after
//! the last whole chunk come back as the new tail, which the caller keeps encrypted until
//! the next request continues the upload. A source that fails (a client that disconnects)
//! does not lose what already arrived: the chunks sealed so far are kept.
//!
//! A job with a [`Checkpoint`] (a resumable upload) appends to its segment in place where
//! the blob store allows it: after each batch of whole chunks is written and synced, the
//! checkpoint records them, so a server killed mid-request loses only what arrived since
//! the last batch (at most [`BATCH`] chunks, 1 MiB) and the upload resumes from there.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{Stream, StreamExt};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use super::blob::{Appender, BlobError, BlobKey, BlobStore};
use super::cipher::{self, ContentKey, Layout, CHUNK_BYTES};
use crate::domain::FileId;

/// Chunks sealed per trip to the blocking pool (1 MiB of plaintext), and per checkpoint.
pub const BATCH: usize = 16;

/// Records that the segment's first `chunks` whole chunks (`sealed_bytes` bytes) are
/// durable in the blob store; an error stops the write.
pub type Checkpoint =
    Box<dyn FnMut(u64, u64) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// What to write.
pub struct SealJob {
    /// The file.
    pub file: FileId,
    /// Its content key.
    pub key: ContentKey,
    /// Where the segment goes.
    pub blobs: Arc<dyn BlobStore>,
    /// The segment's blob key.
    pub segment: BlobKey,
    /// Index of the first chunk this segment holds.
    pub first_chunk: u64,
    /// Plaintext received earlier that did not fill a chunk; it comes first.
    pub tail: Zeroizing<Vec<u8>>,
    /// The file's length if known up front (resumable uploads declare it).
    pub size: Option<u64>,
    /// The most bytes the whole file may have (when its length is not known up front).
    pub limit: u64,
    /// How long the source may send nothing before it counts as failed.
    pub idle: Duration,
    /// Called after each durable batch, if the segment can be appended to in place.
    pub checkpoint: Option<Checkpoint>,
}

/// How the source ended.
#[derive(Debug)]
pub enum Ended {
    /// It ended normally.
    Complete,
    /// It failed or went idle; what arrived before is kept.
    Failed(io::Error),
}

/// Why nothing could be kept.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// More bytes than the file may have.
    #[error("more than {0} bytes")]
    TooLong(u64),
    /// Sealing failed.
    #[error(transparent)]
    Cipher(#[from] cipher::Corrupt),
    /// The blob store failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A task died.
    #[error("sealing task failed: {0}")]
    Task(String),
    /// Recording progress failed.
    #[error("recording progress failed: {0}")]
    Checkpoint(String),
}

/// What was written.
#[derive(Debug)]
pub struct Sealed {
    /// Whole chunks written to the segment (0: no segment was written).
    pub chunks: u64,
    /// Bytes of the segment.
    pub sealed_bytes: u64,
    /// Plaintext bytes of the file received so far, this request and before.
    pub received: u64,
    /// Plaintext after the last whole chunk.
    pub tail: Zeroizing<Vec<u8>>,
    /// How the source ended.
    pub ended: Ended,
}

struct Pending {
    index: u64,
    last: bool,
    plain: Zeroizing<Vec<u8>>,
}

/// Seals `source` into the job's segment.
pub async fn seal_stream<S, E>(mut job: SealJob, mut source: S) -> Result<Sealed, SealError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
    E: std::fmt::Display,
{
    let base = job.first_chunk * CHUNK_BYTES;
    let limit = job.size.unwrap_or(job.limit);
    let mut buffer: Zeroizing<Vec<u8>> = job.tail.clone();
    let mut next = job.first_chunk;
    let mut batch: Vec<Pending> = Vec::with_capacity(BATCH);
    let mut out = Output::new(job.checkpoint.take());
    let layout = job.size.map(|size| Layout { size });
    let mut ended = Ended::Complete;
    let mut received = base + buffer.len() as u64;
    loop {
        // Whole chunks ready in the buffer.
        loop {
            let (len, last) = match layout {
                Some(l) if next < l.chunks() => (l.plain_len(next), l.is_last(next)),
                Some(_) => break,
                // Unknown length: a chunk is known not to be the last once more follows it.
                None if buffer.len() as u64 > CHUNK_BYTES => (CHUNK_BYTES, false),
                None => break,
            };
            if (buffer.len() as u64) < len {
                break;
            }
            let rest = Zeroizing::new(buffer.split_off(len as usize));
            let plain = std::mem::replace(&mut buffer, rest);
            batch.push(Pending {
                index: next,
                last,
                plain,
            });
            next += 1;
            if batch.len() == BATCH {
                out.send(&job, std::mem::take(&mut batch)).await?;
            }
        }
        let piece = match tokio::time::timeout(job.idle, source.next()).await {
            Ok(Some(Ok(piece))) => piece,
            Ok(Some(Err(e))) => {
                ended = Ended::Failed(io::Error::other(e.to_string()));
                break;
            }
            Ok(None) => break,
            Err(_) => {
                ended = Ended::Failed(io::Error::new(io::ErrorKind::TimedOut, "idle"));
                break;
            }
        };
        if received + piece.len() as u64 > limit {
            out.abort(&job).await;
            return Err(SealError::TooLong(limit));
        }
        received += piece.len() as u64;
        buffer.extend_from_slice(&piece);
    }
    if layout.is_none() && matches!(ended, Ended::Complete) {
        // The source ended: what is left is the last chunk (empty for an empty file).
        batch.push(Pending {
            index: next,
            last: true,
            plain: std::mem::take(&mut buffer),
        });
        next += 1;
    }
    if !batch.is_empty() {
        out.send(&job, batch).await?;
    }
    let sealed_bytes = out.finish().await?;
    let chunks = next - job.first_chunk;
    Ok(Sealed {
        chunks,
        sealed_bytes,
        received,
        tail: buffer,
        ended,
    })
}

/// The segment being written: started with the first sealed batch, either appended to in
/// place (with checkpoints) or streamed whole to the blob store.
struct Output {
    sender: Option<mpsc::Sender<Result<Bytes, io::Error>>>,
    task: Option<tokio::task::JoinHandle<Result<u64, BlobError>>>,
    checkpoint: Option<Checkpoint>,
    appender: Option<Box<dyn Appender>>,
    /// Whole chunks and sealed bytes written so far.
    chunks: u64,
    bytes: u64,
}

impl Output {
    fn new(checkpoint: Option<Checkpoint>) -> Output {
        Output {
            sender: None,
            task: None,
            checkpoint,
            appender: None,
            chunks: 0,
            bytes: 0,
        }
    }

    async fn send(&mut self, job: &SealJob, batch: Vec<Pending>) -> Result<(), SealError> {
        let count = batch.len() as u64;
        let sealed = Self::seal(job, batch).await?;
        let len = sealed.len() as u64;
        if self.checkpoint.is_some() && self.sender.is_none() && self.appender.is_none() {
            self.appender = job.blobs.append(job.segment.clone()).await?;
        }
        if let Some(appender) = &mut self.appender {
            appender.write(sealed).await?;
            self.chunks += count;
            self.bytes += len;
            appender.sync().await?;
            if let Some(checkpoint) = &mut self.checkpoint {
                checkpoint(self.chunks, self.bytes)
                    .await
                    .map_err(SealError::Checkpoint)?;
            }
            return Ok(());
        }
        self.chunks += count;
        self.bytes += len;
        self.stream(job, sealed).await
    }

    async fn seal(job: &SealJob, batch: Vec<Pending>) -> Result<Bytes, SealError> {
        let key = job.key.clone();
        let file = job.file;
        let sealed = tokio::task::spawn_blocking(move || {
            let total: usize = batch.iter().map(|p| p.plain.len()).sum();
            let mut out = Vec::with_capacity(total + batch.len() * cipher::OVERHEAD as usize);
            for p in &batch {
                cipher::seal_chunk(&key, file, p.index, p.last, &p.plain, &mut out)?;
            }
            Ok::<_, cipher::Corrupt>(Bytes::from(out))
        })
        .await
        .map_err(|e| SealError::Task(e.to_string()))??;
        Ok(sealed)
    }

    async fn stream(&mut self, job: &SealJob, sealed: Bytes) -> Result<(), SealError> {
        if self.sender.is_none() {
            let (sender, receiver) = mpsc::channel::<Result<Bytes, io::Error>>(4);
            let blobs = job.blobs.clone();
            let segment = job.segment.clone();
            let source = futures::stream::unfold(receiver, |mut r| async move {
                r.recv().await.map(|item| (item, r))
            })
            .boxed();
            // Owned by this writer: awaited in `finish`, or ended by `abort`.
            self.task = Some(tokio::spawn(
                async move { blobs.put(segment, source).await },
            ));
            self.sender = Some(sender);
        }
        let delivered = match &self.sender {
            Some(sender) => sender.send(Ok(sealed)).await.is_ok(),
            None => false,
        };
        if !delivered {
            // The store stopped taking data; its own error says why.
            self.sender = None;
            return match self.task.take() {
                Some(task) => match task.await {
                    Ok(Err(e)) => Err(e.into()),
                    Ok(Ok(_)) => Err(SealError::Task("blob store stopped early".into())),
                    Err(e) => Err(SealError::Task(e.to_string())),
                },
                None => Err(SealError::Task("no blob writer".into())),
            };
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<u64, SealError> {
        if let Some(mut appender) = self.appender.take() {
            appender.sync().await?;
            return Ok(self.bytes);
        }
        self.sender = None;
        match self.task.take() {
            Some(task) => Ok(task.await.map_err(|e| SealError::Task(e.to_string()))??),
            None => Ok(0),
        }
    }

    /// Makes the blob store discard the partial segment (a segment appended to in place
    /// keeps what its checkpoints recorded).
    async fn abort(&mut self, job: &SealJob) {
        if self.appender.take().is_some() && self.chunks == 0 {
            let _ = job.blobs.delete(job.segment.clone()).await;
        }
        if let Some(sender) = self.sender.take() {
            let _ = sender.send(Err(io::Error::other("upload refused"))).await;
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
