//! Search: an encrypted full-text index per workspace, kept current from the `events` bus, and
//! queried with Slack-like syntax filtered by what the searcher may read at that moment.
//!
//! - `encrypted_dir` (crate `concord-search-index`, `crates/search-index`): the tantivy
//!   `Directory` that encrypts every index file in chunks under the workspace's index key (a
//!   data key of scope `search:<workspace>` from the keyring).
//! - `analyzer` (same crate): English stems, CJK bigrams, case, width and accent folding.
//! - `index.rs`: one workspace's index (schema, updates, queries, snippets).
//! - `query.rs`: the query syntax.
//! - this file: [`SearchService`], which owns the open indexes, the indexer task that applies
//!   committed events (messages posted, edited, deleted: within a fraction of a second;
//!   documents: title and plain text once edits have settled for [`DOCUMENT_SETTLE`];
//!   files: name and, for text, the first [`crate::files::INDEXED_TEXT_BYTES`] once shared),
//!   rebuilds from the database (resumable: progress is recorded in the encrypted commit
//!   payload), and answers `GET /api/v1/workspaces/{id}/search`.
//! - `entries.rs`: index entries made from what `docs` and `files` expose
//!   ([`crate::docs::IndexableDocument`], [`crate::files::IndexableFile`]): search depends on
//!   them, never the reverse; startup hands it both services when it builds it.
//!
//! Invariants: the index is derived data and may be deleted at any time (the next start
//! rebuilds it while the server answers with `index.state = "rebuilding"`); permissions are
//! never stored in it: every query is restricted to the channels `rbac::readable_channels`
//! allows now, so counts cannot reveal what the searcher may not see; nothing outside the
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

mod directory;
mod entries;
pub mod index;
pub mod query;

use concord_search_index::analyzer;
pub use concord_search_index::encrypted_dir;

pub use analyzer::{analyzer, terms};
pub use index::{
    DocumentEntry, FileEntry, Filters, Hit, Hits, MessageEntry, WorkspaceIndex, READY,
};

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::audit::Auditor;
use crate::chat::MessageView;
use crate::crypto::{Aad, CryptoError, Keyring, Scope};
use crate::docs::DocService;
use crate::domain::{ChannelId, DocumentId, FileId, MessageId, UserId, WorkspaceId};
use crate::error::Error;
use crate::events::{DocumentChange, DomainEvent, Events, RecvError, Subscription, TryRecvError};
use crate::files::FileService;
use crate::rbac::{self, Action, Actor, Resource};
use crate::store::{search as store_search, Store, StoreError};
use encrypted_dir::{ChunkCache, IndexKeys};

/// Messages read from the database per rebuild step (one commit each).
const REBUILD_BATCH: i64 = 2000;
/// Most results per page.
const MAX_LIMIT: usize = 100;
/// How long a query waits for the indexer to apply what was already committed.
const FRESHNESS_WAIT: Duration = Duration::from_secs(1);
/// A document is re-indexed once no edit arrived for this long (not on every keystroke).
pub const DOCUMENT_SETTLE: Duration = Duration::from_secs(2);
/// The commit payload once messages and files are rebuilt but documents still have to be
/// (an interrupted rebuild resumes there).
const DOCUMENTS_PENDING: &str = "documents";

/// What a rebuild wrote: the entries this run added (a resumed run counts only its part).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rebuilt {
    /// Workspace indexes rebuilt.
    pub workspaces: usize,
    /// Messages indexed.
    pub messages: u64,
    /// Documents indexed.
    pub documents: u64,
    /// Files indexed.
    pub files: u64,
}

impl std::ops::AddAssign for Rebuilt {
    fn add_assign(&mut self, other: Rebuilt) {
        self.workspaces += other.workspaces;
        self.messages += other.messages;
        self.documents += other.documents;
        self.files += other.files;
    }
}

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

/// A search request, as parsed at the edge.
#[derive(Clone, Debug)]
pub struct SearchRequest {
    /// The workspace searched.
    pub workspace: WorkspaceId,
    /// The query text.
    pub q: String,
    /// Newest first instead of best match first.
    pub by_date: bool,
    /// Results per page.
    pub limit: Option<usize>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
}

