//! Workflows: BPMN processes deployed into a workspace and run by the engine of
//! `concord-workflow`, durably, under the workspace's access control, encryption and audit.
//!
//! The engine is a pure state machine (model + state + input → state + commands + history);
//! this module is everything around it:
//! - deploying ([`WorkflowService::deploy`]): BPMN XML or the YAML form, parsed and validated
//!   (every problem named by element and line), stored as an immutable version whose source
//!   and model are sealed under the workspace's key;
//! - running ([`apply`]): each transition commits in one [`Store::write`]: the instance's
//!   sealed state, one history row and one `workflow.step` audit entry per step, and the
//!   indexes the commands ask for (open tasks, due jobs, subscriptions, incidents), so a
//!   crash at any moment resumes every instance where its last commit left it;
//! - the runner ([`runner`]): due jobs (timers, HTTP service calls with their idempotency
//!   key, child instances, published messages), taken under a lease so a job whose runner
//!   died is taken again;
//! - people: the task inbox, completing a task (only those the assignment names), messages
//!   to waiting instances, incidents an operator retries, skips or cancels.
//!
//! Permissions: `workflows.manage` (owners, admins) deploys, sees every instance, cancels
//! and handles incidents; `workflows.start` (members) starts instances and follows their own.

mod apply;
mod checks;
pub mod dashboard;
mod decisions;
pub(crate) mod facts;
mod forms;
mod inventory;
mod learning;
pub mod mining;
mod notices;
mod posting;
pub mod routing;
pub mod runner;
mod tasks;
pub mod triggers;
mod views;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use concord_workflow::model::StartTrigger;
use concord_workflow::{bpmn, validate, yaml, Engine, Input, ProcessModel};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::audit::{Auditor, Event, Outcome};
use crate::bots::delivery::egress::Egress;
use crate::crypto::{Aad, Scope};
use crate::domain::WorkspaceId;
use crate::error::Error;
use crate::rbac::{Action, Actor, Resource};
use crate::store::workflows::{self as wf, DeploymentRecord, InstanceRecord};
use crate::store::{Conn, Store, Tx};

pub use checks::{ExpressionCheck, ExpressionKind, ExpressionProblem, ExpressionReport};
pub use decisions::{
    DecideRequest, DecisionCaseResult, DecisionDeployment, DecisionList, DecisionOutcome,
    DecisionProblem, DecisionSourceFormat, DecisionTestReport, DecisionView, MatchedRule,
    NewDecision, NewDecisionTest,
};
pub use forms::{FormList, FormView, NewForm};
pub use inventory::INVENTORY;
pub use tasks::{
    NewTaskComment, ReassignTask, TaskCandidates, TaskCommentList, TaskCommentView,
    MAX_COMMENT_CHARS,
};
pub use triggers::{
    HookCredentials, HookOutcome, NewTrigger, TriggerKind, TriggerList, TriggerView,
};
pub use views::*;

/// The largest model source accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 1024 * 1024;
/// The longest version note accepted, in characters.
pub const MAX_NOTE_CHARS: usize = 500;
/// The largest variables object accepted at start or completion, in bytes of JSON.
pub const MAX_VARIABLES_BYTES: usize = 256 * 1024;
/// Signals share the subscription index with messages under this prefix.
pub(crate) const SIGNAL_PREFIX: &str = "signal:";
/// Instances or tasks per page unless asked otherwise.
pub const DEFAULT_PAGE: i64 = 50;
/// The most one page lists.
pub const MAX_PAGE: i64 = 500;

/// Deploys, starts and drives workflow processes; cheap to clone.
#[derive(Clone)]
pub struct WorkflowService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    auditor: Auditor,
    egress: Egress,
    chat: crate::chat::ChatService,
    batch: i64,
    call_timeout_ms: u64,
    wake: tokio::sync::Notify,
    /// Parsed models by deployment id (deployments never change).
    models: Mutex<HashMap<Uuid, Arc<ProcessModel>>>,
    /// Compiled decision tables by version id (versions never change).
    decisions: Mutex<HashMap<Uuid, Arc<concord_workflow::decision::CompiledTable>>>,
    /// Each process's latest learned router, with its version.
    routers: Mutex<routing::RouterCache>,
    /// People's opened routing attributes, with the sealed bytes they were opened from.
    attributes: Mutex<routing::AttributeCache>,
    /// The processes whose router is being trained now.
    training: Arc<Mutex<std::collections::HashSet<(WorkspaceId, String)>>>,
    /// Where routing learns presence (the hub).
    presence: std::sync::OnceLock<Arc<dyn routing::PresenceSource>>,
    /// How often a task that waits for someone available is routed again.
    routing_retry_ms: u64,
    /// How often a learned router is retrained (0: only on demand).
    retrain_every_hours: u64,
    /// The processes with a metrics label of their own.
    labels: facts::ProcessLabels,
}

