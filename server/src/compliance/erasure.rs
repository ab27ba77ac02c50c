//! Erasure (GDPR Art. 17): a person's personal data destroyed, their content deleted or left
//! without an author as each workspace's policy says, legal holds respected, and the audit
//! chain still verifiable.
//!
//! A compliance officer or system administrator (`data_subjects.erase`) asks for it with a
//! reason; it cannot be undone. It runs in two parts:
//!
//! 1. **At once, in one write** (the request's): the account is emptied (email, name and
//!    password gone, the email's blind index replaced by an unrelated value so the address
//!    can be used again, disabled, `erased_at` set); the person's sessions end (their sockets
//!    close) and every row the data inventory lists as theirs that lives as long as the
//!    account, a session or a sign-in (sessions, single sign-on identities and hand-offs) is
//!    deleted, with their workspace and channel memberships, reactions, mentions, thread
//!    subscriptions and response URLs. The request is audited (`data_subject.erasure_started`,
//!    with its reason).
//! 2. **In the background, resumable**: in each workspace holding their content, the
//!    effective `data_subject.erasure` decides. `delete` destroys the messages they wrote (with
//!    their earlier versions, kept text and files, through the retention job's own batch),
//!    the files they uploaded and their comments on documents and workflow tasks, except what a legal hold
//!    covers, which stays as it is for the compliance officer; `anonymize` keeps the content
//!    under the emptied account, a pseudonym without a profile. Unfinished uploads go either
//!    way. Then every version of the person's data key (`user:<id>`) is destroyed: what is
//!    still sealed under it (audit entries' addresses and details, anything a backup holds)
//!    can no longer be read. SQLite's write-ahead log is emptied (`secure_delete` zeroes the
//!    freed pages); on PostgreSQL the data-key table is rewritten. The end is audited
//!    (`data_subject.erased`, counts only).
//!
//! Invariant: nothing erasure writes is sealed under the erased person's key (its audit
//! entries are the requester's and Concord's), so no key of theirs is made again. The audit
//! chain is not touched: entries name the erased account's id, a pseudonym once its profile
//! is gone, and their sealed fields become unreadable, which the hash does not cover.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::holds::InForce;
use super::retention::RetentionService;
use crate::audit::{Auditor, Event, Outcome};
use crate::crypto::Scope;
use crate::domain::{ChannelId, FileId, UserId, WorkspaceId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::inventory::{Inventory, Retention, SubjectKind};
use crate::policy::{Erasure, PolicyService};
use crate::rbac::{Action, Actor, Resource};
use crate::store::erasure::{self as erasure_store, ErasureRecord};
use crate::store::{self, Store, Tx};

/// The longest reason an erasure may give.
pub const MAX_REASON_CHARS: usize = 500;

/// Tables relating a person to others' objects, not in the data inventory (they hold no
/// ciphertext): the person's side of each relation goes with the account.
const RELATIONS: &[(&str, &str)] = &[
    ("channel_members", "user_id"),
    ("memberships", "user_id"),
    ("reactions", "user_id"),
    ("mentions", "user_id"),
    ("thread_followers", "user_id"),
    ("bot_response_urls", "user_id"),
];

/// An erasure, as asked for.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "Art. 17 request received 2026-11-30, ticket DSR-118"}))]
pub struct EraseRequest {
    /// Why (the request it answers); kept in the audit log. At most 500 characters.
    pub reason: String,
}

/// What an erasure did in one workspace.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkspaceErasure {
    /// The workspace.
    pub workspace_id: Option<WorkspaceId>,
    /// What its policy said (`delete` or `anonymize`).
    pub content: Option<Erasure>,
    /// Messages destroyed.
    pub messages_destroyed: u64,
    /// Thread roots of theirs left as content-free tombstones, because others replied.
    pub messages_emptied: u64,
    /// Messages kept because a legal hold covers them.
    pub messages_held: u64,
    /// Files destroyed.
    pub files_destroyed: u64,
    /// Files kept because a legal hold covers them.
    pub files_held: u64,
    /// Comments on documents and workflow tasks destroyed.
    pub comments_destroyed: u64,
    /// Whether this workspace is done.
    pub done: bool,
}

