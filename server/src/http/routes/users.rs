//! Accounts and their sessions.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::accounts::{NewAccount, OutOfOffice, ProfileChange, Rectification, UserView};
use crate::auth::SessionView;
use crate::domain::{DisplayName, Email, Password, SessionId, UserId};
use crate::error::Error;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::http::state::AppState;

/// A new account, created by an administrator.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "bo@example.org", "display_name": "Bo", "password": "a long enough password",
    "system_role": null}))]
pub struct CreateUserRequest {
    /// Email.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Initial password (at least 12 characters).
    pub password: String,
    /// `system_admin`, `compliance_officer` or none.
    #[serde(default)]
    pub system_role: Option<String>,
}

/// Sets or clears a system role.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "compliance_officer"}))]
pub struct SystemRoleRequest {
    /// `system_admin`, `compliance_officer`, or null to clear.
    pub role: Option<String>,
}

/// Deactivates or reactivates an account.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "disabled", "reason": "left the company"}))]
pub struct AccountStatusRequest {
    /// `active` or `disabled`.
    pub status: String,
    /// Why (recorded in the audit log; at most 500 characters).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Paging for account lists.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListUsersQuery {
    /// Return accounts after this id.
    pub after: Option<UserId>,
    /// At most this many (1 to 500, default 100).
    pub limit: Option<i64>,
}

/// An out-of-office period: first and last day (`YYYY-MM-DD`, at most a year apart) and an
/// optional message (up to 500 characters).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutOfOfficeRequest {
    /// First day away.
    pub from: chrono::NaiveDate,
    /// Last day away (not before `from`).
    pub until: chrono::NaiveDate,
    /// A message for those who look the person up.
    #[serde(default)]
    pub message: Option<String>,
}

/// Changes to one's own profile; omitted fields stay.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"display_name": "Ann Example",
    "out_of_office": {"from": "2027-08-01", "until": "2027-08-15", "message": "Back on the 16th"}}))]
pub struct UpdateMeRequest {
    /// New display name (1 to 100 characters).
    #[serde(default)]
    pub display_name: Option<String>,
    /// A period away; `null` clears it.
    #[serde(default, with = "super::docs::double_option")]
    #[schema(value_type = Option<OutOfOfficeRequest>)]
    pub out_of_office: Option<Option<OutOfOfficeRequest>>,
}

/// A new password, with the current one.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"current_password": "the old long password", "new_password": "a new long enough password"}))]
pub struct ChangePasswordRequest {
    /// The password now.
    pub current_password: String,
    /// The new password (at least 12 characters).
    pub new_password: String,
}

/// How a password change ended.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PasswordChanged {
    /// How many other sessions were ended.
    pub sessions_revoked: usize,
}

/// A correction of someone's personal data on their request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"display_name": "Bo Example", "reason": "ticket DSR-118: name misspelt"}))]
pub struct RectifyRequest {
    /// The corrected display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The corrected email.
    #[serde(default)]
    pub email: Option<String>,
    /// The request this answers (required, up to 500 characters; kept in the audit log).
    #[serde(default)]
    pub reason: Option<String>,
}

/// How many sessions were revoked.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Revoked {
    /// Count.
    pub revoked: usize,
}

fn me(actor: &crate::rbac::Actor) -> Result<UserId, ApiError> {
    actor
        .user_id()
        .ok_or_else(|| Error::unauthenticated("unauthenticated", "sign in first").into())
}

/// The signed-in account.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserView)))]
pub async fn get_me(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<axum::Json<UserView>, ApiError> {
    let id = me(&actor)?;
    Ok(axum::Json(state.accounts.get_user(&actor, id).await?))
}

/// Change one's own display name and out-of-office period. Audited as
/// `user.profile_updated`; the people sharing a workspace get a `user_updated` event.
#[utoipa::path(patch, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])),
    request_body = UpdateMeRequest,
    responses((status = 200, body = UserView),
        (status = 422, description = "`validation_failed`: a display name or out-of-office period out of bounds (`field` names it)")))]
