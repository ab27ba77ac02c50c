//! Retention of session records: sessions that ended (signed out, revoked, ended for
//! inactivity) or expired more than `retention.sessions_days` ago are deleted, with their
//! refresh tokens and single sign-on hand-offs. A live session is never touched.
//!
//! A person's sessions are theirs, not a workspace's, so the period is the deployment's:
//! the longest `sessions_days` of its modules and every workspace's effective policy.

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{cutoff, DeploymentReport, RetentionService};
use crate::error::Error;
use crate::policy::Days;
use crate::store::retention as retention_store;
use crate::store::Tx;

impl RetentionService {
    /// Deletes the records of sessions that ended before `now − days`, a batch per write.
    pub(super) async fn expire_sessions(
        &self,
        now: DateTime<Utc>,
        days: Days,
        stop: Option<&CancellationToken>,
        report: &mut DeploymentReport,
    ) -> Result<(), Error> {
        let Some(cutoff) = cutoff(now, days) else {
            return Ok(());
        };
        let limit = self.options.batch;
        loop {
            if stop.is_some_and(|s| s.is_cancelled()) {
                return Ok(());
            }
            let deleted = self
                .store
                .write(move |tx: &mut Tx| {
                    Box::pin(async move {
                        Ok::<_, Error>(
                            retention_store::destroy_ended_sessions(&mut tx.conn(), cutoff, limit)
                                .await?,
                        )
                    })
                })
                .await?;
            report.batches += 1;
            report.sessions_deleted += deleted;
            if (deleted as i64) < limit {
                return Ok(());
            }
        }
    }
}
