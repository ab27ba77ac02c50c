//! Routing inside the server: the cost a `routing:` block adds to opening a user task, with
//! the group's snapshot gathered from the database (its people, their sealed attributes,
//! open-task counts, presence) in the write that opens the task.
//!
//! One Concord in-process (default config, a fresh SQLite database, or PostgreSQL with
//! `--database-url`), `--people` members of one workspace (all holding the role `member`), each
//! with routing attributes (languages, products, a level, a capacity for most), and
//! `--open-tasks` open tasks assigned across them by a process without routing. Then one
//! client starts instances of one-task processes, one request at a time, in turns: the
//! baseline's task goes to the role `member` as a shared queue without a routing block; the
//! others route among the same 1,000 people (least loaded, round-robin, skills). Each start's
//! latency is the request's, start to answer, with the task opened and routed in it; the
//! difference to the baseline is what routing adds, snapshot included.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::server::Server;
use crate::team;

/// Sizes and repetitions.
#[derive(clap::Args, Clone, Debug)]
pub struct RouteServerOptions {
    /// Members of the workspace, all in the group tasks are routed among.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(2..=5000))]
    pub people: u32,
    /// Open tasks assigned across them before measuring.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(0..=200_000))]
    pub open_tasks: u32,
    /// Starts per process per run.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(10..=100_000))]
    pub starts: u32,
    /// Runs; medians are taken across them.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub runs: u32,
    /// PostgreSQL instead of the embedded SQLite.
    #[arg(long)]
    pub database_url: Option<String>,
}

const CONCURRENCY: usize = 16;

const PROCESSES: [(&str, &str); 4] = [
    ("queue, no routing block (baseline)", "plain"),
    ("least_loaded", "least"),
    ("round_robin", "rota"),
    ("skills (`languages: ko; products: billing`)", "skilled"),
];

fn model(id: &str) -> String {
    let routing = match id {
        "least" => "\n    routing: {strategy: least_loaded}",
        "rota" => "\n    routing: {strategy: round_robin}",
        "skilled" => {
            "\n    routing: {strategy: skills, requirements: \"languages: ko; products: billing\"}"
        }
        _ => "",
    };
    format!(
        "process: {id}\nsteps:\n  - start: s\n  - user_task: work\n    role: member{routing}\n  - end: e\n"
    )
}

