//! Process facts: what a process's dashboard reads ([`super::dashboard`]), recorded in the
//! write that records the step it describes, so the figures are exactly as current as the
//! instances and cost the dashboard a few hundred rows whatever the history's size.
//!
//! A fact is one execution of an activity (`workflow_step_facts`): entered, picked up (user
//! tasks), left (`completed` or `cancelled`). When it leaves, its counts and durations are
//! added to the hour and the day (UTC) it left in (`workflow_step_counts`,
//! `workflow_step_durations`); instances started and ended are counted the same way
//! (`workflow_process_counts`). Definitions:
//! - a user task is entered when it opens and picked up by its first holder: when it opens
//!   if it opens assigned to a person (named, or chosen by routing), else when a person
//!   claims it or routing or escalation assigns it to one, else (completed from a shared
//!   queue without a claim) when it closes. Waiting is opened → picked up, working is
//!   picked up → closed; so a task assigned at once only works, and one taken from a queue
//!   only waits unless someone claimed it first. This is how Camunda Optimize counts idle
//!   and work time;
//! - any other activity (service, send, business-rule, receive tasks, sub-processes, call
//!   activities) does not wait: working is entered → left. Events and gateways have no facts;
//! - an SLA breach is a step with a due date left (completed or cancelled) after it; one
//!   still open past it is an open breach, counted by the dashboard when it reads;
//! - durations are percentiles of the steps left completed; cancelled ones are counted apart.
//!
//! Metrics are recorded once the write commits (`Tx::on_commit`), never for a write that
//! rolls back: `concord_workflow_instances_{started,completed,failed,cancelled}_total`,
//! `concord_workflow_tasks_completed_total` and `concord_workflow_sla_breaches_total`
//! labelled `process` (the process id, for the first [`MAX_PROCESS_LABELS`] processes this
//! server sees, `other` after, so a workspace deploying many processes cannot blow up the
//! series), `concord_workflow_task_working_seconds` (a histogram, unlabelled).

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, Duration, DurationRound, Utc};
use concord_workflow::command::{HistoryEntry, HistoryEvent};
use concord_workflow::model::ElementKind;
use concord_workflow::state::Status;
use concord_workflow::ProcessModel;
use uuid::Uuid;

use super::WorkflowService;
use crate::domain::WorkspaceId;
use crate::error::Error;
use crate::store::workflow_facts::{self as facts, FactRecord};
use crate::store::workflows::{InstanceRecord, TaskRecord};
use crate::store::{Conn, Tx};

/// Processes that get a metrics label of their own; later ones share `other`.
pub const MAX_PROCESS_LABELS: usize = 50;

/// Each duration histogram bin is this much wider than the one before: bin `b >= 1` holds
/// durations in `[GROWTH^(b-1), GROWTH^b)` ms, bin 0 holds 0, and a bin's midpoint is within
/// 2 % of every duration in it. Migration 0042 computes the same bins.
const GROWTH: f64 = 1.04;

/// The histogram bin of a duration in milliseconds.
pub(crate) fn bin_of(ms: i64) -> i64 {
    if ms <= 0 {
        return 0;
    }
    1 + ((ms as f64).ln() / GROWTH.ln()).floor() as i64
}

/// The duration a bin stands for (its midpoint, in milliseconds).
pub(crate) fn bin_value(bin: i64) -> i64 {
    if bin <= 0 {
        return 0;
    }
    let exponent = i32::try_from(bin - 1).unwrap_or(i32::MAX);
    let low = GROWTH.powi(exponent);
    (low * (1.0 + GROWTH) / 2.0).round() as i64
}

/// The periods figures are kept by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    /// Hours (UTC).
    Hour,
    /// Days (UTC).
    Day,
}

impl Period {
    /// Both, as every count is kept by both.
    pub const ALL: [Period; 2] = [Period::Hour, Period::Day];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
        }
    }

    /// The length of one period.
    pub fn length(self) -> Duration {
        match self {
            Period::Hour => Duration::hours(1),
            Period::Day => Duration::days(1),
        }
    }

    /// The start of the period `at` falls in.
    pub fn floor(self, at: DateTime<Utc>) -> DateTime<Utc> {
        at.duration_trunc(self.length()).unwrap_or(at)
    }
}

