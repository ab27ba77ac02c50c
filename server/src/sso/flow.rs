//! The sign-in flow: authorization code with PKCE (S256), state and nonce.
//!
//! `start_login` stores the state's hash, the nonce and the PKCE verifier with a short expiry,
//! bound to a random browser cookie, and returns the provider's authorization URL. The
//! callback takes that pending sign-in exactly once (a replayed callback finds nothing),
//! checks the browser cookie, exchanges the code with the verifier, verifies the ID token
//! (signature with the provider's keys, issuer, audience, expiry, nonce), reads the userinfo
//! endpoint, and then in one write resolves the account, re-applies claim mapping and starts
//! the session.

use chrono::{Duration, Utc};
use openidconnect::core::{CoreAuthenticationFlow, CoreGenderClaim};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, CsrfToken, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RequestTokenError, Scope, TokenResponse, UserInfoClaims,
};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::provider::{ExtraClaims, Provider};
use super::{claims, refused, upstream, SsoService};
use crate::accounts::{insert_profile, Profile};
use crate::audit::{Event, Outcome};
use crate::auth::{random_token, token_hash, ClientInfo, SessionOrigin, TokenPair};
use crate::crypto::Keyring;
use crate::domain::{DisplayName, Email, UserId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::store::sso::{self as sso_store, LoginStateRecord};
use crate::store::users;
use crate::store::Tx;

/// How long a begun sign-in may take before its callback is refused.
const LOGIN_MINUTES: i64 = 10;

/// The same, as the window of the per-address bound on begun sign-ins.
pub(super) const LOGIN_WINDOW: std::time::Duration =
    std::time::Duration::from_secs(LOGIN_MINUTES as u64 * 60);

/// Where to send the browser, and the cookie that binds the sign-in to it.
#[derive(Debug)]
pub struct LoginRedirect {
    /// The provider's authorization URL.
    pub url: String,
    /// Value of the browser-binding cookie.
    pub browser_token: String,
    /// Its lifetime in seconds.
    pub max_age_seconds: i64,
}

/// The query of the provider's redirect back to Concord.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    /// The authorization code.
    pub code: Option<String>,
    /// The state Concord sent.
    pub state: Option<String>,
    /// The provider's issuer (RFC 9207), when it sends one.
    pub iss: Option<String>,
    /// An error the provider reports instead of a code.
    pub error: Option<String>,
    /// Its description.
    pub error_description: Option<String>,
}

/// What the provider asserted about the person, after verification.
#[derive(Debug)]
pub(crate) struct Identity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub sid: Option<String>,
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub id_token: String,
}

impl SsoService {
    /// Begins a sign-in at `provider_id` for the client at `ip`: returns the provider URL to
    /// redirect to. An address that began its share of sign-ins lately is refused first.
    #[tracing::instrument(skip(self, ip))]
    pub async fn start_login(
        &self,
        provider_id: &str,
        ip: Option<std::net::IpAddr>,
    ) -> Result<LoginRedirect, Error> {
        let provider = self.provider(provider_id)?;
        if let Some(ip) = ip {
            if let Err(retry_after_seconds) = self.starts.admit(ip, std::time::Instant::now()) {
                tracing::info!("a client address began too many single sign-ins");
                return Err(Error::Busy {
                    code: "sso_busy",
                    message: "too many sign-ins were begun from your network lately; try again in a few minutes"
                        .into(),
                    retry_after_seconds,
                });
            }
        }
        match self.begin(provider).await {
            Ok(redirect) => Ok(redirect),
            // Shedding load writes nothing: a flood must not turn into audit rows.
            Err(err @ Error::Busy { .. }) => Err(err),
            Err(err) => Err(self.failed(provider_id, err).await),
        }
    }