pub async fn update_me(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(req): ApiJson<UpdateMeRequest>,
) -> Result<axum::Json<UserView>, ApiError> {
    let change = ProfileChange {
        display_name: req
            .display_name
            .as_deref()
            .map(|n| DisplayName::parse("display_name", n))
            .transpose()?,
        out_of_office: req
            .out_of_office
            .map(|o| {
                o.map(|o| OutOfOffice::parse(o.from, o.until, o.message.as_deref()))
                    .transpose()
            })
            .transpose()?,
    };
    Ok(axum::Json(
        state.accounts.update_own_profile(&actor, change).await?,
    ))
}

/// Change one's own password: the current one is checked (and counted like a sign-in
/// attempt), the new one must follow the password policy, and every other session of the
/// account ends (this one stays). Audited as `user.password_changed`.
#[utoipa::path(post, path = "/api/v1/users/me/password", tag = "users", security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses((status = 200, body = PasswordChanged),
        (status = 422, description = "`current_password_incorrect`; `password_not_set`: the account signs in only through single sign-on; `validation_failed`: the new password breaks the policy"),
        (status = 429, description = "`too_many_attempts`: too many wrong passwords")))]
pub async fn change_password(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<axum::Json<PasswordChanged>, ApiError> {
    let sessions_revoked = state
        .auth
        .change_password(&actor, req.current_password, req.new_password)
        .await?;
    Ok(axum::Json(PasswordChanged { sessions_revoked }))
}

/// Correct someone's display name or email on their request (GDPR Art. 16): compliance
/// officers and system administrators (`data_subjects.rectify`), with a reason. Audited as
/// `data_subject.rectified` with the values before and after (sealed under the person's key).
#[utoipa::path(patch, path = "/api/v1/users/{user_id}", operation_id = "rectify_personal_data", tag = "users",
    security(("bearer" = [])), params(("user_id" = String, Path, format = Uuid)),
    request_body = RectifyRequest,
    responses((status = 200, body = UserView),
        (status = 403, description = "without `data_subjects.rectify`"),
        (status = 404, description = "no such account"),
        (status = 409, description = "`email_taken`: another account has this email"),
        (status = 422, description = "`reason_required`; `nothing_to_rectify`; `validation_failed`")))]
pub async fn rectify_user(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(user_id): ApiPath<UserId>,
    ApiJson(req): ApiJson<RectifyRequest>,
) -> Result<axum::Json<UserView>, ApiError> {
    let correction = Rectification {
        display_name: req
            .display_name
            .as_deref()
            .map(|n| DisplayName::parse("display_name", n))
            .transpose()?,
        email: req
            .email
            .as_deref()
            .map(|e| Email::parse("email", e))
            .transpose()?,
        reason: req.reason,
    };
    Ok(axum::Json(
        state.accounts.rectify(&actor, user_id, correction).await?,
    ))
}

/// The signed-in account's live sessions.
#[utoipa::path(get, path = "/api/v1/users/me/sessions", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = [SessionView])))]
pub async fn my_sessions(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<axum::Json<Vec<SessionView>>, ApiError> {
    let id = me(&actor)?;
    Ok(axum::Json(state.auth.list_sessions(&actor, id).await?))
}

/// All accounts (administrators and compliance officers).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])), params(ListUsersQuery),
    responses((status = 200, body = [UserView]), (status = 403, description = "not an administrator")))]
pub async fn list_users(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<ListUsersQuery>,
) -> Result<axum::Json<Vec<UserView>>, ApiError> {
    Ok(axum::Json(
        state
            .accounts
            .list_users(&actor, q.after, q.limit.unwrap_or(100))
            .await?,
    ))
}

/// Create an account (administrators).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = [])), request_body = CreateUserRequest,
    responses((status = 201, body = UserView), (status = 409, description = "email taken")))]
