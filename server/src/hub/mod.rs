//! The WebSocket hub: delivers committed events to exactly the people allowed to see them.
//!
//! The hub subscribes to the event bus ([`Events`]: in-process now; a bus spanning nodes
//! implements the same trait and the hub does not change). Each event is mapped to its wire
//! form in one place ([`protocol::live_event`]), numbered in commit order, encoded once,
//! remembered in a bounded replay ring with its recipients, and queued to every connection
//! of every recipient. Message events carry ids; the decrypted message travels beside them
//! only within the process that wrote it, and an event that arrives without it (from another
//! process) is completed by reading the message through a [`MessageReader`], only if it is in
//! the event's channel and workspace (an event whose message cannot be read is skipped alone,
//! with a warning). Channel membership is cached and updated from the same
//! event stream, so a member who leaves stops receiving at once; so is the list of
//! workspaces each connection shares presence in, so a person removed from a workspace
//! neither sees nor shows presence there from that moment, on the sockets already open.
//!
//! Every connection has a bounded outbound queue; a client too slow to drain it is closed
//! with [`protocol::CLOSE_RESYNC`] and never slows the others. A client reconnecting with its
//! epoch and last sequence number gets exactly what it missed from the ring, or an explicit
//! resync instruction when the ring no longer reaches back that far.
//!
//! Every frame of the greeting is small: the presence snapshot a new connection gets is split
//! into frames of at most [`protocol::PRESENCE_PER_FRAME`] people (the `hello`, then
//! `presence_snapshot` frames), because the WebSocket writer keeps, for the connection's whole
//! life, a buffer as large as the largest frame it ever wrote. The snapshot is read from an
//! index of who shares presence in each workspace, so a connect costs the people it is told
//! about, not every open connection.

pub mod connection;
pub mod protocol;

pub use connection::serve;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::chat::{ChatService, EphemeralMessageView, MessageView};
use crate::domain::{ChannelId, MessageId, SessionId, UserId, WorkspaceId};
use crate::events::{DomainEvent, Events, RecvError, Subscription};
use crate::store::{channels, workspaces, Store, StoreError};
use protocol::{PresenceStatus, ServerFrame};

/// Frames a connection may have queued before it counts as too slow.
pub const QUEUE_DEPTH: usize = 256;
/// Events remembered for clients that reconnect.
const RING: usize = 20_000;
/// Typing notices per user and channel at most this often.
const TYPING_EVERY: Duration = Duration::from_secs(2);

/// Something queued for one connection.
#[derive(Clone, Debug)]
pub enum Outbound {
    /// A text frame, shared by every recipient of the same event.
    Frame(Utf8Bytes),
}

struct Sequenced {
    seq: u64,
    recipients: Arc<HashSet<UserId>>,
    frame: Utf8Bytes,
}

struct ConnEntry {
    user: UserId,
    session: SessionId,
    workspaces: Vec<WorkspaceId>,
    away: bool,
    queue: mpsc::Sender<Outbound>,
    /// Cancelled when the connection must close at once (too slow, revoked).
    kill: CancellationToken,
    kill_code: Arc<Mutex<(u16, &'static str)>>,
}

#[derive(Default)]
struct State {
    seq: u64,
    next_conn: u64,
    conns: HashMap<u64, ConnEntry>,
    by_user: HashMap<UserId, Vec<u64>>,
    members: HashMap<ChannelId, Arc<HashSet<UserId>>>,
    ring: VecDeque<Sequenced>,
    typing: HashMap<(UserId, ChannelId), Instant>,
    /// Counts workspace membership events, so a connection registering while one is routed
    /// reads its workspaces again.
    membership_changes: u64,
    /// For each workspace, who shares presence there and on how many connections (the
    /// connections whose `workspaces` list it); kept with `conns`, so presence is found
    /// without scanning every connection.
    sharing: HashMap<WorkspaceId, HashMap<UserId, usize>>,
}

impl State {
    /// One more connection of `user` shares presence in `workspace`.
    fn share(&mut self, user: UserId, workspace: WorkspaceId) {
        *self
            .sharing
            .entry(workspace)
            .or_default()
            .entry(user)
            .or_default() += 1;
    }