/// What an erasure did.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErasureReport {
    /// Sessions ended.
    pub sessions_ended: u64,
    /// Rows deleted with the account, by table.
    pub rows_deleted: BTreeMap<String, u64>,
    /// Per workspace holding their content.
    pub workspaces: Vec<WorkspaceErasure>,
    /// Versions of the person's data key destroyed.
    pub keys_destroyed: u64,
}

/// An erasure and how far it got.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ErasureView {
    /// Its id.
    pub id: Uuid,
    /// The person erased.
    pub user_id: UserId,
    /// Who asked for it.
    pub requested_by: Option<UserId>,
    /// `running`; then `waiting_on_holds` while legal holds keep content it would destroy;
    /// `done`.
    pub status: String,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// When it last advanced.
    pub updated_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// What it did so far.
    pub report: ErasureReport,
}

fn view(record: ErasureRecord) -> Result<ErasureView, Error> {
    let report = serde_json::from_str(&record.report).map_err(internal)?;
    Ok(ErasureView {
        id: record.id,
        user_id: record.user_id,
        requested_by: record.requested_by,
        status: record.status,
        started_at: record.started_at,
        updated_at: record.updated_at,
        finished_at: record.finished_at,
        report,
    })
}

/// Erasures; cheap to clone.
#[derive(Clone)]
pub struct ErasureService {
    store: Store,
    auditor: Auditor,
    policies: PolicyService,
    retention: RetentionService,
    inventory: Arc<Inventory>,
    batch: i64,
    /// One erasure's background part at a time in this process.
    running: Arc<tokio::sync::Mutex<()>>,
    stop: CancellationToken,
}

impl ErasureService {
    /// The service; `stop` ends background parts between batches (they resume at the next
    /// start).
    pub fn new(
        store: Store,
        auditor: Auditor,
        policies: PolicyService,
        retention: RetentionService,
        inventory: Arc<Inventory>,
        stop: CancellationToken,
    ) -> ErasureService {
        ErasureService {
            batch: retention.batch_size(),
            store,
            auditor,
            policies,
            retention,
            inventory,
            running: Arc::new(tokio::sync::Mutex::new(())),
            stop,
        }
    }

