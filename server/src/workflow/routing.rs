//! Task routing: who gets a user task whose model names a `routing:` block, and where it goes
//! when nobody takes it in time.
//!
//! The policies themselves are pure (`concord_routing::policy`); this module gathers the
//! snapshot they decide on, in the write that opens the task: the group its assignment
//! names (a role's holders, a channel's members; active people only), each person's
//! attributes (skills, levels, capacity, manager, out-of-office days: [`PersonRouting`],
//! sealed under the workspace's key), their open tasks, and their presence from the hub
//! ([`PresenceSource`]). A `learned` block asks the process's latest learned router first
//! ([`WorkflowService::train_router`]); below its threshold, or when the person it names is
//! unavailable, the strategy decides.
//!
//! What routing decided is stored with the task ([`TaskRouting`], sealed): the explanation
//! people see ("skills: ko, billing; least loaded of 3") in the task's notice and in the API,
//! the model version and confidence when the model routed it. Each decision is audited
//! (`workflow.task_routed`, counts and ids only).
//!
//! Jobs (in the instance's job queue, so a crash loses none):
//! - `route`: a task that waits (everyone absent or at capacity) is routed again every
//!   `routing_retry_ms`, so presence changes and finished work reach it; with
//!   `fallback_after`, once that much time has passed it is routed with presence ignored.
//! - `escalate`: the next step of the escalation chain, when due: reassigned to the holder's
//!   manager, a named person, or a role's queue (`workflow.task_escalated`).
//! - `retrain`: a process's learned router is retrained on its schedule.
//!
//! Claiming (`POST /workflow-tasks/{id}/claim`): someone of the group takes a queued task (a
//! routed one, or one shared with a role or a channel without routing, which becomes theirs
//! alone), or the assignee accepts theirs; a claimed task is no longer escalated as
//! `not_claimed`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use concord_routing::policy::{
    self, Attributes, Candidate, Decision, OutOfOffice, Outcome as RouteOutcome, Presence,
    RoutingSpec, Strategy, Target, TaskTimes, WaitReason,
};
use concord_routing::{Router, Sample};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::WorkflowService;
use crate::audit::{Event, Outcome};
use crate::domain::{UserId, WorkspaceId};
use crate::error::Error;
use crate::rbac::{Action, Actor, Resource};
use crate::store::routing::{self as rs, Group};
use crate::store::workflows::{self as wf, InstanceRecord, TaskRecord};
use crate::store::{Conn, Tx};

/// The most past tasks one training reads.
pub const MAX_TRAINING_TASKS: i64 = 200_000;
/// People whose opened attributes are kept in memory at most (then the cache starts over).
const MAX_CACHED_PEOPLE: usize = 100_000;
/// The fewest completed tasks a router is trained on.
pub const MIN_TRAINING_TASKS: usize = 20;

/// Each process's latest learned router with its version, by workspace and process.
pub(crate) type RouterCache = HashMap<(WorkspaceId, String), (i64, Arc<Router>)>;
/// People's opened routing attributes with the sealed bytes they were opened from.
pub(crate) type AttributeCache = HashMap<(WorkspaceId, UserId), (Vec<u8>, PersonRouting)>;

/// Where routing learns who is at their desk; the hub in a running server.
pub trait PresenceSource: Send + Sync {
    /// Each person's presence, in the order given.
    fn presence(&self, users: &[UserId]) -> Vec<Presence>;
}

/// What routing knows about a person in a workspace, as the API shows and takes it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "skills": {"languages": ["ko", "en"], "products": ["billing"]},
    "levels": {"support": 2},
    "capacity": 8,
    "manager": "018f4c2e-8a4b-7c3d-9e5f-0a1b2c3d4e5f",
    "out_of_office": {"from": "2026-12-24", "until": "2027-01-02"}
}))]
pub struct PersonRouting {
    /// Skills by kind (languages, products, certifications, …); compared case-insensitively.
    #[serde(default)]
    pub skills: BTreeMap<String, Vec<String>>,
    /// Levels by name (`support: 2`).
    #[serde(default)]
    pub levels: BTreeMap<String, i64>,
    /// How many open tasks routing gives the person at most (`null`: no limit).
    #[serde(default)]
    pub capacity: Option<u32>,
    /// The person's manager (a member's user id): the first step up an escalation chain.
    #[serde(default)]
    pub manager: Option<UserId>,
    /// Days away from work, both ends included: presence-aware routing skips the person.
    #[serde(default)]
    pub out_of_office: Option<OutOfOfficeDays>,
}

/// A period away from work.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutOfOfficeDays {
    /// First day away.
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    /// Last day away (included).
    #[schema(value_type = String, format = Date)]
    pub until: NaiveDate,
}

/// A person's routing attributes with who set them last.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PersonRoutingView {
    /// The person.
    pub user_id: UserId,
    /// The attributes.
    #[serde(flatten)]
    pub routing: PersonRouting,
    /// When they were set last (`null`: never).
    pub updated_at: Option<DateTime<Utc>>,
}

/// The most skill kinds, values per kind and levels a person has.
const MAX_KINDS: usize = 50;
const MAX_VALUES: usize = 100;
const MAX_NAME_CHARS: usize = 100;

impl PersonRouting {
    fn check(&self, user: UserId) -> Result<(), Error> {
        let bad = |m: String| Error::Invalid(crate::domain::ParseError::new("routing", m));
        if self.skills.len() > MAX_KINDS || self.levels.len() > MAX_KINDS {
            return Err(bad(format!(
                "at most {MAX_KINDS} skill kinds and {MAX_KINDS} levels"
            )));
        }
        for (kind, values) in &self.skills {
            if kind.trim().is_empty() || kind.chars().count() > MAX_NAME_CHARS {
                return Err(bad(format!(
                    "a skill kind is 1 to {MAX_NAME_CHARS} characters"
                )));
            }
            if values.len() > MAX_VALUES {
                return Err(bad(format!("at most {MAX_VALUES} skills of kind {kind:?}")));
            }
            if values
                .iter()
                .any(|v| v.trim().is_empty() || v.chars().count() > MAX_NAME_CHARS)
            {
                return Err(bad(format!(
                    "each skill of kind {kind:?} is 1 to {MAX_NAME_CHARS} characters"
                )));
            }
        }
        if self
            .levels
            .keys()
            .any(|n| n.trim().is_empty() || n.chars().count() > MAX_NAME_CHARS)
        {
            return Err(bad(format!(
                "a level's name is 1 to {MAX_NAME_CHARS} characters"
            )));
        }
        if self.capacity.is_some_and(|c| c > 10_000) {
            return Err(bad("capacity is at most 10000 open tasks".into()));
        }
        if let Some(o) = &self.out_of_office {
            if o.until < o.from {
                return Err(bad(
                    "out_of_office.until is before out_of_office.from".into()
                ));
            }
        }
        if self.manager == Some(user) {
            return Err(bad("a person is not their own manager".into()));
        }
        Ok(())
    }

