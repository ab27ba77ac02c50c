//! Domain events: the one place every committed change passes through.
//!
//! A write emits events inside its transaction; the store publishes them on the [`EventBus`]
//! after the commit, in commit order. Everything that reacts to changes subscribes there: the
//! WebSocket hub's fan-out, search indexing, document rooms, file housekeeping. A subscriber
//! that falls behind is told how many events it missed ([`RecvError::Lagged`]), so it can
//! resynchronise from storage instead of silently skipping.
//!
//! Events are plain data: owned values, enums for kinds of change, and ids rather than
//! content. Their serialized form (what leaves the process, to another node or a durable
//! table) holds no decrypted text; a subscriber that needs a message's text reads it by id.
//! Within one process the emitter may attach what it already decrypted ([`Local`]), so live
//! delivery costs no second read; serde skips it.
//!
//! The bus is a trait: [`InProcessBus`] (a bounded broadcast) serves one process; a bus
//! spanning processes implements the same trait and nothing that publishes or subscribes
//! changes. Everyone holds the cheap handle [`Events`].

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::domain::{
    BreakGlassId, ChannelId, DocumentId, FileId, InvitationId, MessageId, RoleId, SessionId,
    UserId, WorkspaceId,
};

/// How many published events a slow in-process subscriber may lag behind before it is told
/// it missed some.
const BUFFER: usize = 4096;

/// What changed about a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelChange {
    /// Created (or a conversation opened for the first time).
    Created,
    /// Renamed, re-topiced or given a new purpose.
    Updated,
    /// Archived.
    Archived,
    /// Unarchived.
    Unarchived,
}

/// What changed about a message that still exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageChange {
    /// Its text was edited.
    Edited,
    /// Someone reacted.
    ReactionAdded,
    /// Someone took a reaction back.
    ReactionRemoved,
    /// Pinned in its channel.
    Pinned,
    /// Unpinned.
    Unpinned,
}

/// What changed about a document (its details, not its content: see
/// [`DomainEvent::DocumentEdited`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentChange {
    /// Created.
    Created,
    /// Given a new title.
    Renamed,
    /// Moved to another channel.
    Moved,
    /// Its general access or its grants changed.
    Access,
    /// Deleted.
    Deleted,
    /// A comment was added, resolved or deleted.
    Commented,
}

/// Who reacted to a message, and with what (on a reaction change).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    /// Who added or took back the reaction.
    pub user_id: UserId,
    /// The emoji: a `:short_code:` or the character itself.
    pub emoji: String,
}

/// Something the emitter already holds in memory (a decrypted view), handed to subscribers
/// in the same process so they need not read it again. Never serialized: an event that
/// crossed a process boundary arrives without it, and its subscriber reads what it needs
/// by the event's ids. Its `Debug` form never shows the value.
#[derive(Clone, Default)]
pub struct Local(Option<Arc<dyn Any + Send + Sync>>);

impl Local {
    /// Attaches `value`.
    pub fn new<T: Any + Send + Sync>(value: T) -> Local {
        Local(Some(Arc::new(value)))
    }

    /// Nothing attached.
    pub fn none() -> Local {
        Local(None)
    }

    /// The attached value, if there is one of type `T`.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.0.clone()?.downcast::<T>().ok()
    }

    /// Whether something is attached.
    pub fn is_attached(&self) -> bool {
        self.0.is_some()
    }
}

impl fmt::Debug for Local {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Local(attached)"
        } else {
            "Local(none)"
        })
    }
}

