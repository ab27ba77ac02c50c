//! Slack's request signing: what a receiver such as Bolt checks on every delivery.
//!
//! `X-Slack-Signature` is `v0=` and the hex HMAC-SHA256, under the bot's signing secret, of
//! `v0:{timestamp}:{body}`, where the timestamp is `X-Slack-Request-Timestamp` (Unix
//! seconds; receivers refuse one more than five minutes old). The secret is 256 random bits
//! in hex, shown to an administrator once and kept encrypted.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

/// A fresh signing secret: 64 hex digits.
pub fn new_secret() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    Zeroizing::new(hex::encode(bytes.as_ref()))
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

/// The `X-Slack-Signature` of `body` sent at `timestamp`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(format!("v0:{timestamp}:").as_bytes());
    m.update(body);
    format!("v0={}", hex::encode(m.finalize().into_bytes()))
}

/// The legacy verification `token` Slack puts in every payload, derived from the signing
/// secret (so rotating the secret changes it too); receivers that check signatures ignore it.
pub fn verification_token(secret: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(b"concord verification token");
    hex::encode(&m.finalize().into_bytes()[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_slack_documents() {
        // Slack's documented example (api.slack.com/authentication/verifying-requests-from-slack).
        let secret = b"8f742231b10e8888abcd99yyyzzz85a5";
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        assert_eq!(
            signature(secret, 1531420618, body),
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        );
        assert_eq!(new_secret().len(), 64);
        assert_ne!(*new_secret(), *new_secret());
        assert_eq!(verification_token(secret).len(), 24);
    }
}
