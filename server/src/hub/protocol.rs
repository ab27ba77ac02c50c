//! The hub's wire protocol: one JSON object per WebSocket text frame.
//!
//! A client authenticates with its first frame (`auth`, carrying the access token and,
//! when resuming, the `epoch` and last `seq` it saw) or with the `Sec-WebSocket-Protocol`
//! header `concord.v1, concord.bearer.<token>`. The server answers `hello` (carrying
//! [`PROTOCOL_VERSION`] and the start of the presence snapshot), sends the rest of the
//! snapshot at once in `presence_snapshot` frames (as many as the hello's `presence_frames`
//! says, each listing at most [`PRESENCE_PER_FRAME`] people), replays what the client missed
//! (or says `resync: true` if that is no longer possible), then streams `event` frames, each
//! with the next sequence number of this server's event stream. The snapshot is split so that
//! no frame of the greeting grows with the number of people online: a socket's write buffer
//! stays as large as the largest frame it ever sent.
//!
//! Every frame a client can receive is a [`ServerFrame`]; the domain events clients see are
//! [`LiveEvent`]s, made from [`DomainEvent`]s by [`live_event`] and nowhere else, so the wire
//! format changes only here (and a golden test pins it), never by a change to the events.
//! The frames are in the OpenAPI document's components (`ServerFrame`, `LiveEvent`,
//! `ClientFrame` and the enums they use), from which clients generate their types.
//!
//! A client connects first and loads state over REST afterwards: every event committed after
//! `hello` is delivered, and one committed just before may be delivered too (clients drop
//! what they already have by message id and sequence number), so nothing falls in between.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;

use crate::chat::{EphemeralMessageView, MessageView};
use crate::domain::{BreakGlassId, ChannelId, FileId, MessageId, UserId, WorkspaceId};
use crate::events::{ChannelChange, DomainEvent, MessageChange};

/// The version of this protocol, sent in `hello`. A change that could break a client (a
/// frame or field removed, renamed or retyped, or a meaning changed) increments it; added
/// frames, events and fields that a client may ignore do not.
///
/// 2: the hello's `presence` is only the start of the snapshot; `presence_snapshot` frames
/// carry the rest (a version 1 client would miss everyone past the first
/// [`PRESENCE_PER_FRAME`]).
pub const PROTOCOL_VERSION: u32 = 2;

/// The most people one frame of the presence snapshot (`hello` or `presence_snapshot`) lists:
/// about 50 bytes each, so such a frame stays within a few KiB however many are online.
pub const PRESENCE_PER_FRAME: usize = 64;

/// Close code: not signed in, or the token is no longer valid.
pub const CLOSE_UNAUTHENTICATED: u16 = 4401;
/// Close code: the client fell behind; reconnect and resynchronise.
pub const CLOSE_RESYNC: u16 = 4408;
/// Close code: the session was revoked.
pub const CLOSE_REVOKED: u16 = 4403;
/// Close code: the session ended after a period without activity (automatic logoff of a
/// PHI workspace's member); sign in again.
pub const CLOSE_IDLE_LOGOFF: u16 = 4440;
/// Close code: the server is shutting down ("going away").
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// What a client may send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Authenticate (first frame only).
    Auth {
        /// Access token.
        token: String,
        /// The epoch from the last `hello`, when resuming.
        #[serde(default)]
        epoch: Option<String>,
        /// The last event sequence number processed, when resuming.
        #[serde(default)]
        last_seq: Option<u64>,
    },
    /// Post a message; answered by `ack` once durable.
    Post {
        /// Channel.
        channel_id: ChannelId,
        /// Markdown source.
        text: String,
        /// Idempotency key (required over the socket, so retries are safe).
        client_msg_id: String,
        /// Thread root for a reply.
        #[serde(default)]
        thread_root_id: Option<MessageId>,
    },
    /// The user is typing in a channel (throttled by the server).
    Typing {
        /// Channel.
        channel_id: ChannelId,
    },
    /// Presence: `online` or `away` for this device.
    Presence {
        /// `online` or `away`.
        status: String,
    },
    /// Keep-alive.
    Ping,
}

/// A person's presence, as frames carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    /// Connected, and at least one device active.
    Online,
    /// Connected, every device away.
    Away,
    /// No connection.
    Offline,
}

/// What changed about a message, in `message_updated`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageUpdate {
    /// Its text was edited.
    Edited,
    /// Someone reacted.
    ReactionAdded,
    /// Someone took a reaction back.
    ReactionRemoved,
    /// Pinned.
    Pinned,
    /// Unpinned.
    Unpinned,
}

/// What changed about a channel, in `channel_changed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelUpdate {
    /// Created.
    Created,
    /// Renamed, re-topiced or given a new purpose.
    Updated,
    /// Archived.
    Archived,
    /// Unarchived.
    Unarchived,
}

