//! Slack's error answers: `{"ok": false, "error": "<code>"}`, with status 200 for method
//! errors as Slack does, 429 with `Retry-After` when rate limited, and the one mapping from
//! service errors to Slack's codes.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::error::Error;
use crate::rbac::BotScopes;
use crate::store::StoreError;

/// Why a Slack call failed, as Slack names it.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    /// No token was sent.
    #[error("not_authed")]
    NotAuthed,
    /// The token was refused (`invalid_auth`, `token_revoked`, `account_inactive`).
    #[error("{0}")]
    Auth(&'static str),
    /// A token was sent in the query string, which is refused whatever else the call carries
    /// (`invalid_auth`, with a message saying where the token goes).
    #[error("invalid_auth")]
    TokenInQuery,
    /// The token lacks the scope the method needs.
    #[error("missing_scope")]
    MissingScope {
        /// The scope needed.
        needed: &'static str,
        /// The scopes the token has.
        provided: BotScopes,
    },
    /// A required argument is missing or malformed.
    #[error("invalid_arguments")]
    InvalidArguments(String),
    /// Too many calls; try again after this many seconds.
    #[error("ratelimited")]
    RateLimited(u64),
    /// The body is over the limit (answered with 413).
    #[error("request_too_large")]
    TooLarge,
    /// A method error with Slack's code (`channel_not_found`, `not_in_channel`, ...).
    #[error("{0}")]
    Code(&'static str),
    /// Something failed on our side.
    #[error("internal_error")]
    Internal,
}

impl SlackError {
    /// Maps a service error, naming `missing` what a `NotFound` refers to in this method
    /// (Slack's codes differ by method: `channel_not_found`, `message_not_found`, ...).
    pub fn from_service(err: Error, provided: BotScopes) -> SlackError {
        match err {
            Error::Unauthenticated { code, .. } => SlackError::Auth(code),
            Error::MissingScope { needed } => SlackError::MissingScope { needed, provided },
            Error::Invalid(p) => SlackError::InvalidArguments(p.to_string()),
            Error::NotFound("message") => SlackError::Code("message_not_found"),
            Error::NotFound("user") | Error::NotFound("member") => {
                SlackError::Code("user_not_found")
            }
            Error::NotFound(_) => SlackError::Code("channel_not_found"),
            Error::Refused { code, .. } => SlackError::Code(match code {
                "channel_archived" => "is_archived",
                "invalid_thread" => "thread_not_found",
                "not_author" => "cant_update_message",
                other => other,
            }),
            Error::Gone { code, .. } => SlackError::Code(match code {
                "message_deleted" => "message_not_found",
                other => other,
            }),
            Error::Forbidden(_) | Error::NotGrantable(_) => SlackError::Code("restricted_action"),
            Error::Throttled {
                retry_after_seconds,
            }
            | Error::Busy {
                retry_after_seconds,
                ..
            } => SlackError::RateLimited(retry_after_seconds),
            Error::TooLarge { .. } => SlackError::TooLarge,
            Error::Store(StoreError::ShuttingDown) => SlackError::Code("service_unavailable"),
            other => {
                let reference = uuid::Uuid::now_v7();
                tracing::error!(%reference, error = %other, "internal error in a bot API call");
                SlackError::Internal
            }
        }
    }
}

impl IntoResponse for SlackError {
    fn into_response(self) -> Response {
        let code = self.to_string();
        let mut body = json!({ "ok": false, "error": code });
        let mut status = StatusCode::OK;
        let mut retry_after = None;
        match &self {
            SlackError::MissingScope { needed, provided } => {
                body["needed"] = Value::from(*needed);
                body["provided"] = Value::from(provided.to_comma_list());
            }
            SlackError::InvalidArguments(why) => {
                body["response_metadata"] = json!({ "messages": [format!("[ERROR] {why}")] });
            }
            SlackError::TokenInQuery => {
                body["response_metadata"] = json!({ "messages": [
                    "[ERROR] a token in the query string is not accepted: send it in the \
                     Authorization header (Authorization: Bearer xoxb-...)"
                ] });
            }
            SlackError::RateLimited(secs) => {
                status = StatusCode::TOO_MANY_REQUESTS;
                retry_after = Some(*secs);
            }
            SlackError::TooLarge => status = StatusCode::PAYLOAD_TOO_LARGE,
            _ => {}
        }
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = retry_after {
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}