/// The kind of an element that has facts; `None` for events and gateways.
pub(crate) fn tracked_kind(kind: &ElementKind) -> Option<&'static str> {
    Some(match kind {
        ElementKind::UserTask(_) => "user_task",
        ElementKind::ServiceTask(_) => "service_task",
        ElementKind::SendTask(_) => "send_task",
        ElementKind::BusinessRuleTask { .. } => "business_rule_task",
        ElementKind::ReceiveTask(_) => "receive_task",
        ElementKind::SubProcess => "sub_process",
        ElementKind::CallActivity { .. } => "call_activity",
        _ => return None,
    })
}

/// The metrics labels of processes: bounded, so the number of series is.
#[derive(Default)]
pub(crate) struct ProcessLabels {
    seen: Mutex<HashSet<String>>,
}

impl ProcessLabels {
    /// `process`'s label: itself while fewer than [`MAX_PROCESS_LABELS`] have one, else
    /// `other`.
    pub(crate) fn label(&self, process: &str) -> String {
        let Ok(mut seen) = self.seen.lock() else {
            return "other".into();
        };
        if seen.contains(process) {
            return process.to_owned();
        }
        if seen.len() < MAX_PROCESS_LABELS {
            seen.insert(process.to_owned());
            return process.to_owned();
        }
        "other".into()
    }
}

/// What one write changes in one instance's facts, written by [`Recorder::finish`].
pub(crate) struct Recorder {
    workspace_id: WorkspaceId,
    process_id: String,
    deployment_id: Uuid,
    instance_id: Uuid,
    /// Entered in this write and still open.
    opened: Vec<FactRecord>,
    /// Left in this write; `true` if it was stored before (else it is inserted).
    closed: Vec<(FactRecord, bool)>,
    started: Option<DateTime<Utc>>,
    ended: Option<(DateTime<Utc>, &'static str)>,
    incidents_raised: usize,
    incidents_resolved: usize,
}

impl Recorder {
    /// A recorder for a write on `instance`.
    pub(crate) fn new(instance: &InstanceRecord) -> Recorder {
        Recorder {
            workspace_id: instance.workspace_id,
            process_id: instance.process_id.clone(),
            deployment_id: instance.deployment_id,
            instance_id: instance.id,
            opened: Vec::new(),
            closed: Vec::new(),
            started: None,
            ended: None,
            incidents_raised: 0,
            incidents_resolved: 0,
        }
    }

    /// Takes one history step of the instance's transition into account.
    pub(crate) async fn step(
        &mut self,
        conn: &mut Conn<'_>,
        model: &ProcessModel,
        entry: &HistoryEntry,
    ) -> Result<(), Error> {
        let outcome = match &entry.event {
            HistoryEvent::InstanceStarted => {
                self.started = Some(entry.at);
                return Ok(());
            }
            HistoryEvent::InstanceEnded { status } => {
                let ended = match status {
                    Status::Running => return Ok(()),
                    Status::Completed | Status::Terminated => "completed",
                    Status::Failed { .. } => "failed",
                    Status::Cancelled => "cancelled",
                };
                self.ended = Some((entry.at, ended));
                return Ok(());
            }
            HistoryEvent::IncidentRaised { .. } => {
                self.incidents_raised += 1;
                return Ok(());
            }
            HistoryEvent::IncidentResolved { .. } => {
                self.incidents_resolved += 1;
                return Ok(());
            }
            HistoryEvent::Entered => None,
            HistoryEvent::Completed => Some("completed"),
            HistoryEvent::Cancelled => Some("cancelled"),
            _ => return Ok(()),
        };
        let (Some(element), Some(execution)) = (&entry.element, entry.execution) else {
            return Ok(());
        };
        // User tasks have facts of their own, one per task (see `task_opened`).
        let kind = match model.element(element).map(|e| &e.kind) {
            Some(ElementKind::UserTask(_)) | None => return Ok(()),
            Some(kind) => match tracked_kind(kind) {
                Some(k) => k,
                None => return Ok(()),
            },
        };
        let execution = i64::try_from(execution).unwrap_or(i64::MAX);
        let Some(outcome) = outcome else {
            self.opened.push(FactRecord {
                id: format!("{}:{}", self.instance_id, entry.step),
                workspace_id: self.workspace_id,
                process_id: self.process_id.clone(),
                deployment_id: self.deployment_id,
                instance_id: self.instance_id,
                element: element.clone(),
                kind: kind.to_owned(),
                execution: Some(execution),
                entered_at: entry.at,
                picked_at: None,
                left_at: None,
                outcome: None,
                waiting_ms: None,
                working_ms: None,
                due_at: None,
                breached: false,
            });
            return Ok(());
        };
        let here = self
            .opened
            .iter()
            .position(|f| &f.element == element && f.execution == Some(execution));
        match here {
            Some(i) => {
                let mut fact = self.opened.remove(i);
                leave(&mut fact, entry.at, outcome);
                self.closed.push((fact, false));
            }
            None => {
                // Entered in an earlier write; an activity entered before facts were kept
                // (migration 0042) has none, and counts from its next execution.
                if let Some(mut fact) =
                    facts::open_fact(conn, self.instance_id, element, execution).await?
                {
                    leave(&mut fact, entry.at, outcome);
                    self.closed.push((fact, true));
                }
            }
        }
        Ok(())
    }

