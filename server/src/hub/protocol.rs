//! The hub's wire protocol: one JSON object per WebSocket text frame.
//!
//! A client authenticates with its first frame (`auth`, carrying the access token and,
//! when resuming, the `epoch` and last `seq` it saw) or with the `Sec-WebSocket-Protocol`
//! header `concord.v1, concord.bearer.<token>`. The server answers `hello` (carrying
//! [`PROTOCOL_VERSION`]), replays what the client missed (or says `resync: true` if that is
//! no longer possible), then streams `event` frames, each with the next sequence number of
//! this server's event stream.
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

use crate::chat::MessageView;
use crate::domain::{ChannelId, FileId, MessageId, UserId, WorkspaceId};
use crate::events::{ChannelChange, DomainEvent, MessageChange};

/// The version of this protocol, sent in `hello`. A change that could break a client (a
/// frame or field removed, renamed or retyped) increments it; added frames, events and
/// fields do not.
pub const PROTOCOL_VERSION: u32 = 1;

/// Close code: not signed in, or the token is no longer valid.
pub const CLOSE_UNAUTHENTICATED: u16 = 4401;
/// Close code: the client fell behind; reconnect and resynchronise.
pub const CLOSE_RESYNC: u16 = 4408;
/// Close code: the session was revoked.
pub const CLOSE_REVOKED: u16 = 4403;
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
        /// this user; `presence` frames carry the changes from here on.
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
        } => LiveEvent::ChannelMemberAdded {
            workspace_id: *workspace_id,
            channel_id: *channel_id,
            user_id: *user_id,
        },
        DomainEvent::ChannelMemberRemoved {
            workspace_id,
            channel_id,
            user_id,
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
        // Not sent to clients: account, session, workspace, sign-on and document events
        // (documents have their own live connection).
        DomainEvent::UserCreated { .. }
        | DomainEvent::SystemRoleChanged { .. }
        | DomainEvent::SessionStarted { .. }
        | DomainEvent::SessionsRevoked { .. }
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
mod tests {
    //! The golden frames: every kind of frame a client can receive, built from sample domain
    //! events through [`live_event`], must serialize exactly as
    //! `tests/e2e/fixtures/hub_frames.json` says. Renaming a field of a domain event (or of
    //! anything else inside the server) cannot change a frame without failing here; changing
    //! the protocol on purpose means updating the fixture (run with `CONCORD_BLESS=1`) and the
    //! clients' generated types, and [`PROTOCOL_VERSION`] if it could break a client.

    use super::*;
    use crate::domain::DocumentId;
    use crate::events::{DocumentChange, Local};
    use serde_json::Value;
    use uuid::Uuid;

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/e2e/fixtures/hub_frames.json"
    );

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n)
    }

    fn view() -> MessageView {
        let at = chrono::DateTime::from_timestamp(1_760_000_000, 0).unwrap();
        MessageView {
            id: MessageId(id(3)),
            channel_id: ChannelId(id(2)),
            seq: 12,
            author_id: UserId(id(4)),
            text: "hello @bo".into(),
            thread_root_id: Some(MessageId(id(5))),
            reply_count: 0,
            last_reply_at: None,
            client_msg_id: Some("k1".into()),
            created_at: at,
            edited_at: Some(at + chrono::Duration::seconds(30)),
            deleted: false,
            reactions: BTreeMap::from([("👍".to_owned(), vec![UserId(id(6))])]),
            pinned: true,
        }
    }

    fn sample_frames() -> Vec<(&'static str, ServerFrame)> {
        let (w, c, m, u, f) = (
            WorkspaceId(id(1)),
            ChannelId(id(2)),
            MessageId(id(3)),
            UserId(id(4)),
            FileId(id(7)),
        );
        let events = [
            (
                "event_message_created",
                DomainEvent::MessageCreated {
                    workspace_id: w,
                    channel_id: c,
                    message_id: m,
                    seq: 12,
                    author_id: u,
                    thread_root_id: Some(MessageId(id(5))),
                    mentioned: vec![UserId(id(6))],
                    view: Local::new(view()),
                },
            ),
            (
                "event_message_updated",
                DomainEvent::MessageUpdated {
                    workspace_id: w,
                    channel_id: c,
                    message_id: m,
                    seq: 12,
                    what: MessageChange::ReactionAdded,
                    view: Local::new(view()),
                },
            ),
            (
                "event_message_deleted",
                DomainEvent::MessageDeleted {
                    workspace_id: w,
                    channel_id: c,
                    message_id: m,
                    seq: 12,
                },
            ),
            (
                "event_read_state_changed",
                DomainEvent::ReadStateChanged {
                    user_id: u,
                    channel_id: c,
                    last_read_seq: 12,
                },
            ),
            (
                "event_channel_changed",
                DomainEvent::ChannelChanged {
                    workspace_id: w,
                    channel_id: c,
                    what: ChannelChange::Archived,
                },
            ),
            (
                "event_channel_member_added",
                DomainEvent::ChannelMemberAdded {
                    workspace_id: w,
                    channel_id: c,
                    user_id: u,
                },
            ),
            (
                "event_channel_member_removed",
                DomainEvent::ChannelMemberRemoved {
                    workspace_id: w,
                    channel_id: c,
                    user_id: u,
                },
            ),
            (
                "event_file_shared",
                DomainEvent::FileShared {
                    workspace_id: w,
                    channel_id: c,
                    file_id: f,
                    message_id: Some(m),
                },
            ),
            (
                "event_file_deleted",
                DomainEvent::FileDeleted {
                    workspace_id: w,
                    channel_id: c,
                    file_id: f,
                    message_id: None,
                },
            ),
        ];
        let mut frames = vec![(
            "hello",
            ServerFrame::Hello {
                protocol: PROTOCOL_VERSION,
                epoch: id(9).to_string(),
                seq: 41,
                user_id: u,
                resync: false,
                presence: BTreeMap::from([
                    (UserId(id(5)), PresenceStatus::Away),
                    (UserId(id(6)), PresenceStatus::Online),
                ]),
            },
        )];
        for (n, (name, event)) in events.into_iter().enumerate() {
            // The view the hub holds for a message event is the one attached to it.
            let message = match &event {
                DomainEvent::MessageCreated { view, .. }
                | DomainEvent::MessageUpdated { view, .. } => view.get::<MessageView>(),
                _ => None,
            };
            let live = live_event(&event, message).expect(name);
            frames.push((
                name,
                ServerFrame::Event {
                    seq: 42 + n as u64,
                    event: live,
                },
            ));
        }
        frames.extend([
            (
                "ack",
                ServerFrame::Ack {
                    client_msg_id: "k1".into(),
                    message: Arc::new(view()),
                },
            ),
            (
                "typing",
                ServerFrame::Typing {
                    channel_id: c,
                    user_id: u,
                },
            ),
            (
                "presence",
                ServerFrame::Presence {
                    user_id: u,
                    status: PresenceStatus::Offline,
                },
            ),
            (
                "error",
                ServerFrame::Error {
                    code: "validation_failed".into(),
                    message: "text: must not be empty".into(),
                    client_msg_id: Some("k2".into()),
                },
            ),
            (
                "error_without_post",
                ServerFrame::Error {
                    code: "invalid_frame".into(),
                    message: "send JSON text frames".into(),
                    client_msg_id: None,
                },
            ),
            ("pong", ServerFrame::Pong),
        ]);
        frames
    }

    #[test]
    fn frames_match_the_golden_file() {
        let actual: serde_json::Map<String, Value> = sample_frames()
            .into_iter()
            .map(|(name, frame)| {
                let text = frame.encode();
                (name.to_owned(), serde_json::from_str(&text).unwrap())
            })
            .collect();
        if std::env::var_os("CONCORD_BLESS").is_some() {
            let text = serde_json::to_string_pretty(&Value::Object(actual.clone())).unwrap();
            std::fs::write(FIXTURE, text + "\n").unwrap();
        }
        let expected: serde_json::Map<String, Value> =
            serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
        let names = |m: &serde_json::Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(&actual), names(&expected), "frames added or removed");
        for (name, frame) in &actual {
            assert_eq!(Some(frame), expected.get(name), "frame {name} changed");
        }
    }

    #[test]
    fn frames_are_in_the_openapi_components() {
        let doc = serde_json::to_value(crate::http::api_router().1).unwrap();
        let schemas = &doc["components"]["schemas"];
        for name in [
            "ServerFrame",
            "LiveEvent",
            "ClientFrame",
            "PresenceStatus",
            "MessageUpdate",
            "ChannelUpdate",
            "MessageView",
        ] {
            assert!(schemas.get(name).is_some(), "{name} missing");
        }
        if std::env::var_os("CONCORD_SHOW_FRAMES").is_some() {
            for name in ["ServerFrame", "LiveEvent"] {
                eprintln!("{}", serde_json::to_string_pretty(&schemas[name]).unwrap());
            }
        }
    }

    #[test]
    fn message_events_without_their_message_and_private_events_are_not_sent() {
        let event = DomainEvent::MessageCreated {
            workspace_id: WorkspaceId(id(1)),
            channel_id: ChannelId(id(2)),
            message_id: MessageId(id(3)),
            seq: 1,
            author_id: UserId(id(4)),
            thread_root_id: None,
            mentioned: Vec::new(),
            view: Local::none(),
        };
        assert!(live_event(&event, None).is_none());
        assert!(live_event(&event, Some(Arc::new(view()))).is_some());
        for private in [
            DomainEvent::SessionsRevoked {
                user_id: UserId(id(4)),
                sessions: Vec::new(),
                reason: "logout".into(),
            },
            DomainEvent::DocumentChanged {
                workspace_id: WorkspaceId(id(1)),
                document_id: DocumentId(id(8)),
                what: DocumentChange::Deleted,
            },
        ] {
            assert!(live_event(&private, Some(Arc::new(view()))).is_none());
        }
    }
}
