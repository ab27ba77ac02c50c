//! The learned router on generated ticket histories: how long training takes, and how well it
//! routes held-out tasks against the two baselines of the same split (the majority class and
//! keyword rules learned from the same training part), at each history size.
//!
//! Each run generates the history with its own seed, splits it 80/20 per label, trains the
//! router and the keyword rules on the 80 and scores all three on the 20. Training time is the
//! router's `Router::train` on the training part alone; the keyword rules' learning time on the
//! same part is the baseline it is compared with.

use std::fmt::Write as _;
use std::time::Instant;

use concord_routing::baseline::KeywordRules;
use concord_routing::{eval, examples_from_history, generate, EvalOptions, Example, Router};

/// Which sizes and how often.
#[derive(clap::Args, Clone, Debug)]
pub struct RoutingOptions {
    /// History sizes (past tasks), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    pub tasks: Vec<usize>,
    /// Runs per size (each with another seed); medians are taken across them.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub runs: u32,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

#[derive(Default)]
struct Runs {
    train_s: Vec<f64>,
    keywords_s: Vec<f64>,
    router: Vec<(f64, f64)>,
    keyword: Vec<(f64, f64)>,
    majority: Vec<(f64, f64)>,
    routed_share: Vec<f64>,
}

fn pick(examples: &[Example], idx: &[usize]) -> Vec<Example> {
    idx.iter()
        .filter_map(|&i| examples.get(i).cloned())
        .collect()
}

/// Runs the benchmark; returns the Markdown table.
pub fn run(options: RoutingOptions) -> anyhow::Result<String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Learned router on generated ticket histories (8 teams, Korean and Japanese tickets, ~10% reassigned), 80/20 split per label\n"
    );
    let _ = writeln!(
        out,
        "| Past tasks | Training (median) | Keyword rules' learning | Router accuracy / macro-F1 | Keyword rules | Majority | Routed by the model at 0.6 | Router ÷ keyword rules (macro-F1) |"
    );
    let _ = writeln!(out, "|--:|--:|--:|--:|--:|--:|--:|--:|");
    let defaults = EvalOptions::default();
    for &n in &options.tasks {
        let mut r = Runs::default();
        for run in 0..options.runs {
            let seed = 42 + u64::from(run);
            eprintln!("[routing] {n} tasks, run {}/{}", run + 1, options.runs);
            let examples = examples_from_history(&generate(n, seed));
            let (train_idx, _) = eval::split(&examples, defaults.test_fraction, seed);
            let train = pick(&examples, &train_idx);
            let started = Instant::now();
            let router = Router::train(&train, &defaults.train)
                .map_err(|e| anyhow::anyhow!("training: {e}"))?;
            r.train_s.push(started.elapsed().as_secs_f64());
            std::hint::black_box(&router);
            let started = Instant::now();
            let rules = KeywordRules::learn(&train, defaults.keywords_per_label)
                .ok_or_else(|| anyhow::anyhow!("no keyword rules"))?;
            r.keywords_s.push(started.elapsed().as_secs_f64());
            std::hint::black_box(&rules);
            // The scores, on the same split (`evaluate` trains again on the same part).
            let e = concord_routing::evaluate(
                &examples,
                &EvalOptions {
                    seed,
                    ..defaults.clone()
                },
            )
            .map_err(|e| anyhow::anyhow!("evaluation: {e}"))?;
            r.router.push((e.model.accuracy, e.model.macro_f1));
            r.keyword
                .push((e.keyword_rules.accuracy, e.keyword_rules.macro_f1));
            r.majority.push((e.majority.accuracy, e.majority.macro_f1));
            r.routed_share.push(e.routing.model_share);
        }
        let pair = |v: &[(f64, f64)]| {
            format!(
                "{:.1}% / {:.3}",
                100.0 * median(v.iter().map(|p| p.0).collect()),
                median(v.iter().map(|p| p.1).collect())
            )
        };
        let ratio = median(
            r.router
                .iter()
                .zip(&r.keyword)
                .map(|(m, k)| m.1 / k.1.max(f64::MIN_POSITIVE))
                .collect(),
        );
        let _ = writeln!(
            out,
            "| {n} | {:.1} s | {:.2} s | {} | {} | {} | {:.1}% | {ratio:.2} × |",
            median(r.train_s.clone()),
            median(r.keywords_s.clone()),
            pair(&r.router),
            pair(&r.keyword),
            pair(&r.majority),
            100.0 * median(r.routed_share.clone()),
        );
    }
    let _ = write!(
        out,
        "\nMedians over {} runs per size (seeds 42, 43, …), one process on a shared 2-core machine.",
        options.runs
    );
    Ok(out)
}
