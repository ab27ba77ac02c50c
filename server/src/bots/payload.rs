//! Slack message payloads (`text` in mrkdwn, `blocks`, legacy `attachments`) made into a
//! Concord message body.
//!
//! A message's body is markdown text, so a payload's text is made from it: `blocks`, when
//! present, are rendered as text in place of `text` (which Slack treats as the notification
//! fallback then), and attachments follow as text (pretext, title, text and fields). Slack's
//! mrkdwn links (`<url|label>`) become markdown links. The blocks are also kept as they are
//! ([`crate::chat::MessageBlocks`]) for clients to render; attachments' colours are not kept.

use serde_json::Value;

use crate::chat::MessageBlocks;
use crate::domain::MessageBody;
use crate::error::Error;

/// The most blocks or attachments one payload may carry (Slack's limit for blocks).
const MAX_ITEMS: usize = 50;

/// A payload's content as Slack sends it.
#[derive(Clone, Debug, Default)]
pub struct SlackContent {
    /// `text`, mrkdwn.
    pub text: Option<String>,
    /// `blocks` (Block Kit), an array of objects.
    pub blocks: Option<Value>,
    /// Legacy `attachments`, an array of objects.
    pub attachments: Option<Value>,
}

impl SlackContent {
    /// The message body and blocks this content makes; refused as [`SlackContent::to_body`].
    pub fn to_parts(&self) -> Result<(MessageBody, Option<MessageBlocks>), Error> {
        let body = self.to_body()?;
        let blocks = MessageBlocks::parse("blocks", self.blocks.as_ref())
            .map_err(|e| Error::refused("invalid_blocks", e.message))?;
        Ok((body, blocks))
    }

    /// The message body this content makes; refused with Slack's codes (`no_text`,
    /// `invalid_blocks`, `invalid_attachments`, `msg_too_long`).
    pub fn to_body(&self) -> Result<MessageBody, Error> {
        let mut parts = Vec::new();
        match blocks_text(self.blocks.as_ref())? {
            Some(rendered) if !rendered.trim().is_empty() => parts.push(rendered),
            _ => {
                if let Some(text) = self.text.as_deref().filter(|t| !t.trim().is_empty()) {
                    parts.push(mrkdwn_to_markdown(text));
                }
            }
        }
        if let Some(rendered) = attachments_text(self.attachments.as_ref())? {
            parts.push(rendered);
        }
        let body = parts.join("\n\n");
        if body.trim().is_empty() {
            return Err(Error::refused(
                "no_text",
                "the message has no text, blocks or attachments",
            ));
        }
        MessageBody::parse("text", body).map_err(|e| {
            if e.message.contains("bytes") {
                Error::refused("msg_too_long", "the message text is too long")
            } else {
                Error::Invalid(e)
            }
        })
    }
}

fn items<'a>(value: Option<&'a Value>, code: &'static str) -> Result<&'a [Value], Error> {
    match value {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(list))
            if list.len() <= MAX_ITEMS && list.iter().all(Value::is_object) =>
        {
            Ok(list)
        }
        Some(_) => Err(Error::refused(
            code,
            format!("expected an array of at most {MAX_ITEMS} objects"),
        )),
    }
}

/// The text of a text object (`{"type": "mrkdwn"|"plain_text", "text": ...}`) or a string.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(mrkdwn_to_markdown(s)),
        Value::Object(o) => o
            .get("text")
            .and_then(Value::as_str)
            .map(mrkdwn_to_markdown),
        _ => None,
    }
}

fn blocks_text(blocks: Option<&Value>) -> Result<Option<String>, Error> {
    let list = items(blocks, "invalid_blocks")?;
    if list.is_empty() {
        return Ok(None);
    }
    let mut lines = Vec::new();
    for block in list {
        let Some(kind) = block.get("type").and_then(Value::as_str) else {
            return Err(Error::refused("invalid_blocks", "every block needs a type"));
        };
        match kind {
            "header" => lines.extend(
                block
                    .get("text")
                    .and_then(text_of)
                    .map(|t| format!("**{t}**")),
            ),
            "section" => {
                lines.extend(block.get("text").and_then(text_of));
                if let Some(Value::Array(fields)) = block.get("fields") {
                    lines.extend(fields.iter().filter_map(text_of));
                }
            }
            "context" => {
                if let Some(Value::Array(elements)) = block.get("elements") {
                    let texts: Vec<_> = elements.iter().filter_map(text_of).collect();
                    if !texts.is_empty() {
                        lines.push(texts.join(" "));
                    }
                }
            }
            "divider" => lines.push("---".into()),
            "image" => lines.extend(
                block
                    .get("alt_text")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            ),
            // Other blocks (actions, inputs, rich text) have no text of their own here.
            _ => {}
        }
    }
    Ok(Some(lines.join("\n")))
}