    /// One connection of `user` no longer shares presence in `workspace`.
    fn unshare(&mut self, user: UserId, workspace: WorkspaceId) {
        let Some(users) = self.sharing.get_mut(&workspace) else {
            return;
        };
        if let Some(count) = users.get_mut(&user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                users.remove(&user);
            }
        }
        if users.is_empty() {
            self.sharing.remove(&workspace);
        }
    }

    /// Everyone but `user` connected in any of `workspaces`.
    fn sharing_with(&self, user: UserId, workspaces: &[WorkspaceId]) -> HashSet<UserId> {
        workspaces
            .iter()
            .filter_map(|w| self.sharing.get(w))
            .flat_map(|users| users.keys().copied())
            .filter(|other| *other != user)
            .collect()
    }
}

/// The hub; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    epoch: String,
    store: Store,
    messages: Arc<dyn MessageReader>,
    state: Mutex<State>,
}

/// Reads a message as its channel's members see it, for message events that arrive without
/// it (published by another process).
pub trait MessageReader: Send + Sync + 'static {
    /// The message now, or `None` if it no longer exists or is not in `channel` of
    /// `workspace` (the channel and workspace the event names).
    fn message(
        &self,
        workspace: WorkspaceId,
        channel: ChannelId,
        id: MessageId,
    ) -> BoxFuture<'_, Result<Option<MessageView>, crate::error::Error>>;
}

impl MessageReader for ChatService {
    fn message(
        &self,
        workspace: WorkspaceId,
        channel: ChannelId,
        id: MessageId,
    ) -> BoxFuture<'_, Result<Option<MessageView>, crate::error::Error>> {
        Box::pin(self.message_for_delivery(workspace, channel, id))
    }
}

/// Why an event could not be routed (every client then resynchronises).
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// Channel members could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A registered connection's handles.
pub struct Registration {
    /// Its id in the hub.
    pub id: u64,
    /// Frames to write.
    pub queue: mpsc::Receiver<Outbound>,
    /// A sender to the same queue (for answers to this client).
    pub reply: mpsc::Sender<Outbound>,
    /// Cancelled when the hub wants the connection closed now.
    pub kill: CancellationToken,
    /// Code and reason to close with when killed.
    pub kill_code: Arc<Mutex<(u16, &'static str)>>,
    /// The `hello` frame, the `presence_snapshot` frames and the replayed frames, in order,
    /// each at most a few KiB but for replayed events.
    pub greeting: Vec<Utf8Bytes>,
}

impl Hub {
    /// Starts the hub's fan-out from `events` until `stop` is cancelled; `messages` reads
    /// what a message event arriving without its message needs.
    pub fn start(
        store: Store,
        events: &Events,
        messages: Arc<dyn MessageReader>,
        stop: CancellationToken,
    ) -> Hub {
        let hub = Hub {
            inner: Arc::new(Inner {
                epoch: uuid::Uuid::now_v7().to_string(),
                store,
                messages,
                state: Mutex::new(State::default()),
            }),
        };
        let receiver = events.subscribe();
        let runner = hub.clone();
        tokio::spawn(async move { runner.fan_out(receiver, stop).await });
        hub
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock would poison it; the data stays consistent because
        // every critical section is a few map operations, so recover the guard.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many connections are open.
    pub fn connections(&self) -> usize {
        self.state().conns.len()
    }

    async fn fan_out(&self, mut receiver: Subscription, stop: CancellationToken) {
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => break,
                event = receiver.recv() => event,
            };
            match event {
                Ok(event) => {
                    if let Err(err) = self.route(&event).await {
                        tracing::error!(error = %err, "hub could not route an event; clients will resync");
                        self.resync_everyone();
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "hub fell behind the event bus; asking clients to resync"
                    );
                    self.resync_everyone();
                }
                Err(RecvError::Closed) => break,
            }
        }
        let state = self.state();
        for conn in state.conns.values() {
            kill(conn, protocol::CLOSE_GOING_AWAY, "server shutting down");
        }
    }

    fn resync_everyone(&self) {
        let mut state = self.state();
        state.ring.clear();
        state.members.clear();
        for conn in state.conns.values() {
            kill(
                conn,
                protocol::CLOSE_RESYNC,
                "events were missed; resynchronise",
            );
        }
    }

