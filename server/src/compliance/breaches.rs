//! The breach register (GDPR Art. 33(5) and 34): every personal-data breach, its facts, its
//! effects and what was done about it, and a report of who and what it affected.
//!
//! Compliance officers and system administrators (`breaches.manage`, a system action no
//! workspace role holds) record a breach, with a title, a description, when it was discovered
//! and when it may have happened, and the accounts involved (the ones an attacker used, or
//! that were misused); they follow it from `open` to `contained` and `closed` and note when
//! the supervisory authority and the people affected were told. The authority is due
//! [`AUTHORITY_DEADLINE_HOURS`] after discovery (Art. 33(1)); a breach not yet notified past
//! that, and not closed, is `overdue`.
//!
//! The report ([`BreachService::report`]) reads the audit log: every entry the involved
//! accounts acted in during the breach's window (sign-ins and the addresses they came from,
//! reads, downloads, exports, searches), and from the entries' targets the people whose data
//! was reached (a file's uploader, a document's creator, an account acted on) and the
//! categories of data. Title and description are sealed under the deployment's
//! compliance-record key (`system:audit`), listed in the data inventory; the audit entries of
//! the register name ids and dates, never its free text.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::service::AuditService;
use crate::audit::{Auditor, Event, Outcome};
use crate::crypto::{Aad, CryptoError, Keyring, Scope};
use crate::domain::{BreachId, ChannelId, DocumentId, FileId, MessageId, ParseError, UserId};
use crate::error::Error;
use crate::rbac::{Action, Actor, Resource};
use crate::store::breaches::{self as breach_store, BreachRecord};
use crate::store::{self, Conn, Store, Tx};

/// Hours from discovery to the supervisory authority's deadline (Art. 33(1)).
pub const AUTHORITY_DEADLINE_HOURS: i64 = 72;
/// The longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// The longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 20_000;
/// The most accounts one breach names.
pub const MAX_ACCOUNTS: usize = 100;
/// The most audit entries a report reads per account.
pub const MAX_REPORT_ENTRIES: usize = 20_000;
/// The most objects a report looks up the owner of.
pub const MAX_REPORT_OBJECTS: usize = 50_000;
/// The most people a report lists as potentially exposed.
pub const MAX_POTENTIALLY_EXPOSED: usize = 10_000;
/// The longest reason for not telling the authority, in characters.
pub const MAX_REASON_CHARS: usize = 5_000;
/// The most breaches one page lists.
pub const MAX_PAGE: i64 = 200;
/// Breaches per page unless asked otherwise.
pub const DEFAULT_PAGE: i64 = 50;

/// The compliance-record key the register's free text is sealed under.
const SCOPE: Scope = Scope::System("audit");

/// Where a breach stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreachStatus {
    /// Discovered, still going on or not yet under control.
    Open,
    /// Under control; its consequences are still being handled.
    Contained,
    /// Done with; a closed breach is no longer changed.
    Closed,
}

impl BreachStatus {
    fn as_str(self) -> &'static str {
        match self {
            BreachStatus::Open => "open",
            BreachStatus::Contained => "contained",
            BreachStatus::Closed => "closed",
        }
    }

    fn parse(stored: &str) -> Option<BreachStatus> {
        [
            BreachStatus::Open,
            BreachStatus::Contained,
            BreachStatus::Closed,
        ]
        .into_iter()
        .find(|s| s.as_str() == stored)
    }
}

/// A breach to record.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "title": "Stolen laptop with a signed-in session",
    "description": "A support engineer's laptop was stolen from a car; the browser was signed in.",
    "discovered_at": "2026-03-02T08:30:00Z",
    "occurred_from": "2026-03-01T18:00:00Z",
    "accounts": ["0190d6d2-8a4e-7cc1-9d36-5c4a1b2e7f10"]
}))]
pub struct NewBreach {
    /// What happened, in a few words (required; up to 200 characters).
    pub title: String,
    /// What happened, its likely consequences and the measures taken (up to 20,000
    /// characters).
    #[serde(default)]
    pub description: Option<String>,
    /// When it was discovered (default: now; never in the future): the authority is due 72
    /// hours later.
    #[serde(default)]
    pub discovered_at: Option<DateTime<Utc>>,
    /// When it began, if known (not after its discovery).
    #[serde(default)]
    pub occurred_from: Option<DateTime<Utc>>,
    /// When it ended, if known (not before it began).
    #[serde(default)]
    pub occurred_to: Option<DateTime<Utc>>,
    /// The accounts involved: those used or misused in it (up to 100).
    #[serde(default)]
    pub accounts: Vec<UserId>,
}

/// A change to a breach: each field given replaces the stored value; fields left out stay.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "status": "contained",
    "authority_notified_at": "2026-03-03T10:00:00Z"
}))]
pub struct BreachChange {
    /// A new title.
    #[serde(default)]
    pub title: Option<String>,
    /// A new description.
    #[serde(default)]
    pub description: Option<String>,
    /// A new status (`closed` is final).
    #[serde(default)]
    pub status: Option<BreachStatus>,
    /// A corrected time of discovery.
    #[serde(default)]
    pub discovered_at: Option<DateTime<Utc>>,
    /// A corrected beginning.
    #[serde(default)]
    pub occurred_from: Option<DateTime<Utc>>,
    /// A corrected end.
    #[serde(default)]
    pub occurred_to: Option<DateTime<Utc>>,
    /// The accounts involved, all of them.
    #[serde(default)]
    pub accounts: Option<Vec<UserId>>,
    /// When the supervisory authority was told (Art. 33).
    #[serde(default)]
    pub authority_notified_at: Option<DateTime<Utc>>,
    /// When the people affected were told (Art. 34).
    #[serde(default)]
    pub subjects_notified_at: Option<DateTime<Utc>>,
    /// Why the supervisory authority need not be told (Art. 33(1): the breach is unlikely to
    /// result in a risk to people's rights and freedoms); up to 5,000 characters. A breach
    /// is closed only once the authority was told or this is given.
    #[serde(default)]
    pub no_notification_reason: Option<String>,
}

