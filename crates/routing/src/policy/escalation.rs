//! Escalation: when a task is not claimed, or not done, within a time, it moves up a chain
//! (the assignee's manager, a role, a named person).
//!
//! A chain is a list of steps, each firing `after` a duration counted from when the task
//! opened, `on` a condition: `not_claimed` (nobody has taken it yet) or `not_done` (still
//! open). The durations must grow along the chain, so steps fire in order. In a model:
//!
//! ```yaml
//! escalation:
//!   - {to: manager, after: PT4H, on: not_claimed}
//!   - {to: {role: support-leads}, after: P1D, on: not_done}
//! ```
//!
//! The chain is pure arithmetic over times the server keeps: `level` is how many steps are
//! behind the task (fired or passed over). [`EscalationChain::next_due`] says when to set the
//! next timer; when it fires, [`escalate_due`] says which steps are now due, where each sends
//! the task, the new level and the next timer. A step is considered once, at its time: a
//! `not_claimed` step whose time comes after the task was claimed is passed over for good.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::duration::IsoDuration;

/// Where a step sends the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalateTo {
    /// The manager of whoever holds the task at that point (the `manager` attribute).
    Manager,
    /// A role's shared queue.
    Role(String),
    /// A named person.
    Person(String),
}

/// When a step applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalateWhen {
    /// Nobody has claimed the task.
    NotClaimed,
    /// The task is still open.
    NotDone,
}

/// One step up the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationStep {
    /// Where the task goes.
    pub to: EscalateTo,
    /// How long after the task opened (ISO 8601, `PT4H`).
    pub after: IsoDuration,
    /// The condition that must still hold then.
    pub on: EscalateWhen,
}

/// A validated chain: durations strictly growing, names not empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<EscalationStep>", into = "Vec<EscalationStep>")]
pub struct EscalationChain {
    steps: Vec<EscalationStep>,
}

/// The times the server keeps for a task, against which steps are due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTimes {
    /// When the task opened; every step's `after` counts from here.
    pub opened_at: DateTime<Utc>,
    /// When someone claimed it, if anyone has (and has not given it back).
    pub claimed_at: Option<DateTime<Utc>>,
}

/// A step and when it falls due: the time to set a timer for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Due {
    /// The step's position in the chain.
    pub step: usize,
    /// When it falls due.
    pub at: DateTime<Utc>,
}

/// Where one step sent the task, and why, for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    /// The step's position in the chain.
    pub step: usize,
    /// Where the task goes.
    pub to: Target,
    /// "escalated to the assignee's manager: not claimed within 4 hours".
    pub explanation: String,
}

/// Where an escalation sends the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Reassign to this person.
    Person(String),
    /// Put in this role's shared queue (the server may route within the role instead).
    Role(String),
    /// The step found nobody (no assignee, no manager on record); the task stays put.
    Nobody,
}

/// What firing the due steps did: the escalations in order, and what to store and schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationRun {
    /// The steps that applied, in order; the last one that names someone holds the task.
    pub escalations: Vec<Escalation>,
    /// The new level to store.
    pub level: usize,
    /// The next timer to set, if any step is left that can still apply.
    pub next: Option<Due>,
}

impl EscalationChain {
    /// A chain from steps whose `after` strictly grows and whose names are not empty.
    pub fn new(steps: Vec<EscalationStep>) -> Result<EscalationChain, String> {
        for (i, step) in steps.iter().enumerate() {
            let name = match &step.to {
                EscalateTo::Manager => None,
                EscalateTo::Role(name) => Some(("role", name)),
                EscalateTo::Person(name) => Some(("person", name)),
            };
            if let Some((what, name)) = name {
                if name.trim().is_empty() {
                    return Err(format!("escalation step {}: the {what} is empty", i + 1));
                }
            }
            if let Some(previous) = i.checked_sub(1).and_then(|p| steps.get(p)) {
                if step.after.length() <= previous.after.length() {
                    return Err(format!(
                        "escalation step {} fires after {} but step {} after {}: each step's \
                         time counts from when the task opened and must be later than the one \
                         before",
                        i + 1,
                        step.after,
                        i,
                        previous.after
                    ));
                }
            }
        }
        Ok(EscalationChain { steps })
    }

