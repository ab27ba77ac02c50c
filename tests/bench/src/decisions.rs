//! Decisions per second of a 50-rule decision table, against the same 50 rules written as a
//! Rust function over the same JSON variables (the cost of keeping rules as data: CEL input
//! expressions, unary tests, the explanation of every decision).
//!
//! The table has three inputs (`amount`, a number; `region` and `tier`, text), two outputs and
//! 50 rules: amount bands in ranges and comparisons, region lists, tier tests with `not(…)`,
//! and a catch-all last rule. Each decision takes the next of 1,000 generated variable sets, so
//! different rules match from one decision to the next. `first` stops being cheaper than
//! `collect` only in the result: both test every rule, since every matching rule is explained.

use std::time::{Duration, Instant};

use concord_workflow::decision::{self, CompiledTable, DecisionFormat};
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use crate::load::Sample;
use crate::report::{self, Row};

/// How long and how often to measure.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct DecisionOptions {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
    /// Runs of every measurement; medians are taken across them.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,
}

const REGIONS: [&str; 5] = ["emea", "amer", "apac", "latam", "mena"];
const TIERS: [&str; 4] = ["gold", "silver", "bronze", "trial"];

/// One rule: an amount band, the regions it covers (empty: any), a tier it excludes (if any),
/// and what it decides.
struct RuleSpec {
    low: f64,
    high: f64,
    regions: Vec<&'static str>,
    not_tier: Option<&'static str>,
    queue: String,
    limit: i64,
}

fn rules() -> Vec<RuleSpec> {
    (0..49)
        .map(|n| RuleSpec {
            low: (n * 200) as f64,
            high: ((n + 3) * 200) as f64,
            regions: if n % 3 == 0 {
                Vec::new()
            } else {
                vec![REGIONS[n % 5], REGIONS[(n + 2) % 5]]
            },
            not_tier: (n % 4 == 1).then_some(TIERS[n % 4]),
            queue: format!("queue_{n}"),
            limit: (n as i64 + 1) * 50,
        })
        .collect()
}

/// The table in the YAML form.
fn table_source(hit_policy: &str) -> String {
    let mut out = format!(
        "decision: bench\nhit_policy: {hit_policy}\ninputs:\n  - {{ label: Amount, expression: amount }}\n  - {{ label: Region, expression: customer.region }}\n  - {{ label: Tier, expression: customer.tier }}\noutputs: [queue, limit]\nrules:\n"
    );
    for r in rules() {
        let regions = if r.regions.is_empty() {
            "-".to_owned()
        } else {
            r.regions
                .iter()
                .map(|g| format!("\"{g}\""))
                .collect::<Vec<_>>()
                .join(",")
        };
        let tier = match r.not_tier {
            Some(t) => format!("not(\"{t}\")"),
            None => "-".into(),
        };
        out.push_str(&format!(
            "  - ['[{}..{})', '{regions}', '{tier}', '\"{}\"', '{}']\n",
            r.low, r.high, r.queue, r.limit
        ));
    }
    out.push_str("  - ['-', '-', '-', '\"default\"', '0']\n");
    out
}

/// The same rules, as code: the first match's outputs.
fn native(rules: &[RuleSpec], vars: &Map<String, Value>) -> Value {
    let amount = vars.get("amount").and_then(Value::as_f64);
    let customer = vars.get("customer");
    let region = customer
        .and_then(|c| c.get("region"))
        .and_then(Value::as_str);
    let tier = customer.and_then(|c| c.get("tier")).and_then(Value::as_str);
    for r in rules {
        let in_band = amount.is_some_and(|a| a >= r.low && a < r.high);
        let in_region = r.regions.is_empty() || region.is_some_and(|g| r.regions.contains(&g));
        let tier_ok = r.not_tier.is_none_or(|t| tier != Some(t));
        if in_band && in_region && tier_ok {
            return json!({"queue": r.queue, "limit": r.limit});
        }
    }
    json!({"queue": "default", "limit": 0})
}

fn inputs() -> Vec<Map<String, Value>> {
    // A fixed linear congruential sequence: the same inputs in every run.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..1000)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let amount = (x >> 33) % 11_000;
            let region = REGIONS[((x >> 20) % 5) as usize];
            let tier = TIERS[((x >> 12) % 4) as usize];
            json!({"amount": amount, "customer": {"region": region, "tier": tier}, "note": "x"})
                .as_object()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

fn measure(seconds: u64, mut decide: impl FnMut(&Map<String, Value>)) -> anyhow::Result<Sample> {
    let inputs = inputs();
    let mut latency = Histogram::<u64>::new(3)?;
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut count = 0u64;
    while Instant::now() < until {
        for vars in &inputs {
            let t = Instant::now();
            decide(vars);
            latency.record(t.elapsed().as_micros() as u64)?;
        }
        count += inputs.len() as u64;
    }
    Ok(Sample {
        count,
        elapsed: started.elapsed(),
        latency,
    })
}

fn compile(hit_policy: &str) -> anyhow::Result<CompiledTable> {
    let tables = decision::parse(&table_source(hit_policy), DecisionFormat::Yaml)
        .map_err(|p| anyhow::anyhow!("{p}"))?;
    let table = tables.first().ok_or_else(|| anyhow::anyhow!("no table"))?;
    table.compile().map_err(|p| anyhow::anyhow!("{p}"))
}

/// Runs the benchmark; returns the Markdown table.
pub fn run(options: DecisionOptions) -> anyhow::Result<String> {
    let spec = rules();
    let first = compile("first")?;
    let collect = compile("collect")?;
    // The table and the code agree on every input before anything is timed.
    for vars in inputs() {
        let by_table = first.evaluate(&vars).map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(
            by_table.result == native(&spec, &vars),
            "the table and the code disagree on {vars:?}"
        );
    }
    let (mut native_s, mut first_s, mut collect_s) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..options.runs {
        eprintln!("[decisions] run {}/{}", run + 1, options.runs);
        native_s.push(measure(options.seconds, |v| {
            std::hint::black_box(native(&spec, v));
        })?);
        first_s.push(measure(options.seconds, |v| {
            let _ = std::hint::black_box(first.evaluate(v));
        })?);
        collect_s.push(measure(options.seconds, |v| {
            let _ = std::hint::black_box(collect.evaluate(v));
        })?);
    }
    Ok(report::table(
        "Decisions of a 50-rule table (3 inputs, 2 outputs), one thread",
        &[
            Row {
                label: "the rules as a Rust function".into(),
                samples: &native_s,
                baseline: None,
            },
            Row {
                label: "table, hit policy `first`".into(),
                samples: &first_s,
                baseline: Some((&native_s, "Rust")),
            },
            Row {
                label: "table, hit policy `collect`".into(),
                samples: &collect_s,
                baseline: Some((&native_s, "Rust")),
            },
        ],
    ))
}
