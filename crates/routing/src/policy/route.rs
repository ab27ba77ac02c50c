//! The entry point: one strategy over one snapshot of candidates, and the availability
//! screen (out of office, presence, capacity) every strategy shares.

use chrono::{DateTime, NaiveDate, Utc};

use super::candidate::{Candidate, Presence};
use super::decision::{Decision, Outcome, Skip, SkipReason, Tally};
use super::strategy::{RoutingOptions, Strategy};
use super::{least_loaded, person, queue, round_robin, skills};

/// Routes a task opening at `now`; out of office is judged on `now`'s date in UTC.
///
/// `candidates` is the group the task names (a role's holders or a channel's members; for
/// [`Strategy::Person`], at least that person). `cursor` is the id of the last person
/// round-robin assigned in this group, which the caller stores from [`Decision::cursor`].
/// One pass over the candidates, no sorting: linear in their number.
pub fn route(
    strategy: &Strategy,
    candidates: &[Candidate],
    cursor: Option<&str>,
    options: &RoutingOptions,
    now: DateTime<Utc>,
) -> Decision {
    route_on(strategy, candidates, cursor, options, now.date_naive())
}

/// [`route`] with the day to judge out-of-office periods on given directly, for a caller
/// that counts days in the workspace's time zone.
pub fn route_on(
    strategy: &Strategy,
    candidates: &[Candidate],
    cursor: Option<&str>,
    options: &RoutingOptions,
    today: NaiveDate,
) -> Decision {
    let mut screen = Screen::new(options, today);
    let label = strategy.label();
    let mut cursor_out = cursor.map(str::to_string);
    let routed = match strategy {
        Strategy::Person { id } => person::route(id, candidates, &mut screen),
        _ if candidates.is_empty() => Routed::Unroutable {
            reason: format!("{label}: nobody in the group"),
        },
        Strategy::Queue => queue::route(candidates, &mut screen),
        Strategy::RoundRobin => {
            let routed = round_robin::route(candidates, cursor, &mut screen);
            if let Routed::Assign { id, .. } = &routed {
                cursor_out = Some(id.to_string());
            }
            routed
        }
        Strategy::LeastLoaded => least_loaded::route(candidates, &mut screen),
        Strategy::Skills { requirements } => skills::route(requirements, candidates, &mut screen),
    };
    let (outcome, explanation) = match routed {
        Routed::Assign { id, explanation } => (Outcome::Assign { id: id.to_string() }, explanation),
        Routed::Queue { explanation } => (Outcome::Queue, explanation),
        Routed::Wait { explanation } => (
            Outcome::Wait {
                reason: screen.tally.wait_reason(),
            },
            explanation.unwrap_or_else(|| {
                format!(
                    "{label}: nobody available now ({})",
                    screen.tally.availability()
                )
            }),
        ),
        Routed::Unroutable { reason } => (
            Outcome::Unroutable {
                reason: reason.clone(),
            },
            reason,
        ),
    };
    Decision {
        outcome,
        eligible: screen.eligible,
        skipped: screen.skipped,
        cursor: cursor_out,
        explanation,
    }
}

/// What a strategy decided, before the screen's tally fills in a wait.
pub(crate) enum Routed<'c> {
    /// Assign to this candidate.
    Assign { id: &'c str, explanation: String },
    /// Put in the shared queue.
    Queue { explanation: String },
    /// Nobody eligible; `None` takes the shared "nobody available now (…)" explanation.
    Wait { explanation: Option<String> },
    /// Cannot be routed; the reason doubles as the explanation.
    Unroutable { reason: String },
}

/// The availability screen: who is out of office, absent or full, counted as it goes.
pub(crate) struct Screen<'a> {
    options: &'a RoutingOptions,
    today: NaiveDate,
    pub eligible: usize,
    pub skipped: Vec<Skip>,
    pub tally: Tally,
}

impl<'a> Screen<'a> {
    fn new(options: &'a RoutingOptions, today: NaiveDate) -> Screen<'a> {
        Screen {
            options,
            today,
            eligible: 0,
            skipped: Vec::new(),
            tally: Tally::default(),
        }
    }

    /// Whether the candidate is available under the options; if not, records why. Counts
    /// the eligible ones.
    pub fn admit(&mut self, candidate: &Candidate) -> bool {
        match self.unavailable(candidate) {
            None => {
                self.eligible += 1;
                true
            }
            Some(why) => {
                let full = matches!(why, SkipReason::AtCapacity { .. })
                    || (self.options.respect_capacity && candidate.is_at_capacity());
                if !full {
                    self.tally.absent_with_room += 1;
                }
                self.skip(candidate, why);
                false
            }
        }
    }

    /// Records a skip for a reason found elsewhere (a missing skill).
    pub fn skip(&mut self, candidate: &Candidate, why: SkipReason) {
        self.tally.count(&why);
        self.skipped.push(Skip {
            id: candidate.id.clone(),
            why,
        });
    }

    /// The first reason the candidate is unavailable: out of office, presence, capacity.
    fn unavailable(&self, candidate: &Candidate) -> Option<SkipReason> {
        if self.options.presence_aware {
            if let Some(period) = candidate.away_on(self.today) {
                return Some(SkipReason::OutOfOffice {
                    until: period.until,
                });
            }
            match candidate.presence {
                Presence::Online => {}
                Presence::Away => return Some(SkipReason::Away),
                Presence::Offline => return Some(SkipReason::Offline),
            }
        }
        match candidate.capacity {
            Some(capacity) if self.options.respect_capacity && candidate.open_tasks >= capacity => {
                Some(SkipReason::AtCapacity {
                    open: candidate.open_tasks,
                    capacity,
                })
            }
            _ => None,
        }
    }
}
