//! The register of data-subject requests (GDPR Art. 12(3)): compliance officers record,
//! extend, complete and refuse people's requests; a person files and follows their own.

use axum::extract::State;
use axum::http::StatusCode;

use crate::domain::DataSubjectRequestId;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::http::state::AppState;
use crate::subjects::requests::{
    CompleteRequest, ExtendRequest, ListQuery, NewRequest, OwnRequest, RefuseRequest, RequestPage,
    RequestView,
};

/// Record a data-subject request received for an account (`data_subjects.manage`:
/// compliance officers and system administrators). It is due the deployment's
/// `data_subject.request_deadline_days` after `received_at` (default now). Audited as
/// `data_subject.request_recorded`.
#[utoipa::path(post, path = "/api/v1/data-subject-requests", operation_id = "record_data_subject_request", tag = "data-subjects",
    security(("bearer" = [])), request_body = NewRequest,
    responses((status = 201, body = RequestView), (status = 403, description = "missing data_subjects.manage"),
        (status = 404, description = "no such account"),
        (status = 422, description = "`validation_failed`: `received_at` in the future, a note too long; `subject_erased`; `not_a_person` (a bot)")))]
pub async fn record(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(new): ApiJson<NewRequest>,
) -> Result<(StatusCode, axum::Json<RequestView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.subject_requests.record(&actor, new).await?),
    ))
}

/// The register (`data_subjects.manage`), in the order requests were recorded, each with its
/// deadline, the days left and whether it is overdue; `status` and `overdue=true` filter it.
#[utoipa::path(get, path = "/api/v1/data-subject-requests", operation_id = "list_data_subject_requests", tag = "data-subjects",
    security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = RequestPage), (status = 403, description = "missing data_subjects.manage"),
        (status = 422, description = "`validation_failed`: `cursor` or `limit`")))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::Json<RequestPage>, ApiError> {
    Ok(axum::Json(state.subject_requests.list(&actor, q).await?))
}

/// One request of the register (`data_subjects.manage`).
#[utoipa::path(get, path = "/api/v1/data-subject-requests/{request_id}", operation_id = "get_data_subject_request", tag = "data-subjects",
    security(("bearer" = [])), params(("request_id" = String, Path, format = Uuid)),
    responses((status = 200, body = RequestView), (status = 403, description = "missing data_subjects.manage"),
        (status = 404, description = "no such request")))]
pub async fn get(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<DataSubjectRequestId>,
) -> Result<axum::Json<RequestView>, ApiError> {
    Ok(axum::Json(state.subject_requests.get(&actor, id).await?))
}

/// Extend an unanswered request's deadline, with a reason (`data_subjects.manage`): by
/// `days`, or by all the deployment's `data_subject.extension_days` still allow, counted from
/// the original deadline. Audited as `data_subject.request_extended`.
#[utoipa::path(post, path = "/api/v1/data-subject-requests/{request_id}/extend", operation_id = "extend_data_subject_request", tag = "data-subjects",
    security(("bearer" = [])), params(("request_id" = String, Path, format = Uuid)), request_body = ExtendRequest,
    responses((status = 200, body = RequestView), (status = 403, description = "missing data_subjects.manage"),
        (status = 404, description = "no such request"), (status = 409, description = "`already_answered`"),
        (status = 422, description = "`reason_required`; `extension_not_allowed`: the policy allows none; `extension_too_long`: past what it allows; `subject_erased`")))]
pub async fn extend(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<DataSubjectRequestId>,
    ApiJson(request): ApiJson<ExtendRequest>,
) -> Result<axum::Json<RequestView>, ApiError> {
    Ok(axum::Json(
        state.subject_requests.extend(&actor, id, request).await?,
    ))
}

/// Complete an unanswered request, with an optional note of what was done
/// (`data_subjects.manage`). Audited as `data_subject.request_completed`.
#[utoipa::path(post, path = "/api/v1/data-subject-requests/{request_id}/complete", operation_id = "complete_data_subject_request", tag = "data-subjects",
    security(("bearer" = [])), params(("request_id" = String, Path, format = Uuid)), request_body = CompleteRequest,
    responses((status = 200, body = RequestView), (status = 403, description = "missing data_subjects.manage"),
        (status = 404, description = "no such request"), (status = 409, description = "`already_answered`"),
        (status = 422, description = "`subject_erased`: an outcome note about an erased person")))]
pub async fn complete(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<DataSubjectRequestId>,
    ApiJson(request): ApiJson<CompleteRequest>,
) -> Result<axum::Json<RequestView>, ApiError> {
    Ok(axum::Json(
        state.subject_requests.complete(&actor, id, request).await?,
    ))
}

/// Refuse an unanswered request, with a reason (`data_subjects.manage`). Audited as
/// `data_subject.request_refused`.
#[utoipa::path(post, path = "/api/v1/data-subject-requests/{request_id}/refuse", operation_id = "refuse_data_subject_request", tag = "data-subjects",
    security(("bearer" = [])), params(("request_id" = String, Path, format = Uuid)), request_body = RefuseRequest,
    responses((status = 200, body = RequestView), (status = 403, description = "missing data_subjects.manage"),
        (status = 404, description = "no such request"), (status = 409, description = "`already_answered`"),
        (status = 422, description = "`reason_required`; `subject_erased`")))]
pub async fn refuse(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<DataSubjectRequestId>,
    ApiJson(request): ApiJson<RefuseRequest>,
) -> Result<axum::Json<RequestView>, ApiError> {
    Ok(axum::Json(
        state.subject_requests.refuse(&actor, id, request).await?,
    ))
}

/// File a data-subject request of one's own (access, portability, rectification, erasure,
/// restriction, objection); compliance officers see it in the register. Audited as
/// `data_subject.request_recorded`.
#[utoipa::path(post, path = "/api/v1/users/me/data-subject-requests", operation_id = "file_own_data_subject_request", tag = "data-subjects",
    security(("bearer" = [])), request_body = OwnRequest,
    responses((status = 201, body = RequestView), (status = 403, description = "bots file no requests"),
        (status = 422, description = "`validation_failed`: a note too long")))]
pub async fn file_own(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(new): ApiJson<OwnRequest>,
) -> Result<(StatusCode, axum::Json<RequestView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.subject_requests.file_own(&actor, new).await?),
    ))
}

/// One's own data-subject requests, with their deadlines and answers.
#[utoipa::path(get, path = "/api/v1/users/me/data-subject-requests", operation_id = "list_own_data_subject_requests", tag = "data-subjects",
    security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = RequestPage), (status = 403, description = "bots file no requests"),
        (status = 422, description = "`validation_failed`: `cursor` or `limit`")))]
pub async fn list_own(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::Json<RequestPage>, ApiError> {
    Ok(axum::Json(
        state.subject_requests.list_own(&actor, q).await?,
    ))
}
