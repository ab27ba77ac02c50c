//! The re-encryption job that follows a data-key rotation.
//!
//! A [`Reencryptor`] claims the oldest unfinished rotation under a lease, makes its keyring
//! read the current key versions afresh, and walks every target of its [`Registry`] (handed
//! in at start-up) in small batches through the group-commit writer. Each batch renews the lease, re-encrypts
//! and records its progress (rows done, cursor) in one transaction, so an interrupted job
//! resumes after its last committed batch, in this process or another once the lease is
//! released (at shutdown) or has lapsed (after a crash). A running server owns one
//! ([`Reencryptor::spawn`], stopped by its shutdown token); the command line runs one in the
//! foreground when no server picks a rotation up ([`Reencryptor::run_pending`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::registry::{Registry, Target};
use super::{rotation_view, RotationView};
use crate::audit::{Auditor, Event, Outcome};
use crate::config::KeysConfig;
use crate::error::Error;
use crate::rbac::Actor;
use crate::store::keys::{self as key_store, ProgressRecord, RotationRecord};
use crate::store::{Store, Tx};

/// How long a claim on a rotation lasts without a batch renewing it.
const LEASE: Duration = Duration::from_secs(15);

/// Runs re-encryption jobs; cheap to clone.
#[derive(Clone)]
pub struct Reencryptor {
    store: Store,
    auditor: Auditor,
    registry: Arc<Registry>,
    runner: String,
    batch: usize,
    pause: Duration,
    poll: Duration,
}

fn lease_until() -> chrono::DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::seconds(15))
}

impl Reencryptor {
    /// A runner with a fresh identity (one per process), re-encrypting `registry`'s targets.
    pub fn new(
        store: Store,
        auditor: Auditor,
        registry: Arc<Registry>,
        config: &KeysConfig,
    ) -> Reencryptor {
        Reencryptor {
            store,
            auditor,
            registry,
            runner: uuid::Uuid::now_v7().to_string(),
            batch: config.reencrypt_batch.max(1),
            pause: Duration::from_millis(config.reencrypt_pause_ms),
            poll: Duration::from_secs(config.reencrypt_poll_seconds.max(1)),
        }
    }

    /// How often a server looks for rotations recorded by another process.
    pub fn poll_interval(&self) -> Duration {
        self.poll
    }

    /// Runs every unfinished rotation this process can claim until none is left or `stop`
    /// is cancelled; `progress` sees each rotation after every batch. Returns how many
    /// rotations it finished.
    pub async fn run_pending(
        &self,
        stop: &CancellationToken,
        progress: &mut (dyn FnMut(&RotationView) + Send),
    ) -> Result<usize, Error> {
        let mut finished = 0;
        while !stop.is_cancelled() {
            let Some((rotation, targets)) = self.claim().await? else {
                break;
            };
            // New writes in this process use the newest versions before any row is examined,
            // so nothing written from here on falls behind the cursor under an old key.
            self.auditor.keyring().refresh_current();
            tracing::info!(rotation = %rotation.id, "re-encrypting after a data-key rotation");
            if self.run(&rotation, targets, stop, progress).await? {
                finished += 1;
            } else {
                break;
            }
        }
        Ok(finished)
    }

