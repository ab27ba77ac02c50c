//! What routing decided, who it passed over and why, and the sentence people are shown.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The result of routing one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// What to do with the task.
    pub outcome: Outcome,
    /// How many candidates were eligible (met the requirements, present if that matters,
    /// under capacity if that matters). For a queue, how many are available to claim it.
    pub eligible: usize,
    /// Candidates passed over, in the order given, each with the first reason that applied.
    pub skipped: Vec<Skip>,
    /// The round-robin position to store for the group: the chosen id after a round-robin
    /// assignment, otherwise the cursor passed in, unchanged.
    pub cursor: Option<String>,
    /// Why, for people: "round-robin: next of 4 in the group; skipped 2: 1 out of office,
    /// 1 at capacity". Names no one; counts only.
    pub explanation: String,
}

impl Decision {
    /// The person the task goes to, if it goes to one.
    pub fn assignee(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Assign { id } => Some(id),
            _ => None,
        }
    }
}

/// What to do with the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Assign it to this person.
    Assign {
        /// The person's id.
        id: String,
    },
    /// Put it in the group's shared queue; someone claims it.
    Queue,
    /// Nobody can take it now. The server keeps it unassigned and routes again later
    /// (see [`WaitReason`]).
    Wait {
        /// What stood in the way.
        reason: WaitReason,
    },
    /// Routing cannot succeed with these candidates however long one waits (nobody in the
    /// group, the named person unknown, nobody with the required skills): an operator's
    /// or the process's fallback decides.
    Unroutable {
        /// Why, for the operator.
        reason: String,
    },
}

/// Why routing waits, which says what can change the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// Someone with room was passed over for presence (offline, away, out of office):
    /// routing again with presence ignored (the fallback) will find them.
    Unavailable,
    /// Everyone who could take it is at capacity: routing again when someone's load drops
    /// will find them; the fallback does not overload people.
    AtCapacity,
}

/// A candidate passed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    /// The candidate's id.
    pub id: String,
    /// The first reason that applied.
    pub why: SkipReason,
}

/// Why a candidate was passed over. Requirements are checked first, then out of office,
/// presence, and capacity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SkipReason {
    /// Lacks a required skill or level.
    MissingSkill {
        /// The first requirement missed: its kind (`languages`) or `level.<name>`.
        kind: String,
    },
    /// Out of office today (presence-aware routing).
    OutOfOffice {
        /// The last day away.
        until: NaiveDate,
    },
    /// Marked away (presence-aware routing).
    Away,
    /// Offline (presence-aware routing).
    Offline,
    /// Has as many open tasks as their capacity allows.
    AtCapacity {
        /// Open tasks now.
        open: u32,
        /// The person's capacity.
        capacity: u32,
    },
}

/// Counts of skips by reason, for the explanation, plus what a wait depends on.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally {
    pub out_of_office: usize,
    pub away: usize,
    pub offline: usize,
    pub at_capacity: usize,
    /// Skipped for presence while under capacity: the fallback would find them.
    pub absent_with_room: usize,
}

impl Tally {
    /// Counts one skip.
    pub fn count(&mut self, why: &SkipReason) {
        match why {
            // Requirement misses are not availability; the explanation counts matches instead.
            SkipReason::MissingSkill { .. } => {}
            SkipReason::OutOfOffice { .. } => self.out_of_office += 1,
            SkipReason::Away => self.away += 1,
            SkipReason::Offline => self.offline += 1,
            SkipReason::AtCapacity { .. } => self.at_capacity += 1,
        }
    }

    /// Why the decision waits, when nobody was eligible.
    pub fn wait_reason(&self) -> WaitReason {
        if self.absent_with_room > 0 {
            WaitReason::Unavailable
        } else {
            WaitReason::AtCapacity
        }
    }

    /// Skips for presence and capacity, e.g. "1 out of office, 1 at capacity"; empty when
    /// there were none. Requirement misses are left out: the explanation counts matches.
    pub fn availability(&self) -> String {
        let parts = [
            (self.out_of_office, "out of office"),
            (self.away, "away"),
            (self.offline, "offline"),
            (self.at_capacity, "at capacity"),
        ];
        let mut out = String::new();
        for (n, what) in parts.into_iter().filter(|(n, _)| *n > 0) {
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(&format!("{n} {what}"));
        }
        out
    }

    /// "; skipped 2: 1 out of office, 1 at capacity", or nothing.
    pub fn suffix(&self) -> String {
        let n = self.out_of_office + self.away + self.offline + self.at_capacity;
        if n == 0 {
            String::new()
        } else {
            format!("; skipped {n}: {}", self.availability())
        }
    }
}
