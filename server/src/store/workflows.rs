//! Workflows (tables `workflow_*`): deployments, instances and their history, and the indexes
//! over an instance's state the runner finds work by (open tasks, due jobs, message
//! subscriptions, open incidents).
//!
//! Sources, models, states, task details, job payloads, step details and incident messages
//! arrive here sealed; this module never sees their plaintext.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{on, Conn, StoreError};
use crate::domain::{ChannelId, RoleId, UserId, WorkspaceId};

/// A deployed process version.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DeploymentRecord {
    /// Its id.
    pub id: Uuid,
    /// The workspace it belongs to.
    pub workspace_id: WorkspaceId,
    /// The BPMN process id.
    pub process_id: String,
    /// 1 for the first deployment of the process in the workspace, then on.
    pub version: i64,
    /// `bpmn` or `yaml`.
    pub format: String,
    /// The source as deployed, sealed.
    pub source: Vec<u8>,
    /// The parsed model as JSON, sealed.
    pub model: Vec<u8>,
    /// Who deployed it.
    pub deployed_by: Option<UserId>,
    /// When.
    pub deployed_at: DateTime<Utc>,
    /// The version note the deployer wrote, sealed.
    pub note: Option<Vec<u8>>,
}

const DEPLOYMENT: &str =
    "id, workspace_id, process_id, version, format, source, model, deployed_by, deployed_at, note";

