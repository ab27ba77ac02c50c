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
//!
//! One concept per file: this file the handle (`Rooms`, what the rest of the server calls)
//! and its `Limits`; `actor` the task that owns one open document; `peer` a connection's
//! side of a room and what it exchanges with it; `load` reading a document's stored state;
//! `snapshot` storing the compacted state; `error` why a room refused; `close` the close
//! codes of the document endpoint.

mod actor;
pub mod close;
mod error;
mod load;
mod peer;
mod snapshot;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::content;
use crate::audit::{Auditor, Event};
use crate::crypto::Keyring;
use crate::domain::{DocumentId, SessionId, UserId};
use crate::events::{DomainEvent, Events, RecvError};
use crate::rbac::Level;
use crate::store::Store;

use actor::{run_room, Cmd};
use load::{load, load_until};
use peer::PeerInit;

pub use error::RoomError;
pub use peer::{Incoming, Outbound, PeerHandle};

/// Commands a room buffers before senders wait.
const INBOX: usize = 1024;

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
            DomainEvent::SessionsRevoked {
                sessions, reason, ..
            } => {
                let sessions: Arc<HashSet<SessionId>> =
                    Arc::new(sessions.iter().copied().collect());
                let idle = reason == crate::auth::IDLE_REASON;
                self.broadcast(|| Cmd::Revoked {
                    sessions: sessions.clone(),
                    idle,
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

    /// The document's committed content as plain text, for a reader that must not open a
    /// room (search indexing, also from the command line): read in the room if this process
    /// has it open (no second copy of the document is decoded), otherwise from storage, so no
    /// document is kept in memory or compacted on its behalf.
    pub async fn committed_text(&self, doc: DocumentId) -> Result<String, RoomError> {
        let open = self
            .shared
            .rooms
            .lock()
            .ok()
            .is_some_and(|m| m.get(&doc).is_some_and(|s| !s.is_closed()));
        if open {
            return self.request(doc, |reply| Cmd::Text { reply }).await;
        }
        let loaded = load(&self.shared, doc).await?;
        Ok(content::Content::read(&loaded.doc).plain_text())
    }

    /// The document's state after update `upto` (its snapshot and the stored updates up to
    /// that number, merged in a fresh Yrs document so deleted content is left out), sealed
    /// ahead as the snapshot covering `upto`; `None` if the stored snapshot already covers
    /// it. Read from storage, never from an open room, whose state includes later edits:
    /// the retention job stores it with `store::documents::save_snapshot`, which replaces
    /// only an older snapshot and drops the updates it covers, so live rooms keep appending
    /// after it (see `snapshot::store_snapshot`).
    pub async fn sealed_history(
        &self,
        doc: DocumentId,
        upto: i64,
    ) -> Result<Option<crate::crypto::Sealed>, RoomError> {
        let loaded = load_until(&self.shared, doc, upto).await?;
        if loaded.snapshot_seq >= upto || loaded.last_seq < upto {
            return Ok(None);
        }
        let state = content::full_state(&loaded.doc);
        let sealed = self
            .shared
            .keyring
            .seal_ahead(
                &crate::crypto::Scope::Workspace(loaded.workspace),
                "document_snapshots",
                load::update_aad(doc, upto),
                "state",
                &state,
            )
            .map_err(crate::error::Error::from)?;
        Ok(Some(sealed))
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
