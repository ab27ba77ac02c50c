//! What the API shows of documents, their grants and versions.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::{ChannelId, CommentId, DocumentId, UserId, VersionId, WorkspaceId};
use crate::rbac::Level;

/// A document as someone with access sees it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DocumentView {
    /// Its id (the Yjs room name).
    pub id: DocumentId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// The channel it is linked to, if any.
    pub channel_id: Option<ChannelId>,
    /// Title.
    pub title: String,
    /// What every workspace member gets: `none`, `view`, `comment` or `edit`.
    pub general_access: String,
    /// Creator.
    pub created_by: UserId,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its details or content last changed.
    pub updated_at: DateTime<Utc>,
    /// The caller's access level.
    pub my_access: Level,
}

/// An access grant.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct GrantView {
    /// `user` or `role`.
    pub principal_kind: String,
    /// The user's or role's id.
    pub principal_id: Uuid,
    /// Level granted.
    pub level: Level,
    /// Who granted it.
    pub granted_by: UserId,
    /// When.
    pub granted_at: DateTime<Utc>,
}

/// A named version.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct VersionView {
    /// Its id.
    pub id: VersionId,
    /// Name.
    pub name: String,
    /// Who made it.
    pub created_by: UserId,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A comment on a document.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CommentView {
    /// Its id.
    pub id: CommentId,
    /// Who wrote it.
    pub author_id: UserId,
    /// Text.
    pub text: String,
    /// Where in the document it points: a Yjs relative position (JSON) chosen by the client.
    #[schema(value_type = Option<Object>)]
    pub anchor: Option<serde_json::Value>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// When it was resolved, if it was.
    pub resolved_at: Option<DateTime<Utc>>,
}
