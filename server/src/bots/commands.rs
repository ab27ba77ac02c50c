//! Slash commands, their answers, and ephemeral messages.
//!
//! An administrator gives a bot a command (`/deploy`) and the URL invocations go to; the bot
//! must have a signing secret, since every invocation is signed as Slack signs. A member who
//! types `/deploy prod` in a channel they belong to has Slack's slash command request POSTed
//! (a form: `command`, `text`, `channel_id`, `user_id`, `team_id`, `response_url`,
//! `trigger_id`, ...) to that URL through the guarded client (`delivery::egress`), within
//! `bots.event_timeout_ms`. The bot answers at once in the HTTP response (empty: nothing;
//! plain text: an ephemeral message; JSON: `text`/`blocks`/`attachments` with `response_type`
//! `ephemeral` or `in_channel`), and later through the `response_url` it was given, up to
//! five times within thirty minutes (Slack's rules), where it may also replace or delete the
//! message an interaction came from.
//!
//! An `in_channel` answer is posted by the bot like any of its messages, so the bot must be in
//! the channel; if it is not, the answer is shown to the invoker alone, saying why. An
//! ephemeral answer (and `chat.postEphemeral`) is never stored: the caller hands it to the
//! hub, which shows it to its one recipient. Invocations and ephemeral messages are audited
//! (without their text). A bot has at most `bots.event_concurrency_per_bot` invocations in
//! flight; more are refused as busy, so people typing cannot hold the server's requests.

use std::sync::Arc;

use chrono::Utc;
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::delivery::egress::EgressError;
use super::delivery::signing;
use super::{bot_in, BotCommandView, BotService, CommandReplyView, SlackContent, SlashCommandView};
use crate::accounts::decrypt_profile;
use crate::audit::{Event, Outcome};
use crate::auth::{random_token, token_hash};
use crate::chat::{BlocksEdit, EphemeralMessageView, MessageBlocks, MessageView};
use crate::domain::{
    BotCommandId, ChannelId, MessageBody, MessageId, ParseError, UserId, WorkspaceId,
};
use crate::error::Error;
use crate::rbac::{
    Action, Actor, BotCredential, BotScope, BotScopes, DecisionSlot, Principal, Resource,
};
use crate::store::bot_commands::{self, CommandRecord, ResponseUrlRecord};
use crate::store::{bot_events, bots, channels, users, workspaces as ws_store, Tx};

/// Answers one response URL takes (Slack's).
pub const RESPONSE_URL_USES: i64 = 5;
/// How long a response URL works (Slack's: thirty minutes).
pub const RESPONSE_URL_TTL_MS: i64 = 30 * 60 * 1000;
/// The most of a bot's immediate answer that is read.
const MAX_ANSWER: usize = 64 * 1024;
/// The longest text after a command (Slack's message limit).
pub const MAX_COMMAND_TEXT: usize = 4000;
/// The longest description or usage hint.
const MAX_HINT: usize = 200;

/// A command's name: what follows `/`, 1 to 32 lowercase letters (of any script), digits,
/// `-` and `_`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandName(String);

impl CommandName {
    /// Parses a name, with or without its `/`; letters are lowercased.
    pub fn parse(field: &'static str, raw: &str) -> Result<CommandName, ParseError> {
        let raw = raw.trim();
        let name = raw.strip_prefix('/').unwrap_or(raw).to_lowercase();
        let chars = name.chars().count();
        if chars == 0
            || chars > 32
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ParseError::new(
                field,
                "must be '/' and 1 to 32 letters, digits, '-' or '_'",
            ));
        }
        Ok(CommandName(name))
    }

    /// The name without its `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an administrator sets for a command.
#[derive(Clone, Debug)]
pub struct CommandSpec {
    /// Where invocations go.
    pub url: String,
    /// What it does (at most 200 characters).
    pub description: String,
    /// Its arguments (at most 200 characters).
    pub usage_hint: String,
}