/// One result with what a client needs to show it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SearchResult {
    /// `message`, `document` or `file`.
    pub kind: String,
    /// The message, document or file id.
    pub id: String,
    /// The document's title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The file's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The file's content type, detected from its bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The file's length in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The message the file was posted with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The message's or file's channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    /// The channel's name (none for conversations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_name: Option<String>,
    /// `public`, `private`, `direct` or `group`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_kind: Option<String>,
    /// The message's author, the document's creator, or who shared the file.
    pub author_id: String,
    /// Thread root, for replies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_root_id: Option<String>,
    /// Position in the channel (messages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// When the message was posted, the document last changed or the file shared.
    pub created_at: DateTime<Utc>,
    /// The matching passage as HTML: matches in `<b>`, everything else escaped.
    pub snippet_html: String,
}

/// The index's state, so a client can say results may be incomplete.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct IndexStatus {
    /// `ready`, or `rebuilding` (results are partial meanwhile).
    pub state: String,
    /// Messages indexed so far by the rebuild.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indexed: Option<u64>,
    /// Messages the rebuild will index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// A page of results.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SearchPage {
    /// Results, best first or newest first.
    pub results: Vec<SearchResult>,
    /// How many results match in all (only what the searcher may see).
    pub total: usize,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// Whether the index is complete.
    pub index: IndexStatus,
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
    flush: Mutex<Option<mpsc::Sender<oneshot::Sender<()>>>>,
    /// Documents' titles and text, read through their service.
    docs: DocService,
    /// Files' names and text, read (decrypted) through their service.
    files: FileService,
    /// Members' names as `from:@`/`in:@` compare them.
    directory: directory::Directory,
}

/// Search over every workspace's index; cheap to clone.
#[derive(Clone)]
pub struct SearchService {
    inner: Arc<Inner>,
}

fn flags_of(text: &str, thread: bool, reacted: bool, pinned: bool) -> Vec<&'static str> {
    let mut flags = Vec::new();
    let lower = text.to_lowercase();
    if lower.contains("http://") || lower.contains("https://") || lower.contains("www.") {
        flags.push("link");
    }
    if reacted {
        flags.push("reaction");
    }
    if pinned {
        flags.push("pin");
    }
    if thread {
        flags.push("thread");
    }
    flags
}

fn entry_of_view(m: &MessageView) -> MessageEntry {
    MessageEntry {
        id: m.id.to_string(),
        channel_id: m.channel_id.to_string(),
        author_id: m.author_id.to_string(),
        thread_root_id: m.thread_root_id.map(|r| r.to_string()),
        created_at_ms: m.created_at.timestamp_millis(),
        seq: m.seq,
        flags: flags_of(
            &m.text,
            m.thread_root_id.is_some() || m.reply_count > 0,
            !m.reactions.is_empty(),
            m.pinned,
        ),
        text: m.text.clone(),
    }
}

/// One change to apply: an entry to add or replace, or the id of one to remove.
enum Change {
    Message(Result<MessageEntry, String>),
    Document(Result<DocumentEntry, String>),
    File(Result<FileEntry, String>),
}

impl Change {
    fn id(&self) -> &str {
        match self {
            Change::Message(Ok(m)) => &m.id,
            Change::Document(Ok(d)) => &d.id,
            Change::File(Ok(f)) => &f.id,
            Change::Message(Err(id)) | Change::Document(Err(id)) | Change::File(Err(id)) => id,
        }
    }
}

/// Documents edited recently, indexed once their edits settle.
#[derive(Default)]
struct PendingDocuments {
    /// Workspace, first and last edit since the last indexing.
    docs: HashMap<DocumentId, (WorkspaceId, tokio::time::Instant, tokio::time::Instant)>,
}

/// A document edited without pause is still indexed this often.
const DOCUMENT_MAX_DELAY: Duration = Duration::from_secs(30);

impl PendingDocuments {
    fn edited(&mut self, document: DocumentId, workspace: WorkspaceId) {
        let now = tokio::time::Instant::now();
        let entry = self.docs.entry(document).or_insert((workspace, now, now));
        entry.2 = now;
    }

    fn due_at(first: tokio::time::Instant, last: tokio::time::Instant) -> tokio::time::Instant {
        (last + DOCUMENT_SETTLE).min(first + DOCUMENT_MAX_DELAY)
    }

    fn next_due(&self) -> Option<tokio::time::Instant> {
        self.docs
            .values()
            .map(|(_, first, last)| Self::due_at(*first, *last))
            .min()
    }

