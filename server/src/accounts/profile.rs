//! Changing a profile: a person's own display name and out-of-office period (self-service,
//! `account.update`), and the correction of someone's display name or email on their request
//! (GDPR Art. 16, `data_subjects.rectify`, with a reason).
//!
//! Each change is one write that authorizes, seals the new values under the person's key
//! (bound to the same places as at creation), writes, audits and emits
//! `DomainEvent::UserProfileChanged`, on which the hub tells the person and everyone sharing a
//! workspace with them to read the profile again (search's directory follows by itself: it
//! keys what it caches by the fingerprint of the profile's ciphertext). A rectification's
//! audit entry holds the values before and after, in details sealed under the subject's key,
//! so erasing that key later leaves them unreadable with the rest of the person's data.

use chrono::{Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{decrypt_profile, users_aad, AccountService, UserView};
use crate::audit::{Event, Outcome};
use crate::crypto::{Keyring, Scope};
use crate::domain::{DisplayName, Email, ParseError, UserId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::rbac::{Action, Actor, Resource};
use crate::store::users;
use crate::store::{Conn, Tx};

/// The longest out-of-office message, in characters.
pub const MAX_OUT_OF_OFFICE_MESSAGE: usize = 500;
/// The longest reason a rectification may give, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// A period away: from its first to its last day (at most a year later), with an optional
/// message for those who look the person up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutOfOffice {
    from: NaiveDate,
    until: NaiveDate,
    message: Option<String>,
}

impl OutOfOffice {
    /// Parses a period: `until` not before `from` and at most a year after it; the message
    /// trimmed (empty is none), at most 500 characters, no control characters but line breaks.
    pub fn parse(
        from: NaiveDate,
        until: NaiveDate,
        message: Option<&str>,
    ) -> Result<OutOfOffice, ParseError> {
        if until < from {
            return Err(ParseError::new(
                "out_of_office.until",
                "must not be before `from`",
            ));
        }
        if from
            .checked_add_months(Months::new(12))
            .is_none_or(|limit| until > limit)
        {
            return Err(ParseError::new(
                "out_of_office.until",
                "must be at most one year after `from`",
            ));
        }
        let message = message.map(str::trim).filter(|m| !m.is_empty());
        if let Some(m) = message {
            if m.chars().count() > MAX_OUT_OF_OFFICE_MESSAGE {
                return Err(ParseError::new(
                    "out_of_office.message",
                    format!("must be at most {MAX_OUT_OF_OFFICE_MESSAGE} characters"),
                ));
            }
            if m.chars().any(|c| c.is_control() && c != '\n') {
                return Err(ParseError::new(
                    "out_of_office.message",
                    "must not contain control characters",
                ));
            }
        }
        Ok(OutOfOffice {
            from,
            until,
            message: message.map(str::to_owned),
        })
    }
}

/// A person's out-of-office period as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct OutOfOfficeView {
    /// First day away.
    pub from: NaiveDate,
    /// Last day away.
    pub until: NaiveDate,
    /// What they left for those who look them up.
    pub message: Option<String>,
}

/// The sealed form of an out-of-office period (`users.out_of_office_enc`).
#[derive(Serialize, Deserialize)]
struct Stored {
    from: NaiveDate,
    until: NaiveDate,
    #[serde(default)]
    message: Option<String>,
}

/// Seals an out-of-office period for `user`'s row.
async fn seal_out_of_office(
    tx: &mut Tx,
    keyring: &Keyring,
    user: UserId,
    period: &OutOfOffice,
) -> Result<Vec<u8>, Error> {
    let stored = Stored {
        from: period.from,
        until: period.until,
        message: period.message.clone(),
    };
    let json = serde_json::to_vec(&stored).map_err(|e| Error::Internal(e.to_string()))?;
    let row = user.to_string();
    Ok(keyring
        .encrypt(
            tx,
            &Scope::User(user),
            users_aad(&row, "out_of_office"),
            &json,
        )
        .await?)
}

/// A person's out-of-office period, opened.
pub(crate) async fn open_out_of_office(
    keyring: &Keyring,
    conn: &mut Conn<'_>,
    user: UserId,
    sealed: Option<&[u8]>,
) -> Result<Option<OutOfOfficeView>, Error> {
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    let row = user.to_string();
    let json = keyring
        .decrypt(
            conn,
            &Scope::User(user),
            users_aad(&row, "out_of_office"),
            sealed,
        )
        .await?;
    let stored: Stored = serde_json::from_slice(&json)
        .map_err(|e| Error::Internal(format!("stored out-of-office period: {e}")))?;
    Ok(Some(OutOfOfficeView {
        from: stored.from,
        until: stored.until,
        message: stored.message,
    }))
}

