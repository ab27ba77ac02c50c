//! Interactivity: administrators say where presses in a bot's messages go; members press the
//! buttons and pick the options of bots' messages.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use crate::bots::{ActionInput, EventSubscriptionView};
use crate::domain::{MessageId, UserId, WorkspaceId};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, Auth};
use crate::http::state::AppState;

/// Where presses in a bot's messages go.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://bot.example.org/slack/events"}))]
pub struct SetInteractivityRequest {
    /// Where Slack's `block_actions` payloads are POSTed, signed with the bot's signing
    /// secret; `null` stops them.
    pub url: Option<String>,
}

/// A press of a button, or an option picked in a menu, of a bot's message.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"block_id": "approval", "action_id": "approve"}))]
pub struct MessageActionRequest {
    /// The block holding the element (every block of a stored message has one).
    pub block_id: String,
    /// The element (every interactive element of a stored message has one).
    pub action_id: String,
    /// A button's value; ignored: the bot is sent the value its message holds.
    #[serde(default)]
    pub value: Option<String>,
    /// For a menu (`static_select`, `overflow`): the `value` of the option picked.
    #[serde(default)]
    pub selected_option: Option<String>,
}

/// Set where presses of the buttons and menus in a bot's messages are POSTed.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/bots/{bot_id}/interactivity", operation_id = "set_bot_interactivity", tag = "bots",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("bot_id" = String, Path, format = Uuid)),
    request_body = SetInteractivityRequest, responses((status = 200, body = EventSubscriptionView)))]
pub async fn set(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, bot)): ApiPath<(WorkspaceId, UserId)>,
    ApiJson(req): ApiJson<SetInteractivityRequest>,
) -> Result<axum::Json<EventSubscriptionView>, ApiError> {
    Ok(axum::Json(
        state
            .bots
            .set_interactivity(&actor, ws, bot, req.url)
            .await?,
    ))
}

/// Press a button (or pick an option) of a bot's message: the bot that posted it is sent
/// Slack's `block_actions` payload, and answers by editing the message or replying to the
/// caller alone (over the WebSocket). A button of the Workflows bot's task notice answers the
/// task itself (as completing it does: `not_assignee`, `task_closed`, `invalid_completion`).
#[utoipa::path(post, path = "/api/v1/messages/{message_id}/actions", operation_id = "press_message_action", tag = "bots",
    security(("bearer" = [])), params(("message_id" = String, Path, format = Uuid)),
    request_body = MessageActionRequest, responses((status = 204, description = "the bot took it")))]
pub async fn press(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<MessageId>,
    ApiJson(req): ApiJson<MessageActionRequest>,
) -> Result<StatusCode, ApiError> {
    // A task notice's buttons answer the task; any other message's press goes to its bot.
    if state
        .workflows
        .press(&actor, id, &req.block_id, &req.action_id)
        .await?
    {
        return Ok(StatusCode::NO_CONTENT);
    }
    let input = ActionInput {
        block_id: req.block_id,
        action_id: req.action_id,
        selected_option: req.selected_option,
    };
    state
        .bots
        .act(&actor, id, input, &state.public_base)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Press a button (or pick an option) of an ephemeral message a bot showed the caller (within
/// thirty minutes): the bot is sent Slack's `block_actions` payload with `is_ephemeral`, and
/// its answers reach the caller alone.
#[utoipa::path(post, path = "/api/v1/ephemerals/{ephemeral_id}/actions", operation_id = "press_ephemeral_action", tag = "bots",
    security(("bearer" = [])), params(("ephemeral_id" = String, Path)),
    request_body = MessageActionRequest, responses((status = 204, description = "the bot took it")))]
pub async fn press_ephemeral(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<MessageActionRequest>,
) -> Result<StatusCode, ApiError> {
    let input = ActionInput {
        block_id: req.block_id,
        action_id: req.action_id,
        selected_option: req.selected_option,
    };
    state
        .bots
        .act_ephemeral(&actor, &id, input, &state.public_base)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
