//! Key operations: data-key rotation with its background re-encryption, audit signing key
//! rotation, and the status of both.
//!
//! [`KeyService::rotate_dek`] starts a new version of every data key (new writes use it at
//! once in this process; other processes notice within `keys.reencrypt_poll_seconds`) and
//! records a rotation with one progress row per re-encryptable table ([`registry`], made from
//! the data inventory ([`crate::inventory`]) that start-up composes from every feature's declarations), in one
//! audited write. The [`Reencryptor`] then re-encrypts old rows in small batches through the
//! group-commit writer, each batch recording its progress in the same transaction, under a
//! lease so that exactly one process (a running server, or the command line when no server
//! runs) works on a rotation and a restart resumes after the last committed batch.
//! [`KeyService::rotate_audit_key`] starts a new checkpoint signing key; the old public keys
//! stay in the history that `concord audit public-key` prints.
//!
//! Invariants: rotations and their progress are written only here and in [`worker`]; every
//! key operation is authorized (`keys.manage`) and audited; this module imports no feature
//! (the inventory is handed in).

pub mod registry;
pub mod worker;

pub use crate::inventory::Inventory;
pub use registry::Registry;
pub use worker::Reencryptor;

use std::sync::Arc;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Notify;

use crate::audit::{Auditor, Event, Outcome};
use crate::crypto::{Keyring, SigningKeyInfo};
use crate::error::Error;
use crate::rbac::{Action, Actor, Principal, Resource};
use crate::store::keys::{self as key_store, ProgressRecord, RotationRecord};
use crate::store::{Conn, Store, Tx};

/// How many rotations the status shows.
const STATUS_ROTATIONS: i64 = 10;

/// Progress over one re-encryptable target.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TargetProgress {
    /// The target (`users`, `messages`, ...).
    pub target: String,
    /// Rows counted when the rotation started.
    pub total: i64,
    /// Rows examined so far.
    pub done: i64,
    /// Rows re-encrypted so far (the rest were already under the current key).
    pub reencrypted: i64,
    /// Whether the target is done.
    pub finished: bool,
}

/// A data-key rotation and its re-encryption progress.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RotationView {
    /// Its id.
    pub id: String,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// `system` (the command line) or the requesting user's id.
    pub requested_by: String,
    /// Key scopes that got a new version.
    pub scopes: i64,
    /// `pending` (waiting for a runner), `running` or `finished`.
    pub state: String,
    /// When every target was done.
    pub finished_at: Option<DateTime<Utc>>,
    /// Rows examined over all targets.
    pub done: i64,
    /// Rows counted over all targets.
    pub total: i64,
    /// Per target.
    pub targets: Vec<TargetProgress>,
}

impl RotationView {
    fn new(r: RotationRecord, progress: Vec<ProgressRecord>, now: DateTime<Utc>) -> RotationView {
        let state = if r.finished_at.is_some() {
            "finished"
        } else if r.runner.is_some() && r.lease_until.is_some_and(|t| t >= now) {
            "running"
        } else {
            "pending"
        };
        let targets: Vec<TargetProgress> = progress
            .into_iter()
            .map(|p| TargetProgress {
                // Rows added during the job can make `done` pass the total counted at the start.
                total: p.total.max(p.done),
                target: p.target,
                done: p.done,
                reencrypted: p.changed,
                finished: p.finished_at.is_some(),
            })
            .collect();
        RotationView {
            id: r.id,
            requested_at: r.requested_at,
            requested_by: r.requested_by,
            scopes: r.scopes,
            state: state.into(),
            finished_at: r.finished_at,
            done: targets.iter().map(|t| t.done).sum(),
            total: targets.iter().map(|t| t.total).sum(),
            targets,
        }
    }

    /// One line of progress, such as `users 12/12, messages 340/1000 (30%)`.
    pub fn progress_line(&self) -> String {
        let parts: Vec<String> = self
            .targets
            .iter()
            .map(|t| format!("{} {}/{}", t.target, t.done, t.total))
            .collect();
        let percent = if self.total == 0 {
            100
        } else {
            self.done * 100 / self.total
        };
        format!("{} ({percent}%)", parts.join(", "))
    }
}

/// Data keys, summarised.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct KeyCounts {
    /// Key scopes (users, workspaces, system).
    pub scopes: i64,
    /// Versions new writes use.
    pub current_versions: i64,
    /// Versions kept only to read older data.
    pub retired_versions: i64,
}

/// The state of the deployment's keys.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct KeysStatus {
    /// The key-encryption key wrapping every data key.
    pub kek_id: String,
    /// Data keys.
    pub keys: KeyCounts,
    /// The audit checkpoint signing key versions, oldest first (base64 public keys).
    pub audit_signing_keys: Vec<SigningKeyView>,
    /// Recent data-key rotations, newest first.
    pub rotations: Vec<RotationView>,
}

/// One version of the audit checkpoint signing key.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SigningKeyView {
    /// The version checkpoints name as `key_version`.
    pub version: i64,
    /// Ed25519 public key, base64.
    pub public_key: String,
    /// Since when it signs.
    pub created_at: DateTime<Utc>,
}

impl From<SigningKeyInfo> for SigningKeyView {
    fn from(k: SigningKeyInfo) -> Self {
        SigningKeyView {
            version: k.version,
            public_key: base64::engine::general_purpose::STANDARD.encode(&k.public_key),
            created_at: k.created_at,
        }
    }
}

/// Key rotation and status; cheap to clone.
#[derive(Clone)]
pub struct KeyService {
    store: Store,
    auditor: Auditor,
    wake: Arc<Notify>,
    registry: Arc<Registry>,
}

