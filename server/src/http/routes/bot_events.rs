//! A bot's events out: its signing secret, request URL and event types, and the deliveries
//! parked after their last retry; for workspace administrators.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use crate::bots::{CreatedSigningSecret, EventDeliveryView, EventSubscriptionView, EventTypes};
use crate::domain::{EventDeliveryId, UserId, WorkspaceId};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, Auth};
use crate::http::state::AppState;

/// Where a bot's events go and which.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"request_url": "https://bot.example.org/slack/events", "event_types": ["message", "app_mention", "reaction_added"]}))]
pub struct SetEventSubscriptionRequest {
    /// Where to POST events; it must answer Slack's `url_verification` challenge first.
    /// `null` stops the bot's events.
    pub request_url: Option<String>,
    /// Slack event types: `message` (or `message.channels`, `message.groups`, `message.im`,
    /// `message.mpim`), `app_mention`, `reaction_added`, `reaction_removed`,
    /// `member_joined_channel`, `member_left_channel`, `channel_created`.
    #[serde(default)]
    pub event_types: Vec<String>,
}

/// A bot's event subscription (never its signing secret).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/bots/{bot_id}/events", operation_id = "get_bot_events", tag = "bots",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("bot_id" = String, Path, format = Uuid)),
    responses((status = 200, body = EventSubscriptionView)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, bot)): ApiPath<(WorkspaceId, UserId)>,
) -> Result<axum::Json<EventSubscriptionView>, ApiError> {
    Ok(axum::Json(
        state.bots.event_subscription(&actor, ws, bot).await?,
    ))
}

/// Set where a bot's events go (after Slack's `url_verification` handshake) and which.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/bots/{bot_id}/events", operation_id = "set_bot_events", tag = "bots",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("bot_id" = String, Path, format = Uuid)),
    request_body = SetEventSubscriptionRequest, responses((status = 200, body = EventSubscriptionView)))]
pub async fn set(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, bot)): ApiPath<(WorkspaceId, UserId)>,
    ApiJson(req): ApiJson<SetEventSubscriptionRequest>,
) -> Result<axum::Json<EventSubscriptionView>, ApiError> {
    let types = EventTypes::parse("event_types", req.event_types.iter().map(String::as_str))?;
    Ok(axum::Json(
        state
            .bots
            .set_event_subscription(&actor, ws, bot, req.request_url, types)
            .await?,
    ))
}

/// Make a bot a new signing secret (replacing any previous one); shown in this answer only.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/bots/{bot_id}/signing-secret", operation_id = "rotate_bot_signing_secret", tag = "bots",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("bot_id" = String, Path, format = Uuid)),
    responses((status = 201, body = CreatedSigningSecret)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, bot)): ApiPath<(WorkspaceId, UserId)>,
) -> Result<(StatusCode, axum::Json<CreatedSigningSecret>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.bots.rotate_signing_secret(&actor, ws, bot).await?),
    ))
}

/// A bot's event deliveries parked after their last retry.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/bots/{bot_id}/dead-letters", operation_id = "list_bot_dead_letters", tag = "bots",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("bot_id" = String, Path, format = Uuid)),
    responses((status = 200, body = [EventDeliveryView])))]
pub async fn dead_letters(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, bot)): ApiPath<(WorkspaceId, UserId)>,
) -> Result<axum::Json<Vec<EventDeliveryView>>, ApiError> {
    Ok(axum::Json(state.bots.dead_letters(&actor, ws, bot).await?))
}

/// Send a parked delivery again (same `event_id`), with its retries counted afresh.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/bots/{bot_id}/dead-letters/{delivery_id}/replay", operation_id = "replay_bot_dead_letter", tag = "bots",
    security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid), ("bot_id" = String, Path, format = Uuid), ("delivery_id" = String, Path, format = Uuid)),
    responses((status = 202, description = "queued again")))]
pub async fn replay(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((ws, bot, id)): ApiPath<(WorkspaceId, UserId, EventDeliveryId)>,
) -> Result<StatusCode, ApiError> {
    state.bots.replay_dead_letter(&actor, ws, bot, id).await?;
    Ok(StatusCode::ACCEPTED)
}
