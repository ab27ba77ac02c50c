//! The event log export's speed: `GET /workspaces/{id}/workflow-log` as XES and OCEL 2.0
//! JSON (plain, and with objects named by instance variables, which opens every instance's
//! sealed state), against the CSV export of the same events measured in the same run (the
//! same rows read the same way, in the plainest format), and the mining view of the process.
//!
//! One Concord in-process (a fresh SQLite database, or PostgreSQL with `--database-url`);
//! `--instances` instances of a three-task order process are started and completed through
//! the API first (not measured). Each measurement downloads the whole file over loopback,
//! request to last byte, and counts its bytes; the formats take turns within a run so drift
//! on a shared machine falls on all alike. Medians across `--runs`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use serde_json::{json, Value};

use crate::server::Server;
use crate::team;

/// Sizes and repetitions.
#[derive(clap::Args, Clone, Debug)]
pub struct MiningOptions {
    /// Instances of the three-task process in the log.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(10..=200_000))]
    pub instances: u32,
    /// Runs; medians are taken across them.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub runs: u32,
    /// PostgreSQL instead of the embedded SQLite.
    #[arg(long)]
    pub database_url: Option<String>,
}

const CONCURRENCY: usize = 16;

const PROCESS: &str = "process: bench_order\nname: Order\nsteps:\n  - start: placed\n  - user_task: pick\n    name: Pick items\n    person: ${who}\n  - user_task: pack\n    name: Pack parcel\n    person: ${who}\n  - user_task: ship\n    name: Ship parcel\n    person: ${who}\n  - end: shipped\n";

/// The exports measured: label, query, events per instance (3 activities, each a start and a
/// completion in XES and CSV, a completion in OCEL).
const EXPORTS: [(&str, &str, u64); 4] = [
    ("CSV (baseline)", "format=csv", 6),
    ("XES", "format=xes", 6),
    ("OCEL 2.0 JSON", "format=ocel", 3),
    (
        "OCEL 2.0 JSON, `objects=order_id:order,invoice_id:invoice`",
        "format=ocel&objects=order_id:order,invoice_id:invoice",
        3,
    ),
];

