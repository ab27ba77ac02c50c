//! Global Relay: as Mattermost's Global Relay export, one RFC 5322 message per conversation
//! and day (UTC) holding that day's messages and shared files in order, from the first
//! person who wrote to everyone who did; delivered as a ZIP of `<day>-<channel>.eml` files.
//!
//! Headers are 7-bit: display names and the subject are RFC 2047 encoded words (UTF-8,
//! base64) when they are not plain ASCII; the body is UTF-8 text in base64 (RFC 2045), so
//! any text survives any relay. Lines end in CRLF.

use std::collections::BTreeMap;

use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};

use super::gather::Item;
use crate::domain::ChannelId;
use crate::error::Error;
use crate::subjects::zip::ZipWriter;

/// `text` as RFC 2047 encoded words if it is not plain printable ASCII, folded so no word
/// passes 75 characters; as is otherwise.
pub fn encode_word(text: &str) -> String {
    if text.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) && !text.contains("=?") {
        return text.to_owned();
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        // 45 bytes of UTF-8 make 60 base64 characters: 72 with the word's frame.
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", b64.encode(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(if c.is_control() { ' ' } else { c });
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", b64.encode(chunk.as_bytes())));
    }
    words.join("\r\n ")
}

/// A mailbox: a display name (quoted or encoded) and an address.
fn mailbox(name: &str, address: &str) -> String {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | '\''));
    if name.is_empty() {
        format!("<{address}>")
    } else if plain {
        format!("\"{name}\" <{address}>")
    } else {
        format!("{} <{address}>", encode_word(name))
    }
}

/// The address an item's author is written as: their email, or an address naming their id
/// once erased (or when it is not plain ASCII).
fn address(item: &Item) -> String {
    let email = &item.author_email;
    if !email.is_empty()
        && email.is_ascii()
        && email.contains('@')
        && !email.contains(|c: char| c.is_ascii_control() || matches!(c, '<' | '>' | ' ' | ','))
    {
        email.clone()
    } else {
        format!("user-{}@invalid", item.author_id)
    }
}

/// One conversation's day as an RFC 5322 message.
fn message(channel: ChannelId, day: NaiveDate, entries: &[&Item]) -> String {
    let first = entries[0];
    let kind = first
        .channel_kind
        .clone()
        .unwrap_or_else(|| "channel".into());
    let display = first
        .channel_name
        .clone()
        .unwrap_or_else(|| format!("{kind} conversation"));
    let mut people: Vec<(String, String)> = Vec::new();
    for i in entries {
        let who = (i.author_name.clone(), address(i));
        if !people.iter().any(|p| p.1 == who.1) {
            people.push(who);
        }
    }
    let last: DateTime<Utc> = entries
        .iter()
        .map(|i| i.created_at)
        .max()
        .unwrap_or_default();
    let mut body = String::new();
    body.push_str(&format!(
        "Conversation: {display} ({kind}, {channel})\r\nDay: {day} (UTC)\r\n\r\n"
    ));
    for i in entries {
        let when = i.created_at.format("%Y-%m-%d %H:%M:%S UTC");
        let who = format!("{} <{}>", i.author_name, address(i));
        match i.kind {
            "file" => body.push_str(&format!(
                "[{when}] {who} shared the file {} ({} bytes, id {}){}\r\n",
                i.name.as_deref().unwrap_or_default(),
                i.size.unwrap_or_default(),
                i.id,
                if i.deleted { " [deleted, kept]" } else { "" }
            )),
            _ => {
                let mut flags = String::new();
                if let Some(at) = i.deleted_at {
                    flags.push_str(&format!(" [deleted {}, kept]", at.to_rfc3339()));
                } else if let Some(at) = i.edited_at {
                    flags.push_str(&format!(" [edited {}]", at.to_rfc3339()));
                }
                let text = i.text.as_deref().unwrap_or("(text not kept)");
                body.push_str(&format!("[{when}] {who}{flags} (message {}):\r\n", i.id));
                for line in text.lines() {
                    body.push_str("    ");
                    body.push_str(line);
                    body.push_str("\r\n");
                }
            }
        }
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(body.as_bytes());
    let mut out = String::new();
    let (from_name, from_address) = &people[0];
    out.push_str(&format!("From: {}\r\n", mailbox(from_name, from_address)));
    let to: Vec<String> = people.iter().map(|(n, a)| mailbox(n, a)).collect();
    out.push_str(&format!("To: {}\r\n", to.join(",\r\n ")));
    out.push_str(&format!("Date: {}\r\n", last.to_rfc2822()));
    out.push_str(&format!(
        "Subject: {}\r\n",
        encode_word(&format!("Concord compliance export: {display} ({day})"))
    ));
    out.push_str(&format!(
        "Message-ID: <ediscovery.{channel}.{day}@concord.invalid>\r\n"
    ));
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str(&format!("X-Concord-Channel-Id: {channel}\r\n"));
    out.push_str(&format!("X-Concord-Channel-Type: {kind}\r\n"));
    out.push_str(&format!("X-Concord-Message-Count: {}\r\n", entries.len()));
    out.push_str("Content-Type: text/plain; charset=UTF-8\r\n");
    out.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
    for line in b64.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

/// The ZIP of every conversation's days among `items` (messages and files).
pub fn archive(items: &[Item]) -> Result<Vec<u8>, Error> {
    let mut days: BTreeMap<(NaiveDate, ChannelId), Vec<&Item>> = BTreeMap::new();
    for item in items.iter().filter(|i| i.kind != "document_version") {
        if let Some(c) = item.channel_id {
            days.entry((item.created_at.date_naive(), c))
                .or_default()
                .push(item);
        }
    }
    let mut zip = ZipWriter::new();
    for ((day, channel), mut entries) in days {
        entries.sort_by_key(|i| (i.created_at, i.id.clone()));
        let eml = message(channel, day, &entries);
        zip.add(&format!("{day}-{channel}.eml"), eml.as_bytes())
            .map_err(|e| Error::Internal(e.to_string()))?;
    }
    zip.finish().map_err(|e| Error::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_words_are_encoded_and_short() {
        assert_eq!(encode_word("plain subject"), "plain subject");
        let encoded = encode_word("회의록 😀 and a long tail of text to fold over several words");
        for word in encoded.split("\r\n ") {
            assert!(
                word.starts_with("=?UTF-8?B?") && word.ends_with("?="),
                "{word}"
            );
            assert!(word.len() <= 75, "{word}");
        }
    }
}