    fn candidate(&self, id: String, open_tasks: u32, presence: Presence) -> Candidate {
        let mut attributes = Attributes::new();
        for (kind, values) in &self.skills {
            for v in values {
                attributes.add_skill(kind, v);
            }
        }
        for (name, level) in &self.levels {
            attributes.set_level(name, *level);
        }
        Candidate {
            id,
            attributes,
            open_tasks,
            capacity: self.capacity,
            presence,
            out_of_office: self.out_of_office.map(|o| OutOfOffice {
                from: o.from,
                until: o.until,
            }),
            manager: self.manager.map(|m| m.to_string()),
        }
    }
}

/// How a task was routed, sealed with it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TaskRouting {
    /// The model's routing block, checked.
    pub spec: RoutingSpec,
    /// `assigned`, `queued`, `waiting`, `unroutable`, `escalated`.
    pub outcome: String,
    /// Why, for people; counts, never names.
    pub explanation: String,
    /// The learned router's version, when it was asked.
    pub model_version: Option<i64>,
    /// Its confidence in the person it named.
    pub confidence: Option<f64>,
    /// Whether the model (not the strategy) chose the assignee.
    #[serde(default)]
    pub by_model: bool,
    /// Since when the task waits for someone available.
    pub waiting_since: Option<DateTime<Utc>>,
    /// When routing last decided.
    pub routed_at: DateTime<Utc>,
}

/// How a task was routed, as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TaskRoutingView {
    /// `person`, `queue`, `round_robin`, `least_loaded` or `skills`.
    pub strategy: String,
    /// `assigned`, `queued`, `waiting`, `unroutable` or `escalated`.
    pub outcome: String,
    /// Why the task is where it is ("skills: ko, billing; least loaded of 3").
    pub explanation: String,
    /// Whether the learned router chose the assignee.
    pub by_model: bool,
    /// The learned router's version, when it was asked.
    pub model_version: Option<i64>,
    /// Its confidence in the person it named, between 0 and 1.
    pub confidence: Option<f64>,
    /// How many escalation steps are behind the task.
    pub escalation_level: i64,
    /// When its assignee claimed it.
    pub claimed_at: Option<DateTime<Utc>>,
    /// When routing last decided.
    pub routed_at: DateTime<Utc>,
}

fn strategy_name(s: &Strategy) -> &'static str {
    match s {
        Strategy::Person { .. } => "person",
        Strategy::Queue => "queue",
        Strategy::RoundRobin => "round_robin",
        Strategy::LeastLoaded => "least_loaded",
        Strategy::Skills { .. } => "skills",
    }
}

/// A `route` job: route a waiting task again.
#[derive(Serialize, Deserialize)]
pub(crate) struct RouteJob {
    pub task_id: String,
    /// Ignore presence: the fallback after `fallback_after`.
    pub fallback: bool,
}

/// An `escalate` job: the task's next due escalation step.
#[derive(Serialize, Deserialize)]
pub(crate) struct EscalateJob {
    pub task_id: String,
}

/// A `retrain` job: retrain a process's learned router.
#[derive(Serialize, Deserialize)]
pub(crate) struct RetrainJob {
    pub process_id: String,
}

/// The learned router's model as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RouterView {
    /// The process whose tasks it routes.
    pub process_id: String,
    /// Its version (1, 2, …).
    pub version: i64,
    /// Past tasks it learned from.
    pub examples: i64,
    /// People it routes to.
    pub labels: i64,
    /// When it was trained.
    pub trained_at: DateTime<Utc>,
    /// Who asked (`null`: the schedule).
    pub trained_by: Option<UserId>,
}

/// What one routing decision produced.
pub(crate) struct Routed {
    pub assignee: Option<UserId>,
    pub record: TaskRouting,
    /// The decision waits for someone available, for this reason.
    pub wait: Option<WaitReason>,
    /// The round-robin position to store, under its group key.
    pub cursor: Option<(String, String)>,
    pub eligible: usize,
    pub skipped: usize,
}

fn group_key(group: Group) -> String {
    match group {
        Group::Role(r) => format!("role:{r}"),
        Group::Channel(c) => format!("channel:{c}"),
        Group::Person(u) => format!("person:{u}"),
    }
}

impl WorkflowService {
    /// Sets where presence comes from (the hub, once it runs).
    pub fn set_presence(&self, source: Arc<dyn PresenceSource>) {
        let _ = self.inner.presence.set(source);
    }

    fn presence_of(&self, users: &[UserId]) -> Vec<Presence> {
        match self.inner.presence.get() {
            Some(source) => source.presence(users),
            // Without a hub (a tool run), everyone counts as present.
            None => vec![Presence::Online; users.len()],
        }
    }

