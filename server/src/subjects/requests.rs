//! Data-subject requests (GDPR Art. 12(3)): the register compliance officers answer from.
//!
//! A request (access, portability, rectification, erasure, restriction, objection) is
//! recorded by a compliance officer (`data_subjects.manage`) or filed by the person for
//! themself. It is due `data_subject.request_deadline_days` after it was received; an
//! officer may extend it, with a reason, by up to `data_subject.extension_days` in all
//! (refused where the policy allows none), and completes or refuses it, a refusal with a
//! reason. The policy read is the deployment's own (its modules, no workspace override):
//! a request is made to the deployment's operator, not to one workspace.
//!
//! Notes, extension reasons and outcomes are personal data: they are sealed under the
//! subject's key, bound to the row, and listed in the data inventory (`inventory.rs`), so
//! key rotation re-encrypts them and the person's export includes them. Erasing the person
//! destroys that key: the request stays in the register with its dates and status, its free
//! text unreadable (`null`), and nothing new is sealed for an erased person. Every change is
//! audited (`data_subject.request_recorded`, `_extended`, `_completed`, `_refused`) with the
//! request's id and dates, never its free text; the audit entry names the person as its
//! subject only when they filed the request themself.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{Auditor, Event, Outcome};
use crate::crypto::{Aad, CryptoError, Keyring, Scope};
use crate::domain::{DataSubjectRequestId, ParseError, UserId};
use crate::error::Error;
use crate::policy::PolicyService;
use crate::rbac::{Action, Actor, Principal, Resource};
use crate::store::subject_requests::{self as requests_store, Filter, RequestRecord};
use crate::store::{self, Conn, Store, Tx};

/// The longest note, reason or outcome, in characters.
pub const MAX_TEXT_CHARS: usize = 4000;
/// The most requests one page lists.
pub const MAX_PAGE: i64 = 200;
/// Requests per page unless asked otherwise.
pub const DEFAULT_PAGE: i64 = 50;

/// What a person asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// Access to their data (Art. 15).
    Access,
    /// Their data in a portable form (Art. 20).
    Portability,
    /// Correction of their data (Art. 16).
    Rectification,
    /// Erasure of their data (Art. 17).
    Erasure,
    /// Restriction of processing (Art. 18).
    Restriction,
    /// Objection to processing (Art. 21).
    Objection,
}

impl RequestKind {
    fn as_str(self) -> &'static str {
        match self {
            RequestKind::Access => "access",
            RequestKind::Portability => "portability",
            RequestKind::Rectification => "rectification",
            RequestKind::Erasure => "erasure",
            RequestKind::Restriction => "restriction",
            RequestKind::Objection => "objection",
        }
    }

    fn parse(stored: &str) -> Option<RequestKind> {
        [
            RequestKind::Access,
            RequestKind::Portability,
            RequestKind::Rectification,
            RequestKind::Erasure,
            RequestKind::Restriction,
            RequestKind::Objection,
        ]
        .into_iter()
        .find(|k| k.as_str() == stored)
    }
}

/// Where a request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Received, not yet answered.
    Open,
    /// Not yet answered; its deadline was extended.
    Extended,
    /// Answered.
    Completed,
    /// Refused, with a reason.
    Refused,
}

impl RequestStatus {
    fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Open => "open",
            RequestStatus::Extended => "extended",
            RequestStatus::Completed => "completed",
            RequestStatus::Refused => "refused",
        }
    }

    fn parse(stored: &str) -> Option<RequestStatus> {
        [
            RequestStatus::Open,
            RequestStatus::Extended,
            RequestStatus::Completed,
            RequestStatus::Refused,
        ]
        .into_iter()
        .find(|s| s.as_str() == stored)
    }

    fn answered(self) -> bool {
        matches!(self, RequestStatus::Completed | RequestStatus::Refused)
    }
}

/// A request an officer records.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "subject_id": "0190d6d2-8a4e-7cc1-9d36-5c4a1b2e7f10",
    "kind": "access",
    "note": "asked by letter of 2 March for a copy of everything we hold"
}))]
pub struct NewRequest {
    /// Whose request it is (an account).
    pub subject_id: UserId,
    /// What they ask for.
    pub kind: RequestKind,
    /// When it was received (default: now; never in the future).
    #[serde(default)]
    pub received_at: Option<DateTime<Utc>>,
    /// What was asked, in words (up to 4,000 characters).
    #[serde(default)]
    pub note: Option<String>,
}

