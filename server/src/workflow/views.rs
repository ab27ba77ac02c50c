//! What the workflow API takes and answers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::WorkflowService;
use crate::domain::{ChannelId, RoleId, UserId, WorkspaceId};
use crate::error::Error;
use crate::store::workflows::{
    self as wf, DeploymentRecord, IncidentRecord, InstanceRecord, TaskRecord,
};
use crate::store::Conn;
use concord_workflow::ProcessModel;

/// How a model is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelFormat {
    /// BPMN 2.0 XML, as Camunda Modeler or bpmn-js save it.
    Bpmn,
    /// Concord's compact YAML form.
    Yaml,
}

impl ModelFormat {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ModelFormat::Bpmn => "bpmn",
            ModelFormat::Yaml => "yaml",
        }
    }
}

/// A model to deploy.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"source": "process: leave\nsteps:\n  - start: asked\n  - user_task: approve\n    role: admin\n  - end: done\n"}))]
pub struct NewDeployment {
    /// The model's text: BPMN XML or YAML (up to 1 MiB).
    pub source: String,
    /// `bpmn` or `yaml`; by default, BPMN when the text starts with `<`.
    #[serde(default)]
    pub format: Option<ModelFormat>,
    /// What changed in this version, for the people who read the version list (up to 500
    /// characters).
    #[serde(default)]
    pub note: Option<String>,
}

/// A deployed version of a process.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DeploymentView {
    /// The deployment's id.
    pub id: Uuid,
    /// The process id (BPMN `process` id).
    pub process_id: String,
    /// The process name.
    pub name: Option<String>,
    /// The version, from 1.
    pub version: i64,
    /// `bpmn` or `yaml`.
    pub format: String,
    /// Who deployed it.
    pub deployed_by: Option<UserId>,
    /// When.
    pub deployed_at: DateTime<Utc>,
    /// Its start events: id and trigger (`none`, `message`, `timer`, `signal`).
    pub start_events: Vec<StartEventView>,
    /// The deployer's note on what changed in this version.
    pub note: Option<String>,
}

/// A start event of a deployed process.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct StartEventView {
    /// The element id.
    pub id: String,
    /// `none`, `message`, `timer` or `signal`.
    pub trigger: String,
}

/// Every deployment of a workspace.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DeploymentList {
    /// Newest version of each process first.
    pub deployments: Vec<DeploymentView>,
}

/// Starting an instance.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"variables": {"days": 3}}))]
pub struct StartInstance {
    /// The instance's first variables (a JSON object, up to 256 KiB).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Map<String, Value>>,
    /// The version to run; by default the latest.
    #[serde(default)]
    pub version: Option<i64>,
}

/// Filters for the instance list.
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InstanceQuery {
    /// `running`, `completed`, `terminated`, `failed` or `cancelled`.
    pub status: Option<String>,
    /// Only this process.
    pub process_id: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// Instances per page (1 to 500, default 50).
    pub limit: Option<i64>,
}

/// An instance, in a list.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct InstanceSummary {
    /// Its id.
    pub id: Uuid,
    /// The process.
    pub process_id: String,
    /// The deployment it runs on.
    pub deployment_id: Uuid,
    /// `running`, `completed`, `terminated`, `failed` or `cancelled`.
    pub status: String,
    /// Who started it (none: a trigger or a parent instance).
    pub started_by: Option<UserId>,
    /// When.
    pub started_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// The instance whose call activity started it.
    pub parent_id: Option<Uuid>,
}

/// A page of instances.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct InstancePage {
    /// Oldest first.
    pub instances: Vec<InstanceSummary>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<Uuid>,
}

/// An instance with what it holds.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct InstanceView {
    /// The instance.
    #[serde(flatten)]
    pub instance: InstanceSummary,
    /// The version of its process it runs on.
    pub version: i64,
    /// Its process's name.
    pub name: Option<String>,
    /// Its variables.
    #[schema(value_type = Object)]
    pub variables: Map<String, Value>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Its tasks, open and closed.
    pub tasks: Vec<TaskView>,
    /// Its incidents, open and resolved.
    pub incidents: Vec<IncidentView>,
    /// Every step, in order (when asked for one instance).
    pub history: Vec<StepView>,
}