    async fn members_of(&self, channel: ChannelId) -> Result<Arc<HashSet<UserId>>, StoreError> {
        if let Some(m) = self.state().members.get(&channel) {
            return Ok(m.clone());
        }
        let mut conn = self.inner.store.reader().await?;
        let set: HashSet<UserId> = channels::members(&mut conn.conn(), channel)
            .await?
            .into_iter()
            .map(|m| m.user_id)
            .collect();
        let set = Arc::new(set);
        self.state().members.insert(channel, set.clone());
        Ok(set)
    }

    async fn route(&self, event: &DomainEvent) -> Result<(), HubError> {
        // The common case (a message) shares the cached member set: no copy per event.
        let recipients: Arc<HashSet<UserId>> = match event {
            DomainEvent::SessionsRevoked {
                sessions, reason, ..
            } => {
                let (code, why) = if reason == crate::auth::IDLE_REASON {
                    (
                        protocol::CLOSE_IDLE_LOGOFF,
                        "session ended after inactivity",
                    )
                } else {
                    (protocol::CLOSE_REVOKED, "session revoked")
                };
                let state = self.state();
                for conn in state
                    .conns
                    .values()
                    .filter(|c| sessions.contains(&c.session))
                {
                    kill(conn, code, why);
                }
                return Ok(());
            }
            DomainEvent::MemberAdded {
                workspace_id,
                user_id,
                ..
            } => {
                self.joined_workspace(*user_id, *workspace_id);
                return Ok(());
            }
            DomainEvent::MemberRemoved {
                workspace_id,
                user_id,
            } => {
                self.left_workspace(*user_id, *workspace_id);
                return Ok(());
            }
            DomainEvent::ReadStateChanged { user_id, .. } => Arc::new(HashSet::from([*user_id])),
            DomainEvent::ProcessingRestrictionLifted { user_id, .. } => {
                Arc::new(HashSet::from([*user_id]))
            }
            DomainEvent::UserProfileChanged { user_id, .. } => {
                Arc::new(self.sharing_a_workspace(*user_id).await?)
            }
            DomainEvent::BreakGlassStarted { notify, .. }
            | DomainEvent::BreakGlassEnded { notify, .. }
            | DomainEvent::WorkflowTaskChanged { notify, .. }
            | DomainEvent::WorkflowInstanceChanged { notify, .. } => {
                Arc::new(notify.iter().copied().collect())
            }
            DomainEvent::ChannelMemberAdded {
                channel_id,
                user_id,
                ..
            } => {
                let mut set = (*self.members_of(*channel_id).await?).clone();
                set.insert(*user_id);
                let set = Arc::new(set);
                self.state().members.insert(*channel_id, set.clone());
                set
            }
            DomainEvent::ChannelMemberRemoved {
                channel_id,
                user_id,
                ..
            } => {
                let mut set = (*self.members_of(*channel_id).await?).clone();
                set.remove(user_id);
                self.state()
                    .members
                    .insert(*channel_id, Arc::new(set.clone()));
                // The one who left hears of it, then nothing more.
                set.insert(*user_id);
                Arc::new(set)
            }
            other => match other.channel() {
                Some(channel) => self.members_of(channel).await?,
                None => return Ok(()),
            },
        };
        let message = self.message_of(event).await;
        let Some(live) = protocol::live_event(event, message) else {
            // A message event whose message could not be read (deleted before its event
            // arrived from elsewhere, not in the event's channel, or a failed read): only
            // this event is skipped; a deletion follows a deleted message.
            return Ok(());
        };
        let mut state = self.state();
        state.seq += 1;
        let seq = state.seq;
        let frame = Utf8Bytes::from(ServerFrame::Event { seq, event: live }.encode());
        if state.ring.len() == RING {
            state.ring.pop_front();
        }
        state.ring.push_back(Sequenced {
            seq,
            recipients: recipients.clone(),
            frame: frame.clone(),
        });
        let mut delivered = 0u64;
        for user in recipients.iter() {
            let Some(ids) = state.by_user.get(user) else {
                continue;
            };
            for id in ids {
                if let Some(conn) = state.conns.get(id) {
                    deliver(conn, Outbound::Frame(frame.clone()));
                    delivered += 1;
                }
            }
        }
        metrics::counter!("concord_hub_deliveries_total").increment(delivered);
        Ok(())
    }

