//! Concord: team collaboration (channels, files, co-edited documents) with a compliance layer.
//!
//! The crate is the whole server as a library; the `concord` binary is a thin command line
//! over it. Layers go one way: `http` (transport) calls services (`auth`, `accounts`,
//! `workspaces`, `sso`, with `rbac` deciding), which call `store` (the only SQL). Committed changes
//! are published on the `events` bus. Personal data is encrypted through `crypto`, and every
//! action leaves a hash-chained record through `audit`, both inside the same write. See ARCHITECTURE.md for the map and its invariants.

pub mod accounts;
pub mod audit;
pub mod auth;
#[doc(hidden)]
pub mod bench_support;
pub mod bots;
pub mod chat;
pub mod compliance;
pub mod config;
pub mod crypto;
pub mod docs;
pub mod ediscovery;
pub use concord_domain as domain;
pub mod error;
pub mod events;
pub mod files;
pub mod http;
pub mod hub;
pub mod inventory;
pub mod keys;
pub mod memory;
pub mod outbox;
pub mod phi;
pub mod policy;
pub mod rbac;
pub mod search;
pub mod sso;
pub mod startup;
pub mod store;
pub mod subjects;
pub mod telemetry;
pub mod workflow;
pub mod workspaces;

pub use config::Config;
pub use startup::{run, App, StartupError};