/// A request a person files for themself.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "portability", "note": "please send my messages as JSON"}))]
pub struct OwnRequest {
    /// What they ask for.
    pub kind: RequestKind,
    /// What they ask, in words (up to 4,000 characters).
    #[serde(default)]
    pub note: Option<String>,
}

/// An extension of a request's deadline.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "the request covers ten years of records", "days": 30}))]
pub struct ExtendRequest {
    /// Why (required; up to 4,000 characters).
    pub reason: String,
    /// How many days to add to the current deadline (default: all the policy still allows).
    #[serde(default)]
    pub days: Option<u32>,
}

/// How a request was answered.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"outcome": "sent the export on 4 March"}))]
pub struct CompleteRequest {
    /// What was done (optional; up to 4,000 characters).
    #[serde(default)]
    pub outcome: Option<String>,
}

/// Why a request is refused.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "manifestly unfounded: the same request was answered last week"}))]
pub struct RefuseRequest {
    /// Why (required; up to 4,000 characters), which the person is told.
    pub reason: String,
}

/// A request as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RequestView {
    /// Its id.
    pub id: DataSubjectRequestId,
    /// Whose request it is.
    pub subject_id: UserId,
    /// What is asked.
    pub kind: RequestKind,
    /// Where it stands.
    pub status: RequestStatus,
    /// When it was received.
    pub received_at: DateTime<Utc>,
    /// When it is due: received plus the policy's `request_deadline_days`.
    pub due_at: DateTime<Utc>,
    /// The deadline after extensions, if extended.
    pub extended_until: Option<DateTime<Utc>>,
    /// Whole days left until the deadline (extended or not), rounded up; zero or less once
    /// due (`null` once answered).
    pub days_left: Option<i64>,
    /// Whether it is unanswered past its deadline.
    pub overdue: bool,
    /// What was asked (`null`: none given, or unreadable since the person was erased).
    pub note: Option<String>,
    /// Why it was extended.
    pub extension_reason: Option<String>,
    /// How it was answered, or why it was refused.
    pub outcome: Option<String>,
    /// Who extended, completed or refused it last.
    pub handled_by: Option<UserId>,
    /// Who recorded it (the person, for a request they filed).
    pub created_by: Option<UserId>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When it was completed or refused.
    pub completed_at: Option<DateTime<Utc>>,
}

/// A page of requests, in the order they were recorded.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RequestPage {
    /// The requests.
    pub requests: Vec<RequestView>,
    /// Pass as `cursor` for the next page (`null`: this is the last).
    pub next_cursor: Option<String>,
}

/// Which requests a list shows.
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only requests in this status.
    pub status: Option<RequestStatus>,
    /// Only unanswered requests past their deadline (`true`).
    pub overdue: Option<bool>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// At most this many requests (1 to 200, default 50).
    pub limit: Option<i64>,
}

fn aad<'a>(row: &'a str, column: &'static str) -> Aad<'a> {
    Aad {
        table: "data_subject_requests",
        row,
        column,
    }
}

/// A free-text field, trimmed; `None` if empty.
fn text(field: &'static str, value: Option<String>) -> Result<Option<String>, Error> {
    let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if let Some(v) = &value {
        if v.chars().count() > MAX_TEXT_CHARS {
            return Err(
                ParseError::new(field, format!("at most {MAX_TEXT_CHARS} characters")).into(),
            );
        }
    }
    Ok(value)
}

fn required(field: &'static str, value: String, what: &str) -> Result<String, Error> {
    text(field, Some(value))?.ok_or_else(|| {
        Error::refused(
            "reason_required",
            format!("{what} needs a reason, which the register keeps"),
        )
    })
}

/// Whole days from `now` to `deadline`, rounded up.
fn days_until(deadline: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let seconds = (deadline - now).num_seconds();
    seconds.div_euclid(86_400) + i64::from(seconds.rem_euclid(86_400) > 0)
}

