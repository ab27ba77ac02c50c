//! What the command line does with the policies, with or without a server running: `concord
//! policy check` ([`check_report`]) and `concord policy clear-override` ([`clear_override`]).
//!
//! Neither needs the modules a server would refuse to start with to be valid for every
//! workspace: the check lists every stored override the modules no longer allow, and clearing
//! one is how an operator gets a server that refuses to start running again.

use std::collections::BTreeMap;

use super::{authorize_change, store_override, stored_layer, Modules, PolicyError, Resolved};
use crate::audit::Auditor;
use crate::domain::WorkspaceId;
use crate::error::Error;
use crate::rbac::Actor;
use crate::store::policies::{self as policy_store, PolicyVersionRecord};
use crate::store::{Store, Tx};

/// What `concord policy check` found.
#[derive(Debug)]
pub struct CheckReport {
    /// The modules, then the effective policy of the deployment and of every workspace whose
    /// override holds, with where each value comes from.
    pub text: String,
    /// Every workspace whose stored override the modules no longer allow, and why.
    pub invalid: Vec<(WorkspaceId, PolicyError)>,
}

/// Checks every stored override against `modules` and describes the effective policies;
/// writes nothing.
pub async fn check_report(store: &Store, modules: &Modules) -> Result<CheckReport, Error> {
    use std::fmt::Write as _;
    let mut conn = store.reader().await?;
    let overrides: BTreeMap<WorkspaceId, PolicyVersionRecord> =
        policy_store::latest_overrides(&mut conn.conn())
            .await?
            .into_iter()
            .filter_map(|r| r.workspace_id.map(|w| (w, r)))
            .collect();
    let stored = policy_store::latest_deployment(&mut conn.conn()).await?;
    let mut out = String::new();
    let _ = writeln!(out, "# modules, in order");
    for (name, origin, description) in modules.described() {
        let _ = writeln!(
            out,
            "#   {name}: {origin}{}",
            description.map(|d| format!(" ({d})")).unwrap_or_default()
        );
    }
    match &stored {
        Some(s) if s.digest == modules.digest() => {
            let _ = writeln!(out, "# in force as version {}", s.version);
        }
        _ => {
            let _ = writeln!(
                out,
                "# not yet in force: a restart or POST /api/v1/admin/policies/reload stores them as a new version"
            );
        }
    }
    write_resolved(&mut out, "deployment", modules.base());
    let mut invalid = Vec::new();
    for workspace in policy_store::workspace_ids(&mut conn.conn()).await? {
        let record = overrides.get(&workspace);
        let resolved = match record
            .map(stored_layer)
            .transpose()
            .and_then(|layer| modules.resolve(layer.as_ref()))
        {
            Ok(resolved) => resolved,
            Err(e) => {
                invalid.push((workspace, e));
                continue;
            }
        };
        let title = match record {
            Some(r) if !r.document.trim().is_empty() => {
                format!("workspace {workspace} (override version {})", r.version)
            }
            _ => format!("workspace {workspace}"),
        };
        write_resolved(&mut out, &title, &resolved);
    }
    Ok(CheckReport { text: out, invalid })
}

fn write_resolved(out: &mut String, title: &str, resolved: &Resolved) {
    use std::fmt::Write as _;
    let _ = writeln!(out, "\n[{title}]");
    for (key, value, source) in resolved.lines() {
        let _ = writeln!(out, "{:<48} # {source}", format!("{key} = {value}"));
    }
}

/// Returns `workspace` to the modules by storing an empty override as a new version, audited
/// like any override; without checking it against the modules, so that an override they no
/// longer allow can be cleared while the server refuses to start. `None` if the workspace had
/// no override to clear (nothing is written).
pub async fn clear_override(
    store: &Store,
    auditor: &Auditor,
    actor: &Actor,
    workspace: WorkspaceId,
) -> Result<Option<i64>, Error> {
    let auditor = auditor.clone();
    let actor = actor.clone();
    store
        .write(move |tx: &mut Tx| {
            Box::pin(async move {
                authorize_change(tx, &auditor, &actor, workspace).await?;
                let current = policy_store::latest_override(&mut tx.conn(), workspace).await?;
                let Some(current) = current.filter(|r| !r.document.trim().is_empty()) else {
                    return Ok(None);
                };
                let mut details = serde_json::Map::new();
                details.insert("cleared_version".into(), current.version.into());
                let record =
                    store_override(tx, &auditor, &actor, workspace, String::new(), details).await?;
                Ok(Some(record.version))
            })
        })
        .await
}
