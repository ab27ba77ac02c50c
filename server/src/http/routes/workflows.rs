//! Workflows: deploy BPMN processes, start and follow instances, complete tasks, send
//! messages to waiting instances and handle incidents.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use crate::domain::{UserId, WorkspaceId};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::http::state::AppState;
use crate::workflow::routing::{PersonRouting, PersonRoutingView, RouterView};
use crate::workflow::{
    CompleteTask, DecideRequest, DecisionDeployment, DecisionList, DecisionOutcome,
    DecisionTestReport, DeploymentList, DeploymentView, ExpressionCheck, ExpressionReport,
    FormList, FormView, HookCredentials, HookOutcome, IncidentList, InstancePage, InstanceQuery,
    InstanceView, MessageOutcome, NewDecision, NewDeployment, NewForm, NewTrigger, ResolveIncident,
    SendMessage, SendSignal, StartInstance, TaskPage, TaskQuery, TaskView, TriggerList,
    TriggerView,
};

/// Deploy a process model (`workflows.manage`): BPMN 2.0 XML as Camunda Modeler or bpmn-js
/// save it (the diagram is kept), or Concord's YAML form. It becomes the next version of its
/// process; instances keep running on the version they started with. Audited as
/// `workflow.deployed`.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/workflows", operation_id = "deploy_workflow", tag = "workflows",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    request_body = NewDeployment,
    responses((status = 201, body = DeploymentView), (status = 403, description = "missing workflows.manage"),
        (status = 413, description = "`model_too_large`"),
        (status = 422, description = "`invalid_model` with `problems`, each naming its `element` and `line`")))]
pub async fn deploy(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
    ApiJson(new): ApiJson<NewDeployment>,
) -> Result<(StatusCode, axum::Json<DeploymentView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.workflows.deploy(&actor, ws, new).await?),
    ))
}

/// The workspace's deployed processes, every version (`workflows.start`).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/workflows", operation_id = "list_workflows", tag = "workflows",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    responses((status = 200, body = DeploymentList), (status = 403, description = "missing workflows.start")))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
) -> Result<axum::Json<DeploymentList>, ApiError> {
    Ok(axum::Json(state.workflows.deployments(&actor, ws).await?))
}

/// Which version to export.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// The version; by default the latest.
    pub version: Option<i64>,
}

/// A deployed process as BPMN 2.0 XML with its diagram (`workflows.manage`), to open in a
/// modeler.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/workflows/{process_id}/bpmn", operation_id = "export_workflow", tag = "workflows",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("process_id" = String, Path), ExportQuery),
    responses((status = 200, description = "BPMN XML", content_type = "application/xml"),
        (status = 403, description = "missing workflows.manage"), (status = 404, description = "no such process or version")))]
pub async fn export(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, process)): ApiPath<(WorkspaceId, String)>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let xml = state
        .workflows
        .export(&actor, ws, &process, q.version)
        .await?;
    Ok((
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        xml,
    )
        .into_response())
}

/// Start an instance of a process (`workflows.start`), on its latest version or `version`.
/// Audited as `workflow.started`, and each step as `workflow.step`.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/workflows/{process_id}/instances", operation_id = "start_workflow", tag = "workflows",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("process_id" = String, Path)),
    request_body = StartInstance,
    responses((status = 201, body = InstanceView), (status = 403, description = "missing workflows.start"),
        (status = 404, description = "no such process or version"),
        (status = 409, description = "`input_refused`: the process loops without waiting"),
        (status = 422, description = "`validation_failed`: `variables` too large; `cannot_start`: the process has no none start event")))]
pub async fn start(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, process)): ApiPath<(WorkspaceId, String)>,
    ApiJson(start): ApiJson<StartInstance>,
) -> Result<(StatusCode, axum::Json<InstanceView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.workflows.start(&actor, ws, process, start).await?),
    ))
}