    /// A user task opened: picked up at once if it opened assigned to a person.
    pub(crate) fn task_opened(&mut self, task: &TaskRecord) {
        self.opened.push(FactRecord {
            id: task.id.clone(),
            workspace_id: self.workspace_id,
            process_id: self.process_id.clone(),
            deployment_id: self.deployment_id,
            instance_id: self.instance_id,
            element: task.element.clone(),
            kind: "user_task".into(),
            execution: None,
            entered_at: task.created_at,
            picked_at: task.assignee.map(|_| task.created_at),
            left_at: None,
            outcome: None,
            waiting_ms: None,
            working_ms: None,
            due_at: task.due_at,
            breached: false,
        });
    }

    /// A user task closed (`completed` or `cancelled`) at `at`.
    pub(crate) async fn task_closed(
        &mut self,
        conn: &mut Conn<'_>,
        task_id: &str,
        outcome: &'static str,
        at: DateTime<Utc>,
    ) -> Result<(), Error> {
        if let Some(i) = self.opened.iter().position(|f| f.id == task_id) {
            let mut fact = self.opened.remove(i);
            leave(&mut fact, at, outcome);
            self.closed.push((fact, false));
        } else if let Some(mut fact) = facts::fact(conn, task_id).await? {
            if fact.left_at.is_none() {
                leave(&mut fact, at, outcome);
                self.closed.push((fact, true));
            }
        }
        Ok(())
    }

