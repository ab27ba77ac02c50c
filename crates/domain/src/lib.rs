//! Domain types that parse at the edge: once one exists, it is valid.
//!
//! Handlers turn request fields into these types first; services and storage then trust
//! them. A parse failure is a [`ParseError`] naming the field and what is wrong with it.

mod chat;
mod email;
mod files;
mod ids;
mod names;
mod password;

pub use chat::{ChannelName, Emoji, MessageBody};
pub use email::Email;
pub use files::FileName;
pub use ids::{
    BotCommandId, BotTokenId, BreachId, BreakGlassId, ChannelId, CommentId, DataSubjectRequestId,
    DocumentId, EventDeliveryId, FileId, InvitationId, LegalHoldId, MessageId, RestrictionId,
    RoleId, SessionId, UserId, VersionId, WebhookId, WorkspaceId,
};
pub use names::{DisplayName, RoleName, Slug, WorkspaceName};
pub use password::Password;

/// A value from outside that is not acceptable, with the field it came from.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ParseError {
    /// The request field (or CLI flag) the value came from.
    pub field: &'static str,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl ParseError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        ParseError {
            field,
            message: message.into(),
        }
    }
}
