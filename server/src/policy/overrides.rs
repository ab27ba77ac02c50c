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
use crate::store::{self, Conn, Store, StoreError, Tx};

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

/// The layer `document` makes as an override: parsed and checked like a module file, with no
/// storage (done before the write that stores it).
pub(super) fn parse_override(
    format: OverrideFormat,
    document: &[u8],
) -> Result<Layer, PolicyError> {
    match format {
        OverrideFormat::Json => Layer::parse_json("workspace", "override", document),
        OverrideFormat::Toml => match std::str::from_utf8(document) {
            Ok(text) => Layer::parse("workspace", "override", text, LayerKind::Override),
            Err(_) => Err(PolicyError::new("override", "is not UTF-8 text")),
        },
    }
}

/// The policy `layer` resolves to as `workspace`'s override under `modules`, or why it is
/// refused (outer error: storage failed). The channels it names are looked up in one query,
/// on a reader: channels never leave their workspace and are never deleted, so what is found
/// here still holds when the override is stored.
pub(super) async fn checked_override(
    conn: &mut Conn<'_>,
    modules: &Modules,
    workspace: WorkspaceId,
    layer: &Layer,
) -> Result<Result<Resolved, PolicyError>, Error> {
    let resolved = match modules.resolve(Some(layer)) {
        Ok(resolved) => resolved,
        Err(e) => return Ok(Err(e)),
    };
    let named: Vec<ChannelId> = layer.channel_ids().collect();
    let found = store::channels::in_workspace(conn, workspace, &named).await?;
    if let Some(missing) = named.iter().find(|id| !found.contains(id)) {
        return Ok(Err(layer.error_at(
            &["channels", &missing.to_string()],
            "no such channel in this workspace",
        )));
    }
    Ok(Ok(resolved))
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
