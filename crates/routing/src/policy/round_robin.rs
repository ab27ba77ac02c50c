//! Round-robin: each eligible person in turn, in stable id order, starting after the last
//! one assigned in the group (the cursor) and wrapping around. People who are skipped keep
//! their place: the turn passes to the next eligible one.

use super::candidate::Candidate;
use super::route::{Routed, Screen};

/// Picks the next eligible candidate after `cursor`: the smallest id above it, else the
/// smallest id overall. One pass, no sorting.
pub(crate) fn route<'c>(
    candidates: &'c [Candidate],
    cursor: Option<&str>,
    screen: &mut Screen,
) -> Routed<'c> {
    let mut first: Option<&str> = None;
    let mut next: Option<&str> = None;
    for candidate in candidates {
        if !screen.admit(candidate) {
            continue;
        }
        let id = candidate.id.as_str();
        if first.is_none_or(|f| id < f) {
            first = Some(id);
        }
        if cursor.is_none_or(|c| id > c) && next.is_none_or(|n| id < n) {
            next = Some(id);
        }
    }
    match next.or(first) {
        Some(id) => Routed::Assign {
            id,
            explanation: format!(
                "round-robin: next of {} in the group{}",
                screen.eligible,
                screen.tally.suffix()
            ),
        },
        None => Routed::Wait { explanation: None },
    }
}