    /// The steps in order.
    pub fn steps(&self) -> &[EscalationStep] {
        &self.steps
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// When step `step` falls due for a task opened at `opened_at`.
    pub fn due_at(&self, step: usize, opened_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let step = self.steps.get(step)?;
        opened_at.checked_add_signed(step.after.length())
    }

    /// The first step from `level` on that can still apply, and when: the timer to set.
    /// Call again whenever the task is claimed or given back, and after each firing.
    pub fn next_due(&self, times: &TaskTimes, level: usize) -> Option<Due> {
        (level..self.steps.len())
            .filter(|&i| self.applies(i, times))
            .find_map(|i| {
                Some(Due {
                    step: i,
                    at: self.due_at(i, times.opened_at)?,
                })
            })
    }

    /// The steps from `level` on whose time has come by `now` and whose condition holds,
    /// in order, and the new level (every step whose time has come is behind the task).
    pub fn due_steps(
        &self,
        times: &TaskTimes,
        level: usize,
        now: DateTime<Utc>,
    ) -> (Vec<usize>, usize) {
        let mut due = Vec::new();
        let mut new_level = level;
        for i in level..self.steps.len() {
            if self.due_at(i, times.opened_at).is_none_or(|at| at > now) {
                break;
            }
            new_level = i + 1;
            if self.applies(i, times) {
                due.push(i);
            }
        }
        (due, new_level)
    }

    fn applies(&self, step: usize, times: &TaskTimes) -> bool {
        self.steps.get(step).is_some_and(|s| match s.on {
            EscalateWhen::NotClaimed => times.claimed_at.is_none(),
            EscalateWhen::NotDone => true,
        })
    }
}

impl TryFrom<Vec<EscalationStep>> for EscalationChain {
    type Error = String;

    fn try_from(steps: Vec<EscalationStep>) -> Result<Self, Self::Error> {
        EscalationChain::new(steps)
    }
}

impl From<EscalationChain> for Vec<EscalationStep> {
    fn from(chain: EscalationChain) -> Vec<EscalationStep> {
        chain.steps
    }
}

/// Where step `step` sends a task held by `current` (`None`: nobody holds it, e.g. it sits
/// in a queue). `manager_of` looks up a person's manager (the `manager` attribute).
pub fn escalate(
    chain: &EscalationChain,
    step: usize,
    current: Option<&str>,
    manager_of: impl Fn(&str) -> Option<String>,
) -> Escalation {
    let Some(s) = chain.steps.get(step) else {
        return Escalation {
            step,
            to: Target::Nobody,
            explanation: format!("escalation: the chain has no step {}", step + 1),
        };
    };
    let because = match s.on {
        EscalateWhen::NotClaimed => format!("not claimed within {}", s.after.human()),
        EscalateWhen::NotDone => format!("not done within {}", s.after.human()),
    };
    let (to, explanation) = match &s.to {
        EscalateTo::Manager => match current.map(|c| (c, manager_of(c))) {
            Some((_, Some(manager))) => (
                Target::Person(manager),
                format!("escalated to the assignee's manager: {because}"),
            ),
            Some((_, None)) => (
                Target::Nobody,
                format!("escalation: {because}, but the assignee has no manager on record"),
            ),
            None => (
                Target::Nobody,
                format!("escalation: {because}, but nobody holds it to escalate to their manager"),
            ),
        },
        EscalateTo::Role(role) => (
            Target::Role(role.clone()),
            format!("escalated to {role}: {because}"),
        ),
        EscalateTo::Person(id) => (
            Target::Person(id.clone()),
            format!("escalated to the person the process names: {because}"),
        ),
    };
    Escalation {
        step,
        to,
        explanation,
    }
}

/// Fires every step due by `now` in order, each from where the previous one left the task:
/// a manager step after a manager step reaches the manager's manager; after a role step the
/// task sits in a queue and nobody holds it. Returns the escalations, the level to store and
/// the next timer.
pub fn escalate_due(
    chain: &EscalationChain,
    times: &TaskTimes,
    level: usize,
    now: DateTime<Utc>,
    current: Option<&str>,
    manager_of: impl Fn(&str) -> Option<String>,
) -> EscalationRun {
    let (due, level) = chain.due_steps(times, level, now);
    let mut holder = current.map(str::to_string);
    let mut escalations = Vec::with_capacity(due.len());
    for step in due {
        let escalation = escalate(chain, step, holder.as_deref(), &manager_of);
        match &escalation.to {
            Target::Person(id) => holder = Some(id.clone()),
            Target::Role(_) => holder = None,
            Target::Nobody => {}
        }
        escalations.push(escalation);
    }
    EscalationRun {
        escalations,
        level,
        next: chain.next_due(times, level),
    }
}
