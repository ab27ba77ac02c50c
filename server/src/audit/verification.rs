//! Verifying the live log as `concord audit verify` does, from the command line or on demand
//! over the API.
//!
//! [`verify_now`] is the one live verification: the chain and signed checkpoints
//! ([`super::service::verify_live_witnessed`], against the configured witness file), the cut
//! by retention against the deployment's own period, and the unsigned tail's bound;
//! [`event`] is the `audit.verify` entry that records its outcome. [`VerificationService`]
//! runs it for compliance officers: on reader connections (never the writer), one at a time,
//! in a task of its own (a request that goes away does not stop it), and keeps the last
//! result in memory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::verify::{ChainError, TailBound, Verified};
use super::{Auditor, Event, Outcome};
use crate::config::Config;
use crate::error::Error;
use crate::rbac::{Action, Actor, Resource};
use crate::store::Store;

/// What the live verification checks besides the chain: the unsigned tail's bound and the
/// configured witness file.
#[derive(Clone, Debug)]
pub struct LiveChecks {
    /// `audit.checkpoint_every` and `audit.checkpoint_seconds`.
    pub bound: TailBound,
    /// `audit.witness`, when it is a file.
    pub witness: Option<PathBuf>,
}

impl LiveChecks {
    /// The checks a deployment configured.
    pub fn from_config(config: &Config) -> LiveChecks {
        use super::witness::WitnessTarget;
        let witness = match config.audit.witness.as_deref().map(WitnessTarget::parse) {
            Some(Ok(WitnessTarget::File(path))) => Some(path),
            _ => None,
        };
        LiveChecks {
            bound: TailBound::new(
                config.audit.checkpoint_every,
                config.audit.checkpoint_seconds,
            ),
            witness,
        }
    }
}

/// Verifies the live log: its chain and checkpoints, that it holds every head recorded in
/// `witness` (a file written by `audit.witness`; none if `None`), that its newest cut by
/// retention is one the deployment's `retention.audit_days` allows, and that its unsigned
/// tail is within `checks.bound`. `audit_days` is the deployment's `retention.audit_days`
/// (`None`: forever). Reads only; the outer error is a failure to verify at all.
pub async fn verify_now(
    store: &Store,
    audit_days: Option<u32>,
    checks: &LiveChecks,
    witness: Option<&Path>,
) -> Result<Result<Verified, ChainError>, Error> {
    let heads = match witness {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::Internal(format!("cannot read the witness {}: {e}", path.display()))
            })?;
            super::witness::parse_heads(&text).map_err(Error::Internal)?
        }
        None => Vec::new(),
    };
    let result = super::service::verify_live_witnessed(store, heads).await?;
    // A cut must be one this deployment's own period allows (overrides cannot set it).
    let period = super::service::check_cut_period(store, audit_days, chrono::Utc::now()).await?;
    Ok(result.and_then(|v| {
        period?;
        v.check_tail(&checks.bound, chrono::Utc::now())?;
        Ok(v)
    }))
}

/// The `audit.verify` entry recording a verification by `actor` and its outcome.
pub fn event(actor: &Actor, result: &Result<Verified, ChainError>) -> Event {
    let (outcome, detail) = match result {
        Ok(v) => (
            Outcome::Allowed,
            serde_json::json!({
                "entries": v.entries, "last_seq": v.last_seq, "checkpoints": v.checkpoints,
                "unsigned_tail": v.unsigned_tail, "witnessed": v.witnessed,
            }),
        ),
        Err(e) => (
            Outcome::Failed,
            serde_json::json!({ "first_bad_seq": e.seq, "reason": e.reason }),
        ),
    };
    Event::by(actor, "audit.verify", outcome)
        .target("audit_log", "live")
        .details(detail)
}

/// The first problem a verification found.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct VerificationProblem {
    /// The first bad sequence number.
    pub seq: i64,
    /// `chain_broken`.
    pub code: String,
    /// What is wrong there, as `concord audit verify` reports it.
    pub message: String,
}

/// The result of one verification of the live log.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct VerificationResult {
    /// Whether the log verified.
    pub ok: bool,
    /// Entries checked (absent when the log did not verify).
    pub checked_entries: Option<i64>,
    /// The last sequence number checked (absent when the log did not verify).
    pub head_seq: Option<i64>,
    /// Signed checkpoints checked (absent when the log did not verify).
    pub checkpoints: Option<i64>,
    /// Entries after the newest checkpoint, which no signature covers yet.
    pub unsigned_tail: Option<i64>,
    /// When the verification finished (RFC 3339).
    pub verified_at: String,
    /// Who ran it: a user id, or `system`.
    pub verified_by: Option<String>,
    /// The first problem, when the log did not verify.
    pub problem: Option<VerificationProblem>,
}

