//! A process's dashboard at scale: how long `GET …/workflows/{process}/dashboard` takes over
//! a history of `--instances` completed instances (and `--running` still in their first
//! step), against the instance list of the same process (its first page, 50 instances) in
//! the same run.
//!
//! One Concord in-process (default config, a fresh SQLite database, or PostgreSQL with
//! `--database-url`), one workspace, one deployed three-step process (`triage`, a user task
//! from a queue; `score`, a service task; `decide`, a user task). The history is loaded
//! through the store with the functions the write path adds facts with
//! (`concord::bench_support::load_process_history`): instance rows, three facts each, and
//! their hourly and daily counts and duration histograms, completions spread evenly over
//! the last `--days` days with log-normal step durations. Then one client calls each
//! endpoint `--calls` times in turn, one request at a time, per run; p50 and p99 are taken
//! per run and their medians over `--runs` runs reported, with the median of the per-run
//! ratios to the baseline.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::server::Server;
use crate::team;

/// Sizes and repetitions.
#[derive(clap::Args, Clone, Debug)]
pub struct DashboardOptions {
    /// Completed instances in the history.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=2_000_000))]
    pub instances: u32,
    /// Instances still running (in their first step).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub running: u32,
    /// Days the completions are spread over.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(i64).range(1..=400))]
    pub days: i64,
    /// Calls of each endpoint per run.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(10..=100_000))]
    pub calls: u32,
    /// Runs; medians are taken across them.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub runs: u32,
    /// PostgreSQL instead of the embedded SQLite.
    #[arg(long)]
    pub database_url: Option<String>,
}

const MODEL: &str = "process: claims
name: Insurance claim
steps:
  - start: filed
  - user_task: triage
    name: Triage
    role: member
    routing: {strategy: queue}
    due: PT4H
  - service_task: score
    name: Score
    method: POST
    url: https://scoring.example/claims
  - user_task: decide
    name: Decide
    role: member
    due: P1D
  - end: done
";

pub async fn run(options: DashboardOptions) -> anyhow::Result<String> {
    let url = options.database_url.clone();
    let server = Server::start_with(move |config| {
        if let Some(url) = url {
            config.database.url = Some(url.into());
        }
    })
    .await?;
    let outcome = benchmark(&server, &options).await;
    let stopped = server.stop().await;
    let report = outcome?;
    stopped?;
    Ok(report)
}

async fn get(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Value> {
    let response = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| url.to_owned())?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    if status != 200 {
        bail!(
            "{url} answered {status}: {}",
            text.get(..text.len().min(300)).unwrap_or("")
        );
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// One endpoint's latencies over one run, in microseconds.
fn measure_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 60_000_000, 3).context("histogram")
}

