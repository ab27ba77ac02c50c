//! `POST /hooks/responses/{secret}`: a slash command's `response_url`. The bot answers with
//! Slack's JSON (`text`, `blocks`, `attachments`, `response_type`, `replace_original`,
//! `delete_original`), or a form whose `payload` field holds it, up to five times within
//! thirty minutes. The answer is Slack's: `{"ok": true}`, or a status with
//! `{"ok": false, "error": "<code>"}` (`expired_url`, `invalid_payload`, `no_text`,
//! `request_too_large`, `bot_deactivated`).

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::error::SlackError;
use super::request::Args;
use crate::bots::CommandAnswer;
use crate::error::Error;
use crate::http::state::AppState;
use crate::rbac::{self, DecisionSlot};

fn answer(status: StatusCode, error: &str) -> Response {
    (status, axum::Json(json!({ "ok": false, "error": error }))).into_response()
}

fn refusal(err: Error) -> Response {
    match err {
        Error::Gone { code, .. } => answer(StatusCode::NOT_FOUND, code),
        Error::NotFound(_) => answer(StatusCode::NOT_FOUND, "channel_not_found"),
        Error::Refused { code, .. } => answer(StatusCode::BAD_REQUEST, code),
        Error::Invalid(_) => answer(StatusCode::BAD_REQUEST, "invalid_payload"),
        Error::Forbidden(_) | Error::MissingScope { .. } => {
            answer(StatusCode::FORBIDDEN, "action_prohibited")
        }
        Error::Store(crate::store::StoreError::ShuttingDown) => {
            answer(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable")
        }
        other => {
            tracing::error!(error = %other, "a response URL answer failed");
            answer(StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
        }
    }
}

/// Takes one answer through a response URL.
pub async fn post(
    State(state): State<AppState>,
    Path(secret): Path<String>,
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
        Err(SlackError::TooLarge) => {
            return refuse(answer(StatusCode::PAYLOAD_TOO_LARGE, "request_too_large"))
        }
        Err(_) => return refuse(answer(StatusCode::BAD_REQUEST, "invalid_payload")),
    };
    let payload: Value = match args.json("payload") {
        Ok(Some(payload)) => payload,
        Ok(None) => args.into_value(),
        Err(_) => return refuse(answer(StatusCode::BAD_REQUEST, "invalid_payload")),
    };
    if !payload.is_object() {
        return refuse(answer(StatusCode::BAD_REQUEST, "invalid_payload"));
    }
    // The URL's secret is the credential: the bot it answers for acts, and its decisions
    // are this request's.
    let reply = match state
        .bots
        .respond(&secret, CommandAnswer::from_json(&payload), slot.clone())
        .await
    {
        Ok(reply) => reply,
        Err(e @ Error::Gone { .. }) => return refuse(refusal(e)),
        Err(e) => return refusal(e),
    };
    if let Some(view) = reply.ephemeral {
        if let Err(e) = state.hub.ephemeral(view).await {
            return refusal(e.into());
        }
    }
    axum::Json(json!({ "ok": true })).into_response()
}
