//! Restriction of processing (GDPR Art. 18): compliance officers and system administrators
//! start and lift a person's restriction; the person sees their own.

use axum::extract::State;
use axum::http::StatusCode;

use crate::domain::UserId;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, Auth};
use crate::http::state::AppState;
use crate::subjects::restriction::{RestrictionReason, RestrictionStatus};

/// Restrict the processing of a person's data (GDPR Art. 18): their content stays visible to
/// people as before, but nothing new processes it: it leaves the search index and is not
/// indexed, bots receive no event they cause or about their content, and the Slack Web API
/// withholds their messages' text and their profile from bots. Compliance officers and
/// system administrators (`data_subjects.restrict`), with a reason (sealed under the person's
/// key). Audited as `data_subject.restricted`.
#[utoipa::path(post, path = "/api/v1/users/{user_id}/restriction", operation_id = "restrict_processing", tag = "users",
    security(("bearer" = [])), params(("user_id" = String, Path, format = Uuid)),
    request_body = RestrictionReason,
    responses((status = 201, body = RestrictionStatus),
        (status = 403, description = "without `data_subjects.restrict`"),
        (status = 404, description = "no such account"),
        (status = 409, description = "`already_restricted`"),
        (status = 410, description = "`erased`: the person was erased"),
        (status = 422, description = "`reason_required`; `not_a_person` (a bot's account); `validation_failed`")))]
pub async fn start(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(user_id): ApiPath<UserId>,
    ApiJson(req): ApiJson<RestrictionReason>,
) -> Result<(StatusCode, axum::Json<RestrictionStatus>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.restrictions.start(&actor, user_id, req).await?),
    ))
}

/// A person's restriction of processing now and every one before (`data_subjects.restrict`).
#[utoipa::path(get, path = "/api/v1/users/{user_id}/restriction", operation_id = "get_restriction", tag = "users",
    security(("bearer" = [])), params(("user_id" = String, Path, format = Uuid)),
    responses((status = 200, body = RestrictionStatus),
        (status = 403, description = "without `data_subjects.restrict`"),
        (status = 404, description = "no such account")))]
pub async fn get(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(user_id): ApiPath<UserId>,
) -> Result<axum::Json<RestrictionStatus>, ApiError> {
    Ok(axum::Json(state.restrictions.get(&actor, user_id).await?))
}

/// Lift a person's restriction of processing (`data_subjects.restrict`), with a reason: their
/// content is indexed again (the workspaces' search indexes are rebuilt in the background)
/// and bots receive events about them again, from then on. The person is told by a
/// `restriction_lifted` event on the hub (Art. 18(3)). Audited as
/// `data_subject.restriction_lifted`.
#[utoipa::path(post, path = "/api/v1/users/{user_id}/restriction/lift", operation_id = "lift_restriction", tag = "users",
    security(("bearer" = [])), params(("user_id" = String, Path, format = Uuid)),
    request_body = RestrictionReason,
    responses((status = 200, body = RestrictionStatus),
        (status = 403, description = "without `data_subjects.restrict`"),
        (status = 404, description = "no such account"),
        (status = 409, description = "`not_restricted`"),
        (status = 410, description = "`erased`: the person was erased"),
        (status = 422, description = "`reason_required`; `not_a_person`; `validation_failed`")))]
pub async fn lift(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(user_id): ApiPath<UserId>,
    ApiJson(req): ApiJson<RestrictionReason>,
) -> Result<axum::Json<RestrictionStatus>, ApiError> {
    Ok(axum::Json(
        state.restrictions.lift(&actor, user_id, req).await?,
    ))
}

/// The signed-in person's own restriction of processing, if any, and every one before.
#[utoipa::path(get, path = "/api/v1/users/me/restriction", operation_id = "get_my_restriction", tag = "users",
    security(("bearer" = [])),
    responses((status = 200, body = RestrictionStatus)))]
pub async fn get_own(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<axum::Json<RestrictionStatus>, ApiError> {
    Ok(axum::Json(state.restrictions.get_own(&actor).await?))
}
