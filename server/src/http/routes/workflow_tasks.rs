//! Working a workflow task together: handing it to someone else, who it may go to, and the
//! comments of the people working on it.

use axum::extract::State;
use axum::http::StatusCode;

use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, Auth};
use crate::http::state::AppState;
use crate::workflow::{
    NewTaskComment, ReassignTask, TaskCandidates, TaskCommentList, TaskCommentView, TaskView,
};

/// Hand a task to someone else: its assignee, to someone its role or channel names; someone
/// with `workflows.manage`, to any active member of the workspace. The new holder is told by
/// the workflow bot, the old one's inbox drops it, and its chat notices lose their buttons; a
/// `note` is kept as a comment. Audited as `workflow.task_reassigned`, a refusal included.
#[utoipa::path(post, path = "/api/v1/workflow-tasks/{task_id}/reassign", operation_id = "reassign_workflow_task", tag = "workflows",
    security(("bearer" = [])), params(("task_id" = String, Path)),
    request_body = ReassignTask,
    responses((status = 200, body = TaskView),
        (status = 403, description = "`not_assignee`: neither its assignee nor `workflows.manage`"),
        (status = 404, description = "no such task in one's workspaces"),
        (status = 409, description = "`task_closed`, or `already_assigned`"),
        (status = 422, description = "`validation_failed`: `to` (not an active member the task's group names) or `note`")))]
pub async fn reassign(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(how): ApiJson<ReassignTask>,
) -> Result<axum::Json<TaskView>, ApiError> {
    Ok(axum::Json(state.workflows.reassign(&actor, id, how).await?))
}

/// The people one may hand a task to (its group's active people; for `workflows.manage`, the
/// workspace's), for whoever may see the task; empty for someone who may not hand it on.
#[utoipa::path(get, path = "/api/v1/workflow-tasks/{task_id}/candidates", operation_id = "list_workflow_task_candidates", tag = "workflows",
    security(("bearer" = [])), params(("task_id" = String, Path)),
    responses((status = 200, body = TaskCandidates),
        (status = 403, description = "`not_a_participant`: the task names someone else"),
        (status = 404, description = "no such task in one's workspaces")))]
pub async fn candidates(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<TaskCandidates>, ApiError> {
    Ok(axum::Json(
        state.workflows.task_candidates(&actor, &id).await?,
    ))
}

/// A task's comments, oldest first: for its assignee, the people its role or channel names,
/// and `workflows.manage`.
#[utoipa::path(get, path = "/api/v1/workflow-tasks/{task_id}/comments", operation_id = "list_workflow_task_comments", tag = "workflows",
    security(("bearer" = [])), params(("task_id" = String, Path)),
    responses((status = 200, body = TaskCommentList),
        (status = 403, description = "`not_a_participant`: the task names someone else"),
        (status = 404, description = "no such task in one's workspaces")))]
pub async fn comments(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<TaskCommentList>, ApiError> {
    Ok(axum::Json(state.workflows.comments(&actor, &id).await?))
}

/// Comment on a task (the same people as read its comments), sealed under the workspace's
/// key; the people the task names hear of it live. Audited as `workflow.task_commented`.
#[utoipa::path(post, path = "/api/v1/workflow-tasks/{task_id}/comments", operation_id = "comment_workflow_task", tag = "workflows",
    security(("bearer" = [])), params(("task_id" = String, Path)),
    request_body = NewTaskComment,
    responses((status = 201, body = TaskCommentView),
        (status = 403, description = "`not_a_participant`: the task names someone else"),
        (status = 404, description = "no such task in one's workspaces"),
        (status = 422, description = "`validation_failed`: `text` empty or longer than 4,000 characters")))]
pub async fn comment(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(new): ApiJson<NewTaskComment>,
) -> Result<(StatusCode, axum::Json<TaskCommentView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.workflows.comment(&actor, id, new).await?),
    ))
}
