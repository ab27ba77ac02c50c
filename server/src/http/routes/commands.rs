//! Slash commands: administrators give bots commands; members list the commands of their
//! workspace and run one in a channel.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use crate::bots::{BotCommandView, CommandName, CommandReplyView, CommandSpec, SlashCommandView};
use crate::domain::{BotCommandId, ChannelId, UserId, WorkspaceId};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, Auth};
use crate::http::state::AppState;

/// A command for a bot, or its new settings.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"command": "/deploy", "url": "https://bot.example.org/slack/commands", "description": "Deploy a service", "usage_hint": "[service] [environment]"}))]
pub struct BotCommandRequest {
    /// What people type (`/deploy`); ignored when changing a command.
    #[serde(default)]
    pub command: Option<String>,
    /// Where invocations are POSTed, signed with the bot's signing secret.
    pub url: String,
    /// What it does, shown as people type.
    #[serde(default)]
    pub description: String,
    /// Its arguments, shown as people type.
    #[serde(default)]
    pub usage_hint: String,
}

impl BotCommandRequest {
    fn spec(self) -> CommandSpec {
        CommandSpec {
            url: self.url,
            description: self.description,
            usage_hint: self.usage_hint,
        }
    }
}

/// A command typed in a channel.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"command": "/deploy", "text": "api production"}))]
pub struct RunCommandRequest {
    /// The command, with its `/`.
    pub command: String,
    /// What follows it.
    #[serde(default)]
    pub text: String,
}

/// A bot's slash commands, with their URLs.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/bots/{bot_id}/commands", operation_id = "list_bot_commands", tag = "bots",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("bot_id" = String, Path, format = Uuid)),
    responses((status = 200, body = [BotCommandView])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, bot)): ApiPath<(WorkspaceId, UserId)>,
) -> Result<axum::Json<Vec<BotCommandView>>, ApiError> {
    Ok(axum::Json(state.bots.commands_of(&actor, ws, bot).await?))
}

/// Give a bot a slash command (the bot needs a signing secret first).
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/bots/{bot_id}/commands", operation_id = "create_bot_command", tag = "bots",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("bot_id" = String, Path, format = Uuid)),
    request_body = BotCommandRequest, responses((status = 201, body = BotCommandView)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, bot)): ApiPath<(WorkspaceId, UserId)>,
    ApiJson(req): ApiJson<BotCommandRequest>,
) -> Result<(StatusCode, axum::Json<BotCommandView>), ApiError> {
    let name = CommandName::parse("command", req.command.as_deref().unwrap_or(""))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(
            state
                .bots
                .create_command(&actor, ws, bot, name, req.spec())
                .await?,
        ),
    ))
}

/// Change a slash command's URL, description or usage hint.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/commands/{command_id}", operation_id = "update_bot_command", tag = "bots",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("command_id" = String, Path, format = Uuid)),
    request_body = BotCommandRequest, responses((status = 200, body = BotCommandView)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, id)): ApiPath<(WorkspaceId, BotCommandId)>,
    ApiJson(req): ApiJson<BotCommandRequest>,
) -> Result<axum::Json<BotCommandView>, ApiError> {
    Ok(axum::Json(
        state
            .bots
            .update_command(&actor, ws, id, req.spec())
            .await?,
    ))
}

/// Delete a slash command.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/commands/{command_id}", operation_id = "delete_bot_command", tag = "bots",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("command_id" = String, Path, format = Uuid)),
    responses((status = 204)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, id)): ApiPath<(WorkspaceId, BotCommandId)>,
) -> Result<StatusCode, ApiError> {
    state.bots.delete_command(&actor, ws, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The slash commands members of a workspace can type.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/commands", operation_id = "list_commands", tag = "bots",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    responses((status = 200, body = [SlashCommandView])))]
pub async fn available(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
) -> Result<axum::Json<Vec<SlashCommandView>>, ApiError> {
    Ok(axum::Json(state.bots.slash_commands(&actor, ws).await?))
}

/// Run a slash command in a channel: its bot's immediate answer (an ephemeral one also
/// reaches the caller's open connections; later answers come over the WebSocket).
#[utoipa::path(post, path = "/api/v1/channels/{channel_id}/commands", operation_id = "run_command", tag = "bots",
    security(("bearer" = [])), params(("channel_id" = String, Path, format = Uuid)),
    request_body = RunCommandRequest, responses((status = 200, body = CommandReplyView)))]
pub async fn run(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(channel): ApiPath<ChannelId>,
    ApiJson(req): ApiJson<RunCommandRequest>,
) -> Result<axum::Json<CommandReplyView>, ApiError> {
    let name = CommandName::parse("command", &req.command)?;
    let reply = state
        .bots
        .invoke(&actor, channel, name, req.text, &state.public_base)
        .await?;
    if let Some(view) = reply.ephemeral.clone() {
        state
            .hub
            .ephemeral(view)
            .await
            .map_err(crate::error::Error::from)?;
    }
    Ok(axum::Json(reply.view()))
}
