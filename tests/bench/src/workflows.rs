//! The `workflows` benchmark: process instances, user tasks and timers on one in-process
//! Concord, each against durable chat posts measured in the same run.
//!
//! - **instances**: a five-step process (start, a service task calling a small stock service
//!   on loopback, a user task assigned to the starter, an exclusive gateway, an end). Every
//!   client is a member that starts an instance, waits for its task to reach its inbox (the
//!   service call ran and the task opened; the Workflows bot also sent the assignee a direct
//!   message), completes it with `approved: true` and counts the instance when the completion
//!   returns, by which time the instance has ended (checked at the end of every run).
//!   Latency is the instance's duration as its starter sees it, from the start request to the
//!   completion's answer.
//! - **tasks**: `--tasks` instances of a one-task process are opened first (not measured);
//!   the clients then empty their inboxes, completing each task. Latency is one completion.
//! - **timers**: `--timers` instances of a process that waits on one timer date are started
//!   first; the timer comes due for all of them at once. The rate is timers over the time from
//!   the due date to the last instance's end, and the latency is each timer's lateness (due
//!   date to its instance's end, as recorded by the server).
//! - **baseline**: `POST /api/v1/channels/{id}/messages` by the same clients, closed loop: a
//!   durable, encrypted, audited chat post, the server's canonical write.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::load::{self, Sample};
use crate::report::{self, Row};
use crate::server::Server;
use crate::team::{self, Team};

/// How long a poll for a task sleeps before asking again.
const POLL: Duration = Duration::from_millis(2);
/// Longest wait for one instance's task, or for the timers to fire.
const PATIENCE: Duration = Duration::from_secs(120);
/// Longest latency the histograms hold, in microseconds.
const MAX_MICROS: u64 = 600_000_000;

/// Options of `concord-bench workflows`.
#[derive(clap::Args, Clone, Debug)]
pub struct WorkflowOptions {
    /// Seconds per measurement of instances and of the baseline.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
    /// Runs of every measurement; medians are taken across them.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,
    /// Concurrent clients, each a member with its own keep-alive HTTP client.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub concurrency: u32,
    /// Tasks opened before each tasks measurement, all completed in it.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub tasks: u32,
    /// Instances waiting on one timer date in each timers measurement.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub timers: u32,
    /// Seconds between deploying the timer process and its due date: every instance must
    /// be started before it.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timer_lead_seconds: u64,
    /// Concord's database (default: SQLite in a temporary data dir); a fresh one.
    #[arg(long)]
    pub database_url: Option<String>,
}

/// One client: a member and its own connection.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: Arc<String>,
    access: Arc<String>,
    user_id: Arc<String>,
}

impl Client {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        expected: u16,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(self.access.as_str());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if status.as_u16() != expected {
            bail!(
                "{method} {path} answered {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            );
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).with_context(|| format!("{method} {path}: not JSON"))
    }

    async fn post(&self, path: &str, body: Value, expected: u16) -> anyhow::Result<Value> {
        self.send(reqwest::Method::POST, path, Some(&body), expected)
            .await
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(reqwest::Method::GET, path, None, 200).await
    }
}

/// The small stock service the five-step process calls: it answers every reservation.
async fn stock_service() -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/reserve",
        post(|| async { axum::Json(json!({ "reservation": "r-1" })) }),
    );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .context("binding the stock service")?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, task))
}

fn five_steps(stock: SocketAddr) -> String {
    format!(
        "process: bench_order\nsteps:\n  - start: ordered\n  - service_task: reserve\n    method: POST\n    url: http://{stock}/reserve\n    body: {{item: \"${{item}}\"}}\n    outputs: {{reservation: response.body.reservation}}\n  - user_task: approve\n    person: ${{who}}\n  - exclusive: approved\n    branches:\n      - when: approved == true\n        goto: done\n    default: refused\n  - end: done\n  - end: refused\n"
    )
}

const ONE_TASK: &str =
    "process: bench_task\nsteps:\n  - start: s\n  - user_task: review\n    person: ${who}\n  - end: e\n";

