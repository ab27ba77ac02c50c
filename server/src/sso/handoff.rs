//! Handing a browser's finished sign-in to the web client, bound to that browser.
//!
//! Tokens in a URL could be planted: a link to the web client carrying someone else's tokens
//! would sign a person into that account (login CSRF). So when the provider sends a browser
//! back, the callback starts the session and stores a hand-off instead: a one-time code, valid
//! for [`HANDOFF_SECONDS`], bound to a fresh browser cookie (path `/auth/oidc/<provider>/`,
//! `HttpOnly`, `SameSite=Lax`), holding the session's first refresh token sealed under a key
//! derived from the code (so storage alone cannot redeem it). The browser lands on the web
//! client's `/sso/callback` with the code in the URL fragment, and the web client posts it to
//! `/auth/oidc/<provider>/handoff`; the browser sends the cookie along. A code presented
//! without the cookie of the browser that began the sign-in (a planted link, another browser)
//! is refused, and its session revoked.
//!
//! Invariants: an unknown code costs one read and writes nothing; a known hand-off is taken
//! before any check, so it is used once whatever the outcome; redeeming rotates the sealed
//! refresh token, so the browser gets a fresh pair and the stored one is spent.

use chrono::{Duration, Utc};
use hkdf::Hkdf;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{refused, SsoService};
use crate::auth::{random_token, token_hash, TokenPair};
use crate::crypto::{aead, Aad};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::store::sso::{self as sso_store, HandoffRecord};
use crate::store::{sessions, Tx};

/// How long a hand-off code may wait for the web client.
pub const HANDOFF_SECONDS: i64 = 120;

/// Expired hand-offs cleared per new one (each costs a row and a revocation).
const CLEANUP_BATCH: i64 = 100;

/// Why an unredeemed hand-off's session ends.
const UNUSED: &str = "sso_handoff_unused";

/// A stored hand-off: the code for the web client and the cookie for the browser.
#[derive(Debug)]
pub struct Handoff {
    /// The one-time code (goes in the URL fragment).
    pub code: String,
    /// Value of the browser-binding cookie.
    pub browser_token: String,
    /// Its lifetime in seconds.
    pub max_age_seconds: i64,
}

/// The key sealing a hand-off's refresh token: derived from the code, which only the browser
/// holds (storage keeps its hash).
fn code_key(code: &str) -> Result<Zeroizing<[u8; 32]>, Error> {
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(None, code.as_bytes())
        .expand(b"concord sso hand-off v1", key.as_mut())
        .map_err(|e| Error::Internal(format!("hand-off key: {e}")))?;
    Ok(key)
}

fn aad(provider: &str) -> Aad<'_> {
    Aad {
        table: "sso_handoffs",
        row: provider,
        column: "sealed_refresh",
    }
}

const SCOPE: &str = "sso-handoff";

fn invalid() -> Error {
    refused(
        "sso_handoff_invalid",
        "this sign-in was not begun in this browser, or was finished already; sign in again",
    )
}

impl SsoService {
    /// Stores a hand-off of the session `pair` began (through `provider_id`), for the browser
    /// that will hold the returned cookie.
    pub async fn hand_off(&self, provider_id: &str, pair: TokenPair) -> Result<Handoff, Error> {
        let code = random_token();
        let browser_token = random_token();
        let key = code_key(&code)?;
        let sealed = aead::seal(
            &key,
            SCOPE,
            1,
            &aad(provider_id),
            pair.refresh_token.as_bytes(),
        )
        .map_err(|e| Error::Internal(e.to_string()))?;
        let now = Utc::now();
        let record = HandoffRecord {
            code_hash: token_hash(&code),
            provider: provider_id.to_owned(),
            browser_hash: token_hash(&browser_token),
            session_id: pair.session_id,
            user_id: pair.user_id,
            sealed_refresh: sealed,
            created_at: now,
            expires_at: now + Duration::seconds(HANDOFF_SECONDS),
        };
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let expired =
                        sso_store::take_expired_handoffs(&mut tx.conn(), now, CLEANUP_BATCH)
                            .await?;
                    for unused in expired {
                        end_session(tx, &unused).await?;
                    }
                    sso_store::insert_handoff(&mut tx.conn(), &record).await?;
                    Ok::<_, Error>(())
                })
            })
            .await?;
        Ok(Handoff {
            code,
            browser_token,
            max_age_seconds: HANDOFF_SECONDS,
        })
    }

    /// Redeems a hand-off `code` for a fresh token pair, if `browser_token` is the cookie of
    /// the browser that began the sign-in at `provider_id` and the code is unused and recent.
    #[tracing::instrument(skip_all, fields(provider = provider_id))]
    pub async fn redeem_handoff(
        &self,
        provider_id: &str,
        code: &str,
        browser_token: Option<String>,
    ) -> Result<TokenPair, Error> {
        self.provider(provider_id)?;
        if code.is_empty() || code.len() > 256 {
            return Err(invalid());
        }
        let code_hash = token_hash(code);
        let known = {
            let mut conn = self.store.reader().await?;
            sso_store::handoff_exists(&mut conn.conn(), &code_hash).await?
        };
        if !known {
            return Err(invalid());
        }
        let provider = provider_id.to_owned();
        let taken = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let Some(handoff) = sso_store::take_handoff(&mut tx.conn(), &code_hash).await?
                    else {
                        return Ok(None);
                    };
                    let browser_ok = browser_token
                        .is_some_and(|t| bool::from(token_hash(&t).ct_eq(&handoff.browser_hash)));
                    let refusal = if handoff.provider != provider || !browser_ok {
                        Some(invalid())
                    } else if handoff.expires_at < Utc::now() {
                        Some(refused(
                            "sso_handoff_expired",
                            "the sign-in was not finished in time; sign in again",
                        ))
                    } else {
                        None
                    };
                    if refusal.is_some() {
                        end_session(tx, &handoff).await?;
                    }
                    Ok::<_, Error>(Some((handoff, refusal)))
                })
            })
            .await?;
        let Some((handoff, refusal)) = taken else {
            return Err(invalid());
        };
        if let Some(err) = refusal {
            return Err(self.failed(provider_id, err).await);
        }
        let key = code_key(code)?;
        let refresh = aead::open(&key, SCOPE, &aad(provider_id), &handoff.sealed_refresh)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let refresh = Zeroizing::new(
            String::from_utf8(refresh.to_vec())
                .map_err(|_| Error::Internal("a hand-off's refresh token is not text".into()))?,
        );
        self.auth.refresh(&refresh).await
    }
}

/// Ends the session of a hand-off nobody will redeem.
async fn end_session(tx: &mut Tx, handoff: &HandoffRecord) -> Result<(), Error> {
    if sessions::revoke(&mut tx.conn(), handoff.session_id, Utc::now(), UNUSED).await? {
        tx.emit(DomainEvent::SessionsRevoked {
            user_id: handoff.user_id,
            sessions: vec![handoff.session_id],
            reason: UNUSED.into(),
        });
    }
    Ok(())
}
