//! Which policy a user task names, and the modifiers that apply to every policy.

use serde::{Deserialize, Serialize};

use super::requirement::{self, Requirement};

/// How a task picks among its candidates (the group: a role's holders or a channel's members).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum Strategy {
    /// A named person; the candidates must include them.
    Person {
        /// The person's id.
        id: String,
    },
    /// A shared queue: everyone in the group sees it and one claims it.
    Queue,
    /// Each in turn: the next after the last one assigned, in stable id order.
    RoundRobin,
    /// Whoever has the fewest open tasks.
    LeastLoaded,
    /// Whoever meets every required skill and the most preferred ones, then the least loaded.
    Skills {
        /// What the task asks; the compact string form or a list (see [`Requirement`]).
        #[serde(deserialize_with = "requirement::deserialize_list")]
        requirements: Vec<Requirement>,
    },
}

impl Strategy {
    /// How the strategy is named at the start of an explanation.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Strategy::Person { .. } => "named person",
            Strategy::Queue => "shared queue",
            Strategy::RoundRobin => "round-robin",
            Strategy::LeastLoaded => "least loaded",
            Strategy::Skills { .. } => "skills",
        }
    }
}

/// Modifiers every strategy honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingOptions {
    /// Skip people who are offline, away or out of office. When that leaves nobody the
    /// decision is to wait; the server routes again after its fallback timeout with
    /// [`RoutingOptions::ignoring_presence`].
    pub presence_aware: bool,
    /// Skip people whose open tasks have reached their capacity (on by default). When that
    /// leaves nobody the decision is to wait rather than overload someone.
    pub respect_capacity: bool,
}

impl Default for RoutingOptions {
    fn default() -> RoutingOptions {
        RoutingOptions {
            presence_aware: false,
            respect_capacity: true,
        }
    }
}

impl RoutingOptions {
    /// The same options with presence no longer considered: the fallback route.
    pub fn ignoring_presence(self) -> RoutingOptions {
        RoutingOptions {
            presence_aware: false,
            ..self
        }
    }
}