fn hint(field: &'static str, raw: &str) -> Result<String, ParseError> {
    let value = raw.trim();
    if value.chars().count() > MAX_HINT || value.chars().any(char::is_control) {
        return Err(ParseError::new(
            field,
            format!("must be at most {MAX_HINT} characters on one line"),
        ));
    }
    Ok(value.to_owned())
}

/// What an answer (at once or through a response URL) says.
#[derive(Clone, Debug, Default)]
pub struct CommandAnswer {
    /// `text`, `blocks`, `attachments`.
    pub content: SlackContent,
    /// `response_type` is `in_channel` (else ephemeral).
    pub in_channel: bool,
    /// `replace_original`: the interaction's message is edited to this.
    pub replace_original: bool,
    /// `delete_original`: the interaction's message is deleted.
    pub delete_original: bool,
}

impl CommandAnswer {
    /// Reads Slack's answer fields from a JSON object.
    pub fn from_json(value: &Value) -> CommandAnswer {
        let flag = |name: &str| match value.get(name) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        };
        CommandAnswer {
            content: SlackContent {
                text: value.get("text").and_then(Value::as_str).map(str::to_owned),
                blocks: value.get("blocks").cloned().filter(|b| !b.is_null()),
                attachments: value.get("attachments").cloned().filter(|a| !a.is_null()),
            },
            in_channel: value.get("response_type").and_then(Value::as_str) == Some("in_channel"),
            replace_original: flag("replace_original"),
            delete_original: flag("delete_original"),
        }
    }

    fn is_empty(&self) -> bool {
        self.content
            .text
            .as_deref()
            .is_none_or(|t| t.trim().is_empty())
            && self.content.blocks.is_none()
            && self.content.attachments.is_none()
    }
}

/// What came of an answer.
#[derive(Debug, Default)]
pub struct CommandReply {
    /// Shown to one person; the caller hands it to the hub.
    pub ephemeral: Option<Arc<EphemeralMessageView>>,
    /// Posted in the channel by the bot.
    pub message: Option<MessageView>,
}

impl CommandReply {
    /// The API's view of it.
    pub fn view(&self) -> CommandReplyView {
        CommandReplyView {
            ephemeral: self.ephemeral.as_deref().cloned(),
            message: self.message.clone(),
        }
    }
}

/// Where a reply goes: the bot, its workspace, the channel, the person, and the message an
/// interaction came from.
#[derive(Clone, Copy, Debug)]
pub(super) struct Target {
    pub(super) bot: UserId,
    pub(super) workspace: WorkspaceId,
    pub(super) channel: ChannelId,
    pub(super) user: UserId,
    pub(super) original: Option<MessageId>,
}

fn command_view(r: CommandRecord) -> BotCommandView {
    BotCommandView {
        id: r.id,
        workspace_id: r.workspace_id,
        bot_id: r.bot_id,
        command: format!("/{}", r.command),
        url: r.url,
        description: r.description,
        usage_hint: r.usage_hint,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

pub(super) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Slack's `trigger_id` form: digits, a dot, digits, a dot, hex.
pub(super) fn trigger_id() -> String {
    let token = random_token();
    let digest = token_hash(&token);
    format!(
        "{}.{}.{}",
        Utc::now().timestamp_millis(),
        u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]),
        hex::encode(&digest[4..20])
    )
}

impl BotService {
    /// Checks a command URL's form and addresses, for an administrator of `workspace` only:
    /// nobody else makes the server resolve names.
    async fn vet_url_for(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        raw: &str,
    ) -> Result<String, Error> {
        {
            let mut conn = self.store.reader().await?;
            self.authorize_admin_read(&mut conn.conn(), actor, workspace)
                .await?;
        }
        self.delivery()
            .egress
            .vet(raw)
            .await
            .map(|u| u.to_string())
            .map_err(|e| Error::Invalid(ParseError::new("url", e.to_string())))
    }

