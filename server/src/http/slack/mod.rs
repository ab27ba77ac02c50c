//! The Slack-compatible edge: the Web API subset under `/api/slack/{method}` (the base URL a
//! Slack SDK takes as `slackApiUrl` is `<public url>/api/slack/`), incoming webhooks at
//! `/hooks/{secret}` and the response URLs slash commands hand out at
//! `/hooks/responses/{secret}`.
//!
//! These routes speak Slack's protocol, not Concord's: arguments come as a form or JSON
//! (`request.rs`), answers are `{"ok": true, ...}` or `{"ok": false, "error": "<code>"}`
//! with status 200 for method errors (`error.rs`, the one mapping from service errors to
//! Slack's codes), and objects have Slack's shapes (`objects.rs`, including how a message's
//! `ts` maps to its channel position). They are outside the OpenAPI document, which
//! describes Concord's own API, but behind the same edge: every call is authenticated by a
//! bot token ([`crate::bots::BotService::authenticate`]) sent as `Authorization: Bearer`, as
//! Slack's SDKs send it (a token in the query string is refused, one in the body ignored), before
//! its body is read; then rate limited per token and method
//! tier, checked for the method's scope (`rbac::authorize_scope`) and then served by the same
//! services (chat, workspaces) that authorize and audit what the bot does. A call refused
//! before an actor exists records a denial, so the guard sees a decision for every answer.

mod error;
mod hooks;
mod methods;
mod objects;
mod request;
mod responses;

use axum::extract::{Path, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::Value;

use self::error::SlackError;
use self::request::Args;
use super::extract::Client;
use super::state::AppState;
use crate::bots::Tier;
use crate::domain::WorkspaceId;
use crate::error::Error;
use crate::rbac::{self, Actor, BotScope, BotScopes, DecisionSlot, Principal};

/// The Slack-compatible routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/slack/{method}", post(call).get(call))
        .route("/hooks/{secret}", post(hooks::post))
        .route("/hooks/responses/{secret}", post(responses::post))
}

/// The scope a method needs (none: any valid token) and its rate-limit tier.
fn method_spec(method: &str) -> Option<(Option<BotScope>, Tier)> {
    use BotScope::*;
    Some(match method {
        "auth.test" => (None, Tier::Tier4),
        "chat.postMessage" => (Some(ChatWrite), Tier::Posting),
        "chat.postEphemeral" => (Some(ChatWrite), Tier::Tier4),
        "chat.update" | "chat.delete" => (Some(ChatWrite), Tier::Tier3),
        "conversations.list" => (Some(ChannelsRead), Tier::Tier2),
        "conversations.info" => (Some(ChannelsRead), Tier::Tier4),
        "conversations.members" => (Some(ChannelsRead), Tier::Tier4),
        "conversations.history" | "conversations.replies" => (Some(ChannelsHistory), Tier::Tier3),
        "conversations.join" => (Some(ChannelsJoin), Tier::Tier3),
        "reactions.add" | "reactions.remove" => (Some(ReactionsWrite), Tier::Tier3),
        "users.info" => (Some(UsersRead), Tier::Tier4),
        "users.list" => (Some(UsersRead), Tier::Tier2),
        _ => return None,
    })
}

/// One authenticated call: who, with what arguments, in which workspace.
pub(super) struct Call {
    state: AppState,
    actor: Actor,
    args: Args,
    workspace: WorkspaceId,
    scopes: BotScopes,
}

impl Call {
    /// A service error in Slack's terms.
    fn fail(&self, err: Error) -> SlackError {
        SlackError::from_service(err, self.scopes)
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

async fn call(
    State(state): State<AppState>,
    Path(method): Path<String>,
    Client(client): Client,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let slot = parts
        .extensions
        .get::<DecisionSlot>()
        .cloned()
        .unwrap_or_default();
    let refuse = |err: SlackError| {
        rbac::refuse_unauthenticated(&slot);
        err.into_response()
    };
    // A token in a URL ends up in proxies' and browsers' logs and histories: refused even
    // beside a good header, so a client sending one is told rather than quietly served.
    if request::query_has_token(parts.uri.query()) {
        return refuse(SlackError::TokenInQuery);
    }
    // The token is taken from the header only, and checked before the body is read: nothing
    // of an unauthenticated call is buffered or parsed.
    let Some(token) = bearer(&parts.headers) else {
        return refuse(SlackError::NotAuthed);
    };
    let actor = match state.bots.authenticate(&token, client.ip).await {
        Ok(actor) => actor.recording_into(slot.clone()),
        Err(e) => return refuse(SlackError::from_service(e, BotScopes::default())),
    };
    let Principal::Bot {
        via,
        workspace_id,
        scopes,
        ..
    } = actor.principal.clone()
    else {
        return refuse(SlackError::Internal);
    };
    let Some((scope, tier)) = method_spec(&method) else {
        return refuse(SlackError::Code("unknown_method"));
    };
    if let Err(seconds) = state.bots.rate_limit(via, tier) {
        return refuse(SlackError::RateLimited(seconds));
    }
    match scope {
        Some(needed) => {
            if let Err(e) = rbac::authorize_scope(&actor, needed) {
                state.bots.record_missing_scope(&actor, needed).await;
                let refused = SlackError::from_service(e.into(), scopes).into_response();
                return with_scopes(refused, scopes, scope);
            }
        }
        None => rbac::allow_own_identity(&actor),
    }
    let args = match Args::read(&parts.headers, parts.uri.query(), body).await {
        Ok(args) => args,
        Err(e) => return with_scopes(e.into_response(), scopes, scope),
    };
    let call = Call {
        state,
        actor,
        args,
        workspace: workspace_id,
        scopes,
    };
    let answer = match method.as_str() {
        "auth.test" => methods::auth_test(&call).await,
        "chat.postMessage" => methods::post_message(&call).await,
        "chat.postEphemeral" => methods::post_ephemeral(&call).await,
        "chat.update" => methods::update_message(&call).await,
        "chat.delete" => methods::delete_message(&call).await,
        "conversations.list" => methods::list_conversations(&call).await,
        "conversations.info" => methods::conversation_info(&call).await,
        "conversations.members" => methods::conversation_members(&call).await,
        "conversations.history" => methods::history(&call).await,
        "conversations.replies" => methods::replies(&call).await,
        "conversations.join" => methods::join(&call).await,
        "reactions.add" => methods::react(&call, true).await,
        "reactions.remove" => methods::react(&call, false).await,
        "users.info" => methods::user_info(&call).await,
        "users.list" => methods::list_users(&call).await,
        _ => Err(SlackError::Code("unknown_method")),
    };
    let response = match answer {
        Ok(mut body) => {
            body["ok"] = Value::Bool(true);
            axum::Json(body).into_response()
        }
        Err(e) => e.into_response(),
    };
    with_scopes(response, scopes, scope)
}

/// Slack's scope headers on an authenticated call's answer: what the token holds
/// (`X-OAuth-Scopes`) and what the method accepts (`X-Accepted-OAuth-Scopes`); Slack's SDKs
/// report them in `response_metadata`.
fn with_scopes(mut response: Response, held: BotScopes, accepted: Option<BotScope>) -> Response {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&held.to_comma_list()) {
        headers.insert("x-oauth-scopes", value);
    }
    if let Some(scope) = accepted {
        headers.insert(
            "x-accepted-oauth-scopes",
            HeaderValue::from_static(scope.as_str()),
        );
    }
    response
}
