//! Why a room could not do what was asked, and how that reads to the rest of the server.

use super::content;
use crate::error::Error;
use crate::store::StoreError;

/// Why a room could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    /// The document no longer exists.
    #[error("document not found")]
    Gone,
    /// Another process stored a change to the document first; the room must reload it.
    #[error("the document changed elsewhere; try again")]
    Stale,
    /// The room is shutting down or failed; try again.
    #[error("the document is unavailable; try again")]
    Unavailable,
    /// The stored state cannot be read.
    #[error(transparent)]
    State(#[from] content::StateError),
    /// A service-level failure (storage, encryption, audit).
    #[error(transparent)]
    Service(#[from] Error),
}

impl From<StoreError> for RoomError {
    fn from(e: StoreError) -> Self {
        RoomError::Service(e.into())
    }
}

impl From<RoomError> for Error {
    fn from(e: RoomError) -> Self {
        match e {
            RoomError::Gone => Error::NotFound("document"),
            // Expected when another process wrote the document first: retryable, not a fault.
            RoomError::Stale => Error::conflict(
                "document_changed",
                "the document changed elsewhere; try again",
            ),
            RoomError::Unavailable => Error::Internal("document unavailable".into()),
            RoomError::State(s) => Error::Internal(s.to_string()),
            RoomError::Service(e) => e,
        }
    }
}
