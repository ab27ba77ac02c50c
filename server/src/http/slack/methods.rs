//! The Web API methods: each reads its arguments, calls the services as the bot and shapes
//! Slack's answer.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::error::SlackError;
use super::objects::{self, is_at, parse_ts, ts};
use super::request::cursor;
use super::Call;
use crate::bots::SlackContent;
use crate::chat::{ChannelView, MessageView, Page};
use crate::domain::{ChannelId, UserId};
use crate::error::Error;

/// Most messages one history page returns (the chat service's page, less one to look ahead).
const MAX_HISTORY: usize = 199;

fn next(cursor: String) -> Value {
    json!({ "next_cursor": cursor })
}

/// A message's content from `text`, `blocks` and `attachments`.
fn content(call: &Call) -> Result<SlackContent, SlackError> {
    Ok(SlackContent {
        text: call.args.str("text"),
        blocks: call.args.json("blocks")?,
        attachments: call.args.json("attachments")?,
    })
}

async fn bot_ids(call: &Call) -> Result<HashSet<UserId>, SlackError> {
    Ok(call
        .state
        .bots
        .bot_accounts(call.workspace)
        .await
        .map_err(|e| call.fail(e))?
        .into_keys()
        .collect())
}

/// Those of `people` whose processing is restricted (GDPR Art. 18): a bot reads nothing of
/// theirs.
async fn restricted(
    call: &Call,
    people: impl IntoIterator<Item = UserId>,
) -> Result<HashSet<UserId>, SlackError> {
    let people: Vec<UserId> = people.into_iter().collect();
    call.state
        .restrictions
        .restricted_among(&people)
        .await
        .map_err(|e| call.fail(e))
}

/// Authors and reacting people of `messages`.
fn people_in(messages: &[MessageView]) -> impl Iterator<Item = UserId> + '_ {
    messages
        .iter()
        .flat_map(|m| std::iter::once(m.author_id).chain(m.reactions.values().flatten().copied()))
}

/// The channel, which the bot must be a member of (`not_in_channel` otherwise).
async fn joined(call: &Call, channel: ChannelId) -> Result<ChannelView, SlackError> {
    let c = call
        .state
        .chat
        .get(&call.actor, channel)
        .await
        .map_err(|e| call.fail(e))?;
    if c.my_role.is_none() {
        return Err(SlackError::Code("not_in_channel"));
    }
    Ok(c)
}

/// The message a `ts` names in `channel`.
async fn locate(call: &Call, channel: ChannelId, ts: &str) -> Result<MessageView, SlackError> {
    let at = parse_ts(ts).ok_or(SlackError::Code("message_not_found"))?;
    let m = call
        .state
        .chat
        .message_at(&call.actor, channel, at.1)
        .await
        .map_err(|e| call.fail(e))?;
    if !is_at(&m, at) {
        return Err(SlackError::Code("message_not_found"));
    }
    Ok(m)
}

/// `auth.test`: who the token belongs to.
pub async fn auth_test(call: &Call) -> Result<Value, SlackError> {
    let me = call
        .state
        .bots
        .own(&call.actor)
        .await
        .map_err(|e| call.fail(e))?;
    let team = call
        .state
        .workspaces
        .get(&call.actor, call.workspace)
        .await
        .map_err(|e| call.fail(e))?;
    Ok(json!({
        "url": format!("{}/", call.state.public_base.trim_end_matches('/')),
        "team": team.name,
        "user": me.name,
        "team_id": call.workspace,
        "user_id": me.id,
        "bot_id": me.id,
        "is_enterprise_install": false,
    }))
}

/// `chat.postMessage`: posts (or replies in a thread, with `thread_ts`).
pub async fn post_message(call: &Call) -> Result<Value, SlackError> {
    let channel = call.args.channel()?;
    let (body, blocks) = content(call)?.to_parts().map_err(|e| call.fail(e))?;
    let root = match call.args.str("thread_ts") {
        Some(thread) => Some(
            locate(call, channel, &thread)
                .await
                .map_err(|_| SlackError::Code("thread_not_found"))?,
        ),
        None => None,
    };
    let posted = call
        .state
        .chat
        .post_with_blocks(
            &call.actor,
            channel,
            body,
            blocks,
            root.as_ref().map(|r| r.id),
            None,
        )
        .await
        .map_err(|e| call.fail(e))?;
    let thread_ts = root.as_ref().map(ts);
    let mut bots = HashSet::new();
    bots.insert(posted.author_id);
    Ok(json!({
        "channel": channel,
        "ts": ts(&posted),
        "message": objects::message(&posted, thread_ts.as_deref(), &bots),
    }))
}

