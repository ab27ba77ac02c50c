//! Interactivity: presses of the buttons and selects in a bot's messages, sent to the bot.
//!
//! An administrator gives a bot an interactivity URL (it needs a signing secret, as for its
//! events). A member of a channel who presses a button (or picks an option of a select) in a
//! message the bot posted there has Slack's `block_actions` payload POSTed to that URL, as a
//! form with one `payload` field, signed as Slack signs, through the guarded client. The
//! action must name an element of the message's stored blocks, and what the payload carries
//! (the button's `value`, the option picked) is read from those blocks: a client cannot make a
//! bot see a value its message never offered. Only the bot that posted the message hears of
//! it.
//!
//! The payload carries a `response_url` tied to the message, so the bot can replace or
//! delete it, or answer the person alone, within Slack's limits
//! ([`super::commands::RESPONSE_URL_USES`] answers in thirty minutes); it may also call
//! `chat.update`. The press counts against the bot's in-flight limit shared with slash
//! commands, and is audited (which element, never its text).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

use super::commands::{now_ms, trigger_id, RESPONSE_URL_TTL_MS, RESPONSE_URL_USES};
use super::delivery::egress::EgressError;
use super::delivery::signing;
use super::delivery::subscription_view;
use super::{BotService, EventSubscriptionView};
use crate::audit::{Event, Outcome};
use crate::auth::{random_token, token_hash};
use crate::chat::{option_of, ChannelView, EphemeralMessageView, MessageBlocks};
use crate::domain::{MessageId, ParseError, UserId, WorkspaceId};
use crate::error::Error;
use crate::rbac::{Action, Actor, Principal};
use crate::store::bot_commands::{self, ResponseUrlRecord};
use crate::store::{bot_events, bots, channels, Tx};

/// The most of a bot's answer to a press that is read (the answer itself is ignored, as
/// Slack ignores it: bots answer through the response URL or the Web API).
const MAX_ANSWER: usize = 16 * 1024;

/// A press of an element in a message's blocks.
#[derive(Clone, Debug)]
pub struct ActionInput {
    /// The block holding the element.
    pub block_id: String,
    /// The element.
    pub action_id: String,
    /// For a select or overflow menu: the `value` of the option picked.
    pub selected_option: Option<String>,
}