    /// The group's snapshot: each active person with attributes, load and presence.
    async fn candidates(
        &self,
        conn: &mut Conn<'_>,
        ws: WorkspaceId,
        group: Group,
    ) -> Result<(Vec<Candidate>, HashMap<String, UserId>), Error> {
        let members = rs::group(conn, ws, group).await?;
        let users: Vec<UserId> = members.iter().map(|m| m.user_id).collect();
        let presence = self.presence_of(&users);
        let mut out = Vec::with_capacity(members.len());
        let mut ids = HashMap::with_capacity(members.len());
        for (m, p) in members.into_iter().zip(presence) {
            let attributes = match &m.detail {
                // One unreadable row does not stop the task opening: that person routes
                // as someone without attributes.
                Some(detail) => match self.attributes_from(conn, ws, m.user_id, detail).await {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(user = %m.user_id, error = %e, "routing attributes unreadable");
                        PersonRouting::default()
                    }
                },
                None => PersonRouting::default(),
            };
            let id = m.user_id.to_string();
            ids.insert(id.clone(), m.user_id);
            let open = u32::try_from(m.open_tasks.max(0)).unwrap_or(u32::MAX);
            out.push(attributes.candidate(id, open, p));
        }
        Ok((out, ids))
    }

    async fn attributes_from(
        &self,
        conn: &mut Conn<'_>,
        ws: WorkspaceId,
        user: UserId,
        detail: &[u8],
    ) -> Result<PersonRouting, Error> {
        // The sealed bytes change whenever the attributes do: equal bytes, same attributes.
        if let Some(hit) = self.inner.attributes.lock().ok().and_then(|c| {
            c.get(&(ws, user))
                .filter(|(sealed, _)| sealed.as_slice() == detail)
                .map(|(_, a)| a.clone())
        }) {
            return Ok(hit);
        }
        let row = format!("{ws}:{user}");
        let attributes: PersonRouting = self
            .open_json(conn, ws, "person_attributes", &row, "detail", detail)
            .await?;
        if let Ok(mut cache) = self.inner.attributes.lock() {
            if cache.len() >= MAX_CACHED_PEOPLE {
                cache.clear();
            }
            cache.insert((ws, user), (detail.to_vec(), attributes.clone()));
        }
        Ok(attributes)
    }

    /// Routes a task of `instance` within `group` as `spec` says, with `variables` as the
    /// request the learned router reads.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn decide_route(
        &self,
        conn: &mut Conn<'_>,
        ws: WorkspaceId,
        process_id: &str,
        group: Group,
        spec: &RoutingSpec,
        variables: &Map<String, Value>,
        fallback: bool,
        waiting_since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Routed, Error> {
        let (candidates, ids) = self.candidates(conn, ws, group).await?;
        let options = if fallback {
            spec.options.ignoring_presence()
        } else {
            spec.options
        };
        let key = group_key(group);
        let strategy = match (&spec.strategy, group) {
            // A named person was resolved to their id when the group was made.
            (Strategy::Person { .. }, Group::Person(u)) => Strategy::Person { id: u.to_string() },
            (s, _) => s.clone(),
        };
        // The learned router first.
        let mut model_version = None;
        let mut confidence = None;
        let mut model_note = None;
        if let (Some(learned), false) = (&spec.learned, matches!(group, Group::Person(_))) {
            let model = match self.router_for(conn, ws, process_id).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(process = process_id, error = %e, "learned router unreadable");
                    model_note = Some("the learned model cannot be read".to_string());
                    None
                }
            };
            match model {
                None if model_note.is_some() => {}
                None => model_note = Some("no learned model yet".to_string()),
                Some((version, router)) => {
                    model_version = Some(version);
                    let (text, vars) = super::learning::request_of(variables);
                    let sample = Sample {
                        text,
                        variables: vars,
                    };
                    match router.predict(&sample) {
                        Err(_) => {
                            model_note = Some(format!(
                                "learned model v{version}: nothing in the request to go on"
                            ))
                        }
                        Ok(p) => {
                            confidence = Some(p.confidence);
                            let pct = |x: f64| (x * 100.0).round() as i64;
                            if p.confidence < learned.threshold() {
                                model_note = Some(format!(
                                    "learned model v{version}: {}% confident, below {}%",
                                    pct(p.confidence),
                                    pct(learned.threshold())
                                ));
                            } else if !ids.contains_key(&p.label) {
                                model_note = Some(format!(
                                    "learned model v{version}: {}% confident in someone no longer in the group",
                                    pct(p.confidence)
                                ));
                            } else {
                                let by_model = policy::route(
                                    &Strategy::Person {
                                        id: p.label.clone(),
                                    },
                                    &candidates,
                                    None,
                                    &options,
                                    now,
                                );
                                // A skills strategy's requirements bind the model's pick too.
                                let qualified = match &strategy {
                                    Strategy::Skills { .. } => {
                                        let one: Vec<Candidate> = candidates
                                            .iter()
                                            .filter(|c| c.id == p.label)
                                            .cloned()
                                            .collect();
                                        policy::route(&strategy, &one, None, &options, now)
                                            .assignee()
                                            .is_some()
                                    }
                                    _ => true,
                                };
                                if let (true, Some(id)) = (qualified, by_model.assignee()) {
                                    let explanation = format!(
                                        "learned model v{version}: {}% confident (threshold {}%)",
                                        pct(p.confidence),
                                        pct(learned.threshold())
                                    );
                                    return Ok(Routed {
                                        assignee: ids.get(id).copied(),
                                        record: TaskRouting {
                                            spec: spec.clone(),
                                            outcome: "assigned".into(),
                                            explanation,
                                            model_version,
                                            confidence,
                                            by_model: true,
                                            waiting_since: None,
                                            routed_at: now,
                                        },
                                        wait: None,
                                        cursor: None,
                                        eligible: by_model.eligible,
                                        skipped: by_model.skipped.len(),
                                    });
                                }
                                model_note = Some(format!(
                                    "learned model v{version}: {}% confident in someone unavailable now",
                                    pct(p.confidence)
                                ));
                            }
                        }
                    }
                }
            }
        }
        let cursor = match strategy {
            Strategy::RoundRobin => rs::cursor(conn, ws, &key).await?,
            _ => None,
        };
        let decision: Decision =
            policy::route(&strategy, &candidates, cursor.as_deref(), &options, now);
        let mut explanation = decision.explanation.clone();
        // The group and a channel see the explanation: a named person's days away or load
        // are theirs, not the group's.
        if matches!(strategy, Strategy::Person { .. }) && decision.assignee().is_none() {
            explanation = "named person: not available now".to_string();
        }
        if fallback {
            explanation.push_str("; presence ignored after the fallback time");
        }
        if let Some(note) = model_note {
            explanation.push_str(&format!(" ({note})"));
        }
        let (assignee, outcome, wait) = match &decision.outcome {
            RouteOutcome::Assign { id } => (ids.get(id).copied(), "assigned", None),
            RouteOutcome::Queue => (None, "queued", None),
            RouteOutcome::Wait { reason } => (None, "waiting", Some(*reason)),
            RouteOutcome::Unroutable { .. } => (None, "unroutable", None),
        };
        let new_cursor = match (&strategy, &decision.cursor, assignee) {
            (Strategy::RoundRobin, Some(c), Some(_)) if cursor.as_deref() != Some(c) => {
                Some((key, c.clone()))
            }
            _ => None,
        };
        Ok(Routed {
            assignee,
            record: TaskRouting {
                spec: spec.clone(),
                outcome: outcome.into(),
                explanation,
                model_version,
                confidence,
                by_model: false,
                waiting_since: match wait {
                    Some(_) => waiting_since.or(Some(now)),
                    None => None,
                },
                routed_at: now,
            },
            wait,
            cursor: new_cursor,
            eligible: decision.eligible,
            skipped: decision.skipped.len(),
        })
    }

    /// Seals a task's routing record.
    pub(crate) async fn seal_routing(
        &self,
        tx: &mut Tx,
        ws: WorkspaceId,
        task_id: &str,
        record: &TaskRouting,
    ) -> Result<Vec<u8>, Error> {
        let json = serde_json::to_vec(record)
            .map_err(|e| Error::Internal(format!("routing to JSON: {e}")))?;
        self.seal(tx, ws, "workflow_tasks", task_id, "routing", &json)
            .await
    }

    /// A task's routing record, if it has one.
    pub(crate) async fn routing_of(
        &self,
        conn: &mut Conn<'_>,
        task: &TaskRecord,
    ) -> Result<Option<TaskRouting>, Error> {
        match &task.routing {
            None => Ok(None),
            Some(sealed) => Ok(Some(
                self.open_json(
                    conn,
                    task.workspace_id,
                    "workflow_tasks",
                    &task.id,
                    "routing",
                    sealed,
                )
                .await?,
            )),
        }
    }

    /// The API's view of a task's routing.
    pub(crate) async fn routing_view(
        &self,
        conn: &mut Conn<'_>,
        task: &TaskRecord,
    ) -> Result<Option<TaskRoutingView>, Error> {
        Ok(self.routing_of(conn, task).await?.map(|r| TaskRoutingView {
            strategy: strategy_name(&r.spec.strategy).into(),
            outcome: r.outcome,
            explanation: r.explanation,
            by_model: r.by_model,
            model_version: r.model_version,
            confidence: r.confidence,
            escalation_level: task.escalation_level,
            claimed_at: task.claimed_at,
            routed_at: r.routed_at,
        }))
    }

    /// After a routing decision in the write `tx`: stores the cursor, queues the retry, the
    /// fallback and the next escalation, and audits it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn after_route(
        &self,
        tx: &mut Tx,
        instance: &InstanceRecord,
        task: &TaskRecord,
        routed: &Routed,
        first: bool,
        fallback: bool,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let ws = instance.workspace_id;
        if let Some((key, last)) = &routed.cursor {
            rs::set_cursor(&mut tx.conn(), ws, key, last).await?;
        }
        let spec = &routed.record.spec;
        if routed.wait.is_some() {
            let retry = chrono::Duration::milliseconds(
                i64::try_from(self.inner.routing_retry_ms).unwrap_or(i64::MAX / 4),
            );
            super::apply::queue(
                self,
                tx,
                instance,
                instance.id,
                &format!("{}:route", task.id),
                "route",
                now + retry,
                &RouteJob {
                    task_id: task.id.clone(),
                    fallback,
                },
            )
            .await?;
            let waiting_since = routed.record.waiting_since.unwrap_or(now);
            if let (false, Some(WaitReason::Unavailable), Some(at)) =
                (fallback, routed.wait, spec.fallback_at(waiting_since))
            {
                super::apply::queue(
                    self,
                    tx,
                    instance,
                    instance.id,
                    &format!("{}:fallback", task.id),
                    "route",
                    at,
                    &RouteJob {
                        task_id: task.id.clone(),
                        fallback: true,
                    },
                )
                .await?;
            }
        }
        if first {
            let times = TaskTimes {
                opened_at: task.created_at,
                claimed_at: None,
            };
            if let Some(due) = spec.escalation.next_due(&times, 0) {
                super::apply::queue(
                    self,
                    tx,
                    instance,
                    instance.id,
                    &format!("{}:escalate:{}", task.id, due.step),
                    "escalate",
                    due.at,
                    &EscalateJob {
                        task_id: task.id.clone(),
                    },
                )
                .await?;
            }
        }
        // A retry that still waits changes nothing worth a record.
        if !first && routed.wait.is_some() {
            return Ok(());
        }
        let event = Event::by(&Actor::system(), "workflow.task_routed", Outcome::Allowed)
            .target("workflow_task", &task.id)
            .workspace(ws)
            .details(json!({
                "instance_id": instance.id,
                "element": task.element,
                "strategy": strategy_name(&spec.strategy),
                "outcome": routed.record.outcome,
                "assignee": routed.assignee,
                "eligible": routed.eligible,
                "skipped": routed.skipped,
                "by_model": routed.record.by_model,
                "model_version": routed.record.model_version,
                "confidence": routed.record.confidence,
                "fallback": fallback,
            }));
        self.auditor().record(tx, event).await?;
        Ok(())
    }

    /// A `route` job: routes a task that waits again (with presence ignored for the
    /// fallback); while it still waits, the retry is queued again.
    pub(crate) async fn run_route(&self, job: &wf::JobRecord) -> Result<(), Error> {
        let payload: RouteJob = self.payload(job).await?;
        let this = self.clone();
        let id = job.id.clone();
        self.store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    if !wf::delete_job(&mut tx.conn(), &id).await? {
                        return Ok::<(), Error>(());
                    }
                    let Some(task) = wf::task(&mut tx.conn(), &payload.task_id).await? else {
                        return Ok(());
                    };
                    if task.status != "open" || task.assignee.is_some() {
                        return Ok(());
                    }
                    let Some(record) = this.routing_of(&mut tx.conn(), &task).await? else {
                        return Ok(());
                    };
                    if record.outcome != "waiting" {
                        return Ok(());
                    }
                    let Some(instance) = wf::instance(&mut tx.conn(), task.instance_id).await?
                    else {
                        return Ok(());
                    };
                    if instance.status != "running" {
                        return Ok(());
                    }
                    let group = match (
                        &record.spec.strategy,
                        task.candidate_role,
                        task.candidate_channel,
                    ) {
                        (Strategy::Person { id }, ..) => {
                            let keyring = this.auditor().keyring().clone();
                            match super::apply::member_named(
                                &keyring,
                                &mut tx.conn(),
                                task.workspace_id,
                                id,
                            )
                            .await?
                            {
                                Some(u) => Group::Person(u),
                                None => return Ok(()),
                            }
                        }
                        (_, Some(r), _) => Group::Role(r),
                        (_, None, Some(c)) => Group::Channel(c),
                        (_, None, None) => return Ok(()),
                    };
                    let state = this.state_of(&mut tx.conn(), &instance).await?;
                    let now = Utc::now();
                    // Once the fallback time has passed, every retry ignores presence.
                    let fallback = payload.fallback
                        || record
                            .spec
                            .fallback_at(record.waiting_since.unwrap_or(now))
                            .is_some_and(|at| at <= now);
                    let routed = this
                        .decide_route(
                            &mut tx.conn(),
                            task.workspace_id,
                            &instance.process_id,
                            group,
                            &record.spec,
                            &state.variables,
                            fallback,
                            record.waiting_since,
                            now,
                        )
                        .await?;
                    let sealed = this
                        .seal_routing(tx, task.workspace_id, &task.id, &routed.record)
                        .await?;
                    rs::assign(
                        &mut tx.conn(),
                        &task.id,
                        &rs::Assignment {
                            assignee: routed.assignee,
                            candidate_role: task.candidate_role,
                            candidate_channel: task.candidate_channel,
                            claimed_at: None,
                            escalation_level: task.escalation_level,
                            routing: Some(sealed),
                        },
                    )
                    .await?;
                    this.after_route(tx, &instance, &task, &routed, false, fallback, now)
                        .await?;
                    if let Some(person) = routed.assignee {
                        super::facts::task_picked(&mut tx.conn(), &task.id, now).await?;
                        let changed = TaskRecord {
                            assignee: Some(person),
                            ..task.clone()
                        };
                        super::apply::task_changed(tx, &changed, "assigned").await?;
                        this.notices_changed(
                            tx,
                            &instance,
                            &task.id,
                            format!("Assigned to <@{person}>."),
                            false,
                            now,
                        )
                        .await?;
                        this.tell_assignee(
                            tx,
                            &instance,
                            &changed,
                            person,
                            &routed.record.explanation,
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .await?;
        self.wake();
        Ok(())
    }

    /// Posts the workflow bot's notice to a task's new assignee, with why it came to them.
    pub(crate) async fn tell_assignee(
        &self,
        tx: &mut Tx,
        instance: &InstanceRecord,
        task: &TaskRecord,
        person: UserId,
        why: &str,
    ) -> Result<(), Error> {
        let detail = self.task_detail(&mut tx.conn(), task).await?;
        let name = detail.name.as_deref().unwrap_or(&task.element);
        let notice = super::apply::TaskNotice {
            task_id: task.id.clone(),
            element: task.element.clone(),
            to: concord_workflow::model::PostTarget::Person(person.to_string()),
            text: format!(
                "Task for you: *{name}* (process `{}`). Why you: {why}.",
                instance.process_id
            ),
            form_key: detail.form_key.clone(),
            form_version: detail.form_version,
            reminder: false,
        };
        let job = format!("{}:notice:{}", task.id, Uuid::now_v7());
        super::apply::queue(
            self,
            tx,
            instance,
            instance.id,
            &job,
            "notice",
            Utc::now(),
            &notice,
        )
        .await
    }

    /// An `escalate` job: fires the steps of the task's chain that are due, from where the
    /// task is, and queues the next one.
    pub(crate) async fn run_escalate(&self, job: &wf::JobRecord) -> Result<(), Error> {
        let payload: EscalateJob = self.payload(job).await?;
        let this = self.clone();
        let id = job.id.clone();
        self.store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    if !wf::delete_job(&mut tx.conn(), &id).await? {
                        return Ok::<(), Error>(());
                    }
                    let Some(task) = wf::task(&mut tx.conn(), &payload.task_id).await? else {
                        return Ok(());
                    };
                    if task.status != "open" {
                        return Ok(());
                    }
                    let Some(mut record) = this.routing_of(&mut tx.conn(), &task).await? else {
                        return Ok(());
                    };
                    let Some(instance) = wf::instance(&mut tx.conn(), task.instance_id).await?
                    else {
                        return Ok(());
                    };
                    if instance.status != "running" {
                        return Ok(());
                    }
                    let ws = task.workspace_id;
                    let chain = record.spec.escalation.clone();
                    // The managers up from whoever holds the task, as far as the chain can go.
                    let mut managers: HashMap<String, String> = HashMap::new();
                    let mut cursor = task.assignee;
                    for _ in 0..chain.steps().len() {
                        let Some(user) = cursor else { break };
                        let manager = match rs::attributes(&mut tx.conn(), ws, user).await? {
                            Some(a) => {
                                this.attributes_from(&mut tx.conn(), ws, user, &a.detail)
                                    .await?
                                    .manager
                            }
                            None => None,
                        };
                        if let Some(m) = manager {
                            managers.insert(user.to_string(), m.to_string());
                        }
                        cursor = manager;
                    }
                    let times = TaskTimes {
                        opened_at: task.created_at,
                        claimed_at: task.claimed_at,
                    };
                    let level = usize::try_from(task.escalation_level.max(0)).unwrap_or(0);
                    let now = Utc::now();
                    let holder = task.assignee.map(|a| a.to_string());
                    let run = policy::escalate_due(
                        &chain,
                        &times,
                        level,
                        now,
                        holder.as_deref(),
                        |p| managers.get(p).cloned(),
                    );
                    let mut assignee = task.assignee;
                    let mut role = task.candidate_role;
                    let mut channel = task.candidate_channel;
                    let mut claimed_at = task.claimed_at;
                    let mut moved = false;
                    let keyring = this.auditor().keyring().clone();
                    for e in &run.escalations {
                        match &e.to {
                            Target::Person(p) => {
                                let target = match super::apply::member_named(&keyring, &mut tx.conn(), ws, p)
                                    .await?
                                {
                                    Some(u) if is_active_person(tx, u).await? => Some(u),
                                    _ => None,
                                };
                                match target {
                                    Some(u) => {
                                        assignee = Some(u);
                                        claimed_at = None;
                                        moved = true;
                                        record.explanation = e.explanation.clone();
                                    }
                                    None => {
                                        record.explanation = format!(
                                            "{}, who is not an active member of the workspace: the task stays",
                                            e.explanation
                                        );
                                    }
                                }
                            }
                            Target::Role(name) => {
                                match crate::workspaces::find_role(&keyring, &mut tx.conn(), ws, name)
                                    .await?
                                {
                                    Some(r) => {
                                        assignee = None;
                                        role = Some(r.id);
                                        channel = None;
                                        claimed_at = None;
                                        moved = true;
                                        record.explanation = e.explanation.clone();
                                    }
                                    None => {
                                        record.explanation = format!(
                                            "{}, which does not exist in the workspace: the task stays",
                                            e.explanation
                                        );
                                    }
                                }
                            }
                            Target::Nobody => record.explanation = e.explanation.clone(),
                        }
                    }
                    if moved {
                        record.outcome = "escalated".into();
                        record.by_model = false;
                        record.routed_at = now;
                    }
                    let sealed = this.seal_routing(tx, ws, &task.id, &record).await?;
                    rs::assign(
                        &mut tx.conn(),
                        &task.id,
                        &rs::Assignment {
                            assignee,
                            candidate_role: role,
                            candidate_channel: channel,
                            claimed_at,
                            escalation_level: i64::try_from(run.level).unwrap_or(i64::MAX),
                            routing: Some(sealed),
                        },
                    )
                    .await?;
                    if !run.escalations.is_empty() {
                        let event =
                            Event::by(&Actor::system(), "workflow.task_escalated", Outcome::Allowed)
                                .target("workflow_task", &task.id)
                                .workspace(ws)
                                .details(json!({
                                    "instance_id": task.instance_id,
                                    "steps": run.escalations.iter().map(|e| e.step + 1).collect::<Vec<_>>(),
                                    "assignee": assignee,
                                    "role": role,
                                    "moved": moved,
                                }));
                        this.auditor().record(tx, event).await?;
                    }
                    let changed = TaskRecord {
                        assignee,
                        candidate_role: role,
                        candidate_channel: channel,
                        ..task.clone()
                    };
                    if moved {
                        super::apply::task_changed_for(
                            tx,
                            &changed,
                            "escalated",
                            &task.assignee.into_iter().collect::<Vec<_>>(),
                        )
                        .await?;
                        this.notices_changed(
                            tx,
                            &instance,
                            &task.id,
                            format!("Escalated: {}.", record.explanation),
                            true,
                            now,
                        )
                        .await?;
                        if let Some(person) = assignee {
                            super::facts::task_picked(&mut tx.conn(), &task.id, now).await?;
                            this.tell_assignee(tx, &instance, &changed, person, &record.explanation)
                                .await?;
                        }
                    }
                    if let Some(next) = run.next {
                        super::apply::queue(
                            &this,
                            tx,
                            &instance,
                            instance.id,
                            &format!("{}:escalate:{}", task.id, next.step),
                            "escalate",
                            next.at,
                            &EscalateJob {
                                task_id: task.id.clone(),
                            },
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .await?;
        self.wake();
        Ok(())
    }

    /// Claims a task (`POST /workflow-tasks/{id}/claim`): someone its group names takes it
    /// from the queue, or its assignee accepts it. Audited as `workflow.task_claimed`.
    #[tracing::instrument(skip(self, actor), fields(actor = ?actor.user_id()))]
    pub async fn claim(&self, actor: &Actor, task_id: String) -> Result<super::TaskView, Error> {
        let this = self.clone();
        let actor = actor.clone();
        self.store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let (task, user, member) =
                        super::task_of_member(tx, &actor, &task_id).await?;
                    let in_group = task.assignee == Some(user)
                        || (task.assignee.is_none() && this.in_group(tx, &task, &member).await?);
                    this.admit(
                        tx,
                        &actor,
                        &task,
                        in_group,
                        "workflow.task_claimed",
                        "this task is assigned to someone else",
                    )
                    .await?;
                    if task.claimed_at.is_some() {
                        return Err(Error::conflict(
                            "task_claimed",
                            "this task is already claimed",
                        ));
                    }
                    // A routed task is claimed (taken from its queue, or accepted by its
                    // assignee), and so is one shared with a role or a channel: it becomes
                    // the claimer's alone. A task given to one person without routing has
                    // nothing to claim.
                    let shared = task.candidate_role.is_some() || task.candidate_channel.is_some();
                    if task.routing.is_none() && !shared {
                        return Err(Error::conflict(
                            "not_claimable",
                            "this task is assigned to one person without routing: there is nothing to claim",
                        ));
                    }
                    let now = Utc::now();
                    if !rs::claim(&mut tx.conn(), &task.id, user, now).await? {
                        return Err(Error::conflict(
                            "task_claimed",
                            "someone else took this task",
                        ));
                    }
                    super::facts::task_picked(&mut tx.conn(), &task.id, now).await?;
                    let event = Event::by(&actor, "workflow.task_claimed", Outcome::Allowed)
                        .target("workflow_task", &task.id)
                        .workspace(task.workspace_id)
                        .details(json!({"instance_id": task.instance_id, "element": task.element}));
                    this.auditor().record(tx, event).await?;
                    let task = wf::task(&mut tx.conn(), &task.id)
                        .await?
                        .ok_or(Error::NotFound("task"))?;
                    super::apply::task_changed(tx, &task, "claimed").await?;
                    let instance = wf::instance(&mut tx.conn(), task.instance_id)
                        .await?
                        .ok_or(Error::NotFound("task"))?;
                    this.notices_changed(
                        tx,
                        &instance,
                        &task.id,
                        format!("Claimed by <@{user}>."),
                        false,
                        now,
                    )
                    .await?;
                    this.task_view(&mut tx.conn(), &task, &instance.process_id)
                        .await
                })
            })
            .await
    }

    /// Whether the member is in the task's group (holds its role, belongs to its channel).
    pub(crate) async fn in_group(
        &self,
        tx: &mut Tx,
        task: &TaskRecord,
        member: &crate::store::workspaces::MemberRecord,
    ) -> Result<bool, Error> {
        if task.candidate_role.is_some() && task.candidate_role == Some(member.role_id) {
            return Ok(true);
        }
        if let Some(channel) = task.candidate_channel {
            return Ok(
                crate::store::channels::membership(&mut tx.conn(), channel, member.user_id)
                    .await?
                    .is_some(),
            );
        }
        Ok(false)
    }

    /// A person's routing attributes in a workspace: the person themself, or someone who
    /// manages workflows there.
    pub async fn person_routing(
        &self,
        actor: &Actor,
        ws: WorkspaceId,
        user: UserId,
    ) -> Result<PersonRoutingView, Error> {
        let mut conn = self.store().reader().await?;
        if actor.user_id() != Some(user) {
            self.authorize_read(&mut conn.conn(), actor, Action::ManageWorkflows, ws)
                .await?;
        } else {
            crate::rbac::allow_own_items(actor);
        }
        if crate::store::workspaces::member(&mut conn.conn(), ws, user)
            .await?
            .is_none()
        {
            return Err(Error::NotFound("member"));
        }
        let stored = rs::attributes(&mut conn.conn(), ws, user).await?;
        let (routing, updated_at) = match stored {
            Some(a) => (
                self.attributes_from(&mut conn.conn(), ws, user, &a.detail)
                    .await?,
                Some(a.updated_at),
            ),
            None => (PersonRouting::default(), None),
        };
        Ok(PersonRoutingView {
            user_id: user,
            routing,
            updated_at,
        })
    }

    /// Sets a person's routing attributes. Someone who manages workflows sets any of them;
    /// a person sets their own capacity and out-of-office days, and leaves the rest as it is.
    /// Audited as `person.routing_updated` (which fields, not their values).
    pub async fn set_person_routing(
        &self,
        actor: &Actor,
        ws: WorkspaceId,
        user: UserId,
        new: PersonRouting,
    ) -> Result<PersonRoutingView, Error> {
        let this = self.clone();
        let actor = actor.clone();
        self.store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let manager = crate::rbac::allows(
                        &mut tx.conn(),
                        &actor,
                        Action::ManageWorkflows,
                        Resource::Workspace(ws),
                    )
                    .await?;
                    if !manager && actor.user_id() != Some(user) {
                        this.authorize_in(tx, &actor, Action::ManageWorkflows, ws).await?;
                    }
                    new.check(user)?;
                    if crate::store::workspaces::member(&mut tx.conn(), ws, user)
                        .await?
                        .is_none()
                    {
                        return Err(Error::NotFound("member"));
                    }
                    let old = match rs::attributes(&mut tx.conn(), ws, user).await? {
                        Some(a) => {
                            this.attributes_from(&mut tx.conn(), ws, user, &a.detail)
                                .await?
                        }
                        None => PersonRouting::default(),
                    };
                    if !manager
                        && (old.skills != new.skills
                            || old.levels != new.levels
                            || old.manager != new.manager)
                    {
                        crate::rbac::decide_assignment(&actor, false);
                        return Err(Error::denied(
                            "routing_admin_only",
                            "skills, levels and manager are set by someone who manages workflows; you may set your capacity and out-of-office days",
                        ));
                    }
                    crate::rbac::decide_assignment(&actor, true);
                    if let Some(m) = new.manager {
                        let member = crate::store::workspaces::member(&mut tx.conn(), ws, m)
                            .await?
                            .is_some();
                        if !member || !is_active_person(tx, m).await? {
                            return Err(Error::Invalid(crate::domain::ParseError::new(
                                "manager",
                                "the manager is not an active person of this workspace",
                            )));
                        }
                        // Up the chain from the new manager, the person must not come back.
                        let mut up = Some(m);
                        for _ in 0..MAX_MANAGER_CHAIN {
                            let Some(next) = up else { break };
                            if next == user {
                                return Err(Error::Invalid(crate::domain::ParseError::new(
                                    "manager",
                                    "the manager chain would lead back to this person",
                                )));
                            }
                            up = match rs::attributes(&mut tx.conn(), ws, next).await? {
                                Some(a) => this
                                    .attributes_from(&mut tx.conn(), ws, next, &a.detail)
                                    .await
                                    .ok()
                                    .and_then(|a| a.manager),
                                None => None,
                            };
                        }
                    }
                    let json = serde_json::to_vec(&new)
                        .map_err(|e| Error::Internal(format!("attributes to JSON: {e}")))?;
                    let row = format!("{ws}:{user}");
                    let detail = this
                        .seal(tx, ws, "person_attributes", &row, "detail", &json)
                        .await?;
                    let now = Utc::now();
                    rs::put_attributes(
                        &mut tx.conn(),
                        &rs::AttributesRecord {
                            workspace_id: ws,
                            user_id: user,
                            detail,
                            updated_by: actor.user_id(),
                            updated_at: now,
                        },
                    )
                    .await?;
                    let mut fields = Vec::new();
                    if old.skills != new.skills {
                        fields.push("skills");
                    }
                    if old.levels != new.levels {
                        fields.push("levels");
                    }
                    if old.capacity != new.capacity {
                        fields.push("capacity");
                    }
                    if old.manager != new.manager {
                        fields.push("manager");
                    }
                    if old.out_of_office != new.out_of_office {
                        fields.push("out_of_office");
                    }
                    let event = Event::by(&actor, "person.routing_updated", Outcome::Allowed)
                        .target("user", user.to_string())
                        .workspace(ws)
                        .details(json!({ "fields": fields }));
                    this.auditor().record(tx, event).await?;
                    Ok(PersonRoutingView {
                        user_id: user,
                        routing: new,
                        updated_at: Some(now),
                    })
                })
            })
            .await
    }

    /// The latest learned router of a process, loaded once per version.
    async fn router_for(
        &self,
        conn: &mut Conn<'_>,
        ws: WorkspaceId,
        process: &str,
    ) -> Result<Option<(i64, Arc<Router>)>, Error> {
        let version = rs::latest_model_version(conn, ws, process).await?;
        if version == 0 {
            return Ok(None);
        }
        let key = (ws, process.to_owned());
        if let Some((v, r)) = self
            .inner
            .routers
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
        {
            if v == version {
                return Ok(Some((v, r)));
            }
        }
        let Some(record) = rs::latest_model(conn, ws, process).await? else {
            return Ok(None);
        };
        let bytes = self
            .open(
                conn,
                ws,
                "routing_models",
                &record.id.to_string(),
                "model",
                &record.model,
            )
            .await?;
        let router = Router::from_bytes(&bytes)
            .map_err(|e| Error::Internal(format!("a stored router does not read back: {e}")))?;
        let router = Arc::new(router);
        if let Ok(mut cache) = self.inner.routers.lock() {
            cache.insert(key, (record.version, router.clone()));
        }
        Ok(Some((record.version, router)))
    }

    /// Trains the next version of a process's learned router on its completed tasks
    /// (`workflows.manage`; `None` actor: the schedule). The model is sealed and versioned;
    /// tasks routed from now on record the version and the confidence. Audited as
    /// `workflow.router_trained` (counts only).
    pub async fn train_router(
        &self,
        actor: &Actor,
        ws: WorkspaceId,
        process_id: &str,
    ) -> Result<RouterView, Error> {
        {
            let mut conn = self.store().reader().await?;
            if !matches!(actor.principal, crate::rbac::Principal::System) {
                self.authorize_read(&mut conn.conn(), actor, Action::ManageWorkflows, ws)
                    .await?;
            }
            if wf::latest_version(&mut conn.conn(), ws, process_id).await? == 0 {
                return Err(Error::NotFound("process"));
            }
        }
        let key = (ws, process_id.to_owned());
        let _training = TrainingGuard::take(&self.inner.training, key).ok_or_else(|| {
            Error::conflict(
                "training_running",
                "this process's router is being trained now; ask again when it is done",
            )
        })?;
        let outcomes = self
            .outcomes_in(ws, process_id, None, MAX_TRAINING_TASKS)
            .await?;
        if outcomes.len() < MIN_TRAINING_TASKS {
            return Err(Error::refused(
                "too_little_history",
                format!(
                    "the process has {} completed tasks; the router learns from at least {MIN_TRAINING_TASKS}",
                    outcomes.len()
                ),
            ));
        }
        let trained = tokio::task::spawn_blocking(move || {
            let examples = concord_routing::examples_from_history(&outcomes);
            let router = Router::train(&examples, &concord_routing::TrainOptions::default())?;
            let bytes = router.to_bytes()?;
            Ok::<_, concord_routing::RoutingError>((router, bytes))
        })
        .await
        .map_err(|e| Error::Internal(format!("training stopped: {e}")))?;
        let (router, bytes) = trained.map_err(|e| {
            Error::refused(
                "cannot_train",
                format!("the router cannot learn from this history: {e}"),
            )
        })?;
        let examples = i64::try_from(router.trained_on()).unwrap_or(i64::MAX);
        let labels = i64::try_from(router.labels().len()).unwrap_or(i64::MAX);
        let this = self.clone();
        let actor = actor.clone();
        let process = process_id.to_owned();
        let retrain_every = self.inner.retrain_every_hours;
        self.store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let version = rs::latest_model_version(&mut tx.conn(), ws, &process).await? + 1;
                    let id = Uuid::now_v7();
                    let sealed = this
                        .seal(tx, ws, "routing_models", &id.to_string(), "model", &bytes)
                        .await?;
                    let now = Utc::now();
                    let record = rs::ModelRecord {
                        id,
                        workspace_id: ws,
                        process_id: process.clone(),
                        version,
                        model: sealed,
                        examples,
                        labels,
                        trained_by: actor.user_id(),
                        trained_at: now,
                    };
                    rs::insert_model(&mut tx.conn(), &record).await?;
                    let event = Event::by(&actor, "workflow.router_trained", Outcome::Allowed)
                        .target("workflow_process", &process)
                        .workspace(ws)
                        .details(
                            json!({"version": version, "examples": examples, "labels": labels}),
                        );
                    this.auditor().record(tx, event).await?;
                    if retrain_every > 0 {
                        this.queue_retrain(
                            tx,
                            ws,
                            &process,
                            now + chrono::Duration::hours(retrain_every as i64),
                        )
                        .await?;
                    }
                    Ok(RouterView {
                        process_id: process,
                        version,
                        examples,
                        labels,
                        trained_at: now,
                        trained_by: record.trained_by,
                    })
                })
            })
            .await
    }

    /// Queues (or keeps) the process's next scheduled retraining.
    pub(crate) async fn queue_retrain(
        &self,
        tx: &mut Tx,
        ws: WorkspaceId,
        process: &str,
        at: DateTime<Utc>,
    ) -> Result<(), Error> {
        let id = format!("retrain:{ws}:{process}");
        let payload = serde_json::to_vec(&RetrainJob {
            process_id: process.to_owned(),
        })
        .map_err(|e| Error::Internal(format!("job to JSON: {e}")))?;
        let sealed = self
            .seal(tx, ws, "workflow_jobs", &id, "payload", &payload)
            .await?;
        wf::insert_job(
            &mut tx.conn(),
            &wf::JobRecord {
                id,
                instance_id: None,
                deployment_id: None,
                workspace_id: ws,
                kind: "retrain".into(),
                due_at: at,
                payload: sealed,
                leased_until: None,
            },
        )
        .await?;
        Ok(())
    }

    /// A `retrain` job: trains the next version; a history still too small waits for the
    /// next turn.
    pub(crate) async fn run_retrain(&self, job: &wf::JobRecord) -> Result<(), Error> {
        let payload: RetrainJob = self.payload(job).await?;
        // The next turn is queued in the write that takes this one, so a crash while
        // training loses no schedule; training runs beside the runner, not in its pass.
        let every = self.inner.retrain_every_hours;
        let this = self.clone();
        let ws = job.workspace_id;
        let id = job.id.clone();
        let process = payload.process_id.clone();
        let taken = self
            .store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    if !wf::delete_job(&mut tx.conn(), &id).await? {
                        return Ok::<bool, Error>(false);
                    }
                    if every > 0 {
                        let next = Utc::now() + chrono::Duration::hours(every as i64);
                        this.queue_retrain(tx, ws, &process, next).await?;
                    }
                    Ok(true)
                })
            })
            .await?;
        if !taken || every == 0 {
            return Ok(());
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this
                .train_router(&Actor::system(), ws, &payload.process_id)
                .await
            {
                tracing::info!(process = %payload.process_id, error = %e, "scheduled retraining skipped");
            }
        });
        Ok(())
    }

    /// The latest learned router of a process (`workflows.manage`).
    pub async fn router(
        &self,
        actor: &Actor,
        ws: WorkspaceId,
        process_id: &str,
    ) -> Result<RouterView, Error> {
        let mut conn = self.store().reader().await?;
        self.authorize_read(&mut conn.conn(), actor, Action::ManageWorkflows, ws)
            .await?;
        let record = rs::latest_model(&mut conn.conn(), ws, process_id)
            .await?
            .ok_or(Error::NotFound("router"))?;
        Ok(RouterView {
            process_id: record.process_id,
            version: record.version,
            examples: record.examples,
            labels: record.labels,
            trained_at: record.trained_at,
            trained_by: record.trained_by,
        })
    }
}

