//! A problem found in a model at deploy time, named by element id and source line.
//!
//! Parsing and validation both collect every problem they find rather than stopping at the
//! first, so the person deploying fixes a model in one pass.

use serde::{Deserialize, Serialize};

/// One problem in a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The id of the element (or flow) at fault, if there is one.
    pub element: Option<String>,
    /// The 1-based source line, when the model came from text.
    pub line: Option<u32>,
    /// What is wrong, for a person.
    pub message: String,
}

impl Problem {
    /// A problem with an element.
    pub fn at(element: &str, line: Option<u32>, message: impl Into<String>) -> Problem {
        Problem {
            element: Some(element.to_string()),
            line,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.element, self.line) {
            (Some(e), Some(l)) => write!(f, "{e} (line {l}): {}", self.message),
            (Some(e), None) => write!(f, "{e}: {}", self.message),
            (None, Some(l)) => write!(f, "line {l}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

/// Every problem found, as one error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("the model has {} problem(s): {}", .0.len(), .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
pub struct Problems(pub Vec<Problem>);
