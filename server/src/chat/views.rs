//! What the API and the hub show of channels and messages.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{ChannelId, MessageId, UserId, WorkspaceId};

/// A channel as its members see it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ChannelView {
    /// Its id.
    pub id: ChannelId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// `public`, `private`, `direct` or `group`.
    pub kind: String,
    /// Name (none for direct and group conversations).
    pub name: Option<String>,
    /// Topic.
    pub topic: String,
    /// Purpose.
    pub purpose: String,
    /// Whether it is archived (read-only).
    pub archived: bool,
    /// Sequence number of the newest message.
    pub last_seq: i64,
    /// The caller's channel role, if a member.
    pub my_role: Option<String>,
    /// The caller's read pointer, if a member.
    pub last_read_seq: Option<i64>,
    /// Messages after the caller's read pointer (members only).
    pub unread_count: Option<i64>,
    /// Unread messages mentioning the caller (members only).
    pub mention_count: Option<i64>,
    /// People in a direct or group conversation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<UserId>,
}

/// A message as members see it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    /// Its id.
    pub id: MessageId,
    /// Channel.
    pub channel_id: ChannelId,
    /// Position in the channel.
    pub seq: i64,
    /// Author.
    pub author_id: UserId,
    /// Markdown source as written; empty once deleted.
    pub text: String,
    /// Thread root, for replies.
    pub thread_root_id: Option<MessageId>,
    /// Replies (thread roots).
    pub reply_count: i64,
    /// Newest reply (thread roots).
    pub last_reply_at: Option<DateTime<Utc>>,
    /// The client's idempotency key.
    pub client_msg_id: Option<String>,
    /// Posted at.
    pub created_at: DateTime<Utc>,
    /// Last edit.
    pub edited_at: Option<DateTime<Utc>>,
    /// Whether it was deleted ("message deleted").
    pub deleted: bool,
    /// Reactions: emoji to the users who reacted.
    pub reactions: BTreeMap<String, Vec<UserId>>,
    /// Whether it is pinned.
    pub pinned: bool,
    /// The Block Kit blocks a bot posted it with, as posted (with their ids filled in);
    /// `text` is their rendering as text. Absent for plain messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub blocks: Option<Vec<serde_json::Value>>,
}

/// A message only one person sees, in a channel, until they reload: a bot's answer to their
/// slash command or a bot's `chat.postEphemeral`. It is never stored.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct EphemeralMessageView {
    /// Its id (random; not a message id).
    pub id: String,
    /// Channel.
    pub channel_id: ChannelId,
    /// Who sees it.
    pub user_id: UserId,
    /// The bot that wrote it.
    pub author_id: UserId,
    /// Markdown source.
    pub text: String,
    /// Block Kit blocks, as for a message.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub blocks: Option<Vec<serde_json::Value>>,
    /// When it was sent.
    pub created_at: DateTime<Utc>,
}

/// An earlier version of an edited message.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MessageVersionView {
    /// 1 for the original text, then each edit.
    pub version: i64,
    /// The text it had.
    pub text: String,
    /// When it was replaced.
    pub replaced_at: DateTime<Utc>,
}

/// A member of a channel.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ChannelMemberView {
    /// The account.
    pub user_id: UserId,
    /// `member` or `moderator`.
    pub role: String,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
}
