//! A person changes their own password.
//!
//! The current password is checked like a sign-in: the attempt is counted against the
//! account's and the address's sign-in throttling before it is hashed (so a stolen session
//! cannot guess faster than the sign-in form allows), a wrong one confirms the failure and
//! may lock the account, and hashing runs on the blocking pool through the shared, capped
//! [`super::PasswordHasher`]. The new password follows the password policy. Storing its hash
//! and revoking every other session of the person (the one making the request stays) is one
//! audited write (`user.password_changed`).

use chrono::Utc;

use super::service::AuthService;
use super::throttle;
use crate::audit::{Event, Outcome};
use crate::crypto::{Aad, Scope};
use crate::domain::{Email, Password};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::rbac::{Action, Actor, Resource};
use crate::store::{sessions, users, Tx};

/// Why the other sessions end (`sessions.revoked_reason`, `SessionsRevoked`).
const REASON: &str = "password_changed";

impl AuthService {
    /// Replaces the actor's password after checking `current`; ends every other session of
    /// theirs. Returns how many sessions were ended.
    #[tracing::instrument(skip_all, fields(user = ?actor.user_id()))]
    pub async fn change_password(
        &self,
        actor: &Actor,
        current: String,
        new: String,
    ) -> Result<usize, Error> {
        let (Some(user_id), Some(session)) = (actor.user_id(), actor.session_id()) else {
            return Err(Error::unauthenticated("unauthenticated", "sign in first"));
        };
        let current = Password::parse_attempt("current_password", current)?;
        let new = Password::parse_new("new_password", new)?;
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::UpdateAccount,
                Resource::Account(user_id),
            )
            .await?;
        let user = users::by_id(&mut conn.conn(), user_id)
            .await?
            .ok_or(Error::NotFound("user"))?;
        let Some(stored_hash) = user.password_hash.clone() else {
            return Err(Error::refused(
                "password_not_set",
                "this account signs in through single sign-on and has no password to change",
            ));
        };
        let keyring = self.auditor.keyring();
        let row = user_id.to_string();
        let email = match user.email_enc.as_deref() {
            Some(sealed) => {
                keyring
                    .decrypt_text(
                        &mut conn.conn(),
                        &Scope::User(user_id),
                        Aad {
                            table: "users",
                            row: &row,
                            column: "email",
                        },
                        sealed,
                    )
                    .await?
            }
            None => String::new(),
        };
        drop(conn);
        let lookup = Email::parse("email", &email)
            .map(|e| e.lookup_key())
            .unwrap_or_else(|_| email.to_lowercase());
        let keys = throttle::keys(keyring, &self.policy, &lookup, actor.ip);

        // Counted before the hash is checked, as a sign-in is.
        let policy = self.policy;
        let auditor = self.auditor.clone();
        let reserved = keys.clone();
        let refused = Event::by(actor, "user.password_change", Outcome::Denied)
            .target("user", user_id)
            .details(serde_json::json!({ "reason": "locked" }));
        let locked = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let locked =
                        throttle::reserve(&mut tx.conn(), &policy, &reserved, Utc::now()).await?;
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

        if !self.hasher.verify(Some(stored_hash), &current).await? {
            let auditor = self.auditor.clone();
            let failed = Event::by(actor, "user.password_change", Outcome::Failed)
                .target("user", user_id)
                .details(serde_json::json!({ "reason": "current_password_incorrect" }));
            let keys = keys.clone();
            self.store
                .write(move |tx: &mut Tx| {
                    Box::pin(async move {
                        throttle::confirm_failure(&mut tx.conn(), &policy, &keys, Utc::now())
                            .await?;
                        auditor.record(tx, failed).await?;
                        Ok::<_, Error>(())
                    })
                })
                .await?;
            return Err(Error::refused(
                "current_password_incorrect",
                "the current password is not correct",
            ));
        }

        let hash = self.hasher.hash(&new).await?;
        let actor = actor.clone();
        let auditor = self.auditor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    auditor
                        .authorize(
                            tx,
                            &actor,
                            Action::UpdateAccount,
                            Resource::Account(user_id),
                        )
                        .await?;
                    throttle::release(&mut tx.conn(), &keys).await?;
                    let now = Utc::now();
                    if !users::set_password_hash(&mut tx.conn(), user_id, &hash, now).await? {
                        return Err(Error::NotFound("user"));
                    }
                    let revoked =
                        sessions::revoke_all_except(&mut tx.conn(), user_id, session, now, REASON)
                            .await?;
                    let count = revoked.len();
                    auditor
                        .record(
                            tx,
                            Event::by(&actor, "user.password_changed", Outcome::Allowed)
                                .target("user", user_id)
                                .details(serde_json::json!({ "sessions_revoked": count })),
                        )
                        .await?;
                    if count > 0 {
                        tx.emit(DomainEvent::SessionsRevoked {
                            user_id,
                            sessions: revoked,
                            reason: REASON.into(),
                        });
                    }
                    Ok::<_, Error>(count)
                })
            })
            .await
    }
}