    /// Gives `bot` the slash command `name`, answered at `spec.url`.
    pub async fn create_command(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        bot: UserId,
        name: CommandName,
        spec: CommandSpec,
    ) -> Result<BotCommandView, Error> {
        let description = hint("description", &spec.description)?;
        let usage_hint = hint("usage_hint", &spec.usage_hint)?;
        let url = self.vet_url_for(actor, workspace, &spec.url).await?;
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    // Invocations carry what people type in channels: as for a request URL,
                    // only someone who could issue the bot's credentials sets where they go.
                    let by = this.authorize_bot_admin(tx, &actor, workspace, bot).await?;
                    if bot_events::settings(&mut tx.conn(), bot).await?.is_none() {
                        return Err(Error::refused(
                            "no_signing_secret",
                            "give the bot a signing secret first: invocations are signed with it",
                        ));
                    }
                    let now = Utc::now();
                    let command = CommandRecord {
                        id: BotCommandId::generate(),
                        workspace_id: workspace,
                        bot_id: bot,
                        command: name.as_str().to_owned(),
                        url: url.clone(),
                        description,
                        usage_hint,
                        created_by: by,
                        created_at: now,
                        updated_at: now,
                    };
                    if !bot_commands::insert(&mut tx.conn(), &command).await? {
                        return Err(Error::Conflict {
                            code: "command_taken",
                            message: format!(
                                "/{} is already a command in this workspace",
                                name.as_str()
                            ),
                        });
                    }
                    this.auditor
                        .record(
                            tx,
                            Event::by(&actor, "bot_command.create", Outcome::Allowed)
                                .target("bot_command", command.id)
                                .workspace(workspace)
                                .subject(bot)
                                .details(serde_json::json!({
                                    "command": format!("/{}", command.command),
                                    "url": url,
                                })),
                        )
                        .await?;
                    Ok(command_view(command))
                })
            })
            .await
    }

    /// Changes a command's URL, description and usage hint.
    pub async fn update_command(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: BotCommandId,
        spec: CommandSpec,
    ) -> Result<BotCommandView, Error> {
        let description = hint("description", &spec.description)?;
        let usage_hint = hint("usage_hint", &spec.usage_hint)?;
        let url = self.vet_url_for(actor, workspace, &spec.url).await?;
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let by = this.authorize_admin(tx, &actor, workspace).await?;
                    let found = bot_commands::by_id(&mut tx.conn(), id)
                        .await?
                        .filter(|c| c.workspace_id == workspace)
                        .ok_or(Error::NotFound("command"))?;
                    this.authorize_issue(tx, &actor, workspace, found.bot_id, by)
                        .await?;
                    let now = Utc::now();
                    bot_commands::update(
                        &mut tx.conn(),
                        workspace,
                        id,
                        &url,
                        &description,
                        &usage_hint,
                        now,
                    )
                    .await?;
                    this.auditor
                        .record(
                            tx,
                            Event::by(&actor, "bot_command.update", Outcome::Allowed)
                                .target("bot_command", id)
                                .workspace(workspace)
                                .subject(found.bot_id)
                                .details(serde_json::json!({ "url": url })),
                        )
                        .await?;
                    Ok(command_view(CommandRecord {
                        url,
                        description,
                        usage_hint,
                        updated_at: now,
                        ..found
                    }))
                })
            })
            .await
    }

    /// Deletes a command.
    pub async fn delete_command(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: BotCommandId,
    ) -> Result<(), Error> {
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let by = this.authorize_admin(tx, &actor, workspace).await?;
                    let found = bot_commands::by_id(&mut tx.conn(), id)
                        .await?
                        .filter(|c| c.workspace_id == workspace)
                        .ok_or(Error::NotFound("command"))?;
                    // Whoever removes a command could otherwise take its name for a bot of
                    // their own: only someone who manages this bot's credentials may.
                    this.authorize_issue(tx, &actor, workspace, found.bot_id, by)
                        .await?;
                    bot_commands::delete(&mut tx.conn(), workspace, id).await?;
                    this.auditor
                        .record(
                            tx,
                            Event::by(&actor, "bot_command.delete", Outcome::Allowed)
                                .target("bot_command", id)
                                .workspace(workspace)
                                .subject(found.bot_id)
                                .details(serde_json::json!({
                                    "command": format!("/{}", found.command),
                                })),
                        )
                        .await?;
                    Ok(())
                })
            })
            .await
    }

    /// A bot's commands, with their URLs (for administrators).
    pub async fn commands_of(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        bot: UserId,
    ) -> Result<Vec<BotCommandView>, Error> {
        let mut conn = self.store.reader().await?;
        self.authorize_admin_read(&mut conn.conn(), actor, workspace)
            .await?;
        bot_in(&mut conn.conn(), workspace, bot).await?;
        Ok(
            bot_commands::in_workspace(&mut conn.conn(), workspace, Some(bot))
                .await?
                .into_iter()
                .map(command_view)
                .collect(),
        )
    }

    /// The commands members of `workspace` can type (those of live bots), without URLs.
    pub async fn slash_commands(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
    ) -> Result<Vec<SlashCommandView>, Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ReadChannels,
                Resource::Workspace(workspace),
            )
            .await?;
        Ok(bot_commands::live_in_workspace(&mut conn.conn(), workspace)
            .await?
            .into_iter()
            .map(|c| SlashCommandView {
                command: format!("/{}", c.command),
                bot_id: c.bot_id,
                description: c.description,
                usage_hint: c.usage_hint,
            })
            .collect())
    }

    /// Runs `/name text` for `actor` in `channel`: the bot's immediate answer, if any (an
    /// ephemeral one is for the caller to hand to the hub). `public_base` is the server's
    /// public URL, which the response URL is under.
    #[tracing::instrument(level = "debug", skip_all, fields(channel = %channel, command = %name.as_str()))]
    pub async fn invoke(
        &self,
        actor: &Actor,
        channel: ChannelId,
        name: CommandName,
        text: String,
        public_base: &str,
    ) -> Result<CommandReply, Error> {
        let Principal::User { user_id: user, .. } = actor.principal else {
            return Err(Error::refused(
                "people_only",
                "slash commands are typed by people",
            ));
        };
        self.limit_person(user)?;
        let text = text.trim().to_owned();
        if text.len() > MAX_COMMAND_TEXT || text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(Error::Invalid(ParseError::new(
                "text",
                format!("must be at most {MAX_COMMAND_TEXT} bytes without control characters"),
            )));
        }
        // Reading the channel checks the caller may see it, and gives its name.
        let seen = self.chat.get(actor, channel).await?;
        if seen.my_role.is_none() {
            return Err(Error::refused(
                "not_in_channel",
                "join the channel to use commands in it",
            ));
        }
        if seen.archived {
            return Err(Error::refused(
                "channel_archived",
                "this channel is archived and read-only",
            ));
        }
        let workspace = seen.workspace_id;
        let secret = random_token();
        let secret_hash = token_hash(&secret);
        let actor_w = actor.clone();
        let this = self.clone();
        let name_w = name.clone();
        let (command, sealed, bot_member) = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.auditor
                        .authorize_channel(tx, &actor_w, Action::PostMessages, channel)
                        .await?;
                    let unavailable = || {
                        Error::refused(
                            "unknown_command",
                            format!("/{} is not a command in this workspace", name_w.as_str()),
                        )
                    };
                    let command = bot_commands::by_name(&mut tx.conn(), workspace, name_w.as_str())
                        .await?
                        .ok_or_else(unavailable)?;
                    let live = bots::live(&mut tx.conn(), command.bot_id).await?;
                    let settings = bot_events::settings(&mut tx.conn(), command.bot_id).await?;
                    let (true, Some(settings)) = (live, settings) else {
                        return Err(unavailable());
                    };
                    let bot_member = channels::membership(&mut tx.conn(), channel, command.bot_id)
                        .await?
                        .is_some();
                    let now = now_ms();
                    bot_commands::insert_response_url(
                        &mut tx.conn(),
                        &secret_hash,
                        &ResponseUrlRecord {
                            bot_id: command.bot_id,
                            workspace_id: workspace,
                            channel_id: channel,
                            user_id: user,
                            message_id: None,
                            uses_left: RESPONSE_URL_USES,
                        },
                        now + RESPONSE_URL_TTL_MS,
                        now,
                    )
                    .await?;
                    this.auditor
                        .record(
                            tx,
                            Event::by(&actor_w, "bot_command.invoke", Outcome::Allowed)
                                .target("bot_command", command.id)
                                .workspace(workspace)
                                .subject(command.bot_id)
                                .details(serde_json::json!({
                                    "command": format!("/{}", command.command),
                                    "channel_id": channel,
                                })),
                        )
                        .await?;
                    Ok((command, settings.signing_secret_enc, bot_member))
                })
            })
            .await?;
        // Decrypted on a reader, after the write: the writer is shared by everyone.
        let (user_name, team_domain) = self.names_for_bot(user, workspace).await?;
        let key = self.signing_key(workspace, command.bot_id, &sealed).await?;
        let response_url = format!(
            "{}/hooks/responses/{secret}",
            public_base.trim_end_matches('/')
        );
        // A bot learns the name of a private channel only if it was added to it (Slack sends
        // `privategroup` otherwise, and `directmessage` for conversations).
        let channel_name = match seen.name.as_deref() {
            None => "directmessage".to_owned(),
            Some(_) if seen.kind == "private" && !bot_member => "privategroup".to_owned(),
            Some(name) => name.to_owned(),
        };
        let form: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", &signing::verification_token(&key))
            .append_pair("team_id", &workspace.to_string())
            .append_pair("team_domain", &team_domain)
            .append_pair("channel_id", &channel.to_string())
            .append_pair("channel_name", &channel_name)
            .append_pair("user_id", &user.to_string())
            .append_pair("user_name", &user_name)
            .append_pair("command", &format!("/{}", command.command))
            .append_pair("text", &text)
            .append_pair("api_app_id", &command.bot_id.to_string())
            .append_pair("is_enterprise_install", "false")
            .append_pair("response_url", &response_url)
            .append_pair("trigger_id", &trigger_id())
            .finish();
        let body = form.into_bytes();
        let headers: HeaderMap = super::delivery::signed_headers(&key, &body);
        let _slot = self
            .delivery()
            .command_slot(command.bot_id)
            .ok_or_else(|| Error::Busy {
                code: "command_busy",
                message: format!(
                    "/{} is answering as many commands as it may at once; try again",
                    command.command
                ),
                retry_after_seconds: 1,
            })?;
        let sent = self
            .delivery()
            .egress
            .post(
                &command.url,
                headers,
                "application/x-www-form-urlencoded",
                body,
                MAX_ANSWER,
            )
            .await;
        let shown = format!("/{}", command.command);
        let answer = match sent {
            Err(EgressError::Timeout) => {
                return Err(Error::Upstream {
                    code: "command_timeout",
                    message: format!("{shown} did not answer in time"),
                })
            }
            Err(e) => {
                tracing::info!(command = %shown, error = %e, "a slash command's URL failed");
                return Err(Error::Upstream {
                    code: "command_failed",
                    message: format!("{shown} could not be reached"),
                });
            }
            Ok(a) if !(200..300).contains(&a.status) => {
                return Err(Error::Upstream {
                    code: "command_failed",
                    message: format!("{shown} answered with status {}", a.status),
                })
            }
            Ok(a) => a,
        };
        let text = String::from_utf8_lossy(&answer.body);
        let answer = match serde_json::from_str::<Value>(&text) {
            Ok(json @ Value::Object(_)) => CommandAnswer::from_json(&json),
            _ => CommandAnswer {
                content: SlackContent {
                    text: Some(text.into_owned()),
                    ..Default::default()
                },
                ..Default::default()
            },
        };
        let target = Target {
            bot: command.bot_id,
            workspace,
            channel,
            user,
            original: None,
        };
        self.deliver_answer(target, answer, DecisionSlot::default())
            .await
    }

    /// A person's display name and their workspace's name, as a request to a bot gives them.
    pub(super) async fn names_for_bot(
        &self,
        user: UserId,
        workspace: WorkspaceId,
    ) -> Result<(String, String), Error> {
        let mut pooled = self.store.reader().await?;
        let mut conn = pooled.conn();
        let me = users::by_id(&mut conn, user)
            .await?
            .ok_or(Error::NotFound("user"))?;
        let (_, user_name) = decrypt_profile(
            self.auditor.keyring(),
            &mut conn,
            user,
            me.email_enc.as_deref(),
            me.display_name_enc.as_deref(),
        )
        .await?;
        let team_domain = match ws_store::by_id(&mut conn, workspace).await? {
            Some(w) => {
                crate::workspaces::open_workspace(self.auditor.keyring(), &mut conn, &w)
                    .await?
                    .1
            }
            None => String::new(),
        };
        Ok((user_name, team_domain))
    }

    /// Answers through a response URL (its secret is the last part of the URL); the bot's
    /// authorization decisions are recorded in `slot` (the request's).
    pub async fn respond(
        &self,
        secret: &str,
        answer: CommandAnswer,
        slot: DecisionSlot,
    ) -> Result<CommandReply, Error> {
        // A malformed answer is refused before it uses up one of the URL's answers.
        if !answer.is_empty() {
            answer.content.to_parts()?;
        }
        let hash = token_hash(secret);
        let taken = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    Ok::<_, Error>(
                        bot_commands::take_response_url(&mut tx.conn(), &hash, now_ms()).await?,
                    )
                })
            })
            .await?
            .ok_or_else(|| {
                Error::gone(
                    "expired_url",
                    "this response URL expired or was used up (five answers in thirty minutes)",
                )
            })?;
        {
            let mut conn = self.store.reader().await?;
            let live = bots::live(&mut conn.conn(), taken.bot_id).await?;
            if !live {
                return Err(Error::gone("bot_deactivated", "this bot was deactivated"));
            }
        }
        let target = Target {
            bot: taken.bot_id,
            workspace: taken.workspace_id,
            channel: taken.channel_id,
            user: taken.user_id,
            original: taken.message_id,
        };
        self.deliver_answer(target, answer, slot).await
    }

    /// The bot acting on an answer to a person (no token: the command or response URL is
    /// the credential); it may only write messages.
    fn answering_actor(target: Target) -> Result<Actor, Error> {
        let scopes = BotScopes::parse([BotScope::ChatWrite.as_str()])
            .map_err(|s| Error::Internal(format!("scope {s} is unknown")))?;
        Ok(Actor::bot(
            target.bot,
            BotCredential::Answer,
            target.workspace,
            scopes,
            None,
        ))
    }

    async fn deliver_answer(
        &self,
        target: Target,
        answer: CommandAnswer,
        slot: DecisionSlot,
    ) -> Result<CommandReply, Error> {
        let actor = Self::answering_actor(target)?.recording_into(slot);
        if let Some(original) = target.original {
            if answer.delete_original {
                self.chat.delete(&actor, original).await?;
                return Ok(CommandReply::default());
            }
            if answer.replace_original && !answer.is_empty() {
                let (body, blocks) = answer.content.to_parts()?;
                // Replacing takes the answer whole: blocks it does not have are removed.
                let edited = self
                    .chat
                    .edit_with_blocks(&actor, original, body, BlocksEdit::Set(blocks))
                    .await?;
                return Ok(CommandReply {
                    ephemeral: None,
                    message: Some(edited),
                });
            }
        }
        if answer.is_empty() {
            // Nothing to show: the bot only acknowledged, which is its own business.
            crate::rbac::allow_own_identity(&actor);
            return Ok(CommandReply::default());
        }
        let (body, blocks) = answer.content.to_parts()?;
        if answer.in_channel {
            let member = {
                let mut conn = self.store.reader().await?;
                channels::membership(&mut conn.conn(), target.channel, target.bot)
                    .await?
                    .is_some()
            };
            if member {
                let posted = self
                    .chat
                    .post_with_blocks(&actor, target.channel, body, blocks, None, None)
                    .await?;
                return Ok(CommandReply {
                    ephemeral: None,
                    message: Some(posted),
                });
            }
            let note = format!(
                "{}\n\n_Only you can see this: the bot is not a member of this channel._",
                body.as_str()
            );
            let body = MessageBody::parse("text", note).unwrap_or(body);
            let view = self.answer_ephemeral(&actor, target, body, blocks).await?;
            return Ok(CommandReply {
                ephemeral: Some(view),
                message: None,
            });
        }
        let view = self.answer_ephemeral(&actor, target, body, blocks).await?;
        Ok(CommandReply {
            ephemeral: Some(view),
            message: None,
        })
    }

    /// An ephemeral message from the acting bot to `user` in `channel`: both must be members
    /// of it. Audited (without its text); the caller hands it to the hub.
    pub async fn ephemeral(
        &self,
        actor: &Actor,
        channel: ChannelId,
        user: UserId,
        body: MessageBody,
        blocks: Option<MessageBlocks>,
    ) -> Result<Arc<EphemeralMessageView>, Error> {
        let Principal::Bot {
            bot_id,
            workspace_id,
            ..
        } = actor.principal
        else {
            return Err(Error::refused(
                "bots_only",
                "only bots send ephemeral messages",
            ));
        };
        {
            let mut conn = self.store.reader().await?;
            // Decided first, so a channel the bot may not see is not found, as for any call.
            self.auditor
                .authorize_read(
                    &self.store,
                    &mut conn.conn(),
                    actor,
                    Action::PostMessages,
                    Resource::Channel(channel),
                )
                .await?;
            let c = channels::by_id(&mut conn.conn(), channel)
                .await?
                .filter(|c| c.workspace_id == workspace_id)
                .ok_or(Error::NotFound("channel"))?;
            if channels::membership(&mut conn.conn(), c.id, bot_id)
                .await?
                .is_none()
            {
                return Err(Error::refused(
                    "not_in_channel",
                    "the bot is not a member of this channel",
                ));
            }
            if channels::membership(&mut conn.conn(), c.id, user)
                .await?
                .is_none()
            {
                return Err(Error::refused(
                    "user_not_in_channel",
                    "that person is not a member of this channel",
                ));
            }
        }
        self.sealed_ephemeral(actor, workspace_id, channel, user, bot_id, (body, blocks))
            .await
    }

    /// An answer shown to the person whose command (or action) it answers: they must still
    /// be a member of the channel; the bot need not be (commands work wherever people are,
    /// and the bot learns nothing by answering).
    async fn answer_ephemeral(
        &self,
        actor: &Actor,
        target: Target,
        body: MessageBody,
        blocks: Option<MessageBlocks>,
    ) -> Result<Arc<EphemeralMessageView>, Error> {
        {
            let mut conn = self.store.reader().await?;
            if channels::membership(&mut conn.conn(), target.channel, target.user)
                .await?
                .is_none()
            {
                return Err(Error::refused(
                    "user_not_in_channel",
                    "the person this answers is no longer a member of the channel",
                ));
            }
        }
        // The response URL (or the invocation) was the credential, handed out for exactly
        // this person and channel.
        crate::rbac::allow_own_identity(actor);
        self.sealed_ephemeral(
            actor,
            target.workspace,
            target.channel,
            target.user,
            target.bot,
            (body, blocks),
        )
        .await
    }

    /// Audits an ephemeral message (without its text) and makes its view.
    async fn sealed_ephemeral(
        &self,
        actor: &Actor,
        workspace_id: WorkspaceId,
        channel: ChannelId,
        user: UserId,
        bot_id: UserId,
        (body, blocks): (MessageBody, Option<MessageBlocks>),
    ) -> Result<Arc<EphemeralMessageView>, Error> {
        self.auditor
            .record_alone(
                &self.store,
                Event::by(actor, "message.ephemeral_sent", Outcome::Allowed)
                    .target("channel", channel)
                    .workspace(workspace_id)
                    .subject(user),
            )
            .await?;
        let view = Arc::new(EphemeralMessageView {
            id: random_token(),
            channel_id: channel,
            user_id: user,
            author_id: bot_id,
            text: body.as_str().to_owned(),
            blocks: blocks.map(MessageBlocks::into_vec),
            created_at: Utc::now(),
        });
        self.ephemerals.keep(&view);
        Ok(view)
    }
}
