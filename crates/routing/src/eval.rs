//! Evaluation on a held-out split: the router against the majority label and keyword rules,
//! measured in one run on the same split, and what a confidence threshold does.
//!
//! The split is stratified and seeded: each label's examples are shuffled with ChaCha8 from the
//! seed and `test_fraction` of them (at least one, if the label has two or more) are held out.
//! When the router's confidence is below the threshold, the task goes to the fallback, played
//! here by the keyword rules learned from the training part.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::baseline::{majority_label, KeywordRules};
use crate::error::RoutingError;
use crate::metrics::{calibration_error, Metrics};
use crate::model::{Example, Router, TrainOptions};

/// How to evaluate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Seed of the split.
    pub seed: u64,
    /// Share of each label's examples held out for testing, in (0, 1).
    pub test_fraction: f64,
    /// Confidence from which the router routes instead of the fallback, in [0, 1].
    pub threshold: f64,
    /// Further thresholds to report the model/fallback split for.
    pub sweep: Vec<f64>,
    /// How the router is trained.
    pub train: TrainOptions,
    /// Keywords per label for the keyword-rules baseline.
    pub keywords_per_label: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            seed: 0x5EED,
            test_fraction: 0.2,
            threshold: 0.6,
            sweep: vec![0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95],
            train: TrainOptions::default(),
            keywords_per_label: 10,
        }
    }
}

/// What happens at one threshold: who routes, and how well.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    /// The confidence from which the model routes.
    pub threshold: f64,
    /// Test tasks the model routed (confidence ≥ threshold).
    pub by_model: usize,
    /// Test tasks left to the fallback.
    pub by_fallback: usize,
    /// `by_model` as a share of the test tasks.
    pub model_share: f64,
    /// `by_fallback` as a share of the test tasks.
    pub fallback_share: f64,
    /// Accuracy of the model on the tasks it routed (`None` if it routed none).
    pub model_accuracy: Option<f64>,
    /// Accuracy of the fallback on the tasks left to it (`None` if none were).
    pub fallback_accuracy: Option<f64>,
    /// Accuracy of "the model when confident, else the fallback" on all test tasks.
    pub combined_accuracy: f64,
    /// Macro-F1 of the same combination.
    pub combined_macro_f1: f64,
}

/// The report of one evaluation; serialisable to JSON, printable with [`Evaluation::to_markdown`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Examples given.
    pub examples: usize,
    /// Examples in the training part.
    pub train: usize,
    /// Examples in the held-out part.
    pub test: usize,
    /// Training examples that were corrections (reassigned tasks, labelled by the final completer).
    pub corrections_in_train: usize,
    /// Held-out examples that were corrections.
    pub corrections_in_test: usize,
    /// Training examples skipped for having no features (see [`Router::train`]).
    pub skipped_in_train: usize,
    /// Held-out examples with no features: the model gives them its prior with confidence 0,
    /// so they always go to the fallback, as they would in the server.
    pub featureless_in_test: usize,
    /// The seed of the split.
    pub seed: u64,
    /// Labels, in the order of every per-label list and of the confusion matrices.
    pub labels: Vec<String>,
    /// Hash buckets the router kept as features.
    pub features: usize,
    /// The router alone.
    pub model: Metrics,
    /// Expected calibration error of the router's confidence (0 is perfect).
    pub calibration_error: f64,
    /// Model-or-fallback at the chosen threshold.
    pub routing: Routing,
    /// Model-or-fallback at each threshold of the sweep.
    pub sweep: Vec<Routing>,
    /// Baseline: every task to the majority label.
    pub majority: Metrics,
    /// Baseline: keyword rules learned from the training part.
    pub keyword_rules: Metrics,
    /// The keywords learned, per label.
    pub keywords: Vec<(String, Vec<String>)>,
}