    /// The message a message event concerns: the one the writer attached, or (for an event
    /// from another process) the message read now, only if it is in the event's channel and
    /// workspace. `None` when it cannot be read: that event is then skipped with a warning,
    /// and no other client is disturbed.
    async fn message_of(&self, event: &DomainEvent) -> Option<Arc<MessageView>> {
        let (workspace, channel, id, view) = match event {
            DomainEvent::MessageCreated {
                workspace_id,
                channel_id,
                message_id,
                view,
                ..
            }
            | DomainEvent::MessageUpdated {
                workspace_id,
                channel_id,
                message_id,
                view,
                ..
            } => (*workspace_id, *channel_id, *message_id, view),
            _ => return None,
        };
        if let Some(message) = view.get::<MessageView>() {
            return Some(message);
        }
        match self.inner.messages.message(workspace, channel, id).await {
            Ok(Some(message)) if message.channel_id == channel => Some(Arc::new(message)),
            Ok(Some(message)) => {
                tracing::warn!(
                    message = %id,
                    event_channel = %channel,
                    message_channel = %message.channel_id,
                    "a message event names another channel than its message's; skipping it"
                );
                None
            }
            Ok(None) => {
                tracing::warn!(
                    message = %id,
                    channel = %channel,
                    "a message event's message is gone or not in its channel; skipping it"
                );
                None
            }
            Err(err) => {
                tracing::warn!(
                    message = %id,
                    channel = %channel,
                    error = %err,
                    "could not read a message event's message; skipping it"
                );
                None
            }
        }
    }

    /// `user` and everyone sharing a workspace with them: who is told their profile changed.
    async fn sharing_a_workspace(&self, user: UserId) -> Result<HashSet<UserId>, StoreError> {
        let mut conn = self.inner.store.reader().await?;
        let mut set: HashSet<UserId> = workspaces::co_members(&mut conn.conn(), user)
            .await?
            .into_iter()
            .collect();
        set.insert(user);
        Ok(set)
    }

    /// `user` joined `workspace`: their open connections share presence there from now on.
    fn joined_workspace(&self, user: UserId, workspace: WorkspaceId) {
        let mut state = self.state();
        state.membership_changes += 1;
        let ids = state.by_user.get(&user).cloned().unwrap_or_default();
        let mut changed = false;
        for id in &ids {
            if let Some(conn) = state.conns.get_mut(id) {
                if !conn.workspaces.contains(&workspace) {
                    conn.workspaces.push(workspace);
                    state.share(user, workspace);
                    changed = true;
                }
            }
        }
        if changed {
            let status = user_status(&state, user);
            broadcast_presence(&state, user, &[workspace], status);
        }
    }

    /// `user` left or was removed from `workspace`: their open connections stop receiving
    /// its presence and stop showing theirs there; the members who no longer share any
    /// workspace with them see them go offline.
    fn left_workspace(&self, user: UserId, workspace: WorkspaceId) {
        let mut state = self.state();
        state.membership_changes += 1;
        let ids = state.by_user.get(&user).cloned().unwrap_or_default();
        let mut theirs: HashSet<WorkspaceId> = HashSet::new();
        let mut was_there = false;
        for id in &ids {
            if let Some(conn) = state.conns.get_mut(id) {
                let had = conn.workspaces.contains(&workspace);
                conn.workspaces.retain(|w| *w != workspace);
                theirs.extend(conn.workspaces.iter().copied());
                if had {
                    was_there = true;
                    state.unshare(user, workspace);
                }
            }
        }
        if !was_there {
            return;
        }
        let frame = Utf8Bytes::from(
            ServerFrame::Presence {
                user_id: user,
                status: PresenceStatus::Offline,
            }
            .encode(),
        );
        for conn in state.conns.values() {
            if conn.user != user
                && conn.workspaces.contains(&workspace)
                && !conn.workspaces.iter().any(|w| theirs.contains(w))
            {
                deliver(conn, Outbound::Frame(frame.clone()));
            }
        }
    }