impl BotService {
    /// Sets where presses in a bot's messages go, or, with `None`, stops them.
    #[tracing::instrument(level = "debug", skip_all, fields(workspace = %workspace, bot = %bot))]
    pub async fn set_interactivity(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        bot: UserId,
        url: Option<String>,
    ) -> Result<EventSubscriptionView, Error> {
        // Decided before any name is resolved; decided again in the write below.
        if self.may_admin_bot(actor, workspace, bot).await?.is_none() {
            return Err(Error::conflict(
                "signing_secret_missing",
                "make the bot a signing secret first: interactions are signed with it",
            ));
        }
        let url = match url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(
                self.delivery()
                    .egress
                    .vet(raw)
                    .await
                    .map(|u| u.to_string())
                    .map_err(|e| Error::Invalid(ParseError::new("url", e.to_string())))?,
            ),
        };
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let by = this.authorize_bot_admin(tx, &actor, workspace, bot).await?;
                    if !bot_events::set_interactivity(
                        &mut tx.conn(),
                        bot,
                        url.as_deref(),
                        by,
                        Utc::now(),
                    )
                    .await?
                    {
                        return Err(Error::conflict(
                            "signing_secret_missing",
                            "make the bot a signing secret first: interactions are signed with it",
                        ));
                    }
                    this.auditor
                        .record(
                            tx,
                            Event::by(&actor, "bot.interactivity_set", Outcome::Allowed)
                                .target("bot", bot)
                                .workspace(workspace)
                                .subject(bot)
                                .details(json!({ "interactivity_url": url })),
                        )
                        .await?;
                    let settings = bot_events::settings(&mut tx.conn(), bot).await?;
                    Ok(subscription_view(bot, settings))
                })
            })
            .await
    }

    /// Sends `actor`'s press of an element of message `id` to the bot that posted it.
    /// `public_base` is the server's public URL, which the response URL is under.
    #[tracing::instrument(level = "debug", skip_all, fields(message = %id))]
    pub async fn act(
        &self,
        actor: &Actor,
        id: MessageId,
        input: ActionInput,
        public_base: &str,
    ) -> Result<(), Error> {
        let user = person(actor)?;
        self.limit_person(user)?;
        // Reading the message checks the caller may see its channel.
        let message = self.chat.message(actor, id).await?;
        let seen = self.chat.get(actor, message.channel_id).await?;
        usable(&seen)?;
        if message.deleted {
            return Err(Error::gone("message_deleted", "this message was deleted"));
        }
        let thread_ts = match message.thread_root_id {
            Some(root) => {
                let root = self.chat.message(actor, root).await?;
                Some(crate::bots::ts::of(root.created_at, root.seq))
            }
            None => None,
        };
        let origin = Origin {
            bot: message.author_id,
            seen,
            ts: crate::bots::ts::of(message.created_at, message.seq),
            thread_ts,
            text: message.text,
            blocks: message.blocks,
            message: Some(id),
        };
        self.press(actor, user, origin, input, public_base).await
    }

    /// Sends `actor`'s press of an element of an ephemeral message they were shown (in this
    /// process, within thirty minutes) to the bot that sent it. Its `response_url` answers
    /// the person alone.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn act_ephemeral(
        &self,
        actor: &Actor,
        id: &str,
        input: ActionInput,
        public_base: &str,
    ) -> Result<(), Error> {
        let user = person(actor)?;
        self.limit_person(user)?;
        let kept = self.ephemerals.get(id, user);
        // Kept per recipient: anyone else is told it does not exist.
        crate::rbac::decide_recipient(actor, kept.is_some());
        let kept = kept.ok_or(Error::NotFound("ephemeral"))?;
        let seen = self.chat.get(actor, kept.channel_id).await?;
        usable(&seen)?;
        let origin = Origin {
            bot: kept.author_id,
            seen,
            ts: ephemeral_ts(kept.created_at),
            thread_ts: None,
            text: kept.text.clone(),
            blocks: kept.blocks.clone(),
            message: None,
        };
        self.press(actor, user, origin, input, public_base).await
    }

    /// The part of a press common to messages and ephemeral messages.
    async fn press(
        &self,
        actor: &Actor,
        user: UserId,
        origin: Origin,
        input: ActionInput,
        public_base: &str,
    ) -> Result<(), Error> {
        let Origin {
            bot,
            seen,
            ts,
            thread_ts,
            text,
            blocks,
            message: original,
        } = origin;
        let no_action = || {
            Error::conflict(
                "no_such_action",
                "this message has no such button or menu (it may have changed)",
            )
        };
        let blocks = blocks
            .and_then(|b| {
                MessageBlocks::parse("blocks", Some(&Value::Array(b)))
                    .ok()
                    .flatten()
            })
            .ok_or_else(no_action)?;
        let element = blocks
            .action(&input.block_id, &input.action_id)
            .ok_or_else(no_action)?;
        let now = Utc::now();
        let mut action = json!({
            "type": element.kind,
            "action_id": element.action_id,
            "block_id": element.block_id,
            "action_ts": format!("{}.{:06}", now.timestamp(), now.timestamp_subsec_micros()),
        });
        match element.kind.as_str() {
            "button" => {
                for field in ["text", "value", "style"] {
                    if let Some(v) = element.element.get(field) {
                        action[field] = v.clone();
                    }
                }
            }
            _ => {
                let picked = input.selected_option.as_deref().ok_or_else(|| {
                    Error::Invalid(ParseError::new(
                        "selected_option",
                        "pick one of the menu's options",
                    ))
                })?;
                let option = option_of(&element.element, picked).ok_or_else(|| {
                    Error::Invalid(ParseError::new(
                        "selected_option",
                        "is not one of the menu's options",
                    ))
                })?;
                action["selected_option"] = option;
                if let Some(p) = element.element.get("placeholder") {
                    action["placeholder"] = p.clone();
                }
            }
        }
        let workspace = seen.workspace_id;
        let channel = seen.id;
        // Taken before anything is written: a press refused as busy leaves nothing behind.
        let _slot = self
            .delivery()
            .command_slot(bot)
            .ok_or_else(|| Error::Busy {
                code: "action_busy",
                message: "the app is answering as many requests as it may at once; try again"
                    .into(),
                retry_after_seconds: 1,
            })?;
        let secret = random_token();
        let secret_hash = token_hash(&secret);
        let actor_w = actor.clone();
        let this = self.clone();
        let (block_id, action_id) = (element.block_id.clone(), element.action_id.clone());
        let (url, sealed, bot_member) = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    // Decided again on what this transaction reads: the person may have left.
                    let found = this
                        .auditor
                        .authorize_channel(tx, &actor_w, Action::ReadChannels, channel)
                        .await?
                        .ok_or(Error::NotFound("channel"))?;
                    if found.member_role.is_none() {
                        return Err(Error::refused(
                            "not_in_channel",
                            "join the channel to use its messages' buttons",
                        ));
                    }
                    let not_interactive = || {
                        Error::refused(
                            "not_interactive",
                            "the app that posted this message does not take button presses",
                        )
                    };
                    let record = bots::by_id(&mut tx.conn(), bot).await?;
                    if record.as_ref().map(|r| r.workspace_id) != Some(workspace)
                        || !bots::live(&mut tx.conn(), bot).await?
                    {
                        return Err(not_interactive());
                    }
                    let settings = bot_events::settings(&mut tx.conn(), bot)
                        .await?
                        .ok_or_else(not_interactive)?;
                    let url = settings
                        .interactivity_url
                        .clone()
                        .ok_or_else(not_interactive)?;
                    let now = now_ms();
                    bot_commands::insert_response_url(
                        &mut tx.conn(),
                        &secret_hash,
                        &ResponseUrlRecord {
                            bot_id: bot,
                            workspace_id: workspace,
                            channel_id: channel,
                            user_id: user,
                            message_id: original,
                            uses_left: RESPONSE_URL_USES,
                        },
                        now + RESPONSE_URL_TTL_MS,
                        now,
                    )
                    .await?;
                    this.auditor
                        .record(
                            tx,
                            Event::by(&actor_w, "bot_action.invoke", Outcome::Allowed)
                                .target(
                                    if original.is_some() {
                                        "message"
                                    } else {
                                        "ephemeral"
                                    },
                                    original.map_or_else(String::new, |m| m.to_string()),
                                )
                                .workspace(workspace)
                                .subject(bot)
                                .details(json!({
                                    "channel_id": channel,
                                    "block_id": block_id,
                                    "action_id": action_id,
                                })),
                        )
                        .await?;
                    let bot_member = channels::membership(&mut tx.conn(), channel, bot)
                        .await?
                        .is_some();
                    Ok((url, settings.signing_secret_enc, bot_member))
                })
            })
            .await?;
        let (user_name, team_domain) = self.names_for_bot(user, workspace).await?;
        let key = self.signing_key(workspace, bot, &sealed).await?;
        // As for commands: a bot learns a private channel's name only while it is a member.
        let channel_name = match seen.name.as_deref() {
            None => "directmessage".to_owned(),
            Some(_) if seen.kind == "private" && !bot_member => "privategroup".to_owned(),
            Some(name) => name.to_owned(),
        };
        // Slack's `state` holds the menus' picks, by block and action.
        let mut state = serde_json::Map::new();
        if element.kind != "button" {
            let mut picks = serde_json::Map::new();
            picks.insert(
                element.action_id.clone(),
                json!({ "type": element.kind, "selected_option": action["selected_option"] }),
            );
            state.insert(element.block_id.clone(), Value::Object(picks));
        }
        let mut shown = json!({
            "type": "message",
            "user": bot,
            "bot_id": bot,
            "text": text,
            "ts": ts,
            "blocks": blocks.as_slice(),
        });
        let mut container = json!({
            "type": "message",
            "message_ts": ts,
            "channel_id": channel,
            "is_ephemeral": original.is_none(),
        });
        if let Some(thread) = &thread_ts {
            shown["thread_ts"] = json!(thread);
            container["thread_ts"] = json!(thread);
        }
        let payload = json!({
            "type": "block_actions",
            "user": {
                "id": user,
                "username": user_name,
                "name": user_name,
                "team_id": workspace,
            },
            "api_app_id": bot,
            "token": signing::verification_token(&key),
            "container": container,
            "trigger_id": trigger_id(),
            "team": { "id": workspace, "domain": team_domain },
            "enterprise": null,
            "is_enterprise_install": false,
            "channel": { "id": channel, "name": channel_name },
            "message": shown,
            "state": { "values": state },
            "response_url": format!(
                "{}/hooks/responses/{secret}",
                public_base.trim_end_matches('/')
            ),
            "actions": [action],
        });
        let form: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish();
        let body = form.into_bytes();
        let headers: HeaderMap = super::delivery::signed_headers(&key, &body);
        let sent = self
            .delivery()
            .egress
            .post(
                &url,
                headers,
                "application/x-www-form-urlencoded",
                body,
                MAX_ANSWER,
            )
            .await;
        match sent {
            Err(EgressError::Timeout) => Err(Error::Upstream {
                code: "action_timeout",
                message: "the app did not answer in time".into(),
            }),
            Err(e) => {
                tracing::info!(bot = %bot, error = %e, "a bot's interactivity URL failed");
                Err(Error::Upstream {
                    code: "action_failed",
                    message: "the app could not be reached".into(),
                })
            }
            Ok(a) if !(200..300).contains(&a.status) => Err(Error::Upstream {
                code: "action_failed",
                message: format!("the app answered with status {}", a.status),
            }),
            Ok(_) => Ok(()),
        }
    }
}

