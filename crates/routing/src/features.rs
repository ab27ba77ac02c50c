//! Text features: a request's text and variables turned into a sparse hashed vector.
//!
//! Tokens come in four kinds, each tagged so that equal strings of different kinds do not
//! share a feature: `w:` word unigrams, `b:` word bigrams, `c:` character n-grams (2 to 4
//! characters, over each word padded with a space at both ends, so that Korean, Japanese and
//! Chinese written without spaces still give features), and `v:` variables (`key=value` for
//! strings and booleans, `key~1e3` for numbers bucketed by order of magnitude). Words are
//! Unicode-lowercased runs of letters and digits, cut where the script changes between Hangul,
//! CJK (Han and kana) and everything else, so `API오류` gives `api` and `오류`.
//!
//! Each token is hashed with 64-bit FNV-1a (fixed constants, no per-process seed) and folded
//! into `dims` buckets, so the same text gives the same vector in every process and version.
//! Counts become `1 + ln(count)` (sublinear term frequency) and the vector is L2-normalised.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::RoutingError;

/// Hash space used unless a caller picks another: 2^18 buckets keeps collisions rare among the
/// tens of thousands of distinct tokens a ticket history has; the model only keeps the most
/// informative of them (see `TrainOptions::max_features`).
pub const DEFAULT_DIMS: u32 = 1 << 18;

/// Words longer than this (URLs, hashes, a long CJK sentence) give n-grams of their first
/// `MAX_NGRAM_WORD` characters only, bounding the work per word.
const MAX_NGRAM_WORD: usize = 64;

/// String variable values up to this many characters also give one whole-value token.
const MAX_WHOLE_VALUE: usize = 64;

/// Nesting depth of object-valued variables that is still turned into tokens.
const MAX_VARIABLE_DEPTH: usize = 3;

/// What is known about a task when it is routed: its text and its process variables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The request's text (title and description, as the caller joins them).
    pub text: String,
    /// The task's variables; strings, booleans and numbers become features.
    #[serde(default)]
    pub variables: Map<String, Value>,
}

impl Sample {
    /// A sample with text and no variables.
    pub fn new(text: impl Into<String>) -> Self {
        Sample {
            text: text.into(),
            variables: Map::new(),
        }
    }

    /// The same sample with these variables.
    pub fn with_variables(mut self, variables: Map<String, Value>) -> Self {
        self.variables = variables;
        self
    }
}

/// A sparse feature vector: sorted distinct indices and their weights.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseVector {
    /// Bucket indices, strictly increasing, each below the featurizer's `dims`.
    pub indices: Vec<u32>,
    /// One weight per index.
    pub values: Vec<f64>,
}

impl SparseVector {
    /// Number of non-zero entries.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the vector has no entries (the sample gave no tokens).
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Pairs of (index, weight).
    pub fn iter(&self) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.indices
            .iter()
            .copied()
            .zip(self.values.iter().copied())
    }
}

/// Turns samples into hashed feature vectors of a fixed dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Featurizer {
    dims: u32,
}

impl Default for Featurizer {
    fn default() -> Self {
        Featurizer { dims: DEFAULT_DIMS }
    }
}

impl Featurizer {
    /// A featurizer hashing into `dims` buckets, a power of two from 2^4 to 2^24.
    pub fn new(dims: u32) -> Result<Self, RoutingError> {
        if !dims.is_power_of_two() || !(1 << 4..=1 << 24).contains(&dims) {
            return Err(RoutingError::InvalidOption(format!(
                "feature dims must be a power of two from 16 to 2^24, not {dims}"
            )));
        }
        Ok(Featurizer { dims })
    }

    /// The number of hash buckets.
    pub fn dims(&self) -> u32 {
        self.dims
    }

    /// The bucket of one tagged token (`w:refund`, `c:환불`, `v:plan=pro`, …).
    pub fn index(&self, token: &str) -> u32 {
        let h = fnv1a(token.as_bytes());
        ((h ^ (h >> 32)) as u32) & (self.dims - 1)
    }

    /// The tagged tokens of a sample, in the order they are produced (for explaining a vector).
    pub fn tokens(&self, sample: &Sample) -> Vec<String> {
        let mut out = Vec::new();
        visit_tokens(sample, &mut |t| out.push(t.to_owned()));
        out
    }

    /// The sample's feature vector: hashed token counts, sublinear and L2-normalised.
    pub fn features(&self, sample: &Sample) -> SparseVector {
        let mut buckets: Vec<u32> = Vec::new();
        visit_tokens(sample, &mut |t| buckets.push(self.index(t)));
        buckets.sort_unstable();
        let mut indices = Vec::new();
        let mut values = Vec::new();
        let mut i = 0;
        while i < buckets.len() {
            let mut j = i;
            while j < buckets.len() && buckets[j] == buckets[i] {
                j += 1;
            }
            indices.push(buckets[i]);
            values.push(1.0 + ((j - i) as f64).ln());
            i = j;
        }
        let norm = values.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            values.iter_mut().for_each(|v| *v /= norm);
        }
        SparseVector { indices, values }
    }
}