fn attachments_text(attachments: Option<&Value>) -> Result<Option<String>, Error> {
    let list = items(attachments, "invalid_attachments")?;
    let mut out = Vec::new();
    for a in list {
        let field = |name: &str| {
            a.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let mut lines = Vec::new();
        lines.extend(field("pretext").map(mrkdwn_to_markdown));
        match (field("title"), field("title_link")) {
            (Some(title), Some(link)) => lines.push(format!("**[{title}]({link})**")),
            (Some(title), None) => lines.push(format!("**{title}**")),
            _ => {}
        }
        lines.extend(field("text").map(mrkdwn_to_markdown));
        if let Some(Value::Array(fields)) = a.get("fields") {
            for f in fields {
                let title = f.get("title").and_then(Value::as_str).unwrap_or("");
                let value = f.get("value").and_then(Value::as_str).unwrap_or("");
                if !title.is_empty() || !value.is_empty() {
                    lines.push(format!("{title}: {}", mrkdwn_to_markdown(value)));
                }
            }
        }
        if let Some(blocks) = blocks_text(a.get("blocks"))? {
            lines.push(blocks);
        }
        if lines.is_empty() {
            lines.extend(field("fallback").map(str::to_owned));
        }
        if !lines.is_empty() {
            out.push(lines.join("\n"));
        }
    }
    Ok((!out.is_empty()).then(|| out.join("\n\n")))
}

/// Slack's `<url|label>` and `<url>` links as markdown; everything else as written.
fn mrkdwn_to_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        out.push_str(&emphasis(&rest[..start]));
        let inner = &rest[start + 1..start + len];
        let (target, label) = inner.split_once('|').unwrap_or((inner, ""));
        if target.starts_with("http://")
            || target.starts_with("https://")
            || target.starts_with("mailto:")
        {
            if label.is_empty() {
                out.push_str(target);
            } else {
                out.push_str(&format!("[{label}]({target})"));
            }
        } else if let Some(special) = target.strip_prefix('!') {
            // <!channel>, <!here>
            out.push('@');
            out.push_str(special);
        } else {
            out.push_str(&rest[start..=start + len]);
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(&emphasis(rest));
    out
}

/// Slack's `*bold*` and `~strike~` as Markdown's `**bold**` and `~~strike~~` (`_italic_` is
/// the same in both); code spans are left as they are. A marker counts only as Slack counts
/// it: single, with text right inside it, and no letter or digit right outside it.
fn emphasis(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '`' {
            // Copy a code span (or an unclosed backtick's rest) untouched.
            let end = chars[i + 1..]
                .iter()
                .position(|&d| d == '`')
                .map_or(chars.len(), |p| i + 1 + p + 1);
            out.extend(&chars[i..end]);
            i = end;
            continue;
        }
        if c == '*' || c == '~' {
            let before_ok = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == c);
            let inner_starts = chars
                .get(i + 1)
                .is_some_and(|d| !d.is_whitespace() && *d != c);
            if before_ok && inner_starts {
                let close = chars[i + 1..]
                    .iter()
                    .position(|&d| d == c || d == '\n')
                    .map(|p| i + 1 + p)
                    .filter(|&j| chars[j] == c);
                if let Some(j) = close {
                    let after_ok = chars
                        .get(j + 1)
                        .is_none_or(|d| !(d.is_alphanumeric() || *d == c));
                    if after_ok && !chars[j - 1].is_whitespace() {
                        let marker: String = [c, c].iter().collect();
                        out.push_str(&marker);
                        out.extend(&chars[i + 1..j]);
                        out.push_str(&marker);
                        i = j + 1;
                        continue;
                    }
                }
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(content: SlackContent) -> Result<String, Error> {
        content.to_body().map(|b| b.as_str().to_owned())
    }

    #[test]
    fn text_links_become_markdown() {
        let text =
            "Build <https://ci.example.org/1|#1> passed, see <https://ci.example.org> <!here>";
        let out = body(SlackContent {
            text: Some(text.into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            out,
            "Build [#1](https://ci.example.org/1) passed, see https://ci.example.org @here"
        );
    }

    #[test]
    fn slack_emphasis_becomes_markdown() {
        for (mrkdwn, markdown) in [
            ("Deployed *api* now", "Deployed **api** now"),
            ("~old~ _new_", "~~old~~ _new_"),
            ("2*3*4 and a * b * c", "2*3*4 and a * b * c"),
            ("`*not bold*` but *bold*", "`*not bold*` but **bold**"),
            ("**already** markdown", "**already** markdown"),
            ("*unclosed", "*unclosed"),
            ("*two\nlines*", "*two\nlines*"),
        ] {
            assert_eq!(emphasis(mrkdwn), markdown, "{mrkdwn}");
        }
    }

    #[test]
    fn blocks_replace_text_and_attachments_follow() {
        let out = body(SlackContent {
            text: Some("fallback".into()),
            blocks: Some(json!([
                {"type": "header", "text": {"type": "plain_text", "text": "Deploy"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "v1.2 is live"},
                 "fields": [{"type": "mrkdwn", "text": "*Env* prod"}]},
                {"type": "divider"},
                {"type": "actions", "elements": []}
            ])),
            attachments: Some(json!([
                {"color": "#36a64f", "title": "Ticket 7", "text": "closed",
                 "fields": [{"title": "Owner", "value": "Ann", "short": true}]}
            ])),
        })
        .unwrap();
        assert_eq!(
            out,
            "**Deploy**\nv1.2 is live\n**Env** prod\n---\n\n**Ticket 7**\nclosed\nOwner: Ann"
        );
    }

    #[test]
    fn bad_payloads_are_refused_with_slack_codes() {
        let code = |c: SlackContent| match c.to_body() {
            Err(Error::Refused { code, .. }) => code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(SlackContent::default()), "no_text");
        assert_eq!(
            code(SlackContent {
                blocks: Some(json!("nope")),
                ..Default::default()
            }),
            "invalid_blocks"
        );
        assert_eq!(
            code(SlackContent {
                blocks: Some(json!([{"text": "no type"}])),
                ..Default::default()
            }),
            "invalid_blocks"
        );
        assert_eq!(
            code(SlackContent {
                text: Some("x".into()),
                attachments: Some(json!({"text": "not a list"})),
                ..Default::default()
            }),
            "invalid_attachments"
        );
        assert_eq!(
            code(SlackContent {
                text: Some("x".repeat(100_000)),
                ..Default::default()
            }),
            "msg_too_long"
        );
    }
}