impl WorkflowService {
    /// The service over `store`, reading messages for triggers through `chat`, calling out as
    /// `config` allows.
    pub fn new(
        store: Store,
        auditor: Auditor,
        chat: crate::chat::ChatService,
        config: &crate::config::WorkflowsConfig,
    ) -> Result<WorkflowService, crate::bots::delivery::egress::EgressError> {
        let egress = Egress::new(
            config.allowed_networks.clone(),
            std::time::Duration::from_millis(config.call_timeout_ms),
        )?;
        Ok(WorkflowService {
            inner: Arc::new(Inner {
                store,
                auditor,
                egress,
                chat,
                batch: config.batch,
                call_timeout_ms: config.call_timeout_ms,
                wake: tokio::sync::Notify::new(),
                models: Mutex::new(HashMap::new()),
                decisions: Mutex::new(HashMap::new()),
                routers: Mutex::new(HashMap::new()),
                attributes: Mutex::new(HashMap::new()),
                training: Arc::new(Mutex::new(std::collections::HashSet::new())),
                presence: std::sync::OnceLock::new(),
                routing_retry_ms: config.routing_retry_ms,
                retrain_every_hours: config.retrain_every_hours,
                labels: facts::ProcessLabels::default(),
            }),
        })
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    fn auditor(&self) -> &Auditor {
        &self.inner.auditor
    }

    /// Deploys a model (`workflows.manage`): BPMN XML as a modeler saves it, or the YAML
    /// form. A model with problems is refused with all of them; a valid one becomes the next
    /// version of its process in the workspace. Audited as `workflow.deployed`.
    #[tracing::instrument(skip(self, actor, new), fields(actor = ?actor.user_id()))]
    pub async fn deploy(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        new: NewDeployment,
    ) -> Result<DeploymentView, Error> {
        if new.source.len() > MAX_SOURCE_BYTES {
            return Err(Error::TooLarge {
                code: "model_too_large",
                message: format!("a model may be at most {MAX_SOURCE_BYTES} bytes"),
                limit: MAX_SOURCE_BYTES as u64,
            });
        }
        let note = version_note(new.note.as_deref())?;
        let format = match new.format {
            Some(f) => f,
            None if new.source.trim_start().starts_with('<') => ModelFormat::Bpmn,
            None => ModelFormat::Yaml,
        };
        let parsed = match format {
            ModelFormat::Bpmn => bpmn::parse(&new.source),
            ModelFormat::Yaml => yaml::parse(&new.source),
        };
        let model = parsed.map_err(invalid_model)?;
        let references = validate::validate(&model).map_err(invalid_model)?;
        let routing_problems = routing::check_routing(&model);
        if !routing_problems.is_empty() {
            return Err(invalid_model(concord_workflow::problem::Problems(
                routing_problems,
            )));
        }
        let this = self.clone();
        let actor = actor.clone();
        self.store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.authorize_in(tx, &actor, Action::ManageWorkflows, workspace).await?;
                    let mut problems = Vec::new();
                    for called in &references.processes {
                        if called != &model.id
                            && wf::latest_version(&mut tx.conn(), workspace, called).await? == 0
                        {
                            problems.push(concord_workflow::problem::Problem {
                                element: None,
                                line: None,
                                message: format!(
                                    "a call activity calls process {called:?}, which is not deployed in this workspace: deploy it first"
                                ),
                            });
                        }
                    }
                    for form in &references.forms {
                        if wf::latest_form(&mut tx.conn(), workspace, form).await?.is_none() {
                            problems.push(concord_workflow::problem::Problem {
                                element: None,
                                line: None,
                                message: format!(
                                    "a user task's form {form:?} is not deployed in this workspace: deploy it first"
                                ),
                            });
                        }
                    }
                    for decision in &references.decisions {
                        if wf::decision_of(&mut tx.conn(), workspace, decision, None)
                            .await?
                            .is_none()
                        {
                            problems.push(concord_workflow::problem::Problem {
                                element: None,
                                line: None,
                                message: format!(
                                    "a business-rule task evaluates decision {decision:?}, which is not deployed in this workspace: deploy it first"
                                ),
                            });
                        }
                    }
                    if !problems.is_empty() {
                        return Err(invalid_model(concord_workflow::problem::Problems(problems)));
                    }
                    let version =
                        wf::latest_version(&mut tx.conn(), workspace, &model.id).await? + 1;
                    let id = Uuid::now_v7();
                    let row = id.to_string();
                    let model_json = serde_json::to_vec(&model)
                        .map_err(|e| Error::Internal(format!("model to JSON: {e}")))?;
                    let source = this
                        .seal(tx, workspace, "workflow_deployments", &row, "source", new.source.as_bytes())
                        .await?;
                    let sealed_model = this
                        .seal(tx, workspace, "workflow_deployments", &row, "model", &model_json)
                        .await?;
                    let sealed_note = match &note {
                        Some(n) => Some(
                            this.seal(tx, workspace, "workflow_deployments", &row, "note", n.as_bytes())
                                .await?,
                        ),
                        None => None,
                    };
                    let record = DeploymentRecord {
                        id,
                        workspace_id: workspace,
                        process_id: model.id.clone(),
                        version,
                        format: format.as_str().to_owned(),
                        source,
                        model: sealed_model,
                        deployed_by: actor.user_id(),
                        deployed_at: Utc::now(),
                        note: sealed_note,
                    };
                    wf::insert_deployment(&mut tx.conn(), &record).await?;
                    this.ensure_bot_in(tx, &actor, workspace).await?;
                    this.schedule_starts(tx, &record, &model).await?;
                    let event = Event::by(&actor, "workflow.deployed", Outcome::Allowed)
                        .target("workflow_deployment", id)
                        .workspace(workspace)
                        .details(serde_json::json!({
                            "process_id": model.id,
                            "version": version,
                            "format": format.as_str(),
                            "noted": note.is_some(),
                        }));
                    this.auditor().record(tx, event).await?;
                    Ok(views::deployment(&record, &model, note))
                })
            })
            .await
            .inspect(|_| self.wake())
    }

    /// The workspace's deployments, every version (`workflows.start`).
    pub async fn deployments(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
    ) -> Result<DeploymentList, Error> {
        let mut conn = self.store().reader().await?;
        self.authorize_read(&mut conn.conn(), actor, Action::StartWorkflows, workspace)
            .await?;
        let records = wf::deployments(&mut conn.conn(), workspace).await?;
        let mut out = Vec::with_capacity(records.len());
        for r in &records {
            let model = self.model_of(&mut conn.conn(), r).await?;
            let note = self.note_of(&mut conn.conn(), r).await?;
            out.push(views::deployment(r, &model, note));
        }
        Ok(DeploymentList { deployments: out })
    }

    /// A deployed process as BPMN XML, with its diagram (`workflows.manage`: a model names the
    /// services it calls and what it sends them): the source as deployed for BPMN drawn in a
    /// modeler, the model exported with a generated layout for YAML and for BPMN written
    /// without a diagram (which no modeler would open).
    pub async fn export(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        process_id: &str,
        version: Option<i64>,
    ) -> Result<String, Error> {
        let mut conn = self.store().reader().await?;
        self.authorize_read(&mut conn.conn(), actor, Action::ManageWorkflows, workspace)
            .await?;
        let record = wf::deployment_of(&mut conn.conn(), workspace, process_id, version)
            .await?
            .ok_or(Error::NotFound("workflow"))?;
        let model = self.model_of(&mut conn.conn(), &record).await?;
        if record.format == "bpmn" && model.diagram.is_some() {
            let source = self
                .open(
                    &mut conn.conn(),
                    workspace,
                    "workflow_deployments",
                    &record.id.to_string(),
                    "source",
                    &record.source,
                )
                .await?;
            return String::from_utf8(source)
                .map_err(|_| Error::Internal("a deployed source is not UTF-8".into()));
        }
        Ok(concord_workflow::export::to_bpmn(&model))
    }

    /// Starts an instance of the latest (or the given) version of a process
    /// (`workflows.start`). Audited as `workflow.started`, then one `workflow.step` per step.
    #[tracing::instrument(skip(self, actor, start), fields(actor = ?actor.user_id()))]
    pub async fn start(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        process_id: String,
        start: StartInstance,
    ) -> Result<InstanceView, Error> {
        let variables = variables("variables", start.variables)?;
        let this = self.clone();
        let actor = actor.clone();
        let view = self
            .store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.authorize_in(tx, &actor, Action::StartWorkflows, workspace)
                        .await?;
                    let record =
                        wf::deployment_of(&mut tx.conn(), workspace, &process_id, start.version)
                            .await?
                            .ok_or(Error::NotFound("workflow"))?;
                    let model = this.model_of(&mut tx.conn(), &record).await?;
                    let event = Event::by(&actor, "workflow.started", Outcome::Allowed)
                        .workspace(workspace);
                    let id = this
                        .start_in(
                            tx, &actor, &record, &model, None, variables, None, None, event,
                        )
                        .await?;
                    this.instance_view(&mut tx.conn(), id, false).await
                })
            })
            .await?;
        self.inner.wake.notify_one();
        Ok(view)
    }

    /// Starts an instance inside a write: at the none start event, or at `start_event`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn start_in(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        record: &DeploymentRecord,
        model: &ProcessModel,
        start_event: Option<&str>,
        variables: Map<String, Value>,
        parent: Option<(Uuid, String)>,
        trigger_event: Option<String>,
        event: Event,
    ) -> Result<Uuid, Error> {
        let id = Uuid::now_v7();
        let now = Utc::now();
        let transition = match start_event {
            Some(e) => Engine::start_at(model, &id.to_string(), e, variables, now),
            None => Engine::start(model, &id.to_string(), variables, now),
        }
        .map_err(|e| Error::refused("cannot_start", e.to_string()))?;
        let instance = InstanceRecord {
            id,
            workspace_id: record.workspace_id,
            deployment_id: record.id,
            process_id: record.process_id.clone(),
            status: "running".into(),
            state: Vec::new(),
            started_by: actor.user_id(),
            started_at: now,
            updated_at: now,
            ended_at: None,
            parent_id: parent.as_ref().map(|p| p.0),
            parent_wait: parent.map(|p| p.1),
            trigger_event,
        };
        self.auditor()
            .record(
                tx,
                event
                    .target("workflow_instance", id)
                    .details(serde_json::json!({
                        "process_id": record.process_id,
                        "version": record.version,
                        "deployment_id": record.id,
                    })),
            )
            .await?;
        apply::apply(self, tx, actor, &instance, model, true, transition).await?;
        Ok(id)
    }

    /// The workspace's instances (`workflows.manage`: all; `workflows.start`: those one
    /// started), oldest first.
    pub async fn instances(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        q: InstanceQuery,
    ) -> Result<InstancePage, Error> {
        let limit = page_limit(q.limit)?;
        let status = match q.status.as_deref() {
            None => None,
            Some(s @ ("running" | "completed" | "terminated" | "failed" | "cancelled")) => Some(s),
            Some(_) => {
                return Err(crate::domain::ParseError::new(
                    "status",
                    "must be running, completed, terminated, failed or cancelled",
                )
                .into())
            }
        };
        let mut conn = self.store().reader().await?;
        let manager = self.may_manage(&mut conn.conn(), actor, workspace).await?;
        // Operators see every instance; starters their own (an actor without an account, none).
        let only = (!manager).then(|| {
            actor
                .user_id()
                .unwrap_or(crate::domain::UserId(Uuid::nil()))
        });
        let mut rows = wf::instances(
            &mut conn.conn(),
            workspace,
            status,
            q.process_id.as_deref(),
            only,
            q.cursor,
            limit + 1,
        )
        .await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        Ok(InstancePage {
            next_cursor: more.then(|| rows.last().map(|r| r.id)).flatten(),
            instances: rows.iter().map(views::summary).collect(),
        })
    }

    /// One instance with its variables, open tasks, incidents and history.
    pub async fn instance(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: Uuid,
    ) -> Result<InstanceView, Error> {
        let mut conn = self.store().reader().await?;
        let manager = self.may_manage(&mut conn.conn(), actor, workspace).await?;
        let record = wf::instance(&mut conn.conn(), id)
            .await?
            .filter(|r| r.workspace_id == workspace)
            .filter(|r| manager || (r.started_by.is_some() && r.started_by == actor.user_id()))
            .ok_or(Error::NotFound("workflow instance"))?;
        let mut view = self
            .instance_view(&mut conn.conn(), record.id, true)
            .await?;
        if !manager {
            decisions::redact_explanations(&mut view);
        }
        Ok(view)
    }

    /// Cancels a running instance (`workflows.manage`).
    pub async fn cancel(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: Uuid,
    ) -> Result<InstanceView, Error> {
        let this = self.clone();
        let actor = actor.clone();
        self.store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.authorize_in(tx, &actor, Action::ManageWorkflows, workspace)
                        .await?;
                    let record = wf::instance(&mut tx.conn(), id)
                        .await?
                        .filter(|r| r.workspace_id == workspace)
                        .ok_or(Error::NotFound("workflow instance"))?;
                    let who = actor_label(&actor);
                    this.handle_in(tx, &actor, &record, Input::Cancel { actor: who })
                        .await?;
                    this.instance_view(&mut tx.conn(), id, false).await
                })
            })
            .await
    }

    /// Sends a message to the instances waiting for it (`workflows.start`): every waiting
    /// instance whose correlation key matches gets it; with none waiting, a process whose
    /// message start event names it is started. Returns the instances reached.
    pub async fn message(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        msg: SendMessage,
    ) -> Result<MessageOutcome, Error> {
        let variables = variables("variables", msg.variables)?;
        if msg.name.is_empty() || msg.name.len() > 200 {
            return Err(crate::domain::ParseError::new("name", "must be 1 to 200 bytes").into());
        }
        let this = self.clone();
        let actor = actor.clone();
        let outcome = self
            .store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let (manager, action) =
                        operator_or_starter(&mut tx.conn(), &actor, workspace).await?;
                    this.authorize_in(tx, &actor, action, workspace).await?;
                    // A member's message reaches the instances they started; an operator's, any.
                    let only = if manager { None } else { actor.user_id() };
                    this.deliver_in(
                        tx,
                        &actor,
                        workspace,
                        &msg.name,
                        msg.correlation,
                        variables,
                        only,
                    )
                    .await
                })
            })
            .await?;
        self.inner.wake.notify_one();
        Ok(outcome)
    }

    /// Broadcasts a signal (`workflows.manage`): every instance waiting for it receives it
    /// (an intermediate signal catch, a signal boundary or event gateway), and the latest
    /// version of every process with a signal start event for it starts, all in one write.
    /// Audited as `workflow.signal` (its name and where it went; never its variables).
    #[tracing::instrument(skip(self, actor, signal), fields(actor = ?actor.user_id()))]
    pub async fn signal(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        signal: SendSignal,
    ) -> Result<MessageOutcome, Error> {
        let variables = variables("variables", signal.variables)?;
        let name = signal.name.trim().to_owned();
        if name.is_empty() || name.len() > 200 {
            return Err(crate::domain::ParseError::new("name", "must be 1 to 200 bytes").into());
        }
        let this = self.clone();
        let actor = actor.clone();
        let outcome = self
            .store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.authorize_in(tx, &actor, Action::ManageWorkflows, workspace)
                        .await?;
                    let key = format!("{SIGNAL_PREFIX}{name}");
                    let waiting = wf::subscribers(&mut tx.conn(), workspace, &key, None).await?;
                    let mut delivered = Vec::new();
                    for id in waiting {
                        if delivered.contains(&id) {
                            continue;
                        }
                        let Some(record) = wf::instance(&mut tx.conn(), id).await? else {
                            continue;
                        };
                        let input = Input::SignalReceived {
                            name: name.clone(),
                            variables: variables.clone(),
                        };
                        if this.try_handle_in(tx, &actor, &record, input).await? {
                            delivered.push(id);
                        }
                    }
                    let started = this
                        .start_on(tx, &actor, workspace, &variables, |model, trigger| {
                            matches!(trigger, StartTrigger::Signal { signal }
                                if model.signal_name(signal) == name)
                        })
                        .await?;
                    let event = Event::by(&actor, "workflow.signal", Outcome::Allowed)
                        .workspace(workspace)
                        .details(serde_json::json!({
                            "name": name, "delivered": delivered, "started": started,
                        }));
                    this.auditor().record(tx, event).await?;
                    Ok::<_, Error>(MessageOutcome { delivered, started })
                })
            })
            .await?;
        self.inner.wake.notify_one();
        Ok(outcome)
    }

    /// Delivers a message inside a write (see [`WorkflowService::message`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn deliver_in(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        workspace: WorkspaceId,
        name: &str,
        correlation: Option<Value>,
        variables: Map<String, Value>,
        only_started_by: Option<crate::domain::UserId>,
    ) -> Result<MessageOutcome, Error> {
        let key = correlation.as_ref().map(correlation_text);
        let waiting = wf::subscribers(&mut tx.conn(), workspace, name, key.as_deref()).await?;
        let mut delivered = Vec::new();
        for id in waiting {
            if delivered.contains(&id) {
                continue;
            }
            let Some(record) = wf::instance(&mut tx.conn(), id).await? else {
                continue;
            };
            if only_started_by.is_some() && record.started_by != only_started_by {
                continue;
            }
            let input = Input::MessageReceived {
                name: name.to_owned(),
                correlation: correlation.clone(),
                variables: variables.clone(),
            };
            if self.try_handle_in(tx, actor, &record, input).await? {
                delivered.push(id);
            }
        }
        let started = if delivered.is_empty() {
            self.start_on(tx, actor, workspace, &variables, |model, trigger| {
                matches!(trigger, StartTrigger::Message { message }
                    if model.message_name(message) == name)
            })
            .await?
        } else {
            Vec::new()
        };
        Ok(MessageOutcome { delivered, started })
    }

    /// Starts the latest version of every process at each start event `starts_here` picks
    /// (a message or signal start event), inside a write; the instances started.
    async fn start_on(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        workspace: WorkspaceId,
        variables: &Map<String, Value>,
        starts_here: impl Fn(&ProcessModel, &StartTrigger) -> bool,
    ) -> Result<Vec<Uuid>, Error> {
        let mut started = Vec::new();
        for record in self.latest_deployments(tx, workspace).await? {
            let model = self.model_of(&mut tx.conn(), &record).await?;
            let starts: Vec<String> = model
                .start_events()
                .filter(|(_, t)| starts_here(&model, t))
                .map(|(e, _)| e.id.clone())
                .collect();
            for start in starts {
                let event =
                    Event::by(actor, "workflow.started", Outcome::Allowed).workspace(workspace);
                let id = self
                    .start_in(
                        tx,
                        actor,
                        &record,
                        &model,
                        Some(&start),
                        variables.clone(),
                        None,
                        None,
                        event,
                    )
                    .await?;
                started.push(id);
            }
        }
        Ok(started)
    }

    async fn latest_deployments(
        &self,
        tx: &mut Tx,
        workspace: WorkspaceId,
    ) -> Result<Vec<DeploymentRecord>, Error> {
        let mut all = wf::deployments(&mut tx.conn(), workspace).await?;
        // Newest version of each process first: keep the first of each.
        let mut seen = std::collections::HashSet::new();
        all.retain(|d| seen.insert(d.process_id.clone()));
        Ok(all)
    }

    /// The open tasks `actor` may complete, across their workspaces.
    pub async fn inbox(&self, actor: &Actor, q: TaskQuery) -> Result<TaskPage, Error> {
        crate::rbac::allow_own_items(actor);
        let limit = page_limit(q.limit)?;
        let Some(user) = actor.user_id() else {
            return Ok(TaskPage { tasks: Vec::new() });
        };
        let mut conn = self.store().reader().await?;
        let scope = match q.scope {
            None => wf::InboxScope::All,
            Some(TaskScope::Mine) => wf::InboxScope::Mine,
            Some(TaskScope::Queues) => wf::InboxScope::Queues,
        };
        let rows = wf::inbox(&mut conn.conn(), user, scope, limit).await?;
        let mut tasks = Vec::with_capacity(rows.len());
        let mut processes: HashMap<Uuid, String> = HashMap::new();
        for r in &rows {
            let process = match processes.entry(r.instance_id) {
                std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
                std::collections::hash_map::Entry::Vacant(slot) => slot.insert(
                    wf::instance(&mut conn.conn(), r.instance_id)
                        .await?
                        .map(|i| i.process_id)
                        .unwrap_or_default(),
                ),
            };
            tasks.push(self.task_view(&mut conn.conn(), r, process).await?);
        }
        Ok(TaskPage { tasks })
    }

    /// Completes a task: only a person the assignment names may (its assignee, a holder of
    /// its role, a member of its channel; for a task nobody can complete any more,
    /// `workflows.manage`).
    /// Completing a closed task is refused. Audited as `workflow.task_completed`.
    #[tracing::instrument(skip(self, actor, done), fields(actor = ?actor.user_id()))]
    pub async fn complete(
        &self,
        actor: &Actor,
        task_id: String,
        done: CompleteTask,
    ) -> Result<TaskView, Error> {
        let variables = variables("variables", done.variables)?;
        let this = self.clone();
        let actor = actor.clone();
        let view = self
            .store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let (task, user, member) = task_of_member(tx, &actor, &task_id).await?;
                    let allowed = this.may_complete(tx, &actor, &task, &member).await?;
                    this.admit(
                        tx,
                        &actor,
                        &task,
                        allowed,
                        "workflow.task_completed",
                        "this task is assigned to someone else",
                    )
                    .await?;
                    let record = wf::instance(&mut tx.conn(), task.instance_id)
                        .await?
                        .ok_or(Error::NotFound("task"))?;
                    let detail = this.task_detail(&mut tx.conn(), &task).await?;
                    if let Some(key) = &detail.form_key {
                        this.check_completion(
                            tx,
                            task.workspace_id,
                            key,
                            detail.form_version,
                            &variables,
                        )
                        .await?;
                    }
                    let line =
                        notices::answer_line(&variables, detail.form_key.is_some(), Some(user));
                    let event = Event::by(&actor, "workflow.task_completed", Outcome::Allowed)
                        .target("workflow_task", &task.id)
                        .workspace(task.workspace_id)
                        .details(serde_json::json!({
                            "instance_id": task.instance_id,
                            "element": task.element,
                            "variables": variables.keys().collect::<Vec<_>>(),
                        }));
                    this.auditor().record(tx, event).await?;
                    let input = Input::TaskCompleted {
                        task_id: task.id.clone(),
                        actor: actor_label(&actor),
                        variables,
                    };
                    let now = Utc::now();
                    wf::close_task(&mut tx.conn(), &task.id, "completed", Some(user), now).await?;
                    apply::task_changed(tx, &task, "completed").await?;
                    facts::task_completed(&this, tx, &record, &task.id, now).await?;
                    this.notices_changed(tx, &record, &task.id, line, true, now)
                        .await?;
                    this.handle_in(tx, &actor, &record, input).await?;
                    let task = wf::task(&mut tx.conn(), &task.id)
                        .await?
                        .ok_or(Error::NotFound("task"))?;
                    this.task_view(&mut tx.conn(), &task, &record.process_id)
                        .await
                })
            })
            .await?;
        self.inner.wake.notify_one();
        Ok(view)
    }

    async fn may_complete(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        task: &wf::TaskRecord,
        member: &crate::store::workspaces::MemberRecord,
    ) -> Result<bool, Error> {
        let user = member.user_id;
        if task.assignee == Some(user) {
            return Ok(true);
        }
        // A task someone holds is theirs; the group shares it only while nobody does.
        if task.assignee.is_none() && self.in_group(tx, task, member).await? {
            return Ok(true);
        }
        // A task nobody can complete any more (unassigned, or its assignee left or was
        // deactivated, its role or channel has no active person left) is completed by an
        // operator, so it cannot hold its instance forever.
        if self.nobody_can_complete(tx, task).await? {
            return Ok(crate::rbac::allows(
                &mut tx.conn(),
                actor,
                Action::ManageWorkflows,
                Resource::Workspace(task.workspace_id),
            )
            .await?);
        }
        Ok(false)
    }

    async fn nobody_can_complete(&self, tx: &mut Tx, task: &wf::TaskRecord) -> Result<bool, Error> {
        let ws = task.workspace_id;
        let mut named: Vec<crate::domain::UserId> = Vec::new();
        if let Some(person) = task.assignee {
            if crate::store::workspaces::member(&mut tx.conn(), ws, person)
                .await?
                .is_some()
            {
                named.push(person);
            }
        }
        // The group counts only while nobody holds the task (see `may_complete`).
        if let (None, Some(role)) = (task.assignee, task.candidate_role) {
            named.extend(crate::store::workspaces::holders_of(&mut tx.conn(), ws, role).await?);
        }
        if let (None, Some(channel)) = (task.assignee, task.candidate_channel) {
            let members = crate::store::channels::members(&mut tx.conn(), channel).await?;
            named.extend(members.into_iter().map(|m| m.user_id));
        }
        // Only an active person counts: a bot (the Workflows bot joins the channels it
        // posts in) or a deactivated account completes nothing.
        for user in named {
            if routing::is_active_person(tx, user).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The workspace's open incidents (`workflows.manage`).
    pub async fn incidents(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
    ) -> Result<IncidentList, Error> {
        let mut conn = self.store().reader().await?;
        self.authorize_read(&mut conn.conn(), actor, Action::ManageWorkflows, workspace)
            .await?;
        let rows = wf::incidents(&mut conn.conn(), workspace, "open", MAX_PAGE).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.incident_view(&mut conn.conn(), r).await?);
        }
        Ok(IncidentList { incidents: out })
    }

    /// Resolves an open incident (`workflows.manage`): retry the failed step, skip it with
    /// variables set instead of its result, or cancel the instance.
    pub async fn resolve(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        incident_id: String,
        how: ResolveIncident,
    ) -> Result<InstanceView, Error> {
        let vars = variables("variables", how.variables)?;
        let this = self.clone();
        let actor = actor.clone();
        let view = self
            .store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.authorize_in(tx, &actor, Action::ManageWorkflows, workspace)
                        .await?;
                    let incident = wf::incident(&mut tx.conn(), &incident_id)
                        .await?
                        .filter(|i| i.workspace_id == workspace)
                        .ok_or(Error::NotFound("incident"))?;
                    if incident.status != "open" {
                        return Err(Error::conflict(
                            "incident_resolved",
                            "this incident is already resolved",
                        ));
                    }
                    let record = wf::instance(&mut tx.conn(), incident.instance_id)
                        .await?
                        .ok_or(Error::NotFound("incident"))?;
                    let input = match how.action {
                        IncidentAction::Retry => Input::IncidentRetry {
                            incident_id: incident.id.clone(),
                        },
                        IncidentAction::Skip => Input::IncidentSkip {
                            incident_id: incident.id.clone(),
                            variables: vars,
                        },
                        IncidentAction::Cancel => Input::IncidentCancel {
                            incident_id: incident.id.clone(),
                        },
                    };
                    let event = Event::by(&actor, "workflow.incident_resolved", Outcome::Allowed)
                        .target("workflow_incident", &incident.id)
                        .workspace(workspace)
                        .details(serde_json::json!({
                            "instance_id": incident.instance_id,
                            "action": how.action.as_str(),
                        }));
                    this.auditor().record(tx, event).await?;
                    this.handle_in(tx, &actor, &record, input).await?;
                    this.instance_view(&mut tx.conn(), record.id, false).await
                })
            })
            .await?;
        self.inner.wake.notify_one();
        Ok(view)
    }

    /// Feeds one input to an instance inside a write; the engine's refusal is the caller's
    /// error (`instance_ended`, `input_refused`).
    pub(crate) async fn handle_in(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        record: &InstanceRecord,
        input: Input,
    ) -> Result<(), Error> {
        let state = self.state_of(&mut tx.conn(), record).await?;
        let deployment = wf::deployment(&mut tx.conn(), record.deployment_id)
            .await?
            .ok_or_else(|| Error::Internal("an instance's deployment is missing".into()))?;
        let model = self.model_of(&mut tx.conn(), &deployment).await?;
        let transition = match Engine::handle(&model, &state, input, Utc::now()) {
            Ok(t) => t,
            Err(concord_workflow::Error::NotRunning(_)) => {
                return Err(Error::conflict(
                    "instance_ended",
                    "the instance is no longer running",
                ))
            }
            Err(e) => return Err(Error::conflict("input_refused", e.to_string())),
        };
        apply::apply(self, tx, actor, record, &model, false, transition).await
    }

    /// [`WorkflowService::handle_in`] for inputs that may have become stale (a timer a
    /// boundary event cancelled, an answer to a superseded call): false if the engine
    /// refused it, which changes nothing.
    pub(crate) async fn try_handle_in(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        record: &InstanceRecord,
        input: Input,
    ) -> Result<bool, Error> {
        match self.handle_in(tx, actor, record, input).await {
            Ok(()) => Ok(true),
            Err(Error::Conflict { code, message }) => {
                tracing::debug!(instance = %record.id, code, message, "workflow input dropped");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether `actor` manages the workspace's workflows (sees every instance) rather than
    /// only starting them (sees their own); refused, and the refusal audited, if neither.
    async fn may_manage(
        &self,
        conn: &mut Conn<'_>,
        actor: &Actor,
        workspace: WorkspaceId,
    ) -> Result<bool, Error> {
        let (manager, action) = operator_or_starter(conn, actor, workspace).await?;
        self.authorize_read(conn, actor, action, workspace).await?;
        Ok(manager)
    }

    /// Refuses, inside a write and audited, unless `actor` may `action` in the workspace.
    pub(crate) async fn authorize_in(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        action: Action,
        workspace: WorkspaceId,
    ) -> Result<(), Error> {
        self.auditor()
            .authorize(tx, actor, action, Resource::Workspace(workspace))
            .await
    }

    /// Refuses, for a read and audited, unless `actor` may `action` in the workspace.
    pub(crate) async fn authorize_read(
        &self,
        conn: &mut Conn<'_>,
        actor: &Actor,
        action: Action,
        workspace: WorkspaceId,
    ) -> Result<(), Error> {
        self.auditor()
            .authorize_read(
                self.store(),
                conn,
                actor,
                action,
                Resource::Workspace(workspace),
            )
            .await
    }

    /// A deployment's version note, opened.
    async fn note_of(
        &self,
        conn: &mut Conn<'_>,
        record: &DeploymentRecord,
    ) -> Result<Option<String>, Error> {
        let Some(sealed) = &record.note else {
            return Ok(None);
        };
        let text = self
            .open(
                conn,
                record.workspace_id,
                "workflow_deployments",
                &record.id.to_string(),
                "note",
                sealed,
            )
            .await?;
        String::from_utf8(text)
            .map(Some)
            .map_err(|_| Error::Internal("a deployment's note is not UTF-8".into()))
    }

    pub(crate) async fn model_of(
        &self,
        conn: &mut Conn<'_>,
        record: &DeploymentRecord,
    ) -> Result<Arc<ProcessModel>, Error> {
        if let Some(m) = self.cached(record.id) {
            return Ok(m);
        }
        let json = self
            .open(
                conn,
                record.workspace_id,
                "workflow_deployments",
                &record.id.to_string(),
                "model",
                &record.model,
            )
            .await?;
        let model: ProcessModel = serde_json::from_slice(&json)
            .map_err(|e| Error::Internal(format!("a stored model does not read back: {e}")))?;
        let model = Arc::new(model);
        if let Ok(mut cache) = self.inner.models.lock() {
            cache.insert(record.id, model.clone());
        }
        Ok(model)
    }

    fn cached(&self, id: Uuid) -> Option<Arc<ProcessModel>> {
        self.inner.models.lock().ok()?.get(&id).cloned()
    }

    fn cached_decision(&self, id: Uuid) -> Option<Arc<concord_workflow::decision::CompiledTable>> {
        self.inner.decisions.lock().ok()?.get(&id).cloned()
    }

    fn cache_decision(&self, id: Uuid, table: Arc<concord_workflow::decision::CompiledTable>) {
        if let Ok(mut cache) = self.inner.decisions.lock() {
            cache.insert(id, table);
        }
    }

    pub(crate) async fn state_of(
        &self,
        conn: &mut Conn<'_>,
        record: &InstanceRecord,
    ) -> Result<concord_workflow::InstanceState, Error> {
        let row = record.id.to_string();
        self.open_json(
            conn,
            record.workspace_id,
            "workflow_instances",
            &row,
            "state",
            &record.state,
        )
        .await
    }

    /// Opens a sealed JSON column and reads it back as `T`.
    pub(crate) async fn open_json<T: serde::de::DeserializeOwned>(
        &self,
        conn: &mut Conn<'_>,
        workspace: WorkspaceId,
        table: &'static str,
        row: &str,
        column: &'static str,
        ciphertext: &[u8],
    ) -> Result<T, Error> {
        let bytes = self
            .open(conn, workspace, table, row, column, ciphertext)
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::Internal(format!("a stored {table}.{column} does not read back: {e}"))
        })
    }

    pub(crate) async fn seal(
        &self,
        tx: &mut Tx,
        workspace: WorkspaceId,
        table: &'static str,
        row: &str,
        column: &'static str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        Ok(self
            .auditor()
            .keyring()
            .encrypt(
                tx,
                &Scope::Workspace(workspace),
                Aad { table, row, column },
                plaintext,
            )
            .await?)
    }

    pub(crate) async fn open(
        &self,
        conn: &mut Conn<'_>,
        workspace: WorkspaceId,
        table: &'static str,
        row: &str,
        column: &'static str,
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        Ok(self
            .auditor()
            .keyring()
            .decrypt(
                conn,
                &Scope::Workspace(workspace),
                Aad { table, row, column },
                ciphertext,
            )
            .await?
            .to_vec())
    }

    pub(crate) fn wake(&self) {
        self.inner.wake.notify_one();
    }
}

