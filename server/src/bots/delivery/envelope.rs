//! Which Slack events a committed domain event becomes, for which bots, and what each looks
//! like when it is sent.
//!
//! Deciding ([`plan`]) happens when the outbox consumer reads the event: a bot gets an event
//! only if it subscribed to its type, did not cause it (no loops), and is a member of the
//! channel (a public channel's creation excepted, which any bot may see), and `app_mention`
//! only when the message mentions it. The stored delivery holds the domain event's ids;
//! building the Slack event ([`build`]) happens at each attempt, reading the message and
//! checking the membership again, so a bot removed from a channel meanwhile receives
//! nothing more from it. Field names, `ts` and `channel_type` are Slack's.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::bots::BotService;
use crate::domain::{ChannelId, ParseError, UserId, WorkspaceId};
use crate::error::Error;
use crate::events::{ChannelChange, DomainEvent, MessageChange};
use crate::rbac::{Actor, BotCredential, BotScopes};
use crate::store::bots;
use crate::store::channels::{self, ChannelRecord};

/// The event types a bot may subscribe to (Slack's names). `message` is every message the
/// bot can see; `message.channels`, `.groups`, `.im` and `.mpim` narrow it to public
/// channels, private channels, direct and group conversations, as Slack's subscriptions do.
pub const EVENT_TYPES: &[&str] = &[
    "message",
    "message.channels",
    "message.groups",
    "message.im",
    "message.mpim",
    "app_mention",
    "reaction_added",
    "reaction_removed",
    "member_joined_channel",
    "member_left_channel",
    "channel_created",
];

/// A bot's subscribed event types, parsed at the edge.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventTypes(BTreeSet<&'static str>);

impl EventTypes {
    /// Parses Slack event type names; an unknown one is refused.
    pub fn parse<'a>(
        field: &'static str,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<EventTypes, ParseError> {
        let mut out = BTreeSet::new();
        for name in names {
            let known = EVENT_TYPES
                .iter()
                .find(|t| **t == name.trim())
                .ok_or_else(|| {
                    ParseError::new(
                        field,
                        format!(
                            "unknown event type {name:?}; known: {}",
                            EVENT_TYPES.join(", ")
                        ),
                    )
                })?;
            out.insert(*known);
        }
        Ok(EventTypes(out))
    }

    /// From storage (space-separated); names no longer known are dropped.
    pub fn stored(raw: &str) -> EventTypes {
        EventTypes(
            raw.split(' ')
                .filter_map(|n| EVENT_TYPES.iter().find(|t| **t == n).copied())
                .collect(),
        )
    }

    /// Whether none is subscribed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Whether events of Slack type `kind` are subscribed in some kind of channel.
    pub fn wants_any(&self, kind: &str) -> bool {
        ["public", "private", "direct", "group"]
            .iter()
            .any(|c| self.wants(kind, c))
    }

    /// Whether an event of Slack type `kind` in a channel of this Concord kind
    /// (`public`, `private`, `direct`, `group`) is subscribed.
    pub fn wants(&self, kind: &str, channel_kind: &str) -> bool {
        if kind != "message" {
            return self.0.contains(kind);
        }
        let narrow = match channel_kind {
            "public" => "message.channels",
            "private" => "message.groups",
            "direct" => "message.im",
            _ => "message.mpim",
        };
        self.0.contains("message") || self.0.contains(narrow)
    }
}

impl std::fmt::Display for EventTypes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.0.iter().copied().collect();
        f.write_str(&names.join(" "))
    }
}

/// What a domain event can become: its workspace and channel, who caused it, and the Slack
/// event types it maps to.
#[derive(Debug)]
pub struct Plan {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The channel it happened in.
    pub channel: ChannelId,
    /// Who caused it, if known: that bot never receives it.
    pub caused_by: Option<UserId>,
    /// Slack event types, each with the people it is addressed to (`app_mention`: the
    /// mentioned; others: everyone who may see it).
    pub kinds: Vec<(&'static str, Option<Vec<UserId>>)>,
}

/// What `event` can become, if anything a bot can subscribe to.
pub fn plan(event: &DomainEvent) -> Option<Plan> {
    let (workspace, channel, caused_by, kinds) = match event {
        DomainEvent::MessageCreated {
            workspace_id,
            channel_id,
            author_id,
            mentioned,
            ..
        } => (
            *workspace_id,
            *channel_id,
            Some(*author_id),
            vec![("message", None), ("app_mention", Some(mentioned.clone()))],
        ),
        DomainEvent::MessageUpdated {
            workspace_id,
            channel_id,
            what: what @ (MessageChange::ReactionAdded | MessageChange::ReactionRemoved),
            reaction: Some(reaction),
            ..
        } => {
            let kind = if *what == MessageChange::ReactionAdded {
                "reaction_added"
            } else {
                "reaction_removed"
            };
            (
                *workspace_id,
                *channel_id,
                Some(reaction.user_id),
                vec![(kind, None)],
            )
        }
        DomainEvent::ChannelMemberAdded {
            workspace_id,
            channel_id,
            by,
            ..
        } => (
            *workspace_id,
            *channel_id,
            *by,
            vec![("member_joined_channel", None)],
        ),
        DomainEvent::ChannelMemberRemoved {
            workspace_id,
            channel_id,
            by,
            ..
        } => (
            *workspace_id,
            *channel_id,
            *by,
            vec![("member_left_channel", None)],
        ),
        DomainEvent::ChannelChanged {
            workspace_id,
            channel_id,
            what: ChannelChange::Created,
        } => (
            *workspace_id,
            *channel_id,
            None,
            vec![("channel_created", None)],
        ),
        _ => return None,
    };
    Some(Plan {
        workspace,
        channel,
        caused_by,
        kinds,
    })
}

/// Slack's `event_id` of the Slack event `kind` made from the outbox event `source_id`: the
/// same for every attempt, after a restart too.
pub fn event_id(source_id: &str, kind: &str) -> String {
    let digest = Sha256::digest(format!("{source_id}/{kind}").as_bytes());
    format!("Ev{}", hex::encode_upper(&digest[..11]))
}

/// Slack's `channel_type` of a message event.
fn message_channel_type(kind: &str) -> &'static str {
    match kind {
        "public" => "channel",
        "private" => "group",
        "direct" => "im",
        _ => "mpim",
    }
}

