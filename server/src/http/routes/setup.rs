//! First-run setup: the first system admin, created with the printed one-time token.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use crate::accounts::{NewAccount, UserView};
use crate::domain::{DisplayName, Email, Password};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, Client};
use crate::http::state::AppState;

/// Creates the first administrator.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"token": "setup-token-from-the-console", "email": "admin@example.org",
    "display_name": "Ada Admin", "password": "correct horse battery staple"}))]
pub struct SetupRequest {
    /// The one-time token printed at first start.
    pub token: String,
    /// Admin's email.
    pub email: String,
    /// Admin's display name.
    pub display_name: String,
    /// At least 12 characters.
    pub password: String,
}

/// Create the first system admin with the one-time setup token. The token is checked first:
/// without a live one, nothing else in the request is looked at.
#[utoipa::path(post, path = "/api/v1/setup", tag = "setup", request_body = SetupRequest,
    responses((status = 201, body = UserView), (status = 410, description = "token invalid, used or expired")))]
pub async fn complete_setup(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(req): ApiJson<SetupRequest>,
) -> Result<(StatusCode, axum::Json<UserView>), ApiError> {
    state.accounts.check_setup_token(&req.token).await?;
    let account = NewAccount {
        email: Email::parse("email", &req.email)?,
        display_name: DisplayName::parse("display_name", &req.display_name)?,
        password: Password::parse_new("password", req.password)?,
        system_role: None,
    };
    let user = state
        .accounts
        .complete_setup(&req.token, account, client.ip)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(user)))
}
