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
//! [`safeguards`] is HIPAA mode's refusal to start unsafely.

mod load;
pub mod safeguards;
mod schema;

pub use load::{
    Layer, LayerKind, Modules, PolicyError, Resolved, BUILT_IN, HIPAA, HIPAA_AUDIT_DAYS, KEYS,
};
pub use schema::{
    Bounded, ChannelLayer, ChannelPolicy, DataSubject, DataSubjectLayer, Days, Erasure, Phi,
    PhiLayer, Policy, PolicyDocument, Retention, RetentionLayer, MAX_DAYS,
};

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::audit::{Auditor, Event, Outcome};
use crate::config::PolicyConfig;
use crate::domain::{ChannelId, UserId, WorkspaceId};
use crate::error::Error;
use crate::rbac::{Action, Actor, Resource};
use crate::store::policies::{self as policy_store, PolicyVersionRecord};
use crate::store::{self, Conn, Store, StoreError, Tx};

/// A workspace's effective policy, as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct WorkspacePolicyView {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The policy's version: it rises with every change to the modules or the override.
    pub version: i64,
    /// The enabled modules, in the order they are layered.
    pub modules: Vec<String>,
    /// Every key with its value.
    pub policy: Policy,
    /// Where each value comes from, by dotted key: a module's name, or `workspace` for the
    /// workspace's override.
    pub sources: BTreeMap<String, String>,
    /// The workspace's override, if it has one.
    pub workspace_override: Option<OverrideView>,
}

/// A workspace's stored override.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct OverrideView {
    /// The version it was stored as.
    pub version: i64,
    /// The override as TOML (a JSON override is stored as its TOML equivalent).
    pub document: String,
    /// When it was set.
    pub created_at: DateTime<Utc>,
    /// Who set it.
    pub created_by: Option<UserId>,
}

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

/// How an override document is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverrideFormat {
    /// TOML, like the module files.
    Toml,
    /// JSON of the same shape.
    Json,
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
    /// never stored against modules a concurrent reload is replacing.
    changes: Arc<tokio::sync::Mutex<()>>,
}

/// The layer a stored override makes.
fn stored_layer(record: &PolicyVersionRecord) -> Result<Layer, PolicyError> {
    let origin = match record.workspace_id {
        Some(ws) => format!("workspace {ws} override version {}", record.version),
        None => format!("override version {}", record.version),
    };
    Layer::parse("workspace", &origin, &record.document, LayerKind::Override)
}

/// Whether every stored override holds under `modules` (the first that does not, if any).
async fn check_overrides(
    conn: &mut Conn<'_>,
    modules: &Modules,
) -> Result<Result<(), PolicyError>, StoreError> {
    for record in policy_store::latest_overrides(conn).await? {
        if let Err(e) = stored_layer(&record).and_then(|l| modules.resolve(Some(&l))) {
            return Ok(Err(e));
        }
    }
    Ok(Ok(()))
}

