//! A shared queue: the task goes to the whole group (a role's holders or a channel's
//! members) and one of them claims it. Presence and capacity only decide who is counted as
//! available to claim now, so the server can notify those; the queue itself never waits.

use super::candidate::Candidate;
use super::route::{Routed, Screen};

/// Queues for the group.
pub(crate) fn route<'c>(candidates: &'c [Candidate], screen: &mut Screen) -> Routed<'c> {
    for candidate in candidates {
        screen.admit(candidate);
    }
    let total = candidates.len();
    let explanation = if screen.eligible == total {
        format!("shared queue: any of {total} can claim it")
    } else {
        format!(
            "shared queue: {} of {total} available to claim it{}",
            screen.eligible,
            screen.tally.suffix()
        )
    };
    Routed::Queue { explanation }
}
