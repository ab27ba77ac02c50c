//! Search: an encrypted full-text index per workspace, kept current from the `events` bus, and
//! queried with Slack-like syntax filtered by what the searcher may read at that moment.
//!
//! - `encrypted_dir` (crate `concord-search-index`, `crates/search-index`): the tantivy
//!   `Directory` that encrypts every index file in chunks under the workspace's index key (a
//!   data key of scope `search:<workspace>` from the keyring).
//! - `analyzer` (same crate): English stems, CJK bigrams, case, width and accent folding.
//! - `index.rs`: one workspace's index (schema, updates, queries, snippets).
//! - `query.rs`: the query syntax.
//! - this file: [`SearchService`], which owns the open indexes; `indexer.rs`: the indexer
//!   task that applies committed events (messages posted, edited, deleted: within a fraction
//!   of a second; documents: title and plain text once edits have settled for
//!   [`DOCUMENT_SETTLE`]; files: name and, for text, the first
//!   [`crate::files::INDEXED_TEXT_BYTES`] once shared); `rebuild.rs`: rebuilds from the
//!   database (resumable: progress is recorded in the encrypted commit payload);
//!   `request.rs`: answers `GET /api/v1/workspaces/{id}/search`; `commits.rs`: when the
//!   indexer commits (on a timer or a size, not per event; a query first commits what is
//!   pending in its workspace, so it finds what was just written); `discovery.rs`: the
//!   keyword search of eDiscovery (`ediscovery.read`: the whole workspace, not only what
//!   the searcher may read).
//! - `writer.rs`: an index's writer, opened by its first change and closed by the indexer
//!   once the index has had nothing to commit for [`WRITER_IDLE`] (an open writer holds
//!   threads and a queue of its own; an idle workspace needs neither).
//! - `entries.rs`: index entries made from what `docs` and `files` expose
//!   ([`crate::docs::IndexableDocument`], [`crate::files::IndexableFile`]): search depends on
//!   them, never the reverse; startup hands it both services when it builds it.
//!
//! Invariants: the index is derived data and may be deleted at any time (the next start
//! rebuilds it while the server answers with `index.state = "rebuilding"`); permissions are
//! never stored in it: every query is restricted to the channels `rbac::readable_channels`
//! allows now, so counts cannot reveal what the searcher may not see (eDiscovery's, in
//! `discovery.rs`, covers the whole workspace for holders of `ediscovery.read` only); nothing outside the
//! encrypted directory holds indexed text.
//!
//! Entries carry a `kind` and a `scope`: messages and files (`c:<channel>`, filtered with
//! `rbac::readable_channels`, the rule a file download is authorized with) and documents
//! (`d:<document>`, filtered with `rbac::readable_documents`). A new kind needs an `upsert_*`
//! in `index.rs`, its scope in the filter of [`SearchService::search`], its events applied in
//! `apply` and its rows read back in `rebuild_inner`.
//!
//! `from:@` and `in:@` name people by id, email, display name or the part of their email
//! before the `@`, resolved among the workspace's members only (`directory.rs`: an account
//! outside the workspace is as unknown as one that does not exist; profiles are decrypted once
//! per change, not once per query).

mod commits;
mod directory;
mod discovery;
mod entries;
pub mod index;
mod indexer;
pub mod query;
mod rebuild;
mod request;
mod writer;

use concord_search_index::analyzer;
pub use concord_search_index::encrypted_dir;

pub use analyzer::{analyzer, terms};
pub use commits::CommitPolicy;
pub use discovery::{DiscoveryHit, DiscoveryHits, DiscoveryQuery};
pub use index::{
    DocumentEntry, FileEntry, Filters, Hit, Hits, MessageEntry, WorkspaceIndex, READY,
};
pub use rebuild::Rebuilt;
pub use request::{IndexStatus, SearchPage, SearchRequest, SearchResult};

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::audit::Auditor;
use crate::crypto::{CryptoError, Keyring};
use crate::docs::DocService;
use crate::domain::{ChannelId, UserId, WorkspaceId};
use crate::error::Error;
use crate::files::FileService;
use crate::policy::PolicyService;
use crate::store::{Store, StoreError};
use encrypted_dir::{ChunkCache, IndexKeys};

