//! Safeguards for protected health information (HIPAA, 45 CFR 164.312) that act on people's
//! access over time: automatic logoff ([`logoff`]) and emergency access ([`break_glass`]).
//!
//! Which workspaces hold PHI and the safeguards' periods come from the policies
//! ([`crate::policy::PolicyService::holding_phi`]): `phi.enabled`, or a channel flagged `phi`
//! in a workspace's override, makes every member of that workspace subject to them. A policy
//! minute lasts `phi.test_minute_seconds` (60 outside tests; see [`crate::config::PhiConfig`]).

pub mod break_glass;
mod inventory;
pub mod logoff;

pub use break_glass::{BreakGlassRead, BreakGlassRequest, BreakGlassService, BreakGlassView};
pub use inventory::INVENTORY;
pub use logoff::IdleLogoff;
