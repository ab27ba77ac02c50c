//! Bots, their tokens and incoming webhooks, managed by workspace administrators.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use crate::bots::{AvatarUrl, BotTokenView, BotView, CreatedBotToken, CreatedWebhook, WebhookView};
use crate::domain::{
    BotTokenId, ChannelId, DisplayName, ParseError, UserId, WebhookId, WorkspaceId,
};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, Auth};
use crate::http::state::AppState;
use crate::rbac::BotScopes;

/// A new bot.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "CI", "avatar_url": "https://ci.example.org/logo.png"}))]
pub struct CreateBotRequest {
    /// Name shown with its messages.
    pub name: String,
    /// Picture shown with its messages (an http(s) URL).
    #[serde(default)]
    pub avatar_url: Option<String>,
}

/// A new token for a bot.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"scopes": ["chat:write", "channels:read", "channels:history"]}))]
pub struct CreateTokenRequest {
    /// Scopes to grant (Slack's names: `chat:write`, `channels:read`, `channels:history`,
    /// `channels:join`, `reactions:write`, `users:read`, `commands`, `files:write`,
    /// `incoming-webhook`).
    pub scopes: Vec<String>,
}

/// A new incoming webhook.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"channel_id": "01890a5d-ac96-774b-bcce-b302099a8057", "bot_id": "01890a5d-ac96-774b-bcce-b302099a8058"}))]
pub struct CreateWebhookRequest {
    /// The channel it posts into (the bot is added to it).
    pub channel_id: ChannelId,
    /// The bot it posts as.
    pub bot_id: UserId,
}

/// A workspace's bots.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/bots", operation_id = "list_bots", tag = "bots",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    responses((status = 200, body = [BotView])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
) -> Result<axum::Json<Vec<BotView>>, ApiError> {
    Ok(axum::Json(state.bots.list(&actor, ws).await?))
}

/// Create a bot: an account with the `bot` role in the workspace.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/bots", operation_id = "create_bot", tag = "bots",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    request_body = CreateBotRequest, responses((status = 201, body = BotView)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
    ApiJson(req): ApiJson<CreateBotRequest>,
) -> Result<(StatusCode, axum::Json<BotView>), ApiError> {
    let name = DisplayName::parse("name", &req.name)?;
    let avatar = req
        .avatar_url
        .as_deref()
        .map(|u| AvatarUrl::parse("avatar_url", u))
        .transpose()?;
    Ok((
        StatusCode::CREATED,
        axum::Json(state.bots.create(&actor, ws, name, avatar).await?),
    ))
}

/// One bot.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/bots/{bot_id}", operation_id = "get_bot", tag = "bots",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("bot_id" = String, Path, format = Uuid)),
    responses((status = 200, body = BotView)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, bot)): ApiPath<(WorkspaceId, UserId)>,
) -> Result<axum::Json<BotView>, ApiError> {
    Ok(axum::Json(state.bots.get(&actor, ws, bot).await?))
}

/// Deactivate a bot: its tokens are revoked and its webhooks stop; its messages stay.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/bots/{bot_id}", operation_id = "deactivate_bot", tag = "bots",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("bot_id" = String, Path, format = Uuid)),
    responses((status = 200, body = BotView)))]
pub async fn deactivate(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, bot)): ApiPath<(WorkspaceId, UserId)>,
) -> Result<axum::Json<BotView>, ApiError> {
    Ok(axum::Json(state.bots.deactivate(&actor, ws, bot).await?))
}

/// A bot's tokens, without their secrets.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/bots/{bot_id}/tokens", operation_id = "list_bot_tokens", tag = "bots",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("bot_id" = String, Path, format = Uuid)),
    responses((status = 200, body = [BotTokenView])))]
pub async fn tokens(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, bot)): ApiPath<(WorkspaceId, UserId)>,
) -> Result<axum::Json<Vec<BotTokenView>>, ApiError> {
    Ok(axum::Json(state.bots.tokens(&actor, ws, bot).await?))
}

/// Issue a token for a bot; its secret is shown in this answer only.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/bots/{bot_id}/tokens", operation_id = "create_bot_token", tag = "bots",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("bot_id" = String, Path, format = Uuid)),
    request_body = CreateTokenRequest, responses((status = 201, body = CreatedBotToken)))]
pub async fn create_token(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, bot)): ApiPath<(WorkspaceId, UserId)>,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, axum::Json<CreatedBotToken>), ApiError> {
    let scopes = BotScopes::parse(req.scopes.iter().map(String::as_str))
        .map_err(|name| ParseError::new("scopes", format!("unknown scope {name:?}")))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(state.bots.create_token(&actor, ws, bot, scopes).await?),
    ))
}

/// Revoke a bot token.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/bots/{bot_id}/tokens/{token_id}", operation_id = "revoke_bot_token", tag = "bots",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("bot_id" = String, Path, format = Uuid), ("token_id" = String, Path, format = Uuid)),
    responses((status = 204, description = "revoked")))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, bot, token)): ApiPath<(WorkspaceId, UserId, BotTokenId)>,
) -> Result<StatusCode, ApiError> {
    state.bots.revoke_token(&actor, ws, bot, token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotate a bot token: it is revoked and a new one with its scopes is issued (shown once).
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/bots/{bot_id}/tokens/{token_id}/rotate", operation_id = "rotate_bot_token", tag = "bots",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("bot_id" = String, Path, format = Uuid), ("token_id" = String, Path, format = Uuid)),
    responses((status = 201, body = CreatedBotToken)))]
pub async fn rotate_token(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, bot, token)): ApiPath<(WorkspaceId, UserId, BotTokenId)>,
) -> Result<(StatusCode, axum::Json<CreatedBotToken>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.bots.rotate_token(&actor, ws, bot, token).await?),
    ))
}

/// A workspace's incoming webhooks, without their URLs.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/webhooks", operation_id = "list_webhooks", tag = "bots",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    responses((status = 200, body = [WebhookView])))]
pub async fn webhooks(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
) -> Result<axum::Json<Vec<WebhookView>>, ApiError> {
    Ok(axum::Json(state.bots.webhooks(&actor, ws).await?))
}

/// Create an incoming webhook posting into a channel as a bot; its URL is shown once.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/webhooks", operation_id = "create_webhook", tag = "bots",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    request_body = CreateWebhookRequest, responses((status = 201, body = CreatedWebhook)))]
pub async fn create_webhook(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(ws): ApiPath<WorkspaceId>,
    ApiJson(req): ApiJson<CreateWebhookRequest>,
) -> Result<(StatusCode, axum::Json<CreatedWebhook>), ApiError> {
    let issued = state
        .bots
        .create_webhook(&actor, ws, req.channel_id, req.bot_id)
        .await?;
    let base = state.public_base.trim_end_matches('/');
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedWebhook {
            url: format!("{base}/hooks/{}", issued.secret),
            view: issued.view,
        }),
    ))
}

/// Revoke an incoming webhook.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/webhooks/{webhook_id}", operation_id = "revoke_webhook", tag = "bots",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("webhook_id" = String, Path, format = Uuid)),
    responses((status = 204, description = "revoked")))]
pub async fn revoke_webhook(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, id)): ApiPath<(WorkspaceId, WebhookId)>,
) -> Result<StatusCode, ApiError> {
    state.bots.revoke_webhook(&actor, ws, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