    fn take_due(&mut self) -> Vec<(DocumentId, WorkspaceId)> {
        let now = tokio::time::Instant::now();
        let due: Vec<(DocumentId, WorkspaceId)> = self
            .docs
            .iter()
            .filter(|(_, (_, first, last))| Self::due_at(*first, *last) <= now)
            .map(|(d, (w, _, _))| (*d, *w))
            .collect();
        for (d, _) in &due {
            self.docs.remove(d);
        }
        due
    }
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(3600)
}

fn cursor_offset(cursor: Option<&str>) -> Result<usize, SearchError> {
    let Some(cursor) = cursor else {
        return Ok(0);
    };
    let bad = || {
        SearchError::Query(query::QueryError {
            at: 0,
            message: "the cursor is not one this server handed out".into(),
        })
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix("o:")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n <= 10_000)
        .ok_or_else(bad)
}

fn cursor_for(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

fn query_error(at: usize, message: String) -> SearchError {
    SearchError::Query(query::QueryError { at, message })
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

    /// Starts the indexer (applying committed events until `stop`) and rebuilds, in the
    /// background, every workspace index that is missing or was interrupted.
    pub fn start(&self, events: &Events, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let (flush_tx, flush_rx) = mpsc::channel(64);
        if let Ok(mut f) = self.inner.flush.lock() {
            *f = Some(flush_tx);
        }
        let rx = events.subscribe();
        let me = self.clone();
        let indexer = tokio::spawn(me.clone().run_indexer(rx, flush_rx, stop.clone()));
        let checker = self.clone();
        tokio::spawn(async move {
            if let Err(err) = checker.rebuild_incomplete(stop).await {
                tracing::error!(error = %err, "search: cannot check the indexes");
            }
        });
        indexer
    }

    async fn rebuild_incomplete(&self, stop: CancellationToken) -> Result<(), SearchError> {
        let workspaces = {
            let mut conn = self.inner.store.reader().await?;
            store_search::workspace_ids(&mut conn.conn()).await?
        };
        for workspace in workspaces {
            if stop.is_cancelled() {
                break;
            }
            let open = self.open(workspace).await?;
            if open.index.payload() != READY {
                let me = self.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    tracing::info!(%workspace, "search: rebuilding an incomplete index");
                    if let Err(err) = me.rebuild(workspace, |_, _| {}, Some(stop)).await {
                        tracing::error!(%workspace, error = %err, "search: rebuild failed");
                    }
                });
            }
        }
        Ok(())
    }

    async fn run_indexer(
        self,
        mut rx: Subscription,
        mut flush_rx: mpsc::Receiver<oneshot::Sender<()>>,
        stop: CancellationToken,
    ) {
        let mut dirty: HashSet<WorkspaceId> = HashSet::new();
        let mut pending = PendingDocuments::default();
        loop {
            let mut waiting = Vec::new();
            let next_document = pending.next_due();
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                Some(reply) = flush_rx.recv() => waiting.push(reply),
                _ = tokio::time::sleep_until(next_document.unwrap_or_else(far_future)), if next_document.is_some() => {}
                received = rx.recv() => match received {
                    Ok(event) => self.apply(event, &mut dirty, &mut pending).await,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "search: indexer fell behind; rebuilding");
                        self.rebuild_all_in_background();
                    }
                    Err(RecvError::Closed) => break,
                },
            }
            // Everything already published goes into this commit.
            loop {
                match rx.try_recv() {
                    Ok(event) => self.apply(event, &mut dirty, &mut pending).await,
                    Err(TryRecvError::Lagged(_)) => {
                        self.rebuild_all_in_background();
                    }
                    Err(_) => break,
                }
            }
            while let Ok(reply) = flush_rx.try_recv() {
                waiting.push(reply);
            }
            self.index_settled_documents(&mut pending, &mut dirty).await;
            self.commit(&mut dirty).await;
            for reply in waiting {
                let _ = reply.send(());
            }
        }
        while let Ok(event) = rx.try_recv() {
            self.apply(event, &mut dirty, &mut pending).await;
        }
        self.commit(&mut dirty).await;
    }

    async fn index_settled_documents(
        &self,
        pending: &mut PendingDocuments,
        dirty: &mut HashSet<WorkspaceId>,
    ) {
        for (document, workspace) in pending.take_due() {
            let change = match self.inner.docs.indexable(document).await {
                Ok(Some(found)) => Ok(entries::document_entry(found)),
                Ok(None) => Err(document.to_string()),
                Err(err) => {
                    tracing::warn!(%document, error = %err, "search: cannot read a document to index");
                    continue;
                }
            };
            self.apply_change(workspace, Change::Document(change), dirty)
                .await;
        }
    }

    fn rebuild_all_in_background(&self) {
        let me = self.clone();
        tokio::spawn(async move {
            let workspaces: Vec<WorkspaceId> =
                me.inner.indexes.lock().await.keys().copied().collect();
            for workspace in workspaces {
                if let Err(err) = me.rebuild(workspace, |_, _| {}, None).await {
                    tracing::error!(%workspace, error = %err, "search: rebuild failed");
                }
            }
        });
    }

    async fn commit(&self, dirty: &mut HashSet<WorkspaceId>) {
        for workspace in dirty.drain() {
            let Ok(open) = self.open(workspace).await else {
                continue;
            };
            let index = open.index.clone();
            match tokio::task::spawn_blocking(move || index.commit()).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::error!(%workspace, error = %err, "search: commit failed"),
                Err(err) => tracing::error!(%workspace, error = %err, "search: commit panicked"),
            }
        }
    }

    async fn apply(
        &self,
        event: DomainEvent,
        dirty: &mut HashSet<WorkspaceId>,
        pending: &mut PendingDocuments,
    ) {
        let edited = matches!(event, DomainEvent::MessageUpdated { .. });
        let (workspace, change) = match event {
            DomainEvent::MessageCreated {
                workspace_id,
                message_id,
                view,
                ..
            }
            | DomainEvent::MessageUpdated {
                workspace_id,
                message_id,
                view,
                ..
            } => match view.get::<MessageView>() {
                Some(message) if message.deleted => {
                    (workspace_id, Change::Message(Err(message.id.to_string())))
                }
                Some(message) => {
                    let mut entry = entry_of_view(&message);
                    // A new message's file arrives with `FileShared` in the same write, which
                    // indexes the message again; an edited one may already have one.
                    if edited && self.has_file(message.id).await {
                        entry.flags.push("file");
                    }
                    (workspace_id, Change::Message(Ok(entry)))
                }
                // Published by another process: read the message as it is now.
                None => match self.message_change(workspace_id, Some(message_id)).await {
                    Some(change) => (workspace_id, change),
                    None => return,
                },
            },
            DomainEvent::MessageDeleted {
                workspace_id,
                message_id,
                ..
            } => (workspace_id, Change::Message(Err(message_id.to_string()))),
            DomainEvent::WorkspaceCreated { workspace_id, .. } => {
                // A new workspace has nothing to rebuild: its empty index is complete.
                match self.open(workspace_id).await {
                    Ok(open) => {
                        open.index.set_payload(READY);
                        dirty.insert(workspace_id);
                    }
                    Err(err) => {
                        tracing::error!(workspace = %workspace_id, error = %err, "search: cannot create the index")
                    }
                }
                return;
            }
            DomainEvent::DocumentChanged {
                workspace_id,
                document_id,
                what: DocumentChange::Deleted,
            } => {
                pending.docs.remove(&document_id);
                (workspace_id, Change::Document(Err(document_id.to_string())))
            }
            DomainEvent::DocumentChanged {
                workspace_id,
                document_id,
                ..
            }
            | DomainEvent::DocumentEdited {
                workspace_id,
                document_id,
                ..
            } => {
                pending.edited(document_id, workspace_id);
                return;
            }
            DomainEvent::FileShared {
                workspace_id,
                file_id,
                message_id,
                ..
            } => {
                // Its message now has a file: `has:file` follows.
                if let Some(change) = self.message_change(workspace_id, message_id).await {
                    self.apply_change(workspace_id, change, dirty).await;
                }
                (workspace_id, Change::File(self.file_entry(file_id).await))
            }
            DomainEvent::FileDeleted {
                workspace_id,
                file_id,
                message_id,
                ..
            } => {
                if let Some(change) = self.message_change(workspace_id, message_id).await {
                    self.apply_change(workspace_id, change, dirty).await;
                }
                (workspace_id, Change::File(Err(file_id.to_string())))
            }
            _ => return,
        };
        self.apply_change(workspace, change, dirty).await;
    }

    /// Whether a file is attached to `message` (false if that cannot be read: a rebuild
    /// will set it right).
    async fn has_file(&self, message: MessageId) -> bool {
        let found = async {
            let mut conn = self.inner.store.reader().await?;
            store_search::message_has_file(&mut conn.conn(), message).await
        }
        .await;
        found.unwrap_or_else(|err| {
            tracing::warn!(%message, error = %err, "search: cannot tell whether a message has files");
            false
        })
    }

    /// The message `id` as it is now, to index again (or remove, if gone).
    async fn message_change(
        &self,
        workspace: WorkspaceId,
        id: Option<MessageId>,
    ) -> Option<Change> {
        let id = id?;
        let found = async {
            let mut conn = self.inner.store.reader().await?;
            match store_search::message(&mut conn.conn(), id).await? {
                Some(row) => self
                    .entry_of_row(&mut conn.conn(), workspace, row)
                    .await
                    .map(Some),
                None => Ok(None),
            }
        }
        .await;
        match found {
            Ok(Some(entry)) => Some(Change::Message(Ok(entry))),
            Ok(None) => Some(Change::Message(Err(id.to_string()))),
            Err(err) => {
                let err: SearchError = err;
                tracing::warn!(message = %id, error = %err, "search: cannot read a message to index");
                None
            }
        }
    }

    /// A stored message as the index takes it (its body decrypted).
    async fn entry_of_row(
        &self,
        conn: &mut crate::store::Conn<'_>,
        workspace: WorkspaceId,
        m: store_search::IndexableMessage,
    ) -> Result<MessageEntry, SearchError> {
        let id = m.id.to_string();
        let text = self
            .inner
            .keyring
            .decrypt_text(
                conn,
                &Scope::Workspace(workspace),
                Aad {
                    table: "messages",
                    row: &id,
                    column: "body",
                },
                &m.body,
            )
            .await?;
        let mut flags = flags_of(
            &text,
            m.thread_root_id.is_some() || m.reply_count > 0,
            m.has_reaction,
            m.pinned,
        );
        if m.has_file {
            flags.push("file");
        }
        Ok(MessageEntry {
            flags,
            id,
            channel_id: m.channel_id.to_string(),
            author_id: m.author_id.to_string(),
            thread_root_id: m.thread_root_id.map(|r| r.to_string()),
            created_at_ms: m.created_at.timestamp_millis(),
            seq: m.seq,
            text,
        })
    }

    /// What to index for a file just shared: its entry, or its id to remove (gone,
    /// quarantined, or unreadable: logged, and a rebuild will try again).
    async fn file_entry(&self, file: FileId) -> Result<FileEntry, String> {
        match self.inner.files.indexable(file).await {
            Ok(Some(found)) => Ok(entries::file_entry(found)),
            Ok(None) => Err(file.to_string()),
            Err(err) => {
                tracing::warn!(%file, error = %err, "search: cannot read a file to index");
                Err(file.to_string())
            }
        }
    }

    async fn apply_change(
        &self,
        workspace: WorkspaceId,
        change: Change,
        dirty: &mut HashSet<WorkspaceId>,
    ) {
        let open = match self.open(workspace).await {
            Ok(open) => open,
            Err(err) => {
                tracing::error!(%workspace, error = %err, "search: cannot open the index");
                return;
            }
        };
        let result =
            {
                let mut touched = open.touched.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(set) = touched.as_mut() {
                    set.insert(change.id().to_owned());
                }
                match &change {
                    Change::Message(Ok(entry)) => open.index.upsert_message(entry).and_then(|()| {
                        match &entry.thread_root_id {
                            Some(root) => open.index.mark_thread_root(root),
                            None => Ok(()),
                        }
                    }),
                    Change::Document(Ok(entry)) => open.index.upsert_document(entry),
                    Change::File(Ok(entry)) => open.index.upsert_file(entry),
                    Change::Message(Err(id))
                    | Change::Document(Err(id))
                    | Change::File(Err(id)) => open.index.delete(id),
                }
            };
        if let Err(err) = result {
            tracing::error!(%workspace, error = %err, "search: cannot apply a change");
        }
        dirty.insert(workspace);
    }

    /// Waits (briefly) until the indexer has applied every event already published.
    async fn caught_up(&self) {
        let sender = self.inner.flush.lock().ok().and_then(|f| f.clone());
        if let Some(sender) = sender {
            let (tx, rx) = oneshot::channel();
            if sender.send(tx).await.is_ok() {
                let _ = tokio::time::timeout(FRESHNESS_WAIT, rx).await;
            }
        }
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

    /// Rebuilds `workspace`'s index from the database, resuming an interrupted rebuild;
    /// `progress(done, total)` is called after each step. Live changes keep being applied.
    #[tracing::instrument(skip_all, fields(%workspace))]
    pub async fn rebuild(
        &self,
        workspace: WorkspaceId,
        progress: impl Fn(u64, u64),
        stop: Option<CancellationToken>,
    ) -> Result<Rebuilt, SearchError> {
        {
            let mut rebuilding = self
                .inner
                .rebuilding
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if rebuilding.contains_key(&workspace) {
                return Ok(Rebuilt::default());
            }
            rebuilding.insert(workspace, Progress::default());
        }
        let result = self.rebuild_inner(workspace, &progress, stop).await;
        if let Ok(mut rebuilding) = self.inner.rebuilding.lock() {
            rebuilding.remove(&workspace);
        }
        result
    }

    async fn rebuild_inner(
        &self,
        workspace: WorkspaceId,
        progress: &impl Fn(u64, u64),
        stop: Option<CancellationToken>,
    ) -> Result<Rebuilt, SearchError> {
        let open = self.open(workspace).await?;
        let payload = open.index.payload();
        let documents_only = payload == DOCUMENTS_PENDING;
        let mut after: Option<MessageId> = payload
            .strip_prefix("rebuild:")
            .and_then(|id| id.parse().ok());
        {
            let mut touched = open.touched.lock().unwrap_or_else(|e| e.into_inner());
            *touched = Some(HashSet::new());
            if after.is_none() && !documents_only {
                open.index.clear()?;
                open.index.set_payload("rebuild:");
            }
        }
        let total = {
            let mut conn = self.inner.store.reader().await?;
            store_search::count_messages(&mut conn.conn(), workspace).await? as u64
        };
        let mut done = if after.is_some() {
            open.index.len().min(total)
        } else {
            0
        };
        let mut rebuilt = Rebuilt {
            workspaces: 1,
            ..Rebuilt::default()
        };
        let outcome: Result<(), SearchError> = async {
            loop {
                if documents_only {
                    break;
                }
                if stop.as_ref().is_some_and(|s| s.is_cancelled()) {
                    return Ok(());
                }
                let mut conn = self.inner.store.reader().await?;
                let batch =
                    store_search::messages_after(&mut conn.conn(), workspace, after, REBUILD_BATCH)
                        .await?;
                let Some(last) = batch.last().map(|m| m.id) else {
                    drop(conn);
                    rebuilt.files = self.rebuild_files(workspace, &open).await?;
                    open.index.set_payload(DOCUMENTS_PENDING);
                    break;
                };
                let mut entries = Vec::with_capacity(batch.len());
                for m in batch {
                    entries.push(self.entry_of_row(&mut conn.conn(), workspace, m).await?);
                }
                drop(conn);
                done += entries.len() as u64;
                {
                    let touched = open.touched.lock().unwrap_or_else(|e| e.into_inner());
                    for entry in &entries {
                        if touched.as_ref().is_some_and(|t| t.contains(&entry.id)) {
                            continue;
                        }
                        open.index.upsert_message(entry)?;
                        rebuilt.messages += 1;
                    }
                    open.index.set_payload(&format!("rebuild:{last}"));
                }
                let index = open.index.clone();
                tokio::task::spawn_blocking(move || index.commit())
                    .await
                    .map_err(|e| SearchError::Index(e.to_string()))??;
                after = Some(last);
                if let Ok(mut r) = self.inner.rebuilding.lock() {
                    r.insert(workspace, Progress { done, total });
                }
                progress(done.min(total), total);
            }
            rebuilt.documents = self.rebuild_documents(workspace, &open).await?;
            open.index.set_payload(READY);
            let index = open.index.clone();
            tokio::task::spawn_blocking(move || index.commit())
                .await
                .map_err(|e| SearchError::Index(e.to_string()))?
        }
        .await;
        if let Ok(mut touched) = open.touched.lock() {
            *touched = None;
        }
        outcome.map(|()| rebuilt)
    }

    async fn rebuild_documents(
        &self,
        workspace: WorkspaceId,
        open: &OpenIndex,
    ) -> Result<u64, SearchError> {
        let ids = {
            let mut conn = self.inner.store.reader().await?;
            store_search::document_ids(&mut conn.conn(), workspace).await?
        };
        let mut indexed = 0;
        for id in ids {
            let found = self
                .inner
                .docs
                .indexable(id)
                .await
                .map_err(|e| SearchError::Index(format!("document {id}: {e}")))?;
            let Some(found) = found else { continue };
            let entry = entries::document_entry(found);
            let touched = open.touched.lock().unwrap_or_else(|e| e.into_inner());
            if touched.as_ref().is_some_and(|t| t.contains(&entry.id)) {
                continue;
            }
            open.index.upsert_document(&entry)?;
            indexed += 1;
        }
        Ok(indexed)
    }

    async fn rebuild_files(
        &self,
        workspace: WorkspaceId,
        open: &OpenIndex,
    ) -> Result<u64, SearchError> {
        let ids = {
            let mut conn = self.inner.store.reader().await?;
            store_search::file_ids(&mut conn.conn(), workspace).await?
        };
        let mut indexed = 0;
        for id in ids {
            let found = match self.inner.files.indexable(id).await {
                Ok(Some(found)) => entries::file_entry(found),
                Ok(None) => continue,
                Err(err) => {
                    // One unreadable file must not keep the rest from being found.
                    tracing::warn!(file = %id, error = %err, "search: cannot read a file to index");
                    continue;
                }
            };
            let touched = open.touched.lock().unwrap_or_else(|e| e.into_inner());
            if touched.as_ref().is_some_and(|t| t.contains(&found.id)) {
                continue;
            }
            open.index.upsert_file(&found)?;
            indexed += 1;
        }
        Ok(indexed)
    }

    /// Rebuilds every workspace's index (or one), for `concord search reindex`: messages,
    /// files and documents.
    pub async fn rebuild_all(
        &self,
        only: Option<WorkspaceId>,
        progress: impl Fn(WorkspaceId, u64, u64),
    ) -> Result<Rebuilt, SearchError> {
        let workspaces = match only {
            Some(w) => vec![w],
            None => {
                let mut conn = self.inner.store.reader().await?;
                store_search::workspace_ids(&mut conn.conn()).await?
            }
        };
        let mut rebuilt = Rebuilt::default();
        for &workspace in &workspaces {
            rebuilt += self
                .rebuild(workspace, |d, t| progress(workspace, d, t), None)
                .await?;
        }
        Ok(rebuilt)
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

    /// Searches `workspace` for what `actor` may read now.
    #[tracing::instrument(skip(self, actor, request), fields(workspace = %request.workspace))]
    pub async fn search(&self, actor: &Actor, request: SearchRequest) -> Result<SearchPage, Error> {
        let parsed = query::parse(&request.q).map_err(SearchError::from)?;
        let offset = cursor_offset(request.cursor.as_deref())?;
        let limit = request.limit.unwrap_or(20).clamp(1, MAX_LIMIT);
        let workspace = request.workspace;
        let mut conn = self.inner.store.reader().await?;
        self.inner
            .auditor
            .authorize_read(
                &self.inner.store,
                &mut conn.conn(),
                actor,
                Action::ReadWorkspace,
                Resource::Workspace(workspace),
            )
            .await?;
        let readable = rbac::readable_channels(&mut conn.conn(), actor, workspace).await?;
        let documents = rbac::readable_documents(&mut conn.conn(), actor, workspace).await?;
        let mut filters = Filters {
            scopes: readable
                .iter()
                .map(|c| format!("c:{}", c.channel.id))
                .chain(documents.iter().map(|d| format!("d:{d}")))
                .collect(),
            ..Filters::default()
        };
        // The workspace's members, read once per query and only if a name needs resolving.
        let mut people = None;
        for (at, place) in &parsed.places {
            match place {
                query::Place::Channel(name) => {
                    // Names are stored encrypted: found by their blind index (names are
                    // lower-case, as the query is).
                    let wanted =
                        crate::chat::details::name_index(&self.inner.keyring, workspace, name);
                    let found = readable
                        .iter()
                        .find(|c| c.channel.name_index.as_deref() == Some(wanted.as_str()))
                        .ok_or_else(|| {
                            query_error(*at, format!("in:#{name}: no such channel you can read"))
                        })?;
                    filters.channels.push(found.channel.id.to_string());
                }
                query::Place::Direct(who) => {
                    let user = self
                        .resolve_user(&mut conn, &mut people, workspace, *at, who)
                        .await?;
                    let me = actor.user_id().map(|u| u.to_string()).unwrap_or_default();
                    let them = user.to_string();
                    let found = readable.iter().find(|c| {
                        c.channel.kind == "direct"
                            && c.channel.direct_key.as_deref().is_some_and(|k| {
                                k.contains(&them) && (k.contains(&me) || them == me)
                            })
                    });
                    match found {
                        Some(c) => filters.channels.push(c.channel.id.to_string()),
                        None => {
                            return Err(query_error(
                                *at,
                                format!("in:@{who}: you have no conversation with them"),
                            )
                            .into())
                        }
                    }
                }
            }
        }
        for (at, who) in &parsed.from {
            let user = self
                .resolve_user(&mut conn, &mut people, workspace, *at, who)
                .await?;
            filters.authors.push(user.to_string());
        }
        drop(conn);
        self.caught_up().await;
        let open = self.open(workspace).await?;
        let index = open.index.clone();
        let by_date = request.by_date;
        let q = parsed.clone();
        let f = filters.clone();
        let hits =
            tokio::task::spawn_blocking(move || index.search(&q, &f, by_date, offset, limit))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??;
        // Only the names of the channels on this page are decrypted.
        let mut channels: HashMap<String, (Option<String>, &str)> = HashMap::new();
        let mut conn = self.inner.store.reader().await?;
        let on_page: std::collections::HashSet<&str> =
            hits.hits.iter().map(|h| h.channel_id.as_str()).collect();
        for c in &readable {
            let id = c.channel.id.to_string();
            if on_page.contains(id.as_str()) {
                let details =
                    crate::chat::details::open(&self.inner.keyring, &mut conn.conn(), &c.channel)
                        .await?;
                channels.insert(id, (details.name, c.channel.kind.as_str()));
            }
        }
        drop(conn);
        let results: Vec<SearchResult> = hits
            .hits
            .into_iter()
            .map(|h| {
                let is_message = h.kind == "message";
                let is_file = h.kind == "file";
                let channel = channels
                    .get(&h.channel_id)
                    .map(|(n, k)| (n.clone(), (*k).to_owned()));
                let (title, name) = match h.kind.as_str() {
                    "document" => (Some(h.title), None),
                    "file" => (None, Some(h.title)),
                    _ => (None, None),
                };
                SearchResult {
                    id: h.id,
                    title,
                    name,
                    content_type: h.content_type,
                    size: h.size.map(|s| s.max(0) as u64),
                    message_id: h.message_id,
                    channel_name: channel.as_ref().and_then(|c| c.0.clone()),
                    channel_kind: channel.map(|c| c.1),
                    channel_id: (is_message || is_file).then_some(h.channel_id),
                    author_id: h.author_id,
                    thread_root_id: h.thread_root_id,
                    seq: is_message.then_some(h.seq),
                    created_at: DateTime::from_timestamp_millis(h.time_ms).unwrap_or_default(),
                    snippet_html: h.snippet_html,
                    kind: h.kind,
                }
            })
            .collect();
        self.inner
            .auditor
            .record_search(&self.inner.store, actor, workspace, hits.total)
            .await?;
        let end = offset + results.len();
        Ok(SearchPage {
            next_cursor: (end < hits.total && !results.is_empty()).then(|| cursor_for(end)),
            total: hits.total,
            results,
            index: self.status(workspace),
        })
    }

    /// The person `who` names: a user id, or among `workspace`'s members an email address, a
    /// display name or the part of an email before the `@` (see [`directory::resolve`]).
    /// `people` holds the members once read for this query.
    async fn resolve_user(
        &self,
        conn: &mut crate::store::PooledConn,
        people: &mut Option<Vec<Arc<directory::Person>>>,
        workspace: WorkspaceId,
        at: usize,
        who: &str,
    ) -> Result<UserId, SearchError> {
        if let Ok(id) = who.parse::<UserId>() {
            return Ok(id);
        }
        let members = match people {
            Some(members) => members,
            None => people.insert(
                self.inner
                    .directory
                    .members(&self.inner.keyring, &mut conn.conn(), workspace)
                    .await?,
            ),
        };
        match directory::resolve(members, who) {
            directory::Resolved::One(user) => Ok(user),
            directory::Resolved::Ambiguous => Err(query_error(
                at,
                format!("@{who}: several members go by that name; use their email address"),
            )),
            directory::Resolved::Nobody => Err(query_error(
                at,
                format!(
                    "@{who}: no member of this workspace goes by that name; use a display name, \
                     an email address or a user id"
                ),
            )),
        }
    }

    /// Where indexes live under a data directory.
    pub fn default_root(data_dir: &Path) -> PathBuf {
        data_dir.join("search")
    }
}
