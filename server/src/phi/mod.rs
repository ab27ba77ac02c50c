//! Safeguards for protected health information (HIPAA, 45 CFR 164.312) that act on people's
//! access over time: automatic logoff ([`logoff`]).
//!
//! Which workspaces hold PHI and the safeguards' periods come from the policies
//! ([`crate::policy::PolicyService::holding_phi`]): `phi.enabled`, or a channel flagged `phi`
//! in a workspace's override, makes every member of that workspace subject to them. A policy
//! minute lasts `phi.test_minute_seconds` (60 outside tests; see [`crate::config::PhiConfig`]).

pub mod logoff;

pub use logoff::IdleLogoff;