    /// Registers an authenticated connection. When `resume` names this hub's epoch and a
    /// sequence number the ring still covers, the greeting replays what was missed.
    pub async fn register(
        &self,
        user: UserId,
        session: SessionId,
        resume: Option<(String, u64)>,
    ) -> Result<Registration, StoreError> {
        let mut attempts = 0;
        let (workspaces, mut state) = loop {
            let seen = self.state().membership_changes;
            let workspaces = {
                let mut conn = self.inner.store.reader().await?;
                workspaces::list_for_user(&mut conn.conn(), user)
                    .await?
                    .into_iter()
                    .map(|w| w.workspace.id)
                    .collect::<Vec<_>>()
            };
            let state = self.state();
            attempts += 1;
            // A membership change routed meanwhile may not be in what was read: read again.
            if state.membership_changes == seen || attempts == 3 {
                break (workspaces, state);
            }
        };
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let kill_token = CancellationToken::new();
        let kill_code = Arc::new(Mutex::new((protocol::CLOSE_RESYNC, "")));
        let oldest = state.ring.front().map(|e| e.seq).unwrap_or(state.seq + 1);
        let (resync, replay): (bool, Vec<Utf8Bytes>) = match resume {
            Some((epoch, last))
                if epoch == self.inner.epoch && last <= state.seq && last + 1 >= oldest =>
            {
                (
                    false,
                    state
                        .ring
                        .iter()
                        .filter(|e| e.seq > last && e.recipients.contains(&user))
                        .map(|e| e.frame.clone())
                        .collect(),
                )
            }
            Some(_) => (true, Vec::new()),
            None => (false, Vec::new()),
        };
        let presence: BTreeMap<UserId, PresenceStatus> = state
            .sharing_with(user, &workspaces)
            .into_iter()
            .map(|other| (other, user_status(&state, other)))
            .collect();
        let seq = state.seq;
        state.next_conn += 1;
        let id = state.next_conn;
        let first = state.by_user.get(&user).is_none_or(|v| v.is_empty());
        if first {
            broadcast_presence(&state, user, &workspaces, PresenceStatus::Online);
        }
        for workspace in &workspaces {
            state.share(user, *workspace);
        }
        state.conns.insert(
            id,
            ConnEntry {
                user,
                session,
                workspaces,
                away: false,
                queue: tx.clone(),
                kill: kill_token.clone(),
                kill_code: kill_code.clone(),
            },
        );
        state.by_user.entry(user).or_default().push(id);
        metrics::gauge!("concord_hub_connections").set(state.conns.len() as f64);
        drop(state);
        // Encoded outside the lock: what the frames say was fixed above, under it.
        let mut greeting = greeting_frames(&self.inner.epoch, seq, user, resync, presence);
        greeting.extend(replay);
        Ok(Registration {
            id,
            queue: rx,
            reply: tx,
            kill: kill_token,
            kill_code,
            greeting,
        })
    }

    /// Removes a closed connection.
    pub fn unregister(&self, id: u64) {
        let mut state = self.state();
        let Some(conn) = state.conns.remove(&id) else {
            return;
        };
        for workspace in &conn.workspaces {
            state.unshare(conn.user, *workspace);
        }
        let mut last = false;
        if let Some(ids) = state.by_user.get_mut(&conn.user) {
            ids.retain(|c| *c != id);
            last = ids.is_empty();
        }
        if last {
            state.by_user.remove(&conn.user);
            broadcast_presence(&state, conn.user, &conn.workspaces, PresenceStatus::Offline);
        }
        metrics::gauge!("concord_hub_connections").set(state.conns.len() as f64);
    }

    /// Relays a typing notice to the channel's other members, at most every two seconds.
    pub async fn typing(&self, user: UserId, channel: ChannelId) -> Result<bool, StoreError> {
        let members = self.members_of(channel).await?;
        if !members.contains(&user) {
            return Ok(false);
        }
        let mut state = self.state();
        let now = Instant::now();
        if state
            .typing
            .get(&(user, channel))
            .is_some_and(|t| now.duration_since(*t) < TYPING_EVERY)
        {
            return Ok(true);
        }
        state.typing.insert((user, channel), now);
        if state.typing.len() > 100_000 {
            state
                .typing
                .retain(|_, t| now.duration_since(*t) < TYPING_EVERY);
        }
        let frame = Utf8Bytes::from(
            ServerFrame::Typing {
                channel_id: channel,
                user_id: user,
            }
            .encode(),
        );
        for member in members.iter().filter(|m| **m != user) {
            for id in state.by_user.get(member).into_iter().flatten() {
                if let Some(conn) = state.conns.get(id) {
                    deliver(conn, Outbound::Frame(frame.clone()));
                }
            }
        }
        Ok(true)
    }