/// Splits example indices into (train, test), stratified by label and seeded.
pub fn split(examples: &[Example], test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut by_label: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, e) in examples.iter().enumerate() {
        by_label.entry(e.label.as_str()).or_default().push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (_, mut members) in by_label {
        members.shuffle(&mut rng);
        let n = members.len();
        let held = if n < 2 {
            0
        } else {
            ((n as f64 * test_fraction).round() as usize).clamp(1, n - 1)
        };
        test.extend_from_slice(&members[..held]);
        train.extend_from_slice(&members[held..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// Trains on a seeded stratified split and measures the router and both baselines on the
/// held-out part. Times nothing: the caller times it.
pub fn evaluate(examples: &[Example], options: &EvalOptions) -> Result<Evaluation, RoutingError> {
    check(options)?;
    if examples.is_empty() {
        return Err(RoutingError::NoExamples);
    }
    let (train_idx, test_idx) = split(examples, options.test_fraction, options.seed);
    if test_idx.is_empty() {
        return Err(RoutingError::EmptyTestSplit);
    }
    let train: Vec<Example> = train_idx.iter().map(|&i| examples[i].clone()).collect();
    let test: Vec<&Example> = test_idx.iter().map(|&i| &examples[i]).collect();
    let router = Router::train(&train, &options.train)?;
    let labels = router.labels().to_vec();
    let index = |label: &str| labels.binary_search_by(|l| l.as_str().cmp(label)).ok();

    let majority = majority_label(&train).ok_or(RoutingError::NoExamples)?;
    let rules =
        KeywordRules::learn(&train, options.keywords_per_label).ok_or(RoutingError::NoExamples)?;
    let featurizer = router.featurizer();
    let mut truth = Vec::with_capacity(test.len());
    let mut predicted = Vec::with_capacity(test.len());
    let mut confidence = Vec::with_capacity(test.len());
    let mut by_rules = Vec::with_capacity(test.len());
    let mut featureless = 0;
    for e in &test {
        let vector = featurizer.features(&e.sample);
        let mut prediction = router.prediction(&router.probabilities(&vector));
        if vector.is_empty() {
            // The server cannot ask the router about such a task; it always falls back.
            featureless += 1;
            prediction.confidence = 0.0;
        }
        // Every held-out label also occurs in training (the split keeps one of each there).
        truth.push(index(&e.label).unwrap_or(usize::MAX));
        predicted.push(index(&prediction.label).unwrap_or(usize::MAX));
        confidence.push(prediction.confidence);
        by_rules.push(index(rules.classify(&e.sample)).unwrap_or(usize::MAX));
    }
    let majority_index = index(&majority).unwrap_or(usize::MAX);
    let correct: Vec<bool> = truth.iter().zip(&predicted).map(|(t, p)| t == p).collect();
    let at = |threshold: f64| {
        routing(
            &labels,
            threshold,
            &truth,
            &predicted,
            &confidence,
            &by_rules,
        )
    };

    Ok(Evaluation {
        examples: examples.len(),
        train: train.len(),
        test: test.len(),
        corrections_in_train: train.iter().filter(|e| e.corrected).count(),
        corrections_in_test: test.iter().filter(|e| e.corrected).count(),
        skipped_in_train: router.skipped(),
        featureless_in_test: featureless,
        seed: options.seed,
        features: router.feature_count(),
        model: Metrics::score(&labels, &truth, &predicted),
        calibration_error: calibration_error(&confidence, &correct),
        routing: at(options.threshold),
        sweep: options.sweep.iter().map(|&t| at(t)).collect(),
        majority: Metrics::score(&labels, &truth, &vec![majority_index; truth.len()]),
        keyword_rules: Metrics::score(&labels, &truth, &by_rules),
        keywords: rules.keywords,
        labels,
    })
}

fn check(options: &EvalOptions) -> Result<(), RoutingError> {
    if !(options.test_fraction > 0.0 && options.test_fraction < 1.0) {
        return Err(RoutingError::InvalidOption(format!(
            "test_fraction must be between 0 and 1, not {}",
            options.test_fraction
        )));
    }
    for &t in std::iter::once(&options.threshold).chain(&options.sweep) {
        if !(0.0..=1.0).contains(&t) {
            return Err(RoutingError::InvalidOption(format!(
                "thresholds must be from 0 to 1, not {t}"
            )));
        }
    }
    Ok(())
}

fn routing(
    labels: &[String],
    threshold: f64,
    truth: &[usize],
    model: &[usize],
    confidence: &[f64],
    fallback: &[usize],
) -> Routing {
    let n = truth.len();
    let mut combined = Vec::with_capacity(n);
    let (mut by_model, mut model_right, mut fallback_right) = (0usize, 0usize, 0usize);
    for i in 0..n {
        if confidence[i] >= threshold {
            by_model += 1;
            model_right += usize::from(model[i] == truth[i]);
            combined.push(model[i]);
        } else {
            fallback_right += usize::from(fallback[i] == truth[i]);
            combined.push(fallback[i]);
        }
    }
    let by_fallback = n - by_model;
    let share = |k: usize| if n > 0 { k as f64 / n as f64 } else { 0.0 };
    let accuracy = |right: usize, of: usize| (of > 0).then(|| right as f64 / of as f64);
    let metrics = Metrics::score(labels, truth, &combined);
    Routing {
        threshold,
        by_model,
        by_fallback,
        model_share: share(by_model),
        fallback_share: share(by_fallback),
        model_accuracy: accuracy(model_right, by_model),
        fallback_accuracy: accuracy(fallback_right, by_fallback),
        combined_accuracy: metrics.accuracy,
        combined_macro_f1: metrics.macro_f1,
    }
}

impl Evaluation {
    /// A readable report: the comparison, the threshold, the sweep, per-label scores and the
    /// router's confusion matrix (rows: true label, columns: predicted).
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let pct = |x: f64| format!("{:.1}%", 100.0 * x);
        let opt = |x: Option<f64>| x.map_or_else(|| "–".to_owned(), pct);
        let _ = writeln!(out, "# Routing evaluation\n");
        let _ = writeln!(
            out,
            "{} examples, {} labels: trained on {} ({} corrections, {} skipped without \
             features), tested on {} held out ({} without features; seed {}). The router kept \
             {} features.\n",
            self.examples,
            self.labels.len(),
            self.train,
            self.corrections_in_train,
            self.skipped_in_train,
            self.test,
            self.featureless_in_test,
            self.seed,
            self.features
        );
        let _ = writeln!(out, "| classifier | accuracy | macro-F1 |\n|---|---:|---:|");
        for (name, m) in [
            ("learned router", &self.model),
            ("majority label", &self.majority),
            ("keyword rules", &self.keyword_rules),
        ] {
            let _ = writeln!(out, "| {name} | {} | {:.3} |", pct(m.accuracy), m.macro_f1);
        }
        let r = &self.routing;
        let _ = writeln!(
            out,
            "| router ≥ {:.2}, else rules | {} | {:.3} |\n",
            r.threshold,
            pct(r.combined_accuracy),
            r.combined_macro_f1
        );
        let _ = writeln!(
            out,
            "Calibration error of the router's confidence: {:.3}.\n",
            self.calibration_error
        );
        let _ = writeln!(out, "## Threshold\n");
        let _ = writeln!(
            out,
            "| threshold | routed by model | by fallback | model accuracy | fallback accuracy | combined accuracy | combined macro-F1 |\n|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in std::iter::once(&self.routing).chain(&self.sweep) {
            let _ = writeln!(
                out,
                "| {:.2} | {} ({}) | {} ({}) | {} | {} | {} | {:.3} |",
                r.threshold,
                r.by_model,
                pct(r.model_share),
                r.by_fallback,
                pct(r.fallback_share),
                opt(r.model_accuracy),
                opt(r.fallback_accuracy),
                pct(r.combined_accuracy),
                r.combined_macro_f1
            );
        }
        let _ = writeln!(out, "\n## Per label (router)\n");
        let _ = writeln!(
            out,
            "| label | support | precision | recall | F1 | keyword-rules F1 |\n|---|---:|---:|---:|---:|---:|"
        );
        for (s, k) in self
            .model
            .per_label
            .iter()
            .zip(&self.keyword_rules.per_label)
        {
            let _ = writeln!(
                out,
                "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} |",
                cell(&s.label),
                s.support,
                s.precision,
                s.recall,
                s.f1,
                k.f1
            );
        }
        let _ = writeln!(
            out,
            "\n## Confusion matrix (router; rows true, columns predicted)\n"
        );
        let _ = write!(out, "| true \\ predicted |");
        for l in &self.labels {
            let _ = write!(out, " {} |", cell(l));
        }
        let _ = write!(out, "\n|---|");
        for _ in &self.labels {
            let _ = write!(out, "---:|");
        }
        out.push('\n');
        for (l, row) in self.labels.iter().zip(&self.model.confusion) {
            let _ = write!(out, "| {} |", cell(l));
            for n in row {
                let _ = write!(out, " {n} |");
            }
            out.push('\n');
        }
        let _ = writeln!(out, "\n## Keyword rules learned\n");
        for (label, words) in &self.keywords {
            let _ = writeln!(out, "- {}: {}", cell(label), cell(&words.join(", ")));
        }
        out
    }
}

/// A label or word made safe for a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
