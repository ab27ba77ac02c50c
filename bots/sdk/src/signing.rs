//! Slack's request signing, checked on every request a bot receives.
//!
//! `X-Slack-Signature` is `v0=` and the hex HMAC-SHA256, under the bot's signing secret, of
//! `v0:{timestamp}:{body}`, with the timestamp of `X-Slack-Request-Timestamp` (Unix seconds).
//! A request whose timestamp is more than five minutes away from now, either way, is refused,
//! so a captured request cannot be replayed later. The comparison is constant-time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a request's timestamp may be from now, in seconds.
pub const MAX_AGE_SECONDS: i64 = 5 * 60;

/// Why a request's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// `X-Slack-Signature` or `X-Slack-Request-Timestamp` is missing or unreadable.
    #[error("the request is not signed")]
    Missing,
    /// The timestamp is more than five minutes from now.
    #[error("the request's timestamp is too old or in the future")]
    Stale,
    /// The signature does not match the body.
    #[error("the request's signature does not match")]
    BadSignature,
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

/// The `X-Slack-Signature` of `body` sent at `timestamp`.
pub fn signature(signing_secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut m = mac(signing_secret.as_bytes());
    m.update(format!("v0:{timestamp}:").as_bytes());
    m.update(body);
    format!("v0={}", hex::encode(m.finalize().into_bytes()))
}

/// Checks a request: `timestamp` and `signature` are its `X-Slack-Request-Timestamp` and
/// `X-Slack-Signature`, `now` the current Unix time in seconds.
pub fn verify(
    signing_secret: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let sent: i64 = timestamp.trim().parse().map_err(|_| VerifyError::Missing)?;
    if now.abs_diff(sent) > MAX_AGE_SECONDS.unsigned_abs() {
        return Err(VerifyError::Stale);
    }
    let given = signature
        .trim()
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(VerifyError::BadSignature)?;
    let mut m = mac(signing_secret.as_bytes());
    m.update(format!("v0:{}:", timestamp.trim()).as_bytes());
    m.update(body);
    // `verify_slice` compares in constant time.
    m.verify_slice(&given)
        .map_err(|_| VerifyError::BadSignature)
}

/// [`verify`] with the two headers read from a request's `headers`.
pub fn verify_headers(
    signing_secret: &str,
    headers: &axum::http::HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(VerifyError::Missing)
    };
    verify(
        signing_secret,
        header("x-slack-request-timestamp")?,
        header("x-slack-signature")?,
        body,
        now,
    )
}