/// A breach as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BreachView {
    /// Its id.
    pub id: BreachId,
    /// What happened, in a few words.
    pub title: String,
    /// What happened, in full.
    pub description: Option<String>,
    /// Where it stands.
    pub status: BreachStatus,
    /// When it was discovered.
    pub discovered_at: DateTime<Utc>,
    /// When it began, if known.
    pub occurred_from: Option<DateTime<Utc>>,
    /// When it ended, if known.
    pub occurred_to: Option<DateTime<Utc>>,
    /// The accounts involved.
    pub accounts: Vec<UserId>,
    /// When the supervisory authority must be told by: 72 hours after discovery.
    pub authority_due_at: DateTime<Utc>,
    /// Whole hours left until that deadline, rounded up, zero or less once past (`null` once
    /// the authority was told or the reason it need not be was given).
    pub hours_left: Option<i64>,
    /// Whether the authority is still to be told past the deadline (neither told nor a
    /// reason given why it need not be).
    pub overdue: bool,
    /// When the authority was told.
    pub authority_notified_at: Option<DateTime<Utc>>,
    /// Whether the authority was told after the deadline (Art. 33(1) then asks for the
    /// reasons of the delay).
    pub notified_late: bool,
    /// When the people affected were told.
    pub subjects_notified_at: Option<DateTime<Utc>>,
    /// Why the authority need not be told, if that was decided.
    pub no_notification_reason: Option<String>,
    /// Who recorded it.
    pub created_by: Option<UserId>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// Who changed it last.
    pub updated_by: Option<UserId>,
    /// When it was changed last.
    pub updated_at: DateTime<Utc>,
    /// When it was closed.
    pub closed_at: Option<DateTime<Utc>>,
}

/// A page of breaches, in the order they were recorded.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BreachPage {
    /// The breaches.
    pub breaches: Vec<BreachView>,
    /// Pass as `cursor` for the next page (`null`: this is the last).
    pub next_cursor: Option<String>,
}

/// Which breaches a list shows.
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BreachListQuery {
    /// Only breaches in this status.
    pub status: Option<BreachStatus>,
    /// Only breaches whose authority notification is overdue (`true`).
    pub overdue: Option<bool>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// At most this many breaches (1 to 200, default 50).
    pub limit: Option<i64>,
}

/// The window a report reads, when not the breach's own.
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// From (included; default: the breach's `occurred_from`, else the log's beginning).
    pub from: Option<DateTime<Utc>>,
    /// To (excluded; default: the breach's `occurred_to`, else now).
    pub to: Option<DateTime<Utc>>,
}

/// How often an involved account did one thing in the window.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ActionCount {
    /// The audit action (`file.downloaded`, `auth.sign_in`, ...).
    pub action: String,
    /// Entries that were allowed.
    pub allowed: u64,
    /// Entries that were refused or failed.
    pub refused: u64,
}

/// An address an involved account acted from.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AddressSeen {
    /// The account.
    pub account: UserId,
    /// The client address (`null`: none recorded, or no longer readable).
    pub ip: Option<String>,
    /// Its first entry in the window.
    pub first_seen: String,
    /// Its last entry in the window.
    pub last_seen: String,
    /// Entries from it.
    pub entries: u64,
    /// Of them, sign-ins and session refreshes.
    pub sign_ins: u64,
}

/// One thing an involved account did that reached someone's data.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Access {
    /// When.
    pub at: String,
    /// Which involved account.
    pub by: UserId,
    /// The audit action.
    pub action: String,
    /// What it acted on (`file`, `document`, `user`, ...).
    pub target_type: String,
    /// Its id.
    pub target_id: String,
    /// The data category it belongs to.
    pub category: String,
}

/// A person whose data an involved account reached.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PersonAffected {
    /// The person's account.
    pub user_id: UserId,
    /// The categories of their data that were reached.
    pub categories: Vec<String>,
    /// What reached it.
    pub accesses: Vec<Access>,
}

/// A category of data reached, with how much of it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CategoryAffected {
    /// The category (`files`, `documents`, `profiles`, `messages`, `search results`, ...).
    pub category: String,
    /// Distinct objects of it reached.
    pub objects: u64,
    /// Entries that reached it.
    pub entries: u64,
}

/// Someone whose data the involved accounts could have reached, though the audit log does
/// not show that they did (reads of messages outside PHI channels are not audited).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PotentiallyExposed {
    /// The person's account.
    pub user_id: UserId,
    /// Why they are listed: an involved account itself, or messages of theirs in channels an
    /// involved account belongs to or received live.
    pub reasons: Vec<String>,
    /// Their messages in those channels (the most any one involved account could read).
    pub messages: u64,
}

