//! Compliance policy modules: retention, PHI safeguards and data-subject rights, declared in
//! TOML, layered, overridden per workspace, versioned and audited.
//!
//! The deployment enables modules in order (`policy.modules`: `default`, then for example
//! `gdpr` and `hipaa`), read from `policy.dir` or built in ([`load`]); each later layer
//! replaces the keys it sets, and a workspace's override (set through the admin API) goes on
//! top. Every layer is checked when it is read, with errors naming file, line and key
//! ([`PolicyError`]); a bad module or stored override stops Concord at start. Every change
//! (a start or reload that finds the modules changed, each override) is a new
//! `policy_versions` row and an audit entry. [`PolicyService::effective`] is how the jobs
//! that enforce a policy (retention, logoff, data-subject requests) read a workspace's.
//! [`safeguards`] is HIPAA mode's refusal to start unsafely. [`phi_reads`] audits every read of
//! PHI where `phi.audit_reads` says so, for the read paths that call it.
//!
//! An override is written one way ([`overrides`]): checked, stored under a version the
//! database keeps unique, and audited, and a refused one is audited too. What a reader sees
//! of it depends on what they may do ([`view`]). The command line checks every stored
//! override and clears one without a server ([`offline`]): a stored override that stricter
//! modules no longer allow stops the server at start, and clearing it is the way out.

mod load;
mod offline;
mod overrides;
mod phi_reads;
pub mod safeguards;
mod schema;
mod view;

pub use load::{
    Layer, LayerKind, Modules, PolicyError, Resolved, BUILT_IN, HIPAA, HIPAA_AUDIT_DAYS, KEYS,
};
pub use offline::{check_report, clear_override, CheckReport};
pub use overrides::{override_too_large, ExpectedVersion, OverrideFormat, MAX_OVERRIDE_BYTES};
pub use phi_reads::{PhiRead, PhiScope};
pub use schema::{
    Bounded, ChannelLayer, ChannelPolicy, DataSubject, DataSubjectLayer, Days, Erasure, Phi,
    PhiLayer, Policy, PolicyDocument, Retention, RetentionLayer, MAX_DAYS,
};
pub use view::{OverrideView, WorkspacePolicyView};

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use chrono::Utc;
use serde::Serialize;

use crate::audit::{Auditor, Event, Outcome};
use crate::config::PolicyConfig;
use crate::domain::{ChannelId, WorkspaceId};
use crate::error::Error;
use crate::rbac::{self, Action, Actor, AuthzError, Resource};
use crate::store::policies::{self as policy_store, PolicyVersionRecord};
use crate::store::{self, Conn, Store, StoreError, Tx};
use overrides::{
    authorize_change, authorize_change_before, checked_override, insert_version, invalid,
    parse_override, refusal, refuse_override, store_override,
};

/// What a reload of the policy modules did.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ReloadView {
    /// The deployment policy's version after the reload.
    pub version: i64,
    /// Whether the modules changed (and so a new version was stored).
    pub changed: bool,
    /// The enabled modules, in order.
    pub modules: Vec<String>,
}

/// Why the policy could not be loaded at start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A module or a stored override is invalid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Storage failed.
    #[error(transparent)]
    Service(#[from] Error),
}

impl From<StoreError> for LoadError {
    fn from(e: StoreError) -> Self {
        LoadError::Service(e.into())
    }
}

struct Loaded {
    modules: Modules,
    version: i64,
}

/// The policies in force: the loaded modules and the stored overrides; cheap to clone.
#[derive(Clone)]
pub struct PolicyService {
    store: Store,
    auditor: Auditor,
    config: Arc<PolicyConfig>,
    current: Arc<RwLock<Arc<Loaded>>>,
    /// Held by an override's change and by a reload from before they read the modules in
    /// force until the modules they checked against are the ones in force: an override is
    /// never stored against modules a concurrent reload is replacing. In-process only: the
    /// database's key on `version` is what keeps two processes from taking one version.
    changes: Arc<tokio::sync::Mutex<()>>,
    /// Which reads each workspace audits ([`phi_reads`]).
    phi_cache: phi_reads::PhiCache,
}

/// The layer a stored override makes.
fn stored_layer(record: &PolicyVersionRecord) -> Result<Layer, PolicyError> {
    let origin = match record.workspace_id {
        Some(ws) => format!("workspace {ws} override version {}", record.version),
        None => format!("override version {}", record.version),
    };
    Layer::parse("workspace", &origin, &record.document, LayerKind::Override)
}

