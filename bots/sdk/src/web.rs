//! The Web API client: Slack's methods under `/api/slack/{method}`, called with a bot token.
//!
//! Arguments go as JSON; answers are `{"ok": true, ...}` or `{"ok": false, "error": code}`
//! ([`Error::Api`]). A `429` is waited out for `Retry-After` seconds, up to the client's
//! retries (two by default), then returned as [`Error::RateLimited`]. Lists come a page at a
//! time ([`Page`], with Slack's `next_cursor`); the `all_*` helpers follow the cursors.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::{retry_after, Error};

/// The longest `Retry-After` waited for before retrying.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// A Web API client for one bot token. Its `Debug` does not show the token.
#[derive(Clone)]
pub struct WebClient {
    http: reqwest::Client,
    base: String,
    token: String,
    retries: u32,
    page_size: Option<u32>,
}

/// `auth.test`: who the token belongs to.
#[derive(Clone, Debug, Deserialize)]
pub struct AuthTest {
    /// The server's public URL.
    pub url: String,
    /// The workspace's name.
    pub team: String,
    /// The bot's name.
    pub user: String,
    /// The workspace's id.
    pub team_id: String,
    /// The bot's user id.
    pub user_id: String,
    /// The bot's id (the same as its user id in Concord).
    pub bot_id: String,
}

/// What `chat.postMessage` and `chat.update` answer.
#[derive(Clone, Debug, Deserialize)]
pub struct Posted {
    /// The channel.
    pub channel: String,
    /// The message's `ts`: its id within the channel.
    pub ts: String,
    /// The message as `conversations.history` shows it.
    #[serde(default)]
    pub message: Value,
}

/// A channel, as `conversations.list` and `conversations.info` show it.
#[derive(Clone, Debug, Deserialize)]
pub struct Channel {
    /// Its id.
    pub id: String,
    /// Its name (empty for direct messages).
    #[serde(default)]
    pub name: String,
    /// Private channel.
    #[serde(default)]
    pub is_private: bool,
    /// Archived.
    #[serde(default)]
    pub is_archived: bool,
    /// The bot is a member.
    #[serde(default)]
    pub is_member: bool,
    /// Everything else Slack's channel object has.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A person (or bot), as `users.info` and `users.list` show them.
#[derive(Clone, Debug, Deserialize)]
pub struct User {
    /// Their id.
    pub id: String,
    /// Their name.
    #[serde(default)]
    pub name: String,
    /// Their full name.
    #[serde(default)]
    pub real_name: String,
    /// A bot account.
    #[serde(default)]
    pub is_bot: bool,
    /// A deactivated account.
    #[serde(default)]
    pub deleted: bool,
    /// Everything else Slack's user object has.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One page of a list, and the cursor of the next one (`None` on the last page).
#[derive(Clone, Debug)]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// Pass it back as the `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// A message to post or to replace another with: `text`, Block Kit `blocks`, legacy
/// `attachments`, in a thread or not.
#[derive(Clone, Debug, Default)]
pub struct Message {
    fields: Map<String, Value>,
}

impl Message {
    /// A message with this text (the fallback text when it has blocks).
    pub fn text(text: impl Into<String>) -> Message {
        Message::default().set("text", Value::String(text.into()))
    }

    /// Its Block Kit blocks (see [`crate::blocks`]).
    pub fn blocks(self, blocks: Vec<Value>) -> Message {
        self.set("blocks", Value::Array(blocks))
    }

    /// Its legacy attachments.
    pub fn attachments(self, attachments: Vec<Value>) -> Message {
        self.set("attachments", Value::Array(attachments))
    }

    /// A reply in the thread of the message with this `ts`.
    pub fn thread_ts(self, ts: impl Into<String>) -> Message {
        self.set("thread_ts", Value::String(ts.into()))
    }

    /// Any other field of Slack's payload (`response_type`, `replace_original`, ...).
    pub fn set(mut self, key: &str, value: Value) -> Message {
        self.fields.insert(key.to_owned(), value);
        self
    }

    /// The message as JSON.
    pub fn to_json(&self) -> Value {
        Value::Object(self.fields.clone())
    }

    fn with(&self, pairs: &[(&str, &str)]) -> Value {
        let mut fields = self.fields.clone();
        for (k, v) in pairs {
            fields.insert((*k).to_owned(), Value::String((*v).to_owned()));
        }
        Value::Object(fields)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Message {
        Message::text(text)
    }
}

fn field<T: DeserializeOwned>(answer: &Value, key: &str) -> Result<T, Error> {
    serde_json::from_value(answer.get(key).cloned().unwrap_or(Value::Null))
        .map_err(|e| Error::Decode(format!("`{key}`: {e}")))
}

fn next_cursor(answer: &Value) -> Option<String> {
    answer["response_metadata"]["next_cursor"]
        .as_str()
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
}

impl std::fmt::Debug for WebClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebClient")
            .field("base", &self.base)
            .field("token", &"<redacted>")
            .field("retries", &self.retries)
            .finish()
    }
}

impl WebClient {
    /// A client for the Web API at `api_url` (`https://chat.example.org/api/slack/`; a
    /// server's bare URL gets `/api/slack/` added) with a bot token (`xoxb-...`).
    pub fn new(api_url: &str, token: &str) -> WebClient {
        let mut base = api_url.trim_end_matches('/').to_owned();
        if !base.ends_with("/api/slack") {
            base.push_str("/api/slack");
        }
        base.push('/');
        WebClient {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            base,
            token: token.to_owned(),
            retries: 2,
            page_size: None,
        }
    }