/// What a person changes about themself (already parsed); `None` leaves a field as it is.
#[derive(Default)]
pub struct ProfileChange {
    /// A new display name.
    pub display_name: Option<DisplayName>,
    /// A new out-of-office period (`Some(None)` clears it).
    pub out_of_office: Option<Option<OutOfOffice>>,
}

/// A correction of someone's personal data on their request (already parsed).
pub struct Rectification {
    /// The corrected display name.
    pub display_name: Option<DisplayName>,
    /// The corrected email.
    pub email: Option<Email>,
    /// Why: the request it answers (required; kept in the audit log).
    pub reason: Option<String>,
}

fn reason_required() -> Error {
    Error::refused(
        "reason_required",
        "correcting someone's personal data needs a reason (the request it answers), \
         which the audit log keeps",
    )
}

impl AccountService {
    /// Changes the actor's own display name and out-of-office period; audited as
    /// `user.profile_updated` (which fields, never their values).
    #[tracing::instrument(skip_all, fields(user = ?actor.user_id()))]
    pub async fn update_own_profile(
        &self,
        actor: &Actor,
        change: ProfileChange,
    ) -> Result<UserView, Error> {
        let Some(id) = actor.user_id() else {
            return Err(Error::unauthenticated("unauthenticated", "sign in first"));
        };
        let actor = actor.clone();
        let auditor = self.auditor.clone();
        let updated = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    auditor
                        .authorize(tx, &actor, Action::UpdateAccount, Resource::Account(id))
                        .await?;
                    if users::by_id(&mut tx.conn(), id).await?.is_none() {
                        return Err(Error::NotFound("user"));
                    }
                    let keyring = auditor.keyring();
                    let row = id.to_string();
                    let now = Utc::now();
                    let mut fields = Vec::new();
                    if let Some(name) = &change.display_name {
                        let sealed = keyring
                            .encrypt(
                                tx,
                                &Scope::User(id),
                                users_aad(&row, "display_name"),
                                name.as_str().as_bytes(),
                            )
                            .await?;
                        users::set_display_name(&mut tx.conn(), id, &sealed, now).await?;
                        fields.push("display_name");
                    }
                    if let Some(period) = &change.out_of_office {
                        let sealed = match period {
                            Some(period) => {
                                Some(seal_out_of_office(tx, keyring, id, period).await?)
                            }
                            None => None,
                        };
                        users::set_out_of_office(&mut tx.conn(), id, sealed.as_deref(), now)
                            .await?;
                        fields.push("out_of_office");
                    }
                    if !fields.is_empty() {
                        auditor
                            .record(
                                tx,
                                Event::by(&actor, "user.profile_updated", Outcome::Allowed)
                                    .target("user", id)
                                    .subject(id)
                                    .details(json!({ "fields": fields })),
                            )
                            .await?;
                        tx.emit(DomainEvent::UserProfileChanged {
                            user_id: id,
                            by: Some(id),
                        });
                    }
                    users::by_id(&mut tx.conn(), id)
                        .await?
                        .ok_or(Error::NotFound("user"))
                })
            })
            .await?;
        self.view_of(updated).await
    }

    /// Corrects `subject`'s display name and/or email (GDPR Art. 16): compliance officers and
    /// system administrators (`data_subjects.rectify`), with a reason. A new email keeps the
    /// blind index the account is found by in step and must not be another account's (409
    /// `email_taken`); the officer vouches for it, so it counts as verified. Audited as
    /// `data_subject.rectified` with the values before and after, sealed under the subject's
    /// key.
    #[tracing::instrument(skip_all, fields(actor = ?actor.user_id(), subject = %subject))]
    pub async fn rectify(
        &self,
        actor: &Actor,
        subject: UserId,
        correction: Rectification,
    ) -> Result<UserView, Error> {
        let reason = correction
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned);
        let actor = actor.clone();
        let auditor = self.auditor.clone();
        let updated = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    auditor
                        .authorize(tx, &actor, Action::RectifyPersonalData, Resource::System)
                        .await?;
                    let Some(reason) = reason else {
                        return Err(reason_required());
                    };
                    if reason.chars().count() > MAX_REASON_CHARS {
                        return Err(ParseError::new(
                            "reason",
                            format!("must be at most {MAX_REASON_CHARS} characters"),
                        )
                        .into());
                    }
                    if correction.display_name.is_none() && correction.email.is_none() {
                        return Err(Error::refused(
                            "nothing_to_rectify",
                            "name the fields to correct: display_name, email",
                        ));
                    }
                    let Some(user) = users::by_id(&mut tx.conn(), subject).await? else {
                        return Err(Error::NotFound("user"));
                    };
                    // An erased account keeps no personal data, and its key is gone: nothing
                    // may be sealed under it again.
                    if user.erased_at.is_some() {
                        return Err(Error::gone(
                            "erased",
                            "this person was erased: there is no personal data left to correct",
                        ));
                    }
                    let keyring = auditor.keyring();
                    let (email_before, name_before) = decrypt_profile(
                        keyring,
                        &mut tx.conn(),
                        subject,
                        user.email_enc.as_deref(),
                        user.display_name_enc.as_deref(),
                    )
                    .await?;
                    let row = subject.to_string();
                    let scope = Scope::User(subject);
                    let now = Utc::now();
                    let mut changes = serde_json::Map::new();
                    if let Some(email) = &correction.email {
                        let index = keyring.email_index(&email.lookup_key());
                        if let Some(holder) = users::by_email_index(&mut tx.conn(), &index).await? {
                            if holder.id != subject {
                                return Err(Error::conflict(
                                    "email_taken",
                                    "an account with this email already exists",
                                ));
                            }
                        }
                        let sealed = keyring
                            .encrypt(
                                tx,
                                &scope,
                                users_aad(&row, "email"),
                                email.as_str().as_bytes(),
                            )
                            .await?;
                        users::set_email(&mut tx.conn(), subject, &sealed, &index, true, now)
                            .await
                            .map_err(super::map_email_taken)?;
                        changes.insert(
                            "email".into(),
                            json!({ "before": email_before, "after": email.as_str() }),
                        );
                    }
                    if let Some(name) = &correction.display_name {
                        let sealed = keyring
                            .encrypt(
                                tx,
                                &scope,
                                users_aad(&row, "display_name"),
                                name.as_str().as_bytes(),
                            )
                            .await?;
                        users::set_display_name(&mut tx.conn(), subject, &sealed, now).await?;
                        changes.insert(
                            "display_name".into(),
                            json!({ "before": name_before, "after": name.as_str() }),
                        );
                    }
                    auditor
                        .record(
                            tx,
                            Event::by(&actor, "data_subject.rectified", Outcome::Allowed)
                                .target("user", subject)
                                .subject(subject)
                                .details(json!({ "reason": reason, "changes": changes })),
                        )
                        .await?;
                    tx.emit(DomainEvent::UserProfileChanged {
                        user_id: subject,
                        by: actor.user_id(),
                    });
                    users::by_id(&mut tx.conn(), subject)
                        .await?
                        .ok_or(Error::NotFound("user"))
                })
            })
            .await?;
        self.view_of(updated).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn an_out_of_office_period_parses_within_its_limits() {
        assert!(OutOfOffice::parse(day("2027-01-10"), day("2027-01-10"), None).is_ok());
        assert!(OutOfOffice::parse(day("2027-01-10"), day("2028-01-10"), Some(" ")).is_ok());
        let err = OutOfOffice::parse(day("2027-01-10"), day("2027-01-09"), None).unwrap_err();
        assert_eq!(err.field, "out_of_office.until");
        let err = OutOfOffice::parse(day("2027-01-10"), day("2028-01-11"), None).unwrap_err();
        assert_eq!(err.field, "out_of_office.until");
        let long = "x".repeat(MAX_OUT_OF_OFFICE_MESSAGE + 1);
        let err = OutOfOffice::parse(day("2027-01-10"), day("2027-01-11"), Some(&long));
        assert_eq!(err.unwrap_err().field, "out_of_office.message");
        let ok = OutOfOffice::parse(day("2027-01-10"), day("2027-01-11"), Some(" back soon\n "));
        assert_eq!(ok.unwrap().message.as_deref(), Some("back soon"));
    }
}
