//! Logout: the provider tells Concord (back-channel), and Concord tells the provider
//! (RP-initiated).
//!
//! A back-channel logout token is a JWT the provider signs with one of its published keys. It
//! is accepted only with an asymmetric algorithm, the provider's issuer, our client id as
//! audience, a recent `iat`, the back-channel logout event, no `nonce`, and a `sub` and/or
//! `sid`. It revokes the Concord sessions begun through that provider for that provider
//! session (`sid`) or, without one, for that account (`sub`).

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;

use chrono::Utc;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use openidconnect::{ClientId, LogoutRequest, PostLogoutRedirectUrl};
use serde::Deserialize;

use super::provider::{OidcIdToken, Provider};
use super::SsoService;
use crate::domain::{SessionId, UserId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::store::sso as sso_store;
use crate::store::{sessions, Tx};

/// The event a logout token must carry.
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How old a logout token may be, in seconds.
const MAX_AGE_SECONDS: i64 = 5 * 60;

/// Signing algorithms accepted for logout tokens: asymmetric only.
const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

#[derive(Debug, Deserialize)]
struct LogoutClaims {
    iat: i64,
    sub: Option<String>,
    sid: Option<String>,
    #[serde(default)]
    events: serde_json::Map<String, serde_json::Value>,
    nonce: Option<serde_json::Value>,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::SsoFailed {
        code: "sso_invalid_logout_token",
        message: message.into(),
        upstream: false,
    }
}

impl SsoService {
    /// Verifies a back-channel logout token from `provider_id` and revokes the sessions it
    /// names; returns how many were revoked.
    #[tracing::instrument(skip(self, logout_token))]
    pub async fn backchannel_logout(
        &self,
        provider_id: &str,
        logout_token: &str,
    ) -> Result<usize, Error> {
        let provider = self.provider(provider_id)?;
        let claims = match self.verify_logout_token(provider, logout_token).await {
            Ok(claims) => claims,
            Err(err) => {
                let code = match &err {
                    Error::SsoFailed { code, .. } => *code,
                    _ => "sso_internal",
                };
                let provider = provider_id.to_owned();
                self.store
                    .write(move |tx: &mut Tx| {
                        Box::pin(async move {
                            tx.emit(DomainEvent::SsoLogoutRejected {
                                provider,
                                code: code.to_owned(),
                            });
                            Ok::<_, Error>(())
                        })
                    })
                    .await?;
                return Err(err);
            }
        };
        let auth_method = provider.auth_method();
        let provider_id = provider_id.to_owned();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let user = match &claims.sub {
                        Some(sub) => {
                            match sso_store::identity(&mut tx.conn(), &provider_id, sub).await? {
                                Some(link) => Some(link.user_id),
                                None => return Ok(0),
                            }
                        }
                        None => None,
                    };
                    let revoked = sessions::revoke_sso(
                        &mut tx.conn(),
                        &auth_method,
                        claims.sid.as_deref(),
                        user,
                        Utc::now(),
                        "sso_backchannel_logout",
                    )
                    .await?;
                    let count = revoked.len();
                    let mut by_user: BTreeMap<UserId, Vec<SessionId>> = BTreeMap::new();
                    for (session, owner) in revoked {
                        by_user.entry(owner).or_default().push(session);
                    }
                    for (user_id, sessions) in by_user {
                        tx.emit(DomainEvent::SessionsRevoked {
                            user_id,
                            sessions,
                            reason: "sso_backchannel_logout".into(),
                        });
                    }
                    Ok::<_, Error>(count)
                })
            })
            .await
    }

    async fn verify_logout_token(
        &self,
        provider: &Provider,
        token: &str,
    ) -> Result<LogoutClaims, Error> {
        if token.is_empty() || token.len() > 16 * 1024 {
            return Err(invalid("the logout token is missing or too large"));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| invalid("the logout token is not a JWT"))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(invalid("the logout token's algorithm is not accepted"));
        }
        let mut metadata = provider.metadata(false).await?;
        let mut key = find_key(&metadata, header.kid.as_deref(), header.alg);
        if key.is_none() {
            metadata = provider.metadata(true).await?;
            key = find_key(&metadata, header.kid.as_deref(), header.alg);
        }
        let key = key.ok_or_else(|| invalid("the logout token is signed with an unknown key"))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[metadata.issuer().as_str()]);
        validation.set_audience(&[provider.config.client_id.as_str()]);
        validation.required_spec_claims = HashSet::from(["iss".to_owned(), "aud".to_owned()]);
        validation.validate_exp = true;
        validation.leeway = 60;
        let claims = jsonwebtoken::decode::<LogoutClaims>(token, &key, &validation)
            .map_err(|e| {
                tracing::info!(error = %e, "logout token refused");
                invalid(format!("the logout token does not verify: {e}"))
            })?
            .claims;
        let now = Utc::now().timestamp();
        if claims.iat > now + 60 || claims.iat < now - MAX_AGE_SECONDS {
            return Err(invalid("the logout token is not recent"));
        }
        if !claims.events.contains_key(BACKCHANNEL_EVENT) {
            return Err(invalid(
                "the logout token lacks the back-channel logout event",
            ));
        }
        if claims.nonce.is_some() {
            return Err(invalid("a logout token must not carry a nonce"));
        }
        if claims.sub.is_none() && claims.sid.is_none() {
            return Err(invalid(
                "the logout token names neither a subject nor a session",
            ));
        }
        Ok(claims)
    }

    /// Where to send the browser to end the provider session behind an SSO session begun
    /// through `auth_method`, if the provider supports RP-initiated logout.
    pub async fn end_session_url(
        &self,
        auth_method: &str,
        id_token: Option<&str>,
    ) -> Option<String> {
        let provider_id = auth_method.strip_prefix("oidc:")?;
        let provider = self.providers.get(provider_id)?;
        let metadata = provider.metadata(false).await.ok()?;
        let endpoint = metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let mut request = LogoutRequest::from(endpoint)
            .set_client_id(ClientId::new(provider.config.client_id.clone()));
        if let Some(token) = id_token.and_then(|t| OidcIdToken::from_str(t).ok()) {
            request = request.set_id_token_hint(&token);
        }
        if let Ok(back) = PostLogoutRedirectUrl::new(format!("{}/", self.public_base)) {
            request = request.set_post_logout_redirect_uri(back);
        }
        Some(request.http_get_url().to_string())
    }
}

/// The provider key that can check a token with this key id and algorithm.
fn find_key(
    metadata: &openidconnect::ProviderMetadataWithLogout,
    kid: Option<&str>,
    alg: Algorithm,
) -> Option<DecodingKey> {
    let keys = serde_json::to_value(metadata.jwks()).ok()?;
    let keys = keys.get("keys")?.as_array()?;
    keys.iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .filter(|k| kid.is_none() || k.common.key_id.as_deref() == kid)
        .filter(|k| {
            k.common
                .key_algorithm
                .is_none_or(|a| a.to_string() == format!("{alg:?}"))
        })
        .find_map(|k| DecodingKey::from_jwk(&k).ok())
}
