//! Password hashing with argon2id, off the async runtime and bounded in concurrency.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use tokio::sync::Semaphore;

use crate::domain::Password;
use crate::error::Error;

/// Hashes and verifies passwords (argon2id, m=19 MiB, t=2, p=1: OWASP's recommendation).
#[derive(Clone)]
pub struct PasswordHasher {
    /// Verified when the account is unknown, so that case costs the same as a wrong password.
    dummy_hash: Arc<String>,
    /// Each hash takes 19 MiB and a core for a while; this caps how many run at once.
    permits: Arc<Semaphore>,
}

impl PasswordHasher {
    /// A hasher allowing `parallelism` concurrent hashes.
    pub fn new(parallelism: usize) -> Result<PasswordHasher, Error> {
        let dummy = hash_blocking("concord-dummy-password-for-timing")?;
        Ok(PasswordHasher {
            dummy_hash: Arc::new(dummy),
            permits: Arc::new(Semaphore::new(parallelism.max(1))),
        })
    }

    /// Hashes a new password into PHC string format.
    pub async fn hash(&self, password: &Password) -> Result<String, Error> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let secret = zeroize::Zeroizing::new(password.expose().to_owned());
        tokio::task::spawn_blocking(move || hash_blocking(&secret))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
    }

    /// Checks a password against a stored hash, or against a dummy when there is none, so
    /// that an unknown account and a wrong password take the same time.
    pub async fn verify(&self, stored: Option<String>, password: &Password) -> Result<bool, Error> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.as_ref().clone());
        let secret = zeroize::Zeroizing::new(password.expose().to_owned());
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(secret.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(known && ok)
    }
}

fn hash_blocking(secret: &str) -> Result<String, Error> {
    use argon2::PasswordHasher as _;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))
}
