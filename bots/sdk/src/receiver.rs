//! A bot's HTTP endpoint: what Concord POSTs to a bot's request URL, command URL and
//! interactivity URL, verified and handed to the bot's callbacks.
//!
//! One path (`/slack/events`, as with Bolt) takes all three kinds, told apart by their
//! bodies: JSON is an Events API envelope (`url_verification` is answered with its
//! `challenge`, `event_callback` goes to [`Receiver::on_event`]); a form with `payload` is an
//! interaction (`block_actions`, to [`Receiver::on_action`]); a form with `command` is a slash
//! command ([`Receiver::on_command`], whose answer is the HTTP answer). Every request's
//! signature is checked first (`401` otherwise). Events and presses are answered `200` at once
//! and handled in a task of their own, as Slack wants an answer within three seconds; events
//! are deduplicated on `event_id`, since delivery is at least once.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::Error;
use crate::signing::verify_headers;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Callback<A, R> = Arc<dyn Fn(A) -> BoxFuture<R> + Send + Sync>;

/// How many recent `event_id`s are remembered to drop redeliveries.
const SEEN_EVENTS: usize = 1024;

/// An `event_callback`: something happened in a channel the bot is in.
#[derive(Clone, Debug, Deserialize)]
pub struct Event {
    /// The workspace.
    #[serde(default)]
    pub team_id: String,
    /// The bot's id.
    #[serde(default)]
    pub api_app_id: String,
    /// The same on every redelivery.
    #[serde(default)]
    pub event_id: String,
    /// When it happened (Unix seconds).
    #[serde(default)]
    pub event_time: i64,
    /// The event itself: `type` (`message`, `app_mention`, `reaction_added`, ...), `user`,
    /// `channel`, `text`, `ts`, ...
    pub event: Value,
}

impl Event {
    /// The event's `type`.
    pub fn kind(&self) -> &str {
        self.event["type"].as_str().unwrap_or_default()
    }

    /// One of the event's string fields (`channel`, `user`, `text`, `ts`).
    pub fn str(&self, key: &str) -> Option<&str> {
        self.event.get(key).and_then(Value::as_str)
    }
}

/// A slash command someone ran: Slack's form fields.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SlashCommand {
    /// `/deploy`.
    pub command: String,
    /// What followed the command.
    pub text: String,
    /// Where it was run.
    pub channel_id: String,
    /// The channel's name.
    pub channel_name: String,
    /// Who ran it.
    pub user_id: String,
    /// Their name.
    pub user_name: String,
    /// The workspace.
    pub team_id: String,
    /// The bot's id.
    pub api_app_id: String,
    /// Where later answers go (see [`respond`]).
    pub response_url: String,
    /// Slack's trigger id.
    pub trigger_id: String,
}

/// One element pressed in a `block_actions` interaction.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Action {
    /// The element's `action_id`.
    pub action_id: String,
    /// Its block's `block_id`.
    pub block_id: String,
    /// `button` or `static_select`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A button's `value`.
    pub value: Option<String>,
    /// A menu's chosen option (`text`, `value`).
    pub selected_option: Option<Value>,
}

impl Action {
    /// The button's value, or the value of the option picked in a menu.
    pub fn chosen(&self) -> Option<&str> {
        self.value.as_deref().or_else(|| {
            self.selected_option
                .as_ref()
                .and_then(|o| o["value"].as_str())
        })
    }
}

/// A press of a button or a pick in a menu of one of the bot's messages (`block_actions`).
#[derive(Clone, Debug)]
pub struct Interaction {
    /// `block_actions`.
    pub kind: String,
    /// Who pressed.
    pub user_id: String,
    /// Where.
    pub channel_id: String,
    /// The message's `ts`.
    pub message_ts: String,
    /// What was pressed.
    pub actions: Vec<Action>,
    /// Where answers go (see [`respond`]).
    pub response_url: String,
    /// The whole payload.
    pub payload: Value,
}

impl Interaction {
    fn parse(payload: Value) -> Option<Interaction> {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        Some(Interaction {
            kind: payload["type"].as_str()?.to_owned(),
            user_id: s(&payload["user"]["id"]),
            channel_id: s(&payload["channel"]["id"]),
            message_ts: s(&payload["container"]["message_ts"]),
            actions: serde_json::from_value(payload["actions"].clone()).unwrap_or_default(),
            response_url: s(&payload["response_url"]),
            payload,
        })
    }
}

/// Answers through a `response_url`: `message` is Slack's (`text`, `blocks`,
/// `response_type`, `replace_original`, `delete_original`).
pub async fn respond(response_url: &str, message: &Value) -> Result<(), Error> {
    let response = reqwest::Client::new()
        .post(response_url)
        .timeout(std::time::Duration::from_secs(30))
        .json(message)
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    match body["error"].as_str() {
        Some(code) => Err(Error::api(code)),
        None if status.is_success() => Ok(()),
        None => Err(Error::Http(format!("the response URL answered {status}"))),
    }
}

/// The bot's endpoint and its callbacks.
#[derive(Clone)]
pub struct Receiver {
    secret: Arc<str>,
    on_event: Option<Callback<Event, ()>>,
    on_command: Option<Callback<SlashCommand, Option<Value>>>,
    on_action: Option<Callback<Interaction, ()>>,
    seen: Arc<Mutex<(HashSet<String>, VecDeque<String>)>>,
}

