//! Past tasks as training examples: the final completer is the label, so a reassignment
//! teaches the router the answer the first assignment got wrong.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::features::Sample;
use crate::model::Example;

/// How one past user task ended, as the server's history records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskOutcome {
    /// The request's text.
    pub text: String,
    /// The task's variables when it was routed.
    #[serde(default)]
    pub variables: Map<String, Value>,
    /// Who the task was first assigned to (by rules, the model or a person), if recorded.
    pub first_assigned: Option<String>,
    /// The team or person that completed it.
    pub completed_by: String,
}

impl TaskOutcome {
    /// Whether the task was reassigned: first assigned to someone other than its completer.
    pub fn is_correction(&self) -> bool {
        self.first_assigned
            .as_deref()
            .is_some_and(|first| first != self.completed_by)
    }
}

/// One example per outcome, labelled by `completed_by` and marked `corrected` when the task
/// was reassigned.
pub fn examples_from_history(records: &[TaskOutcome]) -> Vec<Example> {
    records
        .iter()
        .map(|r| Example {
            sample: Sample {
                text: r.text.clone(),
                variables: r.variables.clone(),
            },
            label: r.completed_by.clone(),
            corrected: r.is_correction(),
        })
        .collect()
}
