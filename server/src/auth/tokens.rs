//! Access tokens: HS256 JWTs with an explicit algorithm allow-list, issuer, audience and key id.

use chrono::Utc;
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::SigningKeys;
use crate::domain::{SessionId, UserId};

/// The claims Concord puts in an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user.
    pub sub: Uuid,
    /// The session.
    pub sid: Uuid,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
}

/// Why a presented access token is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Past its expiry.
    #[error("access token expired")]
    Expired,
    /// Bad signature, algorithm, issuer, audience, key id or shape.
    #[error("access token invalid: {0}")]
    Invalid(String),
}

/// Signs and verifies access tokens.
pub struct TokenIssuer {
    keys: SigningKeys,
    issuer: String,
    audience: String,
    lifetime_seconds: i64,
}

/// The only algorithm accepted; tokens naming any other (including `none`) are refused.
const ALGORITHM: Algorithm = Algorithm::HS256;

impl TokenIssuer {
    /// An issuer with these keys and claims.
    pub fn new(
        keys: SigningKeys,
        issuer: String,
        audience: String,
        lifetime_seconds: u64,
    ) -> TokenIssuer {
        TokenIssuer {
            keys,
            issuer,
            audience,
            lifetime_seconds: lifetime_seconds as i64,
        }
    }

    /// How long new tokens live.
    pub fn lifetime_seconds(&self) -> i64 {
        self.lifetime_seconds
    }

    /// Signs a token for a session.
    pub fn issue(&self, user: UserId, session: SessionId) -> Result<String, TokenError> {
        let now = Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user.0,
            sid: session.0,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + self.lifetime_seconds,
        };
        let (kid, secret) = self.keys.active();
        let header = Header {
            kid: Some(kid.to_owned()),
            ..Header::new(ALGORITHM)
        };
        encode(&header, &claims, &EncodingKey::from_secret(secret))
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }

    /// Verifies signature, algorithm, key id, issuer, audience and expiry.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        if header.alg != ALGORITHM {
            return Err(TokenError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| TokenError::Invalid("no key id".into()))?;
        let secret = self
            .keys
            .verifying(&kid)
            .ok_or_else(|| TokenError::Invalid("unknown key id".into()))?;
        let mut validation = Validation::new(ALGORITHM);
        validation.algorithms = vec![ALGORITHM];
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        decode::<AccessClaims>(token, &DecodingKey::from_secret(secret), &validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid(e.to_string()),
            })
    }
}