/// One step of an instance's history.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct StepView {
    /// The step number, from 1.
    pub step: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// The element.
    pub element: Option<String>,
    /// What happened, with its `type` (`instance_started`, `entered`, `completed`,
    /// `task_completed`, `timer_fired`, `incident_raised`, …).
    #[schema(value_type = Object)]
    pub event: Value,
    /// Who caused it.
    pub actor: Option<String>,
    /// The variables it set, with their new values.
    #[schema(value_type = Object)]
    pub changed: Map<String, Value>,
}

/// A user task.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TaskView {
    /// Its id.
    pub id: String,
    /// The instance.
    pub instance_id: Uuid,
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The process.
    pub process_id: String,
    /// The user task element.
    pub element: String,
    /// The task's name.
    pub name: Option<String>,
    /// The form to fill in.
    pub form_key: Option<String>,
    /// The form's JSON Schema (the version the task opened with), while the task is open: a
    /// completion sets exactly these fields.
    #[schema(value_type = Option<Object>)]
    pub form: Option<Value>,
    /// `open`, `completed` or `cancelled`.
    pub status: String,
    /// The person it is assigned to.
    pub assignee: Option<UserId>,
    /// The role whose holders may complete it.
    pub candidate_role: Option<RoleId>,
    /// The channel whose members may complete it.
    pub candidate_channel: Option<ChannelId>,
    /// The assignment as the model wrote it, when it named nobody Concord knows.
    pub unresolved_assignment: Option<String>,
    /// When it is due.
    pub due_at: Option<DateTime<Utc>>,
    /// The item of a multi-instance task, and other task-local values.
    #[schema(value_type = Object)]
    pub local: Map<String, Value>,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// Who completed it.
    pub closed_by: Option<UserId>,
    /// When it was completed or cancelled.
    pub closed_at: Option<DateTime<Utc>>,
    /// How routing placed it and why (`null`: its model names no routing).
    pub routing: Option<super::routing::TaskRoutingView>,
    /// Where it is time-wise against its due date (`null`: it has none).
    pub sla: Option<SlaState>,
    /// The group it waits in while nobody holds it (`null`: someone holds it, or it names
    /// no group).
    pub queue: Option<TaskQueue>,
}

/// A task against its due date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    /// Open with time to spare, or closed by its due date.
    OnTime,
    /// Open, and its reminder is due: within a quarter of the time it was given (at most a
    /// day) of its due date.
    DueSoon,
    /// Open past its due date, or closed after it.
    Overdue,
}

impl SlaState {
    /// Where a task opened at `created` and due at `due` stands at `now` (open) or stood when
    /// it closed at `closed`.
    pub fn of(
        created: DateTime<Utc>,
        due: DateTime<Utc>,
        closed: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> SlaState {
        if let Some(at) = closed {
            return if at <= due {
                SlaState::OnTime
            } else {
                SlaState::Overdue
            };
        }
        if now > due {
            return SlaState::Overdue;
        }
        // The same lead as the reminder the assignee gets.
        let given = due - created;
        let lead = (given / 4).min(chrono::Duration::days(1));
        if now >= due - lead {
            SlaState::DueSoon
        } else {
            SlaState::OnTime
        }
    }
}

/// The group a task waits in.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TaskQueue {
    /// `role` or `channel`.
    pub kind: QueueKind,
    /// The role's or the channel's id.
    pub id: Uuid,
}

/// What kind of group a queue is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueKind {
    /// A role's holders.
    Role,
    /// A channel's members.
    Channel,
}

/// Filters for the task inbox.
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TaskQuery {
    /// Tasks per page (1 to 500, default 50).
    pub limit: Option<i64>,
    /// `mine` (assigned to one), `queues` (held by nobody, shared with a role one holds or a
    /// channel one is in); both by default.
    #[param(inline)]
    pub scope: Option<TaskScope>,
}

/// Which of one's open tasks to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskScope {
    /// Assigned to one.
    Mine,
    /// Held by nobody and shared with one's role or channel.
    Queues,
}

/// The tasks one may complete.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TaskPage {
    /// Oldest first.
    pub tasks: Vec<TaskView>,
}

/// Completing a task.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"variables": {"approved": true}}))]
pub struct CompleteTask {
    /// The form's values, set as the instance's variables (a JSON object, up to 256 KiB).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Map<String, Value>>,
}

