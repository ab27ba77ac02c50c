//! Least loaded: whoever has the fewest open tasks. Ties go to the one with the most room
//! left under their capacity (no capacity counts as the most room), then to the smallest
//! id, so the choice is stable. Capacity is a limit, not a weight: a person with room is
//! compared by open tasks like everyone else.

use std::cmp::Ordering;

use super::candidate::Candidate;
use super::route::{Routed, Screen};

/// Picks the least loaded eligible candidate in one pass.
pub(crate) fn route<'c>(candidates: &'c [Candidate], screen: &mut Screen) -> Routed<'c> {
    let mut best: Option<&Candidate> = None;
    for candidate in candidates {
        if screen.admit(candidate) && best.is_none_or(|b| by_load(candidate, b).is_lt()) {
            best = Some(candidate);
        }
    }
    match best {
        Some(chosen) => Routed::Assign {
            id: &chosen.id,
            explanation: format!(
                "least loaded: {}, {}{}",
                load(chosen),
                among(screen.eligible),
                screen.tally.suffix()
            ),
        },
        None => Routed::Wait { explanation: None },
    }
}

/// The order of preference by load: fewer open tasks, then more room, then smaller id.
pub(crate) fn by_load(a: &Candidate, b: &Candidate) -> Ordering {
    let room = |c: &Candidate| c.capacity.map(|cap| cap.saturating_sub(c.open_tasks));
    a.open_tasks
        .cmp(&b.open_tasks)
        .then_with(|| match (room(a), room(b)) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => y.cmp(&x),
        })
        .then_with(|| a.id.cmp(&b.id))
}

/// "2 open of 5 capacity", or "2 open" without a capacity.
pub(crate) fn load(candidate: &Candidate) -> String {
    match candidate.capacity {
        Some(capacity) => format!("{} open of {capacity} capacity", candidate.open_tasks),
        None => format!("{} open", candidate.open_tasks),
    }
}

/// "least of 3", or "the only one available".
pub(crate) fn among(n: usize) -> String {
    if n == 1 {
        "the only one available".to_string()
    } else {
        format!("least of {n}")
    }
}
