//! The two baselines the router is measured against: always the majority label, and keyword
//! rules learned from the training part (which also play the process's rules as the fallback
//! when the router is not confident enough).
//!
//! Keyword rules are what an administrator would write: for each label, its most telling words
//! (the words of the text, plus `key=value` for string and boolean variables). A word's score
//! for a label is precision × support — of the training tasks containing it, the share with the
//! label, times how many such tasks had the label — among words that point to the label at
//! least half the time and more often than the label's share of all tasks (so `the` or
//! `please` never become a rule). A task goes to the label with the most keyword
//! hits; ties go to the tied label with the most training tasks, and no hit to the majority.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::features::{words, Sample};
use crate::model::Example;

/// A keyword must point to its label at least this often among the tasks containing it.
const MIN_PRECISION: f64 = 0.5;

/// The label most training tasks had (ties: the first in label order).
pub fn majority_label(examples: &[Example]) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for e in examples {
        *counts.entry(e.label.as_str()).or_default() += 1;
    }
    let mut best: Option<(&str, usize)> = None;
    for (label, count) in counts {
        if best.is_none_or(|(_, c)| count > c) {
            best = Some((label, count));
        }
    }
    best.map(|(label, _)| label.to_owned())
}

/// Keyword rules learned from labelled tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeywordRules {
    /// Each label with its keywords, best first; labels sorted.
    pub keywords: Vec<(String, Vec<String>)>,
    /// How many training tasks each label had (same order), for breaking ties.
    pub sizes: Vec<usize>,
    /// Where a task with no keyword hit goes.
    pub majority: String,
}

impl KeywordRules {
    /// Learns up to `per_label` keywords for every label. `None` if there are no examples.
    pub fn learn(examples: &[Example], per_label: usize) -> Option<KeywordRules> {
        let majority = majority_label(examples)?;
        let mut sizes: BTreeMap<&str, usize> = BTreeMap::new();
        // word → label → number of training tasks with the label containing the word
        let mut df: BTreeMap<String, BTreeMap<&str, usize>> = BTreeMap::new();
        for e in examples {
            *sizes.entry(e.label.as_str()).or_default() += 1;
            for word in keyword_tokens(&e.sample) {
                *df.entry(word)
                    .or_default()
                    .entry(e.label.as_str())
                    .or_default() += 1;
            }
        }
        let total = examples.len() as f64;
        let mut scored: BTreeMap<&str, Vec<(f64, &str)>> = BTreeMap::new();
        for (word, by_label) in &df {
            let containing: usize = by_label.values().sum();
            for (&label, &hits) in by_label {
                let precision = hits as f64 / containing as f64;
                let prior = sizes.get(label).copied().unwrap_or(0) as f64 / total;
                if precision >= MIN_PRECISION && precision > prior {
                    scored
                        .entry(label)
                        .or_default()
                        .push((precision * hits as f64, word.as_str()));
                }
            }
        }
        let keywords = sizes
            .keys()
            .map(|&label| {
                let mut candidates = scored.remove(label).unwrap_or_default();
                candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
                let words = candidates
                    .into_iter()
                    .take(per_label)
                    .map(|(_, w)| w.to_owned())
                    .collect();
                (label.to_owned(), words)
            })
            .collect();
        Some(KeywordRules {
            keywords,
            sizes: sizes.values().copied().collect(),
            majority,
        })
    }

    /// The label the rules give a sample.
    pub fn classify(&self, sample: &Sample) -> &str {
        let present = keyword_tokens(sample);
        let mut best: Option<(usize, usize, &str)> = None;
        for ((label, keywords), &size) in self.keywords.iter().zip(&self.sizes) {
            let hits = keywords.iter().filter(|k| present.contains(*k)).count();
            if hits > 0 && best.is_none_or(|(h, s, _)| (hits, size) > (h, s)) {
                best = Some((hits, size, label));
            }
        }
        best.map_or(self.majority.as_str(), |(_, _, label)| label)
    }
}

/// The distinct words a rule can test: the text's words and `key=value` for string and
/// boolean variables.
fn keyword_tokens(sample: &Sample) -> BTreeSet<String> {
    let mut tokens: BTreeSet<String> = words(&sample.text).into_iter().collect();
    for (key, value) in &sample.variables {
        let value = match value {
            Value::String(s) => s.trim().to_lowercase(),
            Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        tokens.insert(format!("{}={value}", key.to_lowercase()));
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_telling_words_and_falls_back_to_the_majority() {
        let rows = [
            ("refund the invoice", "billing"),
            ("invoice is wrong", "billing"),
            ("app crashes", "support"),
            ("app is slow", "support"),
            ("app error again", "support"),
        ];
        let examples: Vec<Example> = rows
            .iter()
            .map(|(t, l)| Example::new(Sample::new(*t), *l))
            .collect();
        let rules = KeywordRules::learn(&examples, 2).expect("examples");
        assert_eq!(rules.majority, "support");
        assert_eq!(rules.keywords[0].1[0], "invoice");
        assert_eq!(rules.keywords[1].1[0], "app");
        assert_eq!(rules.classify(&Sample::new("my invoice")), "billing");
        assert_eq!(rules.classify(&Sample::new("hello")), "support");
    }
}
