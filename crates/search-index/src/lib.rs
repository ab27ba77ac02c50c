//! The storage and text analysis of Concord's search index, apart from the server.
//!
//! - [`encrypted_dir`]: the tantivy `Directory` that encrypts every index file in chunks under
//!   a workspace's index key.
//! - [`analyzer`]: English stems, CJK bigrams, case, width and accent folding.
//!
//! Nothing here knows workspaces, permissions or the database: the server's `search` module
//! builds indexes on top of these and hands in the keys.

pub mod analyzer;
pub mod encrypted_dir;
