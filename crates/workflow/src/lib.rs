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
//! # For the server
//!
//! - Store [`Transition::state`](engine::Transition) (serde JSON; it carries
//!   [`state::STATE_FORMAT`]), the history entries (one audit record each) and the commands (in
//!   the outbox) in one transaction, then run the commands. Feed one instance's inputs one at a
//!   time, each against the state the previous one produced.
//! - Every wait has an id made from the instance id and a counter (`{instance}:task7`,
//!   `{instance}:timer8`, `{instance}:call9`, …); inputs name it. A service call's
//!   `idempotency_key` is `{instance}:{element}:{execution}` and is the same for every attempt of
//!   that execution (retries after backoff, operator retries of its incident); each attempt has
//!   a new `call_id`, and an answer to an older attempt is refused.
//! - An input that no longer matches (a task completed twice, a timer or call that a boundary
//!   event cancelled meanwhile) is an [`engine::Error`] and changes nothing: log it and drop it.
//!   Cancel commands may name work the server already finished; treat them as idempotent.
//! - A failure of the model's own logic becomes an incident (`RaiseIncident`), answered with
//!   `IncidentRetry`, `IncidentSkip` or `IncidentCancel`.
//! - Timer, message and signal start events are the server's to watch
//!   ([`ProcessModel::start_events`]); it starts an instance with [`Engine::start_at`].
//!
//! Modules, one concept each: [`model`] (the process model), [`bpmn`] (reading BPMN XML),
//! [`export`] (writing it back with its layout), [`validate`] (deploy-time checks), [`expr`]
//! (CEL expressions and templates), [`syntax`] (checking them as a person types), [`layout`] (a diagram for models without one), [`yaml`]
//! (the compact YAML form), [`timer`] (ISO 8601 timers), [`problem`] (deploy-time
//! problems), [`state`] (an instance's durable state), [`command`] (what the engine asks the
//! server to do, what it is told back, and its history), [`engine`] (the transitions),
//! [`decision`] (DMN decision tables: reading DMN XML, YAML and CSV, and deciding).

pub mod bpmn;
pub mod command;
pub mod decision;
pub mod engine;
pub mod export;
pub mod expr;
pub mod layout;
pub mod model;
pub mod problem;
mod run;
pub mod state;
pub mod syntax;
pub mod timer;
pub mod validate;
pub mod yaml;

pub use command::{Command, HistoryEntry, Input};
pub use engine::{Engine, Error, Transition};
pub use model::ProcessModel;
pub use state::InstanceState;
