//! One configured provider: its settings, discovered metadata (cached) and OIDC client.
//!
//! Discovery fetches `/.well-known/openid-configuration` and the provider's keys (JWKS); the
//! result is cached for a while and fetched again when a token names a key we do not know,
//! so key rotation at the provider needs no restart. Such a forced fetch happens at most once
//! per `sso.key_refresh_min_seconds` per provider (anyone can send a token naming an unknown
//! key), only one fetch per provider runs at a time, and no lock is held across it that a
//! sign-in with cached metadata would wait for. The HTTP client never follows redirects: a
//! provider endpoint that redirects is an error, not a hop to somewhere else.

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

/// What the cache holds for a caller.
enum Usable {
    /// Metadata to use.
    Yes(Arc<ProviderMetadataWithLogout>),
    /// Metadata that should be fetched again, usable meanwhile.
    Stale(Arc<ProviderMetadataWithLogout>),
    /// Nothing yet.
    No,
}

/// The HTTP client for talking to providers: no redirects, bounded time.
pub(crate) fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
}

/// Discovered metadata and when fetches happened.
#[derive(Default)]
struct Cache {
    metadata: Option<(Arc<ProviderMetadataWithLogout>, Instant)>,
    last_attempt: Option<Instant>,
}

/// A configured provider.
pub(crate) struct Provider {
    /// Its settings.
    pub config: SsoProviderConfig,
    /// The HTTP client for its endpoints.
    pub http: reqwest::Client,
    issuer: IssuerUrl,
    redirect_uri: RedirectUrl,
    /// Held only for a look or an update, never across a fetch.
    cache: std::sync::Mutex<Cache>,
    /// Held by the one fetch in flight.
    fetching: Mutex<()>,
    /// The least time between two forced fetches.
    refresh_min: Duration,
}

impl Provider {
    /// A provider whose callback is under `public_base`; a forced fetch of its keys happens at
    /// most once per `refresh_min`.
    pub fn new(
        config: SsoProviderConfig,
        http: reqwest::Client,
        public_base: &str,
        refresh_min: Duration,
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
            cache: std::sync::Mutex::new(Cache::default()),
            fetching: Mutex::new(()),
            refresh_min,
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

    /// Discovered metadata and keys, fetched if missing or stale, or if `refresh` is asked
    /// for (a token names a key we do not know) and no fetch happened in the last
    /// `refresh_min`. While one caller fetches, callers holding usable metadata go on with it;
    /// only those with nothing usable wait for that one fetch, which they then share.
    pub async fn metadata(&self, refresh: bool) -> Result<Arc<ProviderMetadataWithLogout>, Error> {
        let stale = match self.usable(refresh) {
            Usable::Yes(metadata) => return Ok(metadata),
            Usable::Stale(metadata) => Some(metadata),
            Usable::No => None,
        };
        let _gate = match (self.fetching.try_lock(), stale) {
            (Ok(gate), _) => gate,
            // Someone is fetching already: an ordinary caller goes on with what we have.
            (Err(_), Some(metadata)) if !refresh => return Ok(metadata),
            (Err(_), _) => self.fetching.lock().await,
        };
        // The fetch we waited for may have brought what we need.
        if let Usable::Yes(metadata) = self.usable(refresh) {
            return Ok(metadata);
        }
        self.lock_cache().last_attempt = Some(Instant::now());
        metrics::counter!("concord_sso_provider_fetches_total", "provider" => self.config.id.clone())
            .increment(1);
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
        self.lock_cache().metadata = Some((metadata.clone(), Instant::now()));
        Ok(metadata)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // The cache holds plain values: one left by a panicking holder is still sound.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the cached metadata serves a caller (`refresh`: one that met an unknown key).
    fn usable(&self, refresh: bool) -> Usable {
        let cache = self.lock_cache();
        let Some((metadata, fetched)) = cache.metadata.as_ref() else {
            return Usable::No;
        };
        let fresh = if refresh {
            // Forced fetches are rate-limited: a recent attempt (even a failed one) stands.
            cache
                .last_attempt
                .is_some_and(|at| at.elapsed() < self.refresh_min)
        } else {
            fetched.elapsed() < METADATA_TTL
        };
        if fresh {
            Usable::Yes(metadata.clone())
        } else {
            Usable::Stale(metadata.clone())
        }
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
