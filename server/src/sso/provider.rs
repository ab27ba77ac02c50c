//! One configured provider: its settings, discovered metadata (cached) and OIDC client.
//!
//! Discovery fetches `/.well-known/openid-configuration` and the provider's keys (JWKS); the
//! result is cached for a while and fetched again when a token names a key we do not know,
//! so key rotation at the provider needs no restart. The HTTP client never follows redirects:
//! a provider endpoint that redirects is an error, not a hop to somewhere else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreRevocableToken,
    CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, Client, ClientId, ClientSecret, EmptyExtraTokenFields, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IdToken, IdTokenFields, IssuerUrl, ProviderMetadataWithLogout,
    RedirectUrl, StandardErrorResponse, StandardTokenResponse,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::upstream;
use crate::config::SsoProviderConfig;
use crate::error::Error;

/// How long discovered metadata and keys are trusted before they are fetched again.
const METADATA_TTL: Duration = Duration::from_secs(15 * 60);

/// Claims beyond the standard ones (`groups`, `sid`, ...), kept as JSON.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct ExtraClaims(pub serde_json::Map<String, serde_json::Value>);

impl AdditionalClaims for ExtraClaims {}

/// An ID token whose extra claims are kept.
pub(crate) type OidcIdToken = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

type TokenFields = IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// The token endpoint's answer.
pub(crate) type OidcTokenResponse = StandardTokenResponse<TokenFields, CoreTokenType>;

/// A client built from discovered metadata (authorization endpoint set; token and userinfo
/// endpoints as the provider advertises them).
pub(crate) type OidcClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    OidcTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The HTTP client for talking to providers: no redirects, bounded time.
pub(crate) fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
}

/// A configured provider.
pub(crate) struct Provider {
    /// Its settings.
    pub config: SsoProviderConfig,
    /// The HTTP client for its endpoints.
    pub http: reqwest::Client,
    issuer: IssuerUrl,
    redirect_uri: RedirectUrl,
    cached: Mutex<Option<(Arc<ProviderMetadataWithLogout>, Instant)>>,
}

impl Provider {
    /// A provider whose callback is under `public_base`.
    pub fn new(
        config: SsoProviderConfig,
        http: reqwest::Client,
        public_base: &str,
    ) -> Result<Provider, String> {
        let issuer = IssuerUrl::new(config.issuer_url.clone()).map_err(|e| e.to_string())?;
        let redirect_uri = RedirectUrl::new(format!(
            "{}/auth/oidc/{}/callback",
            public_base.trim_end_matches('/'),
            config.id
        ))
        .map_err(|e| e.to_string())?;
        Ok(Provider {
            config,
            http,
            issuer,
            redirect_uri,
            cached: Mutex::new(None),
        })
    }

    /// The authentication method recorded on sessions begun here.
    pub fn auth_method(&self) -> String {
        format!("oidc:{}", self.config.id)
    }

    /// The membership source recorded for memberships granted by this provider's claims.
    pub fn membership_source(&self) -> String {
        format!("sso:{}", self.config.id)
    }

    /// Discovered metadata and keys, fetched if missing, stale or `refresh` is asked for.
    pub async fn metadata(&self, refresh: bool) -> Result<Arc<ProviderMetadataWithLogout>, Error> {
        let mut cached = self.cached.lock().await;
        if let Some((metadata, at)) = cached.as_ref() {
            if !refresh && at.elapsed() < METADATA_TTL {
                return Ok(metadata.clone());
            }
        }
        let metadata = ProviderMetadataWithLogout::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| {
                tracing::warn!(provider = %self.config.id, error = %e, "provider discovery failed");
                upstream(
                    "sso_provider_unavailable",
                    "the identity provider cannot be reached; try again later",
                )
            })?;
        let metadata = Arc::new(metadata);
        *cached = Some((metadata.clone(), Instant::now()));
        Ok(metadata)
    }

    /// A client for this provider from its metadata.
    pub fn client(&self, metadata: &ProviderMetadataWithLogout) -> OidcClient {
        OidcClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(
                self.config.client_secret.expose().to_owned(),
            )),
        )
        .set_redirect_uri(self.redirect_uri.clone())
    }
}