/// The stored overrides that do not hold under `modules`, with their workspaces.
async fn invalid_overrides(
    conn: &mut Conn<'_>,
    modules: &Modules,
) -> Result<Vec<(Option<WorkspaceId>, PolicyError)>, StoreError> {
    Ok(policy_store::latest_overrides(conn)
        .await?
        .iter()
        .filter_map(|record| {
            stored_layer(record)
                .and_then(|l| modules.resolve(Some(&l)))
                .err()
                .map(|e| (record.workspace_id, e))
        })
        .collect())
}

/// The first stored override that does not hold under `modules`, saying how to find and
/// clear the others.
async fn check_overrides(
    conn: &mut Conn<'_>,
    modules: &Modules,
) -> Result<Result<(), PolicyError>, StoreError> {
    let invalid = invalid_overrides(conn, modules).await?;
    let count = invalid.len();
    Ok(match invalid.into_iter().next() {
        None => Ok(()),
        Some((workspace, mut e)) => {
            let others = match count {
                1 => String::new(),
                n => format!(" ({} more: `concord policy check` lists them)", n - 1),
            };
            if let Some(ws) = workspace {
                e.message = format!(
                    "{}; `concord policy clear-override --workspace {ws}` clears it{others}",
                    e.message
                );
            }
            Err(e)
        }
    })
}