/// `chat.postEphemeral`: a message only `user` sees in `channel`, until they reload; both
/// the bot and the person must be members. Never stored.
pub async fn post_ephemeral(call: &Call) -> Result<Value, SlackError> {
    let channel = call.args.channel()?;
    let user: UserId = call
        .args
        .required("user")?
        .parse()
        .map_err(|_| SlackError::Code("user_not_found"))?;
    let (body, blocks) = content(call)?.to_parts().map_err(|e| call.fail(e))?;
    let view = call
        .state
        .bots
        .ephemeral(&call.actor, channel, user, body, blocks)
        .await
        .map_err(|e| call.fail(e))?;
    let message_ts = format!(
        "{}.{:06}",
        view.created_at.timestamp(),
        view.created_at.timestamp_subsec_micros()
    );
    call.state
        .hub
        .ephemeral(view)
        .await
        .map_err(|e| call.fail(e.into()))?;
    Ok(json!({ "message_ts": message_ts }))
}

/// `chat.update`: edits one of the bot's messages.
pub async fn update_message(call: &Call) -> Result<Value, SlackError> {
    let channel = call.args.channel()?;
    let at = call.args.required("ts")?;
    let (body, blocks) = content(call)?.to_edit().map_err(|e| call.fail(e))?;
    let m = locate(call, channel, &at).await?;
    let edited = call
        .state
        .chat
        .edit_with_blocks(&call.actor, m.id, body, blocks)
        .await
        .map_err(|e| match call.fail(e) {
            SlackError::Code("restricted_action") => SlackError::Code("cant_update_message"),
            other => other,
        })?;
    let mut bots = HashSet::new();
    bots.insert(edited.author_id);
    Ok(json!({
        "channel": channel,
        "ts": ts(&edited),
        "text": edited.text,
        "message": objects::message(&edited, None, &bots),
    }))
}

/// `chat.delete`: deletes one of the bot's messages.
pub async fn delete_message(call: &Call) -> Result<Value, SlackError> {
    let channel = call.args.channel()?;
    let at = call.args.required("ts")?;
    let m = locate(call, channel, &at).await?;
    call.state
        .chat
        .delete(&call.actor, m.id)
        .await
        .map_err(|e| match call.fail(e) {
            SlackError::Code("restricted_action") => SlackError::Code("cant_delete_message"),
            other => other,
        })?;
    Ok(json!({ "channel": channel, "ts": at }))
}

/// `conversations.list`: public channels, and the private ones the bot is in.
pub async fn list_conversations(call: &Call) -> Result<Value, SlackError> {
    let types = call
        .args
        .str("types")
        .unwrap_or_else(|| "public_channel".into());
    let types: Vec<&str> = types.split(',').map(str::trim).collect();
    if let Some(bad) = types
        .iter()
        .find(|t| !matches!(**t, "public_channel" | "private_channel" | "im" | "mpim"))
    {
        return Err(SlackError::InvalidArguments(format!("unknown type {bad}")));
    }
    let limit = call.args.limit(100, 1000)?;
    let exclude_archived = call.args.flag("exclude_archived");
    let mut channels = Vec::new();
    if types.contains(&"public_channel") {
        channels.extend(
            call.state
                .chat
                .browse(&call.actor, call.workspace)
                .await
                .map_err(|e| call.fail(e))?,
        );
    }
    if types.contains(&"private_channel") {
        channels.extend(
            call.state
                .chat
                .my_channels(&call.actor, call.workspace)
                .await
                .map_err(|e| call.fail(e))?
                .into_iter()
                .filter(|c| c.kind == "private"),
        );
    }
    channels.retain(|c| !(exclude_archived && c.archived));
    let (page, next_cursor) = cursor::page(channels, call.args.str("cursor").as_deref(), limit)?;
    Ok(json!({
        "channels": page.iter().map(objects::channel).collect::<Vec<_>>(),
        "response_metadata": next(next_cursor),
    }))
}