/// The data-subject request register; cheap to clone.
#[derive(Clone)]
pub struct RequestService {
    store: Store,
    auditor: Auditor,
    keyring: Keyring,
    policies: PolicyService,
}

impl RequestService {
    /// The service over `store`, sealing with the auditor's keyring, deadlines from `policies`.
    pub fn new(store: Store, auditor: Auditor, policies: PolicyService) -> RequestService {
        let keyring = auditor.keyring().clone();
        RequestService {
            store,
            auditor,
            keyring,
            policies,
        }
    }

    /// Records a request received for `new.subject_id` (`data_subjects.manage`); audited.
    #[tracing::instrument(skip(self, actor, new), fields(actor = ?actor.user_id()))]
    pub async fn record(&self, actor: &Actor, new: NewRequest) -> Result<RequestView, Error> {
        let now = Utc::now();
        // Microseconds, as both backends store them, so the answer equals a later read.
        let received_at = new.received_at.unwrap_or(now).trunc_subsecs(6);
        if received_at > now + Duration::minutes(5) {
            return Err(
                ParseError::new("received_at", "a request cannot be received later").into(),
            );
        }
        let note = text("note", new.note)?;
        let deadline_days = self
            .policies
            .deployment()?
            .data_subject
            .request_deadline_days;
        let this = self.clone();
        let actor = actor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.authorize_manage(tx, &actor).await?;
                    this.insert(
                        tx,
                        &actor,
                        new.subject_id,
                        new.kind,
                        received_at,
                        deadline_days,
                        note,
                        false,
                    )
                    .await
                })
            })
            .await
    }

    /// Files a request for the acting person themself; audited with them as its subject.
    #[tracing::instrument(skip(self, actor, new), fields(actor = ?actor.user_id()))]
    pub async fn file_own(&self, actor: &Actor, new: OwnRequest) -> Result<RequestView, Error> {
        let note = text("note", new.note)?;
        let deadline_days = self
            .policies
            .deployment()?
            .data_subject
            .request_deadline_days;
        let this = self.clone();
        let actor = actor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let me = this.authorize_self(tx, &actor).await?;
                    this.insert(
                        tx,
                        &actor,
                        me,
                        new.kind,
                        Utc::now().trunc_subsecs(6),
                        deadline_days,
                        note,
                        true,
                    )
                    .await
                })
            })
            .await
    }

    /// Requests in the register (`data_subjects.manage`), filtered, a page at a time.
    #[tracing::instrument(skip(self, actor, query), fields(actor = ?actor.user_id()))]
    pub async fn list(&self, actor: &Actor, query: ListQuery) -> Result<RequestPage, Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ManageDataSubjects,
                Resource::System,
            )
            .await?;
        let now = Utc::now();
        let filter = Filter {
            subject: None,
            status: query.status.map(RequestStatus::as_str),
            overdue_at: query.overdue.filter(|o| *o).map(|_| now),
        };
        self.page(&mut conn.conn(), filter, &query, now).await
    }

    /// The acting person's own requests, a page at a time.
    #[tracing::instrument(skip(self, actor, query), fields(actor = ?actor.user_id()))]
    pub async fn list_own(&self, actor: &Actor, query: ListQuery) -> Result<RequestPage, Error> {
        let mut conn = self.store.reader().await?;
        let me = self.own_account(actor)?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ReadAccount,
                Resource::Account(me),
            )
            .await?;
        let now = Utc::now();
        let filter = Filter {
            subject: Some(me),
            status: query.status.map(RequestStatus::as_str),
            overdue_at: query.overdue.filter(|o| *o).map(|_| now),
        };
        self.page(&mut conn.conn(), filter, &query, now).await
    }

    /// One request (`data_subjects.manage`).
    #[tracing::instrument(skip(self, actor), fields(actor = ?actor.user_id()))]
    pub async fn get(&self, actor: &Actor, id: DataSubjectRequestId) -> Result<RequestView, Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ManageDataSubjects,
                Resource::System,
            )
            .await?;
        let record = requests_store::by_id(&mut conn.conn(), id)
            .await?
            .ok_or(Error::NotFound("data-subject request"))?;
        self.view(&mut conn.conn(), &record, Utc::now()).await
    }

    /// Extends an unanswered request's deadline by `days` (default: all that is left of the
    /// policy's `extension_days`), with a reason (`data_subjects.manage`); audited.
    #[tracing::instrument(skip(self, actor, request), fields(actor = ?actor.user_id()))]
    pub async fn extend(
        &self,
        actor: &Actor,
        id: DataSubjectRequestId,
        request: ExtendRequest,
    ) -> Result<RequestView, Error> {
        let allowed = self.policies.deployment()?.data_subject.extension_days;
        let this = self.clone();
        let actor = actor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.authorize_manage(tx, &actor).await?;
                    let record = this.unanswered(tx, id).await?;
                    let reason = required("reason", request.reason, "an extension")?;
                    if allowed == 0 {
                        return Err(Error::refused(
                            "extension_not_allowed",
                            "the deployment's policy allows no extension \
                             (data_subject.extension_days is 0)",
                        ));
                    }
                    let limit = record.due_at + Duration::days(i64::from(allowed));
                    let current = record.extended_until.unwrap_or(record.due_at);
                    let until = match request.days {
                        Some(0) => {
                            return Err(ParseError::new("days", "extend by at least one day").into())
                        }
                        Some(days) => current + Duration::days(i64::from(days)),
                        None => limit,
                    };
                    if until > limit || current >= limit {
                        return Err(Error::refused(
                            "extension_too_long",
                            format!(
                                "the policy allows extending a request by {allowed} days in \
                                 all, to {limit}"
                            ),
                        ));
                    }
                    this.refuse_if_erased(tx, record.subject_id).await?;
                    let row = id.to_string();
                    let sealed = this
                        .keyring
                        .encrypt(
                            tx,
                            &Scope::User(record.subject_id),
                            aad(&row, "extension_reason"),
                            reason.as_bytes(),
                        )
                        .await?;
                    let by = actor.user_id();
                    if !requests_store::extend(&mut tx.conn(), id, until, &sealed, by).await? {
                        return Err(already_answered());
                    }
                    let event =
                        Event::by(&actor, "data_subject.request_extended", Outcome::Allowed)
                            .target("data_subject_request", id)
                            .details(json!({
                                "due_at": record.due_at,
                                "extended_until": until,
                            }));
                    this.auditor.record(tx, event).await?;
                    this.reread(tx, id).await
                })
            })
            .await
    }

    /// Completes an unanswered request, with an optional note of what was done
    /// (`data_subjects.manage`); audited.
    #[tracing::instrument(skip(self, actor, request), fields(actor = ?actor.user_id()))]
    pub async fn complete(
        &self,
        actor: &Actor,
        id: DataSubjectRequestId,
        request: CompleteRequest,
    ) -> Result<RequestView, Error> {
        let outcome = text("outcome", request.outcome)?;
        self.close(actor, id, RequestStatus::Completed, outcome)
            .await
    }

    /// Refuses an unanswered request, with a reason (`data_subjects.manage`); audited.
    #[tracing::instrument(skip(self, actor, request), fields(actor = ?actor.user_id()))]
    pub async fn refuse(
        &self,
        actor: &Actor,
        id: DataSubjectRequestId,
        request: RefuseRequest,
    ) -> Result<RequestView, Error> {
        let reason = required("reason", request.reason, "a refusal")?;
        self.close(actor, id, RequestStatus::Refused, Some(reason))
            .await
    }

    async fn close(
        &self,
        actor: &Actor,
        id: DataSubjectRequestId,
        status: RequestStatus,
        outcome: Option<String>,
    ) -> Result<RequestView, Error> {
        let this = self.clone();
        let actor = actor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.authorize_manage(tx, &actor).await?;
                    let record = this.unanswered(tx, id).await?;
                    let now = Utc::now();
                    let sealed = match &outcome {
                        Some(outcome) => {
                            this.refuse_if_erased(tx, record.subject_id).await?;
                            let row = id.to_string();
                            Some(
                                this.keyring
                                    .encrypt(
                                        tx,
                                        &Scope::User(record.subject_id),
                                        aad(&row, "outcome"),
                                        outcome.as_bytes(),
                                    )
                                    .await?,
                            )
                        }
                        None => None,
                    };
                    let by = actor.user_id();
                    let closed = requests_store::close(
                        &mut tx.conn(),
                        id,
                        status.as_str(),
                        sealed.as_deref(),
                        by,
                        now,
                    )
                    .await?;
                    if !closed {
                        return Err(already_answered());
                    }
                    let deadline = record.extended_until.unwrap_or(record.due_at);
                    let action = match status {
                        RequestStatus::Refused => "data_subject.request_refused",
                        _ => "data_subject.request_completed",
                    };
                    let event = Event::by(&actor, action, Outcome::Allowed)
                        .target("data_subject_request", id)
                        .details(json!({
                            "kind": record.kind,
                            "deadline": deadline,
                            "late": now > deadline,
                        }));
                    this.auditor.record(tx, event).await?;
                    this.reread(tx, id).await
                })
            })
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        subject: UserId,
        kind: RequestKind,
        received_at: DateTime<Utc>,
        deadline_days: u32,
        note: Option<String>,
        own: bool,
    ) -> Result<RequestView, Error> {
        let person = store::users::by_id(&mut tx.conn(), subject)
            .await?
            .ok_or(Error::NotFound("account"))?;
        if person.erased_at.is_some() {
            return Err(erased());
        }
        if store::erasure::is_bot(&mut tx.conn(), subject).await? {
            return Err(Error::refused(
                "not_a_person",
                "a bot's account is not a data subject",
            ));
        }
        let id = DataSubjectRequestId::generate();
        let row = id.to_string();
        let sealed = match &note {
            Some(note) => Some(
                self.keyring
                    .encrypt(
                        tx,
                        &Scope::User(subject),
                        aad(&row, "note"),
                        note.as_bytes(),
                    )
                    .await?,
            ),
            None => None,
        };
        let record = RequestRecord {
            id,
            subject_id: subject,
            kind: kind.as_str().to_owned(),
            received_at,
            due_at: received_at + Duration::days(i64::from(deadline_days)),
            extended_until: None,
            extension_reason: None,
            status: RequestStatus::Open.as_str().to_owned(),
            note: sealed,
            outcome: None,
            handled_by: None,
            created_by: actor.user_id(),
            created_at: Utc::now().trunc_subsecs(6),
            completed_at: None,
        };
        requests_store::insert(&mut tx.conn(), &record).await?;
        let mut event = Event::by(actor, "data_subject.request_recorded", Outcome::Allowed)
            .target("data_subject_request", id)
            .details(json!({
                "kind": record.kind,
                "subject_id": subject,
                "received_at": record.received_at,
                "due_at": record.due_at,
                "filed_by_subject": own,
            }));
        if own {
            event = event.subject(subject);
        }
        self.auditor.record(tx, event).await?;
        Ok(self.finish_view(&record, note, None, None, Utc::now()))
    }

    async fn page(
        &self,
        conn: &mut Conn<'_>,
        filter: Filter,
        query: &ListQuery,
        now: DateTime<Utc>,
    ) -> Result<RequestPage, Error> {
        let limit = query.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ParseError::new("limit", format!("1 to {MAX_PAGE}")).into());
        }
        let after = match &query.cursor {
            Some(c) => Some(
                c.parse::<DataSubjectRequestId>()
                    .map_err(|_| ParseError::new("cursor", "not a cursor this list gave"))?,
            ),
            None => None,
        };
        let records = requests_store::list(conn, filter, after, limit + 1).await?;
        let more = records.len() as i64 > limit;
        let mut requests = Vec::with_capacity(records.len());
        for record in records.iter().take(limit as usize) {
            requests.push(self.view(conn, record, now).await?);
        }
        let next_cursor = if more {
            requests.last().map(|r| r.id.to_string())
        } else {
            None
        };
        Ok(RequestPage {
            requests,
            next_cursor,
        })
    }

    async fn authorize_manage(&self, tx: &mut Tx, actor: &Actor) -> Result<(), Error> {
        self.auditor
            .authorize(tx, actor, Action::ManageDataSubjects, Resource::System)
            .await
    }

    /// Decides a person's own request on their own account; bots file none.
    async fn authorize_self(&self, tx: &mut Tx, actor: &Actor) -> Result<UserId, Error> {
        let me = self.own_account(actor)?;
        self.auditor
            .authorize(tx, actor, Action::ReadAccount, Resource::Account(me))
            .await?;
        Ok(me)
    }

    fn own_account(&self, actor: &Actor) -> Result<UserId, Error> {
        match actor.principal {
            Principal::User { user_id, .. } => Ok(user_id),
            _ => Err(Error::Forbidden(Action::ReadAccount)),
        }
    }

    async fn unanswered(
        &self,
        tx: &mut Tx,
        id: DataSubjectRequestId,
    ) -> Result<RequestRecord, Error> {
        let record = requests_store::by_id(&mut tx.conn(), id)
            .await?
            .ok_or(Error::NotFound("data-subject request"))?;
        match RequestStatus::parse(&record.status) {
            Some(s) if s.answered() => Err(already_answered()),
            _ => Ok(record),
        }
    }

    /// Nothing new is sealed under an erased person's key: it would make it again.
    async fn refuse_if_erased(&self, tx: &mut Tx, subject: UserId) -> Result<(), Error> {
        match store::erasure::erased_at(&mut tx.conn(), subject).await? {
            Some(_) => Err(erased()),
            None => Ok(()),
        }
    }

    async fn reread(&self, tx: &mut Tx, id: DataSubjectRequestId) -> Result<RequestView, Error> {
        let record = requests_store::by_id(&mut tx.conn(), id)
            .await?
            .ok_or(Error::NotFound("data-subject request"))?;
        self.view(&mut tx.conn(), &record, Utc::now()).await
    }

    async fn view(
        &self,
        conn: &mut Conn<'_>,
        record: &RequestRecord,
        now: DateTime<Utc>,
    ) -> Result<RequestView, Error> {
        let row = record.id.to_string();
        let note = self.open(conn, record, &row, "note", &record.note).await?;
        let reason = self
            .open(
                conn,
                record,
                &row,
                "extension_reason",
                &record.extension_reason,
            )
            .await?;
        let outcome = self
            .open(conn, record, &row, "outcome", &record.outcome)
            .await?;
        Ok(self.finish_view(record, note, reason, outcome, now))
    }

    /// A sealed field's text; `None` if there is none or the person's key was destroyed.
    async fn open(
        &self,
        conn: &mut Conn<'_>,
        record: &RequestRecord,
        row: &str,
        column: &'static str,
        sealed: &Option<Vec<u8>>,
    ) -> Result<Option<String>, Error> {
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        match self
            .keyring
            .decrypt_text(
                conn,
                &Scope::User(record.subject_id),
                aad(row, column),
                sealed,
            )
            .await
        {
            Ok(text) => Ok(Some(text)),
            Err(CryptoError::UnknownKey { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn finish_view(
        &self,
        record: &RequestRecord,
        note: Option<String>,
        extension_reason: Option<String>,
        outcome: Option<String>,
        now: DateTime<Utc>,
    ) -> RequestView {
        let status = RequestStatus::parse(&record.status).unwrap_or(RequestStatus::Open);
        let deadline = record.extended_until.unwrap_or(record.due_at);
        let answered = status.answered();
        RequestView {
            id: record.id,
            subject_id: record.subject_id,
            kind: RequestKind::parse(&record.kind).unwrap_or(RequestKind::Access),
            status,
            received_at: record.received_at,
            due_at: record.due_at,
            extended_until: record.extended_until,
            days_left: (!answered).then(|| days_until(deadline, now)),
            overdue: !answered && now > deadline,
            note,
            extension_reason,
            outcome,
            handled_by: record.handled_by,
            created_by: record.created_by,
            created_at: record.created_at,
            completed_at: record.completed_at,
        }
    }
}

fn already_answered() -> Error {
    Error::conflict(
        "already_answered",
        "this request was already completed or refused",
    )
}

fn erased() -> Error {
    Error::refused(
        "subject_erased",
        "this person was erased: nothing more is written about them (complete the request \
         without an outcome note)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_rounds_up_and_goes_negative() {
        let now = Utc::now();
        assert_eq!(days_until(now + Duration::days(30), now), 30);
        assert_eq!(
            days_until(now + Duration::days(30) - Duration::seconds(1), now),
            30
        );
        assert_eq!(days_until(now, now), 0);
        assert_eq!(days_until(now - Duration::days(2), now), -2);
    }
}
