//! Close codes of the document endpoint (4400–4499 are permanent: clients should not retry).

/// A message that is not valid y-protocols or Yjs.
pub const MALFORMED: u16 = 4400;
/// Not signed in, or the session ended.
pub const UNAUTHENTICATED: u16 = 4401;
/// The session ended after a period without activity (automatic logoff); sign in again.
pub const IDLE_LOGOFF: u16 = 4440;
/// No access to this document (or it does not exist).
pub const FORBIDDEN: u16 = 4403;
/// An update or the document is over its size limit.
pub const TOO_LARGE: u16 = 4413;
/// The server is shutting down.
pub const GOING_AWAY: u16 = 1001;
/// The server failed; reconnect.
pub const SERVER_ERROR: u16 = 1011;
/// The connection fell too far behind; reconnect.
pub const TRY_AGAIN: u16 = 1013;