/// The workspace's instances, oldest first (`workflows.manage`: all of them;
/// `workflows.start`: those one started).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/workflow-instances", operation_id = "list_workflow_instances", tag = "workflows",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid), InstanceQuery),
    responses((status = 200, body = InstancePage), (status = 403, description = "missing workflows.start"),
        (status = 422, description = "`validation_failed`: `status` or `limit`")))]
pub async fn instances(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
    ApiQuery(q): ApiQuery<InstanceQuery>,
) -> Result<axum::Json<InstancePage>, ApiError> {
    Ok(axum::Json(state.workflows.instances(&actor, ws, q).await?))
}

/// One instance with its variables, tasks, incidents and every step of its history.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/workflow-instances/{instance_id}", operation_id = "get_workflow_instance", tag = "workflows",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("instance_id" = String, Path, format = Uuid)),
    responses((status = 200, body = InstanceView), (status = 404, description = "no such instance, or not one's own without workflows.manage")))]
pub async fn instance(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, id)): ApiPath<(WorkspaceId, Uuid)>,
) -> Result<axum::Json<InstanceView>, ApiError> {
    Ok(axum::Json(state.workflows.instance(&actor, ws, id).await?))
}

/// Cancel a running instance (`workflows.manage`): its open tasks close, its timers and
/// waits end.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/workflow-instances/{instance_id}/cancel", operation_id = "cancel_workflow_instance", tag = "workflows",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("instance_id" = String, Path, format = Uuid)),
    responses((status = 200, body = InstanceView), (status = 403, description = "missing workflows.manage"),
        (status = 404, description = "no such instance"), (status = 409, description = "`instance_ended`")))]
pub async fn cancel(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, id)): ApiPath<(WorkspaceId, Uuid)>,
) -> Result<axum::Json<InstanceView>, ApiError> {
    Ok(axum::Json(state.workflows.cancel(&actor, ws, id).await?))
}

/// Send a message to the instances waiting for it (`workflows.start`): each waiting instance
/// whose correlation key equals `correlation` receives it; when none waits, the processes
/// that start on it are started.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/workflow-messages", operation_id = "send_workflow_message", tag = "workflows",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    request_body = SendMessage,
    responses((status = 200, body = MessageOutcome), (status = 403, description = "missing workflows.start"),
        (status = 422, description = "`validation_failed`: `name` or `variables`")))]
pub async fn message(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
    ApiJson(msg): ApiJson<SendMessage>,
) -> Result<axum::Json<MessageOutcome>, ApiError> {
    Ok(axum::Json(state.workflows.message(&actor, ws, msg).await?))
}

/// Broadcast a signal (`workflows.manage`): every instance waiting for it receives it, and
/// every process with a signal start event for it starts (its latest version). Audited as
/// `workflow.signal`.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/workflow-signals", operation_id = "send_workflow_signal", tag = "workflows",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    request_body = SendSignal,
    responses((status = 200, body = MessageOutcome), (status = 403, description = "missing workflows.manage"),
        (status = 422, description = "`validation_failed`: `name` or `variables`")))]
pub async fn signal(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
    ApiJson(signal): ApiJson<SendSignal>,
) -> Result<axum::Json<MessageOutcome>, ApiError> {
    Ok(axum::Json(
        state.workflows.signal(&actor, ws, signal).await?,
    ))
}

/// The workspace's open incidents (`workflows.manage`).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/workflow-incidents", operation_id = "list_workflow_incidents", tag = "workflows",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    responses((status = 200, body = IncidentList), (status = 403, description = "missing workflows.manage")))]
pub async fn incidents(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
) -> Result<axum::Json<IncidentList>, ApiError> {
    Ok(axum::Json(state.workflows.incidents(&actor, ws).await?))
}

/// Resolve an incident (`workflows.manage`): `retry` the failed step (a service call keeps
/// its idempotency key), `skip` it with `variables` set instead, or `cancel` the instance.
/// Audited as `workflow.incident_resolved`.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/workflow-incidents/{incident_id}/resolve", operation_id = "resolve_workflow_incident", tag = "workflows",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("incident_id" = String, Path)),
    request_body = ResolveIncident,
    responses((status = 200, body = InstanceView), (status = 403, description = "missing workflows.manage"),
        (status = 404, description = "no such incident"), (status = 409, description = "`incident_resolved`")))]