    /// How many times a rate-limited call is retried after its `Retry-After` (0: never).
    pub fn with_retries(mut self, retries: u32) -> WebClient {
        self.retries = retries;
        self
    }

    /// Asks for pages of at most `limit` items (Slack's `limit`; the server's default
    /// otherwise).
    pub fn with_page_size(mut self, limit: u32) -> WebClient {
        self.page_size = Some(limit);
        self
    }

    /// Uses this HTTP client (for proxies, timeouts, ...).
    pub fn with_http_client(mut self, http: reqwest::Client) -> WebClient {
        self.http = http;
        self
    }

    /// The base URL methods are appended to.
    pub fn api_url(&self) -> &str {
        &self.base
    }

    /// Calls any method with JSON arguments; the whole `ok` answer.
    pub async fn call(&self, method: &str, args: Value) -> Result<Value, Error> {
        let mut attempt = 0;
        loop {
            let response = self
                .http
                .post(format!("{}{method}", self.base))
                .bearer_auth(&self.token)
                .json(&args)
                .send()
                .await?;
            let status = response.status();
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                let wait = retry_after(response.headers());
                // A server asking for more than a minute is answered with the error, not a
                // hang.
                if attempt < self.retries && wait <= MAX_WAIT {
                    attempt += 1;
                    tokio::time::sleep(wait).await;
                    continue;
                }
                return Err(Error::RateLimited { retry_after: wait });
            }
            let text = response.text().await?;
            let answer: Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(_) if !status.is_success() => {
                    return Err(Error::Http(format!("{method} answered {status}")))
                }
                Err(e) => return Err(Error::Decode(format!("{method}: {e}"))),
            };
            if answer["ok"] == Value::Bool(true) {
                return Ok(answer);
            }
            return match answer["error"].as_str() {
                Some(code) => Err(Error::Api {
                    code: code.to_owned(),
                    needed: answer["needed"].as_str().map(str::to_owned),
                }),
                None if !status.is_success() => {
                    Err(Error::Http(format!("{method} answered {status}")))
                }
                None => Err(Error::Decode(format!("{method}: no `ok` in the answer"))),
            };
        }
    }

    async fn page<T: DeserializeOwned>(
        &self,
        method: &str,
        mut args: Value,
        key: &str,
        cursor: Option<&str>,
    ) -> Result<Page<T>, Error> {
        if let Some(map) = args.as_object_mut() {
            if let Some(c) = cursor {
                map.insert("cursor".into(), Value::String(c.to_owned()));
            }
            if let Some(limit) = self.page_size {
                map.insert("limit".into(), Value::from(limit));
            }
        }
        let answer = self.call(method, args).await?;
        Ok(Page {
            items: field(&answer, key)?,
            next_cursor: next_cursor(&answer),
        })
    }

    async fn all<T: DeserializeOwned>(
        &self,
        method: &str,
        args: Value,
        key: &str,
    ) -> Result<Vec<T>, Error> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        // A cursor seen before would start a cycle: the list ends there.
        let mut seen = std::collections::HashSet::new();
        loop {
            let page = self
                .page::<T>(method, args.clone(), key, cursor.as_deref())
                .await?;
            items.extend(page.items);
            match page.next_cursor {
                Some(next) if seen.insert(next.clone()) => cursor = Some(next),
                _ => return Ok(items),
            }
        }
    }

    /// `auth.test`.
    pub async fn auth_test(&self) -> Result<AuthTest, Error> {
        let answer = self.call("auth.test", json!({})).await?;
        serde_json::from_value(answer).map_err(|e| Error::Decode(format!("auth.test: {e}")))
    }

    /// `chat.postMessage`: posts `message` in `channel`.
    pub async fn post_message(
        &self,
        channel: &str,
        message: impl Into<Message>,
    ) -> Result<Posted, Error> {
        let args = message.into().with(&[("channel", channel)]);
        let answer = self.call("chat.postMessage", args).await?;
        serde_json::from_value(answer).map_err(|e| Error::Decode(format!("chat.postMessage: {e}")))
    }

    /// `chat.update`: replaces the bot's message `ts` in `channel`.
    pub async fn update(
        &self,
        channel: &str,
        ts: &str,
        message: impl Into<Message>,
    ) -> Result<Posted, Error> {
        let args = message.into().with(&[("channel", channel), ("ts", ts)]);
        let answer = self.call("chat.update", args).await?;
        serde_json::from_value(answer).map_err(|e| Error::Decode(format!("chat.update: {e}")))
    }

    /// `chat.delete`: deletes the bot's message `ts` in `channel`.
    pub async fn delete(&self, channel: &str, ts: &str) -> Result<(), Error> {
        self.call("chat.delete", json!({ "channel": channel, "ts": ts }))
            .await
            .map(drop)
    }

    /// `chat.postEphemeral`: shows `message` to `user` alone in `channel`; its `message_ts`.
    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        message: impl Into<Message>,
    ) -> Result<String, Error> {
        let args = message.into().with(&[("channel", channel), ("user", user)]);
        let answer = self.call("chat.postEphemeral", args).await?;
        field(&answer, "message_ts")
    }

    /// `conversations.list`: one page of the channels the bot can see.
    pub async fn conversations_list(&self, cursor: Option<&str>) -> Result<Page<Channel>, Error> {
        self.page("conversations.list", json!({}), "channels", cursor)
            .await
    }

    /// Every channel the bot can see.
    pub async fn all_conversations(&self) -> Result<Vec<Channel>, Error> {
        self.all("conversations.list", json!({}), "channels").await
    }

    /// `conversations.info`.
    pub async fn conversations_info(&self, channel: &str) -> Result<Channel, Error> {
        let answer = self
            .call("conversations.info", json!({ "channel": channel }))
            .await?;
        field(&answer, "channel")
    }

    /// `conversations.join`: the bot joins a public channel.
    pub async fn conversations_join(&self, channel: &str) -> Result<Channel, Error> {
        let answer = self
            .call("conversations.join", json!({ "channel": channel }))
            .await?;
        field(&answer, "channel")
    }

    /// `conversations.history`: one page of a channel's messages, newest first.
    pub async fn conversations_history(
        &self,
        channel: &str,
        cursor: Option<&str>,
    ) -> Result<Page<Value>, Error> {
        self.page(
            "conversations.history",
            json!({ "channel": channel }),
            "messages",
            cursor,
        )
        .await
    }

    /// A channel's whole history, newest first.
    pub async fn all_history(&self, channel: &str) -> Result<Vec<Value>, Error> {
        self.all(
            "conversations.history",
            json!({ "channel": channel }),
            "messages",
        )
        .await
    }

    /// `conversations.replies`: one page of a thread (its root first).
    pub async fn conversations_replies(
        &self,
        channel: &str,
        ts: &str,
        cursor: Option<&str>,
    ) -> Result<Page<Value>, Error> {
        self.page(
            "conversations.replies",
            json!({ "channel": channel, "ts": ts }),
            "messages",
            cursor,
        )
        .await
    }

    /// A whole thread.
    pub async fn all_replies(&self, channel: &str, ts: &str) -> Result<Vec<Value>, Error> {
        self.all(
            "conversations.replies",
            json!({ "channel": channel, "ts": ts }),
            "messages",
        )
        .await
    }

    /// `conversations.members`: one page of a channel's members' ids.
    pub async fn conversations_members(
        &self,
        channel: &str,
        cursor: Option<&str>,
    ) -> Result<Page<String>, Error> {
        self.page(
            "conversations.members",
            json!({ "channel": channel }),
            "members",
            cursor,
        )
        .await
    }

    /// Every member of a channel.
    pub async fn all_members(&self, channel: &str) -> Result<Vec<String>, Error> {
        self.all(
            "conversations.members",
            json!({ "channel": channel }),
            "members",
        )
        .await
    }

    /// `reactions.add`: the bot reacts to message `ts` with emoji `name` (`thumbsup`).
    pub async fn reactions_add(&self, channel: &str, ts: &str, name: &str) -> Result<(), Error> {
        self.call(
            "reactions.add",
            json!({ "channel": channel, "timestamp": ts, "name": name }),
        )
        .await
        .map(drop)
    }

    /// `reactions.remove`.
    pub async fn reactions_remove(&self, channel: &str, ts: &str, name: &str) -> Result<(), Error> {
        self.call(
            "reactions.remove",
            json!({ "channel": channel, "timestamp": ts, "name": name }),
        )
        .await
        .map(drop)
    }

    /// `users.info`.
    pub async fn users_info(&self, user: &str) -> Result<User, Error> {
        let answer = self.call("users.info", json!({ "user": user })).await?;
        field(&answer, "user")
    }

    /// `users.list`: one page of the workspace's members.
    pub async fn users_list(&self, cursor: Option<&str>) -> Result<Page<User>, Error> {
        self.page("users.list", json!({}), "members", cursor).await
    }

    /// Every member of the workspace.
    pub async fn all_users(&self) -> Result<Vec<User>, Error> {
        self.all("users.list", json!({}), "members").await
    }
}
