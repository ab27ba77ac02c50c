//! Live documents: one task per open document owns its Yjs state and its connections.
//!
//! A room loads the document (snapshot plus the updates after it, decrypted) on first use.
//! Connections hand it parsed y-protocols messages; the room applies a burst of them in one
//! Yjs transaction, stores the resulting change encrypted through the group-commit writer,
//! and only after that commit sends it to the connections and answers sync requests, so no
//! client ever holds an edit the server could still lose. Awareness (cursors, names) is
//! relayed to the document's connections under the rules of `awareness` and kept in memory only. When the log grows,
//! the room merges it into an encrypted snapshot in the background. An idle room leaves
//! memory after `docs.idle_seconds`.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use chrono::Utc;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use yrs::sync::{AwarenessUpdate, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

use super::awareness::{Presence, Sender};
use super::content;
use crate::audit::{Auditor, Event};
use crate::crypto::{Aad, Keyring, Scope};
use crate::domain::{DocumentId, SessionId, UserId, WorkspaceId};
use crate::error::Error;
use crate::events::{DomainEvent, Events, RecvError};
use crate::rbac::{self, Level};
use crate::store::documents;
use crate::store::{Store, StoreError, Tx};

/// Close codes of the document endpoint (4400–4499 are permanent: clients should not retry).
pub mod close {
    /// A message that is not valid y-protocols or Yjs.
    pub const MALFORMED: u16 = 4400;
    /// Not signed in, or the session ended.
    pub const UNAUTHENTICATED: u16 = 4401;
    /// No access to this document (or it does not exist).
    pub const FORBIDDEN: u16 = 4403;
    /// An update or the document is over its size limit.
    pub const TOO_LARGE: u16 = 4413;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// The server failed; reconnect.
    pub const SERVER_ERROR: u16 = 1011;
    /// The connection fell too far behind; reconnect.
    pub const TRY_AGAIN: u16 = 1013;
}

/// Frames queued for one connection before it is considered too slow.
const QUEUE: usize = 1024;
/// Commands a room buffers before senders wait.
const INBOX: usize = 1024;
/// Most commands handled in one Yjs transaction and one commit.
const BURST: usize = 512;

/// Document limits and housekeeping, from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest update a client may send.
    pub max_update_bytes: usize,
    /// Largest a document may grow.
    pub max_document_bytes: usize,
    /// How long a room without connections stays in memory.
    pub idle: Duration,
    /// Stored batches after which the log is compacted.
    pub compact_after: u64,
    /// Largest awareness state (one client's JSON), in bytes.
    pub awareness_state_bytes: usize,
    /// Most awareness client ids one editing connection may own (others own one).
    pub awareness_clients: usize,
}