    /// Writes what the write changed (facts, counts, durations), tells the people who
    /// manage workflows when the instance started, ended or changed its incidents, and
    /// records the metrics once the write commits. `status` is the instance's status after
    /// the write.
    pub(crate) async fn finish(
        self,
        svc: &WorkflowService,
        tx: &mut Tx,
        status: &str,
    ) -> Result<(), Error> {
        let mut inserted: Vec<FactRecord> = self.opened;
        for (fact, stored) in &self.closed {
            if *stored {
                facts::close_fact(&mut tx.conn(), fact).await?;
            } else {
                inserted.push(fact.clone());
            }
        }
        facts::insert_facts(&mut tx.conn(), &inserted).await?;
        let closed: Vec<FactRecord> = self.closed.into_iter().map(|(f, _)| f).collect();
        add_left(&mut tx.conn(), &closed).await?;
        add_instances(
            &mut tx.conn(),
            self.workspace_id,
            &self.process_id,
            self.started.as_slice(),
            self.ended.as_slice(),
        )
        .await?;

        let change = if self.ended.is_some() {
            Some("ended")
        } else if self.started.is_some() {
            Some("started")
        } else if self.incidents_raised > 0 {
            Some("incident_raised")
        } else if self.incidents_resolved > 0 {
            Some("incident_resolved")
        } else {
            None
        };
        if let Some(change) = change {
            let notify = crate::store::workspaces::holding_permission(
                &mut tx.conn(),
                self.workspace_id,
                crate::rbac::Action::ManageWorkflows.as_str(),
            )
            .await?;
            if !notify.is_empty() {
                tx.emit(crate::events::DomainEvent::WorkflowInstanceChanged {
                    workspace_id: self.workspace_id,
                    process_id: self.process_id.clone(),
                    instance_id: self.instance_id,
                    status: status.to_owned(),
                    change: change.to_owned(),
                    notify,
                });
            }
        }
        if self.started.is_some() || self.ended.is_some() {
            let label = svc.inner.labels.label(&self.process_id);
            let started = self.started.is_some();
            let ended = self.ended.map(|(_, how)| how);
            tx.on_commit(move || {
                if started {
                    metrics::counter!("concord_workflow_instances_started_total", "process" => label.clone())
                        .increment(1);
                }
                match ended {
                    Some("completed") => metrics::counter!(
                        "concord_workflow_instances_completed_total", "process" => label
                    )
                    .increment(1),
                    Some("failed") => metrics::counter!(
                        "concord_workflow_instances_failed_total", "process" => label
                    )
                    .increment(1),
                    Some(_) => metrics::counter!(
                        "concord_workflow_instances_cancelled_total", "process" => label
                    )
                    .increment(1),
                    None => {}
                }
            });
        }
        record_tasks(svc, tx, &closed);
        Ok(())
    }
}

/// A user task completed at `at`, in the write `tx` on `instance` that completes it.
pub(crate) async fn task_completed(
    svc: &WorkflowService,
    tx: &mut Tx,
    instance: &InstanceRecord,
    task_id: &str,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let mut recorder = Recorder::new(instance);
    recorder
        .task_closed(&mut tx.conn(), task_id, "completed", at)
        .await?;
    recorder.finish(svc, tx, &instance.status).await
}

/// Notes that someone picked up the user task `task_id` at `at` (its first holder counts).
pub(crate) async fn task_picked(
    conn: &mut Conn<'_>,
    task_id: &str,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    facts::picked_up(conn, task_id, at).await?;
    Ok(())
}

/// Ends a fact at `at`: its pick-up (a user task nobody picked up is picked up as it
/// closes; other activities do not wait), durations and SLA.
pub(crate) fn leave(fact: &mut FactRecord, at: DateTime<Utc>, outcome: &'static str) {
    let picked = match (fact.kind.as_str(), fact.picked_at) {
        (_, Some(p)) => p,
        ("user_task", None) => at,
        _ => fact.entered_at,
    };
    let picked = picked.clamp(fact.entered_at, at.max(fact.entered_at));
    if fact.kind == "user_task" {
        fact.picked_at = Some(picked);
    }
    fact.left_at = Some(at);
    fact.outcome = Some(outcome.to_owned());
    fact.waiting_ms = Some((picked - fact.entered_at).num_milliseconds().max(0));
    fact.working_ms = Some((at - picked).num_milliseconds().max(0));
    fact.breached = fact.due_at.is_some_and(|due| at > due);
}

/// Adds instances of a process that started (at these times) and ended (at these times,
/// `completed`, `failed` or `cancelled`) to their hours' and days' counts.
pub(crate) async fn add_instances(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    process_id: &str,
    started: &[DateTime<Utc>],
    ended: &[(DateTime<Utc>, &'static str)],
) -> Result<(), Error> {
    if started.is_empty() && ended.is_empty() {
        return Ok(());
    }
    let mut counts = Vec::new();
    for period in Period::ALL {
        let mut by_start: BTreeMap<DateTime<Utc>, [i64; 4]> = BTreeMap::new();
        for at in started {
            by_start.entry(period.floor(*at)).or_default()[0] += 1;
        }
        for (at, how) in ended {
            let i = match *how {
                "completed" => 1,
                "failed" => 2,
                _ => 3,
            };
            by_start.entry(period.floor(*at)).or_default()[i] += 1;
        }
        for (start, [started, completed, failed, cancelled]) in by_start {
            counts.push(facts::ProcessCounts {
                workspace_id: workspace,
                process_id: process_id.to_owned(),
                period: period.as_str(),
                period_start: start,
                started,
                completed,
                failed,
                cancelled,
            });
        }
    }
    facts::add_process_counts(conn, &counts).await?;
    Ok(())
}

/// Adds facts that left to their hours' and days' step counts and duration histograms.
pub(crate) async fn add_left(conn: &mut Conn<'_>, left: &[FactRecord]) -> Result<(), Error> {
    if left.is_empty() {
        return Ok(());
    }
    type Key = (WorkspaceId, String, &'static str, DateTime<Utc>, String);
    let mut counts: BTreeMap<Key, [i64; 4]> = BTreeMap::new();
    let mut bins: BTreeMap<(Key, &'static str, i64), i64> = BTreeMap::new();
    for fact in left {
        let Some(at) = fact.left_at else { continue };
        let completed = fact.outcome.as_deref() == Some("completed");
        for period in Period::ALL {
            let key: Key = (
                fact.workspace_id,
                fact.process_id.clone(),
                period.as_str(),
                period.floor(at),
                fact.element.clone(),
            );
            let c = counts.entry(key.clone()).or_default();
            c[usize::from(!completed)] += 1;
            c[2] += i64::from(fact.due_at.is_some());
            c[3] += i64::from(fact.breached);
            if completed {
                let waiting = fact.waiting_ms.unwrap_or(0);
                let working = fact.working_ms.unwrap_or(0);
                for (measure, ms) in [
                    ("waiting", waiting),
                    ("working", working),
                    ("total", waiting + working),
                ] {
                    *bins.entry((key.clone(), measure, bin_of(ms))).or_default() += 1;
                }
            }
        }
    }
    let counts: Vec<facts::StepCounts> = counts
        .into_iter()
        .map(
            |((ws, process, period, start, element), c)| facts::StepCounts {
                workspace_id: ws,
                process_id: process,
                period,
                period_start: start,
                element,
                completed: c[0],
                cancelled: c[1],
                with_due: c[2],
                breached: c[3],
            },
        )
        .collect();
    facts::add_step_counts(conn, &counts).await?;
    let bins: Vec<facts::StepDurations> = bins
        .into_iter()
        .map(
            |(((ws, process, period, start, element), measure, bin), count)| facts::StepDurations {
                workspace_id: ws,
                process_id: process,
                period,
                period_start: start,
                element,
                measure,
                bin,
                count,
            },
        )
        .collect();
    facts::add_step_durations(conn, &bins).await?;
    Ok(())
}

/// The task metrics of the user tasks that closed in this write, once it commits.
fn record_tasks(svc: &WorkflowService, tx: &mut Tx, closed: &[FactRecord]) {
    let tasks: Vec<(String, bool, bool, i64)> = closed
        .iter()
        .filter(|f| f.kind == "user_task")
        .map(|f| {
            (
                svc.inner.labels.label(&f.process_id),
                f.outcome.as_deref() == Some("completed"),
                f.breached,
                f.working_ms.unwrap_or(0),
            )
        })
        .collect();
    if tasks.is_empty() {
        return;
    }
    tx.on_commit(move || {
        for (label, completed, breached, working_ms) in tasks {
            if completed {
                metrics::counter!("concord_workflow_tasks_completed_total", "process" => label.clone())
                    .increment(1);
                metrics::histogram!("concord_workflow_task_working_seconds")
                    .record(working_ms as f64 / 1000.0);
            }
            if breached {
                metrics::counter!("concord_workflow_sla_breaches_total", "process" => label)
                    .increment(1);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bins_midpoint_is_within_two_percent_of_what_it_holds() {
        assert_eq!(bin_of(0), 0);
        assert_eq!(bin_value(0), 0);
        assert_eq!(bin_of(1), 1);
        for ms in [1_i64, 2, 7, 999, 1_000, 61_234, 3_600_000, 86_400_000 * 30] {
            let v = bin_value(bin_of(ms)) as f64;
            let err = (v - ms as f64).abs() / ms as f64;
            assert!(err <= 0.021, "{ms} ms reads back as {v} ({err})");
        }
        let mut last = 0;
        for ms in 1..5_000 {
            let b = bin_of(ms);
            assert!(b >= last, "bins grow with durations");
            last = b;
        }
    }

    #[test]
    fn periods_start_on_the_hour_and_the_utc_day() {
        let at: DateTime<Utc> = "2026-03-04T05:06:07.891Z".parse().unwrap();
        assert_eq!(
            Period::Hour.floor(at),
            "2026-03-04T05:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            Period::Day.floor(at),
            "2026-03-04T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn a_task_taken_from_the_queue_waits_and_one_assigned_at_once_works() {
        let opened: DateTime<Utc> = "2026-03-04T05:00:00Z".parse().unwrap();
        let mut fact = FactRecord {
            id: "t".into(),
            workspace_id: WorkspaceId(Uuid::nil()),
            process_id: "p".into(),
            deployment_id: Uuid::nil(),
            instance_id: Uuid::nil(),
            element: "e".into(),
            kind: "user_task".into(),
            execution: None,
            entered_at: opened,
            picked_at: None,
            left_at: None,
            outcome: None,
            waiting_ms: None,
            working_ms: None,
            due_at: Some(opened + Duration::minutes(30)),
            breached: false,
        };
        let mut queued = fact.clone();
        leave(&mut queued, opened + Duration::hours(1), "completed");
        assert_eq!(
            (queued.waiting_ms, queued.working_ms),
            (Some(3_600_000), Some(0))
        );
        assert!(queued.breached);
        fact.picked_at = Some(opened + Duration::minutes(10));
        leave(&mut fact, opened + Duration::minutes(20), "completed");
        assert_eq!(
            (fact.waiting_ms, fact.working_ms),
            (Some(600_000), Some(600_000))
        );
        assert!(!fact.breached);
        let mut call = FactRecord {
            kind: "service_task".into(),
            picked_at: None,
            due_at: None,
            ..fact
        };
        leave(&mut call, opened + Duration::seconds(3), "completed");
        assert_eq!((call.waiting_ms, call.working_ms), (Some(0), Some(3_000)));
        assert_eq!(call.picked_at, None);
    }
}
