//! Concord's workflow engine: BPMN process models and a pure state machine that runs them.
//!
//! The crate does no I/O: no clock, no network, no database, no tasks. The server parses and
//! validates a model at deploy time ([`bpmn::parse`], [`validate::validate`]), then drives each
//! instance with [`Engine::start`] and [`Engine::handle`]: model + state + input (+ the time,
//! passed in) → new state + [`Command`]s + [`HistoryEntry`]s. The server stores the state, runs
//! the commands (HTTP calls, posts, user tasks, timers, child instances) and feeds their outcomes
//! back as [`Input`]s. Given the same inputs and times, the engine makes the same transitions,
//! which is what lets the server resume every instance after a crash.
//!
//! Modules, one concept each: [`model`] (the process model), [`bpmn`] (reading BPMN XML),
//! [`export`] (writing it back with its layout), [`validate`] (deploy-time checks), [`expr`]
//! (CEL expressions and templates), [`layout`] (a diagram for models without one), [`yaml`]
//! (the compact YAML form), [`timer`] (ISO 8601 timers), [`problem`] (deploy-time
//! problems), [`state`] (an instance's durable state), [`command`] (what the engine asks the
//! server to do, what it is told back, and its history), [`engine`] (the transitions).

pub mod bpmn;
pub mod command;
pub mod engine;
pub mod export;
pub mod expr;
pub mod layout;
pub mod model;
pub mod problem;
mod run;
pub mod state;
pub mod timer;
pub mod validate;
pub mod yaml;

pub use command::{Command, HistoryEntry, Input};
pub use engine::{Engine, Error, Transition};
pub use model::ProcessModel;
pub use state::InstanceState;