    async fn begin(&self, provider: &Provider) -> Result<LoginRedirect, Error> {
        let metadata = provider.metadata(false).await?;
        let client = provider.client(&metadata);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in &provider.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let browser_token = random_token();
        let now = Utc::now();
        let cap = self.max_pending_sign_ins;
        let record = LoginStateRecord {
            state_hash: token_hash(state.secret()),
            provider: provider.config.id.clone(),
            browser_hash: token_hash(&browser_token),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            created_at: now,
            expires_at: now + Duration::minutes(LOGIN_MINUTES),
        };
        let stored = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    sso_store::delete_expired_login_states(&mut tx.conn(), now).await?;
                    // Anyone may begin a sign-in, so the pending ones are bounded.
                    if sso_store::count_login_states(&mut tx.conn()).await? >= cap {
                        return Ok(false);
                    }
                    sso_store::insert_login_state(&mut tx.conn(), &record).await?;
                    Ok::<_, Error>(true)
                })
            })
            .await?;
        if !stored {
            tracing::warn!(
                cap,
                "too many pending single sign-ins; a new one is refused"
            );
            return Err(Error::Busy {
                code: "sso_busy",
                message: "too many sign-ins are in progress right now; try again in a minute"
                    .into(),
                retry_after_seconds: 60,
            });
        }
        Ok(LoginRedirect {
            url: url.to_string(),
            browser_token,
            max_age_seconds: LOGIN_MINUTES * 60,
        })
    }

    /// Finishes a sign-in at `provider_id` from the provider's redirect; starts a session.
    /// `browser_token` is the cookie set when the sign-in began.
    #[tracing::instrument(skip_all, fields(provider = provider_id))]
    pub async fn callback(
        &self,
        provider_id: &str,
        params: CallbackParams,
        browser_token: Option<String>,
        client: ClientInfo,
    ) -> Result<TokenPair, Error> {
        let provider = self.provider(provider_id)?;
        match self.finish(provider, params, browser_token, client).await {
            Ok(pair) => Ok(pair),
            Err(err) => Err(self.failed(provider_id, err).await),
        }
    }

    async fn finish(
        &self,
        provider: &Provider,
        params: CallbackParams,
        browser_token: Option<String>,
        client: ClientInfo,
    ) -> Result<TokenPair, Error> {
        let Some(state) = params.state.filter(|s| !s.is_empty() && s.len() <= 512) else {
            return Err(refused(
                "sso_state_mismatch",
                "the sign-in response carries no state",
            ));
        };
        // Taken before anything else, so a replayed or failed callback can never be retried.
        let state_hash = token_hash(&state);
        let pending = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(
                    async move { sso_store::take_login_state(&mut tx.conn(), &state_hash).await },
                )
            })
            .await?;
        let mismatch = || {
            refused(
                "sso_state_mismatch",
                "this sign-in response does not belong to a sign-in begun here; start again",
            )
        };
        let pending = pending.ok_or_else(mismatch)?;
        if pending.provider != provider.config.id {
            return Err(mismatch());
        }
        let browser_ok =
            browser_token.is_some_and(|t| bool::from(token_hash(&t).ct_eq(&pending.browser_hash)));
        if !browser_ok {
            return Err(mismatch());
        }
        if pending.expires_at < Utc::now() {
            return Err(refused(
                "sso_state_expired",
                "the sign-in took too long; start again",
            ));
        }
        if let Some(error) = params.error {
            tracing::info!(%error, description = ?params.error_description, "provider refused the sign-in");
            return Err(refused(
                "sso_provider_refused",
                format!("the identity provider did not sign you in ({error})"),
            ));
        }
        let Some(code) = params.code.filter(|c| !c.is_empty()) else {
            return Err(refused(
                "sso_code_missing",
                "the sign-in response carries no code",
            ));
        };
        let metadata = provider.metadata(false).await?;
        if let Some(iss) = params.iss {
            if iss != metadata.issuer().as_str() {
                return Err(refused(
                    "sso_wrong_issuer",
                    "the sign-in response comes from another issuer",
                ));
            }
        }
        let identity = self.exchange(provider, &metadata, code, pending).await?;
        self.sign_in(provider, identity, client).await
    }

    async fn exchange(
        &self,
        provider: &Provider,
        metadata: &openidconnect::ProviderMetadataWithLogout,
        code: String,
        pending: LoginStateRecord,
    ) -> Result<Identity, Error> {
        let client = provider.client(metadata);
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|_| upstream("sso_provider_misconfigured", "the identity provider has no token endpoint"))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
            .request_async(&provider.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => {
                    tracing::info!(error = %r, "provider refused the code");
                    refused(
                        "sso_code_rejected",
                        "the identity provider refused the sign-in code (used already, expired or not ours)",
                    )
                }
                other => {
                    tracing::warn!(error = %other, "token exchange failed");
                    upstream(
                        "sso_provider_unavailable",
                        "the identity provider did not answer the code exchange",
                    )
                }
            })?;
        let id_token = response.id_token().ok_or_else(|| {
            upstream(
                "sso_id_token_missing",
                "the identity provider sent no ID token",
            )
        })?;
        let nonce = Nonce::new(pending.nonce);
        let verified = {
            let verifier = client.id_token_verifier();
            match id_token.claims(&verifier, &nonce) {
                Err(ClaimsVerificationError::SignatureVerification(_)) => {
                    // The provider may have rotated its keys since we fetched them.
                    let fresh = provider.metadata(true).await?;
                    let client = provider.client(&fresh);
                    let verifier = client.id_token_verifier();
                    id_token.claims(&verifier, &nonce).cloned()
                }
                other => other.cloned(),
            }
        }
        .map_err(id_token_error)?;
        let mut identity = Identity {
            subject: verified.subject().to_string(),
            email: verified.email().map(|e| e.to_string()),
            email_verified: verified.email_verified().unwrap_or(false),
            name: verified
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
            sid: verified
                .additional_claims()
                .0
                .get("sid")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            extra: verified.additional_claims().0.clone(),
            id_token: id_token.to_string(),
        };
        if client.user_info_url().is_some() {
            let info: UserInfoClaims<ExtraClaims, CoreGenderClaim> = client
                .user_info(
                    response.access_token().clone(),
                    Some(verified.subject().clone()),
                )
                .map_err(|_| upstream("sso_provider_misconfigured", "no userinfo endpoint"))?
                .request_async(&provider.http)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "userinfo request failed");
                    upstream(
                        "sso_userinfo_failed",
                        "the identity provider did not return the account's details",
                    )
                })?;
            if let Some(email) = info.email() {
                identity.email = Some(email.to_string());
                identity.email_verified = info.email_verified().unwrap_or(false);
            }
            if let Some(name) = info.name().and_then(|n| n.get(None)) {
                identity.name = Some(name.to_string());
            }
            for (k, v) in &info.additional_claims().0 {
                identity.extra.insert(k.clone(), v.clone());
            }
        }
        Ok(identity)
    }

    /// Resolves (or provisions) the account, re-applies claim mapping and starts the session,
    /// all in one write.
    async fn sign_in(
        &self,
        provider: &Provider,
        identity: Identity,
        client: ClientInfo,
    ) -> Result<TokenPair, Error> {
        let provider_id = provider.config.id.clone();
        let link_by_email = provider.config.allow_email_linking;
        let jit = provider.config.jit_provisioning;
        let source = provider.membership_source();
        let grants =
            claims::desired_grants(provider.config.claim_mapping.as_ref(), &identity.extra);
        let auditor = self.auditor.clone();
        let client_ip = client.ip;
        let pending = self.auth.begin_session(
            SessionOrigin {
                auth_method: provider.auth_method(),
                sso_sid: identity.sid.clone(),
                sso_id_token: Some(identity.id_token.clone()),
            },
            client,
        );
        let started = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let now = Utc::now();
                    let (user_id, created) = resolve_account(
                        tx,
                        auditor.keyring(),
                        &provider_id,
                        &identity,
                        link_by_email,
                        jit,
                    )
                    .await?;
                    claims::apply(tx, &auditor, user_id, &source, &grants).await?;
                    let started = pending.store(tx, user_id).await?;
                    sso_store::touch_identity(
                        &mut tx.conn(),
                        &provider_id,
                        &identity.subject,
                        None,
                        now,
                    )
                    .await?;
                    let signed_in = Event::anonymous("auth.sign_in", Outcome::Allowed, client_ip)
                        .as_user(user_id, Some(started.session_id().to_string()))
                        .target("session", started.session_id())
                        .details(serde_json::json!({
                            "method": format!("oidc:{provider_id}"),
                            "account_created": created,
                        }));
                    auditor.record(tx, signed_in).await?;
                    tx.emit(DomainEvent::SsoSignedIn {
                        user_id,
                        session_id: started.session_id(),
                        provider: provider_id,
                        account_created: created,
                    });
                    Ok::<_, Error>(started)
                })
            })
            .await?;
        self.auth.token_pair(started)
    }
}

