//! Reading a byte range of a file back: fetch the sealed chunks that cover it from the blob
//! store, open (authenticate and decrypt) them a batch at a time on the blocking pool, and
//! stream the plaintext. Memory stays bounded by a few batches whatever the file's size.
//! Anything that does not authenticate, or a segment shorter than the database says, ends
//! the stream with an error: a damaged file is never served as different bytes.

use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};
use tokio::sync::mpsc;

use super::blob::{BlobError, BlobKey, BlobStore};
use super::cipher::{self, ContentKey, Layout, CHUNK_BYTES, OVERHEAD};
use crate::domain::FileId;
use crate::store::files::SegmentRecord;

/// Sealed chunks opened per trip to the blocking pool.
const BATCH: usize = 16;

/// Why a read stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Stored data failed authentication or does not match its records.
    #[error(transparent)]
    Corrupt(#[from] cipher::Corrupt),
    /// The blob store failed (a missing or truncated blob included).
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A task died.
    #[error("reading task failed: {0}")]
    Task(String),
}

/// A file's stored contents: what is needed to read them.
#[derive(Clone)]
pub struct Contents {
    /// The file.
    pub file: FileId,
    /// Its content key.
    pub key: ContentKey,
    /// Its chunk layout.
    pub layout: Layout,
    /// Its segments in order.
    pub segments: Vec<SegmentRecord>,
    /// Where they are.
    pub blobs: Arc<dyn BlobStore>,
}

/// Plaintext bytes as they are read.
pub type Plaintext = BoxStream<'static, Result<Bytes, ReadError>>;

impl Contents {
    /// Checks that the segments cover every chunk once, in order, with the right lengths.
    fn check(&self) -> Result<(), cipher::Corrupt> {
        let mut expect = 0u64;
        for s in &self.segments {
            let (first, chunks) = (s.first_chunk as u64, s.chunks as u64);
            let bytes: u64 = (first..first + chunks)
                .map(|i| self.layout.sealed_len(i))
                .sum();
            if first != expect || chunks == 0 || s.bytes as u64 != bytes {
                return Err(cipher::Corrupt(format!("segment {} does not fit", s.seq)));
            }
            expect += chunks;
        }
        if expect != self.layout.chunks() {
            return Err(cipher::Corrupt("segments do not cover the file".into()));
        }
        Ok(())
    }

    /// Streams the plaintext bytes of `range` (which must lie within the file).
    pub fn read(&self, range: Range<u64>) -> Plaintext {
        let (sender, receiver) = mpsc::channel::<Result<Bytes, ReadError>>(4);
        let this = self.clone();
        // Owned by the stream: it ends when the reader is dropped (a send fails).
        tokio::spawn(async move {
            if let Err(err) = this.produce(range, &sender).await {
                let _ = sender.send(Err(err)).await;
            }
        });
        futures::stream::unfold(receiver, |mut r| async move {
            r.recv().await.map(|item| (item, r))
        })
        .boxed()
    }

    async fn produce(
        &self,
        range: Range<u64>,
        out: &mpsc::Sender<Result<Bytes, ReadError>>,
    ) -> Result<(), ReadError> {
        self.check()?;
        if range.start >= range.end {
            return Ok(());
        }
        let first = range.start / CHUNK_BYTES;
        let last = (range.end - 1) / CHUNK_BYTES;
        for seg in &self.segments {
            let (sf, sc) = (seg.first_chunk as u64, seg.chunks as u64);
            let lo = first.max(sf);
            let hi = last.min(sf + sc - 1);
            if lo > hi {
                continue;
            }
            // Only the file's last chunk is short, and it ends its segment.
            let start = (lo - sf) * (CHUNK_BYTES + OVERHEAD);
            let len: u64 = (lo..=hi).map(|i| self.layout.sealed_len(i)).sum();
            let key = BlobKey::segment(self.file, seg.seq);
            let mut bytes = self.blobs.get(key, start..start + len).await?;
            let mut buffer = BytesMut::new();
            let mut index = lo;
            let mut batch: Vec<(u64, Bytes)> = Vec::with_capacity(BATCH);
            while index <= hi {
                let need = self.layout.sealed_len(index) as usize;
                if buffer.len() >= need {
                    batch.push((index, buffer.split_to(need).freeze()));
                    index += 1;
                    if (batch.len() == BATCH || index > hi)
                        && !self
                            .open_batch(std::mem::take(&mut batch), &range, out)
                            .await?
                    {
                        return Ok(());
                    }
                    continue;
                }
                match bytes.next().await {
                    Some(piece) => buffer.extend_from_slice(&piece?),
                    None => {
                        return Err(
                            cipher::Corrupt(format!("segment {} ended early", seg.seq)).into()
                        )
                    }
                }
            }
        }
        Ok(())
    }

    /// Opens a batch and sends the part of each chunk inside `range`; false once the reader
    /// is gone.
    async fn open_batch(
        &self,
        batch: Vec<(u64, Bytes)>,
        range: &Range<u64>,
        out: &mpsc::Sender<Result<Bytes, ReadError>>,
    ) -> Result<bool, ReadError> {
        let key = self.key.clone();
        let file = self.file;
        let layout = self.layout;
        let opened = tokio::task::spawn_blocking(move || {
            batch
                .into_iter()
                .map(|(i, sealed)| {
                    cipher::open_chunk(&key, file, i, layout.is_last(i), &sealed).map(|p| (i, p))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| ReadError::Task(e.to_string()))??;
        for (index, plain) in opened {
            let at = index * CHUNK_BYTES;
            let from = range.start.saturating_sub(at) as usize;
            let to = ((range.end - at) as usize).min(plain.len());
            if from >= to {
                continue;
            }
            let mut plain = plain;
            plain.truncate(to);
            let piece = Bytes::from(plain).slice(from..);
            if out.send(Ok(piece)).await.is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