impl Receiver {
    /// A receiver checking requests against the bot's signing secret.
    pub fn new(signing_secret: &str) -> Receiver {
        Receiver {
            secret: Arc::from(signing_secret),
            on_event: None,
            on_command: None,
            on_action: None,
            seen: Arc::default(),
        }
    }

    /// Called with every event (after the request was answered).
    pub fn on_event<F, Fut>(mut self, f: F) -> Receiver
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_event = Some(Arc::new(move |e| -> BoxFuture<()> { Box::pin(f(e)) }));
        self
    }

    /// Called with every slash command; what it returns is the answer (`None`: an empty
    /// `200`; `Some(json)`: Slack's `text`/`blocks` with `response_type`). It must answer
    /// within three seconds: longer work belongs in a task that answers with [`respond`].
    pub fn on_command<F, Fut>(mut self, f: F) -> Receiver
    where
        F: Fn(SlashCommand) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<Value>> + Send + 'static,
    {
        self.on_command = Some(Arc::new(move |c| -> BoxFuture<Option<Value>> {
            Box::pin(f(c))
        }));
        self
    }

    /// Called with every press of a button or pick in a menu (after the request was
    /// answered); answer with [`respond`] or the Web API.
    pub fn on_action<F, Fut>(mut self, f: F) -> Receiver
    where
        F: Fn(Interaction) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_action = Some(Arc::new(move |i| -> BoxFuture<()> { Box::pin(f(i)) }));
        self
    }

    /// An axum router serving `POST /slack/events`.
    pub fn router(self) -> Router {
        self.router_at("/slack/events")
    }

    /// An axum router serving `POST {path}`.
    pub fn router_at(self, path: &str) -> Router {
        Router::new().route(path, post(handler)).with_state(self)
    }

    /// Serves [`Receiver::router`] on `listener` until the process ends.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    fn first_time(&self, event_id: &str) -> bool {
        if event_id.is_empty() {
            return true;
        }
        let Ok(mut seen) = self.seen.lock() else {
            return true;
        };
        let (set, order) = &mut *seen;
        if !set.insert(event_id.to_owned()) {
            return false;
        }
        order.push_back(event_id.to_owned());
        if order.len() > SEEN_EVENTS {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
        true
    }

    /// Handles one request: its headers and raw body. What [`Receiver::router`] calls; usable
    /// from any axum handler.
    pub async fn handle(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        let now = chrono::Utc::now().timestamp();
        if let Err(e) = verify_headers(&self.secret, headers, body, now) {
            return (StatusCode::UNAUTHORIZED, e.to_string()).into_response();
        }
        let is_json = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/json"));
        if is_json || body.first() == Some(&b'{') {
            return self.envelope(body);
        }
        let mut form: Vec<(String, String)> =
            url::form_urlencoded::parse(body).into_owned().collect();
        if let Some(at) = form.iter().position(|(k, _)| k == "payload") {
            let payload = form.swap_remove(at).1;
            return self.interaction(&payload);
        }
        if form.iter().any(|(k, _)| k == "command") {
            return self.command(body).await;
        }
        (StatusCode::BAD_REQUEST, "unknown request").into_response()
    }

    fn envelope(&self, body: &[u8]) -> Response {
        let Ok(envelope) = serde_json::from_slice::<Value>(body) else {
            return (StatusCode::BAD_REQUEST, "invalid JSON").into_response();
        };
        match envelope["type"].as_str() {
            Some("url_verification") => {
                Json(json!({ "challenge": envelope["challenge"] })).into_response()
            }
            Some("event_callback") => {
                let Ok(event) = serde_json::from_value::<Event>(envelope) else {
                    return (StatusCode::BAD_REQUEST, "invalid event").into_response();
                };
                if let Some(f) = &self.on_event {
                    if self.first_time(&event.event_id) {
                        tokio::spawn(f(event));
                    }
                }
                StatusCode::OK.into_response()
            }
            _ => StatusCode::OK.into_response(),
        }
    }

    fn interaction(&self, payload: &str) -> Response {
        let Some(interaction) = serde_json::from_str::<Value>(payload)
            .ok()
            .and_then(Interaction::parse)
        else {
            return (StatusCode::BAD_REQUEST, "invalid payload").into_response();
        };
        if let Some(f) = &self.on_action {
            tokio::spawn(f(interaction));
        }
        StatusCode::OK.into_response()
    }

    async fn command(&self, body: &[u8]) -> Response {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
        let mut fields = serde_json::Map::new();
        for (k, v) in pairs {
            fields.insert(k, Value::String(v));
        }
        let Ok(command) = serde_json::from_value::<SlashCommand>(Value::Object(fields)) else {
            return (StatusCode::BAD_REQUEST, "invalid command").into_response();
        };
        match &self.on_command {
            Some(f) => match f(command).await {
                Some(answer) => Json(answer).into_response(),
                None => StatusCode::OK.into_response(),
            },
            None => StatusCode::OK.into_response(),
        }
    }
}

async fn handler(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    receiver.handle(&headers, &body).await
}