/// Ephemeral messages with blocks kept for thirty minutes after they were shown, so their
/// buttons can be pressed; in this process only (as ephemeral messages themselves are
/// delivered). At most 16 MiB in all and 500 per bot: a bot sending many pushes out its own
/// oldest, not other bots'.
#[derive(Default)]
pub(crate) struct Ephemerals(std::sync::Mutex<Kept>);

#[derive(Default)]
pub(crate) struct Kept {
    by_id: HashMap<String, (Instant, usize, Arc<EphemeralMessageView>)>,
    bytes: usize,
}

const EPHEMERALS_BYTES: usize = 16 * 1024 * 1024;
const EPHEMERALS_PER_BOT: usize = 500;
const EPHEMERAL_TTL: Duration = Duration::from_secs(30 * 60);

impl Kept {
    fn remove(&mut self, id: &str) {
        if let Some((_, size, _)) = self.by_id.remove(id) {
            self.bytes = self.bytes.saturating_sub(size);
        }
    }

    /// The oldest entry, of `bot` only if given.
    fn oldest(&self, bot: Option<UserId>) -> Option<String> {
        self.by_id
            .iter()
            .filter(|(_, (_, _, v))| bot.is_none_or(|b| v.author_id == b))
            .min_by_key(|(_, (at, _, _))| *at)
            .map(|(id, _)| id.clone())
    }
}

