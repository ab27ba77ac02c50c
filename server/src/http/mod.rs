//! The HTTP edge: routes, extractors, the error mapping and the middleware stack.
//!
//! Handlers parse input into domain types, call one service and shape the output; they
//! never touch storage. Every route is registered through [`api_router`], which also builds
//! the OpenAPI document, so the document and the router cannot disagree. The
//! [`guard`] middleware checks that every non-public route reached an authorization decision.

pub mod error;
pub mod extract;
pub mod forwarded;
pub mod guard;
mod openapi;
pub mod origin;
pub mod routes;
mod slack;
pub mod state;
pub(crate) mod web;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderName, Method, StatusCode};
use axum::middleware;
use axum::response::IntoResponse;
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::error::ApiError;
use self::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Routes that need no authorization decision: they are open by design (sign-in, setup,
/// invitation links, operations). Everything else must reach `rbac::authorize`.
pub const PUBLIC_ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/setup"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("GET", "/api/v1/auth/providers"),
    ("GET", "/auth/oidc/{provider}/login"),
    ("GET", "/auth/oidc/{provider}/callback"),
    ("POST", "/auth/oidc/{provider}/handoff"),
    ("POST", "/auth/oidc/{provider}/backchannel-logout"),
    ("GET", "/api/v1/invitations/{token}"),
    ("GET", "/api/v1/ws"),
    ("GET", "/api/v1/yjs/{document_id}"),
    ("POST", "/api/v1/invitations/{token}/accept"),
    ("OPTIONS", "/api/v1/channels/{channel_id}/uploads"),
    ("POST", "/api/v1/workflow-hooks/{trigger_id}"),
];

/// How long requests may take before the edge answers 503.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Every request but uploads.
    pub request: Duration,
    /// Requests that carry file contents (simple uploads, resumable upload `PATCH`es).
    pub upload: Duration,
}

impl Timeouts {
    /// The limit for a request: uploads stream for as long as their bytes take to arrive.
    fn for_request(&self, req: &Request) -> Duration {
        let path = req.uri().path();
        let upload = (req.method() == Method::PATCH && path.starts_with("/api/v1/uploads/"))
            || (req.method() == Method::POST
                && path.starts_with("/api/v1/channels/")
                && path.ends_with("/files"));
        if upload {
            self.upload
        } else {
            self.request
        }
    }
}

