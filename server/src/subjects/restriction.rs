//! Restriction of processing (GDPR Art. 18): a person's data stays where it is, and nothing
//! new processes it until the restriction is lifted.
//!
//! Compliance officers and system administrators (`data_subjects.restrict`, a system action)
//! start a restriction with a reason and lift it with another; the person sees their own
//! (`GET /api/v1/users/me/restriction`) and is told on the hub when it is lifted (Art.
//! 18(3)). Reasons are sealed under the subject's key, bound to the row, and listed in the
//! data inventory (`inventory.rs`), so rotation re-encrypts them, the person's export holds
//! them and erasure makes them unreadable while the history stays. Starting and lifting are
//! audited (`data_subject.restricted`, `data_subject.restriction_lifted`) with ids only.
//!
//! What a restriction stops is decided where the processing happens, each asking
//! `store::restrictions` (one read of a partial index, so every process sees the same):
//! the search indexer indexes nothing of theirs and drops their entries when it starts
//! (`DomainEvent::ProcessingRestricted`), rebuilding the workspaces' indexes when it is lifted;
//! bot event delivery sends no event they caused or about their content; the Slack Web API
//! answers bots with their messages' text and their profile withheld. Their content stays
//! visible to people as before; export and erasure work as for anyone.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{Auditor, Event, Outcome};
use crate::crypto::{Aad, CryptoError, Keyring, Scope};
use crate::domain::{ParseError, RestrictionId, UserId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::rbac::{Action, Actor, Principal, Resource};
use crate::store::restrictions::{self as restrictions_store, RestrictionRecord};
use crate::store::{self, Conn, Store, StoreError, Tx};

/// The longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 4000;

/// Why a restriction starts or is lifted.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "Art. 18(1)(a): accuracy contested, DSR-121"}))]
pub struct RestrictionReason {
    /// Why (required; up to 4,000 characters; sealed under the person's key).
    #[serde(default)]
    pub reason: Option<String>,
}

/// One restriction, in force or lifted.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RestrictionView {
    /// Its id.
    pub id: RestrictionId,
    /// Whose processing it restricts.
    pub subject_id: UserId,
    /// Whether it is in force.
    pub in_force: bool,
    /// Why it was started (`null` once the person was erased).
    pub reason: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Who started it.
    pub started_by: Option<UserId>,
    /// When it was lifted.
    pub lifted_at: Option<DateTime<Utc>>,
    /// Who lifted it.
    pub lifted_by: Option<UserId>,
    /// Why it was lifted.
    pub lift_reason: Option<String>,
}

/// A person's restriction now and every one before.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RestrictionStatus {
    /// Whose.
    pub subject_id: UserId,
    /// Whether the processing of their data is restricted now.
    pub restricted: bool,
    /// The restriction in force, if any.
    pub current: Option<RestrictionView>,
    /// Every restriction, oldest first (the current one included).
    pub history: Vec<RestrictionView>,
}

fn aad<'a>(row: &'a str, column: &'static str) -> Aad<'a> {
    Aad {
        table: "processing_restrictions",
        row,
        column,
    }
}

fn reason_of(value: Option<String>, what: &str) -> Result<String, Error> {
    let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let Some(value) = value else {
        return Err(Error::refused(
            "reason_required",
            format!("{what} needs a reason, which is kept with it"),
        ));
    };
    if value.chars().count() > MAX_REASON_CHARS {
        return Err(
            ParseError::new("reason", format!("at most {MAX_REASON_CHARS} characters")).into(),
        );
    }
    Ok(value)
}

/// Restrictions of processing; cheap to clone.
#[derive(Clone)]
pub struct RestrictionService {
    store: Store,
    auditor: Auditor,
    keyring: Keyring,
}

impl RestrictionService {
    /// The service over `store`, sealing with the auditor's keyring.
    pub fn new(store: Store, auditor: Auditor) -> RestrictionService {
        let keyring = auditor.keyring().clone();
        RestrictionService {
            store,
            auditor,
            keyring,
        }
    }

