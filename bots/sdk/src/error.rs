//! The one error of the Web API client, webhooks and response URLs.

use std::time::Duration;

/// What went wrong with a call to Concord.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Concord answered with Slack's error code (`not_in_channel`, `invalid_auth`,
    /// `missing_scope`, `no_service`, `expired_url`, ...).
    #[error("the API refused the call: {code}")]
    Api {
        /// Slack's error code.
        code: String,
        /// For `missing_scope`: the scope the call needs.
        needed: Option<String>,
    },
    /// Too many calls: try again after `retry_after` (the client's retries were used up).
    #[error("rate limited; retry after {retry_after:?}")]
    RateLimited {
        /// What the server's `Retry-After` said.
        retry_after: Duration,
    },
    /// The request did not get an answer (connection, TLS, timeout, or an unexpected status).
    #[error("HTTP request failed: {0}")]
    Http(String),
    /// The answer was not what the method returns.
    #[error("could not read the answer: {0}")]
    Decode(String),
}

impl Error {
    /// Slack's error code, for [`Error::Api`].
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    pub(crate) fn api(code: impl Into<String>) -> Error {
        Error::Api {
            code: code.into(),
            needed: None,
        }
    }
}

impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Error {
        if e.is_decode() {
            Error::Decode(e.to_string())
        } else {
            Error::Http(e.to_string())
        }
    }
}

/// How long a `Retry-After` header says to wait (one second when it is missing or unreadable).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    let secs = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1);
    Duration::from_secs(secs)
}