/// Who and what a breach affected, from the audit log.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BreachReport {
    /// The breach.
    pub breach_id: BreachId,
    /// The window read: from (included).
    pub from: Option<DateTime<Utc>>,
    /// To (excluded).
    pub to: DateTime<Utc>,
    /// The involved accounts whose entries were read.
    pub accounts: Vec<UserId>,
    /// Entries read.
    pub entries: u64,
    /// Whether an account had more than 20,000 entries in the window (the rest were not read:
    /// narrow the window).
    pub truncated: bool,
    /// What the accounts did, by action.
    pub actions: Vec<ActionCount>,
    /// Where they acted from.
    pub addresses: Vec<AddressSeen>,
    /// The people whose data they reached (the involved accounts themselves excluded).
    pub people: Vec<PersonAffected>,
    /// The categories of data they reached.
    pub categories: Vec<CategoryAffected>,
    /// Everyone whose data the accounts could have reached, the accounts' own holders
    /// included: a superset of `people` to weigh who must be told (Art. 34). Channel
    /// membership is read as it is now.
    pub potentially_exposed: Vec<PotentiallyExposed>,
    /// Whether more people than 10,000 could have been reached (the rest are not listed).
    pub potentially_exposed_truncated: bool,
    /// What the audit log cannot tell about this window, in plain words: the limits of
    /// `people` and `categories`.
    pub coverage_gaps: Vec<String>,
}

fn aad<'a>(row: &'a str, column: &'static str) -> Aad<'a> {
    Aad {
        table: "breaches",
        row,
        column,
    }
}

fn title(value: String) -> Result<String, Error> {
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Err(ParseError::new("title", "a breach needs a title").into());
    }
    if value.chars().count() > MAX_TITLE_CHARS {
        return Err(
            ParseError::new("title", format!("at most {MAX_TITLE_CHARS} characters")).into(),
        );
    }
    Ok(value)
}

fn description(value: Option<String>) -> Result<Option<String>, Error> {
    let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if value
        .as_ref()
        .is_some_and(|v| v.chars().count() > MAX_DESCRIPTION_CHARS)
    {
        return Err(ParseError::new(
            "description",
            format!("at most {MAX_DESCRIPTION_CHARS} characters"),
        )
        .into());
    }
    Ok(value)
}

fn no_notification_reason(value: String) -> Result<Option<String>, Error> {
    let value = value.trim().to_owned();
    if value.chars().count() > MAX_REASON_CHARS {
        return Err(ParseError::new(
            "no_notification_reason",
            format!("at most {MAX_REASON_CHARS} characters"),
        )
        .into());
    }
    Ok(Some(value).filter(|v| !v.is_empty()))
}

/// A time from the caller, in microseconds as both backends store it; never in the future.
fn past(
    field: &'static str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, Error> {
    if at > now + Duration::minutes(5) {
        return Err(ParseError::new(field, "cannot be in the future").into());
    }
    if at < DateTime::<Utc>::UNIX_EPOCH {
        return Err(ParseError::new(field, "cannot be before 1970").into());
    }
    Ok(at.trunc_subsecs(6))
}

/// Whole hours from `now` to `deadline`, rounded up.
fn hours_until(deadline: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let seconds = (deadline - now).num_seconds();
    seconds.div_euclid(3600) + i64::from(seconds.rem_euclid(3600) > 0)
}

/// The data category an audit target belongs to.
fn category(target_type: &str, action: &str) -> &'static str {
    match target_type {
        "file" => "files",
        "document" => "documents",
        "user" if action.starts_with("data_subject.") => "data-subject exports and requests",
        "user" => "profiles",
        "channel" | "message" | "break_glass" | "legal_hold" => "messages",
        "workspace" if action == "search.query" => "search results",
        "audit_log" => "audit log",
        _ => "other",
    }
}

/// Checked times of a breach: discovered, began, ended, authority and people told.
struct Times {
    discovered_at: DateTime<Utc>,
    occurred_from: Option<DateTime<Utc>>,
    occurred_to: Option<DateTime<Utc>>,
    authority_notified_at: Option<DateTime<Utc>>,
    subjects_notified_at: Option<DateTime<Utc>>,
}

impl Times {
    fn check(self) -> Result<Times, Error> {
        if self.occurred_from.is_some_and(|f| f > self.discovered_at) {
            return Err(ParseError::new(
                "occurred_from",
                "a breach cannot begin after it was discovered",
            )
            .into());
        }
        if let (Some(from), Some(to)) = (self.occurred_from, self.occurred_to) {
            if to < from {
                return Err(ParseError::new("occurred_to", "ends before it begins").into());
            }
        }
        for (field, at) in [
            ("authority_notified_at", self.authority_notified_at),
            ("subjects_notified_at", self.subjects_notified_at),
        ] {
            if at.is_some_and(|at| at < self.discovered_at) {
                return Err(ParseError::new(field, "before the breach was discovered").into());
            }
        }
        Ok(self)
    }
}

/// The breach register; cheap to clone.
#[derive(Clone)]
pub struct BreachService {
    store: Store,
    auditor: Auditor,
    keyring: Keyring,
    audit: AuditService,
}

impl BreachService {
    /// The service over `store`, sealing with the auditor's keyring, reading the log through
    /// `audit`.
    pub fn new(store: Store, auditor: Auditor, audit: AuditService) -> BreachService {
        let keyring = auditor.keyring().clone();
        BreachService {
            store,
            auditor,
            keyring,
            audit,
        }
    }

