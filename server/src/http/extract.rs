//! Extractors: JSON bodies, paths and queries with Concord's error format, the signed-in
//! actor, and client information.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::state::AppState;
use crate::auth::ClientInfo;
use crate::rbac::{Actor, DecisionSlot};

/// A JSON body; malformed JSON, wrong types, unknown fields and oversized bodies become
/// Concord errors.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|j| ApiJson(j.0))
            .map_err(ApiError::from)
    }
}

/// Path parameters with Concord's error format.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(ApiError::from)
    }
}

/// Query parameters with Concord's error format.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(ApiError::from)
    }
}

/// The client's address and User-Agent. Behind a reverse proxy listed in
/// `http.trusted_proxies` the address comes from its forwarding header
/// ([`super::forwarded`]); from anyone else such headers are ignored.
pub struct Client(pub ClientInfo);

impl FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Client(client_info(parts, state)))
    }
}

fn client_info(parts: &Parts, state: &AppState) -> ClientInfo {
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| state.addressing.client(c.0.ip(), &parts.headers));
    let user_agent = parts
        .headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect::<String>());
    ClientInfo { ip, user_agent }
}

fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(malformed());
    }
    Ok(Some(token.trim()))
}

fn malformed() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "use an Authorization: Bearer <access token> header",
    )
}

async fn actor_from(parts: &Parts, state: &AppState, token: &str) -> Result<Actor, ApiError> {
    let ip: Option<IpAddr> = client_info(parts, state).ip;
    let actor = state.auth.authenticate(token, ip).await?;
    // A request is the person's activity (automatic logoff); refreshing a token is not,
    // and does not come through here.
    if let Some(session) = actor.session_id() {
        state.auth.activity().touch(session, chrono::Utc::now());
    }
    let slot = parts
        .extensions
        .get::<DecisionSlot>()
        .cloned()
        .unwrap_or_default();
    Ok(actor.recording_into(slot))
}

/// The signed-in actor; requests without a valid access token are refused with 401.
pub struct Auth(pub Actor);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match bearer(parts)? {
            Some(token) => actor_from(parts, state, token).await.map(Auth),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "sign in first",
            )),
        }
    }
}

/// The signed-in actor if a token was sent; a bad token is still refused.
pub struct MaybeAuth(pub Option<Actor>);

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match bearer(parts)? {
            Some(token) => actor_from(parts, state, token)
                .await
                .map(|a| MaybeAuth(Some(a))),
            None => Ok(MaybeAuth(None)),
        }
    }
}