pub async fn create_user(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, axum::Json<UserView>), ApiError> {
    let account = NewAccount {
        email: Email::parse("email", &req.email)?,
        display_name: DisplayName::parse("display_name", &req.display_name)?,
        password: Password::parse_new("password", req.password)?,
        system_role: req.system_role,
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(state.accounts.create_user(&actor, account).await?),
    ))
}

/// One account: its owner, administrators, and the people who may see the members of a
/// workspace it belongs to.
#[utoipa::path(get, path = "/api/v1/users/{user_id}", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid)), responses((status = 200, body = UserView)))]
pub async fn get_user(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(user_id): ApiPath<UserId>,
) -> Result<axum::Json<UserView>, ApiError> {
    Ok(axum::Json(state.accounts.get_user(&actor, user_id).await?))
}

/// Why someone else's data is exported.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// The request this export answers (required when exporting someone else's data; up to
    /// 500 characters; kept in the audit log).
    pub reason: Option<String>,
}

/// Everything Concord holds about a person, as a ZIP archive (GDPR Art. 15 and 20): their
/// profile, messages with earlier versions, document contributions, files with their
/// contents, sessions and the audit entries about them, gathered from the data inventory,
/// with `manifest.json` listing what it holds and what it leaves out (hashes, keys) and why.
/// The person themself, or compliance officers and system administrators
/// (`data_subjects.export`). Audited as `data_subject.exported`.
#[utoipa::path(get, path = "/api/v1/users/{user_id}/data-export", operation_id = "export_personal_data", tag = "users",
    security(("bearer" = [])), params(("user_id" = String, Path, format = Uuid), ExportQuery),
    responses((status = 200, description = "a ZIP archive", content_type = "application/zip"),
        (status = 404, description = "no such account, or not one the caller may export"),
        (status = 422, description = "`reason_required`: someone else's data without a `reason`; `export_too_large`: the person's files pass what one export holds")))]
pub async fn export_personal_data(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(user_id): ApiPath<UserId>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let export = state
        .subjects
        .export(&actor, user_id, q.reason.as_deref())
        .await?;
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/zip".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", export.file_name),
            ),
            (axum::http::header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        export.zip,
    )
        .into_response())
}

/// Erase a person (GDPR Art. 17): their account is emptied at once (email, name, password,
/// sessions, memberships, reactions) and cannot be signed in to again; in the background,
/// their content in each workspace is destroyed or kept without its author as the workspace's
/// `data_subject.erasure` policy says, legal holds respected, and their personal data key is
/// destroyed, so whatever is still sealed under it (audit entries' addresses and details,
/// backups) can no longer be read. Compliance officers and system administrators
/// (`data_subjects.erase`), with a reason the audit log keeps; not for oneself, nor for a
/// bot or someone holding a system role. Audited as `data_subject.erasure_started` and
/// `data_subject.erased`.
#[utoipa::path(post, path = "/api/v1/users/{user_id}/erasure", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid)), request_body = crate::compliance::EraseRequest,
    responses((status = 202, description = "the account is emptied; the rest runs in the background", body = crate::compliance::ErasureView),
        (status = 404, description = "no such account, or not one the caller may erase"),
        (status = 409, description = "`already_erased`: erased or being erased; `holds_system_role`: take the system role away first"),
        (status = 422, description = "`reason_required`, `cannot_erase_self`, `not_a_person` (a bot's account)")))]
pub async fn erase_person(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(user_id): ApiPath<UserId>,
    ApiJson(req): ApiJson<crate::compliance::EraseRequest>,
) -> Result<(StatusCode, axum::Json<crate::compliance::ErasureView>), ApiError> {
    let view = state.erasures.start(&actor, user_id, req).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(view)))
}