    /// Claims the oldest unfinished rotation and makes sure it has a progress row for every
    /// registered target (a target added after the rotation started joins it here).
    async fn claim(&self) -> Result<Option<(RotationRecord, Vec<ProgressRecord>)>, Error> {
        // Most polls find nothing: look on a reader before taking the writer.
        let mut conn = self.store.reader().await?;
        if !key_store::any_unfinished(&mut conn.conn()).await? {
            return Ok(None);
        }
        drop(conn);
        let runner = self.runner.clone();
        let registry = self.registry.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let now = Utc::now();
                    let Some(rotation) =
                        key_store::claim_rotation(&mut tx.conn(), &runner, now, lease_until())
                            .await?
                    else {
                        return Ok::<_, Error>(None);
                    };
                    let known = key_store::progress(&mut tx.conn(), &rotation.id).await?;
                    for target in registry.targets() {
                        if !known.iter().any(|p| p.target == target.name) {
                            let total = target.count(tx).await?;
                            key_store::add_target(&mut tx.conn(), &rotation.id, target.name, total)
                                .await?;
                        }
                    }
                    let progress = key_store::progress(&mut tx.conn(), &rotation.id).await?;
                    Ok(Some((rotation, progress)))
                })
            })
            .await
    }

    /// Runs one claimed rotation; `Ok(false)` if it stopped before the end.
    async fn run(
        &self,
        rotation: &RotationRecord,
        targets: Vec<ProgressRecord>,
        stop: &CancellationToken,
        progress: &mut (dyn FnMut(&RotationView) + Send),
    ) -> Result<bool, Error> {
        let registry = self.registry.clone();
        for target in registry.targets() {
            let Some(mut p) = targets.iter().find(|p| p.target == target.name).cloned() else {
                continue;
            };
            while p.finished_at.is_none() {
                if stop.is_cancelled() {
                    self.release(&rotation.id).await;
                    return Ok(false);
                }
                p = match self.batch(&rotation.id, target, p).await {
                    Ok(p) => p,
                    Err(err) => {
                        self.release(&rotation.id).await;
                        return Err(err);
                    }
                };
                self.report(&rotation.id, progress).await;
                if p.finished_at.is_none() && !self.pause.is_zero() {
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::time::sleep(self.pause) => {}
                    }
                }
            }
        }
        let auditor = self.auditor.clone();
        let id = rotation.id.clone();
        let runner = self.runner.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let now = Utc::now();
                    if !key_store::renew_lease(&mut tx.conn(), &id, &runner, now, lease_until())
                        .await?
                    {
                        return Err(lost_lease());
                    }
                    let progress = key_store::progress(&mut tx.conn(), &id).await?;
                    key_store::finish_rotation(&mut tx.conn(), &id, now).await?;
                    let details: serde_json::Map<String, serde_json::Value> = progress
                        .iter()
                        .map(|p| {
                            (
                                p.target.clone(),
                                serde_json::json!({ "examined": p.done, "reencrypted": p.changed }),
                            )
                        })
                        .collect();
                    auditor
                        .record(
                            tx,
                            Event::by(&Actor::system(), "keys.reencrypt", Outcome::Allowed)
                                .target("key_rotation", &id)
                                .details(serde_json::Value::Object(details)),
                        )
                        .await?;
                    Ok::<_, Error>(())
                })
            })
            .await?;
        self.report(&rotation.id, progress).await;
        tracing::info!(rotation = %rotation.id, "re-encryption finished");
        Ok(true)
    }

    /// Re-encrypts one batch of `target` and records it, in one write.
    async fn batch(
        &self,
        rotation: &str,
        target: &Target,
        mut p: ProgressRecord,
    ) -> Result<ProgressRecord, Error> {
        let keyring = self.auditor.keyring().clone();
        let runner = self.runner.clone();
        let rotation = rotation.to_owned();
        let limit = self.batch;
        let target = target.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let now = Utc::now();
                    if !key_store::renew_lease(
                        &mut tx.conn(),
                        &rotation,
                        &runner,
                        now,
                        lease_until(),
                    )
                    .await?
                    {
                        return Err(lost_lease());
                    }
                    let b = target
                        .reencrypt(tx, &keyring, p.cursor.clone(), limit)
                        .await?;
                    p.done += b.scanned as i64;
                    p.changed += b.changed as i64;
                    if b.last.is_some() {
                        p.cursor = b.last;
                    }
                    if b.scanned < limit {
                        p.finished_at = Some(now);
                    }
                    key_store::advance_target(&mut tx.conn(), &p).await?;
                    Ok::<_, Error>(p)
                })
            })
            .await
    }

    async fn report(&self, rotation: &str, progress: &mut (dyn FnMut(&RotationView) + Send)) {
        let view = match self.store.reader().await {
            Ok(mut conn) => rotation_view(&mut conn.conn(), rotation).await,
            Err(e) => Err(e.into()),
        };
        match view {
            Ok(Some(v)) => progress(&v),
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "cannot read re-encryption progress"),
        }
    }

    /// Gives the lease up so another process can resume at once.
    async fn release(&self, rotation: &str) {
        let runner = self.runner.clone();
        let id = rotation.to_owned();
        let released = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(
                    async move { key_store::release_lease(&mut tx.conn(), &id, &runner).await },
                )
            })
            .await;
        if let Err(err) = released {
            tracing::warn!(error = %err, "cannot release the re-encryption lease; it lapses by itself");
        }
    }

    /// The server's background task: runs pending rotations, wakes on `wake` (a rotation
    /// recorded in this process) or every poll interval (one recorded elsewhere, whose new
    /// key versions this process must start using), and stops with `stop`.
    pub fn spawn(self, wake: Arc<Notify>, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut seen: Option<String> = None;
            loop {
                match self.store.reader().await {
                    Ok(mut conn) => match key_store::newest_rotation(&mut conn.conn()).await {
                        Ok(newest) if newest != seen => {
                            if seen.is_some() || newest.is_some() {
                                self.auditor.keyring().refresh_current();
                            }
                            seen = newest;
                        }
                        Ok(_) => {}
                        Err(err) => tracing::warn!(error = %err, "cannot look for key rotations"),
                    },
                    Err(err) => tracing::warn!(error = %err, "cannot look for key rotations"),
                }
                let mut log = |v: &RotationView| {
                    tracing::debug!(rotation = %v.id, progress = %v.progress_line(), "re-encryption progress");
                };
                if let Err(err) = self.run_pending(&stop, &mut log).await {
                    tracing::warn!(error = %err, "re-encryption interrupted; it resumes at the next poll");
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(self.poll) => {}
                }
            }
        })
    }
}

fn lost_lease() -> Error {
    Error::conflict(
        "reencryption_lease_lost",
        "another process took over this re-encryption",
    )
}