fn one_timer(process: &str, due: DateTime<Utc>) -> String {
    format!(
        "process: {process}\nsteps:\n  - start: s\n  - wait: t\n    timer: {}\n  - end: e\n",
        due.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

/// Runs the benchmark on a fresh in-process server and returns the Markdown report.
pub async fn run(options: WorkflowOptions) -> anyhow::Result<String> {
    let (stock, stock_task) = stock_service().await?;
    let loopback: concord::config::ProxyNet = "127.0.0.1"
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    let url = options.database_url.clone();
    let server = Server::start_with(move |config| {
        config.workflows.allowed_networks = vec![loopback];
        if let Some(url) = url {
            config.database.url = Some(url.into());
        }
    })
    .await?;
    let outcome = benchmark(&server, stock, &options).await;
    let stopped = server.stop().await;
    stock_task.abort();
    let report = outcome?;
    stopped?;
    Ok(report)
}

async fn benchmark(
    server: &Server,
    stock: SocketAddr,
    options: &WorkflowOptions,
) -> anyhow::Result<String> {
    let concurrency = options.concurrency as usize;
    eprintln!("setting up {concurrency} members");
    let team = team::setup(&server.base, &server.setup_token, concurrency).await?;
    let base = Arc::new(server.base.clone());
    let admin = Client {
        http: load::client()?,
        base: base.clone(),
        access: Arc::new(team.admin.clone()),
        user_id: Arc::new(String::new()),
    };
    let mut clients = Vec::with_capacity(concurrency);
    for member in &team.members {
        let mut client = Client {
            http: load::client()?,
            base: base.clone(),
            access: Arc::new(member.access.clone()),
            user_id: Arc::new(String::new()),
        };
        let me = client.get("/api/v1/users/me").await?;
        client.user_id = Arc::new(team::field(&me, "id")?);
        clients.push(client);
    }
    let ws = format!("/api/v1/workspaces/{}", team.workspace_id);
    deploy(&admin, &ws, &five_steps(stock)).await?;
    deploy(&admin, &ws, ONE_TASK).await?;

    let seconds = Duration::from_secs(options.seconds);
    eprintln!("warming up");
    posts(&clients, &team, Duration::from_secs(1)).await?;
    instances(&admin, &clients, &ws, Duration::from_secs(2)).await?;

    let mut post_samples = Vec::new();
    let mut instance_samples = Vec::new();
    let mut task_samples = Vec::new();
    let mut timer_samples = Vec::new();
    for run in 1..=options.runs {
        let r = options.runs;
        let sample = posts(&clients, &team, seconds).await?;
        eprintln!(
            "run {run}/{r}: chat posts            {:>10.1}/s",
            sample.rate()
        );
        post_samples.push(sample);
        let sample = instances(&admin, &clients, &ws, seconds).await?;
        eprintln!(
            "run {run}/{r}: five-step instances   {:>10.1}/s",
            sample.rate()
        );
        instance_samples.push(sample);
        let sample = tasks(&clients, &ws, options.tasks as usize).await?;
        eprintln!(
            "run {run}/{r}: tasks completed       {:>10.1}/s",
            sample.rate()
        );
        task_samples.push(sample);
        let process = format!("bench_timer_{run}");
        let sample = timers(&admin, &clients, &ws, &process, options).await?;
        eprintln!(
            "run {run}/{r}: timers fired          {:>10.1}/s",
            sample.rate()
        );
        timer_samples.push(sample);
    }

    let baseline = Some((post_samples.as_slice(), "posts"));
    let rows = [
        Row {
            label: "`POST …/channels/{id}/messages`, a durable chat post (baseline)".into(),
            samples: &post_samples,
            baseline: None,
        },
        Row {
            label: "five-step instances, started to ended (latency: an instance's duration)".into(),
            samples: &instance_samples,
            baseline,
        },
        Row {
            label: "user tasks completed (latency: one completion)".into(),
            samples: &task_samples,
            baseline,
        },
        Row {
            label: format!(
                "timers fired, {} due at once (latency: lateness)",
                options.timers
            ),
            samples: &timer_samples,
            baseline,
        },
    ];
    let backend = if options.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let heading = format!(
        "`concord-bench workflows` on {backend}: {} runs, {} s per measurement, {concurrency} \
         concurrent members, {} tasks and {} timers per run, {} cores.",
        options.runs,
        options.seconds,
        options.tasks,
        options.timers,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    Ok(report::table(&heading, &rows))
}

async fn deploy(admin: &Client, ws: &str, source: &str) -> anyhow::Result<()> {
    admin
        .post(&format!("{ws}/workflows"), json!({ "source": source }), 201)
        .await
        .map(|_| ())
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).context("creating a histogram")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Runs `op` in a loop on every client until `duration` has passed; counts and times it.
async fn closed_loop<F, Fut>(
    clients: &[Client],
    duration: Duration,
    op: F,
) -> anyhow::Result<Sample>
where
    F: Fn(Client, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = JoinSet::new();
    for client in clients {
        let (client, op) = (client.clone(), op.clone());
        workers.spawn(async move {
            let mut latency = histogram()?;
            let mut count = 0u64;
            while Instant::now() < deadline {
                let began = Instant::now();
                op(client.clone(), count).await?;
                latency.saturating_record(micros(began.elapsed()));
                count += 1;
            }
            anyhow::Ok((count, latency))
        });
    }
    gather(workers, start).await
}

async fn gather(
    mut workers: JoinSet<anyhow::Result<(u64, Histogram<u64>)>>,
    start: Instant,
) -> anyhow::Result<Sample> {
    let mut total = histogram()?;
    let mut count = 0;
    while let Some(joined) = workers.join_next().await {
        let (n, latency) = joined.context("worker task")??;
        count += n;
        total.add(&latency).context("merging histograms")?;
    }
    Ok(Sample {
        count,
        elapsed: start.elapsed(),
        latency: total,
    })
}

async fn posts(clients: &[Client], team: &Team, duration: Duration) -> anyhow::Result<Sample> {
    let path = Arc::new(format!("/api/v1/channels/{}/messages", team.channel_id));
    closed_loop(clients, duration, move |client, n| {
        let path = path.clone();
        async move {
            client
                .post(&path, json!({ "text": format!("bench post {n}") }), 201)
                .await
                .map(|_| ())
        }
    })
    .await
}

/// The open task of `instance` in the client's inbox, once it is there.
async fn task_of(client: &Client, instance: &str) -> anyhow::Result<String> {
    let give_up = Instant::now() + PATIENCE;
    loop {
        let inbox = client.get("/api/v1/workflow-tasks?limit=50").await?;
        let found = inbox["tasks"].as_array().and_then(|tasks| {
            tasks
                .iter()
                .find(|t| t["instance_id"] == instance)
                .and_then(|t| t["id"].as_str().map(str::to_owned))
        });
        if let Some(id) = found {
            return Ok(id);
        }
        ensure!(
            Instant::now() < give_up,
            "instance {instance}'s task never reached the inbox"
        );
        tokio::time::sleep(POLL).await;
    }
}

async fn instances(
    admin: &Client,
    clients: &[Client],
    ws: &str,
    duration: Duration,
) -> anyhow::Result<Sample> {
    let start = Arc::new(format!("{ws}/workflows/bench_order/instances"));
    let sample = closed_loop(clients, duration, move |client, n| {
        let start = start.clone();
        async move {
            let vars = json!({ "variables": { "item": format!("sku-{n}"), "who": client.user_id.as_str() } });
            let instance = client.post(&start, vars, 201).await?;
            let id = team::field(&instance, "id")?;
            let task = task_of(&client, &id).await?;
            client
                .post(
                    &format!("/api/v1/workflow-tasks/{task}/complete"),
                    json!({ "variables": { "approved": true } }),
                    200,
                )
                .await?;
            Ok(())
        }
    })
    .await?;
    // Every instance a client counted has ended: none is still running.
    let running = admin
        .get(&format!(
            "{ws}/workflow-instances?process_id=bench_order&status=running&limit=500"
        ))
        .await?;
    let left = running["instances"].as_array().map_or(0, Vec::len);
    ensure!(left == 0, "{left} five-step instances are still running");
    Ok(sample)
}

async fn tasks(clients: &[Client], ws: &str, count: usize) -> anyhow::Result<Sample> {
    eprintln!("  opening {count} tasks");
    let start = Arc::new(format!("{ws}/workflows/bench_task/instances"));
    let per_client = count.div_ceil(clients.len());
    let mut openers = JoinSet::new();
    for (i, client) in clients.iter().cloned().enumerate() {
        let start = start.clone();
        let mine = per_client.min(count.saturating_sub(i * per_client));
        openers.spawn(async move {
            for _ in 0..mine {
                let vars = json!({ "variables": { "who": client.user_id.as_str() } });
                client.post(&start, vars, 201).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = openers.join_next().await {
        joined.context("opening tasks")??;
    }

    let began = Instant::now();
    let mut workers = JoinSet::new();
    for client in clients {
        let client = client.clone();
        workers.spawn(async move {
            let mut latency = histogram()?;
            let mut count = 0u64;
            loop {
                let inbox = client.get("/api/v1/workflow-tasks?limit=200").await?;
                let ids: Vec<String> = inbox["tasks"]
                    .as_array()
                    .map(|tasks| {
                        tasks
                            .iter()
                            .filter(|t| t["process_id"] == "bench_task")
                            .filter_map(|t| t["id"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                if ids.is_empty() {
                    break;
                }
                for id in ids {
                    let t = Instant::now();
                    client
                        .post(
                            &format!("/api/v1/workflow-tasks/{id}/complete"),
                            json!({}),
                            200,
                        )
                        .await?;
                    latency.saturating_record(micros(t.elapsed()));
                    count += 1;
                }
            }
            anyhow::Ok((count, latency))
        });
    }
    let sample = gather(workers, began).await?;
    ensure!(
        sample.count as usize == count,
        "{} tasks completed out of {count}",
        sample.count
    );
    Ok(sample)
}

async fn timers(
    admin: &Client,
    clients: &[Client],
    ws: &str,
    process: &str,
    options: &WorkflowOptions,
) -> anyhow::Result<Sample> {
    let count = options.timers as usize;
    let due = Utc::now() + chrono::Duration::seconds(options.timer_lead_seconds as i64);
    deploy(admin, ws, &one_timer(process, due)).await?;
    eprintln!("  starting {count} instances waiting on one timer");
    let start = Arc::new(format!("{ws}/workflows/{process}/instances"));
    let per_client = count.div_ceil(clients.len());
    let mut starters = JoinSet::new();
    for (i, client) in clients.iter().cloned().enumerate() {
        let start = start.clone();
        let mine = per_client.min(count.saturating_sub(i * per_client));
        starters.spawn(async move {
            for _ in 0..mine {
                client.post(&start, json!({}), 201).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = starters.join_next().await {
        joined.context("starting timer instances")??;
    }
    ensure!(
        Utc::now() < due,
        "the timers came due before all {count} instances were started: raise --timer-lead-seconds"
    );

    // Wait for every instance to end, then read when each did.
    let give_up = Instant::now() + Duration::from_secs(options.timer_lead_seconds) + PATIENCE;
    let list = format!("{ws}/workflow-instances?process_id={process}&status=completed&limit=500");
    let ended = loop {
        if Utc::now() > due {
            let ended = ended_at(admin, &list).await?;
            if ended.len() >= count {
                break ended;
            }
            ensure!(
                Instant::now() < give_up,
                "{} of {count} timers fired in time",
                ended.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut latency = histogram()?;
    let mut last = due;
    for at in &ended {
        last = last.max(*at);
        let late = (*at - due).to_std().unwrap_or(Duration::ZERO);
        latency.saturating_record(micros(late));
    }
    Ok(Sample {
        count: ended.len() as u64,
        elapsed: (last - due).to_std().unwrap_or(Duration::from_micros(1)),
        latency,
    })
}

/// When each instance on every page of `list` ended.
async fn ended_at(client: &Client, list: &str) -> anyhow::Result<Vec<DateTime<Utc>>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("{list}&cursor={c}"),
            None => list.to_owned(),
        };
        let page = client.get(&path).await?;
        for i in page["instances"].as_array().into_iter().flatten() {
            let at = i["ended_at"]
                .as_str()
                .context("a completed instance without ended_at")?;
            out.push(
                DateTime::parse_from_rfc3339(at)
                    .context("ended_at")?
                    .with_timezone(&Utc),
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok(out),
        }
    }
}