/// Why a room could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    /// The document no longer exists.
    #[error("document not found")]
    Gone,
    /// The room is shutting down or failed; try again.
    #[error("the document is unavailable; try again")]
    Unavailable,
    /// The stored state cannot be read.
    #[error(transparent)]
    State(#[from] content::StateError),
    /// A service-level failure (storage, encryption, audit).
    #[error(transparent)]
    Service(#[from] Error),
}

impl From<StoreError> for RoomError {
    fn from(e: StoreError) -> Self {
        RoomError::Service(e.into())
    }
}

impl From<RoomError> for Error {
    fn from(e: RoomError) -> Self {
        match e {
            RoomError::Gone => Error::NotFound("document"),
            RoomError::Unavailable => Error::Internal("document unavailable".into()),
            RoomError::State(s) => Error::Internal(s.to_string()),
            RoomError::Service(e) => e,
        }
    }
}

/// What a connection receives: frames to send, or the instruction to close.
#[derive(Debug)]
pub enum Outbound {
    /// A binary y-protocols frame.
    Frame(Bytes),
}

/// A connection's side of the room: its queue and its kill switch.
pub struct PeerHandle {
    /// The connection's id within the room.
    pub id: u64,
    /// Frames to send.
    pub queue: mpsc::Receiver<Outbound>,
    /// Cancelled when the room closes the connection; `close_code` says why.
    pub kill: CancellationToken,
    /// Code and reason to close with when killed.
    pub close_code: Arc<Mutex<(u16, &'static str)>>,
}

/// An incoming y-protocols message, already parsed and checked by the connection.
pub enum Incoming {
    /// The client's state vector: answer with what it is missing.
    SyncStep1(StateVector),
    /// Content from the client (sync step 2 or an update), with its encoded size.
    Update(Update, usize),
    /// A cursor/presence update.
    Awareness(AwarenessUpdate),
    /// The client asks for everyone's awareness.
    AwarenessQuery,
}

struct PeerInit {
    user: UserId,
    session: SessionId,
    level: Level,
}

enum Cmd {
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
    Restore {
        state: Vec<u8>,
        audit: Event,
        reply: oneshot::Sender<Result<(), RoomError>>,
    },
    Recheck,
    Revoked {
        sessions: Arc<HashSet<SessionId>>,
    },
    Compacted {
        upto_seq: i64,
        size: usize,
    },
}

struct Shared {
    store: Store,
    keyring: Keyring,
    auditor: Auditor,
    limits: Limits,
    rooms: Mutex<HashMap<DocumentId, mpsc::Sender<Cmd>>>,
    going_away: CancellationToken,
    next_peer: AtomicU64,
}

/// The live documents of this server; cheap to clone.
#[derive(Clone)]
pub struct Rooms {
    shared: Arc<Shared>,
}

impl Rooms {
    /// Starts the room registry; it follows `events` to close connections whose access ends.
    pub fn start(
        store: Store,
        auditor: Auditor,
        limits: Limits,
        events: &Events,
        going_away: CancellationToken,
    ) -> Rooms {
        let rooms = Rooms {
            shared: Arc::new(Shared {
                store,
                keyring: auditor.keyring().clone(),
                auditor,
                limits,
                rooms: Mutex::new(HashMap::new()),
                going_away,
                next_peer: AtomicU64::new(1),
            }),
        };
        let follower = rooms.clone();
        let mut rx = events.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = follower.shared.going_away.cancelled() => break,
                    event = rx.recv() => match event {
                        Ok(e) => follower.follow(&e),
                        Err(RecvError::Lagged(_)) => {
                            follower.broadcast(|| Cmd::Recheck)
                        }
                        Err(RecvError::Closed) => break,
                    }
                }
            }
        });
        rooms
    }

    /// How many documents are in memory.
    pub fn open_documents(&self) -> usize {
        self.shared.rooms.lock().map(|m| m.len()).unwrap_or(0)
    }

    fn follow(&self, event: &DomainEvent) {
        match event {
            DomainEvent::SessionsRevoked { sessions, .. } => {
                let sessions: Arc<HashSet<SessionId>> =
                    Arc::new(sessions.iter().copied().collect());
                self.broadcast(|| Cmd::Revoked {
                    sessions: sessions.clone(),
                });
            }
            DomainEvent::DocumentChanged { document_id, .. } => {
                let sender = self
                    .shared
                    .rooms
                    .lock()
                    .ok()
                    .and_then(|m| m.get(document_id).cloned());
                if let Some(s) = sender {
                    let _ = s.try_send(Cmd::Recheck);
                }
            }
            DomainEvent::MemberRemoved { .. }
            | DomainEvent::MemberRoleChanged { .. }
            | DomainEvent::ChannelMemberRemoved { .. } => self.broadcast(|| Cmd::Recheck),
            _ => {}
        }
    }

    fn broadcast(&self, cmd: impl Fn() -> Cmd) {
        let senders: Vec<mpsc::Sender<Cmd>> = self
            .shared
            .rooms
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for s in senders {
            let _ = s.try_send(cmd());
        }
    }

    fn sender(&self, doc: DocumentId) -> Option<mpsc::Sender<Cmd>> {
        let mut map = self.shared.rooms.lock().ok()?;
        if let Some(s) = map.get(&doc) {
            if !s.is_closed() {
                return Some(s.clone());
            }
        }
        let (tx, rx) = mpsc::channel(INBOX);
        map.insert(doc, tx.clone());
        let shared = self.shared.clone();
        tokio::spawn(async move { run_room(shared, doc, rx).await });
        Some(tx)
    }

    /// Sends a command that expects a reply, retrying if the room was leaving memory.
    async fn request<T>(
        &self,
        doc: DocumentId,
        make: impl Fn(oneshot::Sender<Result<T, RoomError>>) -> Cmd,
    ) -> Result<T, RoomError> {
        for _ in 0..5 {
            let sender = self.sender(doc).ok_or(RoomError::Unavailable)?;
            let (tx, rx) = oneshot::channel();
            if sender.send(make(tx)).await.is_err() {
                continue;
            }
            match rx.await {
                Ok(result) => return result,
                Err(_) => continue,
            }
        }
        Err(RoomError::Unavailable)
    }

    /// Registers a connection of `user` with access `level`.
    pub async fn join(
        &self,
        doc: DocumentId,
        user: UserId,
        session: SessionId,
        level: Level,
    ) -> Result<PeerHandle, RoomError> {
        self.request(doc, |reply| Cmd::Join {
            peer: PeerInit {
                user,
                session,
                level,
            },
            reply,
        })
        .await
    }

    /// Hands a connection's messages to its room (waits if the room is busy).
    pub async fn deliver(&self, doc: DocumentId, id: u64, messages: Vec<Incoming>) -> bool {
        let sender = self
            .shared
            .rooms
            .lock()
            .ok()
            .and_then(|m| m.get(&doc).cloned());
        match sender {
            Some(s) => s.send(Cmd::Messages { id, messages }).await.is_ok(),
            None => false,
        }
    }

    /// Unregisters a connection.
    pub async fn leave(&self, doc: DocumentId, id: u64) {
        let sender = self
            .shared
            .rooms
            .lock()
            .ok()
            .and_then(|m| m.get(&doc).cloned());
        if let Some(s) = sender {
            let _ = s.send(Cmd::Leave { id }).await;
        }
    }

    /// The document's committed state as one Yjs update.
    pub async fn state(&self, doc: DocumentId) -> Result<Vec<u8>, RoomError> {
        self.request(doc, |reply| Cmd::State { reply }).await
    }

    /// The same committed state for a reader that must not open a room (search indexing,
    /// also from the command line): from the room if this process has it open, otherwise
    /// read from storage, so no document is kept in memory or compacted on its behalf.
    pub async fn committed_state(&self, doc: DocumentId) -> Result<Vec<u8>, RoomError> {
        let open = self
            .shared
            .rooms
            .lock()
            .ok()
            .is_some_and(|m| m.get(&doc).is_some_and(|s| !s.is_closed()));
        if open {
            return self.state(doc).await;
        }
        let loaded = load(&self.shared, doc).await?;
        Ok(content::full_state(&loaded.doc))
    }

    /// Makes the document hold `state`'s content again, as a new change everyone receives;
    /// `audit` is recorded in the same commit.
    pub async fn restore(
        &self,
        doc: DocumentId,
        state: Vec<u8>,
        audit: Event,
    ) -> Result<(), RoomError> {
        self.request(doc, |reply| Cmd::Restore {
            state: state.clone(),
            audit: audit.clone(),
            reply,
        })
        .await
    }

    /// Waits (up to `limit`) until every room has stored its changes and left memory.
    pub async fn drain(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.open_documents() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

struct Peer {
    user: UserId,
    session: SessionId,
    level: Level,
    queue: mpsc::Sender<Outbound>,
    kill: CancellationToken,
    close_code: Arc<Mutex<(u16, &'static str)>>,
    told_read_only: bool,
}

impl Peer {
    fn kill(&self, code: u16, reason: &'static str) {
        if self.kill.is_cancelled() {
            return;
        }
        if let Ok(mut c) = self.close_code.lock() {
            *c = (code, reason);
        }
        self.kill.cancel();
    }

    fn send(&self, frame: &Bytes) {
        if self.kill.is_cancelled() {
            return;
        }
        if self.queue.try_send(Outbound::Frame(frame.clone())).is_err() {
            self.kill(close::TRY_AGAIN, "connection too slow; reconnect");
        }
    }
}

fn frame(message: Message) -> Bytes {
    Bytes::from(message.encode_v1())
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

async fn run_room(shared: Arc<Shared>, id: DocumentId, mut rx: mpsc::Receiver<Cmd>) {
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
        Cmd::Restore { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
        _ => {}
    }
}

struct Loaded {
    doc: Doc,
    workspace: WorkspaceId,
    last_seq: i64,
    snapshot_seq: i64,
    bytes: usize,
}

pub(super) fn update_aad(id: DocumentId, seq: i64) -> String {
    format!("{id}:{seq}")
}

async fn load(shared: &Shared, id: DocumentId) -> Result<Loaded, RoomError> {
    let mut reader = shared.store.reader().await?;
    let mut conn = reader.conn();
    let record = documents::by_id(&mut conn, id)
        .await?
        .ok_or(RoomError::Gone)?;
    let (snapshot, updates) = documents::load(&mut conn, id).await?;
    let scope = Scope::Workspace(record.workspace_id);
    let doc = Doc::new();
    let mut bytes = 0;
    let mut snapshot_seq = 0;
    {
        let mut parts = Vec::with_capacity(updates.len() + 1);
        if let Some(s) = snapshot {
            let row = update_aad(id, s.upto_seq);
            let plain = shared
                .keyring
                .decrypt(
                    &mut conn,
                    &scope,
                    Aad {
                        table: "document_snapshots",
                        row: &row,
                        column: "state",
                    },
                    &s.state,
                )
                .await
                .map_err(Error::from)?;
            snapshot_seq = s.upto_seq;
            parts.push(plain);
        }
        for u in updates {
            let row = update_aad(id, u.seq);
            let plain = shared
                .keyring
                .decrypt(
                    &mut conn,
                    &scope,
                    Aad {
                        table: "document_updates",
                        row: &row,
                        column: "body",
                    },
                    &u.body,
                )
                .await
                .map_err(Error::from)?;
            parts.push(plain);
        }
        let mut txn = doc.transact_mut();
        for part in parts {
            bytes += part.len();
            let update =
                Update::decode_v1(&part).map_err(|e| content::StateError(e.to_string()))?;
            txn.apply_update(update)
                .map_err(|e| content::StateError(e.to_string()))?;
        }
    }
    Ok(Loaded {
        doc,
        workspace: record.workspace_id,
        last_seq: record.last_seq,
        snapshot_seq,
        bytes,
    })
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
                    if self.try_leave(&rx).await {
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
    async fn try_leave(&mut self, rx: &mpsc::Receiver<Cmd>) -> bool {
        if self.last_seq > self.snapshot_seq {
            self.compact_now().await;
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
    async fn persist(&mut self, update: Vec<u8>, audit: Option<Event>) -> Result<(), RoomError> {
        let id = self.id;
        let workspace = self.workspace;
        let keyring = self.shared.keyring.clone();
        let auditor = self.shared.auditor.clone();
        let seq = self
            .shared
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let now = Utc::now();
                    let seq = documents::next_seq(&mut tx.conn(), id, now)
                        .await?
                        .ok_or(RoomError::Gone)?;
                    let row = update_aad(id, seq);
                    let body = keyring
                        .encrypt(
                            tx,
                            &Scope::Workspace(workspace),
                            Aad {
                                table: "document_updates",
                                row: &row,
                                column: "body",
                            },
                            &update,
                        )
                        .await
                        .map_err(Error::from)?;
                    documents::append_update(&mut tx.conn(), id, seq, &body, now).await?;
                    if let Some(event) = audit {
                        auditor.record(tx, event).await?;
                    }
                    tx.emit(DomainEvent::DocumentEdited {
                        workspace_id: workspace,
                        document_id: id,
                        seq,
                    });
                    Ok::<i64, RoomError>(seq)
                })
            })
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
            Cmd::Restore {
                state,
                audit,
                reply,
            } => {
                let result = self.restore(&state, audit).await;
                let failed = matches!(result, Err(RoomError::Service(_)));
                let _ = reply.send(result);
                if failed {
                    return false;
                }
            }
            Cmd::Recheck => self.recheck().await,
            Cmd::Revoked { sessions } => {
                for peer in self.peers.values() {
                    if sessions.contains(&peer.session) {
                        peer.kill(close::UNAUTHENTICATED, "session revoked");
                    }
                }
            }
            Cmd::Compacted { upto_seq, size } => {
                self.compacting = false;
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
            let ok = match store_snapshot(&shared, id, workspace, upto, state).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(document = %id, error = %e, "compacting the document log failed");
                    false
                }
            };
            let upto_seq = if ok { upto } else { 0 };
            let _ = inbox.send(Cmd::Compacted { upto_seq, size }).await;
        });
    }

    async fn compact_now(&mut self) {
        let state = content::full_state(&self.doc);
        let size = state.len();
        match store_snapshot(&self.shared, self.id, self.workspace, self.last_seq, state).await {
            Ok(()) => {
                self.snapshot_seq = self.last_seq;
                self.approx_bytes = size;
            }
            Err(e) => {
                tracing::warn!(document = %self.id, error = %e, "compacting the document log failed")
            }
        }
    }
}

async fn store_snapshot(
    shared: &Shared,
    id: DocumentId,
    workspace: WorkspaceId,
    upto: i64,
    state: Vec<u8>,
) -> Result<(), Error> {
    let keyring = shared.keyring.clone();
    shared
        .store
        .write(move |tx: &mut Tx| {
            Box::pin(async move {
                let row = update_aad(id, upto);
                let sealed = keyring
                    .encrypt(
                        tx,
                        &Scope::Workspace(workspace),
                        Aad {
                            table: "document_snapshots",
                            row: &row,
                            column: "state",
                        },
                        &state,
                    )
                    .await?;
                documents::save_snapshot(&mut tx.conn(), id, upto, &sealed, Utc::now()).await?;
                Ok::<(), Error>(())
            })
        })
        .await
}
