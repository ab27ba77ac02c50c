//! Committing one engine transition: the instance's sealed state, its history (one row and
//! one audit entry per step) and the indexes its commands ask for, all in the caller's
//! write, so they commit together or not at all.

use chrono::Utc;
use concord_workflow::command::{Command, HistoryEvent};
use concord_workflow::model::{Assignment, PostTarget};
use concord_workflow::state::Status;
use concord_workflow::{ProcessModel, Transition};
use serde_json::{json, Value};
use uuid::Uuid;

use super::facts::Recorder;
use super::views::TaskDetail;
use super::WorkflowService;
use crate::audit::{Event, Outcome};
use crate::domain::{ChannelId, RoleId, UserId, WorkspaceId};
use crate::error::Error;
use crate::rbac::Actor;
use crate::store::workflows::{
    self as wf, IncidentRecord, InstanceRecord, JobRecord, StepRecord, TaskRecord,
};
use crate::store::Tx;

/// The stored name of an instance status.
pub(crate) fn status_name(status: &Status) -> &'static str {
    match status {
        Status::Running => "running",
        Status::Completed => "completed",
        Status::Terminated => "terminated",
        Status::Failed { .. } => "failed",
        Status::Cancelled => "cancelled",
    }
}

/// What a finished child tells its parent (a `child_ended` job's payload).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct ChildEnded {
    pub child_id: String,
    pub failed: Option<String>,
    pub variables: serde_json::Map<String, Value>,
}

/// Commits `t` for `instance` (inserting it when `new`), running on `model`.
pub(crate) async fn apply(
    svc: &WorkflowService,
    tx: &mut Tx,
    actor: &Actor,
    instance: &InstanceRecord,
    model: &ProcessModel,
    new: bool,
    t: Transition,
) -> Result<(), Error> {
    let ws = instance.workspace_id;
    let id = instance.id;
    let row = id.to_string();
    let now = Utc::now();
    let status = status_name(&t.state.status);
    let state_json = serde_json::to_vec(&t.state)
        .map_err(|e| Error::Internal(format!("instance state to JSON: {e}")))?;
    let sealed = svc
        .seal(tx, ws, "workflow_instances", &row, "state", &state_json)
        .await?;
    let ended = (status != "running").then_some(now);
    if new {
        let mut record = instance.clone();
        record.status = status.to_owned();
        record.state = sealed;
        record.ended_at = ended;
        wf::insert_instance(&mut tx.conn(), &record).await?;
    } else {
        wf::update_instance(&mut tx.conn(), id, status, &sealed, now, ended).await?;
    }
    let mut facts = Recorder::new(instance);
    for entry in &t.history {
        facts.step(&mut tx.conn(), model, entry).await?;
        let kind = serde_json::to_value(&entry.event)
            .ok()
            .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| "step".into());
        let step_row = format!("{id}:{}", entry.step);
        let detail = serde_json::to_vec(entry)
            .map_err(|e| Error::Internal(format!("history entry to JSON: {e}")))?;
        let detail = svc
            .seal(tx, ws, "workflow_steps", &step_row, "detail", &detail)
            .await?;
        let step = i64::try_from(entry.step).unwrap_or(i64::MAX);
        wf::insert_step(
            &mut tx.conn(),
            &StepRecord {
                instance_id: id,
                step,
                at: entry.at,
                element: entry.element.clone(),
                kind: kind.clone(),
                actor: entry
                    .actor
                    .as_deref()
                    .and_then(|a| a.parse::<Uuid>().ok())
                    .map(UserId),
                detail,
            },
        )
        .await?;
        let event = Event::by(actor, "workflow.step", Outcome::Allowed)
            .target("workflow_instance", id)
            .workspace(ws)
            .details(json!({
                "step": step,
                "element": entry.element,
                "event": kind,
                "process_id": instance.process_id,
                "variables": entry.changed.keys().collect::<Vec<_>>(),
            }));
        svc.auditor().record(tx, event).await?;
    }
    for command in t.commands {
        run_command(svc, tx, instance, &t.state.variables, &mut facts, command).await?;
    }
    // The engine does not unsubscribe a wait a message or signal consumed, and an ended
    // instance waits for nothing: the index keeps exactly the state's subscriptions. Only
    // such transitions look at it, so the others cost no query.
    let received = t
        .history
        .iter()
        .any(|e| matches!(e.event, HistoryEvent::MessageReceived { .. }));
    if status != "running" || received {
        for stale in wf::subscriptions_of(&mut tx.conn(), id).await? {
            if status != "running" || !t.state.subscriptions.contains_key(&stale) {
                wf::unsubscribe(&mut tx.conn(), &stale).await?;
            }
        }
    }
    facts.finish(svc, tx, status).await
}

