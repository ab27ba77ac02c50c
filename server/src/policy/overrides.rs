//! Writing a workspace's override: the document's limits and formats, the version a change
//! expects, and the one path that checks, stores and audits an override (or audits its
//! refusal).
//!
//! Versions come from `MAX(version) + 1` inside the write's transaction; the database's key on
//! `version` is what stops two processes (two nodes, or a node and the command line) from
//! storing one version twice: the second is refused as a `version_conflict`.

use chrono::Utc;
use sha2::{Digest, Sha256};

use super::{Layer, LayerKind, Modules, PolicyError, Resolved};
use crate::audit::{Auditor, Event, Outcome};
use crate::domain::{ChannelId, WorkspaceId};
use crate::error::Error;
use crate::rbac::{Action, Actor, Resource};
use crate::store::policies::{self as policy_store, PolicyVersionRecord};
use crate::store::{self, Store, StoreError, Tx};

/// How an override document is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverrideFormat {
    /// TOML, like the module files.
    Toml,
    /// JSON of the same shape.
    Json,
}

/// The largest override document accepted, in bytes: refused before it is parsed.
pub const MAX_OVERRIDE_BYTES: usize = 64 * 1024;

/// The version a change expects the workspace's policy to be at (`If-Match`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Any version (`*`).
    Any,
    /// One of these versions; none (a tag that names no version) matches nothing.
    OneOf(Vec<i64>),
}

impl ExpectedVersion {
    pub(super) fn allows(&self, version: i64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::OneOf(versions) => versions.contains(&version),
        }
    }
}