    /// Erases `subject`, as `actor` (`data_subjects.erase`): the account is emptied at once,
    /// the rest runs in the background; audited.
    #[tracing::instrument(skip(self, actor, request), fields(actor = ?actor.user_id()))]
    pub async fn start(
        &self,
        actor: &Actor,
        subject: UserId,
        request: EraseRequest,
    ) -> Result<ErasureView, Error> {
        {
            let mut conn = self.store.reader().await?;
            self.auditor
                .authorize_read(
                    &self.store,
                    &mut conn.conn(),
                    actor,
                    Action::ErasePersonalData,
                    Resource::Account(subject),
                )
                .await?;
        }
        let reason = request.reason.trim().to_owned();
        if reason.is_empty() {
            return Err(Error::refused(
                "reason_required",
                "an erasure needs a reason (the request it answers), which the audit log keeps",
            ));
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(crate::domain::ParseError {
                field: "reason",
                message: format!("must be at most {MAX_REASON_CHARS} characters"),
            }
            .into());
        }
        if actor.user_id() == Some(subject) {
            return Err(Error::refused(
                "cannot_erase_self",
                "no one erases their own account; another compliance officer or administrator does",
            ));
        }
        // Tables whose rows live as long as the account, a session or a sign-in, found
        // through the data inventory: they go with the account.
        let owned: Vec<(&'static str, &'static str)> = self.owned_rows();
        let actor = actor.clone();
        let auditor = self.auditor.clone();
        let record = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let Some(user) = store::users::by_id(&mut tx.conn(), subject).await? else {
                        return Err(Error::NotFound("user"));
                    };
                    if erasure_store::of_user(&mut tx.conn(), subject)
                        .await?
                        .is_some()
                    {
                        return Err(Error::conflict(
                            "already_erased",
                            "this person is erased or being erased; GET the erasure to follow it",
                        ));
                    }
                    if erasure_store::is_bot(&mut tx.conn(), subject).await? {
                        return Err(Error::refused(
                            "not_a_person",
                            "this account is a bot's; delete the bot instead",
                        ));
                    }
                    if user.system_role_id.is_some() {
                        return Err(Error::conflict(
                            "holds_system_role",
                            "this person holds a system role; take it away first",
                        ));
                    }
                    let sole = erasure_store::sole_owner_of(
                        &mut tx.conn(),
                        subject,
                        crate::rbac::builtin::OWNER,
                    )
                    .await?;
                    if !sole.is_empty() {
                        let list: Vec<String> = sole.iter().map(|w| w.to_string()).collect();
                        return Err(Error::conflict(
                            "last_owner",
                            format!(
                                "this person is the only owner of workspace {}; make someone else an owner first",
                                list.join(", ")
                            ),
                        ));
                    }
                    let now = Utc::now();
                    let mut report = ErasureReport::default();
                    let ended =
                        store::sessions::revoke_all(&mut tx.conn(), subject, now, "account_erased")
                            .await?;
                    report.sessions_ended = ended.len() as u64;
                    let workspaces = erasure_store::memberships_of(&mut tx.conn(), subject).await?;
                    let channels =
                        erasure_store::channel_memberships_of(&mut tx.conn(), subject).await?;
                    for (table, column) in owned.iter().chain(RELATIONS) {
                        let n =
                            erasure_store::delete_rows_of(&mut tx.conn(), table, column, subject)
                                .await?;
                        if n > 0 {
                            *report.rows_deleted.entry((*table).to_owned()).or_default() += n;
                        }
                    }
                    // Invitations to their address (before its blind index is replaced) and
                    // documents shared with them in person.
                    for (table, n) in [
                        (
                            "invitations",
                            erasure_store::delete_invitations_to(&mut tx.conn(), subject).await?,
                        ),
                        (
                            "document_access",
                            erasure_store::delete_document_access_of(&mut tx.conn(), subject)
                                .await?,
                        ),
                    ] {
                        if n > 0 {
                            report.rows_deleted.insert(table.to_owned(), n);
                        }
                    }
                    let index = format!("erased:{}", Uuid::now_v7());
                    erasure_store::empty_account(&mut tx.conn(), subject, &index, now).await?;
                    let record = ErasureRecord {
                        id: Uuid::now_v7(),
                        user_id: subject,
                        requested_by: actor.user_id(),
                        status: "running".into(),
                        report: serde_json::to_string(&report).map_err(internal)?,
                        started_at: now,
                        updated_at: now,
                        finished_at: None,
                    };
                    erasure_store::insert(&mut tx.conn(), &record).await?;
                    // Audited under the requester's key, never the erased person's.
                    auditor
                        .record(
                            tx,
                            Event::by(&actor, "data_subject.erasure_started", Outcome::Allowed)
                                .target("user", subject)
                                .details(json!({
                                    "reason": reason,
                                    "erasure": record.id,
                                    "sessions_ended": report.sessions_ended,
                                    "rows_deleted": report.rows_deleted,
                                })),
                        )
                        .await?;
                    if !ended.is_empty() {
                        tx.emit(DomainEvent::SessionsRevoked {
                            user_id: subject,
                            sessions: ended,
                            reason: "account_erased".into(),
                        });
                    }
                    for (workspace_id, channel_id) in channels {
                        tx.emit(DomainEvent::ChannelMemberRemoved {
                            workspace_id,
                            channel_id,
                            user_id: subject,
                            by: actor.user_id(),
                        });
                    }
                    for workspace_id in workspaces {
                        tx.emit(DomainEvent::MemberRemoved {
                            workspace_id,
                            user_id: subject,
                        });
                    }
                    Ok::<_, Error>(record)
                })
            })
            .await?;
        let out = view(record.clone())?;
        let this = self.clone();
        tokio::spawn(async move { this.finish_logged(record.id, subject).await });
        Ok(out)
    }

    /// The erasure of `subject` (`data_subjects.erase`).
    pub async fn get(&self, actor: &Actor, subject: UserId) -> Result<ErasureView, Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ErasePersonalData,
                Resource::Account(subject),
            )
            .await?;
        match erasure_store::of_user(&mut conn.conn(), subject).await? {
            Some(record) => view(record),
            None => Err(Error::NotFound("erasure")),
        }
    }

    /// The background task: resumes the erasures an earlier process left running, one after
    /// the other, then every `retention.interval_seconds` (if set) destroys what legal holds
    /// no longer keep of erasures waiting on them.
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            this.resume().await;
            let Some(period) = this.retention.interval() else {
                return;
            };
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = this.stop.cancelled() => break,
                    _ = ticks.tick() => {
                        if let Err(err) = this.destroy_released().await {
                            tracing::warn!(error = %err, "erasure: destroying what holds released failed");
                        }
                    }
                }
            }
        })
    }

    async fn resume(&self) {
        let running = match self.store.reader().await {
            Ok(mut conn) => erasure_store::running(&mut conn.conn()).await,
            Err(err) => Err(err),
        };
        match running {
            Ok(list) => {
                for record in list {
                    if self.stop.is_cancelled() {
                        break;
                    }
                    tracing::info!(user = %record.user_id, "erasure: resuming");
                    self.finish_logged(record.id, record.user_id).await;
                }
            }
            Err(err) => tracing::warn!(error = %err, "erasure: could not list running ones"),
        }
    }

    /// The inventory's tables whose rows of a person go with their account: rows that name
    /// the person on the row itself and live, every listed column of them, as long as the
    /// account, a session, a sign-in or an invitation. A table with any column kept as content
    /// or in the audit log (files: their unsent tail is transient, the file is content) is
    /// decided otherwise.
    fn owned_rows(&self) -> Vec<(&'static str, &'static str)> {
        let kept = |table: &str| {
            self.inventory.columns().iter().any(|c| {
                c.table == table
                    && matches!(
                        c.retention,
                        Retention::Content | Retention::AuditLog | Retention::Register
                    )
            })
        };
        let mut out: Vec<(&'static str, &'static str)> = Vec::new();
        for c in self.inventory.columns() {
            let Some(who) = c.subject.who else { continue };
            if c.table == "users"
                || !who.via.is_empty()
                || c.subject.kind == SubjectKind::Members
                || kept(c.table)
            {
                continue;
            }
            if !out.contains(&(c.table, who.column)) {
                out.push((c.table, who.column));
            }
        }
        out
    }

    async fn finish_logged(&self, id: Uuid, subject: UserId) {
        let _one = self.running.lock().await;
        match self.finish(id, subject).await {
            Ok(true) => tracing::info!(user = %subject, "erasure: done"),
            Ok(false) => tracing::info!(user = %subject, "erasure: paused; resumes at next start"),
            Err(err) => {
                tracing::error!(user = %subject, error = %err, "erasure: failed; resumes at next start")
            }
        }
    }

    /// The background part; false if it stopped early (it resumes at the next start).
    async fn finish(&self, id: Uuid, subject: UserId) -> Result<bool, Error> {
        let record = {
            let mut conn = self.store.reader().await?;
            erasure_store::of_user(&mut conn.conn(), subject).await?
        };
        let Some(record) = record.filter(|r| r.id == id && r.status == "running") else {
            return Ok(true);
        };
        let mut report: ErasureReport = serde_json::from_str(&record.report).map_err(internal)?;
        let workspaces = {
            let mut conn = self.store.reader().await?;
            erasure_store::workspaces_with_content(&mut conn.conn(), subject).await?
        };
        for workspace in workspaces {
            if let Some(w) = report
                .workspaces
                .iter()
                .find(|w| w.workspace_id == Some(workspace))
            {
                if w.done {
                    continue;
                }
            }
            let (resolved, _) = self.policies.effective(workspace).await?;
            let mode = resolved.policy.data_subject.erasure;
            let Some(w) = self.erase_workspace(workspace, subject, mode).await? else {
                return Ok(false);
            };
            report
                .workspaces
                .retain(|x| x.workspace_id != Some(workspace));
            report.workspaces.push(w);
            self.save(id, &report, None, "running").await?;
        }
        // Last, the key: whatever is still sealed under it becomes unreadable.
        let keyring = self.auditor.keyring().clone();
        let auditor = self.auditor.clone();
        let mut done = report.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    done.keys_destroyed = keyring.destroy(tx, &Scope::User(subject)).await?;
                    let now = Utc::now();
                    let text = serde_json::to_string(&done).map_err(internal)?;
                    erasure_store::advance(
                        &mut tx.conn(),
                        id,
                        &text,
                        now,
                        Some(now),
                        status_of(&done),
                    )
                    .await?;
                    auditor
                        .record(
                            tx,
                            Event::by(&Actor::system(), "data_subject.erased", Outcome::Allowed)
                                .target("user", subject)
                                .details(json!({ "erasure": id, "report": done })),
                        )
                        .await?;
                    tx.emit(DomainEvent::PersonErased {
                        user_id: subject,
                        workspaces: done
                            .workspaces
                            .iter()
                            .filter(|w| w.content == Some(Erasure::Delete))
                            .filter_map(|w| w.workspace_id)
                            .collect(),
                    });
                    Ok::<_, Error>(())
                })
            })
            .await?;
        self.store.scrub_after_erasure().await?;
        Ok(true)
    }

    async fn save(
        &self,
        id: Uuid,
        report: &ErasureReport,
        finished: Option<DateTime<Utc>>,
        status: &'static str,
    ) -> Result<(), Error> {
        let text = serde_json::to_string(report).map_err(internal)?;
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    erasure_store::advance(&mut tx.conn(), id, &text, Utc::now(), finished, status)
                        .await?;
                    Ok::<_, Error>(())
                })
            })
            .await
    }

    /// Handles `subject`'s content in one workspace as `mode` says; `None` if stopped early.
    async fn erase_workspace(
        &self,
        workspace: WorkspaceId,
        subject: UserId,
        mode: Erasure,
    ) -> Result<Option<WorkspaceErasure>, Error> {
        if self.stop.is_cancelled() {
            return Ok(None);
        }
        let mut w = WorkspaceErasure {
            workspace_id: Some(workspace),
            content: Some(mode),
            ..WorkspaceErasure::default()
        };
        if mode == Erasure::Delete && !self.erase_messages(workspace, subject, &mut w).await? {
            return Ok(None);
        }
        if !self.erase_files(workspace, subject, mode, &mut w).await? {
            return Ok(None);
        }
        if mode == Erasure::Delete {
            w.comments_destroyed = self
                .store
                .write(move |tx: &mut Tx| {
                    Box::pin(async move {
                        Ok::<_, Error>(
                            erasure_store::delete_comments_of(&mut tx.conn(), workspace, subject)
                                .await?,
                        )
                    })
                })
                .await?;
        }
        w.done = true;
        Ok(Some(w))
    }

    /// Destroys, for every erasure waiting on legal holds, what no hold covers any more (a
    /// hold was released or narrowed); audited when it destroyed anything.
    pub async fn destroy_released(&self) -> Result<(), Error> {
        let waiting = {
            let mut conn = self.store.reader().await?;
            erasure_store::waiting_on_holds(&mut conn.conn()).await?
        };
        for record in waiting {
            let _one = self.running.lock().await;
            let mut report: ErasureReport =
                serde_json::from_str(&record.report).map_err(internal)?;
            let mut destroyed = 0;
            let mut purged_in = Vec::new();
            for w in report.workspaces.iter_mut() {
                let (Some(workspace), Some(Erasure::Delete)) = (w.workspace_id, w.content) else {
                    continue;
                };
                if w.messages_held + w.files_held == 0 {
                    continue;
                }
                let Some(again) = self
                    .erase_workspace(workspace, record.user_id, Erasure::Delete)
                    .await?
                else {
                    return Ok(());
                };
                let n = again.messages_destroyed
                    + again.messages_emptied
                    + again.files_destroyed
                    + again.comments_destroyed;
                destroyed += n;
                if n > 0 {
                    purged_in.push(workspace);
                }
                w.messages_destroyed += again.messages_destroyed;
                w.messages_emptied += again.messages_emptied;
                w.files_destroyed += again.files_destroyed;
                w.comments_destroyed += again.comments_destroyed;
                w.messages_held = again.messages_held;
                w.files_held = again.files_held;
            }
            if destroyed == 0 {
                continue;
            }
            let (id, subject) = (record.id, record.user_id);
            let status = status_of(&report);
            let text = serde_json::to_string(&report).map_err(internal)?;
            let auditor = self.auditor.clone();
            self.store
                .write(move |tx: &mut Tx| {
                    Box::pin(async move {
                        erasure_store::advance(
                            &mut tx.conn(),
                            id,
                            &text,
                            Utc::now(),
                            record.finished_at,
                            status,
                        )
                        .await?;
                        auditor
                            .record(
                                tx,
                                Event::by(
                                    &Actor::system(),
                                    "data_subject.erasure_continued",
                                    Outcome::Allowed,
                                )
                                .target("user", subject)
                                .details(json!({
                                    "erasure": id,
                                    "destroyed": destroyed,
                                    "status": status,
                                })),
                            )
                            .await?;
                        tx.emit(DomainEvent::PersonErased {
                            user_id: subject,
                            workspaces: purged_in,
                        });
                        Ok::<_, Error>(())
                    })
                })
                .await?;
            self.store.scrub_after_erasure().await?;
        }
        Ok(())
    }

    /// Destroys what `subject` wrote in `workspace` that no hold covers, through the
    /// retention job's batch; false if stopped early.
    async fn erase_messages(
        &self,
        workspace: WorkspaceId,
        subject: UserId,
        w: &mut WorkspaceErasure,
    ) -> Result<bool, Error> {
        let mut cursor = (DateTime::<Utc>::UNIX_EPOCH, Uuid::nil());
        loop {
            if self.stop.is_cancelled() {
                return Ok(false);
            }
            let batch = {
                let mut conn = self.store.reader().await?;
                erasure_store::messages_of(&mut conn.conn(), workspace, subject, cursor, self.batch)
                    .await?
            };
            let Some(last) = batch.last() else {
                return Ok(true);
            };
            cursor = (last.created_at, last.id.0);
            let full = batch.len() as i64 == self.batch;
            let done = self.retention.destroy_batch(workspace, batch).await?;
            w.messages_destroyed += done.destroyed;
            w.messages_emptied += done.emptied;
            w.messages_held += done.held;
            w.files_destroyed += done.files;
            if !full {
                return Ok(true);
            }
        }
    }

    /// Deletes the files `subject` uploaded in `workspace` (under `delete`: all that no hold
    /// covers; under `anonymize`: unfinished uploads only); false if stopped early.
    async fn erase_files(
        &self,
        workspace: WorkspaceId,
        subject: UserId,
        mode: Erasure,
        w: &mut WorkspaceErasure,
    ) -> Result<bool, Error> {
        let mut after = FileId(Uuid::nil());
        loop {
            if self.stop.is_cancelled() {
                return Ok(false);
            }
            let batch = {
                let mut conn = self.store.reader().await?;
                erasure_store::files_of(&mut conn.conn(), workspace, subject, after, self.batch)
                    .await?
            };
            let Some(last) = batch.last() else {
                return Ok(true);
            };
            after = last.id;
            let full = batch.len() as i64 == self.batch;
            let (destroyed, held) = self
                .store
                .write(move |tx: &mut Tx| {
                    Box::pin(async move {
                        let holds = InForce::read(&mut tx.conn(), workspace).await?;
                        let (mut destroyed, mut held) = (0u64, 0u64);
                        for f in &batch {
                            // Posted with a message: it went with it, or stays with it because
                            // a hold keeps the message (decided by the message's batch).
                            if f.message_id.is_some() && mode == Erasure::Delete {
                                continue;
                            }
                            let finished = f.status != "uploading";
                            if mode == Erasure::Anonymize && finished {
                                continue;
                            }
                            let channel = ChannelId(f.parent_id);
                            if finished
                                && f.parent_kind == "channel"
                                && holds.covers_parts(subject, channel, f.created_at)
                            {
                                held += 1;
                                continue;
                            }
                            if store::files::delete(&mut tx.conn(), f.id).await? {
                                destroyed += 1;
                                tx.emit(DomainEvent::FileDeleted {
                                    workspace_id: workspace,
                                    channel_id: channel,
                                    file_id: f.id,
                                    message_id: None,
                                });
                            }
                        }
                        Ok::<_, Error>((destroyed, held))
                    })
                })
                .await?;
            w.files_destroyed += destroyed;
            w.files_held += held;
            if !full {
                return Ok(true);
            }
        }
    }
}

/// `waiting_on_holds` while legal holds keep content an erasure would destroy, else `done`.
fn status_of(report: &ErasureReport) -> &'static str {
    let held = report
        .workspaces
        .iter()
        .any(|w| w.content == Some(Erasure::Delete) && w.messages_held + w.files_held > 0);
    if held {
        "waiting_on_holds"
    } else {
        "done"
    }
}

fn internal(err: impl std::fmt::Display) -> Error {
    Error::Internal(err.to_string())
}
