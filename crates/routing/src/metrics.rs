//! Classification metrics: accuracy, per-label precision/recall/F1, macro-F1, the confusion
//! matrix, and how well confidences match accuracy.

use serde::{Deserialize, Serialize};

/// Precision, recall and F1 of one label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelScore {
    /// The label.
    pub label: String,
    /// Of the tasks given this label, the share that had it.
    pub precision: f64,
    /// Of the tasks that had this label, the share given it.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// How many test tasks had this label.
    pub support: usize,
}

/// How one classifier did on the held-out tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Share of tasks given their true label.
    pub accuracy: f64,
    /// Mean F1 over the labels that occur in the truth or the predictions.
    pub macro_f1: f64,
    /// One score per label, in label order.
    pub per_label: Vec<LabelScore>,
    /// `confusion[t][p]`: tasks whose true label is `t` that were given `p` (label order).
    pub confusion: Vec<Vec<usize>>,
}

impl Metrics {
    /// Scores predictions against the truth; both are indices into `labels`.
    pub fn score(labels: &[String], truth: &[usize], predicted: &[usize]) -> Metrics {
        let k = labels.len();
        let mut confusion = vec![vec![0usize; k]; k];
        for (&t, &p) in truth.iter().zip(predicted) {
            if t < k && p < k {
                confusion[t][p] += 1;
            }
        }
        let total = truth.len().min(predicted.len());
        let correct: usize = (0..k).map(|i| confusion[i][i]).sum();
        let mut per_label = Vec::with_capacity(k);
        let mut f1_sum = 0.0;
        let mut f1_count = 0usize;
        for (i, label) in labels.iter().enumerate() {
            let support: usize = confusion[i].iter().sum();
            let given: usize = confusion.iter().map(|row| row[i]).sum();
            let hit = confusion[i][i] as f64;
            let precision = ratio(hit, given as f64);
            let recall = ratio(hit, support as f64);
            let f1 = ratio(2.0 * precision * recall, precision + recall);
            if support > 0 || given > 0 {
                f1_sum += f1;
                f1_count += 1;
            }
            per_label.push(LabelScore {
                label: label.clone(),
                precision,
                recall,
                f1,
                support,
            });
        }
        Metrics {
            accuracy: ratio(correct as f64, total as f64),
            macro_f1: ratio(f1_sum, f1_count as f64),
            per_label,
            confusion,
        }
    }
}

/// Expected calibration error over ten equal-width confidence bins: the mean gap between
/// confidence and accuracy, weighted by how many predictions fall in each bin. 0 is perfect.
pub fn calibration_error(confidences: &[f64], correct: &[bool]) -> f64 {
    const BINS: usize = 10;
    let mut count = [0usize; BINS];
    let mut confidence_sum = [0f64; BINS];
    let mut correct_sum = [0f64; BINS];
    for (&c, &ok) in confidences.iter().zip(correct) {
        let bin = ((c * BINS as f64) as usize).min(BINS - 1);
        count[bin] += 1;
        confidence_sum[bin] += c;
        correct_sum[bin] += if ok { 1.0 } else { 0.0 };
    }
    let total: usize = count.iter().sum();
    (0..BINS)
        .filter(|&b| count[b] > 0)
        .map(|b| (confidence_sum[b] - correct_sum[b]).abs() / total as f64)
        .sum()
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_a_small_confusion() {
        let labels = ["a".to_string(), "b".to_string(), "c".to_string()];
        // truth a a b b, predicted a b b b; c never occurs and does not count in macro-F1.
        let m = Metrics::score(&labels, &[0, 0, 1, 1], &[0, 1, 1, 1]);
        assert_eq!(
            m.confusion,
            vec![vec![1, 1, 0], vec![0, 2, 0], vec![0, 0, 0]]
        );
        assert!((m.accuracy - 0.75).abs() < 1e-12);
        let f1_a = 2.0 * 1.0 * 0.5 / 1.5;
        let f1_b = 2.0 * (2.0 / 3.0) * 1.0 / (2.0 / 3.0 + 1.0);
        assert!((m.macro_f1 - (f1_a + f1_b) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn calibration_error_is_zero_when_confidence_matches_accuracy() {
        let e = calibration_error(&[0.75; 4], &[true, true, true, false]);
        assert!(e.abs() < 1e-12);
        let over = calibration_error(&[0.95; 2], &[false, false]);
        assert!((over - 0.95).abs() < 1e-12);
    }
}