/// What the server sends.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Authenticated; what follows starts after `seq`.
    Hello {
        /// The protocol version: raised by any change that could break a client.
        protocol: u32,
        /// Identifies this server's event stream; sequence numbers of another epoch are meaningless.
        epoch: String,
        /// The newest sequence number now.
        seq: u64,
        /// The signed-in user.
        user_id: UserId,
        /// True when missed events could not be replayed: reload state over REST.
        resync: bool,
        /// Who else is connected now (`online` or `away`), among people sharing a workspace with
        /// this user: the first 64 of them (`PRESENCE_PER_FRAME`); the `presence_snapshot`
        /// frames that follow list the others, and `presence` frames carry the changes from
        /// here on. Anyone in neither is offline.
        presence: BTreeMap<UserId, PresenceStatus>,
        /// How many `presence_snapshot` frames follow at once, before any other frame (0 when
        /// `presence` is the whole snapshot).
        presence_frames: u32,
    },
    /// More of the presence snapshot begun in `hello`, sent right after it and before any
    /// other frame: the client adds these people to the hello's.
    PresenceSnapshot {
        /// Up to 64 more people connected now (`online` or `away`), none of them listed in the
        /// hello or in another `presence_snapshot` frame.
        presence: BTreeMap<UserId, PresenceStatus>,
    },
    /// A committed change the user may see, numbered in this epoch's stream.
    Event {
        /// Sequence number (resume from the last one processed).
        seq: u64,
        /// What happened.
        event: LiveEvent,
    },
    /// A post was stored durably.
    Ack {
        /// The client's key.
        client_msg_id: String,
        /// The stored message.
        #[serde(serialize_with = "shared")]
        #[schema(value_type = MessageView)]
        message: Arc<MessageView>,
    },
    /// A message for this user only (a bot's answer to their slash command, or a bot's
    /// ephemeral message): not stored, not sequenced, gone after a reload.
    Ephemeral {
        /// The message.
        #[serde(serialize_with = "shared")]
        #[schema(value_type = EphemeralMessageView)]
        message: Arc<EphemeralMessageView>,
    },
    /// Someone is typing (not sequenced; nothing to resume).
    Typing {
        /// Channel.
        channel_id: ChannelId,
        /// Who.
        user_id: UserId,
    },
    /// A user's presence changed (not sequenced).
    Presence {
        /// Who.
        user_id: UserId,
        /// Their presence now.
        status: PresenceStatus,
    },
    /// A request failed; the connection stays open.
    Error {
        /// Stable code.
        code: String,
        /// What went wrong.
        message: String,
        /// The post it concerns, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
    /// Keep-alive answer.
    Pong,
}

