//! Concord's channels, messages and people in Slack's shapes, and message timestamps.
//!
//! A message's Slack `ts` is `<seconds>.<seq>` ([`crate::bots::ts`], shared with the events
//! delivered to bots): exact both ways, and the order of `ts` values is the channel's order.
//! Ids of channels and people are Concord's UUIDs as they are.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::chat::{ChannelView, MessageView};
use crate::domain::UserId;
use crate::workspaces::MemberView;

/// A message's Slack timestamp ([`crate::bots::ts`]).
pub fn ts(m: &MessageView) -> String {
    crate::bots::ts::of(m.created_at, m.seq)
}

/// A parsed Slack timestamp: (seconds, sequence number).
pub fn parse_ts(ts: &str) -> Option<(i64, i64)> {
    crate::bots::ts::parse(ts)
}

/// Whether `m` is the message `ts` names.
pub fn is_at(m: &MessageView, ts: (i64, i64)) -> bool {
    m.created_at.timestamp() == ts.0 && m.seq == ts.1
}

/// A Slack emoji name (`thumbsup`) as Concord's `:short_code:`.
pub fn emoji(name: &str) -> String {
    let name = name.trim().trim_matches(':');
    format!(":{name}:")
}

/// A message in Slack's shape; `thread_ts` is its thread's root's `ts` if it has replies or
/// is one.
pub fn message(m: &MessageView, thread_ts: Option<&str>, bots: &HashSet<UserId>) -> Value {
    let mut out = json!({
        "type": "message",
        "user": m.author_id,
        "text": m.text,
        "ts": ts(m),
    });
    if bots.contains(&m.author_id) {
        out["bot_id"] = json!(m.author_id);
    }
    if let Some(blocks) = &m.blocks {
        out["blocks"] = json!(blocks);
    }
    if let Some(thread) = thread_ts {
        out["thread_ts"] = json!(thread);
    }
    if m.thread_root_id.is_none() && m.reply_count > 0 {
        out["thread_ts"] = json!(ts(m));
        out["reply_count"] = json!(m.reply_count);
    }
    if let Some(edited) = m.edited_at {
        out["edited"] = json!({
            "user": m.author_id,
            "ts": format!("{}.{:06}", edited.timestamp(), edited.timestamp_subsec_micros()),
        });
    }
    if !m.reactions.is_empty() {
        out["reactions"] = m
            .reactions
            .iter()
            .map(|(emoji, users)| {
                json!({
                    "name": emoji.trim_matches(':'),
                    "users": users,
                    "count": users.len(),
                })
            })
            .collect();
    }
    out
}

/// The message of someone whose processing is restricted (GDPR Art. 18), as a bot reads it:
/// Slack's placeholder for a message whose content is gone (`subtype: "tombstone"`,
/// `hidden: true`, empty `text`), keeping only its `ts` and thread fields so threads still
/// hang together; no author, blocks, files, edits or reactions.
pub fn withheld(m: &MessageView, thread_ts: Option<&str>) -> Value {
    let mut out = json!({
        "type": "message",
        "subtype": "tombstone",
        "hidden": true,
        "text": "",
        "ts": ts(m),
    });
    if let Some(thread) = thread_ts {
        out["thread_ts"] = json!(thread);
    }
    if m.thread_root_id.is_none() && m.reply_count > 0 {
        out["thread_ts"] = json!(ts(m));
        out["reply_count"] = json!(m.reply_count);
    }
    out
}

/// A message in Slack's shape for a bot: withheld if its author is in `restricted`, and
/// without the reactions of those who are.
pub fn message_for_bot(
    m: &MessageView,
    thread_ts: Option<&str>,
    bots: &HashSet<UserId>,
    restricted: &HashSet<UserId>,
) -> Value {
    if restricted.contains(&m.author_id) {
        return withheld(m, thread_ts);
    }
    if restricted.is_empty() {
        return message(m, thread_ts, bots);
    }
    let mut shown = m.clone();
    for users in shown.reactions.values_mut() {
        users.retain(|u| !restricted.contains(u));
    }
    shown.reactions.retain(|_, users| !users.is_empty());
    message(&shown, thread_ts, bots)
}

/// A channel in Slack's shape.
pub fn channel(c: &ChannelView) -> Value {
    let private = c.kind != "public";
    json!({
        "id": c.id,
        "name": c.name.clone().unwrap_or_default(),
        "is_channel": c.kind == "public",
        "is_group": c.kind == "private",
        "is_im": c.kind == "direct",
        "is_mpim": c.kind == "group",
        "is_private": private,
        "is_archived": c.archived,
        "is_member": c.my_role.is_some(),
        "context_team_id": c.workspace_id,
        "topic": { "value": c.topic, "creator": "", "last_set": 0 },
        "purpose": { "value": c.purpose, "creator": "", "last_set": 0 },
    })
}

/// A workspace member in Slack's shape (no email: Slack asks `users:read.email` for it).
pub fn user(m: &MemberView, is_bot: bool, avatar: Option<&str>) -> Value {
    let mut profile = json!({
        "real_name": m.display_name,
        "display_name": m.display_name,
    });
    if let Some(url) = avatar {
        for size in ["image_48", "image_72", "image_192"] {
            profile[size] = json!(url);
        }
    }
    json!({
        "id": m.user_id,
        "team_id": Value::Null,
        "name": m.display_name,
        "real_name": m.display_name,
        "deleted": false,
        "is_bot": is_bot,
        "is_admin": matches!(m.role.as_str(), "admin" | "owner"),
        "is_owner": m.role == "owner",
        "profile": profile,
    })
}

/// A member whose processing is restricted (GDPR Art. 18), as a bot reads them: their id and
/// role stay, their names and profile are empty strings (the shape Slack clients expect).
pub fn withheld_user(m: &MemberView, is_bot: bool) -> Value {
    json!({
        "id": m.user_id,
        "team_id": Value::Null,
        "name": "",
        "real_name": "",
        "deleted": false,
        "is_bot": is_bot,
        "is_admin": matches!(m.role.as_str(), "admin" | "owner"),
        "is_owner": m.role == "owner",
        "profile": { "real_name": "", "display_name": "" },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_back() {
        assert_eq!(parse_ts("1700000000.000042"), Some((1_700_000_000, 42)));
        assert_eq!(
            parse_ts("1700000000.1234567"),
            Some((1_700_000_000, 1_234_567))
        );
        assert_eq!(parse_ts("1700000000.42"), None);
        assert_eq!(parse_ts("1700000000"), None);
        assert_eq!(parse_ts("x.000001"), None);
        assert_eq!(emoji("thumbsup"), ":thumbsup:");
        assert_eq!(emoji(":tada:"), ":tada:");
    }
}
