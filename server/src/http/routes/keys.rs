//! Key administration for system admins: data-key rotation and the keys' status.

use axum::extract::State;
use axum::http::StatusCode;

use crate::http::error::ApiError;
use crate::http::extract::Auth;
use crate::http::state::AppState;
use crate::keys::{KeysStatus, RotationView};

/// Starts new data-key versions (new writes use them at once) and a background re-encryption
/// of older data; follow it with `GET /api/v1/admin/keys/status`.
#[utoipa::path(post, path = "/api/v1/admin/keys/rotate-dek", tag = "keys", security(("bearer" = [])),
    responses((status = 202, body = RotationView, description = "rotation recorded; re-encryption runs in the background"),
        (status = 403, description = "missing keys.manage")))]
pub async fn rotate_dek(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<(StatusCode, axum::Json<RotationView>), ApiError> {
    let rotation = state.keys.rotate_dek(&actor).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(rotation)))
}

/// The key-encryption key in use, data key counts, the audit signing key history and the
/// progress of recent rotations.
#[utoipa::path(get, path = "/api/v1/admin/keys/status", tag = "keys", security(("bearer" = [])),
    responses((status = 200, body = KeysStatus), (status = 403, description = "missing keys.manage")))]
pub async fn status(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<axum::Json<KeysStatus>, ApiError> {
    Ok(axum::Json(state.keys.status(&actor).await?))
}
