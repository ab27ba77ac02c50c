//! What the retention job is asked and answers: a run on demand, the report of a pass over
//! one workspace, and the report of a pass over the deployment.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::DeploymentReport;
use crate::domain::WorkspaceId;

/// A run on demand, as the API receives it.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"now": "2030-01-01T00:00:00Z"}))]
pub struct RunRequest {
    /// The time the pass runs at, for rehearsing a policy (only where
    /// `retention.allow_explicit_now` is set; otherwise the pass runs at the present time).
    #[serde(default)]
    pub now: Option<DateTime<Utc>>,
}

/// What one pass over a workspace did.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct RetentionReport {
    /// The workspace.
    pub workspace_id: Option<WorkspaceId>,
    /// The time the pass ran at (cutoffs are this minus each period).
    pub now: Option<DateTime<Utc>>,
    /// The policy version applied.
    pub policy_version: i64,
    /// The workspace's `retention.messages_days` (`None`: forever).
    pub messages_days: Option<u32>,
    /// Channels whose own period was applied.
    pub channels_with_own_period: usize,
    /// Messages old enough that were looked at.
    pub examined: u64,
    /// Messages destroyed (rows gone).
    pub destroyed: u64,
    /// Thread roots emptied into content-free tombstones because replies outlive them.
    pub emptied: u64,
    /// Messages kept because a legal hold covers them.
    pub held: u64,
    /// Files destroyed with their messages.
    pub files_destroyed: u64,
    /// Deleted messages whose kept text was destroyed: its grace period over and no hold
    /// covering it, or the message itself past the retention period.
    pub purged: u64,
    /// Deleted messages whose grace period is over but whose text a legal hold keeps.
    pub remnants_held: u64,
    /// Deleted files (kept hidden by a hold or their message's grace period) now deleted.
    pub files_purged: u64,
    /// Deleted files a legal hold still keeps hidden.
    pub files_held: u64,
    /// The workspace's `retention.files_days` (`None`: forever).
    pub files_days: Option<u32>,
    /// Files past `files_days` deleted (with their blobs and thumbnails).
    pub files_expired: u64,
    /// Files past `files_days` a legal hold keeps.
    pub files_expired_held: u64,
    /// The workspace's `retention.document_history_days` (`None`: forever).
    pub document_history_days: Option<u32>,
    /// Documents whose old edit history was folded into their snapshot.
    pub documents_folded: u64,
    /// Stored update batches folded (destroyed as history).
    pub updates_folded: u64,
    /// Named versions past the period deleted.
    pub versions_destroyed: u64,
    /// Old edit histories and named versions a legal hold keeps.
    pub history_held: u64,
    /// Writes the pass took.
    pub batches: u64,
}

/// One workspace whose pass failed.
#[derive(Clone, Debug, Serialize)]
pub struct PassFailure {
    /// The workspace (`None`: the deployment's part).
    pub workspace_id: Option<WorkspaceId>,
    /// Why.
    pub error: String,
}

/// What a pass over the deployment did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PassReport {
    /// Each workspace's report.
    pub workspaces: Vec<RetentionReport>,
    /// Sessions and the audit log (`None` when the pass covered one workspace only).
    pub deployment: Option<DeploymentReport>,
    /// What failed (the rest of the pass went on).
    pub failures: Vec<PassFailure>,
}