/// Something that happened, after it was committed.
///
/// The serialized form (`type` tag, snake_case fields) is what crosses process boundaries
/// and is stored durably: ids, kinds and numbers, never decrypted content.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DomainEvent {
    /// An account was created (setup, admin, invitation).
    UserCreated { user_id: UserId, by: Option<UserId> },
    /// A person's profile (display name, email or out-of-office period) changed: by
    /// themself, or corrected on their request (`by` the compliance officer). Carries no
    /// values; whoever shows the person reads the profile again.
    UserProfileChanged { user_id: UserId, by: Option<UserId> },
    /// A user's system role changed.
    SystemRoleChanged {
        user_id: UserId,
        role: Option<String>,
        by: Option<UserId>,
    },
    /// A session began (sign-in).
    SessionStarted {
        user_id: UserId,
        session_id: SessionId,
    },
    /// Sessions ended by logout, revocation or refresh-token reuse.
    SessionsRevoked {
        user_id: UserId,
        sessions: Vec<SessionId>,
        reason: String,
    },
    /// A workspace was created.
    WorkspaceCreated {
        workspace_id: WorkspaceId,
        by: UserId,
    },
    /// Someone joined a workspace.
    MemberAdded {
        workspace_id: WorkspaceId,
        user_id: UserId,
        role_id: RoleId,
    },
    /// A member's workspace role changed.
    MemberRoleChanged {
        workspace_id: WorkspaceId,
        user_id: UserId,
        role_id: RoleId,
    },
    /// Someone left or was removed from a workspace.
    MemberRemoved {
        workspace_id: WorkspaceId,
        user_id: UserId,
    },
    /// An invitation was created.
    InvitationCreated {
        workspace_id: WorkspaceId,
        invitation_id: InvitationId,
    },
    /// An invitation was revoked.
    InvitationRevoked {
        workspace_id: WorkspaceId,
        invitation_id: InvitationId,
    },
    /// Someone signed in through single sign-on.
    SsoSignedIn {
        user_id: UserId,
        session_id: SessionId,
        provider: String,
        /// Whether this sign-in created the account.
        account_created: bool,
    },
    /// A single sign-on attempt was refused; no session was created.
    SsoSignInFailed {
        provider: String,
        /// The stable error code the user was given.
        code: String,
    },
    /// An account was linked to an identity at a provider.
    SsoIdentityLinked { user_id: UserId, provider: String },
    /// A back-channel logout token was refused.
    SsoLogoutRejected { provider: String, code: String },
    /// A workspace started or stopped requiring single sign-on.
    WorkspaceSsoRequirementChanged {
        workspace_id: WorkspaceId,
        required: bool,
        by: Option<UserId>,
    },
    /// A custom role was defined.
    RoleCreated {
        workspace_id: WorkspaceId,
        role_id: RoleId,
    },
    /// A channel was created, renamed, re-topiced, archived or unarchived.
    ChannelChanged {
        workspace_id: WorkspaceId,
        channel_id: ChannelId,
        what: ChannelChange,
    },
    /// Someone joined or was added to a channel.
    ChannelMemberAdded {
        workspace_id: WorkspaceId,
        channel_id: ChannelId,
        user_id: UserId,
        /// Who added them (themselves when they joined), when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<UserId>,
    },
    /// Someone left or was removed from a channel.
    ChannelMemberRemoved {
        workspace_id: WorkspaceId,
        channel_id: ChannelId,
        user_id: UserId,
        /// Who removed them (themselves when they left), when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<UserId>,
    },
    /// A message was posted.
    MessageCreated {
        workspace_id: WorkspaceId,
        channel_id: ChannelId,
        message_id: MessageId,
        /// Its position in the channel.
        seq: i64,
        author_id: UserId,
        /// The thread it replies in, if it is a reply.
        thread_root_id: Option<MessageId>,
        /// Who it mentions.
        mentioned: Vec<UserId>,
        /// The message as posted (decrypted), in the emitting process only.
        #[serde(skip)]
        view: Local,
    },
    /// A message was edited, reacted to, pinned or unpinned.
    MessageUpdated {
        workspace_id: WorkspaceId,
        channel_id: ChannelId,
        message_id: MessageId,
        /// Its position in the channel.
        seq: i64,
        what: MessageChange,
        /// Who reacted and with what, for a reaction change (absent from events stored
        /// before reactions were recorded in them).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reaction: Option<Reaction>,
        /// The message as it is now (decrypted), in the emitting process only.
        #[serde(skip)]
        view: Local,
    },
    /// A message was deleted.
    MessageDeleted {
        workspace_id: WorkspaceId,
        channel_id: ChannelId,
        message_id: MessageId,
        seq: i64,
    },
    /// A member's read pointer moved.
    ReadStateChanged {
        user_id: UserId,
        channel_id: ChannelId,
        last_read_seq: i64,
    },
    /// A document was created, renamed, moved, shared, commented on or deleted.
    DocumentChanged {
        workspace_id: WorkspaceId,
        document_id: DocumentId,
        what: DocumentChange,
    },
    /// Edits to a document's content were stored (one event per committed batch).
    DocumentEdited {
        workspace_id: WorkspaceId,
        document_id: DocumentId,
        seq: i64,
    },
    /// A file's upload completed and it was posted in a channel (ready or quarantined).
    FileShared {
        workspace_id: WorkspaceId,
        channel_id: ChannelId,
        file_id: FileId,
        /// The message it is attached to.
        message_id: Option<MessageId>,
    },
    /// A file was deleted.
    FileDeleted {
        workspace_id: WorkspaceId,
        channel_id: ChannelId,
        file_id: FileId,
        /// The message it was attached to (which stays).
        message_id: Option<MessageId>,
    },
    /// Someone began an emergency access (break-glass) to a channel.
    BreakGlassStarted {
        grant_id: BreakGlassId,
        workspace_id: WorkspaceId,
        channel_id: ChannelId,
        /// Who holds it.
        user_id: UserId,
        expires_at: chrono::DateTime<chrono::Utc>,
        /// Who is told (the compliance officers).
        notify: Vec<UserId>,
    },
    /// An emergency access ended, on time (`expired`) or by its holder (`ended`).
    BreakGlassEnded {
        grant_id: BreakGlassId,
        workspace_id: WorkspaceId,
        channel_id: ChannelId,
        /// Who held it.
        user_id: UserId,
        reason: String,
        /// Who is told (the compliance officers).
        notify: Vec<UserId>,
    },
    /// A workflow task opened, or closed (`completed`, `cancelled`): the people its
    /// assignment names are told, so their task inboxes stay live.
    WorkflowTaskChanged {
        workspace_id: WorkspaceId,
        task_id: String,
        instance_id: uuid::Uuid,
        /// `open`, `completed` or `cancelled`.
        status: String,
        /// Who is told: the assignee, the holders of its role or the members of its channel.
        notify: Vec<UserId>,
    },
    /// A workflow instance started, ended, or raised or resolved an incident: the people who
    /// manage the workspace's workflows are told, so an open process dashboard reloads.
    WorkflowInstanceChanged {
        workspace_id: WorkspaceId,
        process_id: String,
        instance_id: uuid::Uuid,
        /// The instance's status after the change: `running`, `completed`, `terminated`,
        /// `failed` or `cancelled`.
        status: String,
        /// `started`, `ended`, `incident_raised` or `incident_resolved`.
        change: String,
        /// Who is told: the members whose role holds `workflows.manage`.
        notify: Vec<UserId>,
    },
    /// A person's erasure finished: what they wrote is deleted (or kept without a profile) in
    /// these workspaces and their data key is destroyed.
    PersonErased {
        user_id: UserId,
        workspaces: Vec<WorkspaceId>,
    },
    /// The processing of a person's data was restricted (GDPR Art. 18): their entries leave
    /// the search indexes of these workspaces and nothing new of theirs is processed.
    ProcessingRestricted {
        user_id: UserId,
        workspaces: Vec<WorkspaceId>,
    },
    /// A person's restriction was lifted: their content is indexed again in these
    /// workspaces, and they are told.
    ProcessingRestrictionLifted {
        user_id: UserId,
        workspaces: Vec<WorkspaceId>,
    },
}