/// Slack's one-letter `channel_type` of membership events.
fn member_channel_type(kind: &str) -> &'static str {
    if kind == "public" {
        "C"
    } else {
        "G"
    }
}

async fn channel_record(svc: &BotService, id: ChannelId) -> Result<Option<ChannelRecord>, Error> {
    let mut conn = svc.store.reader().await?;
    Ok(channels::by_id(&mut conn.conn(), id).await?)
}

async fn is_member(svc: &BotService, channel: ChannelId, user: UserId) -> Result<bool, Error> {
    let mut conn = svc.store.reader().await?;
    Ok(channels::membership(&mut conn.conn(), channel, user)
        .await?
        .is_some())
}

async fn is_bot(svc: &BotService, user: UserId) -> Result<bool, Error> {
    let mut conn = svc.store.reader().await?;
    Ok(bots::by_id(&mut conn.conn(), user).await?.is_some())
}

async fn channel_name(svc: &BotService, channel: &ChannelRecord) -> Result<String, Error> {
    let mut conn = svc.store.reader().await?;
    let details =
        crate::chat::details::open(svc.auditor.keyring(), &mut conn.conn(), channel).await?;
    Ok(details.name.unwrap_or_default())
}

/// The Slack event of type `kind` made from `event` for `bot`, now; `None` if it is no longer
/// for the bot (it left the channel, the message is gone).
pub async fn build(
    svc: &BotService,
    event: &DomainEvent,
    kind: &str,
    bot: UserId,
    event_time_us: i64,
) -> Result<Option<Value>, Error> {
    let Some(plan) = plan(event) else {
        return Ok(None);
    };
    // GDPR Art. 18: nothing a restricted person caused or wrote reaches a bot.
    if super::restricted::concerns_restricted(svc, event).await? {
        return Ok(None);
    }
    let Some(channel) = channel_record(svc, plan.channel).await? else {
        return Ok(None);
    };
    if channel.workspace_id != plan.workspace {
        return Ok(None);
    }
    let visible = if kind == "channel_created" {
        channel.kind == "public"
    } else {
        is_member(svc, channel.id, bot).await?
    };
    if !visible {
        return Ok(None);
    }
    let event_ts = crate::bots::ts::of_instant(event_time_us);
    let team = plan.workspace.to_string();
    Ok(Some(match (event, kind) {
        (
            DomainEvent::MessageCreated {
                message_id,
                thread_root_id,
                ..
            },
            "message" | "app_mention",
        ) => {
            let Some(m) = svc
                .chat
                .message_for_delivery(plan.workspace, channel.id, *message_id)
                .await?
            else {
                return Ok(None);
            };
            if m.deleted {
                return Ok(None);
            }
            // Slack's app_mention is for the bot named in the text, not `@channel` or `@here`
            // (which also count as mentions of everyone in Concord).
            if kind == "app_mention" && !names(&m.text, bot) {
                return Ok(None);
            }
            // Handing a message of a channel holding PHI to a bot is a read of it.
            let reader = Actor::bot(
                bot,
                BotCredential::Events,
                plan.workspace,
                BotScopes::default(),
                None,
            );
            svc.chat.audit_phi_delivery(&reader, &channel, m.id).await?;
            let ts = crate::bots::ts::of(m.created_at, m.seq);
            let mut out = json!({
                "type": kind,
                "channel": channel.id,
                "user": m.author_id,
                "text": m.text,
                "ts": ts,
                "event_ts": ts,
                "team": team,
            });
            if let Some(blocks) = &m.blocks {
                out["blocks"] = json!(blocks);
            }
            if kind == "message" {
                out["channel_type"] = json!(message_channel_type(&channel.kind));
                if let Some(id) = &m.client_msg_id {
                    out["client_msg_id"] = json!(id);
                }
                if is_bot(svc, m.author_id).await? {
                    out["bot_id"] = json!(m.author_id);
                }
            }
            if let Some(root) = thread_root_id {
                if let Some(r) = svc
                    .chat
                    .message_for_delivery(plan.workspace, channel.id, *root)
                    .await?
                {
                    out["thread_ts"] = json!(crate::bots::ts::of(r.created_at, r.seq));
                }
            }
            out
        }
        (
            DomainEvent::MessageUpdated {
                message_id,
                reaction: Some(reaction),
                ..
            },
            "reaction_added" | "reaction_removed",
        ) => {
            let Some(m) = svc
                .chat
                .message_for_delivery(plan.workspace, channel.id, *message_id)
                .await?
            else {
                return Ok(None);
            };
            json!({
                "type": kind,
                "user": reaction.user_id,
                "reaction": reaction.emoji.trim_matches(':'),
                "item_user": m.author_id,
                "item": {
                    "type": "message",
                    "channel": channel.id,
                    "ts": crate::bots::ts::of(m.created_at, m.seq),
                },
                "event_ts": event_ts,
            })
        }
        (DomainEvent::ChannelMemberAdded { user_id, by, .. }, "member_joined_channel") => {
            let mut out = json!({
                "type": kind,
                "user": user_id,
                "channel": channel.id,
                "channel_type": member_channel_type(&channel.kind),
                "team": team,
                "event_ts": event_ts,
            });
            if let Some(inviter) = by.filter(|b| b != user_id) {
                out["inviter"] = json!(inviter);
            }
            out
        }
        (DomainEvent::ChannelMemberRemoved { user_id, .. }, "member_left_channel") => json!({
            "type": kind,
            "user": user_id,
            "channel": channel.id,
            "channel_type": member_channel_type(&channel.kind),
            "team": team,
            "event_ts": event_ts,
        }),
        (DomainEvent::ChannelChanged { .. }, "channel_created") => {
            if channel.created_by == bot
                || super::restricted::is_restricted(svc, channel.created_by).await?
            {
                return Ok(None);
            }
            json!({
                "type": kind,
                "channel": {
                    "id": channel.id,
                    "name": channel_name(svc, &channel).await?,
                    "is_channel": true,
                    "created": channel.created_at.timestamp(),
                    "creator": channel.created_by,
                    "context_team_id": team,
                },
                "event_ts": event_ts,
            })
        }
        _ => return Ok(None),
    }))
}

