//! Retention of the audit log: cut only at a signed checkpoint.
//!
//! The log is one hash chain for the deployment, so the period is the longest
//! `retention.audit_days` of the deployment's modules and every workspace's effective policy
//! (`"forever"` anywhere: never cut). A pass finds the newest checkpoint signed before
//! *now − period*; if it lies beyond the last cut, the part of the chain between them is
//! verified (a broken chain is never cut: the cut would hide the evidence), then the cut is
//! recorded (`audit_cuts`) in a write audited as `audit.cut`, and the entries up to the
//! anchor and the checkpoints before it are deleted, a batch per write (the database's
//! triggers allow no other delete). The anchor's checkpoint stays: verification starts after
//! it, from the head its signature proves, and requires the `audit.cut` entry that records
//! it. An interrupted deletion resumes at the next pass, even if the period changed since.
//!
//! A cut is signed with the audit checkpoint signing key in the write that records it
//! (`store::audit_cuts::CutRecord::signed_by`). The database only checks that a cut names a
//! stored checkpoint and its head, so before deleting anything a pass checks the newest
//! cut's signature, its anchor checkpoint and signature, and that the anchor was signed
//! before the cut's cutoff; a cut that fails is refused (logged and audited), and nothing
//! is deleted. A pass always runs at the present time, and not at all while a legal hold
//! is in force (see `deployment`).

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio_util::sync::CancellationToken;

use super::{cutoff, DeploymentReport, RetentionService};
use crate::audit::verify::Verifier;
use crate::audit::{Event, Outcome};
use crate::crypto::Keyring;
use crate::error::Error;
use crate::policy::Days;
use crate::rbac::Actor;
use crate::store::audit::CheckpointSigner;
use crate::store::audit_cuts::{self, CutRecord};
use crate::store::{audit, audit_chain, keys, Tx};

/// Entries read per page while verifying the part of the chain a cut removes.
const PAGE: i64 = 1000;

impl RetentionService {
    /// Cuts the audit log at the newest checkpoint signed before `now − days` and deletes
    /// what the newest cut removes.
    pub(super) async fn cut_audit(
        &self,
        actor: &Actor,
        now: DateTime<Utc>,
        days: Days,
        stop: Option<&CancellationToken>,
        report: &mut DeploymentReport,
    ) -> Result<(), Error> {
        if let (Some(cutoff), Some(days)) = (cutoff(now, days), days.days()) {
            self.record_cut(actor, now, cutoff, days, report).await?;
        }
        let newest = {
            let mut conn = self.store.reader().await?;
            audit_cuts::newest(&mut conn.conn()).await?
        };
        let Some(cut) = newest else { return Ok(()) };
        report.audit_cut_at = Some(cut.upto_seq);
        if let Err(reason) = self.check_cut(&cut).await? {
            tracing::error!(
                upto_seq = cut.upto_seq,
                %reason,
                "retention: the newest cut of the audit log does not verify; nothing is deleted"
            );
            let event = Event::by(actor, "audit.cut", Outcome::Failed)
                .target("audit_checkpoint", cut.upto_seq)
                .details(serde_json::json!({
                    "upto_seq": cut.upto_seq,
                    "reason": reason,
                    "refused": "stored cut does not verify",
                }));
            self.auditor.record_alone(&self.store, event).await?;
            return Err(Error::Internal(format!(
                "the audit log is not cut: the cut recorded at sequence {} does not verify ({reason})",
                cut.upto_seq
            )));
        }
        let (upto, limit) = (cut.upto_seq, self.options.batch);
        loop {
            if stop.is_some_and(|s| s.is_cancelled()) {
                return Ok(());
            }
            let (entries, checkpoints) = self
                .store
                .write(move |tx: &mut Tx| {
                    Box::pin(async move {
                        let entries =
                            audit_cuts::delete_entries(&mut tx.conn(), upto, limit).await?;
                        let checkpoints =
                            audit_cuts::delete_checkpoints(&mut tx.conn(), upto, limit).await?;
                        Ok::<_, Error>((entries, checkpoints))
                    })
                })
                .await?;
            report.batches += 1;
            report.audit_entries_deleted += entries;
            report.audit_checkpoints_deleted += checkpoints;
            if (entries as i64) < limit && (checkpoints as i64) < limit {
                return Ok(());
            }
        }
    }