/// Checks every user task's routing block of a model being deployed: it must read as a
/// [`RoutingSpec`], and a strategy other than `person` needs a group (a role or a channel).
pub(crate) fn check_routing(
    model: &concord_workflow::ProcessModel,
) -> Vec<concord_workflow::problem::Problem> {
    use concord_workflow::model::{Assignment, ElementKind};
    let mut problems = Vec::new();
    for el in &model.elements {
        let ElementKind::UserTask(task) = &el.kind else {
            continue;
        };
        let Some(block) = &task.routing else {
            continue;
        };
        let problem = |message: String| concord_workflow::problem::Problem {
            element: Some(el.id.clone()),
            line: None,
            message,
        };
        match serde_json::from_value::<RoutingSpec>(block.clone()) {
            Err(e) => problems.push(problem(format!("routing: {e}"))),
            Ok(spec) => {
                let grouped = matches!(
                    task.assignment,
                    Assignment::Role(_) | Assignment::Channel(_)
                );
                if !matches!(spec.strategy, Strategy::Person { .. }) && !grouped {
                    problems.push(problem(
                        "routing picks among a group: give the task a role or a channel".into(),
                    ));
                }
            }
        }
    }
    problems
}

/// The longest manager chain followed when checking for a loop.
const MAX_MANAGER_CHAIN: usize = 64;

/// Whether `user` is an active person (not a bot, not deactivated).
pub(crate) async fn is_active_person(tx: &mut Tx, user: UserId) -> Result<bool, Error> {
    let active = crate::store::users::by_id(&mut tx.conn(), user)
        .await?
        .is_some_and(|u| u.status == "active");
    Ok(active
        && crate::store::bots::by_id(&mut tx.conn(), user)
            .await?
            .is_none())
}

/// One training per process at a time: held while it runs.
pub(crate) struct TrainingGuard {
    set: Arc<std::sync::Mutex<std::collections::HashSet<(WorkspaceId, String)>>>,
    key: (WorkspaceId, String),
}

impl TrainingGuard {
    fn take(
        set: &Arc<std::sync::Mutex<std::collections::HashSet<(WorkspaceId, String)>>>,
        key: (WorkspaceId, String),
    ) -> Option<TrainingGuard> {
        let mut running = set.lock().ok()?;
        if !running.insert(key.clone()) {
            return None;
        }
        Some(TrainingGuard {
            set: set.clone(),
            key,
        })
    }
}

impl Drop for TrainingGuard {
    fn drop(&mut self) {
        if let Ok(mut running) = self.set.lock() {
            running.remove(&self.key);
        }
    }
}
