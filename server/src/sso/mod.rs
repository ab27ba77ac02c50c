//! Single sign-on with OpenID Connect.
//!
//! People sign in through their organisation's identity provider; the result is the same
//! Concord session (access + refresh token) as a password sign-in. [`SsoService`] holds the
//! configured providers ([`provider`]: discovery, the HTTP client that never follows
//! redirects), runs the authorization code flow with PKCE, state and nonce ([`flow`]), maps a
//! claim such as `groups` to workspace memberships at every sign-in ([`claims`]), ends sessions
//! on the provider's word ([`logout`]: back-channel and RP-initiated logout) and keeps the
//! per-workspace rule that members must use single sign-on ([`policy`]).
//!
//! A browser never receives tokens in a URL: its sign-in is handed to the web client as a
//! one-time code ([`handoff`]) that only the browser which began the sign-in can redeem.
//!
//! Invariants: a failed sign-in never creates a session and always emits
//! [`crate::events::DomainEvent::SsoSignInFailed`]; claim mapping only ever changes memberships
//! it granted itself (`source = 'sso:<provider>'`); pending sign-ins and hand-offs live in the
//! database (bounded in number, each short-lived), so any node can finish a sign-in another
//! began; each client address may begin only a share of them ([`starts`]).

mod claims;
mod flow;
mod handoff;
mod inventory;
mod logout;
mod policy;
mod provider;
mod starts;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

pub use flow::{CallbackParams, LoginRedirect};
pub use handoff::Handoff;
pub use inventory::INVENTORY;
pub use policy::WorkspaceSsoView;

use crate::audit::{Auditor, Event, Outcome};
use crate::auth::AuthService;
use crate::config::SsoConfig;
use crate::error::Error;
use crate::events::DomainEvent;
use crate::store::{Store, Tx};
use provider::Provider;

/// The name of the cookie that binds a pending sign-in to the browser that began it.
pub const BROWSER_COOKIE: &str = "concord_sso";

/// A configured provider as the sign-in page lists it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ProviderView {
    /// Provider id (URL slug).
    pub id: String,
    /// Name to show.
    pub display_name: String,
    /// Where to send the browser to sign in.
    pub login_url: String,
}

/// Single sign-on: providers, the sign-in flow, claim mapping and logout.
pub struct SsoService {
    providers: BTreeMap<String, Provider>,
    store: Store,
    auth: Arc<AuthService>,
    auditor: Auditor,
    public_base: String,
    max_pending_sign_ins: i64,
    starts: starts::StartLimiter,
}

/// Why the single sign-on service could not be built.
#[derive(Debug, thiserror::Error)]
#[error("single sign-on: {0}")]
pub struct SsoSetupError(String);

impl SsoService {
    /// Providers from `config`, with redirect URIs under `public_base`. Nothing is fetched
    /// from the providers yet: discovery happens at first use, so a provider that is down does
    /// not keep Concord from starting.
    pub fn new(
        config: &SsoConfig,
        store: Store,
        auth: Arc<AuthService>,
        auditor: Auditor,
        public_base: &str,
    ) -> Result<SsoService, SsoSetupError> {
        let http = provider::http_client().map_err(|e| SsoSetupError(e.to_string()))?;
        let mut providers = BTreeMap::new();
        for p in &config.providers {
            let refresh_min = std::time::Duration::from_secs(config.key_refresh_min_seconds);
            let provider = Provider::new(p.clone(), http.clone(), public_base, refresh_min)
                .map_err(|e| SsoSetupError(format!("provider {}: {e}", p.id)))?;
            providers.insert(p.id.clone(), provider);
        }
        Ok(SsoService {
            providers,
            store,
            auth,
            auditor,
            public_base: public_base.trim_end_matches('/').to_owned(),
            max_pending_sign_ins: i64::from(config.max_pending_sign_ins),
            starts: starts::StartLimiter::new(flow::LOGIN_WINDOW, starts::PER_ADDRESS),
        })
    }

    /// The configured providers, in id order.
    pub fn providers(&self) -> Vec<ProviderView> {
        self.providers
            .values()
            .map(|p| ProviderView {
                id: p.config.id.clone(),
                display_name: p.config.display_name.clone(),
                login_url: format!("{}/auth/oidc/{}/login", self.public_base, p.config.id),
            })
            .collect()
    }

    /// Fails with 404 unless `id` names a configured provider (so it is a plain slug, safe
    /// in a cookie's path).
    pub fn check_provider(&self, id: &str) -> Result<(), Error> {
        self.provider(id).map(|_| ())
    }

    fn provider(&self, id: &str) -> Result<&Provider, Error> {
        self.providers
            .get(id)
            .ok_or(Error::NotFound("identity provider"))
    }

    /// Whether the public base URL is https (then the browser cookie is `Secure`).
    pub fn secure_cookies(&self) -> bool {
        self.public_base.starts_with("https://")
    }

    /// Records a failed sign-in in its own small write (nothing else was written) and returns
    /// the error to give the user.
    async fn failed(&self, provider: &str, err: Error) -> Error {
        let code = match &err {
            Error::SsoFailed { code, .. } => (*code).to_owned(),
            Error::Unauthenticated { code, .. } => (*code).to_owned(),
            Error::Refused { code, .. } => (*code).to_owned(),
            other => {
                tracing::warn!(error = %other, "single sign-on failed");
                "sso_internal".to_owned()
            }
        };
        tracing::info!(provider, %code, "single sign-on refused");
        let provider = provider.to_owned();
        let auditor = self.auditor.clone();
        let recorded = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let event = Event::anonymous("auth.sign_in", Outcome::Failed, None).details(
                        serde_json::json!({ "method": format!("oidc:{provider}"), "reason": code }),
                    );
                    auditor.record(tx, event).await?;
                    tx.emit(DomainEvent::SsoSignInFailed { provider, code });
                    Ok::<_, Error>(())
                })
            })
            .await;
        if let Err(e) = recorded {
            tracing::error!(error = %e, "could not record a failed single sign-on");
        }
        err
    }
}

/// A sign-in failure with a stable code, caused by the request (401).
pub(crate) fn refused(code: &'static str, message: impl Into<String>) -> Error {
    Error::SsoFailed {
        code,
        message: message.into(),
        upstream: false,
    }
}

/// A sign-in failure caused by the provider (502).
pub(crate) fn upstream(code: &'static str, message: impl Into<String>) -> Error {
    Error::SsoFailed {
        code,
        message: message.into(),
        upstream: true,
    }
}