/// How a person (or the system) is named in an instance's history.
fn actor_label(actor: &Actor) -> String {
    match actor.user_id() {
        Some(u) => u.to_string(),
        None => "system".into(),
    }
}

/// A correlation value as stored for matching: its canonical JSON text.
pub(crate) fn correlation_text(v: &Value) -> String {
    v.to_string()
}

/// Whether `actor` operates the workspace's workflows, and the permission to check for what
/// they ask: `workflows.manage` for an operator, `workflows.start` for anyone else.
async fn operator_or_starter(
    conn: &mut Conn<'_>,
    actor: &Actor,
    workspace: WorkspaceId,
) -> Result<(bool, Action), Error> {
    let manager = crate::rbac::allows(
        conn,
        actor,
        Action::ManageWorkflows,
        Resource::Workspace(workspace),
    )
    .await?;
    let action = if manager {
        Action::ManageWorkflows
    } else {
        Action::StartWorkflows
    };
    Ok((manager, action))
}

/// Whether what failed may succeed if tried again (the store or the writer was busy), rather
/// than being refused for good (what does not read back is not tried forever).
pub(crate) fn transient(e: &Error) -> bool {
    matches!(
        e,
        Error::Store(_) | Error::Busy { .. } | Error::RateLimited { .. }
    )
}

