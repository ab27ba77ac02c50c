//! A user task's routing as a process model writes it, checked whole when the model is
//! deployed: the strategy, its modifiers, the presence fallback and the escalation chain.
//!
//! ```yaml
//! routing:
//!   strategy: skills
//!   requirements: "languages: ko; products: billing|payments; certifications: hipaa?"
//!   presence_aware: true
//!   fallback_after: PT30M
//!   escalation:
//!     - {to: manager, after: PT4H, on: not_claimed}
//!     - {to: {role: support-leads}, after: P1D, on: not_done}
//!   learned: {threshold: 0.8}    # ask the process's learned router first
//! ```
//!
//! `strategy` is `person` (with `id`), `queue`, `round_robin`, `least_loaded` or `skills`
//! (with `requirements`); unknown fields are refused so a misspelt option is not ignored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::duration::IsoDuration;
use super::escalation::EscalationChain;
use super::requirement::{self, Requirement};
use super::strategy::{RoutingOptions, Strategy};

/// Everything a user task says about who gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SpecForm", into = "SpecForm")]
pub struct RoutingSpec {
    /// The policy.
    pub strategy: Strategy,
    /// Presence awareness and capacity.
    pub options: RoutingOptions,
    /// With presence awareness: how long a task that found nobody available waits before
    /// it is routed again with presence ignored. `None`: it waits until someone is back.
    pub fallback_after: Option<IsoDuration>,
    /// Where the task goes when it is not claimed or not done in time.
    pub escalation: EscalationChain,
    /// Ask the process's learned router first; the strategy decides when its confidence is
    /// below the threshold (or there is no model yet).
    pub learned: Option<LearnedRouting>,
}

/// The learned router's part in a task's routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LearnedRouting {
    /// The confidence a prediction needs, in thousandths (700 is 0.7).
    threshold_permille: u16,
}

impl LearnedRouting {
    /// With a threshold between 0 and 1.
    pub fn new(threshold: f64) -> Result<LearnedRouting, String> {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(format!(
                "learned.threshold is a confidence between 0 and 1, not {threshold}"
            ));
        }
        Ok(LearnedRouting {
            threshold_permille: (threshold * 1000.0).round() as u16,
        })
    }

    /// The confidence a prediction needs, between 0 and 1.
    pub fn threshold(&self) -> f64 {
        f64::from(self.threshold_permille) / 1000.0
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LearnedForm {
    #[serde(default = "default_threshold")]
    threshold: f64,
}

fn default_threshold() -> f64 {
    0.7
}

impl RoutingSpec {
    /// A strategy with the default options, no fallback and no escalation.
    pub fn new(strategy: Strategy) -> RoutingSpec {
        RoutingSpec {
            strategy,
            options: RoutingOptions::default(),
            fallback_after: None,
            escalation: EscalationChain::default(),
            learned: None,
        }
    }

    /// When a task that started waiting at `waiting_since` is routed again ignoring presence.
    pub fn fallback_at(&self, waiting_since: DateTime<Utc>) -> Option<DateTime<Utc>> {
        waiting_since.checked_add_signed(self.fallback_after.as_ref()?.length())
    }
}

/// The flat form models write.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecForm {
    strategy: StrategyName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    requirements: Option<RequirementList>,
    #[serde(default)]
    presence_aware: bool,
    #[serde(default = "yes")]
    respect_capacity: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fallback_after: Option<IsoDuration>,
    #[serde(default, skip_serializing_if = "EscalationChain::is_empty")]
    escalation: EscalationChain,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    learned: Option<LearnedForm>,
}

fn yes() -> bool {
    true
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StrategyName {
    Person,
    Queue,
    RoundRobin,
    LeastLoaded,
    Skills,
}

#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct RequirementList(
    #[serde(deserialize_with = "requirement::deserialize_list")] Vec<Requirement>,
);

impl TryFrom<SpecForm> for RoutingSpec {
    type Error = String;

    fn try_from(form: SpecForm) -> Result<Self, Self::Error> {
        let strategy = match (form.strategy, form.id, form.requirements) {
            (StrategyName::Person, Some(id), None) if !id.trim().is_empty() => {
                Strategy::Person { id }
            }
            (StrategyName::Person, _, None) => {
                return Err("strategy person needs the person's `id`".to_string())
            }
            (StrategyName::Skills, None, Some(RequirementList(requirements))) => {
                Strategy::Skills { requirements }
            }
            (StrategyName::Skills, None, None) => {
                return Err("strategy skills needs `requirements`".to_string())
            }
            (StrategyName::Queue, None, None) => Strategy::Queue,
            (StrategyName::RoundRobin, None, None) => Strategy::RoundRobin,
            (StrategyName::LeastLoaded, None, None) => Strategy::LeastLoaded,
            (_, Some(_), _) => return Err("`id` goes only with strategy person".to_string()),
            (_, _, Some(_)) => {
                return Err("`requirements` go only with strategy skills".to_string())
            }
        };
        if form.fallback_after.is_some() && !form.presence_aware {
            return Err(
                "`fallback_after` applies to presence-aware routing: set `presence_aware: true`"
                    .to_string(),
            );
        }
        Ok(RoutingSpec {
            strategy,
            options: RoutingOptions {
                presence_aware: form.presence_aware,
                respect_capacity: form.respect_capacity,
            },
            fallback_after: form.fallback_after,
            escalation: form.escalation,
            learned: form
                .learned
                .map(|l| LearnedRouting::new(l.threshold))
                .transpose()?,
        })
    }
}

impl From<RoutingSpec> for SpecForm {
    fn from(spec: RoutingSpec) -> SpecForm {
        let (strategy, id, requirements) = match spec.strategy {
            Strategy::Person { id } => (StrategyName::Person, Some(id), None),
            Strategy::Queue => (StrategyName::Queue, None, None),
            Strategy::RoundRobin => (StrategyName::RoundRobin, None, None),
            Strategy::LeastLoaded => (StrategyName::LeastLoaded, None, None),
            Strategy::Skills { requirements } => (
                StrategyName::Skills,
                None,
                Some(RequirementList(requirements)),
            ),
        };
        SpecForm {
            strategy,
            id,
            requirements,
            presence_aware: spec.options.presence_aware,
            respect_capacity: spec.options.respect_capacity,
            fallback_after: spec.fallback_after,
            escalation: spec.escalation,
            learned: spec.learned.map(|l| LearnedForm {
                threshold: l.threshold(),
            }),
        }
    }
}