/// A document is re-indexed once no edit arrived for this long (not on every keystroke).
pub const DOCUMENT_SETTLE: Duration = Duration::from_secs(2);
/// An index's writer is closed once the index has had nothing to commit for this long.
pub const WRITER_IDLE: Duration = Duration::from_secs(60);
/// Why search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query is malformed.
    #[error(transparent)]
    Query(#[from] query::QueryError),
    /// The index could not be read or written.
    #[error("search index: {0}")]
    Index(String),
    /// Keys for the index are unavailable.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SearchError> for Error {
    fn from(err: SearchError) -> Self {
        match err {
            SearchError::Query(q) => Error::Invalid(crate::domain::ParseError {
                field: "q",
                message: q.to_string(),
            }),
            SearchError::Store(e) => Error::Store(e),
            other => Error::Internal(other.to_string()),
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    done: u64,
    total: u64,
}

struct OpenIndex {
    index: Arc<WorkspaceIndex>,
    /// Ids changed by live events while a rebuild runs: the rebuild must not overwrite them
    /// with what it read earlier.
    touched: Mutex<Option<HashSet<String>>>,
}

struct Inner {
    store: Store,
    keyring: Keyring,
    auditor: Auditor,
    root: PathBuf,
    /// Decrypted index chunks, shared by every workspace's index.
    cache: ChunkCache,
    indexes: tokio::sync::Mutex<HashMap<WorkspaceId, Arc<OpenIndex>>>,
    rebuilding: Mutex<HashMap<WorkspaceId, Progress>>,
    /// Queries' requests to the running indexer (see [`commits::Flush`]).
    flush: Mutex<Option<mpsc::Sender<commits::Flush>>>,
    /// Documents' titles and text, read through their service.
    docs: DocService,
    /// Files' names and text, read (decrypted) through their service.
    files: FileService,
    /// Which results are PHI whose reads are audited (`phi.audit_reads`).
    policies: PolicyService,
    /// Members' names as `from:@`/`in:@` compare them.
    directory: directory::Directory,
}

/// Search over every workspace's index; cheap to clone.
#[derive(Clone)]
pub struct SearchService {
    inner: Arc<Inner>,
}

impl SearchService {
    /// A service keeping its indexes under `root` (one folder per workspace) and at most
    /// `cache_bytes` of their decrypted chunks in memory; it indexes documents and files
    /// through `docs` and `files`.
    pub fn new(
        store: Store,
        auditor: Auditor,
        root: PathBuf,
        cache_bytes: usize,
        docs: DocService,
        files: FileService,
        policies: PolicyService,
    ) -> SearchService {
        SearchService {
            inner: Arc::new(Inner {
                store,
                keyring: auditor.keyring().clone(),
                auditor,
                root,
                cache: ChunkCache::new(cache_bytes),
                indexes: tokio::sync::Mutex::new(HashMap::new()),
                rebuilding: Mutex::new(HashMap::new()),
                flush: Mutex::new(None),
                docs,
                files,
                policies,
                directory: directory::Directory::new(),
            }),
        }
    }

    /// The folder of `workspace`'s index.
    pub fn folder(&self, workspace: WorkspaceId) -> PathBuf {
        self.inner.root.join(workspace.to_string())
    }

    async fn keys(&self, workspace: WorkspaceId) -> Result<IndexKeys, SearchError> {
        let (current, keys) = self
            .inner
            .keyring
            .search_keys(&self.inner.store, workspace)
            .await?;
        Ok(IndexKeys::new(current, keys))
    }

    async fn open(&self, workspace: WorkspaceId) -> Result<Arc<OpenIndex>, SearchError> {
        let mut indexes = self.inner.indexes.lock().await;
        if let Some(open) = indexes.get(&workspace) {
            return Ok(open.clone());
        }
        let keys = self.keys(workspace).await?;
        let folder = self.folder(workspace);
        let cache = self.inner.cache.clone();
        let index = tokio::task::spawn_blocking(move || WorkspaceIndex::open(&folder, keys, cache))
            .await
            .map_err(|e| SearchError::Index(e.to_string()))??;
        let open = Arc::new(OpenIndex {
            index: Arc::new(index),
            touched: Mutex::new(None),
        });
        indexes.insert(workspace, open.clone());
        Ok(open)
    }

    /// Removes every entry of a channel (its deletion, or a retention sweep).
    pub async fn remove_channel(
        &self,
        workspace: WorkspaceId,
        channel: ChannelId,
    ) -> Result<(), SearchError> {
        let open = self.open(workspace).await?;
        open.index.delete_scope(&format!("c:{channel}"))?;
        let index = open.index.clone();
        tokio::task::spawn_blocking(move || index.commit())
            .await
            .map_err(|e| SearchError::Index(e.to_string()))?
    }

    /// Removes every entry `author` made in `workspace` (a restriction of processing).
    pub async fn remove_author(
        &self,
        workspace: WorkspaceId,
        author: UserId,
    ) -> Result<(), SearchError> {
        let open = self.open(workspace).await?;
        open.index.delete_author(&author.to_string())?;
        let index = open.index.clone();
        tokio::task::spawn_blocking(move || index.commit())
            .await
            .map_err(|e| SearchError::Index(e.to_string()))?
    }

    /// Rewrites `workspace`'s index without its deleted entries (after an erasure), so their
    /// text is gone from the index's files, not only from results.
    pub async fn purge_deleted(&self, workspace: WorkspaceId) -> Result<(), SearchError> {
        let open = self.open(workspace).await?;
        let index = open.index.clone();
        tokio::task::spawn_blocking(move || index.purge_deleted())
            .await
            .map_err(|e| SearchError::Index(e.to_string()))?
    }

    /// Closes the writers of open indexes unused for `idle` with nothing to commit.
    pub(crate) async fn close_idle_writers(&self, idle: Duration) {
        let open: Vec<(WorkspaceId, Arc<WorkspaceIndex>)> = self
            .inner
            .indexes
            .lock()
            .await
            .iter()
            .map(|(workspace, open)| (*workspace, open.index.clone()))
            .collect();
        for (workspace, index) in open {
            match tokio::task::spawn_blocking(move || index.close_writer_if_idle(idle)).await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => {
                    tracing::warn!(%workspace, error = %err, "search: closing an idle writer failed")
                }
                Err(err) => {
                    tracing::warn!(%workspace, error = %err, "search: closing an idle writer panicked")
                }
            }
        }
    }

    /// The index's state for `workspace`.
    pub fn status(&self, workspace: WorkspaceId) -> IndexStatus {
        match self
            .inner
            .rebuilding
            .lock()
            .ok()
            .and_then(|r| r.get(&workspace).copied())
        {
            Some(p) => IndexStatus {
                state: "rebuilding".into(),
                indexed: Some(p.done),
                total: Some(p.total),
            },
            None => IndexStatus {
                state: "ready".into(),
                indexed: None,
                total: None,
            },
        }
    }

    /// Commits and closes every open index (before storage closes).
    pub async fn close(&self) {
        let mut indexes = self.inner.indexes.lock().await;
        for (workspace, open) in indexes.drain() {
            let index = open.index.clone();
            if let Ok(Err(err)) = tokio::task::spawn_blocking(move || index.commit()).await {
                tracing::error!(%workspace, error = %err, "search: final commit failed");
            }
        }
    }

    /// Where indexes live under a data directory.
    pub fn default_root(data_dir: &Path) -> PathBuf {
        data_dir.join("search")
    }
}