/// How far a person's erasure got (`data_subjects.erase`): `running` until their content is
/// handled and their key destroyed, then `waiting_on_holds` while legal holds keep content it
/// would destroy, or `done`, with counts.
#[utoipa::path(get, path = "/api/v1/users/{user_id}/erasure", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid)),
    responses((status = 200, body = crate::compliance::ErasureView),
        (status = 404, description = "no erasure of this account, or not one the caller may see")))]
pub async fn erasure_of(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(user_id): ApiPath<UserId>,
) -> Result<axum::Json<crate::compliance::ErasureView>, ApiError> {
    Ok(axum::Json(state.erasures.get(&actor, user_id).await?))
}

/// Set or clear an account's system role (administrators).
#[utoipa::path(put, path = "/api/v1/users/{user_id}/system-role", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid)), request_body = SystemRoleRequest,
    responses((status = 200, body = UserView)))]
pub async fn set_system_role(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(user_id): ApiPath<UserId>,
    ApiJson(req): ApiJson<SystemRoleRequest>,
) -> Result<axum::Json<UserView>, ApiError> {
    Ok(axum::Json(
        state
            .accounts
            .set_system_role(&actor, user_id, req.role.as_deref())
            .await?,
    ))
}

/// Deactivate (`disabled`) or reactivate (`active`) an account (administrators). A
/// deactivated person cannot sign in, by password or single sign-on, and every session of
/// theirs ends at once; their content and memberships stay.
#[utoipa::path(put, path = "/api/v1/users/{user_id}/status", operation_id = "set_account_status", tag = "users",
    security(("bearer" = [])), params(("user_id" = String, Path, format = Uuid)),
    request_body = AccountStatusRequest,
    responses((status = 200, body = UserView),
        (status = 422, description = "`unknown_status`, `cannot_deactivate_self`, `last_system_admin`, `reason_too_long`"),
        (status = 410, description = "`erased`: the person was erased")))]
pub async fn set_status(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(user_id): ApiPath<UserId>,
    ApiJson(req): ApiJson<AccountStatusRequest>,
) -> Result<axum::Json<UserView>, ApiError> {
    let active = match req.status.as_str() {
        "active" => true,
        "disabled" => false,
        other => {
            return Err(Error::refused(
                "unknown_status",
                format!("{other:?} is not an account status: use \"active\" or \"disabled\""),
            )
            .into())
        }
    };
    Ok(axum::Json(
        state
            .accounts
            .set_active(&actor, user_id, active, req.reason)
            .await?,
    ))
}

/// An account's live sessions (its owner or administrators).
#[utoipa::path(get, path = "/api/v1/users/{user_id}/sessions", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid)), responses((status = 200, body = [SessionView])))]
pub async fn list_sessions(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(user_id): ApiPath<UserId>,
) -> Result<axum::Json<Vec<SessionView>>, ApiError> {
    Ok(axum::Json(state.auth.list_sessions(&actor, user_id).await?))
}

/// Revoke every session of an account (its owner or administrators).
#[utoipa::path(delete, path = "/api/v1/users/{user_id}/sessions", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid)), responses((status = 200, body = Revoked)))]
pub async fn revoke_sessions(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(user_id): ApiPath<UserId>,
) -> Result<axum::Json<Revoked>, ApiError> {
    let revoked = state.auth.revoke_all(&actor, user_id, "revoked").await?;
    Ok(axum::Json(Revoked { revoked }))
}

/// Revoke one session (its owner or administrators).
#[utoipa::path(delete, path = "/api/v1/users/{user_id}/sessions/{session_id}", tag = "users",
    security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid), ("session_id" = String, Path, format = Uuid)),
    responses((status = 204, description = "revoked"), (status = 404, description = "no such live session")))]
pub async fn revoke_session(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((user_id, session_id)): ApiPath<(UserId, SessionId)>,
) -> Result<StatusCode, ApiError> {
    state
        .auth
        .revoke_session(&actor, user_id, session_id, "revoked")
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