pub async fn resolve(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, id)): ApiPath<(WorkspaceId, String)>,
    ApiJson(how): ApiJson<ResolveIncident>,
) -> Result<axum::Json<InstanceView>, ApiError> {
    Ok(axum::Json(
        state.workflows.resolve(&actor, ws, id, how).await?,
    ))
}

/// The open tasks one may complete, in every workspace: assigned to one, to a role one
/// holds, or to a channel one belongs to.
#[utoipa::path(get, path = "/api/v1/workflow-tasks", operation_id = "list_workflow_tasks", tag = "workflows",
    security(("bearer" = [])), params(TaskQuery),
    responses((status = 200, body = TaskPage)))]
pub async fn tasks(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<TaskQuery>,
) -> Result<axum::Json<TaskPage>, ApiError> {
    Ok(axum::Json(state.workflows.inbox(&actor, q).await?))
}

/// Complete a task with the form's values: only its assignee, a holder of its role or a
/// member of its channel may (for a task nobody can complete any more, assigned to nobody or
/// to someone who left or was deactivated, or a role or channel with no active person left:
/// `workflows.manage`). A task with
/// a form takes exactly its fields, typed as it says (the form version it opened with); one
/// without takes any variables. Audited as `workflow.task_completed`, a refusal included.
#[utoipa::path(post, path = "/api/v1/workflow-tasks/{task_id}/complete", operation_id = "complete_workflow_task", tag = "workflows",
    security(("bearer" = [])), params(("task_id" = String, Path)),
    request_body = CompleteTask,
    responses((status = 200, body = TaskView), (status = 403, description = "`not_assignee`"),
        (status = 404, description = "no such task in one's workspaces"),
        (status = 409, description = "`task_closed`: completed or cancelled before"),
        (status = 422, description = "`invalid_completion` with `problems`: values the form does not take")))]
pub async fn complete(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(done): ApiJson<CompleteTask>,
) -> Result<axum::Json<TaskView>, ApiError> {
    Ok(axum::Json(
        state.workflows.complete(&actor, id, done).await?,
    ))
}

/// Make a trigger that starts a process (`workflows.manage`): an inbound `webhook` (its URL
/// and secret are in the answer, the secret only there), or chat activity: a `message`
/// matching a pattern, a `reaction`, a member joining a channel, a file shared. Audited as
/// `workflow.trigger_created`.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/workflows/{process_id}/triggers", operation_id = "create_workflow_trigger", tag = "workflows",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("process_id" = String, Path)),
    request_body = NewTrigger,
    responses((status = 201, body = TriggerView), (status = 403, description = "missing workflows.manage"),
        (status = 404, description = "no such process"),
        (status = 422, description = "`validation_failed`: `pattern`, `emoji` or `channel_id`")))]
pub async fn create_trigger(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, process)): ApiPath<(WorkspaceId, String)>,
    ApiJson(new): ApiJson<NewTrigger>,
) -> Result<(StatusCode, axum::Json<TriggerView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(
            state
                .workflows
                .create_trigger(&actor, ws, process, new)
                .await?,
        ),
    ))
}

/// The workspace's triggers, revoked ones included, without secrets (`workflows.manage`).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/workflow-triggers", operation_id = "list_workflow_triggers", tag = "workflows",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    responses((status = 200, body = TriggerList), (status = 403, description = "missing workflows.manage")))]
pub async fn triggers(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
) -> Result<axum::Json<TriggerList>, ApiError> {
    Ok(axum::Json(state.workflows.triggers(&actor, ws).await?))
}

/// Revoke a trigger (`workflows.manage`): a webhook's URL stops working at once.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/workflow-triggers/{trigger_id}", operation_id = "revoke_workflow_trigger", tag = "workflows",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("trigger_id" = String, Path, format = Uuid)),
    responses((status = 200, body = TriggerView), (status = 403, description = "missing workflows.manage"),
        (status = 404, description = "no such trigger"), (status = 409, description = "`trigger_revoked`")))]
