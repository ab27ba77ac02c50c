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
use crate::domain::{ChannelId, InvitationId, MessageId, RoleId, SessionId, UserId, WorkspaceId};

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
    /// A custom role was defined.
    RoleCreated {
        workspace_id: WorkspaceId,
        role_id: RoleId,
    },
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
