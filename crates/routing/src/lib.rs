//! Concord's learned task router and its evaluation.
//!
//! When a user task is created, the server can ask a [`Router`] trained on past tasks who
//! should get it; when the router's confidence clears the process's threshold it routes, and
//! otherwise the process's rules decide. The crate does no I/O: no files, no clock, no network,
//! no async. Everything is deterministic given the inputs and a seed. The server stores the
//! bytes of [`Router::to_bytes`] (sealed and versioned), retrains on its schedule or on demand,
//! and records the model version and [`Prediction::confidence`] on every routed task.
//!
//! # Features ([`features`])
//!
//! A [`Sample`] (text + variables) becomes a sparse vector in a hashed space (2^18 buckets by
//! default): lowercased word unigrams and bigrams, character 2- to 4-grams of every word (so
//! Korean, Japanese and Chinese text without spaces still matches on its pieces), and
//! `key=value` tokens for variables, numbers bucketed by order of magnitude. The hash is
//! 64-bit FNV-1a with fixed constants, so a token lands in the same bucket in every process.
//! Term frequencies are sublinear (`1 + ln tf`) and vectors are L2-normalised.
//!
//! # Model ([`model`]; feature selection in `selection`)
//!
//! Training keeps the `max_features` (4,096) buckets most tied to some label by a chi-squared
//! score, and fits an L2-regularised multinomial logistic regression on those columns with
//! linfa's L-BFGS solver (`linfa-logistic`; 50 iterations, `l2` 0.5 by default). Logistic
//! regression gives probabilities usable as a confidence against a threshold (the evaluation
//! reports their calibration error), and selection keeps the dense matrix linfa needs at
//! `examples × 4,096` `f32`s: 100,000 tasks take 1.6 GB (2.1 GB peak) where the full hashed
//! space would not fit. (linfa's multinomial naive Bayes would train in batches, but its 0.8
//! release prints every class histogram to stderr on each batch, and its probabilities are far
//! from calibrated.) The router keeps only the kept buckets, labels and `f32` weights;
//! prediction is a sparse dot product. Examples whose sample gives no features are skipped and
//! counted ([`Router::skipped`]).
//!
//! # Labels ([`history`])
//!
//! Each past task's label is whoever finally completed it; a task reassigned after its first
//! assignment is a correction and teaches the right answer.
//!
//! # Evaluation ([`eval`], [`baseline`], [`metrics`])
//!
//! [`evaluate`] splits examples 80/20 per label (seeded), trains on the first part and reports
//! on the held-out part: accuracy, macro-F1, the confusion matrix and calibration of the model;
//! at a threshold, the share routed by the model and by the fallback and the accuracy of the
//! two combined; and, on the same split, two baselines: the majority label and keyword rules
//! learned from the training part (which also stand in for a process's rules as the fallback).
//!
//! # Data ([`corpus`], [`generate`](mod@generate))
//!
//! [`read_fortunes`] reads Debian's fortune files (categorised text collections) as a real
//! labelled corpus; [`generate()`] makes a seeded ticket history with eight teams, Korean and
//! Japanese tickets, shared vocabulary, noisy words, class imbalance and reassignments.
//!
//! [`policy`]: the rule-based strategies (person, queue, round-robin, least loaded, skills).

pub mod baseline;
pub mod corpus;
pub mod error;
pub mod eval;
pub mod features;
pub mod generate;
pub mod history;
pub mod metrics;
pub mod model;
pub mod policy;
mod selection;

pub use corpus::read_fortunes;
pub use error::RoutingError;
pub use eval::{evaluate, EvalOptions, Evaluation};
pub use features::{Featurizer, Sample, SparseVector};
pub use generate::generate;
pub use history::{examples_from_history, TaskOutcome};
pub use model::{Example, Prediction, Router, TrainOptions};