/// The stable code of why something was refused, for audit details (never its text, which
/// may quote what a person wrote).
pub(crate) fn refusal_code(e: &Error) -> String {
    match e {
        Error::Forbidden(_) | Error::MissingScope { .. } => "forbidden".into(),
        Error::NotFound(what) => format!("{what}_not_found"),
        Error::Invalid(p) => format!("invalid_{}", p.field),
        Error::Refused { code, .. }
        | Error::Denied { code, .. }
        | Error::TooLarge { code, .. }
        | Error::Conflict { code, .. }
        | Error::InvalidModel { code, .. } => (*code).to_owned(),
        Error::Internal(_) => "internal".into(),
        _ => "refused".into(),
    }
}

fn invalid_model(problems: concord_workflow::problem::Problems) -> Error {
    Error::InvalidModel {
        code: "invalid_model",
        message: problems.to_string(),
        problems: serde_json::to_value(&problems.0).unwrap_or(Value::Null),
    }
}

/// A deployment's note as given: trimmed, none when blank, at most [`MAX_NOTE_CHARS`].
fn version_note(note: Option<&str>) -> Result<Option<String>, Error> {
    let Some(note) = note.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(crate::domain::ParseError::new(
            "note",
            format!("a version note is at most {MAX_NOTE_CHARS} characters"),
        )
        .into());
    }
    Ok(Some(note.to_owned()))
}