/// Stores a deployment.
pub async fn insert_deployment(
    conn: &mut Conn<'_>,
    d: &DeploymentRecord,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO workflow_deployments ({DEPLOYMENT}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    );
    on!(conn, |c| sqlx::query(&sql)
        .bind(d.id)
        .bind(d.workspace_id)
        .bind(&d.process_id)
        .bind(d.version)
        .bind(&d.format)
        .bind(&d.source)
        .bind(&d.model)
        .bind(d.deployed_by)
        .bind(d.deployed_at)
        .bind(&d.note)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// The highest version of `process_id` deployed in the workspace (0 if none).
pub async fn latest_version(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    process_id: &str,
) -> Result<i64, StoreError> {
    let sql = "SELECT COALESCE(MAX(version), 0) FROM workflow_deployments \
               WHERE workspace_id = $1 AND process_id = $2";
    let v: i64 = on!(conn, |c| sqlx::query_scalar(sql)
        .bind(workspace)
        .bind(process_id)
        .fetch_one(c)
        .await)?;
    Ok(v)
}

/// The deployment `id`.
pub async fn deployment(
    conn: &mut Conn<'_>,
    id: Uuid,
) -> Result<Option<DeploymentRecord>, StoreError> {
    let sql = format!("SELECT {DEPLOYMENT} FROM workflow_deployments WHERE id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// The deployment of `process_id` at `version`, or its latest version.
pub async fn deployment_of(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    process_id: &str,
    version: Option<i64>,
) -> Result<Option<DeploymentRecord>, StoreError> {
    let sql = format!(
        "SELECT {DEPLOYMENT} FROM workflow_deployments WHERE workspace_id = $1 \
         AND process_id = $2 AND ($3 IS NULL OR version = $3) ORDER BY version DESC LIMIT 1"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .bind(process_id)
        .bind(version)
        .fetch_optional(c)
        .await)?)
}

/// Every deployment of a workspace, newest version of each process first.
pub async fn deployments(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<DeploymentRecord>, StoreError> {
    let sql = format!(
        "SELECT {DEPLOYMENT} FROM workflow_deployments WHERE workspace_id = $1 \
         ORDER BY process_id, version DESC"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .fetch_all(c)
        .await)?)
}

/// A process instance.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct InstanceRecord {
    /// Its id (the engine's instance id is its text form).
    pub id: Uuid,
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The deployment it runs on to the end.
    pub deployment_id: Uuid,
    /// The process id.
    pub process_id: String,
    /// `running`, `completed`, `terminated`, `failed` or `cancelled`.
    pub status: String,
    /// The engine state as JSON, sealed.
    pub state: Vec<u8>,
    /// Who started it (none: a trigger or a parent instance).
    pub started_by: Option<UserId>,
    /// When.
    pub started_at: DateTime<Utc>,
    /// When its state last changed.
    pub updated_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// The instance whose call activity started it.
    pub parent_id: Option<Uuid>,
    /// The child id the parent waits on.
    pub parent_wait: Option<String>,
    /// The trigger and event that started it (`{trigger}:{event}`), once per event.
    pub trigger_event: Option<String>,
}

const INSTANCE: &str = "id, workspace_id, deployment_id, process_id, status, state, started_by, \
                        started_at, updated_at, ended_at, parent_id, parent_wait, trigger_event";

/// Stores a new instance.
pub async fn insert_instance(conn: &mut Conn<'_>, i: &InstanceRecord) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO workflow_instances ({INSTANCE}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    );
    on!(conn, |c| sqlx::query(&sql)
        .bind(i.id)
        .bind(i.workspace_id)
        .bind(i.deployment_id)
        .bind(&i.process_id)
        .bind(&i.status)
        .bind(&i.state)
        .bind(i.started_by)
        .bind(i.started_at)
        .bind(i.updated_at)
        .bind(i.ended_at)
        .bind(i.parent_id)
        .bind(&i.parent_wait)
        .bind(&i.trigger_event)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Replaces an instance's state and status.
pub async fn update_instance(
    conn: &mut Conn<'_>,
    id: Uuid,
    status: &str,
    state: &[u8],
    at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let sql = "UPDATE workflow_instances SET status = $1, state = $2, updated_at = $3, \
               ended_at = $4 WHERE id = $5";
    on!(conn, |c| sqlx::query(sql)
        .bind(status)
        .bind(state)
        .bind(at)
        .bind(ended_at)
        .bind(id)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// The instance `id`.
pub async fn instance(conn: &mut Conn<'_>, id: Uuid) -> Result<Option<InstanceRecord>, StoreError> {
    let sql = format!("SELECT {INSTANCE} FROM workflow_instances WHERE id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// Up to `limit` instances of a workspace after `after`, oldest first; with `status`,
/// `process_id` and `started_by`, only those.
pub async fn instances(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    status: Option<&str>,
    process_id: Option<&str>,
    started_by: Option<UserId>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<InstanceRecord>, StoreError> {
    let sql = format!(
        "SELECT {INSTANCE} FROM workflow_instances WHERE workspace_id = $1 \
         AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR process_id = $3) \
         AND ($4 IS NULL OR started_by = $4) AND ($5 IS NULL OR id > $5) ORDER BY id LIMIT $6"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .bind(status)
        .bind(process_id)
        .bind(started_by)
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// One history step.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StepRecord {
    /// The instance.
    pub instance_id: Uuid,
    /// The step number, from 1.
    pub step: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// The element concerned.
    pub element: Option<String>,
    /// What happened (`entered`, `completed`, `task_completed`, …).
    pub kind: String,
    /// The person who caused it.
    pub actor: Option<UserId>,
    /// The engine's history entry as JSON (variables changed included), sealed.
    pub detail: Vec<u8>,
}

/// Stores a history step.
pub async fn insert_step(conn: &mut Conn<'_>, s: &StepRecord) -> Result<(), StoreError> {
    let sql = "INSERT INTO workflow_steps (instance_id, step, at, element, kind, actor, detail) \
               VALUES ($1, $2, $3, $4, $5, $6, $7)";
    on!(conn, |c| sqlx::query(sql)
        .bind(s.instance_id)
        .bind(s.step)
        .bind(s.at)
        .bind(&s.element)
        .bind(&s.kind)
        .bind(s.actor)
        .bind(&s.detail)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// An instance's history, in order.
pub async fn steps(conn: &mut Conn<'_>, instance: Uuid) -> Result<Vec<StepRecord>, StoreError> {
    let sql = "SELECT instance_id, step, at, element, kind, actor, detail FROM workflow_steps \
               WHERE instance_id = $1 ORDER BY step";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(instance)
        .fetch_all(c)
        .await)?)
}

/// A user task.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TaskRecord {
    /// The engine's task id.
    pub id: String,
    /// The instance.
    pub instance_id: Uuid,
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The user task element.
    pub element: String,
    /// Name, form and item as JSON, sealed.
    pub detail: Vec<u8>,
    /// The person it is assigned to.
    pub assignee: Option<UserId>,
    /// The role whose holders may complete it.
    pub candidate_role: Option<RoleId>,
    /// The channel whose members may complete it.
    pub candidate_channel: Option<ChannelId>,
    /// `open`, `completed` or `cancelled`.
    pub status: String,
    /// When it is due.
    pub due_at: Option<DateTime<Utc>>,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// Who completed it.
    pub closed_by: Option<UserId>,
    /// When it was completed or cancelled.
    pub closed_at: Option<DateTime<Utc>>,
    /// How it was routed (its routing block, the last decision and its explanation), sealed;
    /// `None` for a task whose model names no routing.
    pub routing: Option<Vec<u8>>,
    /// When its assignee claimed it (took it from the queue, or accepted it).
    pub claimed_at: Option<DateTime<Utc>>,
    /// How many steps of its escalation chain are behind it.
    pub escalation_level: i64,
    /// Who held it before it was first reassigned (`None`: never reassigned away from
    /// anyone).
    pub first_assignee: Option<UserId>,
}

const TASK: &str = "id, instance_id, workspace_id, element, detail, assignee, candidate_role, \
                    candidate_channel, status, due_at, created_at, closed_by, closed_at, \
                    routing, claimed_at, escalation_level, first_assignee";

/// Opens a task.
pub async fn insert_task(conn: &mut Conn<'_>, t: &TaskRecord) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO workflow_tasks ({TASK}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    );
    on!(conn, |c| sqlx::query(&sql)
        .bind(&t.id)
        .bind(t.instance_id)
        .bind(t.workspace_id)
        .bind(&t.element)
        .bind(&t.detail)
        .bind(t.assignee)
        .bind(t.candidate_role)
        .bind(t.candidate_channel)
        .bind(&t.status)
        .bind(t.due_at)
        .bind(t.created_at)
        .bind(t.closed_by)
        .bind(t.closed_at)
        .bind(&t.routing)
        .bind(t.claimed_at)
        .bind(t.escalation_level)
        .bind(t.first_assignee)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Closes an open task; false if it was not open.
pub async fn close_task(
    conn: &mut Conn<'_>,
    id: &str,
    status: &str,
    by: Option<UserId>,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE workflow_tasks SET status = $1, closed_by = $2, closed_at = $3 \
               WHERE id = $4 AND status = 'open'";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(status)
        .bind(by)
        .bind(at)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// The task `id`.
pub async fn task(conn: &mut Conn<'_>, id: &str) -> Result<Option<TaskRecord>, StoreError> {
    let sql = format!("SELECT {TASK} FROM workflow_tasks WHERE id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// An instance's tasks, in the order they were opened.
pub async fn tasks_of(conn: &mut Conn<'_>, instance: Uuid) -> Result<Vec<TaskRecord>, StoreError> {
    let sql =
        format!("SELECT {TASK} FROM workflow_tasks WHERE instance_id = $1 ORDER BY created_at, id");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(instance)
        .fetch_all(c)
        .await)?)
}

/// The workspace's completed tasks of process `process_id` (at element `element`, if given),
/// most recently closed first, at most `limit`: the history the learned router trains on.
pub async fn completed_tasks(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    process_id: &str,
    element: Option<&str>,
    limit: i64,
) -> Result<Vec<TaskRecord>, StoreError> {
    let sql = format!(
        "SELECT {} FROM workflow_tasks t JOIN workflow_instances i ON i.id = t.instance_id \
         WHERE t.workspace_id = $1 AND i.process_id = $2 AND t.status = 'completed' \
         AND t.closed_by IS NOT NULL AND (CAST($3 AS TEXT) IS NULL OR t.element = $3) \
         ORDER BY t.closed_at DESC, t.id LIMIT $4",
        TASK.split(", ")
            .map(|c| format!("t.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .bind(process_id)
        .bind(element)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// Which of a person's open tasks an inbox lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboxScope {
    /// Theirs and their groups'.
    All,
    /// Assigned to them.
    Mine,
    /// Held by nobody and shared with a role they hold or a channel they are in.
    Queues,
}

/// The open tasks `user` may complete (those of `scope`): assigned to them, or held by nobody
/// and shared with a role they hold in the task's workspace or a channel they belong to;
/// oldest first, at most `limit`.
pub async fn inbox(
    conn: &mut Conn<'_>,
    user: UserId,
    scope: InboxScope,
    limit: i64,
) -> Result<Vec<TaskRecord>, StoreError> {
    let queued = "(t.assignee IS NULL AND \
              (EXISTS (SELECT 1 FROM memberships m WHERE m.workspace_id = t.workspace_id \
                       AND m.user_id = $1 AND m.role_id = t.candidate_role) \
               OR EXISTS (SELECT 1 FROM channel_members cm \
                          WHERE cm.channel_id = t.candidate_channel AND cm.user_id = $1)))";
    let which = match scope {
        InboxScope::All => format!("(t.assignee = $1 OR {queued})"),
        InboxScope::Mine => "t.assignee = $1".to_owned(),
        InboxScope::Queues => queued.to_owned(),
    };
    let sql = format!(
        "SELECT {TASK} FROM workflow_tasks t WHERE t.status = 'open' AND \
         EXISTS (SELECT 1 FROM memberships m WHERE m.workspace_id = t.workspace_id \
                 AND m.user_id = $1) AND {which} \
         ORDER BY t.created_at, t.id LIMIT $2"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(user)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// Work due for the runner: a timer, a service call, a post, a child to start, a message to
/// publish.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct JobRecord {
    /// The command's id (timer, call, post or child id).
    pub id: String,
    /// The instance that asked for it.
    pub instance_id: Option<Uuid>,
    /// The deployment whose timer start event it is.
    pub deployment_id: Option<Uuid>,
    /// Its workspace.
    pub workspace_id: WorkspaceId,
    /// `timer`, `call`, `post`, `child`, `cancel_child`, `publish` or `child_ended`.
    pub kind: String,
    /// When it is due.
    pub due_at: DateTime<Utc>,
    /// The command as JSON, sealed.
    pub payload: Vec<u8>,
    /// Until when a runner holds it.
    pub leased_until: Option<DateTime<Utc>>,
}

const JOB: &str =
    "id, instance_id, deployment_id, workspace_id, kind, due_at, payload, leased_until";

/// Queues a job (a job with the same id already queued is kept).
pub async fn insert_job(conn: &mut Conn<'_>, j: &JobRecord) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO workflow_jobs ({JOB}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (id) DO NOTHING"
    );
    on!(conn, |c| sqlx::query(&sql)
        .bind(&j.id)
        .bind(j.instance_id)
        .bind(j.deployment_id)
        .bind(j.workspace_id)
        .bind(&j.kind)
        .bind(j.due_at)
        .bind(&j.payload)
        .bind(j.leased_until)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Removes a job; false if it was not queued.
pub async fn delete_job(conn: &mut Conn<'_>, id: &str) -> Result<bool, StoreError> {
    let n = on!(conn, |c| sqlx::query(
        "DELETE FROM workflow_jobs WHERE id = $1"
    )
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// The job `id`.
pub async fn job(conn: &mut Conn<'_>, id: &str) -> Result<Option<JobRecord>, StoreError> {
    let sql = format!("SELECT {JOB} FROM workflow_jobs WHERE id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// Takes up to `limit` jobs due by `now` that no runner holds, holding each until `lease`.
pub async fn lease_due(
    conn: &mut Conn<'_>,
    now: DateTime<Utc>,
    lease: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<JobRecord>, StoreError> {
    let sql = format!(
        "SELECT {JOB} FROM workflow_jobs WHERE due_at <= $1 \
         AND (leased_until IS NULL OR leased_until < $1) ORDER BY due_at, id LIMIT $2"
    );
    let jobs: Vec<JobRecord> = on!(conn, |c| sqlx::query_as(&sql)
        .bind(now)
        .bind(limit)
        .fetch_all(c)
        .await)?;
    for j in &jobs {
        on!(conn, |c| sqlx::query(
            "UPDATE workflow_jobs SET leased_until = $1 WHERE id = $2"
        )
        .bind(lease)
        .bind(&j.id)
        .execute(c)
        .await
        .map(|_| ()))?;
    }
    Ok(jobs)
}

/// Lets a held job be taken again at `due`.
pub async fn release_job(
    conn: &mut Conn<'_>,
    id: &str,
    due: DateTime<Utc>,
) -> Result<(), StoreError> {
    on!(conn, |c| sqlx::query(
        "UPDATE workflow_jobs SET leased_until = NULL, due_at = $1 WHERE id = $2"
    )
    .bind(due)
    .bind(id)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// When the next job no runner holds is due.
pub async fn next_due(conn: &mut Conn<'_>) -> Result<Option<DateTime<Utc>>, StoreError> {
    let sql = "SELECT MIN(due_at) FROM workflow_jobs WHERE leased_until IS NULL";
    let at: Option<DateTime<Utc>> = on!(conn, |c| sqlx::query_scalar(sql).fetch_one(c).await)?;
    Ok(at)
}

/// Routes messages named `message` (with this correlation, as JSON text) to an instance.
pub async fn subscribe(
    conn: &mut Conn<'_>,
    id: &str,
    instance: Uuid,
    workspace: WorkspaceId,
    message: &str,
    correlation: Option<&str>,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO workflow_subscriptions (id, instance_id, workspace_id, message, \
               correlation) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING";
    on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .bind(instance)
        .bind(workspace)
        .bind(message)
        .bind(correlation)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Stops routing for a subscription.
pub async fn unsubscribe(conn: &mut Conn<'_>, id: &str) -> Result<(), StoreError> {
    on!(conn, |c| sqlx::query(
        "DELETE FROM workflow_subscriptions WHERE id = $1"
    )
    .bind(id)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// The instances waiting for `message` in a workspace with a matching correlation (or none),
/// oldest subscription first.
pub async fn subscribers(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    message: &str,
    correlation: Option<&str>,
) -> Result<Vec<Uuid>, StoreError> {
    let sql = "SELECT instance_id FROM workflow_subscriptions WHERE workspace_id = $1 \
               AND message = $2 AND (correlation IS NULL OR correlation = $3) ORDER BY id";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .bind(workspace)
        .bind(message)
        .bind(correlation)
        .fetch_all(c)
        .await)?)
}

/// An incident.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct IncidentRecord {
    /// The engine's incident id.
    pub id: String,
    /// The instance.
    pub instance_id: Uuid,
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The element that failed.
    pub element: String,
    /// What failed, sealed.
    pub message: Vec<u8>,
    /// `open` or `resolved`.
    pub status: String,
    /// When it was raised.
    pub raised_at: DateTime<Utc>,
    /// When it was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
}

const INCIDENT: &str =
    "id, instance_id, workspace_id, element, message, status, raised_at, resolved_at";

/// Records a raised incident.
pub async fn insert_incident(conn: &mut Conn<'_>, i: &IncidentRecord) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO workflow_incidents ({INCIDENT}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    );
    on!(conn, |c| sqlx::query(&sql)
        .bind(&i.id)
        .bind(i.instance_id)
        .bind(i.workspace_id)
        .bind(&i.element)
        .bind(&i.message)
        .bind(&i.status)
        .bind(i.raised_at)
        .bind(i.resolved_at)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Marks an incident resolved.
pub async fn resolve_incident(
    conn: &mut Conn<'_>,
    id: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    on!(conn, |c| sqlx::query(
        "UPDATE workflow_incidents SET status = 'resolved', resolved_at = $1 \
         WHERE id = $2 AND status = 'open'"
    )
    .bind(at)
    .bind(id)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// The incident `id`.
pub async fn incident(conn: &mut Conn<'_>, id: &str) -> Result<Option<IncidentRecord>, StoreError> {
    let sql = format!("SELECT {INCIDENT} FROM workflow_incidents WHERE id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// A workspace's incidents with `status`, oldest first, at most `limit`.
pub async fn incidents(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    status: &str,
    limit: i64,
) -> Result<Vec<IncidentRecord>, StoreError> {
    let sql = format!(
        "SELECT {INCIDENT} FROM workflow_incidents WHERE workspace_id = $1 AND status = $2 \
         ORDER BY raised_at, id LIMIT $3"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .bind(status)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// An instance's incidents, oldest first.
pub async fn incidents_of(
    conn: &mut Conn<'_>,
    instance: Uuid,
) -> Result<Vec<IncidentRecord>, StoreError> {
    let sql = format!(
        "SELECT {INCIDENT} FROM workflow_incidents WHERE instance_id = $1 ORDER BY raised_at, id"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(instance)
        .fetch_all(c)
        .await)?)
}

/// Releases every job's lease (a runner starting after one that died).
pub async fn release_all(conn: &mut Conn<'_>) -> Result<(), StoreError> {
    on!(conn, |c| sqlx::query(
        "UPDATE workflow_jobs SET leased_until = NULL WHERE leased_until IS NOT NULL"
    )
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// The child instance `parent` started for its wait `wait`.
pub async fn child_of(
    conn: &mut Conn<'_>,
    parent: Uuid,
    wait: &str,
) -> Result<Option<InstanceRecord>, StoreError> {
    let sql = format!(
        "SELECT {INSTANCE} FROM workflow_instances WHERE parent_id = $1 AND parent_wait = $2"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(parent)
        .bind(wait)
        .fetch_optional(c)
        .await)?)
}

/// Removes the schedule jobs of every deployment of a process but `keep` (a new version
/// replaces the old one's timer start events).
pub async fn delete_schedules(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    process_id: &str,
    keep: Uuid,
) -> Result<(), StoreError> {
    let sql =
        "DELETE FROM workflow_jobs WHERE deployment_id IN (SELECT id FROM workflow_deployments \
               WHERE workspace_id = $1 AND process_id = $2 AND id <> $3)";
    on!(conn, |c| sqlx::query(sql)
        .bind(workspace)
        .bind(process_id)
        .bind(keep)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// What starts a process besides the API.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TriggerRecord {
    /// Its id (a webhook's URL names it).
    pub id: Uuid,
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The process it starts (its latest version).
    pub process_id: String,
    /// `webhook`, `message`, `reaction`, `member_joined` or `file_shared`.
    pub kind: String,
    /// The channel it watches (none: every channel of the workspace).
    pub channel_id: Option<ChannelId>,
    /// Pattern, emoji or secret as JSON, sealed.
    pub config: Vec<u8>,
    /// Who made it.
    pub created_by: Option<UserId>,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

const TRIGGER: &str = "id, workspace_id, process_id, kind, channel_id, config, created_by, \
                       created_at, revoked_at";

/// Stores a trigger.
pub async fn insert_trigger(conn: &mut Conn<'_>, t: &TriggerRecord) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO workflow_triggers ({TRIGGER}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    );
    on!(conn, |c| sqlx::query(&sql)
        .bind(t.id)
        .bind(t.workspace_id)
        .bind(&t.process_id)
        .bind(&t.kind)
        .bind(t.channel_id)
        .bind(&t.config)
        .bind(t.created_by)
        .bind(t.created_at)
        .bind(t.revoked_at)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// The trigger `id`.
pub async fn trigger(conn: &mut Conn<'_>, id: Uuid) -> Result<Option<TriggerRecord>, StoreError> {
    let sql = format!("SELECT {TRIGGER} FROM workflow_triggers WHERE id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// A workspace's triggers, revoked ones included, oldest first.
pub async fn triggers(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<TriggerRecord>, StoreError> {
    let sql =
        format!("SELECT {TRIGGER} FROM workflow_triggers WHERE workspace_id = $1 ORDER BY id");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .fetch_all(c)
        .await)?)
}

/// The live triggers of `kind` in a workspace that watch `channel` (or every channel).
pub async fn live_triggers(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    kind: &str,
    channel: ChannelId,
) -> Result<Vec<TriggerRecord>, StoreError> {
    let sql = format!(
        "SELECT {TRIGGER} FROM workflow_triggers WHERE workspace_id = $1 AND kind = $2 \
         AND revoked_at IS NULL AND (channel_id IS NULL OR channel_id = $3) ORDER BY id"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .bind(kind)
        .bind(channel)
        .fetch_all(c)
        .await)?)
}

/// Revokes a trigger; false if it was revoked before.
pub async fn revoke_trigger(
    conn: &mut Conn<'_>,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = on!(conn, |c| sqlx::query(
        "UPDATE workflow_triggers SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL"
    )
    .bind(at)
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// The instance a trigger already started for this event (`{trigger}:{event}`), if any.
pub async fn started_by_event(conn: &mut Conn<'_>, key: &str) -> Result<Option<Uuid>, StoreError> {
    Ok(on!(conn, |c| sqlx::query_scalar(
        "SELECT id FROM workflow_instances WHERE trigger_event = $1"
    )
    .bind(key)
    .fetch_optional(c)
    .await)?)
}

/// The ids of an instance's message and signal subscriptions.
pub async fn subscriptions_of(
    conn: &mut Conn<'_>,
    instance: Uuid,
) -> Result<Vec<String>, StoreError> {
    Ok(on!(conn, |c| sqlx::query_scalar(
        "SELECT id FROM workflow_subscriptions WHERE instance_id = $1"
    )
    .bind(instance)
    .fetch_all(c)
    .await)?)
}

/// The account the workspace's workflows speak as, once made.
pub async fn workflow_bot(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Option<UserId>, StoreError> {
    let sql = "SELECT user_id FROM workflow_bots WHERE workspace_id = $1";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .bind(workspace)
        .fetch_optional(c)
        .await)?)
}

/// Records `user` as the account the workspace's workflows speak as.
pub async fn set_workflow_bot(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    user: UserId,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO workflow_bots (workspace_id, user_id) VALUES ($1, $2)";
    on!(conn, |c| sqlx::query(sql)
        .bind(workspace)
        .bind(user)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// A version of a task form.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct FormRecord {
    /// Its id.
    pub id: Uuid,
    /// The workspace it belongs to.
    pub workspace_id: WorkspaceId,
    /// The key user tasks name it by.
    pub form_key: String,
    /// 1 for the first, then on.
    pub version: i64,
    /// The JSON Schema, sealed.
    pub schema: Vec<u8>,
    /// Who deployed it.
    pub deployed_by: Option<UserId>,
    /// When.
    pub deployed_at: DateTime<Utc>,
}

const FORM: &str = "id, workspace_id, form_key, version, schema, deployed_by, deployed_at";

/// Stores a form version.
pub async fn insert_form(conn: &mut Conn<'_>, f: &FormRecord) -> Result<(), StoreError> {
    let sql = format!("INSERT INTO workflow_forms ({FORM}) VALUES ($1, $2, $3, $4, $5, $6, $7)");
    on!(conn, |c| sqlx::query(&sql)
        .bind(f.id)
        .bind(f.workspace_id)
        .bind(&f.form_key)
        .bind(f.version)
        .bind(&f.schema)
        .bind(f.deployed_by)
        .bind(f.deployed_at)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Version `version` of the workspace's form `key`.
pub async fn form_version(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    key: &str,
    version: i64,
) -> Result<Option<FormRecord>, StoreError> {
    let sql = format!(
        "SELECT {FORM} FROM workflow_forms WHERE workspace_id = $1 AND form_key = $2 \
         AND version = $3"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .bind(key)
        .bind(version)
        .fetch_optional(c)
        .await)?)
}

/// The latest version of the workspace's form `key`.
pub async fn latest_form(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    key: &str,
) -> Result<Option<FormRecord>, StoreError> {
    let sql = format!(
        "SELECT {FORM} FROM workflow_forms WHERE workspace_id = $1 AND form_key = $2 \
         ORDER BY version DESC LIMIT 1"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .bind(key)
        .fetch_optional(c)
        .await)?)
}

/// The latest version of each of the workspace's forms, by key.
pub async fn forms(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<FormRecord>, StoreError> {
    let sql = format!(
        "SELECT {FORM} FROM workflow_forms f WHERE workspace_id = $1 AND version = \
         (SELECT MAX(version) FROM workflow_forms g WHERE g.workspace_id = f.workspace_id \
          AND g.form_key = f.form_key) ORDER BY form_key"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .fetch_all(c)
        .await)?)
}

/// A version of a decision table.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DecisionRecord {
    /// Its id.
    pub id: Uuid,
    /// The workspace it belongs to.
    pub workspace_id: WorkspaceId,
    /// The key business-rule tasks name it by.
    pub decision_key: String,
    /// 1 for the first, then on.
    pub version: i64,
    /// `dmn`, `yaml` or `csv`.
    pub format: String,
    /// The source as deployed, sealed.
    pub source: Vec<u8>,
    /// The parsed table as JSON, sealed.
    pub definition: Vec<u8>,
    /// Who deployed it.
    pub deployed_by: Option<UserId>,
    /// When.
    pub deployed_at: DateTime<Utc>,
}

const DECISION: &str =
    "id, workspace_id, decision_key, version, format, source, definition, deployed_by, deployed_at";

/// Stores a decision table version.
pub async fn insert_decision(conn: &mut Conn<'_>, d: &DecisionRecord) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO workflow_decisions ({DECISION}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    );
    on!(conn, |c| sqlx::query(&sql)
        .bind(d.id)
        .bind(d.workspace_id)
        .bind(&d.decision_key)
        .bind(d.version)
        .bind(&d.format)
        .bind(&d.source)
        .bind(&d.definition)
        .bind(d.deployed_by)
        .bind(d.deployed_at)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Version `version` of the workspace's decision `key`, or the latest when `version` is
/// `None`.
pub async fn decision_of(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    key: &str,
    version: Option<i64>,
) -> Result<Option<DecisionRecord>, StoreError> {
    let sql = match version {
        Some(_) => format!(
            "SELECT {DECISION} FROM workflow_decisions WHERE workspace_id = $1 \
             AND decision_key = $2 AND version = $3"
        ),
        None => format!(
            "SELECT {DECISION} FROM workflow_decisions WHERE workspace_id = $1 \
             AND decision_key = $2 ORDER BY version DESC LIMIT 1"
        ),
    };
    Ok(on!(conn, |c| {
        let q = sqlx::query_as(&sql).bind(workspace).bind(key);
        match version {
            Some(v) => q.bind(v).fetch_optional(c).await,
            None => q.fetch_optional(c).await,
        }
    })?)
}

/// The latest version of each of the workspace's decision tables, by key.
pub async fn decisions(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<DecisionRecord>, StoreError> {
    let sql = format!(
        "SELECT {DECISION} FROM workflow_decisions d WHERE workspace_id = $1 AND version = \
         (SELECT MAX(version) FROM workflow_decisions e WHERE e.workspace_id = d.workspace_id \
          AND e.decision_key = d.decision_key) ORDER BY decision_key"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .fetch_all(c)
        .await)?)
}