/// An incident.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct IncidentView {
    /// Its id.
    pub id: String,
    /// The instance.
    pub instance_id: Uuid,
    /// The element that failed.
    pub element: String,
    /// What failed.
    pub message: String,
    /// `open` or `resolved`.
    pub status: String,
    /// When it was raised.
    pub raised_at: DateTime<Utc>,
    /// When it was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// Open incidents.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct IncidentList {
    /// Oldest first.
    pub incidents: Vec<IncidentView>,
}

/// What to do about an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentAction {
    /// Run the failed step again (a service call with the same idempotency key).
    Retry,
    /// Leave the failed element as if it completed, with `variables` set.
    Skip,
    /// Cancel the instance.
    Cancel,
}

impl IncidentAction {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            IncidentAction::Retry => "retry",
            IncidentAction::Skip => "skip",
            IncidentAction::Cancel => "cancel",
        }
    }
}

/// Resolving an incident.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"action": "retry"}))]
pub struct ResolveIncident {
    /// `retry`, `skip` or `cancel`.
    pub action: IncidentAction,
    /// For `skip`: the variables to set instead of the element's result.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Map<String, Value>>,
}

/// A message for waiting instances.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "payment.received", "correlation": "A-1"}))]
pub struct SendMessage {
    /// The message name (as the model's `message` names it).
    pub name: String,
    /// The correlation key value a waiting instance must expect (any JSON value).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub correlation: Option<Value>,
    /// Variables the message carries.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Map<String, Value>>,
}

/// A signal broadcast to the workspace's processes.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "quarter.closed", "variables": {"quarter": "2026-Q4"}}))]
pub struct SendSignal {
    /// The signal name (as the model's `signal` names it).
    pub name: String,
    /// Variables the signal carries.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Map<String, Value>>,
}

/// Where a message or a signal went.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MessageOutcome {
    /// Waiting instances that received it.
    pub delivered: Vec<Uuid>,
    /// Instances it started (a message: none was waiting and a process starts on it; a
    /// signal: every process that starts on it).
    pub started: Vec<Uuid>,
}

pub(crate) fn deployment(
    r: &DeploymentRecord,
    model: &ProcessModel,
    note: Option<String>,
) -> DeploymentView {
    use concord_workflow::model::StartTrigger;
    DeploymentView {
        note,
        id: r.id,
        process_id: r.process_id.clone(),
        name: model.name.clone(),
        version: r.version,
        format: r.format.clone(),
        deployed_by: r.deployed_by,
        deployed_at: r.deployed_at,
        start_events: model
            .start_events()
            .map(|(e, t)| StartEventView {
                id: e.id.clone(),
                trigger: match t {
                    StartTrigger::None => "none",
                    StartTrigger::Message { .. } => "message",
                    StartTrigger::Timer(_) => "timer",
                    StartTrigger::Signal { .. } => "signal",
                }
                .into(),
            })
            .collect(),
    }
}

pub(crate) fn summary(r: &InstanceRecord) -> InstanceSummary {
    InstanceSummary {
        id: r.id,
        process_id: r.process_id.clone(),
        deployment_id: r.deployment_id,
        status: r.status.clone(),
        started_by: r.started_by,
        started_at: r.started_at,
        updated_at: r.updated_at,
        ended_at: r.ended_at,
        parent_id: r.parent_id,
    }
}

/// The group an open task waits in while nobody holds it.
fn queue_of(t: &TaskRecord) -> Option<TaskQueue> {
    if t.assignee.is_some() || t.status != "open" {
        return None;
    }
    match (t.candidate_role, t.candidate_channel) {
        (Some(role), _) => Some(TaskQueue {
            kind: QueueKind::Role,
            id: role.0,
        }),
        (None, Some(channel)) => Some(TaskQueue {
            kind: QueueKind::Channel,
            id: channel.0,
        }),
        (None, None) => None,
    }
}

/// A task's sealed details.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct TaskDetail {
    pub name: Option<String>,
    pub form_key: Option<String>,
    /// The form's version when the task opened (none for tasks opened before forms had
    /// versions: the latest).
    #[serde(default)]
    pub form_version: Option<i64>,
    pub unresolved: Option<String>,
    #[serde(default)]
    pub local: Map<String, Value>,
}

