//! The retention job: messages older than their workspace's (or channel's) effective
//! `retention.messages_days` are destroyed, except what a legal hold covers.
//!
//! A pass over a workspace reads the effective policy, then walks each group of channels
//! with the same period (each channel with its own `messages_days`, and the workspace's
//! other channels) oldest first from a cursor, `RetentionOptions::batch` messages at a time.
//! Each batch is one write through the group-commit writer, so posts keep flowing between
//! batches: it reads the holds in force in its own transaction, then for every message no
//! hold covers deletes the files posted with it and its row (its kept versions, reactions,
//! mentions, pins and followers go by cascade), emitting `MessageDeleted` and `FileDeleted`
//! so clients, the search index and the files housekeeping follow. A thread root whose
//! replies outlive it becomes a content-free tombstone and is removed by the pass after its
//! last reply goes. A pass is idempotent: an interrupted one is simply run again (every
//! batch it committed stays done). The pass then destroys the text deletions kept
//! (`message_remnants`) whose grace period is over, unless a hold covers the message. Each
//! pass that had a period to apply or kept text to destroy is audited once (`retention.run`,
//! counts only).
//!
//! The same pass applies the workspace's other periods: finished files (`files`) and
//! documents' edit history and named versions (`history`). Two periods belong to the
//! deployment rather than to one workspace: session records (`sessions`) and the audit log,
//! cut only at a signed checkpoint (`audit_cut`); [`RetentionService::run_all`] applies them
//! after the workspaces, with the longest period any policy in force sets, always at the
//! present time and not while any legal hold is in force (`deployment`).

mod audit_cut;
mod deployment;
mod files;
mod history;
mod report;
mod sessions;

pub use deployment::DeploymentReport;
pub use history::{HistoryFolder, SharedFolder};
pub use report::{PassFailure, PassReport, RetentionReport, RunRequest};

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;

