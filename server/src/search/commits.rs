//! When the indexer commits. A tantivy commit writes a new segment (encrypted files, merged
//! later) and restarts the writer's indexing thread, which costs far more than indexing one
//! chat message; so the indexer applies events as they arrive but commits a workspace's index
//! at most once per [`CommitPolicy::interval`] (`search.commit_interval_ms`), at once when
//! [`CommitPolicy::max_changes`] changes are pending (`search.commit_max_changes`), when a query
//! asks ([`Flush`]: a query sees everything published before it), and at shutdown.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::SearchService;
use crate::config::SearchConfig;
use crate::domain::WorkspaceId;

/// How long applied changes may wait for their commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitPolicy {
    /// The longest the first uncommitted change of an index waits (zero: commit after every
    /// batch of events).
    pub interval: Duration,
    /// Uncommitted changes in one index that make it commit at once.
    pub max_changes: usize,
}

impl CommitPolicy {
    /// The policy `search.commit_interval_ms` and `search.commit_max_changes` set.
    pub fn from_config(config: &SearchConfig) -> CommitPolicy {
        CommitPolicy {
            interval: Duration::from_millis(config.commit_interval_ms),
            max_changes: config.commit_max_changes.max(1),
        }
    }
}

impl Default for CommitPolicy {
    fn default() -> Self {
        CommitPolicy::from_config(&SearchConfig::default())
    }
}

/// A query's request to the indexer: apply every event already published, commit
/// `workspace`'s index if it has uncommitted changes, then answer on `done`.
pub(super) struct Flush {
    /// The workspace searched.
    pub workspace: WorkspaceId,
    /// Answered once its changes are visible.
    pub done: oneshot::Sender<()>,
}

/// Changes applied to one index and not committed yet.
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// When the first of them was applied.
    since: Instant,
    changes: usize,
    /// One of them takes text out of the index (a deletion or an edit): committed at once,
    /// so what was removed is not left findable by a crash before the next commit.
    urgent: bool,
}

/// The workspaces whose index holds applied, uncommitted changes (owned by the indexer task).
#[derive(Debug, Default)]
pub(super) struct Uncommitted {
    pending: HashMap<WorkspaceId, Pending>,
}

impl Uncommitted {
    /// Records one change applied to `workspace`'s index at `now`.
    pub fn changed(&mut self, workspace: WorkspaceId, now: Instant) {
        self.record(workspace, now, false);
    }

    /// Records one change to `workspace`'s index that removes text (a deletion or an edit):
    /// the index commits at the end of the indexer's current pass.
    pub fn removed(&mut self, workspace: WorkspaceId, now: Instant) {
        self.record(workspace, now, true);
    }

    fn record(&mut self, workspace: WorkspaceId, now: Instant, urgent: bool) {
        let pending = self.pending.entry(workspace).or_insert(Pending {
            since: now,
            changes: 0,
            urgent: false,
        });
        pending.changes += 1;
        pending.urgent |= urgent;
    }

    /// When the oldest uncommitted change is due, if there is one.
    pub fn next_due(&self, policy: &CommitPolicy) -> Option<Instant> {
        self.pending
            .values()
            .map(|p| p.since + policy.interval)
            .min()
    }

    /// Removes and returns the workspaces to commit at `now`: those whose oldest change has
    /// waited the interval, those with `max_changes` pending or a removal, and those in
    /// `asked`.
    pub fn take_due(
        &mut self,
        policy: &CommitPolicy,
        now: Instant,
        asked: &[WorkspaceId],
    ) -> Vec<WorkspaceId> {
        let due: Vec<WorkspaceId> = self
            .pending
            .iter()
            .filter(|(workspace, p)| {
                p.since + policy.interval <= now
                    || p.changes >= policy.max_changes
                    || p.urgent
                    || asked.contains(workspace)
            })
            .map(|(workspace, _)| *workspace)
            .collect();
        for workspace in &due {
            self.pending.remove(workspace);
        }
        due
    }

    /// Removes and returns the workspaces with `max_changes` pending.
    pub fn take_full(&mut self, policy: &CommitPolicy) -> Vec<WorkspaceId> {
        let full: Vec<WorkspaceId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.changes >= policy.max_changes)
            .map(|(workspace, _)| *workspace)
            .collect();
        for workspace in &full {
            self.pending.remove(workspace);
        }
        full
    }

    /// Removes and returns every workspace with uncommitted changes (at shutdown).
    pub fn take_all(&mut self) -> Vec<WorkspaceId> {
        self.pending
            .drain()
            .map(|(workspace, _)| workspace)
            .collect()
    }
}

impl SearchService {
    /// Commits the indexes of `workspaces`, making their changes visible to queries.
    pub(super) async fn commit_indexes(&self, workspaces: Vec<WorkspaceId>) {
        for workspace in workspaces {
            let Ok(open) = self.open(workspace).await else {
                continue;
            };
            let index = open.index.clone();
            match tokio::task::spawn_blocking(move || index.commit()).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::error!(%workspace, error = %err, "search: commit failed"),
                Err(err) => tracing::error!(%workspace, error = %err, "search: commit panicked"),
            }
        }
    }

    /// The commits `workspace`'s index has made since it was opened (0 if it is not open).
    pub async fn commits(&self, workspace: WorkspaceId) -> u64 {
        match self.inner.indexes.lock().await.get(&workspace) {
            Some(open) => open.index.commits(),
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> CommitPolicy {
        CommitPolicy {
            interval: Duration::from_millis(500),
            max_changes: 3,
        }
    }

    #[test]
    fn changes_wait_for_the_interval_counted_from_the_first_of_them() {
        let (a, b) = (WorkspaceId::generate(), WorkspaceId::generate());
        let start = Instant::now();
        let mut uncommitted = Uncommitted::default();
        assert_eq!(uncommitted.next_due(&policy()), None);
        uncommitted.changed(a, start);
        uncommitted.changed(b, start + Duration::from_millis(200));
        uncommitted.changed(a, start + Duration::from_millis(400));
        assert_eq!(
            uncommitted.next_due(&policy()),
            Some(start + Duration::from_millis(500))
        );
        assert!(uncommitted
            .take_due(&policy(), start + Duration::from_millis(499), &[])
            .is_empty());
        assert_eq!(
            uncommitted.take_due(&policy(), start + Duration::from_millis(500), &[]),
            vec![a]
        );
        assert_eq!(
            uncommitted.next_due(&policy()),
            Some(start + Duration::from_millis(700))
        );
    }

    #[test]
    fn enough_pending_changes_or_a_query_commit_at_once() {
        let (a, b, c) = (
            WorkspaceId::generate(),
            WorkspaceId::generate(),
            WorkspaceId::generate(),
        );
        let now = Instant::now();
        let mut uncommitted = Uncommitted::default();
        for _ in 0..3 {
            uncommitted.changed(a, now);
        }
        uncommitted.changed(b, now);
        uncommitted.changed(c, now);
        assert_eq!(uncommitted.take_full(&policy()), vec![a]);
        for _ in 0..3 {
            uncommitted.changed(a, now);
        }
        let mut due = uncommitted.take_due(&policy(), now, &[b]);
        due.sort();
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(due, want);
        assert_eq!(uncommitted.take_all(), vec![c]);
        assert!(uncommitted.take_all().is_empty());
    }
}