pub async fn revoke_trigger(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, id)): ApiPath<(WorkspaceId, Uuid)>,
) -> Result<axum::Json<TriggerView>, ApiError> {
    Ok(axum::Json(
        state.workflows.revoke_trigger(&actor, ws, id).await?,
    ))
}

/// An inbound webhook (a CRM, a form, a monitoring system): starts the trigger's process with
/// the body's JSON object as variables. Authenticated by the trigger's secret, as a bearer
/// token, or by `X-Concord-Signature` (`v0=` and the hex HMAC-SHA256 of
/// `v0:{timestamp}:{body}`) with `X-Concord-Request-Timestamp` (Unix seconds, at most five
/// minutes off). No session is needed. A delivery sent again (the same signature, or the same
/// `Idempotency-Key` header) starts nothing new and answers the instance the first started.
#[utoipa::path(post, path = "/api/v1/workflow-hooks/{trigger_id}", operation_id = "call_workflow_hook", tag = "workflows",
    params(("trigger_id" = String, Path, format = Uuid)),
    request_body(content = Object, description = "any JSON object"),
    responses((status = 202, body = HookOutcome),
        (status = 401, description = "`invalid_signature`: no such webhook, revoked, or the secret or signature does not match"),
        (status = 422, description = "`invalid_payload`: not a JSON object")))]
pub async fn hook(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, axum::Json<HookOutcome>), ApiError> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let credentials = HookCredentials {
        bearer: text("authorization")
            .and_then(|a| a.strip_prefix("Bearer ").map(|t| t.trim().to_owned())),
        signature: text("x-concord-signature"),
        timestamp: text("x-concord-request-timestamp"),
        idempotency_key: text("idempotency-key"),
    };
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(state.workflows.hook(id, credentials, body.to_vec()).await?),
    ))
}

/// Deploy a task form (`workflows.manage`): a small JSON Schema whose properties are the fields
/// a user task naming it by `formKey` sets (`string` with `format` `date`, `user`, `file` or
/// an `enum`; `number`; `integer`; `boolean`). It becomes the next version of its key; tasks
/// show and check the latest. Audited as `workflow.form_deployed`.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/workflow-forms", operation_id = "deploy_workflow_form", tag = "workflows",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    request_body = NewForm,
    responses((status = 201, body = FormView), (status = 403, description = "missing workflows.manage"),
        (status = 413, description = "`form_too_large`"),
        (status = 422, description = "`invalid_form` with `problems`")))]
pub async fn deploy_form(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
    ApiJson(new): ApiJson<NewForm>,
) -> Result<(StatusCode, axum::Json<FormView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.workflows.deploy_form(&actor, ws, new).await?),
    ))
}

/// The workspace's task forms, the latest version of each (`workflows.start`).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/workflow-forms", operation_id = "list_workflow_forms", tag = "workflows",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    responses((status = 200, body = FormList), (status = 403, description = "missing workflows.start")))]
pub async fn forms(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
) -> Result<axum::Json<FormList>, ApiError> {
    Ok(axum::Json(state.workflows.forms(&actor, ws).await?))
}

/// Deploy decision tables (`workflows.manage`): DMN XML as dmn-js or Camunda Modeler save it
/// (every decision table in the file), or Concord's YAML or CSV form (one table). Each becomes
/// the next version of its key; business-rule tasks decide with the latest. Every cell is
/// checked and every test case (the source's and `tests`) must pass, or nothing is deployed.
/// Audited as `workflow.decision_deployed`.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/workflow-decisions", operation_id = "deploy_workflow_decision", tag = "workflows",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    request_body = NewDecision,
    responses((status = 201, body = DecisionDeployment), (status = 403, description = "missing workflows.manage"),
        (status = 413, description = "`decision_too_large`"),
        (status = 422, description = "`invalid_decision` or `decision_tests_failed`, with `problems` naming the decision, rule and column")))]
