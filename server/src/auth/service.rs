//! Sign-in, refresh, sign-out, request authentication and session management.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::activity::Activity;
use super::throttle::{self, Policy};
use super::{random_token, token_hash, PasswordHasher, TokenError, TokenIssuer};
use base64::Engine;

use crate::audit::{Auditor, Event, Outcome};
use crate::crypto::{Aad, Keyring, Scope};
use crate::domain::{Email, Password, SessionId, UserId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::rbac::{builtin, Action, Actor, Resource};
use crate::store::sessions::{self, SessionRecord};
use crate::store::{sso, users, Store, Tx};

fn id_token_aad(row: &str) -> Aad<'_> {
    Aad {
        table: "sessions",
        row,
        column: "sso_id_token",
    }
}

/// Where a request came from, kept with the session.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    /// Client address.
    pub ip: Option<IpAddr>,
    /// User-Agent header, truncated.
    pub user_agent: Option<String>,
}

/// What a successful sign-in or refresh returns.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// Short-lived bearer token for API calls.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Opaque token to get a new pair; valid once.
    pub refresh_token: String,
    /// The session this pair belongs to.
    pub session_id: SessionId,
    /// The signed-in user.
    pub user_id: UserId,
}

/// A session as its owner sees it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// Its id.
    pub id: SessionId,
    /// How it began.
    pub auth_method: String,
    /// Client at sign-in.
    pub user_agent: Option<String>,
    /// Address at sign-in.
    pub ip: Option<String>,
    /// Sign-in time.
    pub created_at: DateTime<Utc>,
    /// Last refresh.
    pub last_used_at: DateTime<Utc>,
    /// Hard end.
    pub expires_at: DateTime<Utc>,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// How a sign-in whose password was right ends.
enum SignIn {
    /// A session began.
    Started(StartedSession),
    /// The account must sign in through its identity provider.
    SsoRequired,
    /// A lock arrived while the password was being checked; retry after these seconds.
    Locked(u64),
}

/// Signs people in and authenticates their requests.
pub struct AuthService {
    pub(super) store: Store,
    pub(super) hasher: PasswordHasher,
    tokens: TokenIssuer,
    pub(super) policy: Policy,
    session_lifetime: Duration,
    pub(super) auditor: Auditor,
    activity: Activity,
}

/// Why a session ended for inactivity, as the client is told.
pub const IDLE_TIMEOUT: &str = "session_idle_timeout";
/// The reason an idle session is revoked with (`sessions.revoked_reason`, `SessionsRevoked`).
pub const IDLE_REASON: &str = "idle_timeout";

fn idle_timeout() -> Error {
    Error::unauthenticated(
        IDLE_TIMEOUT,
        "the session ended after a period without activity; sign in again",
    )
}

/// When the person was last active in a session: the newest of what this process saw, what
/// storage holds and the sign-in.
fn last_active(
    seen: Option<DateTime<Utc>>,
    stored: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
) -> DateTime<Utc> {
    [seen, stored]
        .into_iter()
        .flatten()
        .fold(created, DateTime::max)
}

/// Ends `session` of `user` for inactivity inside `tx` (automatic logoff): revoked as
/// [`IDLE_REASON`], audited as `session.idle_logoff`, its sockets closed through
/// `SessionsRevoked`. False if it had already ended.
pub async fn log_off_idle(
    tx: &mut Tx,
    auditor: &Auditor,
    user: UserId,
    session: SessionId,
    last_active: DateTime<Utc>,
    limit: Duration,
) -> Result<bool, Error> {
    let now = Utc::now();
    if !sessions::revoke(&mut tx.conn(), session, now, IDLE_REASON).await? {
        return Ok(false);
    }
    auditor
        .record(
            tx,
            Event::by(&Actor::system(), "session.idle_logoff", Outcome::Allowed)
                .target("session", session)
                .subject(user)
                .details(serde_json::json!({
                    "user": user,
                    "last_active_at": last_active,
                    "idle_seconds": (now - last_active).num_seconds(),
                    "limit_seconds": limit.num_seconds(),
                })),
        )
        .await?;
    tx.emit(DomainEvent::SessionsRevoked {
        user_id: user,
        sessions: vec![session],
        reason: IDLE_REASON.into(),
    });
    Ok(true)
}