impl WorkflowService {
    pub(crate) async fn instance_view(
        &self,
        conn: &mut Conn<'_>,
        id: Uuid,
        with_history: bool,
    ) -> Result<InstanceView, Error> {
        let record = wf::instance(conn, id)
            .await?
            .ok_or(Error::NotFound("workflow instance"))?;
        let state = self.state_of(conn, &record).await?;
        let deployment = wf::deployment(conn, record.deployment_id)
            .await?
            .ok_or_else(|| Error::Internal("an instance's deployment is missing".into()))?;
        let model = self.model_of(conn, &deployment).await?;
        let error = match &state.status {
            concord_workflow::state::Status::Failed { error } => Some(error.clone()),
            _ => None,
        };
        let mut tasks = Vec::new();
        for t in wf::tasks_of(conn, id).await? {
            tasks.push(self.task_view(conn, &t, &record.process_id).await?);
        }
        let mut incidents = Vec::new();
        for i in wf::incidents_of(conn, id).await? {
            incidents.push(self.incident_view(conn, &i).await?);
        }
        let mut history = Vec::new();
        if with_history {
            for s in wf::steps(conn, id).await? {
                let row = format!("{}:{}", s.instance_id, s.step);
                let detail = self
                    .open(
                        conn,
                        record.workspace_id,
                        "workflow_steps",
                        &row,
                        "detail",
                        &s.detail,
                    )
                    .await?;
                let entry: concord_workflow::HistoryEntry = serde_json::from_slice(&detail)
                    .map_err(|e| {
                        Error::Internal(format!("a stored step does not read back: {e}"))
                    })?;
                history.push(StepView {
                    step: s.step,
                    at: s.at,
                    element: s.element,
                    event: serde_json::to_value(&entry.event).unwrap_or(Value::Null),
                    actor: entry.actor,
                    changed: entry.changed,
                });
            }
        }
        Ok(InstanceView {
            instance: summary(&record),
            version: deployment.version,
            name: model.name.clone(),
            variables: state.variables,
            error,
            tasks,
            incidents,
            history,
        })
    }

    /// A task of an instance of `process_id`.
    pub(crate) async fn task_view(
        &self,
        conn: &mut Conn<'_>,
        t: &TaskRecord,
        process_id: &str,
    ) -> Result<TaskView, Error> {
        let detail = self.task_detail(conn, t).await?;
        // An open task shows its form to fill in.
        let form = match (&detail.form_key, t.status.as_str()) {
            (Some(key), "open") => {
                self.form_at(conn, t.workspace_id, key, detail.form_version)
                    .await?
            }
            _ => None,
        };
        Ok(TaskView {
            id: t.id.clone(),
            instance_id: t.instance_id,
            workspace_id: t.workspace_id,
            process_id: process_id.to_owned(),
            element: t.element.clone(),
            name: detail.name,
            form_key: detail.form_key,
            form,
            status: t.status.clone(),
            assignee: t.assignee,
            candidate_role: t.candidate_role,
            candidate_channel: t.candidate_channel,
            unresolved_assignment: detail.unresolved,
            due_at: t.due_at,
            local: detail.local,
            created_at: t.created_at,
            closed_by: t.closed_by,
            closed_at: t.closed_at,
            routing: self.routing_view(conn, t).await?,
            sla: t
                .due_at
                .map(|due| SlaState::of(t.created_at, due, t.closed_at, Utc::now())),
            queue: queue_of(t),
        })
    }

    /// A task's sealed details.
    pub(crate) async fn task_detail(
        &self,
        conn: &mut Conn<'_>,
        t: &TaskRecord,
    ) -> Result<TaskDetail, Error> {
        self.open_json(
            conn,
            t.workspace_id,
            "workflow_tasks",
            &t.id,
            "detail",
            &t.detail,
        )
        .await
    }

    pub(crate) async fn incident_view(
        &self,
        conn: &mut Conn<'_>,
        i: &IncidentRecord,
    ) -> Result<IncidentView, Error> {
        let message = self
            .open(
                conn,
                i.workspace_id,
                "workflow_incidents",
                &i.id,
                "message",
                &i.message,
            )
            .await?;
        Ok(IncidentView {
            id: i.id.clone(),
            instance_id: i.instance_id,
            element: i.element.clone(),
            message: String::from_utf8_lossy(&message).into_owned(),
            status: i.status.clone(),
            raised_at: i.raised_at,
            resolved_at: i.resolved_at,
        })
    }
}
