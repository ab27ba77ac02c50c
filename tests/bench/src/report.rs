//! Turning samples into the Markdown table printed on stdout: medians across runs of
//! throughput, p50 and p99 latency, the spread of throughput, and ratios to the baseline.

use std::fmt::Write as _;

use crate::load::Sample;

/// One line of the table.
pub struct Row<'a> {
    /// What was measured (Markdown).
    pub label: String,
    /// One sample per run.
    pub samples: &'a [Sample],
    /// The baseline's samples (same runs, same order) and its short name, if compared.
    pub baseline: Option<(&'a [Sample], &'static str)>,
}

/// The median of `values` (mean of the middle two for an even count); 0 when empty.
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

fn rate(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn latency(micros: f64) -> String {
    if micros >= 10_000.0 {
        format!("{:.0} ms", micros / 1000.0)
    } else if micros >= 1000.0 {
        format!("{:.1} ms", micros / 1000.0)
    } else {
        format!("{micros:.0} µs")
    }
}

fn quantile(samples: &[Sample], q: f64) -> f64 {
    median(
        samples
            .iter()
            .map(|s| s.latency.value_at_quantile(q) as f64)
            .collect(),
    )
}

/// The Markdown report: a heading line, the table and a note on how to read it.
pub fn table(heading: &str, rows: &[Row<'_>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{heading}\n");
    let _ = writeln!(
        out,
        "| Measured | Throughput /s (median) | Range over runs /s | p50 latency | p99 latency | Ratio to baseline |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|");
    for row in rows {
        let rates: Vec<f64> = row.samples.iter().map(Sample::rate).collect();
        let low = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let high = rates.iter().copied().fold(0.0, f64::max);
        let ratio = match row.baseline {
            Some((baseline, name)) => {
                let ratios = row
                    .samples
                    .iter()
                    .zip(baseline)
                    .map(|(s, b)| s.rate() / b.rate().max(f64::MIN_POSITIVE))
                    .collect();
                format!("{:.2} × {name}", median(ratios))
            }
            None => "1 (baseline)".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {}–{} | {} | {} | {} |",
            row.label,
            rate(median(rates.clone())),
            rate(low),
            rate(high),
            latency(quantile(row.samples, 0.50)),
            latency(quantile(row.samples, 0.99)),
            ratio
        );
    }
    let _ = write!(
        out,
        "\nThroughput and latency are medians over runs (latency percentiles from one HDR \
         histogram per run); a ratio is the median of the per-run ratios, each pair measured \
         back to back in the same run. Clients are closed-loop and share the process with \
         the server."
    );
    out
}