pub async fn run(options: RouteServerOptions) -> anyhow::Result<String> {
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

async fn benchmark(server: &Server, options: &RouteServerOptions) -> anyhow::Result<String> {
    let people = options.people as usize;
    eprintln!("setting up {people} members");
    let team = team::setup(&server.base, &server.setup_token, people).await?;
    let http = team::client()?;
    let base = Arc::new(server.base.clone());
    let admin = Arc::new(team.admin.clone());
    let ws = team.workspace_id.clone();

    // Everyone's id, and their routing attributes.
    let tokens: Arc<Vec<String>> =
        Arc::new(team.members.iter().map(|m| m.access.clone()).collect());
    let ids: Vec<String> = futures::stream::iter(0..people)
        .map(|i| {
            let (http, base, tokens) = (http.clone(), base.clone(), tokens.clone());
            async move {
                let me = send(
                    &http,
                    reqwest::Method::GET,
                    format!("{base}/api/v1/users/me"),
                    &tokens[i],
                    None,
                    200,
                )
                .await?;
                team::field(&me, "id")
            }
        })
        .buffered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    eprintln!("setting routing attributes");
    let ids = Arc::new(ids);
    let set: Vec<anyhow::Result<Value>> = futures::stream::iter(0..people)
        .map(|i| {
            let (http, base, admin, ids, ws) = (
                http.clone(),
                base.clone(),
                admin.clone(),
                ids.clone(),
                ws.clone(),
            );
            async move {
                let languages: Vec<&str> = match i % 5 {
                    0 => vec!["ko", "en"],
                    1 => vec!["ja"],
                    2 => vec!["en"],
                    3 => vec!["ko"],
                    _ => vec!["zh", "en"],
                };
                let products: Vec<&str> = match i % 3 {
                    0 => vec!["billing"],
                    1 => vec!["billing", "api"],
                    _ => vec!["api"],
                };
                let capacity = if i % 4 == 0 { Value::Null } else { json!(100) };
                send(
                    &http,
                    reqwest::Method::PUT,
                    format!("{base}/api/v1/workspaces/{ws}/people/{}/routing", ids[i]),
                    &admin,
                    Some(
                        json!({"skills": {"languages": languages, "products": products},
                                "levels": {"support": (i % 3) as i64 + 1}, "capacity": capacity}),
                    ),
                    200,
                )
                .await
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for r in set {
        r?;
    }

    let wsp = format!("{base}/api/v1/workspaces/{ws}");
    send(
        &http,
        reqwest::Method::POST,
        format!("{wsp}/workflows"),
        &admin,
        Some(json!({"source": "process: load\nsteps:\n  - start: s\n  - user_task: work\n    person: ${who}\n  - end: e\n"})),
        201,
    )
    .await?;
    for (_, id) in PROCESSES {
        send(
            &http,
            reqwest::Method::POST,
            format!("{wsp}/workflows"),
            &admin,
            Some(json!({ "source": model(id) })),
            201,
        )
        .await?;
    }
    let open = options.open_tasks as usize;
    eprintln!("opening {open} tasks");
    let started = Instant::now();
    let opened: Vec<anyhow::Result<Value>> = futures::stream::iter(0..open)
        .map(|n| {
            let (http, admin, ids, wsp) = (http.clone(), admin.clone(), ids.clone(), wsp.clone());
            // Uneven: a tenth of the people hold half the tasks.
            let who = if n % 2 == 0 {
                ids[n / 2 % ids.len().div_ceil(10)].clone()
            } else {
                ids[n / 2 % ids.len()].clone()
            };
            async move {
                send(
                    &http,
                    reqwest::Method::POST,
                    format!("{wsp}/workflows/load/instances"),
                    &admin,
                    Some(json!({"variables": {"who": who}})),
                    201,
                )
                .await
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for r in opened {
        r?;
    }
    eprintln!("  opened in {:.1} s", started.elapsed().as_secs_f64());

    // Warm-up: one of each.
    for (_, id) in PROCESSES {
        start(&http, &admin, &wsp, id).await?;
    }
    let mut samples: Vec<Vec<Histogram<u64>>> = vec![Vec::new(); PROCESSES.len()];
    for run in 1..=options.runs {
        let mut hists: Vec<Histogram<u64>> = (0..PROCESSES.len())
            .map(|_| Histogram::new_with_bounds(1, 60_000_000, 3))
            .collect::<Result<_, _>>()
            .context("histogram")?;
        // In turns, so drift on a shared machine falls on every process alike.
        for _ in 0..options.starts {
            for (k, (_, id)) in PROCESSES.iter().enumerate() {
                let took = start(&http, &admin, &wsp, id).await?;
                let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
                hists[k].record(micros.min(60_000_000)).context("record")?;
            }
        }
        for (k, h) in hists.into_iter().enumerate() {
            eprintln!(
                "run {run}/{}: {:<45} p50 {:>7} µs  p99 {:>7} µs",
                options.runs,
                PROCESSES[k].0,
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99)
            );
            samples[k].push(h);
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
        "`concord-bench route-server` on {backend}: {people} people, {open} open tasks before \
         measuring, {} starts per process per run, {} runs, one request at a time.\n",
        options.starts, options.runs
    );
    let _ = writeln!(
        out,
        "| Task's routing | p50 start (ms) | p99 start (ms) | p50 over baseline (ms) | p99 over baseline (ms) | p50 ratio to baseline |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|");
    let p = |k: usize, q: f64| -> f64 {
        median(
            samples[k]
                .iter()
                .map(|h| h.value_at_quantile(q) as f64 / 1000.0)
                .collect(),
        )
    };
    let (b50, b99) = (p(0, 0.5), p(0, 0.99));
    for (k, (label, _)) in PROCESSES.iter().enumerate() {
        let (p50, p99) = (p(k, 0.5), p(k, 0.99));
        let _ = writeln!(
            out,
            "| {label} | {p50:.2} | {p99:.2} | {:+.2} | {:+.2} | {:.2} × |",
            p50 - b50,
            p99 - b99,
            if b50 > 0.0 { p50 / b50 } else { 0.0 }
        );
    }
    Ok(out)
}

async fn start(
    http: &reqwest::Client,
    admin: &str,
    wsp: &str,
    process: &str,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    send(
        http,
        reqwest::Method::POST,
        format!("{wsp}/workflows/{process}/instances"),
        admin,
        Some(json!({"variables": {"subject": "refund for a double charge"}})),
        201,
    )
    .await?;
    Ok(started.elapsed())
}