    /// Restricts the processing of `subject`'s data (`data_subjects.restrict`), with a
    /// reason; audited as `data_subject.restricted`.
    #[tracing::instrument(skip_all, fields(actor = ?actor.user_id(), subject = %subject))]
    pub async fn start(
        &self,
        actor: &Actor,
        subject: UserId,
        request: RestrictionReason,
    ) -> Result<RestrictionStatus, Error> {
        let this = self.clone();
        let actor = actor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.authorize(tx, &actor).await?;
                    let reason = reason_of(request.reason, "a restriction")?;
                    this.person(tx, subject).await?;
                    if restrictions_store::in_force(&mut tx.conn(), subject)
                        .await?
                        .is_some()
                    {
                        return Err(already_restricted());
                    }
                    let id = RestrictionId::generate();
                    let row = id.to_string();
                    let sealed = this
                        .keyring
                        .encrypt(
                            tx,
                            &Scope::User(subject),
                            aad(&row, "reason"),
                            reason.as_bytes(),
                        )
                        .await?;
                    let record = RestrictionRecord {
                        id,
                        subject_id: subject,
                        reason: sealed,
                        started_at: Utc::now().trunc_subsecs(6),
                        started_by: actor.user_id(),
                        lifted_at: None,
                        lifted_by: None,
                        lift_reason: None,
                    };
                    // Another process may have started one since the read above.
                    match restrictions_store::insert(&mut tx.conn(), &record).await {
                        Err(StoreError::Constraint(_)) => return Err(already_restricted()),
                        other => other?,
                    }
                    let workspaces =
                        restrictions_store::workspaces_of(&mut tx.conn(), subject).await?;
                    let event = Event::by(&actor, "data_subject.restricted", Outcome::Allowed)
                        .target("user", subject)
                        .subject(subject)
                        .details(json!({ "restriction_id": id }));
                    this.auditor.record(tx, event).await?;
                    tx.emit(DomainEvent::ProcessingRestricted {
                        user_id: subject,
                        workspaces,
                    });
                    this.status(&mut tx.conn(), subject).await
                })
            })
            .await
    }

    /// Lifts `subject`'s restriction (`data_subjects.restrict`), with a reason; audited as
    /// `data_subject.restriction_lifted`. The person is told on the hub.
    #[tracing::instrument(skip_all, fields(actor = ?actor.user_id(), subject = %subject))]
    pub async fn lift(
        &self,
        actor: &Actor,
        subject: UserId,
        request: RestrictionReason,
    ) -> Result<RestrictionStatus, Error> {
        let this = self.clone();
        let actor = actor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.authorize(tx, &actor).await?;
                    let reason = reason_of(request.reason, "lifting a restriction")?;
                    this.person(tx, subject).await?;
                    let Some(current) =
                        restrictions_store::in_force(&mut tx.conn(), subject).await?
                    else {
                        return Err(not_restricted());
                    };
                    let row = current.id.to_string();
                    let sealed = this
                        .keyring
                        .encrypt(
                            tx,
                            &Scope::User(subject),
                            aad(&row, "lift_reason"),
                            reason.as_bytes(),
                        )
                        .await?;
                    let now = Utc::now().trunc_subsecs(6);
                    if !restrictions_store::lift(
                        &mut tx.conn(),
                        current.id,
                        now,
                        actor.user_id(),
                        &sealed,
                    )
                    .await?
                    {
                        return Err(not_restricted());
                    }
                    let workspaces =
                        restrictions_store::workspaces_of(&mut tx.conn(), subject).await?;
                    let event =
                        Event::by(&actor, "data_subject.restriction_lifted", Outcome::Allowed)
                            .target("user", subject)
                            .subject(subject)
                            .details(json!({ "restriction_id": current.id }));
                    this.auditor.record(tx, event).await?;
                    tx.emit(DomainEvent::ProcessingRestrictionLifted {
                        user_id: subject,
                        workspaces,
                    });
                    this.status(&mut tx.conn(), subject).await
                })
            })
            .await
    }

    /// `subject`'s restriction and history (`data_subjects.restrict`).
    #[tracing::instrument(skip_all, fields(actor = ?actor.user_id(), subject = %subject))]
    pub async fn get(&self, actor: &Actor, subject: UserId) -> Result<RestrictionStatus, Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::RestrictProcessing,
                Resource::System,
            )
            .await?;
        if store::users::by_id(&mut conn.conn(), subject)
            .await?
            .is_none()
        {
            return Err(Error::NotFound("account"));
        }
        self.status(&mut conn.conn(), subject).await
    }

    /// The acting person's own restriction and history.
    #[tracing::instrument(skip_all, fields(actor = ?actor.user_id()))]
    pub async fn get_own(&self, actor: &Actor) -> Result<RestrictionStatus, Error> {
        let me = match actor.principal {
            Principal::User { user_id, .. } => user_id,
            _ => return Err(Error::Forbidden(Action::ReadAccount)),
        };
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ReadAccount,
                Resource::Account(me),
            )
            .await?;
        self.status(&mut conn.conn(), me).await
    }

    /// Those of `people` whose processing is restricted now (one indexed query), for the
    /// paths that shape what bots read; decides nothing about the caller.
    pub async fn restricted_among(
        &self,
        people: &[UserId],
    ) -> Result<std::collections::HashSet<UserId>, Error> {
        if people.is_empty() {
            return Ok(Default::default());
        }
        let mut conn = self.store.reader().await?;
        Ok(restrictions_store::restricted_among(&mut conn.conn(), people).await?)
    }

    async fn authorize(&self, tx: &mut Tx, actor: &Actor) -> Result<(), Error> {
        self.auditor
            .authorize(tx, actor, Action::RestrictProcessing, Resource::System)
            .await
    }

    /// The subject must be a person's account that was not erased (nothing is sealed under
    /// an erased person's key again).
    async fn person(&self, tx: &mut Tx, subject: UserId) -> Result<(), Error> {
        let person = store::users::by_id(&mut tx.conn(), subject)
            .await?
            .ok_or(Error::NotFound("account"))?;
        if person.erased_at.is_some() {
            return Err(Error::gone(
                "erased",
                "this person was erased: no data of theirs is processed any more",
            ));
        }
        if store::erasure::is_bot(&mut tx.conn(), subject).await? {
            return Err(Error::refused(
                "not_a_person",
                "a bot's account is not a data subject (deactivate the bot instead)",
            ));
        }
        Ok(())
    }

    async fn status(
        &self,
        conn: &mut Conn<'_>,
        subject: UserId,
    ) -> Result<RestrictionStatus, Error> {
        let records = restrictions_store::history(conn, subject).await?;
        let mut history = Vec::with_capacity(records.len());
        for record in &records {
            history.push(self.view(conn, record).await?);
        }
        let current = history.iter().find(|r| r.in_force).cloned();
        Ok(RestrictionStatus {
            subject_id: subject,
            restricted: current.is_some(),
            current,
            history,
        })
    }

    async fn view(
        &self,
        conn: &mut Conn<'_>,
        record: &RestrictionRecord,
    ) -> Result<RestrictionView, Error> {
        let row = record.id.to_string();
        let reason = self
            .open(
                conn,
                record.subject_id,
                &row,
                "reason",
                Some(&record.reason),
            )
            .await?;
        let lift_reason = self
            .open(
                conn,
                record.subject_id,
                &row,
                "lift_reason",
                record.lift_reason.as_ref(),
            )
            .await?;
        Ok(RestrictionView {
            id: record.id,
            subject_id: record.subject_id,
            in_force: record.lifted_at.is_none(),
            reason,
            started_at: record.started_at,
            started_by: record.started_by,
            lifted_at: record.lifted_at,
            lifted_by: record.lifted_by,
            lift_reason,
        })
    }

    /// A sealed reason's text; `None` if there is none or the person's key was destroyed.
    async fn open(
        &self,
        conn: &mut Conn<'_>,
        subject: UserId,
        row: &str,
        column: &'static str,
        sealed: Option<&Vec<u8>>,
    ) -> Result<Option<String>, Error> {
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        match self
            .keyring
            .decrypt_text(conn, &Scope::User(subject), aad(row, column), sealed)
            .await
        {
            Ok(text) => Ok(Some(text)),
            Err(CryptoError::UnknownKey { .. }) | Err(CryptoError::Destroyed(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

fn already_restricted() -> Error {
    Error::conflict(
        "already_restricted",
        "the processing of this person's data is already restricted",
    )
}

fn not_restricted() -> Error {
    Error::conflict(
        "not_restricted",
        "the processing of this person's data is not restricted",
    )
}
