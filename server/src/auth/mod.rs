//! Authentication: passwords, access and refresh tokens, sessions, throttling, first-run setup.
//!
//! [`AuthService`] signs people in and turns a bearer token into an [`crate::rbac::Actor`].
//! Access tokens are short-lived JWTs naming a session; every request checks that the session
//! is still live, so revoking a session takes effect at once. Refresh tokens are opaque,
//! stored hashed and rotated on every use; presenting a used one revokes its session.
//! A person subject to automatic logoff (a member of a workspace holding PHI) whose session
//! saw no activity of theirs for the idle period ([`Activity`]) finds it ended at the next
//! request or refresh (`session_idle_timeout`), if the logoff sweep (`phi::logoff`) did not end it
//! first.

mod activity;
mod inventory;
mod keys;
mod password;
mod password_change;
mod service;
mod session_client;
mod throttle;
mod tokens;

pub use activity::Activity;
pub use inventory::INVENTORY;
pub use keys::{KeyError, SigningKeys};
pub use password::PasswordHasher;
pub use service::{
    log_off_idle, AuthService, ClientInfo, PendingSession, SessionOrigin, SessionView,
    StartedSession, TokenPair, IDLE_REASON, IDLE_TIMEOUT,
};
pub use session_client::encrypt_legacy_clients;
pub(crate) use throttle::address_network;
pub use tokens::{AccessClaims, TokenError, TokenIssuer};

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new random opaque token (256 bits, URL-safe base64).
pub(crate) fn random_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 of an opaque token: what storage keeps instead of the token.
pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}