impl PolicyService {
    /// Starts with `modules` (loaded and checked by the caller): refuses if a stored override
    /// does not hold under them, and stores them as a new version if they changed since the
    /// last start or reload.
    pub async fn start(
        store: Store,
        auditor: Auditor,
        config: &PolicyConfig,
        modules: Modules,
    ) -> Result<PolicyService, LoadError> {
        {
            let mut conn = store.reader().await?;
            check_overrides(&mut conn.conn(), &modules).await??;
        }
        let digest = modules.digest().to_owned();
        let names = modules.names();
        let manifest = modules.manifest().to_string();
        let recorder = auditor.clone();
        let version = store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let latest = policy_store::latest_deployment(&mut tx.conn()).await?;
                    if let Some(latest) = latest.filter(|l| l.digest == digest) {
                        return Ok::<_, Error>(latest.version);
                    }
                    let version = policy_store::next_version(&mut tx.conn()).await?;
                    insert_version(
                        tx,
                        &PolicyVersionRecord {
                            version,
                            workspace_id: None,
                            document: manifest,
                            digest,
                            created_by: None,
                            created_at: Utc::now(),
                        },
                    )
                    .await?;
                    recorder
                        .record(
                            tx,
                            Event::by(&Actor::system(), "policy.load", Outcome::Allowed)
                                .target("policy", "deployment")
                                .details(
                                    serde_json::json!({ "version": version, "modules": names }),
                                ),
                        )
                        .await?;
                    Ok(version)
                })
            })
            .await?;
        Ok(PolicyService {
            store,
            auditor,
            config: Arc::new(config.clone()),
            current: Arc::new(RwLock::new(Arc::new(Loaded { modules, version }))),
            changes: Arc::new(tokio::sync::Mutex::new(())),
            phi_cache: Default::default(),
        })
    }

    fn loaded(&self) -> Arc<Loaded> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether the `hipaa` module is enabled.
    pub fn hipaa(&self) -> bool {
        self.loaded().modules.hipaa()
    }

    /// The enabled modules' names, in order.
    pub fn modules(&self) -> Vec<String> {
        self.loaded().modules.names()
    }

    /// A workspace's effective policy and its version, for the jobs that enforce it (no
    /// actor: Concord's own reading).
    pub async fn effective(&self, workspace: WorkspaceId) -> Result<(Resolved, i64), Error> {
        let mut conn = self.store.reader().await?;
        let (resolved, version, _) = self.resolve_in(&mut conn.conn(), workspace).await?;
        Ok((resolved, version))
    }

    /// The deployment's own policy: its modules without any workspace's override, for rules
    /// that belong to no workspace (the deadlines of data-subject requests, which are made
    /// to the deployment's operator, not to a workspace).
    pub fn deployment(&self) -> Result<Policy, Error> {
        let resolved = self
            .loaded()
            .modules
            .resolve(None)
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(resolved.policy)
    }

    /// The workspaces holding PHI (`phi.enabled`, or a channel's `phi`) with their
    /// safeguards, for the jobs that enforce them.
    pub async fn holding_phi(&self) -> Result<Vec<(WorkspaceId, Phi)>, Error> {
        let mut conn = self.store.reader().await?;
        let workspaces = policy_store::workspace_ids(&mut conn.conn()).await?;
        let mut out = Vec::new();
        for workspace in workspaces {
            let (resolved, _, _) = self.resolve_in(&mut conn.conn(), workspace).await?;
            let policy = resolved.policy;
            if policy.phi.enabled || policy.channels.values().any(|c| c.phi) {
                out.push((workspace, policy.phi));
            }
        }
        Ok(out)
    }

    async fn resolve_in(
        &self,
        conn: &mut Conn<'_>,
        workspace: WorkspaceId,
    ) -> Result<(Resolved, i64, Option<PolicyVersionRecord>), Error> {
        let loaded = self.loaded();
        let record = policy_store::latest_override(conn, workspace).await?;
        let layer = record
            .as_ref()
            .map(stored_layer)
            .transpose()
            .map_err(|e| Error::Internal(e.to_string()))?;
        // Starts and reloads check every stored override, so this holds.
        let resolved = loaded
            .modules
            .resolve(layer.as_ref())
            .map_err(|e| Error::Internal(e.to_string()))?;
        let version = effective_version(record.as_ref(), loaded.version);
        Ok((resolved, version, record))
    }

    fn view(
        &self,
        workspace: WorkspaceId,
        resolved: Resolved,
        version: i64,
        record: Option<PolicyVersionRecord>,
    ) -> WorkspacePolicyView {
        WorkspacePolicyView {
            workspace_id: workspace,
            version,
            modules: self.loaded().modules.names(),
            policy: resolved.policy,
            sources: resolved.sources,
            workspace_override: record.filter(|r| !r.document.trim().is_empty()).map(|r| {
                OverrideView {
                    version: r.version,
                    document: r.document,
                    created_at: r.created_at,
                    created_by: r.created_by,
                }
            }),
        }
    }

    /// A workspace's effective policy, its version and where each value comes from; for
    /// anyone who may see the workspace. The override document and the entries of channels
    /// the reader may not read are shown only to those who manage policies and to compliance
    /// officers (see [`view`]).
    #[tracing::instrument(skip(self, actor), fields(actor = ?actor.user_id()))]
    pub async fn workspace(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
    ) -> Result<WorkspacePolicyView, Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ReadWorkspace,
                Resource::Workspace(workspace),
            )
            .await?;
        if store::workspaces::by_id(&mut conn.conn(), workspace)
            .await?
            .is_none()
        {
            return Err(Error::NotFound("workspace"));
        }
        let (resolved, version, record) = self.resolve_in(&mut conn.conn(), workspace).await?;
        let full = self.view(workspace, resolved, version, record);
        let Some(user) = actor.user_id() else {
            return Ok(full);
        };
        let held = rbac::workspace_permissions(&mut conn.conn(), user, workspace).await?;
        if view::sees_everything(&held) {
            return Ok(full);
        }
        let readable: HashSet<ChannelId> = if full.policy.channels.is_empty() {
            HashSet::new()
        } else {
            match rbac::readable_channels(&mut conn.conn(), actor, workspace).await {
                Ok(channels) => channels.into_iter().map(|c| c.channel.id).collect(),
                Err(AuthzError::Store(e)) => return Err(e.into()),
                Err(_) => HashSet::new(),
            }
        };
        Ok(full.limited_to(&readable))
    }

    /// Replaces a workspace's override with `document` (TOML or JSON, at most
    /// [`MAX_OVERRIDE_BYTES`]; empty returns the workspace to the modules), checked like a
    /// module file, if the policy is still at the `expected` version; stored as a new version
    /// and audited, and so is a refusal.
    #[tracing::instrument(skip(self, actor, document), fields(actor = ?actor.user_id()))]
    pub async fn set_override(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        format: OverrideFormat,
        document: Vec<u8>,
        expected: Option<ExpectedVersion>,
    ) -> Result<WorkspacePolicyView, Error> {
        if document.len() > MAX_OVERRIDE_BYTES {
            return Err(override_too_large());
        }
        // Decided before the document is parsed or any channel looked up.
        authorize_change_before(&self.store, &self.auditor, actor, workspace).await?;
        // Checked outside the shared write: only the version check and the insert wait on it.
        let parsed = parse_override(format, &document);
        let _changing = self.changes.lock().await;
        let loaded = self.loaded();
        let in_force = loaded.version;
        let checked = match parsed {
            Ok(layer) => {
                let mut conn = self.store.reader().await?;
                checked_override(&mut conn.conn(), &loaded.modules, workspace, &layer)
                    .await?
                    .map(|resolved| (layer, resolved))
            }
            Err(e) => Err(e),
        };
        let (layer, resolved) = match checked {
            Ok(checked) => checked,
            Err(e) => {
                let refused = invalid(&e);
                self.auditor
                    .record_alone(&self.store, refusal(actor, workspace, &refused))
                    .await?;
                return Err(refused);
            }
        };
        let auditor = self.auditor.clone();
        let a = actor.clone();
        let written = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    authorize_change(tx, &auditor, &a, workspace).await?;
                    if let Some(expected) = &expected {
                        let current = policy_store::latest_override(&mut tx.conn(), workspace)
                            .await?;
                        let now = effective_version(current.as_ref(), in_force);
                        if !expected.allows(now) {
                            let stale = Error::precondition_failed(
                                "version_conflict",
                                format!(
                                    "the policy is now at version {now}, not the one If-Match names; read it again and retry"
                                ),
                            );
                            return Err(refuse_override(tx, &auditor, &a, workspace, stale).await);
                        }
                    }
                    let record = store_override(
                        tx,
                        &auditor,
                        &a,
                        workspace,
                        layer.text,
                        serde_json::Map::new(),
                    )
                    .await?;
                    Ok::<_, Error>((record, resolved))
                })
            })
            .await;
        let (record, resolved) = match written {
            Ok(done) => done,
            // Another process took the version: the database refused the write, which rolled
            // back with whatever it would have kept, so the refusal is recorded on its own.
            Err(conflict @ Error::Conflict { .. }) => {
                self.auditor
                    .record_alone(&self.store, refusal(actor, workspace, &conflict))
                    .await?;
                return Err(conflict);
            }
            Err(e) => return Err(e),
        };
        let version = record.version.max(in_force);
        Ok(self.view(workspace, resolved, version, Some(record)))
    }

    /// Reads the enabled modules again (from `policy.dir`) and puts them in force if they
    /// and every stored override hold; a change is stored as a new version. Authorized before
    /// anything is read; audited whether it succeeds or not.
    #[tracing::instrument(skip(self, actor), fields(actor = ?actor.user_id()))]
    pub async fn reload(&self, actor: &Actor) -> Result<ReloadView, Error> {
        {
            let mut conn = self.store.reader().await?;
            self.auditor
                .authorize_read(
                    &self.store,
                    &mut conn.conn(),
                    actor,
                    Action::ManagePolicies,
                    Resource::System,
                )
                .await?;
        }
        let _changing = self.changes.lock().await;
        let config = self.config.clone();
        let read = tokio::task::spawn_blocking(move || Modules::load(&config))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let auditor = self.auditor.clone();
        let a = actor.clone();
        let (modules, version, changed) = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    // Decided again where the change is written: a role taken away while the
                    // files were read no longer allows it.
                    auditor
                        .authorize(tx, &a, Action::ManagePolicies, Resource::System)
                        .await?;
                    let checked = match read {
                        Ok(modules) => {
                            let overrides = check_overrides(&mut tx.conn(), &modules).await?;
                            overrides.map(|()| modules)
                        }
                        Err(e) => Err(e),
                    };
                    let modules = match checked {
                        Ok(modules) => modules,
                        Err(e) => {
                            auditor
                                .record_kept(
                                    tx,
                                    Event::by(&a, "policy.reload", Outcome::Failed)
                                        .target("policy", "deployment")
                                        .details(serde_json::json!({ "error": e.to_string() })),
                                )
                                .await?;
                            return Err(invalid(&e));
                        }
                    };
                    let latest = policy_store::latest_deployment(&mut tx.conn()).await?;
                    let (version, changed) = match latest {
                        Some(l) if l.digest == modules.digest() => (l.version, false),
                        _ => {
                            let version = policy_store::next_version(&mut tx.conn()).await?;
                            insert_version(
                                tx,
                                &PolicyVersionRecord {
                                    version,
                                    workspace_id: None,
                                    document: modules.manifest().to_string(),
                                    digest: modules.digest().to_owned(),
                                    created_by: a.user_id(),
                                    created_at: Utc::now(),
                                },
                            )
                            .await?;
                            (version, true)
                        }
                    };
                    auditor
                        .record(
                            tx,
                            Event::by(&a, "policy.reload", Outcome::Allowed)
                                .target("policy", "deployment")
                                .details(serde_json::json!({
                                    "version": version,
                                    "changed": changed,
                                    "modules": modules.names(),
                                })),
                        )
                        .await?;
                    Ok::<_, Error>((modules, version, changed))
                })
            })
            .await?;
        let names = modules.names();
        let next = Arc::new(Loaded { modules, version });
        match self.current.write() {
            Ok(mut guard) => *guard = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        Ok(ReloadView {
            version,
            changed,
            modules: names,
        })
    }
}

/// A workspace's effective version: the newer of its override and the modules in force.
fn effective_version(record: Option<&PolicyVersionRecord>, in_force: i64) -> i64 {
    record.map_or(in_force, |r| r.version.max(in_force))
}
