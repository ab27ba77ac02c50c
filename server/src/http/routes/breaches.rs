//! The breach register (GDPR Art. 33 and 34): compliance officers record personal-data
//! breaches, follow the 72-hour deadline for telling the supervisory authority and read a
//! report of who and what a breach affected, from the audit log.

use axum::extract::State;
use axum::http::StatusCode;

use crate::compliance::breaches::{
    BreachChange, BreachListQuery, BreachPage, BreachReport, BreachView, NewBreach, ReportQuery,
};
use crate::domain::BreachId;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::http::state::AppState;

/// Record a personal-data breach (`breaches.manage`: compliance officers and system
/// administrators). The supervisory authority is due 72 hours after `discovered_at`
/// (default now). Audited as `breach.recorded`.
#[utoipa::path(post, path = "/api/v1/breaches", operation_id = "record_breach", tag = "breaches",
    security(("bearer" = [])), request_body = NewBreach,
    responses((status = 201, body = BreachView), (status = 403, description = "missing breaches.manage"),
        (status = 422, description = "`validation_failed` with its `field`: `title` empty or too long, `description` too long, a time in the future, `occurred_from` after `discovered_at`, `occurred_to` before `occurred_from`, an unknown account in `accounts`")))]
pub async fn record(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(new): ApiJson<NewBreach>,
) -> Result<(StatusCode, axum::Json<BreachView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.breaches.record(&actor, new).await?),
    ))
}

/// The register (`breaches.manage`), in the order breaches were recorded, each with its
/// authority deadline, the hours left and whether it is overdue; `status` and
/// `overdue=true` filter it.
#[utoipa::path(get, path = "/api/v1/breaches", operation_id = "list_breaches", tag = "breaches",
    security(("bearer" = [])), params(BreachListQuery),
    responses((status = 200, body = BreachPage), (status = 403, description = "missing breaches.manage"),
        (status = 422, description = "`validation_failed`: `cursor` or `limit`")))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<BreachListQuery>,
) -> Result<axum::Json<BreachPage>, ApiError> {
    Ok(axum::Json(state.breaches.list(&actor, q).await?))
}

/// One breach of the register (`breaches.manage`).
#[utoipa::path(get, path = "/api/v1/breaches/{breach_id}", operation_id = "get_breach", tag = "breaches",
    security(("bearer" = [])), params(("breach_id" = String, Path, format = Uuid)),
    responses((status = 200, body = BreachView), (status = 403, description = "missing breaches.manage"),
        (status = 404, description = "no such breach")))]
pub async fn get(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<BreachId>,
) -> Result<axum::Json<BreachView>, ApiError> {
    Ok(axum::Json(state.breaches.get(&actor, id).await?))
}

/// Change a breach that is not closed (`breaches.manage`): each field given replaces the
/// stored one (status, times, accounts, when the authority and the people affected were
/// told). Audited as `breach.updated` with the fields changed.
#[utoipa::path(patch, path = "/api/v1/breaches/{breach_id}", operation_id = "update_breach", tag = "breaches",
    security(("bearer" = [])), params(("breach_id" = String, Path, format = Uuid)), request_body = BreachChange,
    responses((status = 200, body = BreachView), (status = 403, description = "missing breaches.manage"),
        (status = 404, description = "no such breach"), (status = 409, description = "`breach_closed`"),
        (status = 422, description = "`validation_failed` with its `field`, as when recording; a notification before the discovery")))]
pub async fn update(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<BreachId>,
    ApiJson(change): ApiJson<BreachChange>,
) -> Result<axum::Json<BreachView>, ApiError> {
    Ok(axum::Json(state.breaches.update(&actor, id, change).await?))
}

/// Who and what a breach affected (`breaches.manage`): the audit entries its involved
/// accounts acted in during its window (`occurred_from` to `occurred_to`, or `from` and `to`),
/// the addresses they came from, the people whose data they reached and the categories of
/// data. Audited as `breach.reported`.
#[utoipa::path(get, path = "/api/v1/breaches/{breach_id}/report", operation_id = "report_breach", tag = "breaches",
    security(("bearer" = [])), params(("breach_id" = String, Path, format = Uuid), ReportQuery),
    responses((status = 200, body = BreachReport), (status = 403, description = "missing breaches.manage"),
        (status = 404, description = "no such breach"),
        (status = 422, description = "`validation_failed`: the window ends before it begins")))]
pub async fn report(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<BreachId>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<axum::Json<BreachReport>, ApiError> {
    Ok(axum::Json(state.breaches.report(&actor, id, q).await?))
}
