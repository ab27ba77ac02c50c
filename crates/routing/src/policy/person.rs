//! A named person: the task goes to them, unless presence-aware routing finds them away or
//! out of office, or they are at capacity; then it waits, and the fallback route (another
//! strategy, a role's queue, the escalation chain) is the caller's.

use super::candidate::Candidate;
use super::decision::SkipReason;
use super::route::{Routed, Screen};

/// Routes to the candidate with `id`.
pub(crate) fn route<'c>(id: &str, candidates: &'c [Candidate], screen: &mut Screen) -> Routed<'c> {
    let Some(person) = candidates.iter().find(|c| c.id == id) else {
        return Routed::Unroutable {
            reason: "named person: not among the candidates".to_string(),
        };
    };
    if screen.admit(person) {
        return Routed::Assign {
            id: &person.id,
            explanation: "named person: assigned by the process".to_string(),
        };
    }
    let why = match screen.skipped.last().map(|s| &s.why) {
        Some(SkipReason::OutOfOffice { until }) => format!("is out of office until {until}"),
        Some(SkipReason::Away) => "is away".to_string(),
        Some(SkipReason::Offline) => "is offline".to_string(),
        Some(SkipReason::AtCapacity { open, capacity }) => {
            format!("is at capacity ({open} open of {capacity})")
        }
        Some(SkipReason::MissingSkill { .. }) | None => "is not available".to_string(),
    };
    Routed::Wait {
        explanation: Some(format!("named person {why}")),
    }
}
