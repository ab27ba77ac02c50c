//! Sign-in, token refresh and sign-out.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::auth::TokenPair;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, Auth, Client};
use crate::http::state::AppState;

/// Email and password.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ann@example.org", "password": "correct horse battery staple"}))]
pub struct LoginRequest {
    /// Account email.
    pub email: String,
    /// Password.
    pub password: String,
}

/// A refresh token to exchange.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"refresh_token": "opaque-refresh-token"}))]
pub struct RefreshRequest {
    /// The refresh token from the last sign-in or refresh.
    pub refresh_token: String,
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "wrong email or password"),
        (status = 429, description = "too many failed attempts")))]
pub async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<axum::Json<TokenPair>, ApiError> {
    Ok(axum::Json(
        state.auth.login(&req.email, req.password, client).await?,
    ))
}

/// Exchange a refresh token for a new token pair (the old refresh token stops working).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "invalid, reused or revoked")))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<axum::Json<TokenPair>, ApiError> {
    Ok(axum::Json(state.auth.refresh(&req.refresh_token).await?))
}

/// After signing out of a single sign-on session: where to end the provider's session too.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SignedOut {
    /// The provider's end-session URL (with `id_token_hint`); send the browser there.
    pub end_session_url: String,
}

/// Sign out: end the current session. For a single sign-on session, the answer names the
/// provider's end-session URL (RP-initiated logout).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "signed out"),
        (status = 200, body = SignedOut, description = "signed out of a single sign-on session")))]
pub async fn logout(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<Response, ApiError> {
    let origin = state.auth.logout(&actor).await?;
    let url = state
        .sso
        .end_session_url(&origin.auth_method, origin.sso_id_token.as_deref())
        .await;
    Ok(match url {
        Some(end_session_url) => axum::Json(SignedOut { end_session_url }).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}
