//! Workspaces, members, roles and invitations as the API shows them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{InvitationId, RoleId, UserId, WorkspaceId};

/// A workspace as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct WorkspaceView {
    /// Its id.
    pub id: WorkspaceId,
    /// Name.
    pub name: String,
    /// URL handle.
    pub slug: String,
    /// The caller's role in it, if a member.
    pub role: Option<String>,
}

/// A member as other members see them.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    /// The account.
    pub user_id: UserId,
    /// Display name.
    pub display_name: String,
    /// Email.
    pub email: String,
    /// Role name.
    pub role: String,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
}

/// A role usable in a workspace.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RoleView {
    /// Its id.
    pub id: RoleId,
    /// Name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Built in (not editable) or custom.
    pub builtin: bool,
    /// The actions it grants.
    pub permissions: Vec<String>,
}

/// An invitation as its workspace's admins see it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationView {
    /// Its id.
    pub id: InvitationId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Only this email may accept, if set.
    pub email: Option<String>,
    /// Role on joining.
    pub role: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// How many may accept.
    pub max_uses: i64,
    /// How many did.
    pub uses: i64,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// A new invitation with its secret token, shown once.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedInvitation {
    /// The invitation.
    #[serde(flatten)]
    pub invitation: InvitationView,
    /// The secret that accepts it; shown only now.
    pub token: String,
    /// A link to hand to the invitee.
    pub url: String,
    /// How the invitation reaches the invitee: `shown` (no mail server is configured).
    pub delivery: &'static str,
}

/// What an invitee sees before accepting.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationPreview {
    /// The workspace's name.
    pub workspace_name: String,
    /// The email it is for, if restricted.
    pub email: Option<String>,
    /// Role on joining.
    pub role: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}
