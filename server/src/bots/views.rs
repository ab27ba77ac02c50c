//! What the API shows of bots, their tokens and webhooks. Secrets appear only in the
//! `Created*` answers, once.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::chat::{EphemeralMessageView, MessageView};
use crate::domain::{
    BotCommandId, BotTokenId, ChannelId, EventDeliveryId, UserId, WebhookId, WorkspaceId,
};

/// A bot account.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BotView {
    /// The bot's account id (its user id in messages).
    pub id: UserId,
    /// The workspace it acts in.
    pub workspace_id: WorkspaceId,
    /// Name shown with its messages.
    pub name: String,
    /// Picture shown with its messages.
    pub avatar_url: Option<String>,
    /// Who created it.
    pub created_by: UserId,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Whether it was deactivated (its tokens and webhooks no longer work).
    pub deactivated: bool,
}

/// A bot token, without its secret.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BotTokenView {
    /// Its id.
    pub id: BotTokenId,
    /// The bot.
    pub bot_id: UserId,
    /// Granted scopes (Slack's names).
    pub scopes: Vec<String>,
    /// The secret's last four characters.
    pub hint: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A token just created: the only time its secret is shown.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedBotToken {
    /// The secret (`xoxb-...`); send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// The token as listed from now on.
    #[serde(flatten)]
    pub view: BotTokenView,
}

/// An incoming webhook, without its secret URL.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    /// Its id.
    pub id: WebhookId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Where its posts go.
    pub channel_id: ChannelId,
    /// The bot its posts are by.
    pub bot_id: UserId,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A webhook just created: the only time its URL is shown.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    /// Where to POST Slack-style payloads (the path holds the secret).
    pub url: String,
    /// The webhook as listed from now on.
    #[serde(flatten)]
    pub view: WebhookView,
}

/// Where a bot's events go and which; never its signing secret.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct EventSubscriptionView {
    /// The bot.
    pub bot_id: UserId,
    /// Where events are POSTed (it answered the `url_verification` challenge); none: off.
    pub request_url: Option<String>,
    /// Subscribed event types (Slack's names).
    pub event_types: Vec<String>,
    /// Where presses of the buttons and selects in the bot's messages are POSTed (Slack's
    /// `block_actions`); none: its messages take no interactions.
    pub interactivity_url: Option<String>,
    /// Whether the bot has a signing secret (needed before a request URL is set).
    pub has_signing_secret: bool,
    /// When the signing secret was made or last rotated.
    pub signing_secret_created_at: Option<DateTime<Utc>>,
    /// When the settings last changed.
    pub updated_at: Option<DateTime<Utc>>,
}

/// A signing secret just made: the only time it is shown.
// No `Debug`: the secret must never reach a log.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedSigningSecret {
    /// The bot.
    pub bot_id: UserId,
    /// The secret deliveries are signed with (`X-Slack-Signature`); give it to the bot's
    /// receiver (Bolt's `signingSecret`).
    pub signing_secret: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// An event delivery parked after its last retry.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct EventDeliveryView {
    /// Its id.
    pub id: EventDeliveryId,
    /// The bot.
    pub bot_id: UserId,
    /// Slack's `event_id` (the same at every attempt and replay).
    pub event_id: String,
    /// Slack's event type.
    pub event_type: String,
    /// `pending` (queued, or replayed) or `dead` (parked after its last retry).
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the event happened.
    pub event_time: DateTime<Utc>,
}

/// A slash command as administrators manage it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BotCommandView {
    /// Its id.
    pub id: BotCommandId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// The bot that answers it.
    pub bot_id: UserId,
    /// What people type, with its `/`.
    pub command: String,
    /// Where invocations are POSTed (Slack's slash command request, signed).
    pub url: String,
    /// What it does.
    pub description: String,
    /// Its arguments, as a hint.
    pub usage_hint: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A slash command as the composer offers it to members.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SlashCommandView {
    /// What people type, with its `/`.
    pub command: String,
    /// The bot that answers it.
    pub bot_id: UserId,
    /// What it does.
    pub description: String,
    /// Its arguments, as a hint.
    pub usage_hint: String,
}

/// What answered a slash command at once (later answers come through its response URL).
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct CommandReplyView {
    /// An answer only the invoker sees (also sent to their open connections).
    pub ephemeral: Option<EphemeralMessageView>,
    /// An answer the bot posted in the channel.
    pub message: Option<MessageView>,
}