impl DomainEvent {
    /// The channel whose members this event concerns, if it is a channel event.
    pub fn channel(&self) -> Option<ChannelId> {
        match self {
            DomainEvent::ChannelChanged { channel_id, .. }
            | DomainEvent::ChannelMemberAdded { channel_id, .. }
            | DomainEvent::ChannelMemberRemoved { channel_id, .. }
            | DomainEvent::MessageCreated { channel_id, .. }
            | DomainEvent::MessageUpdated { channel_id, .. }
            | DomainEvent::MessageDeleted { channel_id, .. }
            | DomainEvent::FileShared { channel_id, .. }
            | DomainEvent::FileDeleted { channel_id, .. } => Some(*channel_id),
            _ => None,
        }
    }
}

/// Why [`Subscription::recv`] returned no event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// This many events were missed: resynchronise from storage.
    #[error("missed {0} events")]
    Lagged(u64),
    /// The bus is gone; no more events will come.
    #[error("the event bus closed")]
    Closed,
}

/// Why [`Subscription::try_recv`] returned no event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// Nothing waiting now.
    #[error("no event waiting")]
    Empty,
    /// This many events were missed: resynchronise from storage.
    #[error("missed {0} events")]
    Lagged(u64),
    /// The bus is gone; no more events will come.
    #[error("the event bus closed")]
    Closed,
}