async fn benchmark(server: &Server, options: &DashboardOptions) -> anyhow::Result<String> {
    let team = team::setup(&server.base, &server.setup_token, 1).await?;
    let http = team::client()?;
    let ws = team.workspace_id.clone();
    let deployed = team::call(
        &http,
        &server.base,
        &format!("/api/v1/workspaces/{ws}/workflows"),
        Some(&team.admin),
        json!({ "source": MODEL }),
        201,
    )
    .await?;
    let workspace: concord::domain::WorkspaceId = ws.parse()?;

    eprintln!(
        "loading {} completed and {} running instances",
        options.instances, options.running
    );
    let loading = Instant::now();
    let facts = concord::bench_support::load_process_history(
        &server.store,
        workspace,
        "claims",
        serde_json::from_value(deployed["id"].clone()).context("a deployment id")?,
        concord::bench_support::ProcessHistory {
            completed: options.instances as usize,
            running: options.running as usize,
            days: options.days,
            seed: 23,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("loading the history: {e}"))?;
    let load_time = loading.elapsed();
    eprintln!("loaded {facts} facts in {load_time:.1?}");

    let base = format!("{}/api/v1/workspaces/{ws}", server.base);
    let endpoints: Vec<(String, String)> = vec![
        (
            "instance list, first page of 50 (baseline)".into(),
            format!("{base}/workflow-instances?process_id=claims&limit=50"),
        ),
        (
            "dashboard, last 7 days by the hour (the default)".into(),
            format!("{base}/workflows/claims/dashboard"),
        ),
        (
            "dashboard, last 7 days by the day".into(),
            format!("{base}/workflows/claims/dashboard?bucket=day"),
        ),
    ];

    // What the dashboard answers, to check the load and to show in the report.
    let dash = get(&http, &endpoints[1].1, &team.admin).await?;
    let totals = dash["totals"].clone();
    if totals["completed"].as_u64() != Some(u64::from(options.instances)) && options.days <= 7 {
        bail!("the dashboard does not count the loaded instances: {totals}");
    }
    let triage = dash["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["element"] == "triage"))
        .cloned()
        .unwrap_or(Value::Null);

    // Warm-up: caches, prepared statements, connections.
    for (_, url) in &endpoints {
        for _ in 0..20 {
            get(&http, url, &team.admin).await?;
        }
    }
    // p50 and p99 (µs) per endpoint per run.
    let mut figures: Vec<Vec<(f64, f64)>> = vec![Vec::new(); endpoints.len()];
    for run in 0..options.runs {
        for (i, (label, url)) in endpoints.iter().enumerate() {
            let mut h = measure_histogram()?;
            for _ in 0..options.calls {
                let t = Instant::now();
                get(&http, url, &team.admin).await?;
                h.record(t.elapsed().as_micros().max(1) as u64)?;
            }
            let (p50, p99) = (
                h.value_at_quantile(0.50) as f64,
                h.value_at_quantile(0.99) as f64,
            );
            eprintln!(
                "run {}: {label}: p50 {:.1} ms, p99 {:.1} ms",
                run + 1,
                p50 / 1000.0,
                p99 / 1000.0
            );
            figures[i].push((p50, p99));
        }
    }

    let backend = if options.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Process dashboard, {backend}: {} completed and {} running instances over {} days \
         ({facts} step facts, loaded in {:.0} s); {} calls per endpoint per run, one at a time, \
         {} runs.\n",
        options.instances,
        options.running,
        options.days,
        load_time.as_secs_f64(),
        options.calls,
        options.runs,
    );
    let _ = writeln!(
        out,
        "| Endpoint | p50 (median of runs) | p99 (median of runs) | p99 range over runs | p50 / baseline | p99 / baseline |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|");
    for (i, (label, _)) in endpoints.iter().enumerate() {
        let p50s: Vec<f64> = figures[i].iter().map(|f| f.0).collect();
        let p99s: Vec<f64> = figures[i].iter().map(|f| f.1).collect();
        let ratio = |k: usize| -> f64 {
            median(
                figures[i]
                    .iter()
                    .zip(&figures[0])
                    .map(|(f, b)| {
                        let (v, base) = if k == 0 { (f.0, b.0) } else { (f.1, b.1) };
                        v / base.max(1.0)
                    })
                    .collect(),
            )
        };
        let low = p99s.iter().copied().fold(f64::INFINITY, f64::min);
        let high = p99s.iter().copied().fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} – {} | {:.2} × | {:.2} × |",
            ms(median(p50s)),
            ms(median(p99s.clone())),
            ms(low),
            ms(high),
            ratio(0),
            ratio(1),
        );
    }
    let _ = writeln!(
        out,
        "\nThe dashboard's totals: {totals}; its `triage` step: count {}, waiting p50/p90/p99 {}, working {}.",
        triage["count"], triage["waiting_ms"], triage["working_ms"]
    );
    Ok(out)
}

fn ms(micros: f64) -> String {
    if micros >= 10_000.0 {
        format!("{:.0} ms", micros / 1000.0)
    } else {
        format!("{:.1} ms", micros / 1000.0)
    }
}

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