impl Ephemerals {
    /// Keeps `view` if it has blocks.
    pub(crate) fn keep(&self, view: &Arc<EphemeralMessageView>) {
        let Some(blocks) = &view.blocks else {
            return;
        };
        let size =
            view.text.len() + serde_json::to_vec(blocks).map_or(0, |b| b.len()) + view.id.len();
        if size > EPHEMERALS_BYTES {
            return;
        }
        let Ok(mut kept) = self.0.lock() else {
            return;
        };
        let now = Instant::now();
        let expired: Vec<String> = kept
            .by_id
            .iter()
            .filter(|(_, (at, _, _))| now.duration_since(*at) >= EPHEMERAL_TTL)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            kept.remove(&id);
        }
        let bot = view.author_id;
        while kept
            .by_id
            .values()
            .filter(|(_, _, v)| v.author_id == bot)
            .count()
            >= EPHEMERALS_PER_BOT
        {
            match kept.oldest(Some(bot)) {
                Some(id) => kept.remove(&id),
                None => break,
            }
        }
        while kept.bytes + size > EPHEMERALS_BYTES {
            match kept.oldest(None) {
                Some(id) => kept.remove(&id),
                None => break,
            }
        }
        kept.bytes += size;
        kept.by_id
            .insert(view.id.clone(), (now, size, view.clone()));
    }

    /// The ephemeral message `id` shown to `user`, if it is still kept.
    fn get(&self, id: &str, user: UserId) -> Option<Arc<EphemeralMessageView>> {
        let kept = self.0.lock().ok()?;
        let (at, _, view) = kept.by_id.get(id)?;
        (at.elapsed() < EPHEMERAL_TTL && view.user_id == user).then(|| view.clone())
    }
}

/// What a press is of: a stored message, or an ephemeral message shown to the presser.
struct Origin {
    bot: UserId,
    seen: ChannelView,
    ts: String,
    thread_ts: Option<String>,
    text: String,
    blocks: Option<Vec<Value>>,
    message: Option<MessageId>,
}

fn person(actor: &Actor) -> Result<UserId, Error> {
    match actor.principal {
        Principal::User { user_id, .. } => Ok(user_id),
        _ => Err(Error::refused(
            "people_only",
            "buttons and menus are pressed by people",
        )),
    }
}

/// Refuses presses in a channel the person is not in, or that is archived.
fn usable(seen: &ChannelView) -> Result<(), Error> {
    if seen.my_role.is_none() {
        return Err(Error::refused(
            "not_in_channel",
            "join the channel to use its messages' buttons",
        ));
    }
    if seen.archived {
        return Err(Error::refused(
            "channel_archived",
            "this channel is archived and read-only",
        ));
    }
    Ok(())
}

/// An ephemeral message's Slack `ts` (its time; it has no place in the channel).
pub(crate) fn ephemeral_ts(at: chrono::DateTime<Utc>) -> String {
    format!("{}.{:06}", at.timestamp(), at.timestamp_subsec_micros())
}
