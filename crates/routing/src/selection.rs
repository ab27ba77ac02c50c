//! Feature selection: which hash buckets the model keeps as its dense columns.
//!
//! The hashed space is large (2^18 by default) and sparse; the solver needs a dense matrix, and
//! 100,000 rows of 2^18 columns do not fit in memory. So before training, every bucket is scored
//! by how strongly it is tied to some label (the largest chi-squared statistic among the labels
//! it appears with more often than chance), and the best `max_features` become the columns.
//! Buckets seen in fewer than `min_df` training examples rank after all others, so one-off
//! tokens (ticket numbers, typos) only fill columns that nothing better wants.

use crate::features::SparseVector;

/// The buckets to keep, ascending; at most `max_features` of them.
///
/// `labels[i]` is the label index of `vectors[i]`, below `n_labels`.
pub(crate) fn select_features(
    vectors: &[SparseVector],
    labels: &[usize],
    n_labels: usize,
    dims: u32,
    max_features: usize,
    min_df: u32,
) -> Vec<u32> {
    let n = vectors.len() as f64;
    let mut df = vec![0u32; dims as usize];
    for v in vectors {
        for &i in &v.indices {
            df[i as usize] += 1;
        }
    }
    let mut class_size = vec![0u32; n_labels];
    let mut by_label: Vec<Vec<usize>> = vec![Vec::new(); n_labels];
    for (i, &l) in labels.iter().enumerate() {
        class_size[l] += 1;
        by_label[l].push(i);
    }

    // One label at a time, so the per-label counts need one array of `dims`, not `dims × labels`.
    let mut best = vec![0f64; dims as usize];
    let mut in_label = vec![0u32; dims as usize];
    let mut touched = Vec::new();
    for (label, members) in by_label.iter().enumerate() {
        for &i in members {
            for &f in &vectors[i].indices {
                if in_label[f as usize] == 0 {
                    touched.push(f);
                }
                in_label[f as usize] += 1;
            }
        }
        let nc = f64::from(class_size[label]);
        for &f in &touched {
            let a = f64::from(in_label[f as usize]);
            let total = f64::from(df[f as usize]);
            if a * n > total * nc {
                let score = chi_squared(a, total - a, nc - a, n - nc - (total - a));
                let slot = &mut best[f as usize];
                *slot = slot.max(score);
            }
            in_label[f as usize] = 0;
        }
        touched.clear();
    }

    let mut ranked: Vec<u32> = (0..dims).filter(|&f| best[f as usize] > 0.0).collect();
    ranked.sort_by(|&x, &y| {
        let key = |f: u32| (df[f as usize] >= min_df, best[f as usize]);
        let (fx, sx) = key(x);
        let (fy, sy) = key(y);
        fy.cmp(&fx).then(sy.total_cmp(&sx)).then(x.cmp(&y))
    });
    ranked.truncate(max_features);
    ranked.sort_unstable();
    ranked
}

/// Chi-squared statistic of a 2×2 table: `a` examples of the label with the feature, `b` of
/// other labels with it, `c` of the label without it, `d` of other labels without it.
fn chi_squared(a: f64, b: f64, c: f64, d: f64) -> f64 {
    let n = a + b + c + d;
    let denominator = (a + b) * (c + d) * (a + c) * (b + d);
    if denominator <= 0.0 {
        return 0.0;
    }
    n * (a * d - b * c).powi(2) / denominator
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(indices: &[u32]) -> SparseVector {
        SparseVector {
            indices: indices.to_vec(),
            values: vec![1.0; indices.len()],
        }
    }

    #[test]
    fn keeps_the_buckets_tied_to_a_label_and_drops_the_shared_ones() {
        // Bucket 1 is everywhere, 2 marks label 0, 3 marks label 1, 4 is a one-off.
        let vectors = [
            vector(&[1, 2]),
            vector(&[1, 2]),
            vector(&[1, 3, 4]),
            vector(&[1, 3]),
        ];
        let selected = select_features(&vectors, &[0, 0, 1, 1], 2, 16, 2, 2);
        assert_eq!(selected, [2, 3]);
        let with_room = select_features(&vectors, &[0, 0, 1, 1], 2, 16, 10, 2);
        assert_eq!(with_room, [2, 3, 4], "one-offs only fill spare columns");
    }
}