pub(super) fn invalid(e: &PolicyError) -> Error {
    Error::refused("invalid_policy", e.to_string())
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Decides, inside the write, that `actor` may change `workspace`'s override (a refusal is
/// audited by the auditor) and that the workspace exists.
pub(super) async fn authorize_change(
    tx: &mut Tx,
    auditor: &Auditor,
    actor: &Actor,
    workspace: WorkspaceId,
) -> Result<(), Error> {
    auditor
        .authorize(
            tx,
            actor,
            Action::ManagePolicies,
            Resource::Workspace(workspace),
        )
        .await?;
    if store::workspaces::by_id(&mut tx.conn(), workspace)
        .await?
        .is_none()
    {
        return Err(Error::NotFound("workspace"));
    }
    Ok(())
}

/// Decides on a reader, before an override is parsed or checked, that `actor` may change
/// `workspace`'s override (a refusal is audited as `permission.denied`, as every refusal is)
/// and that the workspace exists. The write that stores it decides again
/// ([`authorize_change`]): a role taken away meanwhile no longer allows it.
pub(super) async fn authorize_change_before(
    store: &Store,
    auditor: &Auditor,
    actor: &Actor,
    workspace: WorkspaceId,
) -> Result<(), Error> {
    let mut conn = store.reader().await?;
    auditor
        .authorize_read(
            store,
            &mut conn.conn(),
            actor,
            Action::ManagePolicies,
            Resource::Workspace(workspace),
        )
        .await?;
    if store::workspaces::by_id(&mut conn.conn(), workspace)
        .await?
        .is_none()
    {
        return Err(Error::NotFound("workspace"));
    }
    Ok(())
}

/// Stores `record` under its version (taken with [`policy_store::next_version`] in the same
/// transaction). The database's key on the version is the guard between processes: another
/// process that took the same version first makes this a `version_conflict`.
pub(super) async fn insert_version(tx: &mut Tx, record: &PolicyVersionRecord) -> Result<(), Error> {
    match policy_store::insert(&mut tx.conn(), record).await {
        Ok(()) => Ok(()),
        Err(StoreError::Constraint(_)) => Err(Error::conflict(
            "version_conflict",
            format!(
                "another change to the policy took version {} at the same time; read the policy again and retry",
                record.version
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Stores `text` as `workspace`'s override, as a new version, and audits it: the one way an
/// override is written (by the API and by `concord policy clear-override`).
pub(super) async fn store_override(
    tx: &mut Tx,
    auditor: &Auditor,
    actor: &Actor,
    workspace: WorkspaceId,
    text: String,
    details: serde_json::Map<String, serde_json::Value>,
) -> Result<PolicyVersionRecord, Error> {
    let version = policy_store::next_version(&mut tx.conn()).await?;
    let record = PolicyVersionRecord {
        version,
        workspace_id: Some(workspace),
        digest: sha256(&text),
        document: text,
        created_by: actor.user_id(),
        created_at: Utc::now(),
    };
    insert_version(tx, &record).await?;
    let mut details = details;
    details.insert("version".into(), version.into());
    auditor
        .record(
            tx,
            Event::by(actor, "policy.override", Outcome::Allowed)
                .target("workspace", workspace)
                .workspace(workspace)
                .details(serde_json::Value::Object(details)),
        )
        .await?;
    Ok(record)
}

/// The audit entry of an override refused with `error`: `failed`, with its code and reason.
pub(super) fn refusal(actor: &Actor, workspace: WorkspaceId, error: &Error) -> Event {
    let code = match error {
        Error::Refused { code, .. }
        | Error::Conflict { code, .. }
        | Error::PreconditionFailed { code, .. } => *code,
        _ => "refused",
    };
    Event::by(actor, "policy.override", Outcome::Failed)
        .target("workspace", workspace)
        .workspace(workspace)
        .details(serde_json::json!({ "code": code, "error": error.to_string() }))
}

/// Records a refused override (kept although the write fails) and returns `error`.
pub(super) async fn refuse_override(
    tx: &mut Tx,
    auditor: &Auditor,
    actor: &Actor,
    workspace: WorkspaceId,
    error: Error,
) -> Error {
    match auditor
        .record_kept(tx, refusal(actor, workspace, &error))
        .await
    {
        Ok(()) => error,
        Err(e) => e,
    }
}

/// The layer `document` makes as `workspace`'s override and the policy it resolves to under
/// `modules`, or why it is refused (outer error: storage failed).
pub(super) async fn checked_override(
    tx: &mut Tx,
    modules: &Modules,
    workspace: WorkspaceId,
    format: OverrideFormat,
    document: Vec<u8>,
) -> Result<Result<(Layer, Resolved), PolicyError>, Error> {
    let layer = match format {
        OverrideFormat::Json => Layer::parse_json("workspace", "override", &document),
        OverrideFormat::Toml => match String::from_utf8(document) {
            Ok(text) => Layer::parse("workspace", "override", &text, LayerKind::Override),
            Err(_) => Err(PolicyError::new("override", "is not UTF-8 text")),
        },
    };
    let layer = match layer {
        Ok(layer) => layer,
        Err(e) => return Ok(Err(e)),
    };
    let resolved = match modules.resolve(Some(&layer)) {
        Ok(resolved) => resolved,
        Err(e) => return Ok(Err(e)),
    };
    for raw in layer.document.channels.keys() {
        let in_workspace = match raw.parse::<ChannelId>() {
            Ok(id) => store::channels::by_id(&mut tx.conn(), id)
                .await?
                .is_some_and(|c| c.workspace_id == workspace),
            Err(_) => false,
        };
        if !in_workspace {
            return Ok(Err(layer.error_at(
                &["channels", raw.as_str()],
                "no such channel in this workspace",
            )));
        }
    }
    Ok(Ok((layer, resolved)))
}

/// The refusal of an override document over [`MAX_OVERRIDE_BYTES`] (also answered by the
/// edge before it reads the rest of such a body).
pub fn override_too_large() -> Error {
    Error::TooLarge {
        code: "policy_too_large",
        message: format!(
            "a policy override may be at most {} KiB",
            MAX_OVERRIDE_BYTES / 1024
        ),
        limit: MAX_OVERRIDE_BYTES as u64,
    }
}