async fn run_command(
    svc: &WorkflowService,
    tx: &mut Tx,
    instance: &InstanceRecord,
    variables: &serde_json::Map<String, Value>,
    facts: &mut Recorder,
    command: Command,
) -> Result<(), Error> {
    let ws = instance.workspace_id;
    let now = Utc::now();
    match &command {
        Command::CreateUserTask {
            task_id,
            element,
            name,
            assignment,
            form_key,
            due,
            local,
            routing,
        } => {
            let mut who = resolve(svc, tx, ws, assignment).await?;
            // Routing picks among the group the assignment names; it runs in this write, so
            // the snapshot it decides on is the one the task opens against.
            let routed = match routing {
                Some(block) => {
                    route_new(svc, tx, instance, &mut who, block, variables, local, now).await?
                }
                None => None,
            };
            // The workflow bot tells the assignee (a direct message) or the channel the task
            // went to; a role's holders find it in their inbox.
            let notify = match (who.person, who.channel) {
                (Some(person), _) => Some((PostTarget::Person(person.to_string()), "you")),
                (None, Some(channel)) => {
                    Some((PostTarget::Channel(channel.to_string()), "this channel"))
                }
                (None, None) => None,
            };
            let why = routed.as_ref().map(|r| r.record.explanation.clone());
            let form_version = match form_key {
                Some(key) => svc.current_form_version(&mut tx.conn(), ws, key).await?,
                None => None,
            };
            if let Some((to, whom)) = notify {
                let notice = TaskNotice {
                    task_id: task_id.clone(),
                    element: element.clone(),
                    to,
                    text: task_notice(
                        whom,
                        name.as_deref().unwrap_or(element),
                        &instance.process_id,
                        *due,
                        why.as_deref(),
                    ),
                    form_key: form_key.clone(),
                    form_version,
                    reminder: false,
                };
                let job = format!("{task_id}:notice");
                queue(svc, tx, instance, instance.id, &job, "notice", now, &notice).await?;
                // A task with a due date is recalled before it: a quarter of the time it was
                // given, at most a day, before the due date, unless it was closed by then.
                if let Some(due) = *due {
                    let given = due - now;
                    if given > chrono::Duration::zero() {
                        let lead = (given / 4).min(chrono::Duration::days(1));
                        let reminder = TaskNotice {
                            text: task_reminder(
                                name.as_deref().unwrap_or(element),
                                &instance.process_id,
                                due,
                            ),
                            reminder: true,
                            ..notice
                        };
                        let job = format!("{task_id}:reminder");
                        queue(
                            svc,
                            tx,
                            instance,
                            instance.id,
                            &job,
                            "notice",
                            due - lead,
                            &reminder,
                        )
                        .await?;
                    }
                }
            }
            let detail = TaskDetail {
                name: name.clone(),
                form_key: form_key.clone(),
                form_version,
                unresolved: who.unresolved,
                local: local.clone(),
            };
            let detail = serde_json::to_vec(&detail)
                .map_err(|e| Error::Internal(format!("task to JSON: {e}")))?;
            let detail = svc
                .seal(tx, ws, "workflow_tasks", task_id, "detail", &detail)
                .await?;
            let sealed_routing = match &routed {
                Some(r) => Some(svc.seal_routing(tx, ws, task_id, &r.record).await?),
                None => None,
            };
            let record = TaskRecord {
                id: task_id.clone(),
                instance_id: instance.id,
                workspace_id: ws,
                element: element.clone(),
                detail,
                assignee: who.person,
                candidate_role: who.role,
                candidate_channel: who.channel,
                status: "open".into(),
                due_at: *due,
                created_at: now,
                closed_by: None,
                closed_at: None,
                routing: sealed_routing,
                claimed_at: None,
                escalation_level: 0,
                first_assignee: None,
            };
            wf::insert_task(&mut tx.conn(), &record).await?;
            facts.task_opened(&record);
            if let Some(r) = &routed {
                svc.after_route(tx, instance, &record, r, true, false, now)
                    .await?;
            }
            task_changed(tx, &record, "open").await?;
        }
        Command::CancelUserTask { task_id } => {
            if wf::close_task(&mut tx.conn(), task_id, "cancelled", None, now).await? {
                facts
                    .task_closed(&mut tx.conn(), task_id, "cancelled", now)
                    .await?;
                if let Some(record) = wf::task(&mut tx.conn(), task_id).await? {
                    task_changed(tx, &record, "cancelled").await?;
                    svc.notices_changed(
                        tx,
                        instance,
                        task_id,
                        "This task was cancelled.".into(),
                        true,
                        now,
                    )
                    .await?;
                }
            }
        }
        Command::CallService { call_id, .. } => {
            queue(
                svc,
                tx,
                instance,
                instance.id,
                call_id,
                "call",
                now,
                &command,
            )
            .await?;
        }
        Command::Post { post_id, .. } => {
            queue(
                svc,
                tx,
                instance,
                instance.id,
                post_id,
                "post",
                now,
                &command,
            )
            .await?;
        }
        Command::ScheduleTimer { timer_id, due, .. } => {
            queue(
                svc,
                tx,
                instance,
                instance.id,
                timer_id,
                "timer",
                *due,
                &command,
            )
            .await?;
        }
        Command::CancelTimer { timer_id } => {
            wf::delete_job(&mut tx.conn(), timer_id).await?;
        }
        Command::Subscribe {
            subscription_id,
            message,
            correlation,
            ..
        } => {
            let key = correlation.as_ref().map(super::correlation_text);
            wf::subscribe(
                &mut tx.conn(),
                subscription_id,
                instance.id,
                ws,
                message,
                key.as_deref(),
            )
            .await?;
        }
        Command::SubscribeSignal {
            subscription_id,
            signal,
            ..
        } => {
            let name = format!("{}{signal}", super::SIGNAL_PREFIX);
            wf::subscribe(
                &mut tx.conn(),
                subscription_id,
                instance.id,
                ws,
                &name,
                None,
            )
            .await?;
        }
        Command::Unsubscribe { subscription_id } => {
            wf::unsubscribe(&mut tx.conn(), subscription_id).await?;
        }
        Command::PublishMessage { .. } => {
            let job = format!("{}:publish:{}", instance.id, Uuid::now_v7());
            queue(
                svc,
                tx,
                instance,
                instance.id,
                &job,
                "publish",
                now,
                &command,
            )
            .await?;
        }
        Command::StartChild { child_id, .. } => {
            queue(
                svc,
                tx,
                instance,
                instance.id,
                child_id,
                "child",
                now,
                &command,
            )
            .await?;
        }
        Command::CancelChild { child_id } => {
            let job = format!("{child_id}:cancel");
            queue(
                svc,
                tx,
                instance,
                instance.id,
                &job,
                "cancel_child",
                now,
                &command,
            )
            .await?;
        }
        Command::EvaluateDecision { request_id, .. } => {
            queue(
                svc,
                tx,
                instance,
                instance.id,
                request_id,
                "decision",
                now,
                &command,
            )
            .await?;
        }
        Command::RaiseIncident {
            incident_id,
            element,
            message,
        } => {
            let sealed = svc
                .seal(
                    tx,
                    ws,
                    "workflow_incidents",
                    incident_id,
                    "message",
                    message.as_bytes(),
                )
                .await?;
            wf::insert_incident(
                &mut tx.conn(),
                &IncidentRecord {
                    id: incident_id.clone(),
                    instance_id: instance.id,
                    workspace_id: ws,
                    element: element.clone(),
                    message: sealed,
                    status: "open".into(),
                    raised_at: now,
                    resolved_at: None,
                },
            )
            .await?;
        }
        Command::ResolveIncident { incident_id } => {
            wf::resolve_incident(&mut tx.conn(), incident_id, now).await?;
        }
        Command::Completed { status, variables } => {
            if let (Some(parent), Some(wait)) = (instance.parent_id, &instance.parent_wait) {
                let failed = match status {
                    Status::Completed | Status::Terminated => None,
                    Status::Failed { error } => Some(error.clone()),
                    Status::Cancelled => Some("cancelled".into()),
                    Status::Running => return Ok(()),
                };
                let payload = ChildEnded {
                    child_id: wait.clone(),
                    failed,
                    variables: variables.clone(),
                };
                let job = format!("{wait}:ended");
                queue(
                    svc,
                    tx,
                    instance,
                    parent,
                    &job,
                    "child_ended",
                    now,
                    &payload,
                )
                .await?;
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn queue(
    svc: &WorkflowService,
    tx: &mut Tx,
    instance: &InstanceRecord,
    for_instance: Uuid,
    id: &str,
    kind: &str,
    due: chrono::DateTime<Utc>,
    payload: &impl serde::Serialize,
) -> Result<(), Error> {
    let payload =
        serde_json::to_vec(payload).map_err(|e| Error::Internal(format!("job to JSON: {e}")))?;
    let sealed = svc
        .seal(
            tx,
            instance.workspace_id,
            "workflow_jobs",
            id,
            "payload",
            &payload,
        )
        .await?;
    wf::insert_job(
        &mut tx.conn(),
        &JobRecord {
            id: id.to_owned(),
            instance_id: Some(for_instance),
            deployment_id: None,
            workspace_id: instance.workspace_id,
            kind: kind.to_owned(),
            due_at: due,
            payload: sealed,
            leased_until: None,
        },
    )
    .await?;
    Ok(())
}

/// Routes a new task within the group its assignment resolved to: the assignee becomes
/// whoever routing picked (the group stays, so the task returns to its queue if need be).
/// `None` when there is nobody to route among (the assignment named nobody known).
#[allow(clippy::too_many_arguments)]
async fn route_new(
    svc: &WorkflowService,
    tx: &mut Tx,
    instance: &InstanceRecord,
    who: &mut Assignees,
    block: &serde_json::Value,
    variables: &serde_json::Map<String, Value>,
    local: &serde_json::Map<String, Value>,
    now: chrono::DateTime<Utc>,
) -> Result<Option<super::routing::Routed>, Error> {
    use crate::store::routing::Group;
    use concord_routing::policy::{RoutingSpec, Strategy};
    // Deploy checked the block; a model deployed before routing existed has none.
    let Ok(spec) = serde_json::from_value::<RoutingSpec>(block.clone()) else {
        return Ok(None);
    };
    let ws = instance.workspace_id;
    let group = match (&spec.strategy, who.person, who.role, who.channel) {
        (Strategy::Person { id }, ..) => {
            let keyring = svc.auditor().keyring();
            match member_named(keyring, &mut tx.conn(), ws, id).await? {
                Some(u) => Group::Person(u),
                None => {
                    who.unresolved = Some(format!("person {}", id.trim()));
                    return Ok(None);
                }
            }
        }
        (_, _, Some(role), _) => Group::Role(role),
        (_, _, None, Some(channel)) => Group::Channel(channel),
        _ => return Ok(None),
    };
    let mut variables = variables.clone();
    variables.extend(local.clone());
    let routed = svc
        .decide_route(
            &mut tx.conn(),
            ws,
            &instance.process_id,
            group,
            &spec,
            &variables,
            false,
            None,
            now,
        )
        .await?;
    who.person = routed.assignee;
    Ok(Some(routed))
}

/// Who a task's assignment names, as Concord knows them.
#[derive(Default)]
struct Assignees {
    person: Option<UserId>,
    role: Option<RoleId>,
    channel: Option<ChannelId>,
    /// The assignment's text when it names nobody in the workspace.
    unresolved: Option<String>,
}

/// Resolves an assignment in workspace `ws`: a person by user id or email (a member), a role
/// by id or name, a channel by id or name (`#` optional). What names nobody is kept as text;
/// such a task is for operators (`workflows.manage`) to complete.
async fn resolve(
    svc: &WorkflowService,
    tx: &mut Tx,
    ws: WorkspaceId,
    assignment: &Assignment,
) -> Result<Assignees, Error> {
    let keyring = svc.auditor().keyring();
    let mut out = Assignees::default();
    match assignment {
        Assignment::Unassigned => {}
        Assignment::Person(p) => match member_named(keyring, &mut tx.conn(), ws, p).await? {
            Some(u) => out.person = Some(u),
            None => out.unresolved = Some(format!("person {}", p.trim())),
        },
        Assignment::Role(r) => {
            let r = r.trim();
            let role = if let Ok(u) = r.parse::<Uuid>() {
                crate::store::roles::by_id(&mut tx.conn(), RoleId(u))
                    .await?
                    .filter(|role| role.workspace_id.is_none() || role.workspace_id == Some(ws))
                    .map(|role| role.id)
            } else {
                crate::workspaces::find_role(keyring, &mut tx.conn(), ws, r)
                    .await?
                    .map(|role| role.id)
            };
            match role {
                Some(id) => out.role = Some(id),
                None => out.unresolved = Some(format!("role {r}")),
            }
        }
        Assignment::Channel(c) => match channel_named(keyring, &mut tx.conn(), ws, c).await? {
            Some(ch) => out.channel = Some(ch.id),
            None => out.unresolved = Some(format!("channel {}", c.trim())),
        },
    }
    Ok(out)
}

/// The member of workspace `ws` that `p` names: a user id or an email address.
pub(super) async fn member_named(
    keyring: &crate::crypto::Keyring,
    conn: &mut crate::store::Conn<'_>,
    ws: WorkspaceId,
    p: &str,
) -> Result<Option<UserId>, Error> {
    let p = p.trim();
    let user = if let Ok(u) = p.parse::<Uuid>() {
        Some(UserId(u))
    } else if let Ok(email) = crate::domain::Email::parse("assignee", p) {
        let index = keyring.email_index(&email.lookup_key());
        crate::store::users::by_email_index(conn, &index)
            .await?
            .map(|u| u.id)
    } else {
        None
    };
    Ok(match user {
        Some(u) => crate::store::workspaces::member(conn, ws, u)
            .await?
            .map(|m| m.user_id),
        None => None,
    })
}

/// The channel of workspace `ws` that `c` names: an id, or a name with or without `#`.
pub(super) async fn channel_named(
    keyring: &crate::crypto::Keyring,
    conn: &mut crate::store::Conn<'_>,
    ws: WorkspaceId,
    c: &str,
) -> Result<Option<crate::store::channels::ChannelRecord>, Error> {
    let c = c.trim();
    let channel = if let Ok(u) = c.parse::<Uuid>() {
        crate::store::channels::by_id(conn, ChannelId(u)).await?
    } else {
        let name = c.trim_start_matches('#');
        let index = crate::chat::details::name_index(keyring, ws, name);
        crate::store::channels::by_name_index(conn, ws, &index).await?
    };
    Ok(channel.filter(|ch| ch.workspace_id == ws))
}

/// Tells the people a task's assignment names (its assignee, the holders of its role, the
/// members of its channel) that it opened or closed, once the write commits.
pub(super) async fn task_changed(
    tx: &mut Tx,
    task: &TaskRecord,
    status: &str,
) -> Result<(), Error> {
    task_changed_for(tx, task, status, &[]).await
}

/// [`task_changed`], telling `also` too (a holder it was taken from).
pub(super) async fn task_changed_for(
    tx: &mut Tx,
    task: &TaskRecord,
    status: &str,
    also: &[UserId],
) -> Result<(), Error> {
    let mut notify: Vec<UserId> = task
        .assignee
        .into_iter()
        .chain(also.iter().copied())
        .collect();
    if let Some(role) = task.candidate_role {
        notify.extend(
            crate::store::workspaces::holders_of(&mut tx.conn(), task.workspace_id, role).await?,
        );
    }
    if let Some(channel) = task.candidate_channel {
        let members = crate::store::channels::members(&mut tx.conn(), channel).await?;
        notify.extend(members.into_iter().map(|m| m.user_id));
    }
    notify.sort();
    notify.dedup();
    if !notify.is_empty() {
        tx.emit(crate::events::DomainEvent::WorkflowTaskChanged {
            workspace_id: task.workspace_id,
            task_id: task.id.clone(),
            instance_id: task.instance_id,
            status: status.to_owned(),
            notify,
        });
    }
    Ok(())
}

/// A `notice` job's payload: the workflow bot tells a task's assignee (or the channel it went
/// to) about it, with buttons that complete it from chat where its form allows.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct TaskNotice {
    /// The task.
    pub task_id: String,
    /// Its element.
    pub element: String,
    /// Where the notice goes.
    pub to: PostTarget,
    /// What it says.
    pub text: String,
    /// The task's form, if it has one.
    pub form_key: Option<String>,
    /// The version of the form the task opened with.
    pub form_version: Option<i64>,
    /// A reminder before the due date (posted only while the task is open), not the notice.
    #[serde(default)]
    pub reminder: bool,
}

/// What the workflow bot says before a task's due date.
fn task_reminder(name: &str, process: &str, due: chrono::DateTime<Utc>) -> String {
    format!(
        "Reminder: *{name}* (process `{process}`) is due {}.",
        due.format("%Y-%m-%d %H:%M UTC")
    )
}

/// What the workflow bot says when a task is assigned.
fn task_notice(
    whom: &str,
    name: &str,
    process: &str,
    due: Option<chrono::DateTime<Utc>>,
    why: Option<&str>,
) -> String {
    let due = due
        .map(|d| format!(", due {}", d.format("%Y-%m-%d %H:%M UTC")))
        .unwrap_or_default();
    let why = why
        .map(|w| format!(" Why {}: {w}.", if whom == "you" { "you" } else { "here" }))
        .unwrap_or_default();
    format!("New task for {whom}: *{name}* (process `{process}`{due}).{why}")
}