/// How a session began: the method kept with it and, for single sign-on, the provider's session.
#[derive(Clone, Debug)]
pub struct SessionOrigin {
    /// `password` or `oidc:<provider>`.
    pub auth_method: String,
    /// The provider's session id, so a back-channel logout can find this session.
    pub sso_sid: Option<String>,
    /// The provider's ID token, the `id_token_hint` of a later provider logout.
    pub sso_id_token: Option<String>,
}

impl SessionOrigin {
    /// A password sign-in.
    pub fn password() -> SessionOrigin {
        SessionOrigin {
            auth_method: "password".into(),
            sso_sid: None,
            sso_id_token: None,
        }
    }
}

/// A session prepared by [`AuthService::begin_session`], not stored yet.
pub struct PendingSession {
    keyring: Keyring,
    id: SessionId,
    refresh: String,
    origin: SessionOrigin,
    client: ClientInfo,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// A stored session and its first refresh token; valid once its write commits.
pub struct StartedSession {
    user_id: UserId,
    session_id: SessionId,
    refresh: String,
}

impl StartedSession {
    /// The new session's id.
    pub fn session_id(&self) -> SessionId {
        self.session_id
    }
}

impl PendingSession {
    /// The id the session will have.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// Stores the session for `user` with its first refresh token inside `tx` and emits
    /// [`DomainEvent::SessionStarted`].
    pub async fn store(self, tx: &mut Tx, user: UserId) -> Result<StartedSession, Error> {
        // The provider's ID token carries personal claims: kept only encrypted, for the
        // `id_token_hint` of a later logout at the provider.
        let sso_id_token = match &self.origin.sso_id_token {
            Some(token) => {
                let row = self.id.to_string();
                let sealed = self
                    .keyring
                    .encrypt(tx, &Scope::User(user), id_token_aad(&row), token.as_bytes())
                    .await?;
                Some(base64::engine::general_purpose::STANDARD.encode(sealed))
            }
            None => None,
        };
        let client = super::session_client::seal(
            tx,
            &self.keyring,
            user,
            self.id,
            self.client.user_agent.as_deref(),
            self.client.ip.map(|ip| ip.to_string()).as_deref(),
        )
        .await?;
        let record = SessionRecord {
            id: self.id,
            user_id: user,
            auth_method: self.origin.auth_method,
            user_agent_enc: client.user_agent_enc,
            ip_enc: client.ip_enc,
            created_at: self.now,
            last_used_at: self.now,
            expires_at: self.expires_at,
            revoked_at: None,
            revoked_reason: None,
            sso_sid: self.origin.sso_sid,
            sso_id_token,
        };
        sessions::insert(&mut tx.conn(), &record).await?;
        sessions::insert_refresh_token(
            &mut tx.conn(),
            &token_hash(&self.refresh),
            self.id,
            self.now,
        )
        .await?;
        tx.emit(DomainEvent::SessionStarted {
            user_id: user,
            session_id: self.id,
        });
        Ok(StartedSession {
            user_id: user,
            session_id: self.id,
            refresh: self.refresh,
        })
    }
}

enum RefreshOutcome {
    Rotated { user: UserId, session: SessionId },
    Reused,
    Dead,
    Idle,
}

impl AuthService {
    /// A service over `store`.
    pub fn new(
        store: Store,
        hasher: PasswordHasher,
        tokens: TokenIssuer,
        config: &crate::config::AuthConfig,
        auditor: Auditor,
    ) -> AuthService {
        let window = Duration::seconds(config.lockout_seconds as i64);
        AuthService {
            store,
            hasher,
            tokens,
            policy: Policy {
                account_threshold: i64::from(config.lockout_threshold),
                ip_threshold: i64::from(config.ip_lockout_threshold),
                window,
            },
            session_lifetime: Duration::days(config.session_days as i64),
            auditor,
            activity: Activity::default(),
        }
    }

    /// The activity seen in sessions and the idle periods in force (automatic logoff).
    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    /// The auditor, for the logoff sweep's writes.
    pub fn auditor(&self) -> &Auditor {
        &self.auditor
    }