/// A domain event as clients receive it, in an `event` frame.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// Someone's profile (display name, email, out-of-office period) changed; sent to them
    /// and to the people sharing a workspace with them, who read it again.
    UserUpdated {
        /// Whose.
        user_id: UserId,
    },
    /// The restriction of processing of the recipient's data (GDPR Art. 18) was lifted;
    /// sent to them alone (Art. 18(3)), who read their restriction again.
    RestrictionLifted {
        /// Whose.
        user_id: UserId,
    },
    /// A message was posted.
    MessageCreated {
        /// Workspace.
        workspace_id: WorkspaceId,
        /// The message.
        #[serde(serialize_with = "shared")]
        #[schema(value_type = MessageView)]
        message: Arc<MessageView>,
        /// Who it mentions.
        mentioned: Vec<UserId>,
    },
    /// A message was edited, reacted to, pinned or unpinned.
    MessageUpdated {
        /// Workspace.
        workspace_id: WorkspaceId,
        /// The message as it is now.
        #[serde(serialize_with = "shared")]
        #[schema(value_type = MessageView)]
        message: Arc<MessageView>,
        /// What changed.
        what: MessageUpdate,
    },
    /// A message was deleted.
    MessageDeleted {
        /// Workspace.
        workspace_id: WorkspaceId,
        /// Channel.
        channel_id: ChannelId,
        /// The message.
        message_id: MessageId,
        /// Its position in the channel.
        seq: i64,
    },
    /// The user's read pointer moved (on another device, say).
    ReadStateChanged {
        /// The user.
        user_id: UserId,
        /// Channel.
        channel_id: ChannelId,
        /// The newest message read.
        last_read_seq: i64,
    },
    /// A channel was created, renamed, re-topiced, archived or unarchived.
    ChannelChanged {
        /// Workspace.
        workspace_id: WorkspaceId,
        /// Channel.
        channel_id: ChannelId,
        /// What changed.
        what: ChannelUpdate,
    },
    /// Someone joined or was added to a channel.
    ChannelMemberAdded {
        /// Workspace.
        workspace_id: WorkspaceId,
        /// Channel.
        channel_id: ChannelId,
        /// Who.
        user_id: UserId,
    },
    /// Someone left or was removed from a channel (the last event they get from it).
    ChannelMemberRemoved {
        /// Workspace.
        workspace_id: WorkspaceId,
        /// Channel.
        channel_id: ChannelId,
        /// Who.
        user_id: UserId,
    },
    /// A file was posted in a channel.
    FileShared {
        /// Workspace.
        workspace_id: WorkspaceId,
        /// Channel.
        channel_id: ChannelId,
        /// The file.
        file_id: FileId,
        /// The message it is attached to.
        message_id: Option<MessageId>,
    },
    /// A file was deleted.
    FileDeleted {
        /// Workspace.
        workspace_id: WorkspaceId,
        /// Channel.
        channel_id: ChannelId,
        /// The file.
        file_id: FileId,
        /// The message it was attached to (which stays).
        message_id: Option<MessageId>,
    },
    /// Someone began an emergency access (break-glass) to a channel; sent to compliance
    /// officers.
    BreakGlassStarted {
        /// The grant.
        grant_id: BreakGlassId,
        /// Workspace.
        workspace_id: WorkspaceId,
        /// The channel it opens for reading.
        channel_id: ChannelId,
        /// Who holds it.
        user_id: UserId,
        /// When it ends at the latest.
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    /// An emergency access ended; sent to compliance officers.
    BreakGlassEnded {
        /// The grant.
        grant_id: BreakGlassId,
        /// Workspace.
        workspace_id: WorkspaceId,
        /// The channel it opened.
        channel_id: ChannelId,
        /// Who held it.
        user_id: UserId,
        /// `expired` (on time) or `ended` (by its holder).
        reason: String,
    },
    /// A workflow task opened or closed; sent to the people its assignment names (its
    /// assignee, the holders of its role, the members of its channel), whose task inbox
    /// (`GET /api/v1/workflow-tasks`) it changes.
    WorkflowTaskChanged {
        /// Workspace.
        workspace_id: WorkspaceId,
        /// The task.
        task_id: String,
        /// Its process instance.
        #[schema(value_type = String, format = Uuid)]
        instance_id: uuid::Uuid,
        /// `open`, `completed` or `cancelled`.
        status: String,
    },
    /// A workflow instance started, ended, or raised or resolved an incident; sent to the
    /// members who manage the workspace's workflows, whose process dashboards
    /// (`GET /api/v1/workspaces/{id}/workflows/{process}/dashboard`) it changes.
    WorkflowInstanceChanged {
        /// Workspace.
        workspace_id: WorkspaceId,
        /// The process.
        process_id: String,
        /// The instance.
        #[schema(value_type = String, format = Uuid)]
        instance_id: uuid::Uuid,
        /// Its status now: `running`, `completed`, `terminated`, `failed` or `cancelled`.
        status: String,
        /// What changed: `started`, `ended`, `incident_raised` or `incident_resolved`.
        change: String,
    },
}

fn shared<S: Serializer, T: Serialize>(value: &Arc<T>, serializer: S) -> Result<S::Ok, S::Error> {
    T::serialize(value, serializer)
}