impl VerificationResult {
    fn from_outcome(result: &Result<Verified, ChainError>, by: Option<String>) -> Self {
        let verified_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        match result {
            Ok(v) => VerificationResult {
                ok: true,
                checked_entries: Some(v.entries),
                head_seq: Some(v.last_seq),
                checkpoints: Some(i64::try_from(v.checkpoints).unwrap_or(i64::MAX)),
                unsigned_tail: Some(v.unsigned_tail),
                verified_at,
                verified_by: by,
                problem: None,
            },
            Err(e) => VerificationResult {
                ok: false,
                checked_entries: None,
                head_seq: None,
                checkpoints: None,
                unsigned_tail: None,
                verified_at,
                verified_by: by,
                problem: Some(VerificationProblem {
                    seq: e.seq,
                    code: "chain_broken".into(),
                    message: e.to_string(),
                }),
            },
        }
    }
}

/// Whether a verification runs now, and the last one's result.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct VerificationStatus {
    /// Whether a verification is running.
    pub running: bool,
    /// When the running one started (RFC 3339).
    pub running_since: Option<String>,
    /// The last finished verification since the server started; null before the first.
    pub last: Option<VerificationResult>,
}

#[derive(Default)]
struct State {
    running_since: Option<String>,
    last: Option<VerificationResult>,
}

/// Verification of the live log on demand, for holders of `audit.read`.
#[derive(Clone)]
pub struct VerificationService {
    store: Store,
    auditor: Auditor,
    audit_days: AuditDays,
    checks: Arc<LiveChecks>,
    state: Arc<Mutex<State>>,
}

/// Reads the deployment's `retention.audit_days` in force when a verification starts (a
/// policy reload may change it).
pub type AuditDays = Arc<dyn Fn() -> Result<Option<u32>, Error> + Send + Sync>;

/// Clears the running mark when the verification task ends, however it ends.
struct Running(Arc<Mutex<State>>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.lock() {
            s.running_since = None;
        }
    }
}

impl VerificationService {
    /// A service over `store` with the deployment's `checks`, reading the audit log's
    /// retention period through `audit_days`.
    pub fn new(
        store: Store,
        auditor: Auditor,
        audit_days: AuditDays,
        checks: LiveChecks,
    ) -> VerificationService {
        VerificationService {
            store,
            auditor,
            audit_days,
            checks: Arc::new(checks),
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    async fn authorize(&self, actor: &Actor) -> Result<(), Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ReadAudit,
                Resource::System,
            )
            .await
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, Error> {
        self.state
            .lock()
            .map_err(|_| Error::Internal("the verification state is poisoned".into()))
    }

    /// Whether a verification runs, and the last result (`audit.read`).
    pub async fn status(&self, actor: &Actor) -> Result<VerificationStatus, Error> {
        self.authorize(actor).await?;
        let s = self.lock()?;
        Ok(VerificationStatus {
            running: s.running_since.is_some(),
            running_since: s.running_since.clone(),
            last: s.last.clone(),
        })
    }

    /// Verifies the live log now and records it as `audit.verify` (`audit.read`). Refused
    /// with `verification_running` while another verification runs. The verification runs
    /// in a task of its own: if the caller goes away, it still finishes and its result is
    /// kept for [`VerificationService::status`].
    pub async fn verify(&self, actor: &Actor) -> Result<VerificationResult, Error> {
        self.authorize(actor).await?;
        let running = {
            let mut s = self.lock()?;
            if let Some(since) = &s.running_since {
                return Err(Error::conflict(
                    "verification_running",
                    format!("a verification of the audit log is running (since {since}); its result will be shown when it finishes"),
                ));
            }
            s.running_since =
                Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            Running(self.state.clone())
        };
        let this = self.clone();
        let actor = actor.clone();
        let task = tokio::spawn(async move {
            let _running = running;
            let result = verify_now(
                &this.store,
                (this.audit_days)()?,
                &this.checks,
                this.checks.witness.as_deref(),
            )
            .await?;
            this.auditor
                .record_alone(&this.store, event(&actor, &result))
                .await?;
            let by = match &actor.principal {
                crate::rbac::Principal::User { user_id, .. } => Some(user_id.to_string()),
                _ => Some("system".to_owned()),
            };
            let view = VerificationResult::from_outcome(&result, by);
            if let Ok(mut s) = this.state.lock() {
                s.last = Some(view.clone());
            }
            Ok::<_, Error>(view)
        });
        task.await
            .map_err(|e| Error::Internal(format!("the verification stopped: {e}")))?
    }
}