/// Slack's `event_callback` envelope around `event` for `bot` of `workspace`.
pub fn envelope(
    event: Value,
    token: &str,
    workspace: WorkspaceId,
    bot: UserId,
    event_id: &str,
    event_time_us: i64,
) -> Value {
    json!({
        "token": token,
        "team_id": workspace,
        "context_team_id": workspace,
        "api_app_id": bot,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time_us.div_euclid(1_000_000),
        "authorizations": [{
            "enterprise_id": null,
            "team_id": workspace,
            "user_id": bot,
            "is_bot": true,
            "is_enterprise_install": false,
        }],
        "is_ext_shared_channel": false,
    })
}

/// Whether `text` names `bot` as a mention (`@<id>`, as clients insert it, or Slack's
/// `<@id>`), not merely contains its id somewhere.
fn names(text: &str, bot: UserId) -> bool {
    let id = bot.to_string().to_lowercase();
    crate::domain::MessageBody::parse("text", text.to_owned())
        .map(|body| body.mentions().handles.contains(&id))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mention_names_the_bot_only_as_a_mention() {
        let bot = UserId::generate();
        assert!(names(&format!("deploy please @{bot}"), bot));
        assert!(names(&format!("<@{bot}> ping"), bot));
        // Its id inside a word or a link is no mention; nor is anyone else's.
        assert!(!names(&format!("see https://x.example/u{bot}"), bot));
        assert!(!names(&format!("ping @{}", UserId::generate()), bot));
        assert!(!names("@here standup", bot));
    }

    #[test]
    fn event_types_parse_and_narrow_messages() {
        let types = EventTypes::parse("event_types", ["message.channels", "app_mention"]).unwrap();
        assert!(types.wants("message", "public"));
        assert!(!types.wants("message", "private"));
        assert!(types.wants("app_mention", "private"));
        assert!(!types.wants("reaction_added", "public"));
        assert_eq!(types.to_string(), "app_mention message.channels");
        assert_eq!(EventTypes::stored(&types.to_string()), types);
        let all = EventTypes::parse("event_types", ["message"]).unwrap();
        for kind in ["public", "private", "direct", "group"] {
            assert!(all.wants("message", kind));
        }
        assert!(EventTypes::parse("event_types", ["message.everything"]).is_err());
    }

    #[test]
    fn event_ids_are_stable_and_distinct_per_kind() {
        let a = event_id("0190-abc", "message");
        assert_eq!(a, event_id("0190-abc", "message"));
        assert_ne!(a, event_id("0190-abc", "app_mention"));
        assert!(a.starts_with("Ev") && a.len() == 24, "{a}");
    }
}