fn requester(actor: &Actor) -> String {
    match &actor.principal {
        Principal::User { user_id, .. } => user_id.to_string(),
        Principal::Bot { bot_id, .. } => bot_id.to_string(),
        Principal::System => "system".into(),
    }
}

impl KeyService {
    /// A service over `store`; `wake` tells this process's [`Reencryptor`] that a rotation
    /// was recorded; a rotation re-encrypts `registry`'s targets.
    pub fn new(
        store: Store,
        auditor: Auditor,
        wake: Arc<Notify>,
        registry: Arc<Registry>,
    ) -> KeyService {
        KeyService {
            store,
            auditor,
            wake,
            registry,
        }
    }

    fn keyring(&self) -> &Keyring {
        self.auditor.keyring()
    }

    /// Starts a new version of every data key (new writes use it at once) and records a
    /// rotation whose re-encryption a [`Reencryptor`] carries out; audited.
    #[tracing::instrument(skip_all)]
    pub async fn rotate_dek(&self, actor: &Actor) -> Result<RotationView, Error> {
        let auditor = self.auditor.clone();
        let actor = actor.clone();
        let registry = self.registry.clone();
        let rotation = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    auditor
                        .authorize(tx, &actor, Action::ManageKeys, Resource::System)
                        .await?;
                    let scopes = Keyring::data_scopes(&mut tx.conn()).await?;
                    let n = auditor.keyring().rotate(tx, &scopes).await?;
                    let record = RotationRecord {
                        id: uuid::Uuid::now_v7().to_string(),
                        requested_at: Utc::now(),
                        requested_by: requester(&actor),
                        scopes: n as i64,
                        runner: None,
                        lease_until: None,
                        finished_at: None,
                    };
                    key_store::insert_rotation(&mut tx.conn(), &record).await?;
                    for target in registry.targets() {
                        let total = target.count(tx).await?;
                        key_store::add_target(&mut tx.conn(), &record.id, target.name, total)
                            .await?;
                    }
                    auditor
                        .record(
                            tx,
                            Event::by(&actor, "keys.rotate_dek", Outcome::Allowed)
                                .target("key_rotation", &record.id)
                                .details(serde_json::json!({ "scopes": n })),
                        )
                        .await?;
                    Ok::<_, Error>(record.id)
                })
            })
            .await?;
        self.wake.notify_one();
        let mut conn = self.store.reader().await?;
        rotation_view(&mut conn.conn(), &rotation)
            .await?
            .ok_or(Error::NotFound("key rotation"))
    }

    /// The keys, the signing key history and recent rotations; audited.
    #[tracing::instrument(skip_all)]
    pub async fn status(&self, actor: &Actor) -> Result<KeysStatus, Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ManageKeys,
                Resource::System,
            )
            .await?;
        let all = Keyring::status(&mut conn.conn()).await?;
        let mut scopes: Vec<&str> = all.iter().map(|k| k.scope.as_str()).collect();
        scopes.dedup();
        let keys = KeyCounts {
            scopes: scopes.len() as i64,
            current_versions: all.iter().filter(|k| !k.retired).count() as i64,
            retired_versions: all.iter().filter(|k| k.retired).count() as i64,
        };
        let audit_signing_keys = Keyring::signing_keys(&mut conn.conn())
            .await?
            .into_iter()
            .map(SigningKeyView::from)
            .collect();
        let rotations = rotation_views(&mut conn.conn(), STATUS_ROTATIONS).await?;
        drop(conn);
        self.auditor
            .record_alone(
                &self.store,
                Event::by(actor, "keys.status", Outcome::Allowed).target("keys", "status"),
            )
            .await?;
        Ok(KeysStatus {
            kek_id: self.keyring().kek_id().to_owned(),
            keys,
            audit_signing_keys,
            rotations,
        })
    }

    /// Starts a new audit checkpoint signing key; the next checkpoint (signed in the same
    /// write, over the rotation's own audit entry) uses it. Returns (old, new) versions.
    #[tracing::instrument(skip_all)]
    pub async fn rotate_audit_key(&self, actor: &Actor) -> Result<(i64, SigningKeyView), Error> {
        let auditor = self.auditor.clone();
        let actor = actor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    auditor
                        .authorize(tx, &actor, Action::ManageKeys, Resource::System)
                        .await?;
                    let key = auditor.keyring().rotate_signing_key(tx).await?;
                    let old = key.version - 1;
                    let view = SigningKeyView::from(key);
                    auditor
                        .record(
                            tx,
                            Event::by(&actor, "keys.rotate_audit_key", Outcome::Allowed)
                                .target("audit_signing_key", view.version)
                                .details(serde_json::json!({
                                    "from_version": old,
                                    "to_version": view.version,
                                    "public_key": view.public_key,
                                })),
                        )
                        .await?;
                    tx.request_checkpoint();
                    Ok::<_, Error>((old, view))
                })
            })
            .await
    }
}

/// One rotation with its progress (no authorization: for the command line's progress line
/// and the service's answers).
pub async fn rotation_view(conn: &mut Conn<'_>, id: &str) -> Result<Option<RotationView>, Error> {
    let Some(r) = key_store::rotation(conn, id).await? else {
        return Ok(None);
    };
    let progress = key_store::progress(conn, id).await?;
    Ok(Some(RotationView::new(r, progress, Utc::now())))
}

/// The newest `limit` rotations with their progress, newest first.
pub async fn rotation_views(conn: &mut Conn<'_>, limit: i64) -> Result<Vec<RotationView>, Error> {
    let now = Utc::now();
    let mut out = Vec::new();
    for r in key_store::rotations(conn, limit).await? {
        let progress = key_store::progress(conn, &r.id).await?;
        out.push(RotationView::new(r, progress, now));
    }
    Ok(out)
}