    /// Records a breach (`breaches.manage`, checked before anything the caller sent);
    /// audited as `breach.recorded`.
    #[tracing::instrument(skip(self, actor, new), fields(actor = ?actor.user_id()))]
    pub async fn record(&self, actor: &Actor, new: NewBreach) -> Result<BreachView, Error> {
        let this = self.clone();
        let actor = actor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.authorize(tx, &actor).await?;
                    let now = Utc::now();
                    let title = title(new.title)?;
                    let description = description(new.description)?;
                    let times = Times {
                        discovered_at: past(
                            "discovered_at",
                            new.discovered_at.unwrap_or(now),
                            now,
                        )?,
                        occurred_from: new
                            .occurred_from
                            .map(|t| past("occurred_from", t, now))
                            .transpose()?,
                        occurred_to: new
                            .occurred_to
                            .map(|t| past("occurred_to", t, now))
                            .transpose()?,
                        authority_notified_at: None,
                        subjects_notified_at: None,
                    }
                    .check()?;
                    let accounts = accounts(new.accounts)?;
                    this.known_accounts(tx, &accounts).await?;
                    let id = BreachId::generate();
                    let row = id.to_string();
                    let sealed_title = this
                        .keyring
                        .encrypt(tx, &SCOPE, aad(&row, "title"), title.as_bytes())
                        .await?;
                    let sealed_description = match &description {
                        Some(d) => Some(
                            this.keyring
                                .encrypt(tx, &SCOPE, aad(&row, "description"), d.as_bytes())
                                .await?,
                        ),
                        None => None,
                    };
                    let at = Utc::now().trunc_subsecs(6);
                    let record = BreachRecord {
                        id,
                        title: sealed_title,
                        description: sealed_description,
                        status: BreachStatus::Open.as_str().to_owned(),
                        discovered_at: times.discovered_at,
                        occurred_from: times.occurred_from,
                        occurred_to: times.occurred_to,
                        accounts: ids_json(&accounts),
                        authority_notified_at: None,
                        subjects_notified_at: None,
                        created_by: actor.user_id(),
                        created_at: at,
                        updated_by: actor.user_id(),
                        updated_at: at,
                        closed_at: None,
                        no_notification_reason: None,
                    };
                    breach_store::insert(&mut tx.conn(), &record).await?;
                    let event = Event::by(&actor, "breach.recorded", Outcome::Allowed)
                        .target("breach", id)
                        .details(json!({
                            "discovered_at": record.discovered_at,
                            "authority_due_at": due(record.discovered_at),
                            "occurred_from": record.occurred_from,
                            "occurred_to": record.occurred_to,
                            "accounts": accounts,
                        }));
                    this.auditor.record(tx, event).await?;
                    Ok(this.finish_view(&record, title, description, None, Utc::now()))
                })
            })
            .await
    }

    /// Changes a breach that is not closed (`breaches.manage`, checked before anything the
    /// caller sent). The time of discovery may only move earlier: the 72 hours run from the
    /// first moment the breach was known. Closing needs the authority told or the reason it
    /// need not be. Audited as `breach.updated` with the names of the fields changed, and
    /// the dates, status and accounts before and after (the free text is named, not copied).
    #[tracing::instrument(skip(self, actor, change), fields(actor = ?actor.user_id()))]
    pub async fn update(
        &self,
        actor: &Actor,
        id: BreachId,
        change: BreachChange,
    ) -> Result<BreachView, Error> {
        let this = self.clone();
        let actor = actor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.authorize(tx, &actor).await?;
                    let now = Utc::now();
                    let new_title = change.title.map(title).transpose()?;
                    let new_description = match change.description {
                        Some(d) => Some(description(Some(d))?),
                        None => None,
                    };
                    let new_reason = change
                        .no_notification_reason
                        .map(no_notification_reason)
                        .transpose()?;
                    let at = |field: &'static str, v: Option<DateTime<Utc>>| {
                        v.map(|t| past(field, t, now)).transpose()
                    };
                    let discovered_at = at("discovered_at", change.discovered_at)?;
                    let occurred_from = at("occurred_from", change.occurred_from)?;
                    let occurred_to = at("occurred_to", change.occurred_to)?;
                    let authority_notified_at =
                        at("authority_notified_at", change.authority_notified_at)?;
                    let subjects_notified_at =
                        at("subjects_notified_at", change.subjects_notified_at)?;
                    let new_accounts = change.accounts.map(accounts).transpose()?;
                    let status = change.status;
                    let mut record = breach_store::by_id(&mut tx.conn(), id)
                        .await?
                        .ok_or(Error::NotFound("breach"))?;
                    if record.status == BreachStatus::Closed.as_str() {
                        return Err(Error::conflict(
                            "breach_closed",
                            "this breach is closed; its record no longer changes",
                        ));
                    }
                    if discovered_at.is_some_and(|d| d > record.discovered_at) {
                        return Err(ParseError::new(
                            "discovered_at",
                            "the time of discovery may only move earlier: the 72 hours run \
                             from the first moment the breach was known",
                        )
                        .into());
                    }
                    let before = snapshot(&record);
                    let mut changed: Vec<&'static str> = Vec::new();
                    let times = Times {
                        discovered_at: discovered_at.unwrap_or(record.discovered_at),
                        occurred_from: occurred_from.or(record.occurred_from),
                        occurred_to: occurred_to.or(record.occurred_to),
                        authority_notified_at: authority_notified_at
                            .or(record.authority_notified_at),
                        subjects_notified_at: subjects_notified_at.or(record.subjects_notified_at),
                    }
                    .check()?;
                    let row = id.to_string();
                    if let Some(t) = &new_title {
                        record.title = this
                            .keyring
                            .encrypt(tx, &SCOPE, aad(&row, "title"), t.as_bytes())
                            .await?;
                        changed.push("title");
                    }
                    if let Some(d) = &new_description {
                        record.description = match d {
                            Some(d) => Some(
                                this.keyring
                                    .encrypt(tx, &SCOPE, aad(&row, "description"), d.as_bytes())
                                    .await?,
                            ),
                            None => None,
                        };
                        changed.push("description");
                    }
                    if let Some(reason) = &new_reason {
                        record.no_notification_reason = match reason {
                            Some(r) => Some(
                                this.keyring
                                    .encrypt(
                                        tx,
                                        &SCOPE,
                                        aad(&row, "no_notification_reason"),
                                        r.as_bytes(),
                                    )
                                    .await?,
                            ),
                            None => None,
                        };
                        changed.push("no_notification_reason");
                    }
                    if let Some(accounts) = &new_accounts {
                        this.known_accounts(tx, accounts).await?;
                        record.accounts = ids_json(accounts);
                        changed.push("accounts");
                    }
                    for (field, given) in [
                        ("discovered_at", discovered_at.is_some()),
                        ("occurred_from", occurred_from.is_some()),
                        ("occurred_to", occurred_to.is_some()),
                        ("authority_notified_at", authority_notified_at.is_some()),
                        ("subjects_notified_at", subjects_notified_at.is_some()),
                    ] {
                        if given {
                            changed.push(field);
                        }
                    }
                    record.discovered_at = times.discovered_at;
                    record.occurred_from = times.occurred_from;
                    record.occurred_to = times.occurred_to;
                    record.authority_notified_at = times.authority_notified_at;
                    record.subjects_notified_at = times.subjects_notified_at;
                    let now = Utc::now().trunc_subsecs(6);
                    if let Some(status) = status {
                        if status == BreachStatus::Closed
                            && record.authority_notified_at.is_none()
                            && record.no_notification_reason.is_none()
                        {
                            return Err(Error::conflict(
                                "breach_not_notified",
                                "a breach is closed once the supervisory authority was told \
                                 (authority_notified_at) or the reason it need not be is \
                                 given (no_notification_reason)",
                            ));
                        }
                        record.status = status.as_str().to_owned();
                        if status == BreachStatus::Closed {
                            record.closed_at = Some(now);
                        }
                        changed.push("status");
                    }
                    record.updated_by = actor.user_id();
                    record.updated_at = now;
                    if !breach_store::update(&mut tx.conn(), &record).await? {
                        return Err(Error::NotFound("breach"));
                    }
                    let after = snapshot(&record);
                    let event = Event::by(&actor, "breach.updated", Outcome::Allowed)
                        .target("breach", id)
                        .details(json!({
                            "changed": changed,
                            "before": before,
                            "after": after,
                            "authority_due_at": due(record.discovered_at),
                        }));
                    this.auditor.record(tx, event).await?;
                    this.view(&mut tx.conn(), &record, Utc::now()).await
                })
            })
            .await
    }

    /// One breach (`breaches.manage`).
    #[tracing::instrument(skip(self, actor), fields(actor = ?actor.user_id()))]
    pub async fn get(&self, actor: &Actor, id: BreachId) -> Result<BreachView, Error> {
        let mut conn = self.store.reader().await?;
        self.authorize_read(&mut conn.conn(), actor).await?;
        let record = breach_store::by_id(&mut conn.conn(), id)
            .await?
            .ok_or(Error::NotFound("breach"))?;
        let view = self.view(&mut conn.conn(), &record, Utc::now()).await?;
        drop(conn);
        let event = Event::by(actor, "breach.viewed", Outcome::Allowed).target("breach", id);
        self.auditor.record_alone(&self.store, event).await?;
        Ok(view)
    }

    /// The register (`breaches.manage`), a page at a time, in the order recorded.
    #[tracing::instrument(skip(self, actor, query), fields(actor = ?actor.user_id()))]
    pub async fn list(&self, actor: &Actor, query: BreachListQuery) -> Result<BreachPage, Error> {
        let limit = query.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ParseError::new("limit", format!("1 to {MAX_PAGE}")).into());
        }
        let mut after = match &query.cursor {
            Some(c) => Some(
                c.parse::<BreachId>()
                    .map_err(|_| ParseError::new("cursor", "not a cursor this list gave"))?,
            ),
            None => None,
        };
        let mut conn = self.store.reader().await?;
        self.authorize_read(&mut conn.conn(), actor).await?;
        let now = Utc::now();
        let only_overdue = query.overdue == Some(true);
        let status = query.status.map(BreachStatus::as_str);
        let mut breaches = Vec::new();
        // `overdue` depends on the time of reading, so it filters after the read.
        let more = loop {
            let records = breach_store::list(&mut conn.conn(), status, after, limit + 1).await?;
            let read = records.len() as i64;
            for record in &records {
                after = Some(record.id);
                let view = self.view(&mut conn.conn(), record, now).await?;
                if !only_overdue || view.overdue {
                    breaches.push(view);
                }
                if breaches.len() as i64 > limit {
                    break;
                }
            }
            if breaches.len() as i64 > limit {
                break true;
            }
            if read <= limit {
                break false;
            }
        };
        breaches.truncate(limit as usize);
        drop(conn);
        let next_cursor = if more {
            breaches.last().map(|b| b.id.to_string())
        } else {
            None
        };
        let event = Event::by(actor, "breach.listed", Outcome::Allowed).details(json!({
            "status": status,
            "overdue": query.overdue,
            "cursor": query.cursor,
            "breaches": breaches.iter().map(|b| b.id).collect::<Vec<_>>(),
        }));
        self.auditor.record_alone(&self.store, event).await?;
        Ok(BreachPage {
            breaches,
            next_cursor,
        })
    }

    /// Who and what the breach affected, read from the audit log (`breaches.manage`):
    /// every entry its involved accounts acted in during the window, grouped into the people
    /// whose data they reached and the categories of data. Audited as `breach.reported` with
    /// counts.
    #[tracing::instrument(skip(self, actor, query), fields(actor = ?actor.user_id()))]
    pub async fn report(
        &self,
        actor: &Actor,
        id: BreachId,
        query: ReportQuery,
    ) -> Result<BreachReport, Error> {
        let record = {
            let mut conn = self.store.reader().await?;
            self.authorize_read(&mut conn.conn(), actor).await?;
            breach_store::by_id(&mut conn.conn(), id)
                .await?
                .ok_or(Error::NotFound("breach"))?
        };
        let now = Utc::now();
        for (field, at) in [("from", query.from), ("to", query.to)] {
            if at.is_some_and(|at| at < DateTime::<Utc>::UNIX_EPOCH) {
                return Err(ParseError::new(field, "cannot be before 1970").into());
            }
            if at.is_some_and(|at| at > now + Duration::days(1)) {
                return Err(ParseError::new(field, "cannot be in the future").into());
            }
        }
        let from = query.from.or(record.occurred_from);
        let to = query.to.or(record.occurred_to).unwrap_or(now);
        if from.is_some_and(|f| f >= to) {
            return Err(ParseError::new("to", "the window ends before it begins").into());
        }
        let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
        let involved = parse_ids(&record.accounts);
        let mut report = Tally::default();
        let mut truncated = false;
        for account in &involved {
            let (lines, more) = self
                .audit
                .by_actor_between(
                    *account,
                    from.map(stamp),
                    Some(stamp(to)),
                    MAX_REPORT_ENTRIES,
                )
                .await?;
            truncated |= more;
            let mut conn = self.store.reader().await?;
            for line in lines {
                report
                    .add(&mut conn.conn(), *account, &involved, line)
                    .await?;
            }
        }
        let mut exposed = Exposure::default();
        {
            let mut conn = self.store.reader().await?;
            for account in &involved {
                exposed.add(
                    *account,
                    0,
                    "an account involved in the breach (its holder's own data)".to_owned(),
                );
                for (who, messages, channels) in breach_store::authors_readable_by(
                    &mut conn.conn(),
                    *account,
                    MAX_POTENTIALLY_EXPOSED as i64 + 1,
                )
                .await?
                {
                    exposed.add(
                        who,
                        messages,
                        format!("messages in {channels} channel(s) account {account} belongs to"),
                    );
                }
            }
            let live: Vec<ChannelId> = report.live_channels.iter().copied().collect();
            for (who, messages, _) in breach_store::authors_in_channels(
                &mut conn.conn(),
                &live,
                MAX_POTENTIALLY_EXPOSED as i64 + 1,
            )
            .await?
            {
                exposed.add(
                    who,
                    messages,
                    "messages in a PHI channel an involved account received live".to_owned(),
                );
            }
        }
        let report = report.finish(id, from, to, involved, truncated, exposed);
        let event = Event::by(actor, "breach.reported", Outcome::Allowed)
            .target("breach", id)
            .details(json!({
                "from": report.from,
                "to": report.to,
                "accounts": report.accounts,
                "entries": report.entries,
                "people": report.people.len(),
                "potentially_exposed": report.potentially_exposed.len(),
                "truncated": report.truncated,
            }));
        self.auditor.record_alone(&self.store, event).await?;
        Ok(report)
    }

    async fn authorize(&self, tx: &mut Tx, actor: &Actor) -> Result<(), Error> {
        self.auditor
            .authorize(tx, actor, Action::ManageBreaches, Resource::System)
            .await
    }

    async fn authorize_read(&self, conn: &mut Conn<'_>, actor: &Actor) -> Result<(), Error> {
        self.auditor
            .authorize_read(
                &self.store,
                conn,
                actor,
                Action::ManageBreaches,
                Resource::System,
            )
            .await
    }

    async fn known_accounts(&self, tx: &mut Tx, accounts: &[UserId]) -> Result<(), Error> {
        let found = store::holds::users_among(&mut tx.conn(), accounts).await?;
        if let Some(unknown) = accounts.iter().find(|a| !found.contains(a)) {
            return Err(ParseError::new("accounts", format!("no account {unknown}")).into());
        }
        Ok(())
    }

    async fn view(
        &self,
        conn: &mut Conn<'_>,
        record: &BreachRecord,
        now: DateTime<Utc>,
    ) -> Result<BreachView, Error> {
        let row = record.id.to_string();
        let title = self
            .open(conn, &row, "title", Some(&record.title))
            .await?
            .unwrap_or_default();
        let description = self
            .open(conn, &row, "description", record.description.as_ref())
            .await?;
        let reason = self
            .open(
                conn,
                &row,
                "no_notification_reason",
                record.no_notification_reason.as_ref(),
            )
            .await?;
        Ok(self.finish_view(record, title, description, reason, now))
    }

    async fn open(
        &self,
        conn: &mut Conn<'_>,
        row: &str,
        column: &'static str,
        sealed: Option<&Vec<u8>>,
    ) -> Result<Option<String>, Error> {
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        match self
            .keyring
            .decrypt_text(conn, &SCOPE, aad(row, column), sealed)
            .await
        {
            Ok(text) => Ok(Some(text)),
            Err(CryptoError::UnknownKey { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn finish_view(
        &self,
        record: &BreachRecord,
        title: String,
        description: Option<String>,
        no_notification_reason: Option<String>,
        now: DateTime<Utc>,
    ) -> BreachView {
        let status = BreachStatus::parse(&record.status).unwrap_or(BreachStatus::Open);
        let due = due(record.discovered_at);
        let waiting =
            record.authority_notified_at.is_none() && record.no_notification_reason.is_none();
        BreachView {
            id: record.id,
            title,
            description,
            status,
            discovered_at: record.discovered_at,
            occurred_from: record.occurred_from,
            occurred_to: record.occurred_to,
            accounts: parse_ids(&record.accounts),
            authority_due_at: due,
            hours_left: waiting.then(|| hours_until(due, now)),
            overdue: waiting && now > due,
            authority_notified_at: record.authority_notified_at,
            notified_late: record.authority_notified_at.is_some_and(|at| at > due),
            subjects_notified_at: record.subjects_notified_at,
            no_notification_reason,
            created_by: record.created_by,
            created_at: record.created_at,
            updated_by: record.updated_by,
            updated_at: record.updated_at,
            closed_at: record.closed_at,
        }
    }
}

/// A breach's dates, status and accounts, for the audit entry of a change (never its text:
/// only whether a reason not to notify is on record).
fn snapshot(record: &BreachRecord) -> serde_json::Value {
    json!({
        "status": record.status,
        "discovered_at": record.discovered_at,
        "occurred_from": record.occurred_from,
        "occurred_to": record.occurred_to,
        "accounts": parse_ids(&record.accounts),
        "authority_notified_at": record.authority_notified_at,
        "subjects_notified_at": record.subjects_notified_at,
        "no_notification_reason_given": record.no_notification_reason.is_some(),
    })
}

fn due(discovered_at: DateTime<Utc>) -> DateTime<Utc> {
    discovered_at + Duration::hours(AUTHORITY_DEADLINE_HOURS)
}

fn accounts(mut ids: Vec<UserId>) -> Result<Vec<UserId>, Error> {
    ids.sort();
    ids.dedup();
    if ids.len() > MAX_ACCOUNTS {
        return Err(ParseError::new("accounts", format!("at most {MAX_ACCOUNTS} accounts")).into());
    }
    Ok(ids)
}

fn ids_json(ids: &[UserId]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

fn parse_ids(stored: &str) -> Vec<UserId> {
    serde_json::from_str(stored).unwrap_or_default()
}

/// Who could have been reached, by person.
#[derive(Default)]
struct Exposure {
    people: BTreeMap<UserId, (BTreeSet<String>, u64)>,
}

impl Exposure {
    fn add(&mut self, who: UserId, messages: i64, reason: String) {
        let entry = self.people.entry(who).or_default();
        entry.0.insert(reason);
        entry.1 = entry.1.max(u64::try_from(messages).unwrap_or(0));
    }
}

/// What a report has found so far.
#[derive(Default)]
struct Tally {
    entries: u64,
    actions: BTreeMap<String, (u64, u64)>,
    addresses: BTreeMap<(UserId, Option<String>), AddressSeen>,
    people: BTreeMap<UserId, Vec<Access>>,
    categories: BTreeMap<&'static str, (BTreeSet<String>, u64)>,
    /// Owners looked up so far, by `type:id`.
    owners: std::collections::HashMap<String, Option<UserId>>,
    /// PHI channels an involved account received live.
    live_channels: BTreeSet<ChannelId>,
    /// Entries of actions the report cannot place, by action.
    unplaced: BTreeMap<String, u64>,
    /// Objects reached whose owner is no longer known (deleted since).
    ownerless: u64,
    /// Objects not looked up: past [`MAX_REPORT_OBJECTS`].
    not_looked_up: u64,
    /// Entries whose details could not be read (their key was destroyed).
    unreadable: u64,
}

/// The objects a `phi.read` entry names, as `(type, id)`, from its details.
fn phi_objects(line: &crate::audit::export::EventLine) -> Option<Vec<(String, String)>> {
    let details = line.details.as_ref()?;
    let kind = details.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    let ids = details.get("ids")?.as_array()?;
    let target = line.target_type.as_deref().unwrap_or("");
    let objects = ids
        .iter()
        .filter_map(|id| id.as_str())
        .filter_map(|id| {
            let (kind, id) = match (kind, target) {
                ("search_results", _) => {
                    let (k, id) = id.split_once(':')?;
                    (k, id)
                }
                ("live_channels", _) => ("channel", id),
                ("files", _) | (_, "file") => ("file", id),
                ("documents", _) | (_, "document") => ("document", id),
                _ => ("message", id),
            };
            Some((kind.to_owned(), id.to_owned()))
        })
        .collect();
    Some(objects)
}

impl Tally {
    async fn add(
        &mut self,
        conn: &mut Conn<'_>,
        account: UserId,
        involved: &[UserId],
        line: crate::audit::export::EventLine,
    ) -> Result<(), Error> {
        self.entries += 1;
        let allowed = line.outcome == "allowed";
        let counts = self.actions.entry(line.action.clone()).or_default();
        if allowed {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
        let sign_in = line.action == "auth.sign_in" || line.action == "auth.refresh";
        let seen = self
            .addresses
            .entry((account, line.ip.clone()))
            .or_insert_with(|| AddressSeen {
                account,
                ip: line.ip.clone(),
                first_seen: line.occurred_at.clone(),
                last_seen: line.occurred_at.clone(),
                entries: 0,
                sign_ins: 0,
            });
        seen.entries += 1;
        seen.sign_ins += u64::from(sign_in && allowed);
        seen.last_seen = line.occurred_at.clone();
        if line.details_enc.is_some() && line.details.is_none() {
            self.unreadable += 1;
        }
        // Refusals reached nothing.
        if !allowed {
            return Ok(());
        }
        let (Some(target_type), Some(target_id)) = (&line.target_type, &line.target_id) else {
            return Ok(());
        };
        // A read of PHI names what it read: each is reached.
        let reached = if line.action == "phi.read" {
            match phi_objects(&line) {
                Some(objects) => objects,
                None => {
                    *self.unplaced.entry(line.action.clone()).or_default() += 1;
                    return Ok(());
                }
            }
        } else {
            let category = category(target_type, &line.action);
            if category == "other" {
                *self.unplaced.entry(line.action.clone()).or_default() += 1;
                return Ok(());
            }
            vec![(target_type.clone(), target_id.clone())]
        };
        for (object_type, object_id) in reached {
            let category = match object_type.as_str() {
                "message" => "messages",
                _ => category(&object_type, &line.action),
            };
            if object_type == "channel" && line.action == "phi.read" {
                if let Ok(channel) = object_id.parse::<ChannelId>() {
                    self.live_channels.insert(channel);
                }
            }
            let key = format!("{object_type}:{object_id}");
            let reached = self.categories.entry(category).or_default();
            reached.0.insert(key.clone());
            reached.1 += 1;
            let person = match self.owners.get(&key) {
                Some(known) => *known,
                None if self.owners.len() >= MAX_REPORT_OBJECTS => {
                    self.not_looked_up += 1;
                    continue;
                }
                None => {
                    let found = owner(conn, &object_type, &object_id).await?;
                    if found.is_none() && object_type != "channel" && object_type != "workspace" {
                        self.ownerless += 1;
                    }
                    self.owners.insert(key, found);
                    found
                }
            };
            if let Some(person) = person.filter(|p| !involved.contains(p)) {
                self.people.entry(person).or_default().push(Access {
                    at: line.occurred_at.clone(),
                    by: account,
                    action: line.action.clone(),
                    target_type: object_type,
                    target_id: object_id,
                    category: category.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// What the log cannot tell about this report, in plain words.
    fn gaps(&self, truncated: bool, exposed_truncated: bool) -> Vec<String> {
        let mut gaps = vec![
            "Reads of messages outside PHI channels are not audited: `people` names only what \
             the log shows was reached; `potentially_exposed` lists the authors of messages in \
             the channels the involved accounts belong to (membership as it is now)."
                .to_owned(),
            "Documents and files an involved account could open but is not recorded opening \
             are not listed."
                .to_owned(),
        ];
        if truncated {
            gaps.push(format!(
                "An involved account had more than {MAX_REPORT_ENTRIES} entries in the window; \
                 the rest were not read: narrow the window."
            ));
        }
        if exposed_truncated {
            gaps.push(format!(
                "More than {MAX_POTENTIALLY_EXPOSED} people could have been reached; the rest \
                 are not listed."
            ));
        }
        if !self.unplaced.is_empty() {
            let actions: Vec<String> = self
                .unplaced
                .iter()
                .map(|(action, n)| format!("{action} ({n})"))
                .collect();
            gaps.push(format!(
                "Entries whose target names no one's data, or cannot be read: {}.",
                actions.join(", ")
            ));
        }
        if self.ownerless > 0 {
            gaps.push(format!(
                "{} object(s) reached no longer exist; whose data they were is not known.",
                self.ownerless
            ));
        }
        if self.not_looked_up > 0 {
            gaps.push(format!(
                "{} reach(es) past the first {MAX_REPORT_OBJECTS} objects were not traced to \
                 their owner.",
                self.not_looked_up
            ));
        }
        if self.unreadable > 0 {
            gaps.push(format!(
                "{} entries' details are unreadable (their person was erased); what they \
                 reached is not known.",
                self.unreadable
            ));
        }
        gaps
    }

    fn finish(
        self,
        breach_id: BreachId,
        from: Option<DateTime<Utc>>,
        to: DateTime<Utc>,
        accounts: Vec<UserId>,
        truncated: bool,
        exposed: Exposure,
    ) -> BreachReport {
        let exposed_truncated = exposed.people.len() > MAX_POTENTIALLY_EXPOSED;
        let coverage_gaps = self.gaps(truncated, exposed_truncated);
        BreachReport {
            breach_id,
            from,
            to,
            accounts,
            entries: self.entries,
            truncated,
            actions: self
                .actions
                .into_iter()
                .map(|(action, (allowed, refused))| ActionCount {
                    action,
                    allowed,
                    refused,
                })
                .collect(),
            addresses: self.addresses.into_values().collect(),
            people: self
                .people
                .into_iter()
                .map(|(user_id, mut accesses)| {
                    accesses.sort_by(|a, b| a.at.cmp(&b.at));
                    let categories: BTreeSet<String> =
                        accesses.iter().map(|a| a.category.clone()).collect();
                    PersonAffected {
                        user_id,
                        categories: categories.into_iter().collect(),
                        accesses,
                    }
                })
                .collect(),
            categories: self
                .categories
                .into_iter()
                .map(|(category, (objects, entries))| CategoryAffected {
                    category: category.to_owned(),
                    objects: objects.len() as u64,
                    entries,
                })
                .collect(),
            potentially_exposed: exposed
                .people
                .into_iter()
                .take(MAX_POTENTIALLY_EXPOSED)
                .map(|(user_id, (reasons, messages))| PotentiallyExposed {
                    user_id,
                    reasons: reasons.into_iter().collect(),
                    messages,
                })
                .collect(),
            potentially_exposed_truncated: exposed_truncated,
            coverage_gaps,
        }
    }
}

/// Whose data the object `kind:id` is: a message's author, a file's uploader, a document's
/// creator, an account itself.
async fn owner(conn: &mut Conn<'_>, kind: &str, id: &str) -> Result<Option<UserId>, Error> {
    Ok(match kind {
        "user" => id.parse::<UserId>().ok(),
        "message" => match id.parse::<MessageId>() {
            Ok(message) => breach_store::author_of(conn, message).await?,
            Err(_) => None,
        },
        "file" => match id.parse::<FileId>() {
            Ok(file) => breach_store::uploader_of(conn, file).await?,
            Err(_) => None,
        },
        "document" => match id.parse::<DocumentId>() {
            Ok(doc) => breach_store::creator_of(conn, doc).await?,
            Err(_) => None,
        },
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_left_round_up_and_go_negative() {
        let now = Utc::now();
        assert_eq!(hours_until(now + Duration::hours(72), now), 72);
        assert_eq!(
            hours_until(now + Duration::hours(72) - Duration::seconds(1), now),
            72
        );
        assert_eq!(hours_until(now - Duration::hours(2), now), -2);
    }
}
