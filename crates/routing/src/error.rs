//! The crate's one error type: what a caller did wrong, or what the solver could not do.

use thiserror::Error;

/// Everything that can go wrong when building features, training, predicting or evaluating.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum RoutingError {
    /// Training or evaluation was given no examples at all.
    #[error("no examples to learn from")]
    NoExamples,
    /// All examples carry the same label, so there is nothing to choose between.
    #[error("all examples are labelled {label:?}: a router needs at least two labels")]
    SingleLabel {
        /// The only label present.
        label: String,
    },
    /// An example's label is empty or only whitespace.
    #[error("example {index} has an empty label")]
    EmptyLabel {
        /// Position of the example in the slice given.
        index: usize,
    },
    /// A sample yields no features: its text is empty or punctuation only, and it has no variables.
    #[error("{what} has no features: empty or punctuation-only text and no variables")]
    EmptySample {
        /// Which: "the sample" when predicting, "every example" when training.
        what: String,
    },
    /// An option is out of its range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The held-out split left nothing to test on (too few examples per label).
    #[error("the held-out split is empty: every label needs at least two examples")]
    EmptyTestSplit,
    /// The optimiser failed (non-finite values, a failed line search).
    #[error("training failed: {0}")]
    Training(String),
    /// Serialised model bytes were written by a format this version does not read.
    #[error("unsupported model format {found} (this version reads format {expected})")]
    UnsupportedFormat {
        /// The format byte found.
        found: u8,
        /// The format byte this version writes and reads.
        expected: u8,
    },
    /// Serialised model bytes are truncated or inconsistent.
    #[error("corrupt model bytes: {0}")]
    CorruptModel(String),
}
