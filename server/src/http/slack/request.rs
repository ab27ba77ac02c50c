//! A Slack call's arguments: from the query string and a form-urlencoded or JSON body, as
//! Slack accepts them (Slack's SDKs send forms, with structured values such as `blocks` as
//! JSON strings). The token is not an argument: it comes in the `Authorization` header, and a
//! query string that carries one is refused ([`query_has_token`]).

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;
use serde_json::{Map, Value};

use super::error::SlackError;
use crate::domain::ChannelId;

/// The largest body a bot API call or a webhook may send.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Whether a query string carries a `token` argument (in any spelling `form_urlencoded`
/// decodes to `token`, empty or not).
pub fn query_has_token(query: Option<&str>) -> bool {
    query.is_some_and(|q| url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "token"))
}

/// A call's arguments by name.
#[derive(Debug, Default)]
pub struct Args(Map<String, Value>);

impl Args {
    /// Reads the body (at most [`MAX_BODY_BYTES`]) and merges it over the query's arguments.
    pub async fn read(
        headers: &HeaderMap,
        query: Option<&str>,
        body: Body,
    ) -> Result<Args, SlackError> {
        let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| SlackError::TooLarge)?;
        let mut args = Args::default();
        if let Some(q) = query {
            args.merge_form(q.as_bytes());
        }
        let json = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
        if json && !bytes.is_empty() {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(map)) => args.0.extend(map),
                _ => {
                    return Err(SlackError::InvalidArguments(
                        "the body is not a JSON object".into(),
                    ))
                }
            }
        } else {
            args.merge_form(&bytes);
        }
        Ok(args)
    }

    /// Arguments given as JSON (for incoming webhooks, whose body is the payload itself).
    pub fn from_json(value: Value) -> Option<Args> {
        match value {
            Value::Object(map) => Some(Args(map)),
            _ => None,
        }
    }

    /// The arguments as one JSON object.
    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }

    fn merge_form(&mut self, bytes: &[u8]) {
        for (k, v) in url::form_urlencoded::parse(bytes) {
            self.0.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    }

    /// A text argument (numbers and booleans as written).
    pub fn str(&self, name: &str) -> Option<String> {
        match self.0.get(name)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// A required text argument.
    pub fn required(&self, name: &str) -> Result<String, SlackError> {
        self.str(name)
            .ok_or_else(|| SlackError::InvalidArguments(format!("missing required field: {name}")))
    }

    /// A structured argument: JSON as sent, or a string holding JSON (as forms carry it).
    pub fn json(&self, name: &str) -> Result<Option<Value>, SlackError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => serde_json::from_str(s)
                .map(Some)
                .map_err(|_| SlackError::InvalidArguments(format!("{name} must be JSON"))),
            Some(other) => Ok(Some(other.clone())),
        }
    }

    /// A boolean argument (`true`/`1`).
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.str(name).as_deref(), Some("true" | "1"))
    }

    /// A positive count, clamped to `1..=max`, or `default`.
    pub fn limit(&self, default: usize, max: usize) -> Result<usize, SlackError> {
        match self.str("limit") {
            None => Ok(default),
            Some(s) => match s.parse::<usize>() {
                Ok(0) => Ok(default),
                Ok(n) => Ok(n.min(max)),
                Err(_) => Err(SlackError::InvalidArguments(
                    "limit must be a number".into(),
                )),
            },
        }
    }

    /// The `channel` argument: missing is `invalid_arguments`, unknown `channel_not_found`.
    pub fn channel(&self) -> Result<ChannelId, SlackError> {
        self.required("channel")?
            .parse()
            .map_err(|_| SlackError::Code("channel_not_found"))
    }
}

/// An opaque pagination cursor: an offset into a list (base64 of `o:<n>`).
pub mod cursor {
    use base64::Engine;

    use super::SlackError;

    const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// The cursor for the items from `offset` on.
    pub fn encode(offset: usize) -> String {
        ENGINE.encode(format!("o:{offset}"))
    }

    /// The offset a cursor names (none: from the start).
    pub fn decode(cursor: Option<&str>) -> Result<usize, SlackError> {
        let Some(cursor) = cursor.filter(|c| !c.is_empty()) else {
            return Ok(0);
        };
        ENGINE
            .decode(cursor)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("o:").and_then(|n| n.parse().ok()))
            .ok_or(SlackError::Code("invalid_cursor"))
    }

    /// One page of `items` from the cursor's offset, and the next cursor ("" at the end).
    pub fn page<T>(
        items: Vec<T>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<T>, String), SlackError> {
        let offset = decode(cursor)?;
        let total = items.len();
        let page: Vec<T> = items.into_iter().skip(offset).take(limit).collect();
        let next = if offset + page.len() < total {
            encode(offset + page.len())
        } else {
            String::new()
        };
        Ok((page, next))
    }
}