use super::holds::InForce;
use crate::audit::{Auditor, Event, Outcome};
use crate::config::RetentionConfig;
use crate::domain::{ChannelId, FileId, MessageId, WorkspaceId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::policy::{Days, PolicyService};
use crate::rbac::{Action, Actor, Resource};
use crate::store::remnants;
use crate::store::retention::{self as retention_store, Candidate, Within};
use crate::store::{self, messages, Store, Tx};

/// How the job runs.
#[derive(Clone, Copy, Debug)]
pub struct RetentionOptions {
    /// Time between two passes of the background task (`None`: no background task).
    pub interval: Option<Duration>,
    /// Messages examined per write.
    pub batch: i64,
    /// Whether a run on demand may name the time it runs at (`now`).
    pub allow_explicit_now: bool,
}

impl RetentionOptions {
    /// The options the configuration sets.
    pub fn from_config(config: &RetentionConfig) -> RetentionOptions {
        RetentionOptions {
            interval: (config.interval_seconds > 0)
                .then_some(Duration::from_secs(config.interval_seconds)),
            batch: i64::from(config.batch),
            allow_explicit_now: config.allow_explicit_now,
        }
    }
}

/// One group of channels sharing a period.
struct Group {
    within: Within,
    cutoff: DateTime<Utc>,
    /// Channels of the workspace handled by a group of their own (skipped here).
    except: Arc<HashSet<ChannelId>>,
}

/// What one batch's write did.
#[derive(Default)]
pub(super) struct BatchOutcome {
    pub(super) destroyed: u64,
    pub(super) purged: u64,
    pub(super) emptied: u64,
    pub(super) held: u64,
    pub(super) files: u64,
}

/// The retention job; cheap to clone.
#[derive(Clone)]
pub struct RetentionService {
    store: Store,
    auditor: Auditor,
    policies: PolicyService,
    options: RetentionOptions,
    /// Prepares folded document history (set by the composition root).
    history: Option<SharedFolder>,
    /// One pass at a time in this process (the background task and runs on demand).
    running: Arc<tokio::sync::Mutex<()>>,
}

impl RetentionService {
    /// The job over `store`, applying `policies`.
    pub fn new(
        store: Store,
        auditor: Auditor,
        policies: PolicyService,
        options: RetentionOptions,
    ) -> RetentionService {
        RetentionService {
            store,
            auditor,
            policies,
            options,
            history: None,
            running: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The job, folding document history with `folder`.
    pub fn with_history(mut self, folder: SharedFolder) -> RetentionService {
        self.history = Some(folder);
        self
    }

    /// Whether a run may name the time it runs at (`retention.allow_explicit_now`).
    pub fn allows_explicit_now(&self) -> bool {
        self.options.allow_explicit_now
    }

    /// Runs one pass over `workspace` now, or at `now` where the configuration allows naming
    /// it (`policies.manage`, the permission that sets retention); audited.
    #[tracing::instrument(skip(self, actor), fields(actor = ?actor.user_id()))]
    pub async fn run_workspace(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        request: RunRequest,
    ) -> Result<RetentionReport, Error> {
        {
            let mut conn = self.store.reader().await?;
            self.auditor
                .authorize_read(
                    &self.store,
                    &mut conn.conn(),
                    actor,
                    Action::ManagePolicies,
                    Resource::Workspace(workspace),
                )
                .await?;
            if store::workspaces::by_id(&mut conn.conn(), workspace)
                .await?
                .is_none()
            {
                return Err(Error::NotFound("workspace"));
            }
        }
        if request.now.is_some() && !self.options.allow_explicit_now {
            return Err(Error::refused(
                "explicit_now_disabled",
                "this deployment does not let a run name its time (retention.allow_explicit_now)",
            ));
        }
        let now = request.now.unwrap_or_else(Utc::now);
        self.pass(actor, workspace, now, None).await
    }

    /// Runs one pass at `now` as Concord itself: over `only` that workspace, or over every
    /// workspace and then the deployment's own periods (sessions, the audit log); stops
    /// between batches once `stop` is cancelled. A failure in one part is reported and the
    /// rest goes on; only failing to list the workspaces fails the whole.
    pub async fn run_all(
        &self,
        now: DateTime<Utc>,
        only: Option<WorkspaceId>,
        stop: &CancellationToken,
    ) -> Result<PassReport, Error> {
        let workspaces = {
            let mut conn = self.store.reader().await?;
            let all = store::policies::workspace_ids(&mut conn.conn()).await?;
            match only {
                Some(w) if !all.contains(&w) => return Err(Error::NotFound("workspace")),
                Some(w) => vec![w],
                None => all,
            }
        };
        let mut out = PassReport::default();
        for workspace in workspaces {
            if stop.is_cancelled() {
                return Ok(out);
            }
            match self
                .pass(&Actor::system(), workspace, now, Some(stop))
                .await
            {
                Ok(report) => {
                    if report.destroyed
                        + report.emptied
                        + report.purged
                        + report.files_expired
                        + report.updates_folded
                        + report.versions_destroyed
                        > 0
                    {
                        tracing::info!(
                            %workspace,
                            destroyed = report.destroyed,
                            emptied = report.emptied,
                            purged = report.purged,
                            held = report.held,
                            files = report.files_destroyed + report.files_expired,
                            history = report.updates_folded + report.versions_destroyed,
                            "retention: pass done"
                        )
                    }
                    out.workspaces.push(report);
                }
                Err(err) => {
                    tracing::warn!(%workspace, error = %err, "retention: pass failed");
                    out.failures.push(PassFailure {
                        workspace_id: Some(workspace),
                        error: err.to_string(),
                    });
                }
            }
        }
        if only.is_none() && !stop.is_cancelled() {
            // The deployment's periods apply at the present time, whatever `now` the
            // workspaces' passes were given.
            match self
                .deployment_pass(&Actor::system(), Utc::now(), Some(stop))
                .await
            {
                Ok(report) => out.deployment = Some(report),
                Err(err) => {
                    tracing::warn!(error = %err, "retention: the deployment's pass failed");
                    out.failures.push(PassFailure {
                        workspace_id: None,
                        error: err.to_string(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// The background task: a pass over every workspace at start and every interval,
    /// until `stop` is cancelled (`None` if the configuration turns it off).
    pub fn spawn(self, stop: CancellationToken) -> Option<tokio::task::JoinHandle<()>> {
        let period = self.options.interval?;
        Some(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = ticks.tick() => {
                        if let Err(err) = self.run_all(Utc::now(), None, &stop).await {
                            tracing::warn!(error = %err, "retention: pass over the workspaces failed");
                        }
                    }
                }
            }
        }))
    }

    /// One pass over `workspace` at `now`.
    async fn pass(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        now: DateTime<Utc>,
        stop: Option<&CancellationToken>,
    ) -> Result<RetentionReport, Error> {
        let _one_at_a_time = self.running.lock().await;
        let (resolved, version) = self.policies.effective(workspace).await?;
        let policy = resolved.policy;
        let mut report = RetentionReport {
            workspace_id: Some(workspace),
            now: Some(now),
            policy_version: version,
            messages_days: policy.retention.messages_days.days(),
            files_days: policy.retention.files_days.days(),
            document_history_days: policy.retention.document_history_days.days(),
            ..RetentionReport::default()
        };
        let own: Arc<HashSet<ChannelId>> = Arc::new(policy.channels.keys().copied().collect());
        let mut groups = Vec::new();
        if let Some(cutoff) = cutoff(now, policy.retention.messages_days) {
            groups.push(Group {
                within: Within::Workspace(workspace),
                cutoff,
                except: own.clone(),
            });
        }
        for (channel, p) in &policy.channels {
            if let Some(cutoff) = cutoff(now, p.messages_days) {
                report.channels_with_own_period += 1;
                groups.push(Group {
                    within: Within::Channel(workspace, *channel),
                    cutoff,
                    except: Arc::new(HashSet::new()),
                });
            }
        }
        let had_groups = !groups.is_empty()
            || report.files_days.is_some()
            || report.document_history_days.is_some();
        let mut outcome = Ok(());
        'groups: for group in groups {
            let mut cursor = (start_of_time(), MessageId(uuid::Uuid::nil()));
            loop {
                if stop.is_some_and(|s| s.is_cancelled()) {
                    break 'groups;
                }
                let batch = {
                    let mut conn = self.store.reader().await?;
                    retention_store::older_than(
                        &mut conn.conn(),
                        group.within,
                        group.cutoff,
                        cursor,
                        self.options.batch,
                    )
                    .await?
                };
                let Some(last) = batch.last() else { break };
                cursor = (last.created_at, last.id);
                let full = batch.len() as i64 == self.options.batch;
                report.examined += batch.len() as u64;
                let candidates: Vec<Candidate> = batch
                    .into_iter()
                    .filter(|m| !group.except.contains(&m.channel_id))
                    .collect();
                if !candidates.is_empty() {
                    match self.destroy_batch(workspace, candidates).await {
                        Ok(done) => {
                            report.batches += 1;
                            report.destroyed += done.destroyed;
                            report.purged += done.purged;
                            report.emptied += done.emptied;
                            report.held += done.held;
                            report.files_destroyed += done.files;
                        }
                        Err(err) => {
                            // What committed stays done; the audit entry says how far it got.
                            outcome = Err(err);
                            break 'groups;
                        }
                    }
                }
                if !full {
                    break;
                }
            }
        }
        if outcome.is_ok() {
            outcome = self.purge_remnants(workspace, now, stop, &mut report).await;
        }
        if outcome.is_ok() {
            outcome = self
                .purge_hidden_files(workspace, now, stop, &mut report)
                .await;
        }
        if outcome.is_ok() {
            outcome = self
                .expire_files(
                    workspace,
                    now,
                    policy.retention.files_days,
                    stop,
                    &mut report,
                )
                .await;
        }
        if outcome.is_ok() {
            outcome = self
                .expire_history(
                    workspace,
                    now,
                    policy.retention.document_history_days,
                    stop,
                    &mut report,
                )
                .await;
        }
        if !had_groups
            && report.purged + report.remnants_held + report.files_purged + report.files_held == 0
            && outcome.is_ok()
        {
            return Ok(report);
        }
        let event = Event::by(actor, "retention.run", outcome_of(&outcome))
            .target("workspace", workspace)
            .workspace(workspace)
            .details(serde_json::json!({
                "now": now,
                "policy_version": version,
                "messages_days": report.messages_days,
                "channels_with_own_period": report.channels_with_own_period,
                "examined": report.examined,
                "destroyed": report.destroyed,
                "emptied": report.emptied,
                "held": report.held,
                "files_destroyed": report.files_destroyed,
                "purged": report.purged,
                "remnants_held": report.remnants_held,
                "files_purged": report.files_purged,
                "files_held": report.files_held,
                "files_days": report.files_days,
                "files_expired": report.files_expired,
                "files_expired_held": report.files_expired_held,
                "document_history_days": report.document_history_days,
                "documents_folded": report.documents_folded,
                "updates_folded": report.updates_folded,
                "versions_destroyed": report.versions_destroyed,
                "history_held": report.history_held,
                "batches": report.batches,
            }));
        self.auditor.record_alone(&self.store, event).await?;
        outcome.map(|()| report)
    }

    /// Destroys the text deletions kept in `workspace` whose grace period is over at `now`
    /// and that no hold covers, a batch per write.
    async fn purge_remnants(
        &self,
        workspace: WorkspaceId,
        now: DateTime<Utc>,
        stop: Option<&CancellationToken>,
        report: &mut RetentionReport,
    ) -> Result<(), Error> {
        let mut after = MessageId(uuid::Uuid::nil());
        loop {
            if stop.is_some_and(|s| s.is_cancelled()) {
                return Ok(());
            }
            let batch = {
                let mut conn = self.store.reader().await?;
                remnants::due(&mut conn.conn(), workspace, now, after, self.options.batch).await?
            };
            let Some(last) = batch.last() else {
                return Ok(());
            };
            after = last.id;
            let full = batch.len() as i64 == self.options.batch;
            let (purged, held) = self
                .store
                .write(move |tx: &mut Tx| {
                    Box::pin(async move {
                        // Read in this write: a hold placed since the batch was read counts.
                        let holds = InForce::read(&mut tx.conn(), workspace).await?;
                        let (mut purged, mut held) = (0u64, 0u64);
                        for m in &batch {
                            if holds.covers(m) {
                                held += 1;
                            } else if remnants::purge(&mut tx.conn(), m.id).await? > 0 {
                                purged += 1;
                            }
                        }
                        Ok::<_, Error>((purged, held))
                    })
                })
                .await?;
            report.batches += 1;
            report.purged += purged;
            report.remnants_held += held;
            if !full {
                return Ok(());
            }
        }
    }

    /// Deletes the hidden files of `workspace` whose `purge_after` has passed at `now` and
    /// that no hold covers (by uploader, channel and upload time), a batch per write; their
    /// blobs follow `FileDeleted` in the files housekeeping.
    async fn purge_hidden_files(
        &self,
        workspace: WorkspaceId,
        now: DateTime<Utc>,
        stop: Option<&CancellationToken>,
        report: &mut RetentionReport,
    ) -> Result<(), Error> {
        let mut after = FileId(uuid::Uuid::nil());
        loop {
            if stop.is_some_and(|s| s.is_cancelled()) {
                return Ok(());
            }
            let batch = {
                let mut conn = self.store.reader().await?;
                store::files::hidden_due(
                    &mut conn.conn(),
                    workspace,
                    now,
                    after,
                    self.options.batch,
                )
                .await?
            };
            let Some(last) = batch.last() else {
                return Ok(());
            };
            after = last.id;
            let full = batch.len() as i64 == self.options.batch;
            let (purged, held) = self
                .store
                .write(move |tx: &mut Tx| {
                    Box::pin(async move {
                        let holds = InForce::read(&mut tx.conn(), workspace).await?;
                        let (mut purged, mut held) = (0u64, 0u64);
                        for f in &batch {
                            let channel = ChannelId(f.parent_id);
                            if f.parent_kind == "channel"
                                && holds.covers_parts(f.uploader_id, channel, f.created_at)
                            {
                                held += 1;
                            } else if store::files::delete(&mut tx.conn(), f.id).await? {
                                purged += 1;
                                tx.emit(DomainEvent::FileDeleted {
                                    workspace_id: workspace,
                                    channel_id: channel,
                                    file_id: f.id,
                                    message_id: None,
                                });
                            }
                        }
                        Ok::<_, Error>((purged, held))
                    })
                })
                .await?;
            report.batches += 1;
            report.files_purged += purged;
            report.files_held += held;
            if !full {
                return Ok(());
            }
        }
    }

    /// Time between two passes of the background task, if it runs.
    pub(super) fn interval(&self) -> Option<Duration> {
        self.options.interval
    }

    /// Messages examined per write.
    pub(super) fn batch_size(&self) -> i64 {
        self.options.batch
    }

    /// Destroys what no hold covers among `candidates`, in one write (also erasure's).
    pub(super) async fn destroy_batch(
        &self,
        workspace: WorkspaceId,
        candidates: Vec<Candidate>,
    ) -> Result<BatchOutcome, Error> {
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    // Read in this write: a hold placed since the candidates were read counts.
                    let holds = InForce::read(&mut tx.conn(), workspace).await?;
                    let mut out = BatchOutcome::default();
                    let mut recount = BTreeSet::new();
                    // Replies first, so a root whose replies all go in this batch goes too.
                    let (replies, roots): (Vec<_>, Vec<_>) = candidates
                        .into_iter()
                        .partition(|m| m.thread_root_id.is_some());
                    for m in replies.iter().chain(roots.iter()) {
                        if holds.covers(m) {
                            out.held += 1;
                            continue;
                        }
                        out.files += destroy_files(tx, workspace, m).await?;
                        let is_root = m.thread_root_id.is_none();
                        if is_root && retention_store::replies_left(&mut tx.conn(), m.id).await? > 0
                        {
                            if m.deleted_at.is_none() {
                                messages::tombstone(&mut tx.conn(), m.id, &[], Utc::now()).await?;
                                emit_deleted(tx, workspace, m);
                                out.emptied += 1;
                            } else if remnants::purge(&mut tx.conn(), m.id).await? > 0 {
                                // A deleted root that stays for its replies keeps no text.
                                out.purged += 1;
                            }
                            continue;
                        }
                        // Retention's period bounds a deleted message's grace period too: text
                        // a deletion kept goes with the row (by cascade), counted as purged.
                        if m.deleted_at.is_some()
                            && remnants::purge(&mut tx.conn(), m.id).await? > 0
                        {
                            out.purged += 1;
                        }
                        if retention_store::destroy(&mut tx.conn(), m.id).await? {
                            out.destroyed += 1;
                            // A tombstone's deletion was announced when it was deleted.
                            if m.deleted_at.is_none() {
                                emit_deleted(tx, workspace, m);
                            }
                            if let Some(root) = m.thread_root_id {
                                recount.insert(root);
                            }
                        }
                    }
                    for root in recount {
                        retention_store::recount_replies(&mut tx.conn(), root).await?;
                    }
                    Ok::<_, Error>(out)
                })
            })
            .await
    }
}

/// Deletes the files posted with `m` (their blobs follow `FileDeleted` in the files
/// housekeeping); how many.
async fn destroy_files(tx: &mut Tx, workspace: WorkspaceId, m: &Candidate) -> Result<u64, Error> {
    let mut n = 0;
    for file in store::files::attached_to(&mut tx.conn(), m.id).await? {
        if store::files::delete(&mut tx.conn(), file.id).await? {
            n += 1;
            tx.emit(DomainEvent::FileDeleted {
                workspace_id: workspace,
                channel_id: m.channel_id,
                file_id: file.id,
                // The message goes too: nothing to index again.
                message_id: None,
            });
        }
    }
    Ok(n)
}

fn emit_deleted(tx: &mut Tx, workspace: WorkspaceId, m: &Candidate) {
    tx.emit(DomainEvent::MessageDeleted {
        workspace_id: workspace,
        channel_id: m.channel_id,
        message_id: m.id,
        seq: m.seq,
    });
}

fn outcome_of(outcome: &Result<(), Error>) -> Outcome {
    match outcome {
        Ok(()) => Outcome::Allowed,
        Err(_) => Outcome::Failed,
    }
}

/// The time before which messages go, for a period (`None`: forever).
fn cutoff(now: DateTime<Utc>, days: Days) -> Option<DateTime<Utc>> {
    let days = days.days()?;
    Some(now - TimeDelta::days(i64::from(days)))
}

/// Before any message: where a walk starts.
fn start_of_time() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}