pub async fn run(options: MiningOptions) -> anyhow::Result<String> {
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

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
    expected: u16,
) -> anyhow::Result<Value> {
    let mut request = http.request(method, &url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.with_context(|| url.clone())?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    if status != expected {
        bail!(
            "{url} answered {status}: {}",
            text.get(..text.len().min(300)).unwrap_or("")
        );
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Downloads `url` to its end; its size and how long it took.
async fn download(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    keep: bool,
) -> anyhow::Result<(u64, Duration, Vec<u8>)> {
    let started = Instant::now();
    let response = http
        .get(url)
        .bearer_auth(token)
        .timeout(Duration::from_secs(1800))
        .send()
        .await
        .with_context(|| url.to_owned())?;
    if !response.status().is_success() {
        bail!("{url} answered {}", response.status());
    }
    let mut bytes = 0u64;
    let mut kept = Vec::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("reading the log")?;
        bytes += chunk.len() as u64;
        if keep {
            kept.extend_from_slice(&chunk);
        }
    }
    Ok((bytes, started.elapsed(), kept))
}

async fn benchmark(server: &Server, options: &MiningOptions) -> anyhow::Result<String> {
    let n = options.instances as usize;
    let team = team::setup(&server.base, &server.setup_token, 1).await?;
    let http = team::client()?;
    let admin = Arc::new(team.admin.clone());
    let me = send(
        &http,
        reqwest::Method::GET,
        format!("{}/api/v1/users/me", server.base),
        &admin,
        None,
        200,
    )
    .await?;
    let who = team::field(&me, "id")?;
    let wsp = Arc::new(format!(
        "{}/api/v1/workspaces/{}",
        server.base, team.workspace_id
    ));
    send(
        &http,
        reqwest::Method::POST,
        format!("{wsp}/workflows"),
        &admin,
        Some(json!({ "source": PROCESS })),
        201,
    )
    .await?;

    eprintln!("starting {n} instances and completing their 3 tasks each");
    let started = Instant::now();
    let results: Vec<anyhow::Result<Value>> = futures::stream::iter(0..n)
        .map(|k| {
            let (http, admin, wsp, who) = (http.clone(), admin.clone(), wsp.clone(), who.clone());
            async move {
                send(
                    &http,
                    reqwest::Method::POST,
                    format!("{wsp}/workflows/bench_order/instances"),
                    &admin,
                    Some(json!({"variables": {"who": who, "order_id": format!("O-{}", k / 2), "invoice_id": format!("I-{k}")}})),
                    201,
                )
                .await
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let mut completed = 0usize;
    loop {
        let page = send(
            &http,
            reqwest::Method::GET,
            format!("{}/api/v1/workflow-tasks?limit=500", server.base),
            &admin,
            None,
            200,
        )
        .await?;
        let tasks: Vec<String> = page["tasks"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if tasks.is_empty() {
            break;
        }
        completed += tasks.len();
        let results: Vec<anyhow::Result<Value>> = futures::stream::iter(tasks)
            .map(|id| {
                let (http, admin, base) = (http.clone(), admin.clone(), server.base.clone());
                async move {
                    send(
                        &http,
                        reqwest::Method::POST,
                        format!("{base}/api/v1/workflow-tasks/{id}/complete"),
                        &admin,
                        Some(json!({"variables": {}})),
                        200,
                    )
                    .await
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for r in results {
            r?;
        }
    }
    if completed != n * 3 {
        bail!("completed {completed} tasks, expected {}", n * 3);
    }
    eprintln!("  set up in {:.1} s", started.elapsed().as_secs_f64());

    // Warm-up, and a check of what each file holds.
    for (label, query, per_instance) in EXPORTS {
        let (_, _, body) =
            download(&http, &format!("{wsp}/workflow-log?{query}"), &admin, true).await?;
        let text = String::from_utf8(body).context("a log that is not UTF-8")?;
        let events = if query.contains("csv") {
            text.lines().count() as u64 - 1
        } else if query.contains("xes") {
            text.matches("<event>").count() as u64
        } else {
            let doc: Value = serde_json::from_str(&text).context("OCEL is not JSON")?;
            doc["events"].as_array().map(Vec::len).unwrap_or(0) as u64
        };
        if events != n as u64 * per_instance {
            bail!(
                "{label}: {events} events, expected {}",
                n as u64 * per_instance
            );
        }
    }

    let mut samples: Vec<Vec<(u64, Duration)>> = vec![Vec::new(); EXPORTS.len()];
    let mut mined: Vec<Duration> = Vec::new();
    for run in 1..=options.runs {
        for (k, (label, query, _)) in EXPORTS.iter().enumerate() {
            let (bytes, took, _) =
                download(&http, &format!("{wsp}/workflow-log?{query}"), &admin, false).await?;
            eprintln!(
                "run {run}/{}: {label:<62} {:>8.1} MB in {:>6.2} s",
                options.runs,
                bytes as f64 / 1e6,
                took.as_secs_f64()
            );
            samples[k].push((bytes, took));
        }
        let t = Instant::now();
        let m = send(
            &http,
            reqwest::Method::GET,
            format!("{wsp}/workflows/bench_order/mining"),
            &admin,
            None,
            200,
        )
        .await?;
        mined.push(t.elapsed());
        if m["instances"].as_u64() != Some(n as u64) {
            bail!("the mining view counted {} instances", m["instances"]);
        }
    }

    let median = |mut v: Vec<f64>| -> f64 {
        v.sort_by(f64::total_cmp);
        let m = v.len() / 2;
        if v.len() % 2 == 0 {
            (v[m - 1] + v[m]) / 2.0
        } else {
            v[m]
        }
    };
    let backend = if options.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "`concord-bench mining` on {backend}: {n} completed instances of a three-task process \
         ({} history steps), {} runs, one download at a time over loopback.\n",
        n * 14,
        options.runs
    );
    let _ = writeln!(
        out,
        "| Export | Size (MB) | Time (s) | Events/s | MB/s | Events/s vs CSV |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|");
    let rates: Vec<(f64, f64, f64, f64)> = EXPORTS
        .iter()
        .enumerate()
        .map(|(k, (_, _, per))| {
            let events = (n as u64 * per) as f64;
            let secs = median(samples[k].iter().map(|s| s.1.as_secs_f64()).collect());
            let mb = median(samples[k].iter().map(|s| s.0 as f64 / 1e6).collect());
            let eps = median(
                samples[k]
                    .iter()
                    .map(|s| events / s.1.as_secs_f64())
                    .collect(),
            );
            let mbps = median(
                samples[k]
                    .iter()
                    .map(|s| s.0 as f64 / 1e6 / s.1.as_secs_f64())
                    .collect(),
            );
            (mb, secs, eps, mbps)
        })
        .collect();
    let base_eps = rates[0].2;
    for ((label, _, _), (mb, secs, eps, mbps)) in EXPORTS.iter().zip(&rates) {
        let _ = writeln!(
            out,
            "| {label} | {mb:.1} | {secs:.2} | {eps:.0} | {mbps:.1} | {:.2} × |",
            if base_eps > 0.0 { eps / base_eps } else { 0.0 }
        );
    }
    let _ = writeln!(
        out,
        "\nThe mining view of the process (`GET /workflows/bench_order/mining`): median {:.0} ms \
         over the {n} instances.",
        median(mined.iter().map(|d| d.as_secs_f64() * 1000.0).collect())
    );
    Ok(out)
}
