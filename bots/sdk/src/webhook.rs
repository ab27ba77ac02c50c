//! Incoming webhooks: a URL that posts into one channel as one bot, no token needed.

use std::time::Duration;

use serde_json::{json, Value};

use crate::error::{retry_after, Error};

/// An incoming webhook (`https://chat.example.org/hooks/...`). Its `Debug` does not show the
/// URL, whose last part is the secret.
#[derive(Clone)]
pub struct Webhook {
    http: reqwest::Client,
    url: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &"<redacted>")
            .finish()
    }
}

impl Webhook {
    /// The webhook at `url`.
    pub fn new(url: &str) -> Webhook {
        Webhook {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            url: url.to_owned(),
        }
    }

    /// Posts a text message.
    pub async fn send_text(&self, text: &str) -> Result<(), Error> {
        self.send(&json!({ "text": text })).await
    }

    /// Posts Slack's webhook payload: `text`, `blocks` and/or `attachments`. Refusals are
    /// [`Error::Api`] with Slack's code (`no_text`, `invalid_blocks`, `no_service`, ...).
    pub async fn send(&self, payload: &Value) -> Result<(), Error> {
        let response = self.http.post(&self.url).json(payload).send().await?;
        let status = response.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(Error::RateLimited {
                retry_after: retry_after(response.headers()),
            });
        }
        let body = response.text().await?;
        if status.is_success() {
            return Ok(());
        }
        let code = body.trim();
        if !code.is_empty() && code.len() < 64 && !code.contains(char::is_whitespace) {
            Err(Error::api(code))
        } else {
            Err(Error::Http(format!("the webhook answered {status}")))
        }
    }
}
