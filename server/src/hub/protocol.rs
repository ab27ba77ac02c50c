//! The hub's wire protocol: one JSON object per WebSocket text frame.
//!
//! A client authenticates with its first frame (`auth`, carrying the access token and,
//! when resuming, the `epoch` and last `seq` it saw) or with the `Sec-WebSocket-Protocol`
//! header `concord.v1, concord.bearer.<token>`. The server answers `hello`, replays what the
//! client missed (or says `resync: true` if that is no longer possible), then streams
//! `event` frames, each with the next sequence number of this server's event stream.
//!
//! A client connects first and loads state over REST afterwards: every event committed after
//! `hello` is delivered, and one committed just before may be delivered too (clients drop
//! what they already have by message id and sequence number), so nothing falls in between.

use serde::{Deserialize, Serialize};

use crate::chat::MessageView;
use crate::domain::{ChannelId, MessageId, UserId};

/// Close code: not signed in, or the token is no longer valid.
pub const CLOSE_UNAUTHENTICATED: u16 = 4401;
/// Close code: the client fell behind; reconnect and resynchronise.
pub const CLOSE_RESYNC: u16 = 4408;
/// Close code: the session was revoked.
pub const CLOSE_REVOKED: u16 = 4403;
/// Close code: the server is shutting down ("going away").
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// What a client may send.
#[derive(Debug, Deserialize)]
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

/// What the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    /// Authenticated; what follows starts after `seq`.
    Hello {
        /// Identifies this server's event stream; sequence numbers of another epoch are meaningless.
        epoch: &'a str,
        /// The newest sequence number now.
        seq: u64,
        /// The signed-in user.
        user_id: UserId,
        /// True when missed events could not be replayed: reload state over REST.
        resync: bool,
        /// Who else is connected now (`online` or `away`), among people sharing a workspace with
        /// this user; `presence` frames carry the changes from here on.
        presence: std::collections::BTreeMap<UserId, &'static str>,
    },
    /// A post was stored durably.
    Ack {
        /// The client's key.
        client_msg_id: &'a str,
        /// The stored message.
        message: &'a MessageView,
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
        /// `online`, `away` or `offline`.
        status: &'a str,
    },
    /// A request failed; the connection stays open.
    Error {
        /// Stable code.
        code: &'a str,
        /// What went wrong.
        message: &'a str,
        /// The post it concerns, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<&'a str>,
    },
    /// Keep-alive answer.
    Pong,
}

impl ServerFrame<'_> {
    /// Encodes the frame as JSON text.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"encoding failed"}"#.into()
        })
    }
}
