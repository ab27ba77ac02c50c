//! Sign-in, refresh, sign-out, request authentication and session management.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::throttle::{self, Policy};
use super::{random_token, token_hash, PasswordHasher, TokenError, TokenIssuer};
use crate::audit::{Auditor, Event, Outcome};
use crate::domain::{Email, Password, SessionId, UserId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::rbac::{Action, Actor, Resource};
use crate::store::sessions::{self, SessionRecord};
use crate::store::{users, Store, Tx};

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

/// Signs people in and authenticates their requests.
pub struct AuthService {
    store: Store,
    hasher: PasswordHasher,
    tokens: TokenIssuer,
    policy: Policy,
    session_lifetime: Duration,
    auditor: Auditor,
}

enum RefreshOutcome {
    Rotated { user: UserId, session: SessionId },
    Reused,
    Dead,
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
        }
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
        let keys = throttle::keys(&self.policy, &index, client.ip);
        let now = Utc::now();
        let mut conn = self.store.reader().await?;
        let locked = throttle::locked(&mut conn.conn(), &keys, now).await?;
        let user = users::by_email_index(&mut conn.conn(), &index).await?;
        drop(conn);
        let known = user.as_ref().map(|u| u.id);
        let attempt = |outcome, reason: &str| {
            let event = Event::anonymous("auth.sign_in", outcome, client.ip)
                .details(serde_json::json!({ "reason": reason }));
            match known {
                Some(id) => event.target("user", id).subject(id),
                None => event,
            }
        };
        if let Some(retry_after_seconds) = locked {
            self.auditor
                .record_alone(&self.store, attempt(Outcome::Denied, "locked"))
                .await?;
            return Err(Error::Throttled {
                retry_after_seconds,
            });
        }
        let stored_hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let verified = self.hasher.verify(stored_hash, &password).await?;
        let user = match user {
            Some(user) if verified && user.status == "active" => user,
            _ => {
                let policy = self.policy;
                let auditor = self.auditor.clone();
                let failed = attempt(Outcome::Failed, "invalid_credentials");
                let ip = client.ip;
                let locked = self
                    .store
                    .write(move |tx: &mut Tx| {
                        Box::pin(async move {
                            let locked = throttle::record_failure(
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
        let session_id = SessionId::generate();
        let refresh = random_token();
        let refresh_hash = token_hash(&refresh);
        let expires_at = now + self.session_lifetime;
        let auditor = self.auditor.clone();
        let signed_in = attempt(Outcome::Allowed, "password")
            .as_user(user_id, Some(session_id.to_string()))
            .target("session", session_id);
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    throttle::clear_account(&mut tx.conn(), &keys).await?;
                    auditor.record(tx, signed_in).await?;
                    let record = SessionRecord {
                        id: session_id,
                        user_id,
                        auth_method: "password".into(),
                        user_agent: client.user_agent,
                        ip: client.ip.map(|ip| ip.to_string()),
                        created_at: now,
                        last_used_at: now,
                        expires_at,
                        revoked_at: None,
                        revoked_reason: None,
                    };
                    sessions::insert(&mut tx.conn(), &record).await?;
                    sessions::insert_refresh_token(&mut tx.conn(), &refresh_hash, session_id, now)
                        .await?;
                    tx.emit(DomainEvent::SessionStarted {
                        user_id,
                        session_id,
                    });
                    Ok::<_, Error>(())
                })
            })
            .await?;
        self.pair(user_id, session_id, refresh)
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
        match status {
            Some(s)
                if s.user_id == user
                    && s.revoked_at.is_none()
                    && s.expires_at > Utc::now()
                    && s.user_status == "active" =>
            {
                Ok(Actor::user(user, session, ip))
            }
            _ => Err(Error::unauthenticated(
                "session_revoked",
                "the session has ended; sign in again",
            )),
        }
    }

    /// Ends the actor's current session.
    pub async fn logout(&self, actor: &Actor) -> Result<(), Error> {
        let (Some(user), Some(session)) = (actor.user_id(), actor.session_id()) else {
            return Err(Error::unauthenticated("unauthenticated", "sign in first"));
        };
        self.revoke_session(actor, user, session, "logout").await
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
        Ok(list
            .into_iter()
            .map(|s| SessionView {
                current: Some(s.id) == current,
                id: s.id,
                auth_method: s.auth_method,
                user_agent: s.user_agent,
                ip: s.ip,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                expires_at: s.expires_at,
            })
            .collect())
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