/// Lowercased words of a text: runs of letters and digits, cut where the script changes
/// between Hangul, CJK and other; digit-only runs longer than four become a length shape
/// (`#7`), so order and ticket numbers do not each become a feature.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut script = Script::Other;
    for c in text.chars() {
        if !c.is_alphanumeric() {
            push_word(&mut out, &mut current);
            continue;
        }
        let s = Script::of(c);
        if !current.is_empty() && s != script {
            push_word(&mut out, &mut current);
        }
        script = s;
        current.extend(c.to_lowercase());
    }
    push_word(&mut out, &mut current);
    out
}

fn push_word(out: &mut Vec<String>, current: &mut String) {
    if current.is_empty() {
        return;
    }
    let digits = current.chars().count();
    if digits > 4 && current.chars().all(|c| c.is_ascii_digit()) {
        out.push(format!("#{digits}"));
        current.clear();
    } else {
        out.push(std::mem::take(current));
    }
}

/// Script classes at whose boundaries a run of letters is cut into words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Hangul,
    Cjk,
    Other,
}

impl Script {
    fn of(c: char) -> Script {
        match c as u32 {
            0x1100..=0x11FF | 0x3130..=0x318F | 0xA960..=0xA97F | 0xAC00..=0xD7AF
            | 0xD7B0..=0xD7FF => Script::Hangul,
            0x3040..=0x30FF       // hiragana, katakana
            | 0x31F0..=0x31FF     // katakana extensions
            | 0x3400..=0x4DBF     // CJK extension A
            | 0x4E00..=0x9FFF     // CJK unified ideographs
            | 0xF900..=0xFAFF     // compatibility ideographs
            | 0xFF66..=0xFF9F     // half-width katakana
            | 0x20000..=0x3134F => Script::Cjk,
            _ => Script::Other,
        }
    }
}

/// Calls `emit` once per tagged token of the sample, reusing one buffer.
fn visit_tokens(sample: &Sample, emit: &mut dyn FnMut(&str)) {
    let mut buf = String::new();
    let words = words(&sample.text);
    for (i, word) in words.iter().enumerate() {
        token(&mut buf, emit, &["w:", word]);
        if let Some(next) = words.get(i + 1) {
            token(&mut buf, emit, &["b:", word, " ", next]);
        }
        char_ngrams(&mut buf, emit, word);
    }
    for (key, value) in &sample.variables {
        variable_tokens(&mut buf, emit, key, value, 0);
    }
}

fn token(buf: &mut String, emit: &mut dyn FnMut(&str), parts: &[&str]) {
    buf.clear();
    parts.iter().for_each(|p| buf.push_str(p));
    emit(buf);
}

fn char_ngrams(buf: &mut String, emit: &mut dyn FnMut(&str), word: &str) {
    let mut chars: Vec<char> = Vec::with_capacity(MAX_NGRAM_WORD + 2);
    chars.push(' ');
    chars.extend(word.chars().take(MAX_NGRAM_WORD));
    chars.push(' ');
    for n in 2..=4 {
        for gram in chars.windows(n) {
            buf.clear();
            buf.push_str("c:");
            buf.extend(gram.iter());
            emit(buf);
        }
    }
}

fn variable_tokens(
    buf: &mut String,
    emit: &mut dyn FnMut(&str),
    key: &str,
    value: &Value,
    depth: usize,
) {
    let key = key.trim().to_lowercase();
    match value {
        Value::Null => token(buf, emit, &["v:", &key, "=null"]),
        Value::Bool(b) => token(
            buf,
            emit,
            &["v:", &key, if *b { "=true" } else { "=false" }],
        ),
        Value::Number(n) => {
            let bucket = n.as_f64().map(magnitude).unwrap_or_else(|| "nan".into());
            token(buf, emit, &["v:", &key, "~", &bucket]);
        }
        Value::String(s) => {
            let value = s.trim().to_lowercase();
            if value.chars().count() <= MAX_WHOLE_VALUE {
                token(buf, emit, &["v:", &key, "=", &value]);
            }
            let parts = words(&value);
            if parts.len() > 1 {
                for part in &parts {
                    token(buf, emit, &["v:", &key, ":", part]);
                }
            }
        }
        Value::Array(items) => {
            if depth < MAX_VARIABLE_DEPTH {
                for item in items {
                    variable_tokens(buf, emit, &key, item, depth + 1);
                }
            }
        }
        Value::Object(map) => {
            if depth < MAX_VARIABLE_DEPTH {
                for (sub, item) in map {
                    variable_tokens(buf, emit, &format!("{key}.{sub}"), item, depth + 1);
                }
            }
        }
    }
}

/// Order-of-magnitude bucket of a number: `0`, `1e2` for 100..999, `-1e0` for -1..-9, `1e-2`.
fn magnitude(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return if x == 0.0 { "0".into() } else { "inf".into() };
    }
    let exponent = x.abs().log10().floor() as i32;
    let sign = if x < 0.0 { "-" } else { "" };
    format!("{sign}1e{exponent}")
}

/// 64-bit FNV-1a: fixed constants, so a token's bucket never changes between processes.
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn words_cut_at_script_changes_and_shape_long_numbers() {
        assert_eq!(
            words("API오류, 請求書が届きません! Order 1234567 x2"),
            ["api", "오류", "請求書が届きません", "order", "#7", "x2"]
        );
    }

    #[test]
    fn numbers_are_bucketed_by_magnitude() {
        assert_eq!(magnitude(0.0), "0");
        assert_eq!(magnitude(250.0), "1e2");
        assert_eq!(magnitude(-3.0), "-1e0");
        assert_eq!(magnitude(0.05), "1e-2");
    }
}
