//! Single sign-on: the provider list, the redirect to a provider and its callback,
//! back-channel logout, and the workspace rule that requires single sign-on.

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::header::{ACCEPT, CACHE_CONTROL, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;

use crate::auth::TokenPair;
use crate::domain::WorkspaceId;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, Auth, Client};
use crate::http::state::AppState;
use crate::sso::{CallbackParams, Handoff, ProviderView, WorkspaceSsoView, BROWSER_COOKIE};

/// The web client redeeming a browser sign-in's hand-off code.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "hand-off-code-from-the-url-fragment"}))]
pub struct HandoffRequest {
    /// The one-time code the callback put in the `/sso/callback` URL fragment.
    pub code: String,
}

/// A back-channel logout request from a provider.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct BackchannelLogoutForm {
    /// The provider's signed logout token (a JWT).
    pub logout_token: String,
}

/// Whether a workspace requires single sign-on.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"required": true}))]
pub struct WorkspaceSsoRequest {
    /// Require members to sign in through single sign-on (system admins keep their password).
    pub required: bool,
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The identity providers people may sign in with.
#[utoipa::path(get, path = "/api/v1/auth/providers", tag = "auth",
    responses((status = 200, body = [ProviderView])))]
pub async fn providers(State(state): State<AppState>) -> axum::Json<Vec<ProviderView>> {
    axum::Json(state.sso.providers())
}

/// Begin signing in at an identity provider: redirects there.
#[utoipa::path(get, path = "/auth/oidc/{provider}/login", operation_id = "sso_login", tag = "auth",
    params(("provider" = String, Path, description = "provider id")),
    responses((status = 303, description = "to the provider's sign-in page"),
        (status = 404, description = "no such provider"),
        (status = 502, description = "the provider cannot be reached"),
        (status = 503, description = "`sso_busy`: too many sign-ins in progress, or begun from this client's network")))]
pub async fn login(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    Client(client): Client,
) -> Result<Response, ApiError> {
    let redirect = state.sso.start_login(&provider, client.ip).await?;
    let cookie = browser_cookie(
        &state,
        &provider,
        &redirect.browser_token,
        redirect.max_age_seconds,
    )?;
    let location = HeaderValue::from_str(&redirect.url).map_err(|e| ApiError::internal(&e))?;
    Ok(no_store(
        (
            StatusCode::SEE_OTHER,
            [(LOCATION, location), (SET_COOKIE, cookie)],
        )
            .into_response(),
    ))
}

/// The provider's redirect back after sign-in: starts a Concord session. API clients get the
/// token pair as JSON; a browser (`Accept: text/html`) is redirected to the web client's
/// `/sso/callback` with a one-time hand-off code (and the provider id) in the URL fragment and
/// a cookie binding the code to this browser, or with `error` and `message` on refusal. The web
/// client redeems the code at `POST /auth/oidc/{provider}/handoff`.
#[utoipa::path(get, path = "/auth/oidc/{provider}/callback", tag = "auth",
    params(("provider" = String, Path, description = "provider id"), CallbackParams),
    responses((status = 200, body = TokenPair),
        (status = 303, description = "a browser: on to /sso/callback with a hand-off code"),
        (status = 401, description = "refused: state mismatch, replayed code, wrong nonce, expired token, wrong audience..."),
        (status = 502, description = "the provider failed")))]
pub async fn callback(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    ApiQuery(params): ApiQuery<CallbackParams>,
    Client(client): Client,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.sso.check_provider(&provider)?;
    let browser = cookie(&headers, BROWSER_COOKIE);
    let outcome = state.sso.callback(&provider, params, browser, client).await;
    // The pending sign-in is used up either way; so is its cookie (a browser hand-off sets a
    // new one).
    let mut set_cookie = browser_cookie(&state, &provider, "", 0)?;
    let response = if wants_html(&headers) {
        let outcome = match outcome {
            Ok(pair) => state.sso.hand_off(&provider, pair).await,
            Err(err) => Err(err),
        };
        if let Ok(handoff) = &outcome {
            set_cookie = browser_cookie(
                &state,
                &provider,
                &handoff.browser_token,
                handoff.max_age_seconds,
            )?;
        }
        browser_landing(&provider, outcome)?
    } else {
        match outcome {
            Ok(pair) => axum::Json(pair).into_response(),
            Err(err) => ApiError::from(err).into_response(),
        }
    };
    let mut response = response;
    response.headers_mut().append(SET_COOKIE, set_cookie);
    Ok(no_store(response))
}

