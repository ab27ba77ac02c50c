//! Routing policies: who gets a workflow user task when it opens, and where it goes when
//! nobody takes it in time.
//!
//! The module is pure: no I/O, no clock (the caller passes `now`), no randomness. The
//! server gathers a snapshot of the task's group — each [`Candidate`] with their attributes,
//! open tasks and capacity, presence, out-of-office period and manager — and calls [`route`].
//! Every [`Decision`] carries an explanation the server shows people ("skills: ko, billing
//! (preferred: hipaa); least loaded of 2 matching"), which counts but never names.
//!
//! # Strategies ([`Strategy`])
//!
//! - **person**: a named person.
//! - **queue**: the group's shared queue; someone claims it.
//! - **round_robin**: the next eligible person after the group's cursor (the last one
//!   assigned), in stable id order, wrapping around.
//! - **least_loaded**: the fewest open tasks; ties to the most room under capacity, then id.
//! - **skills**: every required [`Requirement`] met (languages, products, certifications,
//!   levels); the most preferred ones met, then least loaded, then id.
//!
//! The learned router (the rest of this crate) is separate: the server asks it first and
//! routes with one of these when its confidence is too low.
//!
//! # Modifiers ([`RoutingOptions`])
//!
//! Capacity (on by default): someone whose open tasks have reached their capacity is
//! skipped, and when that leaves nobody the task waits rather than overloading anyone.
//! Presence awareness: someone offline, away or out of office (a date range, ends included,
//! judged on the day of `now`) is skipped; when that leaves nobody the task waits and the
//! server routes it again after the fallback timeout with presence ignored. Each skip is
//! listed in [`Decision::skipped`] with its [`SkipReason`].
//!
//! # Escalation ([`EscalationChain`])
//!
//! Steps up a chain (the assignee's manager, a role, a person), each due a duration after
//! the task opened, if it is then still not claimed or not done. [`EscalationChain::next_due`]
//! gives the timer to set and [`escalate_due`] what to do when it fires.
//!
//! # Model text ([`RoutingSpec`])
//!
//! A process model writes the strategy, its requirements (compact text, see
//! [`parse_requirements`], or a list), the modifiers, the fallback timeout and the escalation
//! chain as one block, which deploy parses whole so mistakes are refused before a task opens.
//!
//! # Cost
//!
//! Every strategy is one pass over the candidates with no sorting; requirement values are
//! normalised once when parsed, and matching allocates nothing. The allocations per call
//! are the skip list and the explanation.

mod candidate;
mod decision;
mod duration;
mod escalation;
mod least_loaded;
mod person;
mod queue;
mod requirement;
mod round_robin;
mod route;
mod skills;
mod spec;
mod strategy;

pub use candidate::{Attributes, Candidate, OutOfOffice, Presence};
pub use decision::{Decision, Outcome, Skip, SkipReason, WaitReason};
pub use duration::IsoDuration;
pub use escalation::{
    escalate, escalate_due, Due, EscalateTo, EscalateWhen, Escalation, EscalationChain,
    EscalationRun, EscalationStep, Target, TaskTimes,
};
pub use requirement::{parse_requirements, Requirement};
pub use route::{route, route_on};
pub use spec::{LearnedRouting, RoutingSpec};
pub use strategy::{RoutingOptions, Strategy};
