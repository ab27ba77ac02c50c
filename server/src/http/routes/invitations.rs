//! Looking at and accepting an invitation, by its secret token.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::accounts::NewAccount;
use crate::domain::{DisplayName, Email, Password, UserId};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, Client, MaybeAuth};
use crate::http::state::AppState;
use crate::workspaces::{InvitationPreview, Invitee, WorkspaceView};

/// Accepting an invitation. Signed in: send `{}`. New to Concord: send the new account.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "bo@example.org", "display_name": "Bo", "password": "a long enough password"}))]
pub struct AcceptRequest {
    /// New account's email.
    #[serde(default)]
    pub email: Option<String>,
    /// New account's display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// New account's password.
    #[serde(default)]
    pub password: Option<String>,
}

/// The workspace joined.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// The workspace.
    pub workspace: WorkspaceView,
    /// The account that joined.
    pub user_id: UserId,
}

/// What an invitation offers.
#[utoipa::path(get, path = "/api/v1/invitations/{token}", tag = "invitations",
    params(("token" = String, Path)), responses((status = 200, body = InvitationPreview),
        (status = 404, description = "unknown"), (status = 410, description = "expired, used or revoked")))]
pub async fn preview(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<axum::Json<InvitationPreview>, ApiError> {
    Ok(axum::Json(state.workspaces.preview(&token).await?))
}

/// Accept an invitation, signed in or by creating an account. The token is checked first:
/// without a live invitation, the new account's details are not looked at.
#[utoipa::path(post, path = "/api/v1/invitations/{token}/accept", tag = "invitations",
    params(("token" = String, Path)), request_body = AcceptRequest,
    responses((status = 201, body = Accepted), (status = 410, description = "expired, used or revoked")))]
pub async fn accept(
    State(state): State<AppState>,
    MaybeAuth(actor): MaybeAuth,
    Client(client): Client,
    ApiPath(token): ApiPath<String>,
    ApiJson(req): ApiJson<AcceptRequest>,
) -> Result<(StatusCode, axum::Json<Accepted>), ApiError> {
    let invitee = match actor {
        Some(actor) => Invitee::Existing(actor),
        None => {
            state.workspaces.check_invitation(&token).await?;
            Invitee::New(NewAccount {
                email: Email::parse("email", req.email.as_deref().unwrap_or_default())?,
                display_name: DisplayName::parse(
                    "display_name",
                    req.display_name.as_deref().unwrap_or_default(),
                )?,
                password: Password::parse_new("password", req.password.unwrap_or_default())?,
                system_role: None,
            })
        }
    };
    let (workspace, user_id) = state.workspaces.accept(&token, invitee, client.ip).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Accepted { workspace, user_id }),
    ))
}