/// A source of events for one subscriber, for buses other than the in-process one.
pub trait EventSource: Send {
    /// The next event (cancel-safe: dropping the future loses nothing).
    fn recv(&mut self) -> BoxFuture<'_, Result<DomainEvent, RecvError>>;
    /// The next event if one is waiting now.
    fn try_recv(&mut self) -> Result<DomainEvent, TryRecvError>;
}

/// One subscriber's stream of committed events, in commit order.
pub struct Subscription(Source);

enum Source {
    InProcess(broadcast::Receiver<Arc<DomainEvent>>),
    Other(Box<dyn EventSource>),
}

impl Subscription {
    /// Wraps another bus's source.
    pub fn new(source: Box<dyn EventSource>) -> Subscription {
        Subscription(Source::Other(source))
    }

    /// The next event, or how many were missed. Cancel-safe.
    pub async fn recv(&mut self) -> Result<DomainEvent, RecvError> {
        match &mut self.0 {
            Source::InProcess(rx) => {
                rx.recv()
                    .await
                    .map(Arc::unwrap_or_clone)
                    .map_err(|e| match e {
                        broadcast::error::RecvError::Lagged(n) => RecvError::Lagged(n),
                        broadcast::error::RecvError::Closed => RecvError::Closed,
                    })
            }
            Source::Other(source) => source.recv().await,
        }
    }

    /// The next event if one is waiting now.
    pub fn try_recv(&mut self) -> Result<DomainEvent, TryRecvError> {
        match &mut self.0 {
            Source::InProcess(rx) => rx
                .try_recv()
                .map(Arc::unwrap_or_clone)
                .map_err(|e| match e {
                    broadcast::error::TryRecvError::Empty => TryRecvError::Empty,
                    broadcast::error::TryRecvError::Lagged(n) => TryRecvError::Lagged(n),
                    broadcast::error::TryRecvError::Closed => TryRecvError::Closed,
                }),
            Source::Other(source) => source.try_recv(),
        }
    }
}

/// Carries committed events from the store to every subscriber.
pub trait EventBus: Send + Sync + 'static {
    /// Publishes a committed event. Called on the commit path: must not wait.
    fn publish(&self, event: DomainEvent);
    /// Every event published from now on.
    fn subscribe(&self) -> Subscription;
}

/// The bus within one process: a bounded broadcast; without subscribers events are dropped.
/// Its slots hold a pointer each, not an event: the buffer's slots are all allocated and
/// written when the bus is made (4,096 events inline took 0.6 MB).
pub struct InProcessBus {
    sender: broadcast::Sender<Arc<DomainEvent>>,
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessBus {
    /// A bus with no subscribers yet.
    pub fn new() -> InProcessBus {
        InProcessBus {
            sender: broadcast::channel(BUFFER).0,
        }
    }
}

impl EventBus for InProcessBus {
    fn publish(&self, event: DomainEvent) {
        let _ = self.sender.send(Arc::new(event));
    }