/// Every route with its OpenAPI description.
pub fn api_router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use routes::{
        audit, auth, bot_events, bots, breaches, break_glass, chat, commands, compliance, docs,
        ediscovery, files, health, interactions, invitations, keys, mining, policies,
        processing_record, restriction, search, setup, sso, subject_requests, uploads, users,
        workflow_dashboard, workflow_tasks, workflows, workspaces, ws,
    };
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health::index))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(setup::complete_setup))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(sso::providers))
        .routes(routes!(sso::login))
        .routes(routes!(sso::callback))
        .routes(routes!(sso::handoff))
        .routes(routes!(sso::backchannel_logout))
        .routes(routes!(users::get_me, users::update_me))
        .routes(routes!(users::change_password))
        .routes(routes!(users::my_sessions))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(users::get_user, users::rectify_user))
        .routes(routes!(users::set_system_role))
        .routes(routes!(users::set_status))
        .routes(routes!(users::export_personal_data))
        .routes(routes!(users::erase_person, users::erasure_of))
        .routes(routes!(restriction::get_own))
        .routes(routes!(restriction::start, restriction::get))
        .routes(routes!(restriction::lift))
        .routes(routes!(
            subject_requests::file_own,
            subject_requests::list_own
        ))
        .routes(routes!(subject_requests::record, subject_requests::list))
        .routes(routes!(subject_requests::get))
        .routes(routes!(subject_requests::extend))
        .routes(routes!(subject_requests::complete))
        .routes(routes!(subject_requests::refuse))
        .routes(routes!(processing_record::get))
        .routes(routes!(breaches::record, breaches::list))
        .routes(routes!(breaches::get, breaches::update))
        .routes(routes!(breaches::report))
        .routes(routes!(workflows::deploy, workflows::list))
        .routes(routes!(workflows::export))
        .routes(routes!(workflow_dashboard::dashboard))
        .routes(routes!(workflows::start))
        .routes(routes!(workflows::instances))
        .routes(routes!(workflows::instance))
        .routes(routes!(workflows::cancel))
        .routes(routes!(workflows::message))
        .routes(routes!(workflows::signal))
        .routes(routes!(workflows::incidents))
        .routes(routes!(workflows::resolve))
        .routes(routes!(workflows::tasks))
        .routes(routes!(workflows::complete))
        .routes(routes!(workflows::claim))
        .routes(routes!(workflow_tasks::reassign))
        .routes(routes!(workflow_tasks::candidates))
        .routes(routes!(workflow_tasks::comments, workflow_tasks::comment))
        .routes(routes!(
            workflows::person_routing,
            workflows::set_person_routing
        ))
        .routes(routes!(workflows::train_router, workflows::router))
        .routes(routes!(workflows::create_trigger))
        .routes(routes!(workflows::triggers))
        .routes(routes!(workflows::revoke_trigger))
        .routes(routes!(workflows::hook))
        .routes(routes!(workflows::deploy_form, workflows::forms))
        .routes(routes!(workflows::deploy_decision, workflows::decisions))
        .routes(routes!(workflows::decision_source))
        .routes(routes!(workflows::evaluate_decision))
        .routes(routes!(workflows::test_decision))
        .routes(routes!(workflows::check_expression))
        .routes(routes!(mining::export_log))
        .routes(routes!(mining::mine))
        .routes(routes!(users::list_sessions, users::revoke_sessions))
        .routes(routes!(users::revoke_session))
        .routes(routes!(workspaces::list, workspaces::create))
        .routes(routes!(workspaces::get, workspaces::update))
        .routes(routes!(workspaces::members))
        .routes(routes!(
            workspaces::set_member_role,
            workspaces::remove_member
        ))
        .routes(routes!(workspaces::roles, workspaces::create_role))
        .routes(routes!(workspaces::update_role))
        .routes(routes!(workspaces::invitations, workspaces::invite))
        .routes(routes!(workspaces::revoke_invitation))
        .routes(routes!(sso::workspace_rule, sso::set_workspace_rule))
        .routes(routes!(policies::get, policies::put))
        .routes(routes!(compliance::list, compliance::create))
        .routes(routes!(compliance::release))
        .routes(routes!(compliance::held_content))
        .routes(routes!(ediscovery::search))
        .routes(routes!(ediscovery::export))
        .routes(routes!(compliance::run_retention))
        .routes(routes!(break_glass::start))
        .routes(routes!(break_glass::read))
        .routes(routes!(break_glass::end))
        .routes(routes!(bots::list, bots::create))
        .routes(routes!(bots::get, bots::deactivate))
        .routes(routes!(bots::tokens, bots::create_token))
        .routes(routes!(bots::revoke_token))
        .routes(routes!(bots::rotate_token))
        .routes(routes!(bot_events::get, bot_events::set))
        .routes(routes!(bot_events::rotate_secret))
        .routes(routes!(bot_events::dead_letters))
        .routes(routes!(bot_events::replay))
        .routes(routes!(bots::webhooks, bots::create_webhook))
        .routes(routes!(bots::revoke_webhook))
        .routes(routes!(commands::list, commands::create))
        .routes(routes!(commands::update, commands::delete))
        .routes(routes!(commands::available))
        .routes(routes!(commands::run))
        .routes(routes!(interactions::set))
        .routes(routes!(interactions::press))
        .routes(routes!(interactions::press_ephemeral))
        .routes(routes!(chat::my_channels, chat::create_channel))
        .routes(routes!(chat::browse))
        .routes(routes!(chat::open_conversation))
        .routes(routes!(chat::get_channel, chat::update_channel))
        .routes(routes!(chat::set_archived))
        .routes(routes!(chat::join))
        .routes(routes!(chat::members, chat::add_member))
        .routes(routes!(chat::remove_member))
        .routes(routes!(chat::history, chat::post_message))
        .routes(routes!(chat::pins))
        .routes(routes!(chat::mark_read))
        .routes(routes!(chat::edit_message, chat::delete_message))
        .routes(routes!(chat::context))
        .routes(routes!(chat::thread))
        .routes(routes!(chat::versions))
        .routes(routes!(chat::react, chat::unreact))
        .routes(routes!(chat::pin, chat::unpin))
        .routes(routes!(files::list, files::upload))
        .routes(routes!(files::get, files::delete))
        .routes(routes!(files::content))
        .routes(routes!(files::thumbnail))
        .routes(routes!(files::uploads_in_progress))
        .routes(routes!(files::cancel_upload))
        .routes(routes!(uploads::options, uploads::create))
        .routes(routes!(uploads::head, uploads::patch, uploads::terminate))
        .routes(routes!(ws::connect))
        .routes(routes!(search::search))
        .routes(routes!(docs::list, docs::create))
        .routes(routes!(docs::get, docs::update, docs::delete))
        .routes(routes!(docs::grants, docs::grant))
        .routes(routes!(docs::revoke_user))
        .routes(routes!(docs::revoke_role))
        .routes(routes!(docs::export))
        .routes(routes!(docs::versions, docs::create_version))
        .routes(routes!(docs::version))
        .routes(routes!(docs::restore))
        .routes(routes!(docs::comments, docs::add_comment))
        .routes(routes!(docs::resolve_comment, docs::delete_comment))
        .routes(routes!(docs::sync))
        .routes(routes!(invitations::preview))
        .routes(routes!(invitations::accept))
        .routes(routes!(audit::events))
        .routes(routes!(audit::export))
        .routes(routes!(audit::verify))
        .routes(routes!(audit::verification))
        .routes(routes!(keys::rotate_dek))
        .routes(routes!(keys::status))
        .routes(routes!(policies::reload))
        .split_for_parts()
}