/// `conversations.info`: one channel the bot may see.
pub async fn conversation_info(call: &Call) -> Result<Value, SlackError> {
    let channel = call.args.channel()?;
    let c = call
        .state
        .chat
        .get(&call.actor, channel)
        .await
        .map_err(|e| call.fail(e))?;
    Ok(json!({ "channel": objects::channel(&c) }))
}

/// `conversations.members`: the ids of a channel's members.
pub async fn conversation_members(call: &Call) -> Result<Value, SlackError> {
    let channel = call.args.channel()?;
    let limit = call.args.limit(100, 1000)?;
    let members = call
        .state
        .chat
        .members(&call.actor, channel)
        .await
        .map_err(|e| call.fail(e))?;
    let ids: Vec<UserId> = members.into_iter().map(|m| m.user_id).collect();
    let (page, next_cursor) = cursor::page(ids, call.args.str("cursor").as_deref(), limit)?;
    Ok(json!({ "members": page, "response_metadata": next(next_cursor) }))
}

/// `conversations.history`: a channel's messages, newest first, paged by cursor; `latest`
/// and `oldest` (with `inclusive`) bound them.
pub async fn history(call: &Call) -> Result<Value, SlackError> {
    let channel = call.args.channel()?;
    let limit = call.args.limit(100, MAX_HISTORY)?;
    let inclusive = call.args.flag("inclusive");
    let bound = |name: &str| -> Result<Option<i64>, SlackError> {
        match call.args.str(name) {
            None => Ok(None),
            Some(t) if t == "0" => Ok(None),
            Some(t) => parse_ts(&t)
                .map(|(_, seq)| Some(seq))
                .ok_or(SlackError::Code("invalid_ts_latest")),
        }
    };
    let latest = match bound("latest")? {
        Some(seq) if inclusive => Some(
            seq.checked_add(1)
                .ok_or(SlackError::Code("invalid_ts_latest"))?,
        ),
        other => other,
    };
    let oldest = match bound("oldest").map_err(|_| SlackError::Code("invalid_ts_oldest"))? {
        Some(seq) if !inclusive => Some(
            seq.checked_add(1)
                .ok_or(SlackError::Code("invalid_ts_oldest"))?,
        ),
        other => other,
    };
    let from_cursor = match call.args.str("cursor") {
        Some(c) => Some(cursor::decode(Some(&c))? as i64),
        None => None,
    };
    let before = [latest, from_cursor].into_iter().flatten().min();
    joined(call, channel).await?;
    let mut page = call
        .state
        .chat
        .history(
            &call.actor,
            channel,
            Page {
                before,
                after: None,
                limit: Some(limit as i64 + 1),
            },
        )
        .await
        .map_err(|e| call.fail(e))?;
    if let Some(oldest) = oldest {
        page.retain(|m| m.seq >= oldest);
    }
    let has_more = page.len() > limit;
    if has_more {
        page.remove(0);
    }
    page.reverse();
    let next_cursor = match page.last() {
        Some(m) if has_more => cursor::encode(m.seq as usize),
        _ => String::new(),
    };
    let bots = bot_ids(call).await?;
    // Deleted messages leave no trace in Slack's history.
    page.retain(|m| !m.deleted);
    let restricted = restricted(call, people_in(&page)).await?;
    Ok(json!({
        "messages": page
            .iter()
            .map(|m| objects::message_for_bot(m, None, &bots, &restricted))
            .collect::<Vec<_>>(),
        "has_more": has_more,
        "pin_count": 0,
        "response_metadata": next(next_cursor),
    }))
}