fn invalid(e: PolicyError) -> Error {
    Error::refused("invalid_policy", e.to_string())
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
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
                    policy_store::insert(
                        &mut tx.conn(),
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

    /// A workspace's effective policy and its version, for the jobs that enforce it (no
    /// actor: Concord's own reading).
    pub async fn effective(&self, workspace: WorkspaceId) -> Result<(Resolved, i64), Error> {
        let mut conn = self.store.reader().await?;
        let (resolved, version, _) = self.resolve_in(&mut conn.conn(), workspace).await?;
        Ok((resolved, version))
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
        let version = record
            .as_ref()
            .map_or(loaded.version, |r| r.version.max(loaded.version));
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
    /// anyone who may see the workspace.
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
        Ok(self.view(workspace, resolved, version, record))
    }

    /// Replaces a workspace's override with `document` (TOML or JSON; empty returns the
    /// workspace to the modules), checked like a module file; stored as a new version and
    /// audited.
    #[tracing::instrument(skip(self, actor, document), fields(actor = ?actor.user_id()))]
    pub async fn set_override(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        format: OverrideFormat,
        document: Vec<u8>,
    ) -> Result<WorkspacePolicyView, Error> {
        let _changing = self.changes.lock().await;
        let loaded = self.loaded();
        let in_force = loaded.version;
        let auditor = self.auditor.clone();
        let a = actor.clone();
        let (record, resolved) = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    auditor
                        .authorize(
                            tx,
                            &a,
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
                    let layer = match format {
                        OverrideFormat::Json => {
                            Layer::parse_json("workspace", "override", &document)
                        }
                        OverrideFormat::Toml => match String::from_utf8(document) {
                            Ok(text) => {
                                Layer::parse("workspace", "override", &text, LayerKind::Override)
                            }
                            Err(_) => Err(PolicyError::new("override", "is not UTF-8 text")),
                        },
                    }
                    .map_err(invalid)?;
                    let resolved = loaded.modules.resolve(Some(&layer)).map_err(invalid)?;
                    for raw in layer.document.channels.keys() {
                        let in_workspace = match raw.parse::<ChannelId>() {
                            Ok(id) => store::channels::by_id(&mut tx.conn(), id)
                                .await?
                                .is_some_and(|c| c.workspace_id == workspace),
                            Err(_) => false,
                        };
                        if !in_workspace {
                            return Err(invalid(layer.error_at(
                                &["channels", raw.as_str()],
                                "no such channel in this workspace",
                            )));
                        }
                    }
                    let version = policy_store::next_version(&mut tx.conn()).await?;
                    let record = PolicyVersionRecord {
                        version,
                        workspace_id: Some(workspace),
                        digest: sha256(&layer.text),
                        document: layer.text,
                        created_by: a.user_id(),
                        created_at: Utc::now(),
                    };
                    policy_store::insert(&mut tx.conn(), &record).await?;
                    auditor
                        .record(
                            tx,
                            Event::by(&a, "policy.override", Outcome::Allowed)
                                .target("workspace", workspace)
                                .workspace(workspace)
                                .details(serde_json::json!({ "version": version })),
                        )
                        .await?;
                    Ok::<_, Error>((record, resolved))
                })
            })
            .await?;
        let version = record.version.max(in_force);
        Ok(self.view(workspace, resolved, version, Some(record)))
    }

    /// Reads the enabled modules again (from `policy.dir`) and puts them in force if they
    /// and every stored override hold; a change is stored as a new version. Audited whether
    /// it succeeds or not.
    #[tracing::instrument(skip(self, actor), fields(actor = ?actor.user_id()))]
    pub async fn reload(&self, actor: &Actor) -> Result<ReloadView, Error> {
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
                            return Err(invalid(e));
                        }
                    };
                    let latest = policy_store::latest_deployment(&mut tx.conn()).await?;
                    let (version, changed) = match latest {
                        Some(l) if l.digest == modules.digest() => (l.version, false),
                        _ => {
                            let version = policy_store::next_version(&mut tx.conn()).await?;
                            policy_store::insert(
                                &mut tx.conn(),
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

/// What `concord policy check` prints: the modules, then the effective policy of the
/// deployment and of every workspace with where each value comes from. Checks every stored
/// override against `modules`; writes nothing.
pub async fn check_report(store: &Store, modules: &Modules) -> Result<String, LoadError> {
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
    for workspace in policy_store::workspace_ids(&mut conn.conn()).await? {
        let record = overrides.get(&workspace);
        let layer = record.map(stored_layer).transpose()?;
        let resolved = modules.resolve(layer.as_ref())?;
        let title = match record {
            Some(r) if !r.document.trim().is_empty() => {
                format!("workspace {workspace} (override version {})", r.version)
            }
            _ => format!("workspace {workspace}"),
        };
        write_resolved(&mut out, &title, &resolved);
    }
    Ok(out)
}

fn write_resolved(out: &mut String, title: &str, resolved: &Resolved) {
    use std::fmt::Write as _;
    let _ = writeln!(out, "\n[{title}]");
    for (key, value, source) in resolved.lines() {
        let _ = writeln!(out, "{:<48} # {source}", format!("{key} = {value}"));
    }
}