    fn subscribe(&self) -> Subscription {
        Subscription(Source::InProcess(self.sender.subscribe()))
    }
}

/// The handle everyone holds to the bus; cheap to clone.
#[derive(Clone)]
pub struct Events(Arc<dyn EventBus>);

impl Default for Events {
    fn default() -> Self {
        Self::in_process()
    }
}

impl Events {
    /// A handle to `bus`.
    pub fn new(bus: Arc<dyn EventBus>) -> Events {
        Events(bus)
    }

    /// A fresh in-process bus.
    pub fn in_process() -> Events {
        Events(Arc::new(InProcessBus::new()))
    }

    /// Publishes a committed event.
    pub fn publish(&self, event: DomainEvent) {
        self.0.publish(event);
    }

    /// Every event published from now on.
    pub fn subscribe(&self) -> Subscription {
        self.0.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct View {
        text: String,
    }

    const SECRET: &str = "the launch code is 0000";

    fn ids() -> (WorkspaceId, ChannelId, MessageId, UserId) {
        (
            WorkspaceId(uuid::Uuid::from_u128(1)),
            ChannelId(uuid::Uuid::from_u128(2)),
            MessageId(uuid::Uuid::from_u128(3)),
            UserId(uuid::Uuid::from_u128(4)),
        )
    }

    #[test]
    fn message_events_serialize_ids_never_text() {
        let (w, c, m, u) = ids();
        let view = || {
            Local::new(View {
                text: SECRET.into(),
            })
        };
        let events = [
            DomainEvent::MessageCreated {
                workspace_id: w,
                channel_id: c,
                message_id: m,
                seq: 7,
                author_id: u,
                thread_root_id: None,
                mentioned: vec![u],
                view: view(),
            },
            DomainEvent::MessageUpdated {
                workspace_id: w,
                channel_id: c,
                message_id: m,
                seq: 7,
                what: MessageChange::Edited,
                reaction: None,
                view: view(),
            },
        ];
        for event in events {
            let json = serde_json::to_string(&event).unwrap();
            assert!(!json.contains(SECRET), "{json}");
            assert!(!json.contains("text"), "{json}");
            assert!(json.contains(&m.to_string()), "{json}");
            assert!(!format!("{event:?}").contains(SECRET));
            // Across a process boundary the attachment is gone; the ids remain.
            let back: DomainEvent = serde_json::from_str(&json).unwrap();
            match back {
                DomainEvent::MessageCreated {
                    message_id, view, ..
                }
                | DomainEvent::MessageUpdated {
                    message_id, view, ..
                } => {
                    assert_eq!(message_id, m);
                    assert!(!view.is_attached());
                }
                other => panic!("{other:?}"),
            }
            match event {
                DomainEvent::MessageCreated { view, .. }
                | DomainEvent::MessageUpdated { view, .. } => {
                    assert_eq!(view.get::<View>().unwrap().text, SECRET);
                    assert!(view.get::<String>().is_none());
                }
                _ => unreachable!(),
            }
        }
    }

    #[test]
    fn kinds_of_change_serialize_in_snake_case() {
        let (w, c, _, _) = ids();
        let event = DomainEvent::ChannelChanged {
            workspace_id: w,
            channel_id: c,
            what: ChannelChange::Unarchived,
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "channel_changed");
        assert_eq!(json["what"], "unarchived");
        assert_eq!(
            serde_json::to_value(MessageChange::ReactionAdded).unwrap(),
            "reaction_added"
        );
        assert_eq!(
            serde_json::to_value(DocumentChange::Deleted).unwrap(),
            "deleted"
        );
    }

    #[tokio::test]
    async fn the_in_process_bus_reports_lag_as_a_count() {
        let events = Events::in_process();
        let mut sub = events.subscribe();
        assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Empty);
        for _ in 0..BUFFER + 3 {
            events.publish(DomainEvent::SsoSignInFailed {
                provider: "p".into(),
                code: "c".into(),
            });
        }
        assert_eq!(sub.recv().await.unwrap_err(), RecvError::Lagged(3));
        assert!(sub.recv().await.is_ok());
    }
}
