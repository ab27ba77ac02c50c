//! The task that owns one open document: its Yrs `Doc`, its awareness and its connections.
//! It applies each burst of commands in one Yjs transaction, stores the change through the
//! group-commit writer and only then sends it on; it compacts the log and leaves memory
//! when idle.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use chrono::Utc;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use yrs::sync::{Message, SyncMessage};
use yrs::{Doc, ReadTxn, Transact};

use super::load::{load, update_aad};
use super::peer::{frame, Incoming, Peer, PeerHandle, PeerInit, QUEUE};
use super::snapshot::store_snapshot;
use super::{close, content, RoomError, Shared};
use crate::audit::{Event, PreparedEvent};
use crate::crypto::{Scope, Sealed};
use crate::docs::awareness::{Presence, Sender};
use crate::domain::{DocumentId, SessionId, WorkspaceId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::rbac::{self, Level};
use crate::store::{documents, Raw, RawTx, Tx};

/// Most commands handled in one Yjs transaction and one commit.
const BURST: usize = 512;

pub(super) enum Cmd {
    Join {
        peer: PeerInit,
        reply: oneshot::Sender<Result<PeerHandle, RoomError>>,
    },
    Leave {
        id: u64,
    },
    Messages {
        id: u64,
        messages: Vec<Incoming>,
    },
    State {
        reply: oneshot::Sender<Result<Vec<u8>, RoomError>>,
    },
    /// The content as plain text (for the search index), read from the room's own document.
    Text {
        reply: oneshot::Sender<Result<String, RoomError>>,
    },
    Restore {
        state: Vec<u8>,
        audit: Event,
        reply: oneshot::Sender<Result<(), RoomError>>,
    },
    Recheck,
    Revoked {
        sessions: Arc<HashSet<SessionId>>,
        /// Ended for inactivity (automatic logoff), not revoked.
        idle: bool,
    },
    Compacted {
        upto_seq: i64,
        size: usize,
        /// A newer snapshot was stored elsewhere: the room's copy is stale.
        stale: bool,
    },
}

struct Room {
    id: DocumentId,
    workspace: WorkspaceId,
    doc: Doc,
    presence: Presence,
    peers: HashMap<u64, Peer>,
    last_seq: i64,
    snapshot_seq: i64,
    approx_bytes: usize,
    compacting: bool,
    shared: Arc<Shared>,
    inbox: mpsc::Sender<Cmd>,
}

/// What to send once the current burst is committed, in order.
enum Deferred {
    To(u64, Bytes),
    Everyone(Bytes),
}

pub(super) async fn run_room(shared: Arc<Shared>, id: DocumentId, mut rx: mpsc::Receiver<Cmd>) {
    let self_sender = shared.rooms.lock().ok().and_then(|m| m.get(&id).cloned());
    let Some(inbox) = self_sender else {
        return;
    };
    let room = match load(&shared, id).await {
        Ok(loaded) => Room {
            id,
            workspace: loaded.workspace,
            presence: Presence::new(
                loaded.doc.clone(),
                shared.limits.awareness_state_bytes,
                shared.limits.awareness_clients,
            ),
            doc: loaded.doc,
            peers: HashMap::new(),
            last_seq: loaded.last_seq,
            snapshot_seq: loaded.snapshot_seq,
            approx_bytes: loaded.bytes,
            compacting: false,
            shared: shared.clone(),
            inbox,
        },
        Err(err) => {
            if !matches!(err, RoomError::Gone) {
                tracing::error!(document = %id, error = %err, "cannot load document");
            }
            remove_from_map(&shared, id, &inbox);
            rx.close();
            while let Some(cmd) = rx.recv().await {
                refuse(cmd, || match &err {
                    RoomError::Gone => RoomError::Gone,
                    _ => RoomError::Unavailable,
                });
            }
            return;
        }
    };
    let span = tracing::info_span!("document", document = %id);
    room.run(rx).instrument(span).await;
}

fn remove_from_map(shared: &Shared, id: DocumentId, inbox: &mpsc::Sender<Cmd>) {
    if let Ok(mut map) = shared.rooms.lock() {
        if map.get(&id).is_some_and(|s| s.same_channel(inbox)) {
            map.remove(&id);
        }
    }
}

fn refuse(cmd: Cmd, err: impl Fn() -> RoomError) {
    match cmd {
        Cmd::Join { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
        Cmd::State { reply } => {
            let _ = reply.send(Err(err()));
        }
        Cmd::Text { reply } => {
            let _ = reply.send(Err(err()));
        }
        Cmd::Restore { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
        _ => {}
    }
}

impl Room {
    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        let going_away = self.shared.going_away.clone();
        loop {
            let idle = self.shared.limits.idle;
            let first = tokio::select! {
                cmd = rx.recv() => cmd,
                _ = going_away.cancelled() => None,
                _ = tokio::time::sleep(idle), if self.peers.is_empty() => {
                    if self.try_leave(&mut rx).await {
                        return;
                    }
                    continue;
                }
            };
            let Some(first) = first else {
                self.shutdown(&mut rx).await;
                return;
            };
            let mut burst = vec![first];
            while burst.len() < BURST {
                match rx.try_recv() {
                    Ok(cmd) => burst.push(cmd),
                    Err(_) => break,
                }
            }
            if !self.handle(burst).await {
                self.fail(&mut rx).await;
                return;
            }
        }
    }

    /// Leaves memory if nothing is pending; `false` if something arrived meanwhile.
    async fn try_leave(&mut self, rx: &mut mpsc::Receiver<Cmd>) -> bool {
        if self.last_seq > self.snapshot_seq && !self.compact_now().await {
            // Another process compacted further: leave now, so the document loads afresh.
            tracing::warn!("the document was compacted elsewhere; reloading it");
            self.fail(rx).await;
            return true;
        }
        let Ok(mut map) = self.shared.rooms.lock() else {
            return true;
        };
        if !rx.is_empty() || !self.peers.is_empty() {
            return false;
        }
        if map
            .get(&self.id)
            .is_some_and(|s| s.same_channel(&self.inbox))
        {
            map.remove(&self.id);
        }
        true
    }

    async fn shutdown(&mut self, rx: &mut mpsc::Receiver<Cmd>) {
        for peer in self.peers.values() {
            peer.kill(close::GOING_AWAY, "server shutting down");
        }
        self.peers.clear();
        self.remove_self();
        rx.close();
        while let Ok(cmd) = rx.try_recv() {
            refuse(cmd, || RoomError::Unavailable);
        }
    }

    async fn fail(&mut self, rx: &mut mpsc::Receiver<Cmd>) {
        for peer in self.peers.values() {
            peer.kill(close::SERVER_ERROR, "storage failure; reconnect");
        }
        self.peers.clear();
        self.remove_self();
        rx.close();
        while let Ok(cmd) = rx.try_recv() {
            refuse(cmd, || RoomError::Unavailable);
        }
    }

    fn remove_self(&self) {
        remove_from_map(&self.shared, self.id, &self.inbox);
    }

    /// Handles a burst of commands; `false` if the room must stop (storage failed).
    async fn handle(&mut self, burst: Vec<Cmd>) -> bool {
        let mut deferred: Vec<Deferred> = Vec::new();
        let mut origins: HashSet<u64> = HashSet::new();
        let mut changed: Option<Vec<u8>> = None;
        let mut after: Vec<Cmd> = Vec::new();
        {
            let mut txn = self.doc.transact_mut();
            for cmd in burst {
                match cmd {
                    Cmd::Messages { id, messages } => {
                        for m in messages {
                            let Some(peer) = self.peers.get_mut(&id) else {
                                break;
                            };
                            match m {
                                Incoming::SyncStep1(sv) => {
                                    let diff = txn.encode_state_as_update_v1(&sv);
                                    deferred.push(Deferred::To(
                                        id,
                                        frame(Message::Sync(SyncMessage::SyncStep2(diff))),
                                    ));
                                }
                                Incoming::Update(update, size) => {
                                    if peer.level < Level::Edit {
                                        if !peer.told_read_only {
                                            peer.told_read_only = true;
                                            deferred.push(Deferred::To(
                                                id,
                                                frame(Message::Auth(Some(
                                                    "permission-denied: read-only access".into(),
                                                ))),
                                            ));
                                        }
                                        continue;
                                    }
                                    if self.approx_bytes + size
                                        > self.shared.limits.max_document_bytes
                                    {
                                        peer.kill(close::TOO_LARGE, "document size limit reached");
                                        continue;
                                    }
                                    let applied =
                                        std::panic::catch_unwind(AssertUnwindSafe(|| {
                                            txn.apply_update(update)
                                        }));
                                    match applied {
                                        Ok(Ok(())) => {
                                            self.approx_bytes += size;
                                            origins.insert(id);
                                        }
                                        Ok(Err(e)) => {
                                            tracing::info!(error = %e, "refused a malformed update");
                                            peer.kill(close::MALFORMED, "malformed update");
                                        }
                                        Err(_) => {
                                            tracing::error!("applying an update panicked; reloading the document");
                                            peer.kill(close::MALFORMED, "malformed update");
                                            return false;
                                        }
                                    }
                                }
                                Incoming::Awareness(update) => {
                                    let from = Sender {
                                        conn: id,
                                        user: peer.user,
                                        may_edit: peer.level >= Level::Edit,
                                    };
                                    if let Some(kept) = self.presence.admit(from, update) {
                                        deferred.push(Deferred::Everyone(frame(
                                            Message::Awareness(kept),
                                        )));
                                    }
                                }
                                Incoming::AwarenessQuery => {
                                    if let Some(all) = self.presence.snapshot() {
                                        deferred
                                            .push(Deferred::To(id, frame(Message::Awareness(all))));
                                    }
                                }
                            }
                        }
                    }
                    other => after.push(other),
                }
            }
            let touched = txn.before_state() != txn.after_state() || !txn.delete_set().is_empty();
            if touched {
                changed = Some(txn.encode_update_v1());
            }
        }
        if let Some(update) = changed {
            match self.persist(update.clone(), None).await {
                Ok(()) => {}
                Err(RoomError::Gone) => {
                    for peer in self.peers.values() {
                        peer.kill(close::FORBIDDEN, "the document was deleted");
                    }
                    return false;
                }
                Err(RoomError::Stale) => {
                    tracing::warn!("the document was changed elsewhere; reloading it");
                    for peer in self.peers.values() {
                        peer.kill(
                            close::TRY_AGAIN,
                            "the document changed elsewhere; reconnect",
                        );
                    }
                    return false;
                }
                Err(e) => {
                    tracing::error!(error = %e, "storing document updates failed");
                    return false;
                }
            }
            self.flush(deferred);
            let message = frame(Message::Sync(SyncMessage::Update(update)));
            let only = if origins.len() == 1 {
                origins.iter().next().copied()
            } else {
                None
            };
            for (id, peer) in &self.peers {
                if Some(*id) != only {
                    peer.send(&message);
                }
            }
        } else {
            self.flush(deferred);
        }
        for cmd in after {
            if !self.control(cmd).await {
                return false;
            }
        }
        self.maybe_compact();
        true
    }

    fn flush(&self, deferred: Vec<Deferred>) {
        for d in deferred {
            match d {
                Deferred::To(id, bytes) => {
                    if let Some(p) = self.peers.get(&id) {
                        p.send(&bytes);
                    }
                }
                Deferred::Everyone(bytes) => {
                    for p in self.peers.values() {
                        p.send(&bytes);
                    }
                }
            }
        }
    }

    /// Stores `update` as the next batch (with `audit`, if given) and waits for the commit.
    /// It is encrypted (and the audit entry prepared) before it reaches the writer; on SQLite
    /// the append runs on the writer's thread unless the key's use must be reserved first.
    async fn persist(&mut self, update: Vec<u8>, audit: Option<Event>) -> Result<(), RoomError> {
        let id = self.id;
        let workspace = self.workspace;
        let keyring = self.shared.keyring.clone();
        let auditor = self.shared.auditor.clone();
        // The room is the only writer of its document while loaded, so it numbers the batch
        // itself; the append refuses a number another process took, and the room reloads.
        let seq = self.last_seq + 1;
        let sealed = keyring
            .seal_ahead(
                &Scope::Workspace(workspace),
                "document_updates",
                update_aad(id, seq),
                "body",
                &update,
            )
            .map_err(Error::from)?;
        let prepared = audit.map(|event| auditor.prepare(event)).transpose()?;
        let (raw_keyring, raw_auditor) = (keyring.clone(), auditor.clone());
        let edited = DomainEvent::DocumentEdited {
            workspace_id: workspace,
            document_id: id,
            seq,
        };
        let raw_edited = edited.clone();
        self.shared
            .store
            .write_enqueued_raw(
                (sealed, prepared),
                move |tx: &mut RawTx<'_>, input: (Sealed, Option<PreparedEvent>)| {
                    let Some(body) = raw_keyring.finish_ready(&input.0) else {
                        return Raw::Declined(input);
                    };
                    let entry = match &input.1 {
                        Some(prepared) => match raw_auditor.finish_ready(prepared, None) {
                            Some(entry) => Some(entry),
                            None => return Raw::Declined(input),
                        },
                        None => None,
                    };
                    match documents::append_update_raw(tx.conn(), id, seq, &body, Utc::now()) {
                        Ok(true) => {}
                        // Nothing written: the asynchronous form says why.
                        Ok(false) => return Raw::Declined(input),
                        Err(err) => return Raw::Failed(RoomError::from(err)),
                    }
                    if let Some(entry) = entry {
                        tx.audit(entry);
                    }
                    tx.emit(raw_edited);
                    Raw::Done(())
                },
                move |tx: &mut Tx, (sealed, prepared): (Sealed, Option<PreparedEvent>)| {
                    Box::pin(async move {
                        let body = keyring.finish(tx, sealed).await.map_err(Error::from)?;
                        if !documents::append_update(&mut tx.conn(), id, seq, &body, Utc::now())
                            .await?
                        {
                            return Err(match documents::by_id(&mut tx.conn(), id).await? {
                                Some(_) => RoomError::Stale,
                                None => RoomError::Gone,
                            });
                        }
                        if let Some(prepared) = prepared {
                            auditor.record_prepared(tx, prepared).await?;
                        }
                        tx.emit(edited);
                        Ok::<(), RoomError>(())
                    })
                },
            )
            .await?
            .await?;
        self.last_seq = seq;
        Ok(())
    }

    /// Handles a command that is not a client message; `false` if the room must stop.
    async fn control(&mut self, cmd: Cmd) -> bool {
        match cmd {
            Cmd::Join { peer, reply } => {
                let id = self.shared.next_peer.fetch_add(1, Ordering::Relaxed);
                let (queue_tx, queue_rx) = mpsc::channel(QUEUE);
                let kill = CancellationToken::new();
                let close_code = Arc::new(Mutex::new((close::SERVER_ERROR, "closed")));
                let p = Peer {
                    user: peer.user,
                    session: peer.session,
                    level: peer.level,
                    queue: queue_tx,
                    kill: kill.clone(),
                    close_code: close_code.clone(),
                    told_read_only: false,
                };
                // The server's state vector first, so the client sends what the server lacks.
                let sv = self.doc.transact().state_vector();
                p.send(&frame(Message::Sync(SyncMessage::SyncStep1(sv))));
                if let Some(all) = self.presence.snapshot() {
                    p.send(&frame(Message::Awareness(all)));
                }
                if p.level < Level::Edit {
                    p.send(&frame(Message::Auth(Some(
                        "permission-denied: read-only access".into(),
                    ))));
                }
                let handle = PeerHandle {
                    id,
                    queue: queue_rx,
                    kill,
                    close_code,
                };
                if reply.send(Ok(handle)).is_ok() {
                    self.peers.insert(id, p);
                }
            }
            Cmd::Leave { id } => {
                if self.peers.remove(&id).is_some() {
                    if let Some(update) = self.presence.leave(id) {
                        let message = frame(Message::Awareness(update));
                        for p in self.peers.values() {
                            p.send(&message);
                        }
                    }
                }
            }
            Cmd::Messages { .. } => {}
            Cmd::State { reply } => {
                let _ = reply.send(Ok(content::full_state(&self.doc)));
            }
            Cmd::Text { reply } => {
                let _ = reply.send(Ok(content::Content::read(&self.doc).plain_text()));
            }
            Cmd::Restore {
                state,
                audit,
                reply,
            } => {
                let result = self.restore(&state, audit).await;
                let failed = matches!(result, Err(RoomError::Service(_) | RoomError::Stale));
                let _ = reply.send(result);
                if failed {
                    return false;
                }
            }
            Cmd::Recheck => self.recheck().await,
            Cmd::Revoked { sessions, idle } => {
                let (code, reason) = if idle {
                    (close::IDLE_LOGOFF, "session ended after inactivity")
                } else {
                    (close::UNAUTHENTICATED, "session revoked")
                };
                for peer in self.peers.values() {
                    if sessions.contains(&peer.session) {
                        peer.kill(code, reason);
                    }
                }
            }
            Cmd::Compacted {
                upto_seq,
                size,
                stale,
            } => {
                self.compacting = false;
                if stale {
                    tracing::warn!("the document was compacted elsewhere; reloading it");
                    for peer in self.peers.values() {
                        peer.kill(
                            close::TRY_AGAIN,
                            "the document changed elsewhere; reconnect",
                        );
                    }
                    return false;
                }
                if upto_seq > self.snapshot_seq {
                    self.snapshot_seq = upto_seq;
                    self.approx_bytes = size;
                }
            }
        }
        true
    }

    async fn restore(&mut self, state: &[u8], audit: Event) -> Result<(), RoomError> {
        let version = content::doc_from_state(state)?;
        let roots = content::prepare_restore(&self.doc, &version);
        let update = {
            let mut txn = self.doc.transact_mut();
            content::restore(&mut txn, &roots);
            txn.encode_update_v1()
        };
        self.persist(update.clone(), Some(audit)).await?;
        let message = frame(Message::Sync(SyncMessage::Update(update)));
        for peer in self.peers.values() {
            peer.send(&message);
        }
        Ok(())
    }

    async fn recheck(&mut self) {
        let mut reader = match self.shared.store.reader().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot recheck document access");
                return;
            }
        };
        for peer in self.peers.values_mut() {
            match rbac::document_level(&mut reader.conn(), peer.user, self.id).await {
                Ok(Some(level)) => peer.level = level,
                Ok(None) => peer.kill(close::FORBIDDEN, "access to this document ended"),
                Err(e) => tracing::warn!(error = %e, "cannot recheck document access"),
            }
        }
    }

    fn maybe_compact(&mut self) {
        let pending = (self.last_seq - self.snapshot_seq).max(0) as u64;
        if self.compacting || pending < self.shared.limits.compact_after {
            return;
        }
        self.compacting = true;
        let state = content::full_state(&self.doc);
        let upto = self.last_seq;
        let shared = self.shared.clone();
        let inbox = self.inbox.clone();
        let (id, workspace) = (self.id, self.workspace);
        tokio::spawn(async move {
            let size = state.len();
            let (upto_seq, stale) = match store_snapshot(&shared, id, workspace, upto, state).await
            {
                Ok(true) => (upto, false),
                Ok(false) => (0, true),
                Err(e) => {
                    tracing::warn!(document = %id, error = %e, "compacting the document log failed");
                    (0, false)
                }
            };
            let _ = inbox
                .send(Cmd::Compacted {
                    upto_seq,
                    size,
                    stale,
                })
                .await;
        });
    }

    /// Compacts the log up to `last_seq`; `false` if a newer snapshot is stored (the room's
    /// copy is stale). A failure to store is logged and leaves the log as it is.
    async fn compact_now(&mut self) -> bool {
        let state = content::full_state(&self.doc);
        let size = state.len();
        match store_snapshot(&self.shared, self.id, self.workspace, self.last_seq, state).await {
            Ok(true) => {
                self.snapshot_seq = self.last_seq;
                self.approx_bytes = size;
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(document = %self.id, error = %e, "compacting the document log failed");
                true
            }
        }
    }
}