    /// Shows `message` to its one recipient, on every connection they have open to this
    /// process, if they are a member of its channel; whether any connection got it. Nothing
    /// is stored or replayed: like Slack's ephemeral messages, it is gone after a reload.
    pub async fn ephemeral(&self, message: Arc<EphemeralMessageView>) -> Result<bool, StoreError> {
        let members = self.members_of(message.channel_id).await?;
        if !members.contains(&message.user_id) {
            return Ok(false);
        }
        let state = self.state();
        let frame = Utf8Bytes::from(
            ServerFrame::Ephemeral {
                message: message.clone(),
            }
            .encode(),
        );
        let mut sent = false;
        for id in state.by_user.get(&message.user_id).into_iter().flatten() {
            if let Some(conn) = state.conns.get(id) {
                deliver(conn, Outbound::Frame(frame.clone()));
                sent = true;
            }
        }
        Ok(sent)
    }

    /// Each person's presence on this node, in the order given, under one lock.
    pub fn presence_of(&self, users: &[UserId]) -> Vec<PresenceStatus> {
        let state = self.state();
        users.iter().map(|u| user_status(&state, *u)).collect()
    }

    /// Sets one device's presence; the user is away only when every device is.
    pub fn set_away(&self, id: u64, away: bool) {
        let mut state = self.state();
        let Some(conn) = state.conns.get(&id) else {
            return;
        };
        let (user, workspaces) = (conn.user, conn.workspaces.clone());
        let before = user_status(&state, user);
        if let Some(conn) = state.conns.get_mut(&id) {
            conn.away = away;
        }
        let after = user_status(&state, user);
        if before != after {
            broadcast_presence(&state, user, &workspaces, after);
        }
    }
}

fn user_status(state: &State, user: UserId) -> PresenceStatus {
    let ids = state
        .by_user
        .get(&user)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if ids.is_empty() {
        PresenceStatus::Offline
    } else if ids
        .iter()
        .filter_map(|id| state.conns.get(id))
        .all(|c| c.away)
    {
        PresenceStatus::Away
    } else {
        PresenceStatus::Online
    }
}

/// Tells everyone who shares a workspace with `user` about their presence.
fn broadcast_presence(state: &State, user: UserId, theirs: &[WorkspaceId], status: PresenceStatus) {
    let frame = Utf8Bytes::from(
        ServerFrame::Presence {
            user_id: user,
            status,
        }
        .encode(),
    );
    for other in state.sharing_with(user, theirs) {
        for id in state.by_user.get(&other).into_iter().flatten() {
            if let Some(conn) = state.conns.get(id) {
                if conn.workspaces.iter().any(|w| theirs.contains(w)) {
                    deliver(conn, Outbound::Frame(frame.clone()));
                }
            }
        }
    }
}

/// The `hello` frame, carrying the first [`protocol::PRESENCE_PER_FRAME`] people of
/// `presence`, then one `presence_snapshot` frame per as many of the others.
fn greeting_frames(
    epoch: &str,
    seq: u64,
    user: UserId,
    resync: bool,
    presence: BTreeMap<UserId, PresenceStatus>,
) -> Vec<Utf8Bytes> {
    let mut people = presence.into_iter();
    let mut chunks: Vec<BTreeMap<UserId, PresenceStatus>> = Vec::new();
    loop {
        let chunk: BTreeMap<_, _> = people.by_ref().take(protocol::PRESENCE_PER_FRAME).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    let mut chunks = chunks.into_iter();
    let hello = ServerFrame::Hello {
        protocol: protocol::PROTOCOL_VERSION,
        epoch: epoch.to_owned(),
        seq,
        user_id: user,
        resync,
        presence: chunks.next().unwrap_or_default(),
        presence_frames: u32::try_from(chunks.len()).unwrap_or(u32::MAX),
    };
    std::iter::once(hello)
        .chain(chunks.map(|presence| ServerFrame::PresenceSnapshot { presence }))
        .map(|frame| Utf8Bytes::from(frame.encode()))
        .collect()
}

fn deliver(conn: &ConnEntry, frame: Outbound) {
    if let Err(mpsc::error::TrySendError::Full(_)) = conn.queue.try_send(frame) {
        metrics::counter!("concord_hub_slow_disconnects_total").increment(1);
        kill(conn, protocol::CLOSE_RESYNC, "too slow; resynchronise");
    }
}

fn kill(conn: &ConnEntry, code: u16, reason: &'static str) {
    if let Ok(mut slot) = conn.kill_code.lock() {
        *slot = (code, reason);
    }
    conn.kill.cancel();
}
