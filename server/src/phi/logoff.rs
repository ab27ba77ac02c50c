//! Automatic logoff (164.312(a)(2)(iii)): a session idle longer than the idle period of the
//! person's PHI workspaces is ended server-side, sockets included.
//!
//! Requests check their session at once ([`crate::auth::AuthService::authenticate`] and
//! `refresh` refuse an idle session with `session_idle_timeout` and end it); this sweep, at
//! start and every `phi.sweep_seconds`, does what no request would: it finds who is subject
//! (members of workspaces holding PHI, each with the shortest `phi.idle_logoff_minutes` of
//! theirs) and hands that to the sessions' `auth::Activity`, stores the activity seen since the
//! last sweep (`sessions.last_active_at`), and ends every live session of a subject person
//! idle past their period, each audited as `session.idle_logoff` and announced as
//! `SessionsRevoked` with reason `idle_timeout`, on which the hub and the document rooms
//! close that session's sockets (close code 4440). A session is idle from the later of its
//! sign-in and the last activity recorded in any process (a process's unsaved activity is at
//! most one sweep old), so two processes sweeping one database agree to within a sweep.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::{log_off_idle, AuthService};
use crate::config::PhiConfig;
use crate::domain::{SessionId, UserId};
use crate::error::Error;
use crate::policy::PolicyService;
use crate::store::{sessions, workspaces, Store, Tx};

/// The automatic logoff sweep; cheap to clone.
#[derive(Clone)]
pub struct IdleLogoff {
    store: Store,
    auth: Arc<AuthService>,
    policies: PolicyService,
    config: PhiConfig,
}

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// People subject to automatic logoff.
    pub subject: usize,
    /// Sessions whose activity was stored.
    pub recorded: usize,
    /// Sessions ended for inactivity.
    pub logged_off: usize,
}

impl IdleLogoff {
    /// A sweep over `store`, ending sessions through `auth`'s rules.
    pub fn new(
        store: Store,
        auth: Arc<AuthService>,
        policies: PolicyService,
        config: &PhiConfig,
    ) -> IdleLogoff {
        IdleLogoff {
            store,
            auth,
            policies,
            config: config.clone(),
        }
    }

    /// Who is subject to automatic logoff, with their idle period.
    async fn limits(&self) -> Result<HashMap<UserId, Duration>, Error> {
        let phi = self.policies.holding_phi().await?;
        let mut limits: HashMap<UserId, Duration> = HashMap::new();
        if phi.is_empty() {
            return Ok(limits);
        }
        let mut conn = self.store.reader().await?;
        for (workspace, safeguards) in phi {
            let period = self.config.minutes(safeguards.idle_logoff_minutes);
            for user in workspaces::member_ids(&mut conn.conn(), workspace).await? {
                limits
                    .entry(user)
                    .and_modify(|p| *p = (*p).min(period))
                    .or_insert(period);
            }
        }
        Ok(limits)
    }

    /// One sweep: who is subject, their activity stored, idle sessions ended.
    #[tracing::instrument(skip_all)]
    pub async fn sweep(&self) -> Result<SweepReport, Error> {
        let limits = self.limits().await?;
        let activity = self.auth.activity().clone();
        activity.set_limits(limits.clone());
        let unsaved = activity.unsaved();
        let Some(shortest) = limits.values().min().copied() else {
            // Nobody is subject: what was seen matters to no one.
            activity.stored(&unsaved);
            return Ok(SweepReport::default());
        };
        let mut report = SweepReport {
            subject: limits.len(),
            ..SweepReport::default()
        };
        if !unsaved.is_empty() {
            let saved = unsaved.clone();
            self.store
                .write(move |tx: &mut Tx| {
                    Box::pin(async move {
                        sessions::record_activity(&mut tx.conn(), &saved).await?;
                        Ok::<_, Error>(())
                    })
                })
                .await?;
            activity.stored(&unsaved);
            report.recorded = unsaved.len();
        }
        let now = Utc::now();
        let quiet = {
            let mut conn = self.store.reader().await?;
            sessions::quiet_since(&mut conn.conn(), now - shortest, now).await?
        };
        let idle: Vec<(UserId, SessionId, DateTime<Utc>, Duration)> = quiet
            .into_iter()
            .filter_map(|q| {
                let limit = *limits.get(&q.user_id)?;
                let last = [activity.seen(q.id), q.last_active_at]
                    .into_iter()
                    .flatten()
                    .fold(q.created_at, DateTime::max);
                (now - last > limit).then_some((q.user_id, q.id, last, limit))
            })
            .collect();
        if idle.is_empty() {
            return Ok(report);
        }
        let auditor = self.auth.auditor().clone();
        let ending = idle.clone();
        report.logged_off = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let mut ended = 0;
                    for (user, session, last, limit) in ending {
                        if log_off_idle(tx, &auditor, user, session, last, limit).await? {
                            ended += 1;
                        }
                    }
                    Ok::<_, Error>(ended)
                })
            })
            .await?;
        for (_, session, _, _) in &idle {
            activity.forget(*session);
        }
        Ok(report)
    }

    /// Runs a sweep at start and every `phi.sweep_seconds` until `stop` is cancelled.
    pub fn spawn(self, stop: CancellationToken) -> JoinHandle<()> {
        let period = StdDuration::from_secs(self.config.sweep_seconds);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = ticks.tick() => {
                        match self.sweep().await {
                            Ok(r) if r.logged_off > 0 => tracing::info!(
                                subject = r.subject,
                                logged_off = r.logged_off,
                                "automatic logoff ended idle sessions"
                            ),
                            Ok(_) => {}
                            Err(err) => tracing::warn!(error = %err, "automatic logoff sweep failed"),
                        }
                    }
                }
            }
        })
    }
}
