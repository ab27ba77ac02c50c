//! Identifier newtypes: UUIDv7 (time-ordered) values that cannot be mixed up.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, sqlx::Type,
            utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A user account.
    UserId
);
id_type!(
    /// A workspace.
    WorkspaceId
);
id_type!(
    /// A role (built-in or custom).
    RoleId
);
id_type!(
    /// A sign-in session (one refresh-token family).
    SessionId
);
id_type!(
    /// A workspace invitation.
    InvitationId
);
id_type!(
    /// A channel or direct conversation.
    ChannelId
);
id_type!(
    /// A message.
    MessageId
);
id_type!(
    /// A co-edited document.
    DocumentId
);
id_type!(
    /// A named version (snapshot) of a document.
    VersionId
);
id_type!(
    /// A comment on a document.
    CommentId
);
id_type!(
    /// A shared file (also the id of its resumable upload).
    FileId
);
id_type!(
    /// A bot's API token (its public id; the secret is shown once and stored hashed).
    BotTokenId
);
id_type!(
    /// An incoming webhook (its public id; the URL's secret is stored hashed).
    WebhookId
);
id_type!(
    /// A slash command a bot answers.
    BotCommandId
);
id_type!(
    /// One event on its way to a bot's request URL (pending or parked after its last retry).
    EventDeliveryId
);
id_type!(
    /// A legal hold: content kept whatever retention or deletion says.
    LegalHoldId
);
id_type!(
    /// An emergency access (break-glass): a time-limited read of one channel.
    BreakGlassId
);
id_type!(
    /// A data-subject request (GDPR Art. 12): one person's request, answered by a deadline.
    DataSubjectRequestId
);
id_type!(
    /// A personal-data breach in the breach register (GDPR Art. 33(5)).
    BreachId
);
id_type!(
    /// A restriction of processing (GDPR Art. 18): one period during which a person's data is
    /// not processed further.
    RestrictionId
);
