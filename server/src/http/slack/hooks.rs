//! `POST /hooks/{secret}`: Slack's incoming webhooks. The body is Slack's payload (`text`,
//! `blocks`, `attachments`) as JSON, or a form whose `payload` field holds it; the answer is
//! Slack's: `200 ok` as plain text, or a status with an error code as plain text
//! (`invalid_payload`, `no_text`, `no_service`, `channel_is_archived`, `action_prohibited`,
//! `request_too_large`, `rate_limited`).

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::request::Args;
use crate::bots::{SlackContent, Tier};
use crate::error::Error;
use crate::http::extract::Client;
use crate::http::state::AppState;
use crate::rbac::{self, BotScope, DecisionSlot, Principal};

fn answer(status: StatusCode, code: &'static str) -> Response {
    (status, code).into_response()
}

fn refusal(err: Error) -> Response {
    match err {
        Error::NotFound(_) => answer(StatusCode::NOT_FOUND, "no_service"),
        Error::Gone { .. } => answer(StatusCode::GONE, "no_active_hooks"),
        Error::Refused { code, .. } => match code {
            "channel_archived" => answer(StatusCode::GONE, "channel_is_archived"),
            "not_in_channel" => answer(StatusCode::FORBIDDEN, "action_prohibited"),
            other => answer(StatusCode::BAD_REQUEST, other),
        },
        Error::Invalid(_) => answer(StatusCode::BAD_REQUEST, "invalid_payload"),
        Error::Forbidden(_) | Error::MissingScope { .. } => {
            answer(StatusCode::FORBIDDEN, "action_prohibited")
        }
        other => {
            tracing::error!(error = %other, "incoming webhook failed");
            answer(StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
        }
    }
}

/// Posts a webhook's payload into its channel as its bot.
pub async fn post(
    State(state): State<AppState>,
    Path(secret): Path<String>,
    Client(client): Client,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let slot = parts
        .extensions
        .get::<DecisionSlot>()
        .cloned()
        .unwrap_or_default();
    let refuse = |response: Response| {
        rbac::refuse_unauthenticated(&slot);
        response
    };
    let args = match Args::read(&parts.headers, None, body).await {
        Ok(args) => args,
        Err(super::error::SlackError::TooLarge) => {
            return refuse(answer(StatusCode::PAYLOAD_TOO_LARGE, "request_too_large"))
        }
        Err(_) => return refuse(answer(StatusCode::BAD_REQUEST, "invalid_payload")),
    };
    // A form post carries the payload as JSON in its `payload` field.
    let args = match args.json("payload") {
        Ok(Some(payload)) => match Args::from_json(payload) {
            Some(inner) => inner,
            None => return refuse(answer(StatusCode::BAD_REQUEST, "invalid_payload")),
        },
        Ok(None) => args,
        Err(_) => return refuse(answer(StatusCode::BAD_REQUEST, "invalid_payload")),
    };
    let (actor, channel) = match state.bots.webhook_actor(&secret, client.ip).await {
        Ok((actor, channel)) => (actor.recording_into(slot.clone()), channel),
        Err(e) => return refuse(refusal(e)),
    };
    if let Principal::Bot { via, .. } = actor.principal {
        if let Err(seconds) = state.bots.rate_limit(via, Tier::Posting) {
            let mut limited = answer(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
            limited.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
            return refuse(limited);
        }
    }
    if let Err(e) = rbac::authorize_scope(&actor, BotScope::IncomingWebhook) {
        state
            .bots
            .record_missing_scope(&actor, BotScope::IncomingWebhook)
            .await;
        return refusal(e.into());
    }
    let content = match (args.json("blocks"), args.json("attachments")) {
        (Ok(blocks), Ok(attachments)) => SlackContent {
            text: args.str("text"),
            blocks,
            attachments,
        },
        _ => return answer(StatusCode::BAD_REQUEST, "invalid_payload"),
    };
    let (body, blocks) = match content.to_parts() {
        Ok(parts) => parts,
        Err(e) => return refusal(e),
    };
    match state
        .chat
        .post_with_blocks(&actor, channel, body, blocks, None, None)
        .await
    {
        Ok(_) => answer(StatusCode::OK, "ok"),
        Err(e) => refusal(e),
    }
}
