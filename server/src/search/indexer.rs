//! The indexer: the task that applies committed events to the indexes (messages at once,
//! documents once their edits settle, files once shared) and what it indexes of each; it
//! commits them as `commits.rs` says (on a timer, a size, a query's request, and at stop).

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::commits::{CommitPolicy, Flush, Uncommitted};
use super::index::{DocumentEntry, FileEntry, MessageEntry, READY};
use super::{entries, SearchError, SearchService, DOCUMENT_SETTLE, WRITER_IDLE};
use crate::chat::MessageView;
use crate::crypto::{Aad, Scope};
use crate::domain::{DocumentId, FileId, MessageId, WorkspaceId};
use crate::events::{DocumentChange, DomainEvent, Events, RecvError, Subscription, TryRecvError};
use crate::store::search as store_search;

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

impl SearchService {
    /// Starts the indexer (applying committed events until `stop`, committing each index as
    /// `policy` says) and rebuilds, in the background, every workspace index that is missing or
    /// was interrupted.
    pub fn start(
        &self,
        events: &Events,
        policy: CommitPolicy,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let (flush_tx, flush_rx) = mpsc::channel(64);
        if let Ok(mut f) = self.inner.flush.lock() {
            *f = Some(flush_tx);
        }
        let rx = events.subscribe();
        let me = self.clone();
        let indexer = tokio::spawn(me.clone().run_indexer(rx, flush_rx, policy, stop.clone()));
        let checker = self.clone();
        tokio::spawn(async move {
            if let Err(err) = checker.rebuild_incomplete(stop).await {
                tracing::error!(error = %err, "search: cannot check the indexes");
            }
            if let Err(err) = checker.reindex_unfinished_lifts().await {
                tracing::error!(error = %err,
                    "search: cannot put lifted restrictions' content back in the index");
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
        mut flush_rx: mpsc::Receiver<Flush>,
        policy: CommitPolicy,
        stop: CancellationToken,
    ) {
        let mut uncommitted = Uncommitted::default();
        let mut pending = PendingDocuments::default();
        let mut idle_check =
            tokio::time::interval_at(tokio::time::Instant::now() + WRITER_IDLE, WRITER_IDLE);
        idle_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut waiting = Vec::new();
            let next_document = pending.next_due();
            let next_commit = uncommitted.next_due(&policy);
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                Some(flush) = flush_rx.recv() => waiting.push(flush),
                _ = tokio::time::sleep_until(next_commit.unwrap_or_else(far_future)), if next_commit.is_some() => {}
                _ = tokio::time::sleep_until(next_document.unwrap_or_else(far_future)), if next_document.is_some() => {}
                received = rx.recv() => match received {
                    Ok(event) => self.apply(event, &mut uncommitted, &mut pending).await,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "search: indexer fell behind; rebuilding");
                        self.rebuild_all_in_background();
                    }
                    Err(RecvError::Closed) => break,
                },
                _ = idle_check.tick() => {
                    self.close_idle_writers(WRITER_IDLE).await;
                }
            }
            // A query waits for everything published before it asked; a long backlog is still
            // committed every `max_changes`.
            loop {
                match rx.try_recv() {
                    Ok(event) => {
                        self.apply(event, &mut uncommitted, &mut pending).await;
                        self.commit_indexes(uncommitted.take_full(&policy)).await;
                    }
                    Err(TryRecvError::Lagged(_)) => {
                        self.rebuild_all_in_background();
                    }
                    Err(_) => break,
                }
            }
            while let Ok(flush) = flush_rx.try_recv() {
                waiting.push(flush);
            }
            self.index_settled_documents(&mut pending, &mut uncommitted)
                .await;
            let asked: Vec<WorkspaceId> = waiting.iter().map(|f| f.workspace).collect();
            let due = uncommitted.take_due(&policy, tokio::time::Instant::now(), &asked);
            self.commit_indexes(due).await;
            for flush in waiting {
                let _ = flush.done.send(());
            }
        }
        while let Ok(event) = rx.try_recv() {
            self.apply(event, &mut uncommitted, &mut pending).await;
        }
        self.commit_indexes(uncommitted.take_all()).await;
    }

    async fn index_settled_documents(
        &self,
        pending: &mut PendingDocuments,
        uncommitted: &mut Uncommitted,
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
            self.apply_change(workspace, Change::Document(change), uncommitted)
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

    async fn apply(
        &self,
        event: DomainEvent,
        uncommitted: &mut Uncommitted,
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
                        uncommitted.changed(workspace_id, tokio::time::Instant::now());
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
                    self.apply_change(workspace_id, change, uncommitted).await;
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
                    self.apply_change(workspace_id, change, uncommitted).await;
                }
                (workspace_id, Change::File(Err(file_id.to_string())))
            }
            DomainEvent::PersonErased {
                user_id,
                workspaces,
            } => {
                self.inner.directory.forget(user_id);
                // Their deleted entries were applied before (events arrive in order): rewrite
                // the segments so the text leaves the index's files too.
                for workspace_id in workspaces {
                    if let Err(err) = self.purge_deleted(workspace_id).await {
                        tracing::warn!(workspace = %workspace_id, error = %err,
                            "search: rewriting the index after an erasure failed; its next merge drops the entries");
                    }
                }
                return;
            }
            DomainEvent::ProcessingRestricted {
                user_id,
                workspaces,
            } => {
                // What they wrote before was applied already (events arrive in order); from
                // here on `apply_change_as` indexes nothing of theirs.
                for workspace_id in workspaces {
                    if let Err(err) = self.remove_author(workspace_id, user_id).await {
                        tracing::error!(workspace = %workspace_id, error = %err,
                            "search: removing a restricted person's entries failed");
                    }
                }
                return;
            }
            DomainEvent::ProcessingRestrictionLifted {
                user_id,
                workspaces,
            } => {
                let me = self.clone();
                tokio::spawn(async move {
                    if let Err(err) = me.reindex_lifted(user_id, &workspaces).await {
                        tracing::error!(%user_id, error = %err,
                            "search: rebuild after a lifted restriction failed; the next start repeats it");
                    }
                });
                return;
            }
            _ => return,
        };
        self.apply_change_as(workspace, change, edited, uncommitted)
            .await;
    }

    /// Whether the entry `change` would add was made by someone whose processing is
    /// restricted (GDPR Art. 18); asked of the database, so every process agrees. When it
    /// cannot be told, the entry is not indexed: a rebuild sets that right.
    async fn by_restricted(&self, change: &Change) -> bool {
        let author = match change {
            Change::Message(Ok(m)) => &m.author_id,
            Change::Document(Ok(d)) => &d.created_by,
            Change::File(Ok(f)) => &f.uploader_id,
            _ => return false,
        };
        let Ok(author) = author.parse::<crate::domain::UserId>() else {
            return false;
        };
        let found = async {
            let mut conn = self.inner.store.reader().await?;
            crate::store::restrictions::is_restricted(&mut conn.conn(), author).await
        }
        .await;
        found.unwrap_or_else(|err| {
            tracing::warn!(%author, error = %err, "search: cannot tell whether an author is restricted");
            true
        })
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
    pub(super) async fn entry_of_row(
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
        uncommitted: &mut Uncommitted,
    ) {
        self.apply_change_as(workspace, change, false, uncommitted)
            .await
    }

    /// Applies `change`; a removal, or an `edit` (which replaces indexed text), is committed
    /// without waiting for the commit interval.
    async fn apply_change_as(
        &self,
        workspace: WorkspaceId,
        change: Change,
        edit: bool,
        uncommitted: &mut Uncommitted,
    ) {
        // A restricted person's entry is removed instead of written.
        let change = if self.by_restricted(&change).await {
            match change {
                Change::Message(Ok(m)) => Change::Message(Err(m.id)),
                Change::Document(Ok(d)) => Change::Document(Err(d.id)),
                Change::File(Ok(f)) => Change::File(Err(f.id)),
                other => other,
            }
        } else {
            change
        };
        let removes = edit
            || matches!(
                change,
                Change::Message(Err(_)) | Change::Document(Err(_)) | Change::File(Err(_))
            );
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
        if removes {
            uncommitted.removed(workspace, tokio::time::Instant::now());
        } else {
            uncommitted.changed(workspace, tokio::time::Instant::now());
        }
    }
}