    /// The password hasher (shared with account creation).
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// Signs in with email and password; starts a session.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        email: &str,
        password: String,
        client: ClientInfo,
    ) -> Result<TokenPair, Error> {
        let email = Email::parse("email", email)?;
        let password = Password::parse_attempt("password", password)?;
        let index = self.auditor.keyring().email_index(&email.lookup_key());
        let keys = throttle::keys(
            self.auditor.keyring(),
            &self.policy,
            &email.lookup_key(),
            client.ip,
        );
        let mut conn = self.store.reader().await?;
        let user = users::by_email_index(&mut conn.conn(), &index).await?;
        drop(conn);
        let known = user.as_ref().map(|u| u.id);
        let client_ip = client.ip;
        let attempt = move |outcome, reason: &str| {
            let event = Event::anonymous("auth.sign_in", outcome, client_ip)
                .details(serde_json::json!({ "reason": reason }));
            match known {
                Some(id) => event.target("user", id).subject(id),
                None => event,
            }
        };
        // The attempt is counted before the password is hashed, in the single write path: a
        // burst of parallel guesses is counted one by one, and those past the threshold are
        // refused here without being evaluated.
        let policy = self.policy;
        let auditor = self.auditor.clone();
        let reserved_keys = keys.clone();
        let refused = attempt(Outcome::Denied, "locked");
        let locked = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let locked =
                        throttle::reserve(&mut tx.conn(), &policy, &reserved_keys, Utc::now())
                            .await?;
                    if locked.is_some() {
                        auditor.record(tx, refused).await?;
                    }
                    Ok::<_, Error>(locked)
                })
            })
            .await?;
        if let Some(retry_after_seconds) = locked {
            return Err(Error::Throttled {
                retry_after_seconds,
            });
        }
        let stored_hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let verified = self.hasher.verify(stored_hash, &password).await?;
        let user = match user {
            Some(user) if verified && user.status == "active" => user,
            _ => {
                let auditor = self.auditor.clone();
                let failed = attempt(Outcome::Failed, "invalid_credentials");
                let ip = client.ip;
                let locked = self
                    .store
                    .write(move |tx: &mut Tx| {
                        Box::pin(async move {
                            let locked = throttle::confirm_failure(
                                &mut tx.conn(),
                                &policy,
                                &keys,
                                Utc::now(),
                            )
                            .await?;
                            auditor.record(tx, failed).await?;
                            if locked {
                                let mut event =
                                    Event::anonymous("auth.lockout", Outcome::Allowed, ip).details(
                                        serde_json::json!({ "reason": "repeated_failures" }),
                                    );
                                if let Some(id) = known {
                                    event = event.target("user", id).subject(id);
                                }
                                auditor.record(tx, event).await?;
                            }
                            Ok::<_, Error>(locked)
                        })
                    })
                    .await?;
                if locked {
                    tracing::warn!("sign-in locked after repeated failures");
                }
                return Err(Error::InvalidCredentials);
            }
        };
        let user_id = user.id;
        let break_glass = user.system_role_id == Some(builtin::SYSTEM_ADMIN);
        let pending = self.begin_session(SessionOrigin::password(), client);
        let auditor = self.auditor.clone();
        let signed_in = attempt(Outcome::Allowed, "password")
            .as_user(user_id, Some(pending.id().to_string()))
            .target("session", pending.id());
        let sso_refused = attempt(Outcome::Denied, "sso_required").as_user(user_id, None);
        let lock_refused = attempt(Outcome::Denied, "locked").as_user(user_id, None);
        let ended = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    // A lock set while the password was being checked refuses even the
                    // right password.
                    if let Some(wait) = throttle::locked(&mut tx.conn(), &keys, Utc::now()).await? {
                        auditor.record(tx, lock_refused).await?;
                        return Ok::<_, Error>(SignIn::Locked(wait));
                    }
                    throttle::release(&mut tx.conn(), &keys).await?;
                    if sso::required_workspaces_of(&mut tx.conn(), user_id).await? > 0 {
                        if !break_glass {
                            auditor.record(tx, sso_refused).await?;
                            return Ok(SignIn::SsoRequired);
                        }
                        tracing::warn!(%user_id, "password sign-in of a system admin despite required single sign-on");
                    }
                    auditor.record(tx, signed_in).await?;
                    Ok(SignIn::Started(pending.store(tx, user_id).await?))
                })
            })
            .await?;
        let started = match ended {
            SignIn::Started(started) => started,
            SignIn::SsoRequired => return Err(Error::SsoRequired),
            SignIn::Locked(retry_after_seconds) => {
                return Err(Error::Throttled {
                    retry_after_seconds,
                })
            }
        };
        self.token_pair(started)
    }

    /// Prepares a new session begun by `origin`; store it with [`PendingSession::store`] inside
    /// a write, then turn the result into tokens with [`AuthService::token_pair`].
    pub fn begin_session(&self, origin: SessionOrigin, client: ClientInfo) -> PendingSession {
        let now = Utc::now();
        PendingSession {
            keyring: self.auditor.keyring().clone(),
            id: SessionId::generate(),
            refresh: random_token(),
            origin,
            client,
            now,
            expires_at: now + self.session_lifetime,
        }
    }

    /// Starts a session for `user` in a write of its own and returns its token pair.
    pub async fn start_session(
        &self,
        user: UserId,
        origin: SessionOrigin,
        client: ClientInfo,
    ) -> Result<TokenPair, Error> {
        let pending = self.begin_session(origin, client);
        let started = self
            .store
            .write(move |tx: &mut Tx| Box::pin(async move { pending.store(tx, user).await }))
            .await?;
        self.token_pair(started)
    }

    /// The token pair of a session stored (and committed) through [`PendingSession::store`].
    pub fn token_pair(&self, started: StartedSession) -> Result<TokenPair, Error> {
        self.pair(started.user_id, started.session_id, started.refresh)
    }

    /// Exchanges a refresh token for a new pair. A token used twice revokes its session.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, Error> {
        if refresh_token.is_empty() || refresh_token.len() > 256 {
            return Err(Error::unauthenticated(
                "invalid_refresh_token",
                "refresh token is not valid",
            ));
        }
        let hash = token_hash(refresh_token);
        let next = random_token();
        let next_hash = token_hash(&next);
        let auditor = self.auditor.clone();
        let activity = self.activity.clone();
        let outcome = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let now = Utc::now();
                    let Some(found) = sessions::refresh_token(&mut tx.conn(), &hash).await? else {
                        return Err(Error::unauthenticated(
                            "invalid_refresh_token",
                            "refresh token is not valid",
                        ));
                    };
                    let Some(status) = sessions::status(&mut tx.conn(), found.session_id).await?
                    else {
                        return Ok(RefreshOutcome::Dead);
                    };
                    let event = |action, outcome| {
                        Event::anonymous(action, outcome, None)
                            .as_user(status.user_id, Some(found.session_id.to_string()))
                            .target("session", found.session_id)
                    };
                    let reused = found.used_at.is_some()
                        || !sessions::use_refresh_token(&mut tx.conn(), &hash, now).await?;
                    if reused {
                        if sessions::revoke(
                            &mut tx.conn(),
                            found.session_id,
                            now,
                            "refresh_token_reused",
                        )
                        .await?
                        {
                            tx.emit(DomainEvent::SessionsRevoked {
                                user_id: status.user_id,
                                sessions: vec![found.session_id],
                                reason: "refresh_token_reused".into(),
                            });
                        }
                        auditor
                            .record(
                                tx,
                                event("auth.refresh_reuse", Outcome::Denied).details(
                                    serde_json::json!({ "consequence": "session_revoked" }),
                                ),
                            )
                            .await?;
                        return Ok(RefreshOutcome::Reused);
                    }
                    if status.revoked_reason.as_deref() == Some(IDLE_REASON) {
                        return Ok(RefreshOutcome::Idle);
                    }
                    // A refresh is the client's own doing, not the person's: it neither
                    // counts as activity nor outlives the idle period.
                    if status.revoked_at.is_none() {
                        if let Some(limit) = activity.limit(status.user_id) {
                            let last = last_active(
                                activity.seen(found.session_id),
                                status.last_active_at,
                                status.created_at,
                            );
                            if now - last > limit {
                                log_off_idle(
                                    tx,
                                    &auditor,
                                    status.user_id,
                                    found.session_id,
                                    last,
                                    limit,
                                )
                                .await?;
                                activity.forget(found.session_id);
                                return Ok(RefreshOutcome::Idle);
                            }
                        }
                    }
                    if status.revoked_at.is_some()
                        || status.expires_at <= now
                        || status.user_status != "active"
                    {
                        auditor
                            .record(tx, event("auth.refresh", Outcome::Failed))
                            .await?;
                        return Ok(RefreshOutcome::Dead);
                    }
                    auditor
                        .record(tx, event("auth.refresh", Outcome::Allowed))
                        .await?;
                    sessions::insert_refresh_token(
                        &mut tx.conn(),
                        &next_hash,
                        found.session_id,
                        now,
                    )
                    .await?;
                    sessions::touch(&mut tx.conn(), found.session_id, now).await?;
                    Ok(RefreshOutcome::Rotated {
                        user: status.user_id,
                        session: found.session_id,
                    })
                })
            })
            .await?;
        match outcome {
            RefreshOutcome::Rotated { user, session } => self.pair(user, session, next),
            RefreshOutcome::Reused => {
                tracing::warn!("refresh token reuse detected; session revoked");
                Err(Error::RefreshTokenReused)
            }
            RefreshOutcome::Dead => Err(Error::unauthenticated(
                "session_revoked",
                "the session has ended",
            )),
            RefreshOutcome::Idle => Err(idle_timeout()),
        }
    }

    fn pair(
        &self,
        user: UserId,
        session: SessionId,
        refresh_token: String,
    ) -> Result<TokenPair, Error> {
        let access_token = self
            .tokens
            .issue(user, session)
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(TokenPair {
            access_token,
            token_type: "Bearer",
            expires_in: self.tokens.lifetime_seconds(),
            refresh_token,
            session_id: session,
            user_id: user,
        })
    }

    /// Turns a bearer token into an actor, checking the session is still live.
    pub async fn authenticate(&self, bearer: &str, ip: Option<IpAddr>) -> Result<Actor, Error> {
        let claims = self.tokens.verify(bearer).map_err(|e| match e {
            TokenError::Expired => {
                Error::unauthenticated("token_expired", "the access token has expired; refresh it")
            }
            TokenError::Invalid(why) => {
                tracing::debug!(%why, "access token refused");
                Error::unauthenticated("invalid_token", "the access token is not valid")
            }
        })?;
        let session = SessionId(claims.sid);
        let user = UserId(claims.sub);
        let mut conn = self.store.reader().await?;
        let status = sessions::status(&mut conn.conn(), session).await?;
        drop(conn);
        let now = Utc::now();
        let status = match status {
            Some(s) if s.user_id == user && s.revoked_reason.as_deref() == Some(IDLE_REASON) => {
                return Err(idle_timeout())
            }
            Some(s)
                if s.user_id == user
                    && s.revoked_at.is_none()
                    && s.expires_at > now
                    && s.user_status == "active" =>
            {
                s
            }
            _ => {
                return Err(Error::unauthenticated(
                    "session_revoked",
                    "the session has ended; sign in again",
                ))
            }
        };
        if let Some(limit) = self.activity.limit(user) {
            let last = last_active(
                self.activity.seen(session),
                status.last_active_at,
                status.created_at,
            );
            if now - last > limit {
                let auditor = self.auditor.clone();
                self.store
                    .write(move |tx: &mut Tx| {
                        Box::pin(async move {
                            log_off_idle(tx, &auditor, user, session, last, limit).await
                        })
                    })
                    .await?;
                self.activity.forget(session);
                return Err(idle_timeout());
            }
        }
        Ok(Actor::user(user, session, ip))
    }

    /// Ends the actor's current session; returns how it began (its method and, for single
    /// sign-on, the provider's ID token) so the provider session can be ended too.
    pub async fn logout(&self, actor: &Actor) -> Result<SessionOrigin, Error> {
        let (Some(user), Some(session)) = (actor.user_id(), actor.session_id()) else {
            return Err(Error::unauthenticated("unauthenticated", "sign in first"));
        };
        let mut conn = self.store.reader().await?;
        let record = sessions::by_id(&mut conn.conn(), session).await?;
        let sso_id_token = match record.as_ref().and_then(|r| r.sso_id_token.as_deref()) {
            Some(stored) => {
                let row = session.to_string();
                let sealed = base64::engine::general_purpose::STANDARD
                    .decode(stored)
                    .map_err(|_| Error::Internal("stored ID token is not base64".into()))?;
                let keyring = self.auditor.keyring();
                let token = keyring
                    .decrypt_text(
                        &mut conn.conn(),
                        &Scope::User(user),
                        id_token_aad(&row),
                        &sealed,
                    )
                    .await?;
                Some(token)
            }
            None => None,
        };
        drop(conn);
        self.revoke_session(actor, user, session, "logout").await?;
        Ok(
            record.map_or_else(SessionOrigin::password, |r| SessionOrigin {
                auth_method: r.auth_method,
                sso_sid: r.sso_sid,
                sso_id_token,
            }),
        )
    }

    /// The live sessions of `owner`, for the owner or an admin.
    pub async fn list_sessions(
        &self,
        actor: &Actor,
        owner: UserId,
    ) -> Result<Vec<SessionView>, Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ManageSessions,
                Resource::Account(owner),
            )
            .await?;
        let list = sessions::list_active(&mut conn.conn(), owner, Utc::now()).await?;
        let current = actor.session_id();
        let mut out = Vec::with_capacity(list.len());
        for s in list {
            let (user_agent, ip) = super::session_client::open(
                self.auditor.keyring(),
                &mut conn.conn(),
                s.user_id,
                s.id,
                s.user_agent_enc.as_deref(),
                s.ip_enc.as_deref(),
            )
            .await?;
            out.push(SessionView {
                current: Some(s.id) == current,
                id: s.id,
                auth_method: s.auth_method,
                user_agent,
                ip,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                expires_at: s.expires_at,
            });
        }
        Ok(out)
    }

    /// Revokes one session of `owner`.
    pub async fn revoke_session(
        &self,
        actor: &Actor,
        owner: UserId,
        session: SessionId,
        reason: &'static str,
    ) -> Result<(), Error> {
        let actor = actor.clone();
        let auditor = self.auditor.clone();
        let done = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    auditor
                        .authorize(tx, &actor, Action::ManageSessions, Resource::Account(owner))
                        .await?;
                    let Some(record) = sessions::by_id(&mut tx.conn(), session).await? else {
                        return Ok(false);
                    };
                    if record.user_id != owner
                        || !sessions::revoke(&mut tx.conn(), session, Utc::now(), reason).await?
                    {
                        return Ok(false);
                    }
                    let action = if reason == "logout" {
                        "auth.sign_out"
                    } else {
                        "session.revoke"
                    };
                    auditor
                        .record(
                            tx,
                            Event::by(&actor, action, Outcome::Allowed)
                                .target("session", session)
                                .details(serde_json::json!({ "owner": owner, "reason": reason })),
                        )
                        .await?;
                    tx.emit(DomainEvent::SessionsRevoked {
                        user_id: owner,
                        sessions: vec![session],
                        reason: reason.into(),
                    });
                    Ok::<_, Error>(true)
                })
            })
            .await?;
        if done {
            Ok(())
        } else {
            Err(Error::NotFound("session"))
        }
    }

    /// Revokes every session of `owner`; returns how many.
    pub async fn revoke_all(
        &self,
        actor: &Actor,
        owner: UserId,
        reason: &'static str,
    ) -> Result<usize, Error> {
        let actor = actor.clone();
        let auditor = self.auditor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    auditor
                        .authorize(tx, &actor, Action::ManageSessions, Resource::Account(owner))
                        .await?;
                    let revoked =
                        sessions::revoke_all(&mut tx.conn(), owner, Utc::now(), reason).await?;
                    let count = revoked.len();
                    auditor
                        .record(
                            tx,
                            Event::by(&actor, "sessions.revoke_all", Outcome::Allowed)
                                .target("user", owner)
                                .subject(owner)
                                .details(serde_json::json!({ "revoked": count, "reason": reason })),
                        )
                        .await?;
                    if count > 0 {
                        tx.emit(DomainEvent::SessionsRevoked {
                            user_id: owner,
                            sessions: revoked,
                            reason: reason.into(),
                        });
                    }
                    Ok::<_, Error>(count)
                })
            })
            .await
    }
}