/// `conversations.replies`: a thread, its root first.
pub async fn replies(call: &Call) -> Result<Value, SlackError> {
    let channel = call.args.channel()?;
    let at = call.args.required("ts")?;
    let limit = call.args.limit(100, 1000)?;
    joined(call, channel).await?;
    let m = locate(call, channel, &at).await?;
    let root = m.thread_root_id.unwrap_or(m.id);
    let thread = call
        .state
        .chat
        .thread(&call.actor, root)
        .await
        .map_err(|e| call.fail(e))?;
    let root_ts = thread.first().map(ts).unwrap_or_else(|| at.clone());
    let (page, next_cursor) = cursor::page(thread, call.args.str("cursor").as_deref(), limit)?;
    let bots = bot_ids(call).await?;
    let restricted = restricted(call, people_in(&page)).await?;
    Ok(json!({
        "messages": page
            .iter()
            .map(|m| objects::message_for_bot(m, Some(&root_ts), &bots, &restricted))
            .collect::<Vec<_>>(),
        "has_more": !next_cursor.is_empty(),
        "response_metadata": next(next_cursor),
    }))
}

/// `conversations.join`: joins a public channel.
pub async fn join(call: &Call) -> Result<Value, SlackError> {
    let channel = call.args.channel()?;
    let c = call
        .state
        .chat
        .join(&call.actor, channel)
        .await
        .map_err(|e| call.fail(e))?;
    Ok(json!({ "channel": objects::channel(&c) }))
}

/// `reactions.add` / `reactions.remove`: the bot's reaction on a message.
pub async fn react(call: &Call, add: bool) -> Result<Value, SlackError> {
    let channel = call.args.channel()?;
    let at = call.args.required("timestamp")?;
    let name = objects::emoji(&call.args.required("name")?);
    let m = locate(call, channel, &at).await?;
    let me = call.actor.user_id();
    let present = m
        .reactions
        .get(&name)
        .is_some_and(|users| me.is_some_and(|me| users.contains(&me)));
    match (add, present) {
        (true, true) => return Err(SlackError::Code("already_reacted")),
        (false, false) => return Err(SlackError::Code("no_reaction")),
        _ => {}
    }
    call.state
        .chat
        .react(&call.actor, m.id, name, add)
        .await
        .map_err(|e| match e {
            Error::Invalid(_) => SlackError::Code("invalid_name"),
            other => call.fail(other),
        })?;
    Ok(json!({}))
}

/// `users.info`: one member of the bot's workspace.
pub async fn user_info(call: &Call) -> Result<Value, SlackError> {
    let wanted: UserId = call
        .args
        .required("user")?
        .parse()
        .map_err(|_| SlackError::Code("user_not_found"))?;
    // The one member asked about, read and decrypted alone.
    let m = call
        .state
        .workspaces
        .member(&call.actor, call.workspace, wanted)
        .await
        .map_err(|e| call.fail(e))?;
    let bot = call
        .state
        .bots
        .bot_account(call.workspace, wanted)
        .await
        .map_err(|e| call.fail(e))?;
    let is_bot = bot.is_some();
    let avatar = bot.flatten();
    if !restricted(call, [wanted]).await?.is_empty() {
        return Ok(json!({ "user": objects::withheld_user(&m, is_bot) }));
    }
    Ok(json!({ "user": objects::user(&m, is_bot, avatar.as_deref()) }))
}

/// `users.list`: the bot's workspace's members.
pub async fn list_users(call: &Call) -> Result<Value, SlackError> {
    let limit = call.args.limit(100, 1000)?;
    let bots = call
        .state
        .bots
        .bot_accounts(call.workspace)
        .await
        .map_err(|e| call.fail(e))?;
    let members = call
        .state
        .workspaces
        .members(&call.actor, call.workspace)
        .await
        .map_err(|e| call.fail(e))?;
    let (page, next_cursor) = cursor::page(members, call.args.str("cursor").as_deref(), limit)?;
    let restricted = restricted(call, page.iter().map(|m| m.user_id)).await?;
    Ok(json!({
        "members": page
            .iter()
            .map(|m| {
                let is_bot = bots.contains_key(&m.user_id);
                if restricted.contains(&m.user_id) {
                    return objects::withheld_user(m, is_bot);
                }
                let avatar = bots.get(&m.user_id).cloned().flatten();
                objects::user(m, is_bot, avatar.as_deref())
            })
            .collect::<Vec<_>>(),
        "response_metadata": next(next_cursor),
    }))
}