pub async fn deploy_decision(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
    ApiJson(new): ApiJson<NewDecision>,
) -> Result<(StatusCode, axum::Json<DecisionDeployment>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.workflows.deploy_decision(&actor, ws, new).await?),
    ))
}

/// The workspace's decision tables, the latest version of each (`workflows.start`).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/workflow-decisions", operation_id = "list_workflow_decisions", tag = "workflows",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    responses((status = 200, body = DecisionList), (status = 403, description = "missing workflows.start")))]
pub async fn decisions(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
) -> Result<axum::Json<DecisionList>, ApiError> {
    Ok(axum::Json(state.workflows.decisions(&actor, ws).await?))
}

/// A decision table's source as deployed (`workflows.manage`): DMN XML to open in a modeler,
/// or the YAML or CSV text.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/workflow-decisions/{decision_key}/source", operation_id = "export_workflow_decision", tag = "workflows",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("decision_key" = String, Path), ExportQuery),
    responses((status = 200, description = "the source: DMN XML (application/xml), YAML (application/yaml) or CSV (text/csv)"),
        (status = 403, description = "missing workflows.manage"), (status = 404, description = "no such decision or version")))]
pub async fn decision_source(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, key)): ApiPath<(WorkspaceId, String)>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let (format, source) = state
        .workflows
        .decision_source(&actor, ws, &key, q.version)
        .await?;
    let content_type = match format.as_str() {
        "dmn" => "application/xml; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        _ => "application/yaml; charset=utf-8",
    };
    Ok(([(header::CONTENT_TYPE, content_type)], source).into_response())
}

/// Decide with a deployed table (`workflows.manage`), as a business-rule task would: the
/// result, the rules that matched and why. Changes nothing.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/workflow-decisions/{decision_key}/evaluate", operation_id = "evaluate_workflow_decision", tag = "workflows",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("decision_key" = String, Path)),
    request_body = DecideRequest,
    responses((status = 200, body = DecisionOutcome), (status = 403, description = "missing workflows.manage"),
        (status = 404, description = "no such decision or version"),
        (status = 409, description = "`decision_failed`: the table cannot decide on these variables (two rules under `unique`, an input that does not evaluate)")))]
pub async fn evaluate_decision(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, key)): ApiPath<(WorkspaceId, String)>,
    ApiJson(request): ApiJson<DecideRequest>,
) -> Result<axum::Json<DecisionOutcome>, ApiError> {
    Ok(axum::Json(
        state.workflows.decide(&actor, ws, &key, request).await?,
    ))
}

/// Check decision tables and run their test cases without deploying them
/// (`workflows.manage`): an editor's "run tests". Takes what a deployment takes; answers every
/// problem and every case with what it gave and why. Nothing is written.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/workflow-decisions/test", operation_id = "test_workflow_decision", tag = "workflows",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    request_body = NewDecision,
    responses((status = 200, body = DecisionTestReport), (status = 403, description = "missing workflows.manage"),
        (status = 413, description = "`decision_too_large`")))]
pub async fn test_decision(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
    ApiJson(new): ApiJson<NewDecision>,
) -> Result<axum::Json<DecisionTestReport>, ApiError> {
    Ok(axum::Json(
        state.workflows.test_decision(&actor, ws, new).await?,
    ))
}

/// Check a condition (CEL), a text template or a JSON template as deploying would
/// (`workflows.manage`), for a designer checking as a person types: every problem with its
/// line and column. Nothing is evaluated.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/workflow-expressions/check", operation_id = "check_workflow_expression", tag = "workflows",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    request_body = ExpressionCheck,
    responses((status = 200, body = ExpressionReport), (status = 403, description = "missing workflows.manage"),
        (status = 413, description = "`expression_too_large`")))]
pub async fn check_expression(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
    ApiJson(check): ApiJson<ExpressionCheck>,
) -> Result<axum::Json<ExpressionReport>, ApiError> {
    Ok(axum::Json(
        state.workflows.check_expression(&actor, ws, check).await?,
    ))
}

