//! What the API shows of a workspace's policy, and to whom.
//!
//! Everyone who may see a workspace sees its effective workspace-wide values (the retention
//! periods that apply to what they write, whether PHI safeguards are on) and where each comes
//! from. The override as written, and the entries of channels (keyed by channel id, with their
//! PHI flags), are shown in full only to those who set overrides (`policies.manage`) and to
//! compliance officers (`audit.read`, a system permission no workspace role holds) who may see
//! the workspace. Everyone else, the workspace's own admins and owners included (they do not
//! see private channels they are not in), sees the entries of the channels they may read and no
//! override document, so a private channel's id and PHI flag do not reach someone outside it.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::schema::Policy;
use crate::domain::{ChannelId, UserId, WorkspaceId};
use crate::rbac::Action;

/// A workspace's effective policy, as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct WorkspacePolicyView {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The policy's version: it rises with every change to the modules or the override. It
    /// is the response's `ETag`, which a `PUT` may name in `If-Match`.
    pub version: i64,
    /// The enabled modules, in the order they are layered.
    pub modules: Vec<String>,
    /// Every key with its value (channels: those the reader may read, unless they manage
    /// policies or are a compliance officer).
    pub policy: Policy,
    /// Where each value comes from, by dotted key: a module's name, or `workspace` for the
    /// workspace's override.
    pub sources: BTreeMap<String, String>,
    /// The workspace's override, if it has one; shown only to those who manage policies and to
    /// compliance officers.
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

/// Whether someone holding `held` in a workspace (system and workspace permissions) sees its
/// override and every channel entry: who sets overrides, and compliance officers (`audit.read`
/// is a system permission: no workspace role can grant it). Administering the workspace is not
/// enough: its admins do not see private channels they are not in, nor their PHI flags.
pub(super) fn sees_everything(held: &HashSet<Action>) -> bool {
    held.contains(&Action::ManagePolicies) || held.contains(&Action::ReadAudit)
}

impl WorkspacePolicyView {
    /// The view without the override document and without the entries of channels not in
    /// `readable`.
    pub(super) fn limited_to(mut self, readable: &HashSet<ChannelId>) -> WorkspacePolicyView {
        self.workspace_override = None;
        self.policy.channels.retain(|id, _| readable.contains(id));
        self.sources
            .retain(|key, _| match key.strip_prefix("channels.") {
                Some(rest) => rest
                    .split('.')
                    .next()
                    .and_then(|id| id.parse::<ChannelId>().ok())
                    .is_some_and(|id| readable.contains(&id)),
                None => true,
            });
        self
    }
}