/// The account behind a verified identity: linked already, linked now by verified email (if
/// allowed), or created (if provisioning is on). Returns it and whether it was created.
async fn resolve_account(
    tx: &mut Tx,
    keyring: &Keyring,
    provider: &str,
    identity: &Identity,
    link_by_email: bool,
    jit: bool,
) -> Result<(UserId, bool), Error> {
    let now = Utc::now();
    if let Some(link) = sso_store::identity(&mut tx.conn(), provider, &identity.subject).await? {
        let user = users::by_id(&mut tx.conn(), link.user_id)
            .await?
            .ok_or(Error::NotFound("account"))?;
        if user.status != "active" {
            return Err(refused("sso_account_disabled", "this account is disabled"));
        }
        return Ok((user.id, false));
    }
    let email = identity
        .email
        .as_deref()
        .map(|e| Email::parse("email", e))
        .transpose()
        .map_err(|_| {
            refused(
                "sso_email_invalid",
                "the identity provider sent an unusable email address",
            )
        })?;
    let existing = match &email {
        Some(email) => {
            let index = keyring.email_index(&email.lookup_key());
            users::by_email_index(&mut tx.conn(), &index).await?
        }
        None => None,
    };
    if let Some(user) = existing {
        // Linking by email trusts the provider's word for who holds the address, so it is
        // allowed only where ours agrees (an administrator entered it or a provider verified
        // it) and never for a deployment-wide role (system admins, compliance officers).
        let linkable = link_by_email
            && identity.email_verified
            && user.email_verified
            && user.system_role_id.is_none();
        if !linkable {
            if link_by_email {
                tracing::info!(
                    provider_verified = identity.email_verified,
                    account_verified = user.email_verified,
                    system_role = user.system_role_id.is_some(),
                    "email linking refused"
                );
            }
            return Err(refused(
                "sso_account_exists",
                "an account with this email exists but is not linked to this identity provider; \
                 sign in with your password or ask an administrator",
            ));
        }
        if user.status != "active" {
            return Err(refused("sso_account_disabled", "this account is disabled"));
        }
        sso_store::insert_identity(
            &mut tx.conn(),
            provider,
            &identity.subject,
            user.id,
            None,
            now,
        )
        .await?;
        tx.emit(DomainEvent::SsoIdentityLinked {
            user_id: user.id,
            provider: provider.to_owned(),
        });
        return Ok((user.id, false));
    }
    if !jit {
        return Err(refused(
            "sso_account_unknown",
            "no account is linked to this identity; ask an administrator to create one",
        ));
    }
    let Some(email) = email else {
        return Err(refused(
            "sso_email_missing",
            "the identity provider did not share an email address, which a new account needs",
        ));
    };
    let fallback = email
        .as_str()
        .split('@')
        .next()
        .unwrap_or("user")
        .to_owned();
    let name = identity
        .name
        .as_deref()
        .and_then(|n| DisplayName::parse("name", n).ok())
        .or_else(|| DisplayName::parse("name", &fallback).ok())
        .ok_or_else(|| {
            refused(
                "sso_name_invalid",
                "the identity provider sent an unusable name",
            )
        })?;
    let user_id = UserId::generate();
    let profile = Profile {
        email: &email,
        display_name: &name,
        email_verified: identity.email_verified,
    };
    insert_profile(tx, keyring, user_id, profile, None, None, None)
        .await
        .map_err(|e| match e {
            Error::Conflict { .. } => refused(
                "sso_account_exists",
                "an account with this email already exists",
            ),
            other => other,
        })?;
    sso_store::insert_identity(
        &mut tx.conn(),
        provider,
        &identity.subject,
        user_id,
        None,
        now,
    )
    .await?;
    tx.emit(DomainEvent::SsoIdentityLinked {
        user_id,
        provider: provider.to_owned(),
    });
    Ok((user_id, true))
}

fn id_token_error(err: ClaimsVerificationError) -> Error {
    tracing::info!(error = %err, "ID token refused");
    match err {
        ClaimsVerificationError::InvalidNonce(_) => refused(
            "sso_nonce_mismatch",
            "the ID token was not issued for this sign-in (nonce mismatch)",
        ),
        ClaimsVerificationError::Expired(_) => refused(
            "sso_token_expired",
            "the ID token has expired; sign in again",
        ),
        ClaimsVerificationError::InvalidAudience(_) => refused(
            "sso_wrong_audience",
            "the ID token was issued for another application",
        ),
        ClaimsVerificationError::InvalidIssuer(_) => {
            refused("sso_wrong_issuer", "the ID token comes from another issuer")
        }
        ClaimsVerificationError::SignatureVerification(_) => refused(
            "sso_bad_signature",
            "the ID token's signature does not verify with the provider's keys",
        ),
        _ => refused("sso_invalid_id_token", "the ID token is not valid"),
    }
}