/// The one mapping from domain events to what clients receive: `None` for events clients
/// are not sent, and for a message event without its message (`message` is the view the
/// hub holds for `MessageCreated` and `MessageUpdated`, ignored otherwise).
pub fn live_event(event: &DomainEvent, message: Option<Arc<MessageView>>) -> Option<LiveEvent> {
    Some(match event {
        DomainEvent::MessageCreated {
            workspace_id,
            mentioned,
            ..
        } => LiveEvent::MessageCreated {
            workspace_id: *workspace_id,
            message: message?,
            mentioned: mentioned.clone(),
        },
        DomainEvent::MessageUpdated {
            workspace_id, what, ..
        } => LiveEvent::MessageUpdated {
            workspace_id: *workspace_id,
            message: message?,
            what: match what {
                MessageChange::Edited => MessageUpdate::Edited,
                MessageChange::ReactionAdded => MessageUpdate::ReactionAdded,
                MessageChange::ReactionRemoved => MessageUpdate::ReactionRemoved,
                MessageChange::Pinned => MessageUpdate::Pinned,
                MessageChange::Unpinned => MessageUpdate::Unpinned,
            },
        },
        DomainEvent::MessageDeleted {
            workspace_id,
            channel_id,
            message_id,
            seq,
        } => LiveEvent::MessageDeleted {
            workspace_id: *workspace_id,
            channel_id: *channel_id,
            message_id: *message_id,
            seq: *seq,
        },
        DomainEvent::ReadStateChanged {
            user_id,
            channel_id,
            last_read_seq,
        } => LiveEvent::ReadStateChanged {
            user_id: *user_id,
            channel_id: *channel_id,
            last_read_seq: *last_read_seq,
        },
        DomainEvent::ChannelChanged {
            workspace_id,
            channel_id,
            what,
        } => LiveEvent::ChannelChanged {
            workspace_id: *workspace_id,
            channel_id: *channel_id,
            what: match what {
                ChannelChange::Created => ChannelUpdate::Created,
                ChannelChange::Updated => ChannelUpdate::Updated,
                ChannelChange::Archived => ChannelUpdate::Archived,
                ChannelChange::Unarchived => ChannelUpdate::Unarchived,
            },
        },
        DomainEvent::ChannelMemberAdded {
            workspace_id,
            channel_id,
            user_id,
            ..
        } => LiveEvent::ChannelMemberAdded {
            workspace_id: *workspace_id,
            channel_id: *channel_id,
            user_id: *user_id,
        },
        DomainEvent::ChannelMemberRemoved {
            workspace_id,
            channel_id,
            user_id,
            ..
        } => LiveEvent::ChannelMemberRemoved {
            workspace_id: *workspace_id,
            channel_id: *channel_id,
            user_id: *user_id,
        },
        DomainEvent::FileShared {
            workspace_id,
            channel_id,
            file_id,
            message_id,
        } => LiveEvent::FileShared {
            workspace_id: *workspace_id,
            channel_id: *channel_id,
            file_id: *file_id,
            message_id: *message_id,
        },
        DomainEvent::FileDeleted {
            workspace_id,
            channel_id,
            file_id,
            message_id,
        } => LiveEvent::FileDeleted {
            workspace_id: *workspace_id,
            channel_id: *channel_id,
            file_id: *file_id,
            message_id: *message_id,
        },
        DomainEvent::BreakGlassStarted {
            grant_id,
            workspace_id,
            channel_id,
            user_id,
            expires_at,
            ..
        } => LiveEvent::BreakGlassStarted {
            grant_id: *grant_id,
            workspace_id: *workspace_id,
            channel_id: *channel_id,
            user_id: *user_id,
            expires_at: *expires_at,
        },
        DomainEvent::BreakGlassEnded {
            grant_id,
            workspace_id,
            channel_id,
            user_id,
            reason,
            ..
        } => LiveEvent::BreakGlassEnded {
            grant_id: *grant_id,
            workspace_id: *workspace_id,
            channel_id: *channel_id,
            user_id: *user_id,
            reason: reason.clone(),
        },
        DomainEvent::WorkflowTaskChanged {
            workspace_id,
            task_id,
            instance_id,
            status,
            ..
        } => LiveEvent::WorkflowTaskChanged {
            workspace_id: *workspace_id,
            task_id: task_id.clone(),
            instance_id: *instance_id,
            status: status.clone(),
        },
        DomainEvent::WorkflowInstanceChanged {
            workspace_id,
            process_id,
            instance_id,
            status,
            change,
            ..
        } => LiveEvent::WorkflowInstanceChanged {
            workspace_id: *workspace_id,
            process_id: process_id.clone(),
            instance_id: *instance_id,
            status: status.clone(),
            change: change.clone(),
        },
        DomainEvent::UserProfileChanged { user_id, .. } => {
            LiveEvent::UserUpdated { user_id: *user_id }
        }
        DomainEvent::ProcessingRestrictionLifted { user_id, .. } => {
            LiveEvent::RestrictionLifted { user_id: *user_id }
        }
        // Not sent to clients: account, session, workspace, sign-on and document events
        // (documents have their own live connection).
        DomainEvent::UserCreated { .. }
        | DomainEvent::SystemRoleChanged { .. }
        | DomainEvent::SessionStarted { .. }
        | DomainEvent::SessionsRevoked { .. }
        | DomainEvent::PersonErased { .. }
        | DomainEvent::ProcessingRestricted { .. }
        | DomainEvent::WorkspaceCreated { .. }
        | DomainEvent::MemberAdded { .. }
        | DomainEvent::MemberRoleChanged { .. }
        | DomainEvent::MemberRemoved { .. }
        | DomainEvent::InvitationCreated { .. }
        | DomainEvent::InvitationRevoked { .. }
        | DomainEvent::SsoSignedIn { .. }
        | DomainEvent::SsoSignInFailed { .. }
        | DomainEvent::SsoIdentityLinked { .. }
        | DomainEvent::SsoLogoutRejected { .. }
        | DomainEvent::WorkspaceSsoRequirementChanged { .. }
        | DomainEvent::RoleCreated { .. }
        | DomainEvent::DocumentChanged { .. }
        | DomainEvent::DocumentEdited { .. } => return None,
    })
}

impl ServerFrame {
    /// Encodes the frame as JSON text.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"encoding failed"}"#.into()
        })
    }
}

#[cfg(test)]
mod golden;
