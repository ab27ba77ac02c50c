//! Actiance XML, in the shape Mattermost's compliance export writes for archiving systems: a
//! `FileDump` holding one `Conversation` per channel, each with its `RoomID`, start and end,
//! a `ParticipantEntered` per person who wrote in it, its `Message`s (deleted ones with
//! `UpdatedType` `Deleted`, edits as `EditedNewMsg` with the earlier texts as
//! `EditedOriginalMsg`), `FileTransferStarted`/`FileTransferEnded` per file, then a
//! `ParticipantLeft` per person. Times are milliseconds since the epoch (UTC). Document
//! versions are not chat and are left out (the other formats carry them).

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::formats::Header;
use super::gather::Item;
use crate::domain::ChannelId;

/// Text escaped for XML 1.0 content and attributes; characters XML cannot hold at all
/// (most control characters) become U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Who an item names as its login: their email, or their id once erased.
fn login(item: &Item) -> String {
    if item.author_email.is_empty() {
        item.author_id.to_string()
    } else {
        item.author_email.clone()
    }
}

fn element(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, "<{name}>{}</{name}>", escape(value));
}

fn participant(out: &mut String, tag: &str, login: &str, at: i64) {
    let _ = write!(out, "      <{tag}>");
    element(out, "LoginName", login);
    element(out, "UserType", "user");
    element(out, "DateTimeUTC", &at.to_string());
    element(out, "CorporateEmailID", login);
    let _ = writeln!(out, "</{tag}>");
}

fn message(
    out: &mut String,
    id: &str,
    item: &Item,
    update: Option<(&str, i64)>,
    edited_new: Option<&str>,
    text: &str,
) {
    out.push_str("      <Message>");
    element(out, "MessageId", id);
    element(out, "LoginName", &login(item));
    element(out, "UserType", "user");
    element(out, "DateTimeUTC", &ms(item.created_at).to_string());
    if let Some((kind, at)) = update {
        element(out, "UpdatedType", kind);
        element(out, "UpdatedDateTimeUTC", &at.to_string());
    }
    if let Some(new) = edited_new {
        element(out, "EditedNewMsgId", new);
    }
    element(out, "Content", text);
    out.push_str("</Message>\n");
}

fn room_kind(kind: Option<&str>) -> &'static str {
    match kind {
        Some("public") => "public",
        Some("private") => "private",
        Some("direct") => "direct",
        Some("group") => "group",
        _ => "channel",
    }
}

/// The Actiance XML of `items`.
pub fn write(header: &Header, items: &[Item]) -> Vec<u8> {
    let mut channels: BTreeMap<ChannelId, Vec<&Item>> = BTreeMap::new();
    for item in items.iter().filter(|i| i.kind != "document_version") {
        if let Some(c) = item.channel_id {
            channels.entry(c).or_default().push(item);
        }
    }
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<FileDump xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n");
    for (channel, mut entries) in channels {
        entries.sort_by_key(|i| (i.created_at, i.id.clone()));
        let first = entries
            .first()
            .map(|i| ms(i.created_at))
            .unwrap_or_default();
        let last = entries.last().map(|i| ms(i.created_at)).unwrap_or_default();
        let start = header.from.map(ms).unwrap_or(first);
        let end = header.to.map(ms).unwrap_or(last);
        let sample = entries[0];
        let kind = room_kind(sample.channel_kind.as_deref());
        let display = sample
            .channel_name
            .clone()
            .unwrap_or_else(|| format!("{kind} conversation"));
        let _ = writeln!(out, "  <Conversation Perspective=\"{}\">", escape(&display));
        out.push_str("    ");
        element(
            &mut out,
            "RoomID",
            &format!("{kind} - {display} - {channel}"),
        );
        out.push('\n');
        out.push_str("    ");
        element(&mut out, "StartTimeUTC", &start.to_string());
        out.push('\n');
        let mut people: Vec<String> = entries.iter().map(|i| login(i)).collect();
        people.sort();
        people.dedup();
        for p in &people {
            participant(&mut out, "ParticipantEntered", p, start);
        }
        for item in &entries {
            match item.kind {
                "message" => {
                    let text = item.text.as_deref().unwrap_or_default();
                    for v in &item.earlier_texts {
                        message(
                            &mut out,
                            &format!("{}:{}", item.id, v.version),
                            item,
                            Some(("EditedOriginalMsg", ms(v.replaced_at))),
                            Some(&item.id),
                            &v.text,
                        );
                    }
                    let update = match (item.deleted_at, item.edited_at) {
                        (Some(at), _) => Some(("Deleted", ms(at))),
                        (None, Some(at)) => Some(("EditedNewMsg", ms(at))),
                        _ => None,
                    };
                    message(&mut out, &item.id, item, update, None, text);
                }
                "file" => {
                    let name = item.name.as_deref().unwrap_or_default();
                    let path = format!("files/{}/{}", item.id, super::formats::safe_name(name));
                    let at = ms(item.created_at).to_string();
                    for (tag, status) in [
                        ("FileTransferStarted", None),
                        ("FileTransferEnded", Some("Completed")),
                    ] {
                        let _ = write!(out, "      <{tag}>");
                        element(&mut out, "LoginName", &login(item));
                        element(&mut out, "DateTimeUTC", &at);
                        element(&mut out, "UserFileName", name);
                        element(&mut out, "FileName", &path);
                        if let Some(s) = status {
                            element(&mut out, "Status", s);
                        }
                        let _ = writeln!(out, "</{tag}>");
                    }
                }
                _ => {}
            }
        }
        for p in &people {
            participant(&mut out, "ParticipantLeft", p, end);
        }
        out.push_str("    ");
        element(&mut out, "EndTimeUTC", &end.to_string());
        out.push_str("\n  </Conversation>\n");
    }
    out.push_str("</FileDump>\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_and_control_characters_are_escaped() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
        assert_eq!(escape("bell\u{7}"), "bell\u{FFFD}");
        assert_eq!(escape("안녕 😀\n"), "안녕 😀\n");
    }
}
