//! The service layer's error: what went wrong in domain terms.
//!
//! Services return [`Error`]; the HTTP edge maps it to a status and a stable code in one
//! place (`http::error`), and the CLI prints it as one line.

use crate::domain::ParseError;
use crate::rbac::{Action, AuthzError};
use crate::store::StoreError;

/// Why a service call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value from the caller is not acceptable.
    #[error(transparent)]
    Invalid(#[from] ParseError),
    /// No valid credentials were presented, or they no longer hold.
    #[error("{message}")]
    Unauthenticated {
        /// Stable code (`token_expired`, `session_revoked`, ...).
        code: &'static str,
        /// What happened.
        message: String,
    },
    /// Email or password is wrong (deliberately not saying which).
    #[error("email or password is incorrect")]
    InvalidCredentials,
    /// A refresh token was presented a second time; its whole session is now revoked.
    #[error("this refresh token was already used; the session has been revoked")]
    RefreshTokenReused,
    /// The account belongs to a workspace that requires single sign-on.
    #[error(
        "a workspace you belong to requires single sign-on; sign in through your identity provider"
    )]
    SsoRequired,
    /// Single sign-on failed; nothing was signed in.
    #[error("{message}")]
    SsoFailed {
        /// Stable code (`sso_state_mismatch`, `sso_nonce_mismatch`, ...).
        code: &'static str,
        /// What happened, in words a user can act on.
        message: String,
        /// Whether the provider, not the request, is at fault.
        upstream: bool,
    },
    /// Too many failed attempts; try again later.
    #[error("too many failed sign-in attempts; try again in {retry_after_seconds} seconds")]
    Throttled {
        /// When to try again.
        retry_after_seconds: u64,
    },
    /// The caller made too many requests of this kind; try again later.
    #[error("{message}")]
    RateLimited {
        /// Stable code (`rate_limited`).
        code: &'static str,
        /// What was limited, in words.
        message: String,
        /// When to try again.
        retry_after_seconds: u64,
    },
    /// The server is at a capacity limit for this kind of request; try again later.
    #[error("{message}")]
    Busy {
        /// Stable code (`sso_busy`).
        code: &'static str,
        /// What is full, in words.
        message: String,
        /// When to try again.
        retry_after_seconds: u64,
    },
    /// The actor may not do this.
    #[error("you do not have the permission {0}")]
    Forbidden(Action),
    /// A bot's token lacks the scope the request needs.
    #[error("the token lacks the scope {needed}")]
    MissingScope {
        /// The scope needed.
        needed: &'static str,
    },
    /// The actor tried to grant (or take away) a role holding permissions they do not hold.
    #[error(
        "you cannot grant or take away a role holding permissions you do not hold: {}",
        action_list(.0)
    )]
    NotGrantable(Vec<Action>),
    /// A rule of the domain refuses the request.
    #[error("{message}")]
    Refused {
        /// Stable code.
        code: &'static str,
        /// What rule, in words.
        message: String,
    },
    /// The actor may see the thing but a rule other than a permission keeps them from
    /// acting on it (a workflow task assigned to someone else).
    #[error("{message}")]
    Denied {
        /// Stable code.
        code: &'static str,
        /// Why, in words.
        message: String,
    },
    /// A workflow model (or a form, or a task's completion) is refused: every problem found,
    /// each naming its element and line where it has them.
    #[error("{message}")]
    InvalidModel {
        /// Stable code (`invalid_model`, `invalid_form`, `invalid_completion`).
        code: &'static str,
        /// Every problem, in words.
        message: String,
        /// Every problem as `{element, line, message}`.
        problems: serde_json::Value,
    },
    /// The thing does not exist, or the actor may not know it does.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with what exists.
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// What conflicts.
        message: String,
    },
    /// The request was made against a version of the thing that is no longer current (a stale
    /// `If-Match`).
    #[error("{message}")]
    PreconditionFailed {
        /// Stable code (`version_conflict`).
        code: &'static str,
        /// What changed, in words.
        message: String,
    },
    /// The thing existed but can no longer be used (expired, used up, revoked).
    #[error("{message}")]
    Gone {
        /// Stable code.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// The request is over a size limit (a file, a workspace's quota).
    #[error("{message}")]
    TooLarge {
        /// Stable code (`file_too_large`, `quota_exceeded`).
        code: &'static str,
        /// Which limit, in words.
        message: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// Something outside Concord that the request depends on (a bot's URL) failed.
    #[error("{message}")]
    Upstream {
        /// Stable code (`command_timeout`, `command_failed`).
        code: &'static str,
        /// What failed, in words.
        message: String,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something that should not fail did.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<AuthzError> for Error {
    fn from(err: AuthzError) -> Self {
        match err {
            AuthzError::Forbidden(action) => Error::Forbidden(action),
            AuthzError::Hidden => Error::NotFound("resource"),
            AuthzError::NotGrantable(missing) => Error::NotGrantable(missing),
            AuthzError::MissingScope(needed) => Error::MissingScope { needed },
            AuthzError::Store(e) => Error::Store(e),
        }
    }
}

fn action_list(actions: &[Action]) -> String {
    actions
        .iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Error {
    pub(crate) fn refused(code: &'static str, message: impl Into<String>) -> Error {
        Error::Refused {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn denied(code: &'static str, message: impl Into<String>) -> Error {
        Error::Denied {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Error {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn precondition_failed(code: &'static str, message: impl Into<String>) -> Error {
        Error::PreconditionFailed {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn gone(code: &'static str, message: impl Into<String>) -> Error {
        Error::Gone {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn unauthenticated(code: &'static str, message: impl Into<String>) -> Error {
        Error::Unauthenticated {
            code,
            message: message.into(),
        }
    }
}