    /// Records a new cut if a checkpoint signed before `cutoff` lies beyond the last one.
    async fn record_cut(
        &self,
        actor: &Actor,
        now: DateTime<Utc>,
        cutoff: DateTime<Utc>,
        days: u32,
        report: &mut DeploymentReport,
    ) -> Result<(), Error> {
        let cutoff_text = cutoff.to_rfc3339_opts(SecondsFormat::Micros, true);
        let (anchor, previous) = {
            let mut conn = self.store.reader().await?;
            let anchor =
                audit_cuts::newest_checkpoint_before(&mut conn.conn(), &cutoff_text).await?;
            (anchor, audit_cuts::newest(&mut conn.conn()).await?)
        };
        let Some(anchor) = anchor else { return Ok(()) };
        if previous.as_ref().is_some_and(|p| p.upto_seq >= anchor.seq) {
            return Ok(());
        }
        let (first, prev_hash) = match &previous {
            Some(p) => (p.upto_seq + 1, p.head_hash.clone()),
            None => (1, audit_chain::GENESIS.to_vec()),
        };
        if let Err(broken) = self.verify_segment(first, prev_hash, anchor.seq).await? {
            let event = Event::by(actor, "audit.cut", Outcome::Failed)
                .target("audit_checkpoint", anchor.seq)
                .details(serde_json::json!({
                    "upto_seq": anchor.seq,
                    "first_bad_seq": broken.seq,
                    "reason": broken.reason,
                }));
            self.auditor.record_alone(&self.store, event).await?;
            return Err(Error::Internal(format!(
                "the audit log is not cut: the part to remove does not verify ({broken})"
            )));
        }
        let cut = CutRecord {
            upto_seq: anchor.seq,
            head_hash: anchor.head_hash.clone(),
            cut_at: now.to_rfc3339_opts(SecondsFormat::Micros, true),
            cutoff: cutoff_text,
            audit_days: i64::from(days),
            key_version: 0,
            signature: Vec::new(),
        };
        let event = Event::by(actor, "audit.cut", Outcome::Allowed)
            .target("audit_checkpoint", anchor.seq)
            .details(serde_json::json!({
                "upto_seq": anchor.seq,
                "checkpoint_signed_at": anchor.signed_at,
                "cutoff": cut.cutoff,
                "audit_days": days,
                "previous_cut": previous.as_ref().map(|p| p.upto_seq),
            }));
        let auditor = self.auditor.clone();
        let keyring = self.auditor.keyring().clone();
        let recorded = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    // Signed with the newest signing key, read in this write, like checkpoints.
                    let mut cut = cut;
                    let key = keys::latest(&mut tx.conn(), keys::AUDIT_SIGNING_SCOPE)
                        .await?
                        .ok_or_else(|| {
                            Error::Internal("no audit signing key: the log is not cut".into())
                        })?;
                    cut.key_version = key.version;
                    cut.signature = keyring.sign(&key, &cut.message()).map_err(|e| {
                        Error::Internal(format!("cannot sign the cut of the audit log: {e}"))
                    })?;
                    if !audit_cuts::record(&mut tx.conn(), &cut).await? {
                        return Ok::<_, Error>(false);
                    }
                    auditor.record(tx, event).await?;
                    Ok(true)
                })
            })
            .await?;
        if recorded {
            report.audit_cuts_recorded += 1;
        }
        Ok(())
    }

    /// Whether `cut` may be carried out: its signature, its anchor checkpoint (stored, same
    /// head, validly signed) and the anchor's age (signed before the cut's cutoff).
    async fn check_cut(&self, cut: &CutRecord) -> Result<Result<(), String>, Error> {
        let mut conn = self.store.reader().await?;
        let keys: HashMap<i64, Vec<u8>> = Keyring::signing_keys(&mut conn.conn())
            .await?
            .into_iter()
            .map(|k| (k.version, k.public_key))
            .collect();
        let anchor = audit_cuts::checkpoint_at(&mut conn.conn(), cut.upto_seq).await?;
        Ok(crate::audit::service::check_cut(
            cut,
            anchor.as_ref(),
            &keys,
        ))
    }

    /// Verifies the entries `first..=upto` (whose predecessor hashed to `prev_hash`) and the
    /// checkpoints among them.
    async fn verify_segment(
        &self,
        first: i64,
        prev_hash: Vec<u8>,
        upto: i64,
    ) -> Result<Result<(), crate::audit::verify::ChainError>, Error> {
        let mut conn = self.store.reader().await?;
        let keys: HashMap<i64, Vec<u8>> = Keyring::signing_keys(&mut conn.conn())
            .await?
            .into_iter()
            .map(|k| (k.version, k.public_key))
            .collect();
        let checkpoints = audit::checkpoints(&mut conn.conn(), first, upto).await?;
        let mut verifier = Verifier::new(first, prev_hash, checkpoints, &keys);
        let mut next = first;
        while next <= upto {
            let records = audit::range(&mut conn.conn(), next, upto, PAGE).await?;
            let Some(last) = records.last() else { break };
            next = last.seq + 1;
            for rec in &records {
                verifier.push(rec);
            }
        }
        Ok(verifier.finish().map(|_| ()))
    }
}
