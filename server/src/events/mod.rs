//! Domain events: the one place every committed change passes through.
//!
//! A write emits events inside its transaction ([`crate::store::Tx::emit`]); the store
//! publishes them here after the commit, in commit order. Everything that reacts to changes
//! subscribes here: the WebSocket hub's fan-out, search indexing, outgoing bot events, and
//! workflow processes. A subscriber that falls behind the bounded buffer is told how many
//! events it missed, so it can resynchronise from storage instead of silently skipping.

use serde::Serialize;
use tokio::sync::broadcast;

use crate::chat::MessageView;
use crate::domain::{
    ChannelId, DocumentId, FileId, InvitationId, MessageId, RoleId, SessionId, UserId, WorkspaceId,
};

/// How many published events a slow subscriber may lag behind before it is told it missed some.
const BUFFER: usize = 4096;

/// Something that happened, after it was committed.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DomainEvent {
    /// An account was created (setup, admin, invitation).
    UserCreated { user_id: UserId, by: Option<UserId> },
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
        what: &'static str,
    },
    /// Someone joined or was added to a channel.
    ChannelMemberAdded {
        workspace_id: WorkspaceId,
        channel_id: ChannelId,
        user_id: UserId,
    },
    /// Someone left or was removed from a channel.
    ChannelMemberRemoved {
        workspace_id: WorkspaceId,
        channel_id: ChannelId,
        user_id: UserId,
    },
    /// A message was posted.
    MessageCreated {
        workspace_id: WorkspaceId,
        message: MessageView,
        mentioned: Vec<UserId>,
    },
    /// A message was edited, reacted to, pinned or unpinned.
    MessageUpdated {
        workspace_id: WorkspaceId,
        message: MessageView,
        what: &'static str,
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
    /// A document was created, renamed, moved, shared, restored or deleted.
    DocumentChanged {
        workspace_id: WorkspaceId,
        document_id: DocumentId,
        what: &'static str,
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
}

impl DomainEvent {
    /// The channel whose members this event concerns, if it is a channel event.
    pub fn channel(&self) -> Option<ChannelId> {
        match self {
            DomainEvent::ChannelChanged { channel_id, .. }
            | DomainEvent::ChannelMemberAdded { channel_id, .. }
            | DomainEvent::ChannelMemberRemoved { channel_id, .. }
            | DomainEvent::MessageDeleted { channel_id, .. }
            | DomainEvent::FileShared { channel_id, .. }
            | DomainEvent::FileDeleted { channel_id, .. } => Some(*channel_id),
            DomainEvent::MessageCreated { message, .. }
            | DomainEvent::MessageUpdated { message, .. } => Some(message.channel_id),
            _ => None,
        }
    }
}

/// Fan-out of committed domain events to in-process subscribers; cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<DomainEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus with no subscribers yet.
    pub fn new() -> EventBus {
        EventBus {
            sender: broadcast::channel(BUFFER).0,
        }
    }

    /// Publishes a committed event; without subscribers it is dropped.
    pub fn publish(&self, event: DomainEvent) {
        let _ = self.sender.send(event);
    }

    /// Receives every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DomainEvent> {
        self.sender.subscribe()
    }
}