/// The cookie binding a sign-in (and then its hand-off) to the browser; `max_age` 0 clears it.
fn browser_cookie(
    state: &AppState,
    provider: &str,
    value: &str,
    max_age: i64,
) -> Result<HeaderValue, ApiError> {
    let secure = if state.sso.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{BROWSER_COOKIE}={value}; Path=/auth/oidc/{provider}/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    ))
    .map_err(|e| ApiError::internal(&e))
}

/// The web client redeems the hand-off code of a browser sign-in for the token pair. Only the
/// browser that began the sign-in can: its cookie must come with the code. A code is good once,
/// for two minutes.
#[utoipa::path(post, path = "/auth/oidc/{provider}/handoff", tag = "auth",
    params(("provider" = String, Path, description = "provider id")),
    request_body = HandoffRequest,
    responses((status = 200, body = TokenPair),
        (status = 401, description = "sso_handoff_invalid (unknown, used, or begun in another browser) or sso_handoff_expired"),
        (status = 404, description = "no such provider")))]
pub async fn handoff(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<HandoffRequest>,
) -> Result<Response, ApiError> {
    state.sso.check_provider(&provider)?;
    let browser = cookie(&headers, BROWSER_COOKIE);
    let outcome = state
        .sso
        .redeem_handoff(&provider, &req.code, browser)
        .await;
    let clear = browser_cookie(&state, &provider, "", 0)?;
    let mut response = match outcome {
        Ok(pair) => axum::Json(pair).into_response(),
        Err(err) => ApiError::from(err).into_response(),
    };
    response.headers_mut().append(SET_COOKIE, clear);
    Ok(no_store(response))
}

/// Whether the request is a browser navigation (it accepts HTML) rather than an API client.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"))
}

/// A browser is sent on to the web client's `/sso/callback`: the hand-off code travels in the
/// URL fragment, which browsers never send to a server (and which is worthless without this
/// browser's cookie); a refusal travels as `error` and `message`.
fn browser_landing(
    provider: &str,
    outcome: Result<Handoff, crate::error::Error>,
) -> Result<Response, ApiError> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    let location = match outcome {
        Ok(handoff) => {
            form.append_pair("provider", provider)
                .append_pair("handoff", &handoff.code);
            format!("/sso/callback#{}", form.finish())
        }
        Err(err) => {
            let (code, message) = match err {
                crate::error::Error::SsoFailed { code, message, .. } => (code, message),
                other => {
                    tracing::warn!(error = %other, "single sign-on callback failed");
                    (
                        "sso_failed",
                        "Single sign-on could not be completed.".to_owned(),
                    )
                }
            };
            form.append_pair("error", code)
                .append_pair("message", &message);
            format!("/sso/callback?{}", form.finish())
        }
    };
    let location = HeaderValue::from_str(&location).map_err(|e| ApiError::internal(&e))?;
    Ok((StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response())
}

/// Back-channel logout: the provider ends the sessions begun through it.
#[utoipa::path(post, path = "/auth/oidc/{provider}/backchannel-logout", tag = "auth",
    params(("provider" = String, Path, description = "provider id")),
    request_body(content = BackchannelLogoutForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "sessions revoked"),
        (status = 400, description = "the logout token is not valid")))]
pub async fn backchannel_logout(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    form: Result<Form<BackchannelLogoutForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let token = form.map(|f| f.0.logout_token).unwrap_or_default();
    match state.sso.backchannel_logout(&provider, &token).await {
        Ok(_) => Ok(no_store(StatusCode::OK.into_response())),
        Err(crate::error::Error::SsoFailed { code, message, .. }) => Ok(no_store(
            ApiError::new(StatusCode::BAD_REQUEST, code, message).into_response(),
        )),
        Err(other) => Err(other.into()),
    }
}

/// Whether a workspace requires single sign-on.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/sso", tag = "workspaces",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    responses((status = 200, body = WorkspaceSsoView)))]
pub async fn workspace_rule(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<WorkspaceId>,
) -> Result<axum::Json<WorkspaceSsoView>, ApiError> {
    Ok(axum::Json(state.sso.workspace_rule(&actor, id).await?))
}

/// Require (or stop requiring) single sign-on for a workspace's members.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/sso", tag = "workspaces",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    request_body = WorkspaceSsoRequest, responses((status = 200, body = WorkspaceSsoView)))]
pub async fn set_workspace_rule(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<WorkspaceId>,
    ApiJson(req): ApiJson<WorkspaceSsoRequest>,
) -> Result<axum::Json<WorkspaceSsoView>, ApiError> {
    Ok(axum::Json(
        state
            .sso
            .set_workspace_rule(&actor, id, req.required)
            .await?,
    ))
}
