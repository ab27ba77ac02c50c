//! Compliance policies: a workspace's effective policy and its override, and reloading the
//! deployment's policy modules.

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::domain::WorkspaceId;
use crate::http::error::ApiError;
use crate::http::extract::{ApiPath, Auth};
use crate::http::state::AppState;
use crate::policy::{
    override_too_large, ExpectedVersion, OverrideFormat, PolicyDocument, ReloadView,
    WorkspacePolicyView, MAX_OVERRIDE_BYTES,
};

/// The view with its version as the `ETag` a later `PUT` names in `If-Match`.
fn tagged(view: WorkspacePolicyView) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", view.version)).ok();
    let mut response = axum::Json(view).into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(ETAG, etag);
    }
    response
}

/// The versions `If-Match` names (RFC 9110: `*`, or strong entity tags, compared strongly:
/// a weak tag or one that names no version matches nothing).
fn expected_version(headers: &HeaderMap) -> Option<ExpectedVersion> {
    let values: Vec<&HeaderValue> = headers.get_all(IF_MATCH).iter().collect();
    if values.is_empty() {
        return None;
    }
    let mut versions = Vec::new();
    for value in values {
        let Ok(text) = value.to_str() else { continue };
        for tag in text.split(',').map(str::trim) {
            if tag == "*" {
                return Some(ExpectedVersion::Any);
            }
            if let Some(version) = tag
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .and_then(|t| t.parse::<i64>().ok())
            {
                versions.push(version);
            }
        }
    }
    Some(ExpectedVersion::OneOf(versions))
}

/// A workspace's effective policy: every key's value, its version, the enabled modules and
/// where each value comes from (a module, or the workspace's override). What is shown depends
/// on the reader: those who manage policies (`policies.manage`) and compliance officers
/// (`audit.read`) who may see the workspace get all of it, the override document
/// (`workspace_override`) and every channel's entry included. Every other member, the
/// workspace's admins and owners too, gets the workspace-wide values (the retention periods
/// and safeguards that apply to them), no override document (`workspace_override` is null),
/// and in `policy.channels` and `sources` only the channels they may read: a private channel
/// they are not in is not named. Outside the workspace it is not found.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/policy", tag = "workspaces",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid)),
    responses((status = 200, body = WorkspacePolicyView,
            headers(("ETag" = String, description = "the policy's version, for `If-Match`"))),
        (status = 404, description = "no such workspace, or the caller is not in it")))]
pub async fn get(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<WorkspaceId>,
) -> Result<Response, ApiError> {
    Ok(tagged(state.policies.workspace(&actor, id).await?))
}

/// Replace the workspace's policy override (system admins: `policies.manage`). The body is
/// TOML (`application/toml`) or JSON of the same shape, at most 64 KiB; it is checked like a
/// module file, and an empty document returns the workspace to the modules. With
/// `If-Match: "<version>"` (the `ETag` of a `GET`) it is stored only if the policy is still at
/// that version. Every override is stored as a new version and audited, and so is a refusal.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/policy", tag = "workspaces",
    security(("bearer" = [])), params(("workspace_id" = String, Path, format = Uuid),
        ("If-Match" = Option<String>, Header, description = "the version (`ETag`) the change is made against")),
    request_body(content(
        (PolicyDocument = "application/json"),
        (String = "application/toml")),
        description = "keys not given keep the modules' values"),
    responses((status = 200, body = WorkspacePolicyView,
            headers(("ETag" = String, description = "the policy's new version"))),
        (status = 403, description = "missing policies.manage"),
        (status = 409, description = "`version_conflict`: another change took the same version at the same time"),
        (status = 412, description = "`version_conflict`: the policy is no longer at the version `If-Match` names"),
        (status = 413, description = "`policy_too_large`: the document is over 64 KiB"),
        (status = 415, description = "neither TOML nor JSON"),
        (status = 422, description = "`invalid_policy`: the message names the line (TOML) and the key")))]
pub async fn put(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<WorkspaceId>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let media = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let format = match media.as_str() {
        "application/json" => OverrideFormat::Json,
        "application/toml" | "text/toml" | "text/x-toml" | "text/plain" => OverrideFormat::Toml,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the policy as TOML (Content-Type: application/toml) or JSON",
            ))
        }
    };
    // A declared length far over the limit is refused unread; a body only somewhat over it
    // is read to its end first, so that a client still sending receives the refusal rather
    // than a reset connection.
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAINED_BEFORE_REFUSING as u64) {
        return Err(override_too_large().into());
    }
    let document = read_at_most(body, MAX_OVERRIDE_BYTES)
        .await
        .ok_or_else(|| ApiError::from(override_too_large()))?;
    let expected = expected_version(&headers);
    Ok(tagged(
        state
            .policies
            .set_override(&actor, id, format, document.to_vec(), expected)
            .await?,
    ))
}

/// How much of a body over the limit is read (and thrown away) before it is refused.
const DRAINED_BEFORE_REFUSING: usize = 1024 * 1024;

/// The body if it is at most `limit` bytes; `None` if it is longer (or breaks off), after
/// reading on to its end, [`DRAINED_BEFORE_REFUSING`] bytes or five seconds, whichever comes
/// first.
async fn read_at_most(body: Body, limit: usize) -> Option<Vec<u8>> {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut seen = 0usize;
    let read = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.ok()?;
            seen = seen.saturating_add(chunk.len());
            if seen <= limit {
                kept.extend_from_slice(&chunk);
            } else if seen > DRAINED_BEFORE_REFUSING {
                return None;
            }
        }
        Some(())
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), read)
        .await
        .ok()??;
    (seen <= limit).then_some(kept)
}

/// Read the enabled policy modules again (from `policy.dir`) and put them in force, if they
/// and every workspace's override are valid; a change is stored as a new version. Audited.
#[utoipa::path(post, path = "/api/v1/admin/policies/reload", tag = "policies",
    security(("bearer" = [])),
    responses((status = 200, body = ReloadView),
        (status = 403, description = "missing policies.manage"),
        (status = 422, description = "`invalid_policy`: the message names the file, line and key; the policy in force is unchanged")))]
pub async fn reload(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<axum::Json<ReloadView>, ApiError> {
    Ok(axum::Json(state.policies.reload(&actor).await?))
}