/// The whole HTTP application with its middleware stack.
pub fn app(state: AppState, body_limit: usize, timeouts: Timeouts) -> Router {
    let (router, api) = api_router();
    // Kept as its JSON (about 200 KB), written once: the document as built is maps of schemas
    // taking about 2 MB for the life of the process, and cloning it for every request cost
    // more than sending it.
    let api = serde_json::to_vec(&api)
        .map(axum::body::Bytes::from)
        .map_err(|e| std::sync::Arc::<str>::from(e.to_string()));
    let router = router
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let api = api.clone();
                async move {
                    match api {
                        Ok(json) => {
                            ([(header::CONTENT_TYPE, "application/json")], json).into_response()
                        }
                        Err(e) => ApiError::internal(&e).into_response(),
                    }
                }
            }),
        )
        // Slack's protocol, not Concord's: outside the OpenAPI document (see `slack`).
        .merge(slack::router())
        .fallback(web::fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::map_response(web::document_headers))
        .layer(middleware::from_fn(guard::guard))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state);

    let edge = ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            // Browsers' WebSocket connections carry their access token here.
            header::SEC_WEBSOCKET_PROTOCOL,
        ]))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(guard::make_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(CatchPanicLayer::custom(guard::panic_response))
        .layer(middleware::from_fn(
            move |req: Request, next: middleware::Next| deadline(timeouts, req, next),
        ));
    router.layer(edge)
}

/// Answers 503 if the response (not its streamed body) takes longer than the request's limit.
async fn deadline(
    timeouts: Timeouts,
    req: Request,
    next: middleware::Next,
) -> axum::response::Response {
    let limit = timeouts.for_request(&req);
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long",
        )
        .into_response(),
    }
}

pub(crate) async fn not_found(req: Request) -> impl IntoResponse {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        format!("no route for {} {}", req.method(), req.uri().path()),
    )
}

async fn method_not_allowed(method: Method) -> impl IntoResponse {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed here"),
    )
}

#[cfg(test)]
mod tests {
    /// The hub's frames are components of the API document, so clients generate their types.
    #[test]
    fn the_hub_frames_are_in_the_openapi_components() {
        let doc = serde_json::to_value(super::api_router().1).unwrap();
        let schemas = &doc["components"]["schemas"];
        for name in [
            "ServerFrame",
            "LiveEvent",
            "ClientFrame",
            "PresenceStatus",
            "MessageUpdate",
            "ChannelUpdate",
            "MessageView",
        ] {
            assert!(schemas.get(name).is_some(), "{name} missing");
        }
        if std::env::var_os("CONCORD_SHOW_FRAMES").is_some() {
            for name in ["ServerFrame", "LiveEvent"] {
                eprintln!("{}", serde_json::to_string_pretty(&schemas[name]).unwrap());
            }
        }
    }
}
