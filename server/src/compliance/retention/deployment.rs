//! The deployment's own periods: records of ended sessions (`sessions`) and the audit log
//! (`audit_cut`). Both are shared by every workspace, so each period is the longest that the
//! deployment's modules or any workspace's effective policy sets (`"forever"` anywhere wins).
//! A pass over them is audited once (`retention.run` with the deployment as target) when
//! either has a period or a cut is still being carried out.
//!
//! Both always apply at the present time, whatever time a run names for the workspaces'
//! periods (`retention.allow_explicit_now` rehearses a workspace's policy, never destroys
//! live sessions or cuts the log early). A legal hold in force anywhere keeps both whole:
//! session records and the audit log are the deployment's, shared by every custodian, so
//! no session record is deleted and the log is neither cut nor shortened while any hold is
//! in force (the pass reports `held_by_legal_hold`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{outcome_of, RetentionService};
use crate::audit::Event;
use crate::error::Error;
use crate::policy::Days;
use crate::rbac::Actor;
use crate::store;

/// What a pass did with the deployment's own periods: session records and the audit log.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct DeploymentReport {
    /// The time the pass ran at.
    pub now: Option<DateTime<Utc>>,
    /// The longest `retention.sessions_days` in force (`None`: forever).
    pub sessions_days: Option<u32>,
    /// Records of ended or expired sessions deleted.
    pub sessions_deleted: u64,
    /// The longest `retention.audit_days` in force (`None`: forever, the log is not cut).
    pub audit_days: Option<u32>,
    /// Cuts recorded by this pass (0 or 1).
    pub audit_cuts_recorded: u64,
    /// The newest cut's anchor: the signed checkpoint the log now starts after.
    pub audit_cut_at: Option<i64>,
    /// Audit entries deleted (up to the anchor).
    pub audit_entries_deleted: u64,
    /// Checkpoints deleted (before the anchor).
    pub audit_checkpoints_deleted: u64,
    /// Writes the pass took.
    pub batches: u64,
    /// A legal hold was in force: no session record was deleted and the audit log was left
    /// whole.
    pub held_by_legal_hold: bool,
}

impl RetentionService {
    /// Session records and the audit log, with the longest periods in force; audited once
    /// (`retention.run` on the deployment) when either has a period or a cut to finish.
    pub(super) async fn deployment_pass(
        &self,
        actor: &Actor,
        now: DateTime<Utc>,
        stop: Option<&CancellationToken>,
    ) -> Result<DeploymentReport, Error> {
        let _one_at_a_time = self.running.lock().await;
        let (sessions_days, audit_days) = self.deployment_periods().await?;
        let mut report = DeploymentReport {
            now: Some(now),
            sessions_days: sessions_days.days(),
            audit_days: audit_days.days(),
            ..DeploymentReport::default()
        };
        report.held_by_legal_hold = {
            let mut conn = self.store.reader().await?;
            store::retention::any_hold_in_force(&mut conn.conn()).await?
        };
        let mut outcome = Ok(());
        if report.held_by_legal_hold {
            tracing::info!(
                "retention: a legal hold is in force: session records and the audit log are kept"
            );
        } else {
            outcome = self
                .expire_sessions(now, sessions_days, stop, &mut report)
                .await;
            if outcome.is_ok() {
                outcome = self
                    .cut_audit(actor, now, audit_days, stop, &mut report)
                    .await;
            }
        }
        if report.sessions_days.is_none()
            && report.audit_days.is_none()
            && report.audit_entries_deleted + report.audit_checkpoints_deleted == 0
            && outcome.is_ok()
        {
            return Ok(report);
        }
        let event = Event::by(actor, "retention.run", outcome_of(&outcome))
            .target("deployment", "sessions_and_audit_log")
            .details(serde_json::json!({
                "now": now,
                "sessions_days": report.sessions_days,
                "sessions_deleted": report.sessions_deleted,
                "audit_days": report.audit_days,
                "audit_cuts_recorded": report.audit_cuts_recorded,
                "audit_cut_at": report.audit_cut_at,
                "audit_entries_deleted": report.audit_entries_deleted,
                "audit_checkpoints_deleted": report.audit_checkpoints_deleted,
                "batches": report.batches,
                "held_by_legal_hold": report.held_by_legal_hold,
            }));
        self.auditor.record_alone(&self.store, event).await?;
        outcome.map(|()| report)
    }

    /// The longest `sessions_days` and `audit_days` of the deployment's modules and every
    /// workspace's effective policy: session records and the audit chain are shared, so
    /// what any policy keeps is kept.
    async fn deployment_periods(&self) -> Result<(Days, Days), Error> {
        let deployment = self.policies.deployment()?;
        let mut sessions = deployment.retention.sessions_days;
        let mut audit = deployment.retention.audit_days;
        let workspaces = {
            let mut conn = self.store.reader().await?;
            store::policies::workspace_ids(&mut conn.conn()).await?
        };
        for workspace in workspaces {
            let (resolved, _) = self.policies.effective(workspace).await?;
            sessions = longest(sessions, resolved.policy.retention.sessions_days);
            audit = longest(audit, resolved.policy.retention.audit_days);
        }
        Ok((sessions, audit))
    }
}

/// The longer of two periods (`Forever` is the longest).
fn longest(a: Days, b: Days) -> Days {
    match (a.days(), b.days()) {
        (Some(x), Some(y)) => Days::Limited(x.max(y)),
        _ => Days::Forever,
    }
}