/// Claim a task: someone of the group it is shared with (its role's holders, its channel's
/// members) takes it while nobody holds it, or its assignee accepts it. A claimed task is
/// not escalated as unclaimed. Audited as `workflow.task_claimed`, a refusal included.
#[utoipa::path(post, path = "/api/v1/workflow-tasks/{task_id}/claim", operation_id = "claim_workflow_task", tag = "workflows",
    security(("bearer" = [])), params(("task_id" = String, Path)),
    responses((status = 200, body = TaskView), (status = 403, description = "`not_assignee`: someone else holds it, or one is not in its group"),
        (status = 404, description = "no such task in one's workspaces"),
        (status = 409, description = "`task_closed`, or `task_claimed`: someone claimed it first")))]
pub async fn claim(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<TaskView>, ApiError> {
    Ok(axum::Json(state.workflows.claim(&actor, id).await?))
}

/// A person's routing attributes in a workspace (skills, levels, capacity, manager, days out
/// of office): the person themself, or someone with `workflows.manage`.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/people/{user_id}/routing", operation_id = "get_person_routing", tag = "workflows",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("user_id" = String, Path, format = Uuid)),
    responses((status = 200, body = PersonRoutingView), (status = 403, description = "someone else's, without workflows.manage"),
        (status = 404, description = "not a member of the workspace")))]
pub async fn person_routing(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, user)): ApiPath<(WorkspaceId, UserId)>,
) -> Result<axum::Json<PersonRoutingView>, ApiError> {
    Ok(axum::Json(
        state.workflows.person_routing(&actor, ws, user).await?,
    ))
}

/// Set a person's routing attributes, replacing them: someone with `workflows.manage` sets
/// any; a person sets their own capacity and out-of-office days (skills, levels and manager
/// must stay as they are). Audited as `person.routing_updated` (the fields changed).
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/people/{user_id}/routing", operation_id = "set_person_routing", tag = "workflows",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("user_id" = String, Path, format = Uuid)),
    request_body = PersonRouting,
    responses((status = 200, body = PersonRoutingView),
        (status = 403, description = "someone else's without workflows.manage, or `routing_admin_only`: one's own skills, levels or manager"),
        (status = 404, description = "not a member of the workspace"),
        (status = 422, description = "`validation_failed`: sizes, dates, a manager who is not a member")))]
pub async fn set_person_routing(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, user)): ApiPath<(WorkspaceId, UserId)>,
    ApiJson(new): ApiJson<PersonRouting>,
) -> Result<axum::Json<PersonRoutingView>, ApiError> {
    Ok(axum::Json(
        state
            .workflows
            .set_person_routing(&actor, ws, user, new)
            .await?,
    ))
}

/// Train the next version of a process's learned router on its completed tasks, now
/// (`workflows.manage`); it retrains on its own every `retrain_every_hours` after. Tasks whose
/// routing has a `learned` block ask it first. Audited as `workflow.router_trained`.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/workflows/{process_id}/router", operation_id = "train_workflow_router", tag = "workflows",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("process_id" = String, Path)),
    responses((status = 201, body = RouterView), (status = 403, description = "missing workflows.manage"),
        (status = 404, description = "no such process"),
        (status = 422, description = "`too_little_history` (fewer than 20 completed tasks) or `cannot_train` (one person did them all)")))]
pub async fn train_router(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, process)): ApiPath<(WorkspaceId, String)>,
) -> Result<(StatusCode, axum::Json<RouterView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.workflows.train_router(&actor, ws, &process).await?),
    ))
}

/// A process's latest learned router: its version, how many tasks and people it learned
/// from, when (`workflows.manage`).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/workflows/{process_id}/router", operation_id = "get_workflow_router", tag = "workflows",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("process_id" = String, Path)),
    responses((status = 200, body = RouterView), (status = 403, description = "missing workflows.manage"),
        (status = 404, description = "no router trained yet")))]
pub async fn router(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, process)): ApiPath<(WorkspaceId, String)>,
) -> Result<axum::Json<RouterView>, ApiError> {
    Ok(axum::Json(
        state.workflows.router(&actor, ws, &process).await?,
    ))
}
