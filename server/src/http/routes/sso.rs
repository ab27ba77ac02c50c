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
use crate::sso::{CallbackParams, ProviderView, WorkspaceSsoView, BROWSER_COOKIE};

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
#[utoipa::path(get, path = "/auth/oidc/{provider}/login", tag = "auth",
    params(("provider" = String, Path, description = "provider id")),
    responses((status = 303, description = "to the provider's sign-in page"),
        (status = 404, description = "no such provider"),
        (status = 502, description = "the provider cannot be reached")))]
pub async fn login(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
) -> Result<Response, ApiError> {
    let redirect = state.sso.start_login(&provider).await?;
    let secure = if state.sso.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{BROWSER_COOKIE}={}; Path=/auth/oidc/{provider}/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        redirect.browser_token, redirect.max_age_seconds
    );
    let location = HeaderValue::from_str(&redirect.url).map_err(|e| ApiError::internal(&e))?;
    let cookie = HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal(&e))?;
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
/// `/sso/callback` with the pair in the URL fragment, or with `error` and `message` on refusal.
#[utoipa::path(get, path = "/auth/oidc/{provider}/callback", tag = "auth",
    params(("provider" = String, Path, description = "provider id"), CallbackParams),
    responses((status = 200, body = TokenPair),
        (status = 303, description = "a browser: on to /sso/callback"),
        (status = 401, description = "refused: state mismatch, replayed code, wrong nonce, expired token, wrong audience..."),
        (status = 502, description = "the provider failed")))]
pub async fn callback(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    ApiQuery(params): ApiQuery<CallbackParams>,
    Client(client): Client,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let browser = cookie(&headers, BROWSER_COOKIE);
    let outcome = state.sso.callback(&provider, params, browser, client).await;
    // The pending sign-in is used up either way; so is its cookie.
    let clear = HeaderValue::from_str(&format!(
        "{BROWSER_COOKIE}=; Path=/auth/oidc/{provider}/; Max-Age=0; HttpOnly; SameSite=Lax"
    ))
    .map_err(|e| ApiError::internal(&e))?;
    let mut response = if wants_html(&headers) {
        browser_landing(outcome)?
    } else {
        match outcome {
            Ok(pair) => axum::Json(pair).into_response(),
            Err(err) => ApiError::from(err).into_response(),
        }
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

/// A browser is sent on to the web client's `/sso/callback`: the token pair travels in the URL
/// fragment, which browsers never send to a server; a refusal travels as `error` and `message`.
fn browser_landing(outcome: Result<TokenPair, crate::error::Error>) -> Result<Response, ApiError> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    let location = match outcome {
        Ok(pair) => {
            form.append_pair("access_token", &pair.access_token)
                .append_pair("refresh_token", &pair.refresh_token)
                .append_pair("expires_in", &pair.expires_in.to_string())
                .append_pair("token_type", pair.token_type);
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