fn variables(
    field: &'static str,
    v: Option<Map<String, Value>>,
) -> Result<Map<String, Value>, Error> {
    let v = v.unwrap_or_default();
    let size = serde_json::to_vec(&v)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if size > MAX_VARIABLES_BYTES {
        return Err(crate::domain::ParseError::new(
            field,
            "the variables are larger than 256 KiB of JSON",
        )
        .into());
    }
    Ok(v)
}

fn page_limit(limit: Option<i64>) -> Result<i64, Error> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(crate::domain::ParseError::new("limit", "must be between 1 and 500").into()),
    }
}

impl WorkflowService {
    /// The refusals every action on a task shares, once the caller has decided whether
    /// `actor` may take it (`allowed`): a refusal is recorded as the decision and audited as
    /// `action` denied, and answers `not_assignee` with `refusal`; a task no longer open
    /// answers `task_closed`.
    pub(crate) async fn admit(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        task: &wf::TaskRecord,
        allowed: bool,
        action: &'static str,
        refusal: &'static str,
    ) -> Result<(), Error> {
        crate::rbac::decide_assignment(actor, allowed);
        if !allowed {
            let event = Event::by(actor, action, Outcome::Denied)
                .target("workflow_task", &task.id)
                .workspace(task.workspace_id);
            self.auditor().record_kept(tx, event).await?;
            return Err(Error::denied("not_assignee", refusal));
        }
        if task.status != "open" {
            return Err(Error::conflict(
                "task_closed",
                format!("this task is already {}", task.status),
            ));
        }
        Ok(())
    }
}

/// The task `task_id` and the acting member of its workspace. Someone outside the task's
/// workspace is not told it exists.
pub(crate) async fn task_of_member(
    tx: &mut Tx,
    actor: &Actor,
    task_id: &str,
) -> Result<
    (
        wf::TaskRecord,
        crate::domain::UserId,
        crate::store::workspaces::MemberRecord,
    ),
    Error,
> {
    let hidden = || {
        crate::rbac::decide_assignment(actor, false);
        Error::NotFound("task")
    };
    let Some(task) = wf::task(&mut tx.conn(), task_id).await? else {
        return Err(hidden());
    };
    let Some(user) = actor.user_id() else {
        return Err(hidden());
    };
    let Some(member) =
        crate::store::workspaces::member(&mut tx.conn(), task.workspace_id, user).await?
    else {
        return Err(hidden());
    };
    Ok((task, user, member))
}
