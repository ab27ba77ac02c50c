//! The real-time hub benchmarks (`fanout`, `latency`, `idle`, `durable`, or all as `hub`):
//! Concord's `/api/v1/ws` against the raw broadcast baseline ([`crate::raw`]), both as child
//! processes driven by the same clients ([`crate::clients`]) in the same run.
//!
//! - fanout: 1 channel x N members, posters gated so that at most `in_flight` posts are
//!   not yet delivered to the slowest receiver: the highest rate every receiver sustains.
//! - latency: posts paced open loop at `rate`/s; post-to-delivery latency at every receiver.
//! - idle: VmRSS of the server before and after opening `connections` idle sockets.
//! - durable: closed loops of `durable_posters` keep-alive clients doing an authenticated no-op
//!   (the baseline) then posting over REST, each waiting for its answer, then
//!   `durable_sockets` sockets posting `post` frames, `durable_window` awaiting their ack each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::task::JoinSet;

use crate::child::{self, ChildServer};
use crate::clients::{self, Clock, Endpoint, Posters, Receivers, Window};
use crate::team::{self, Team};

/// Sockets opened at a time.
const CONNECT_CONCURRENCY: usize = 64;
/// How long delivery of what was posted may take to finish after a measurement.
const DRAIN: Duration = Duration::from_secs(10);
/// Pause after opening or closing many sockets, so the servers settle.
const SETTLE: Duration = Duration::from_secs(3);
/// Bound on posts one measurement sends, whatever its duration.
const MAX_POSTS: u64 = 10_000_000;

/// Parameters of the hub benchmarks.
#[derive(Args, Clone, Debug)]
pub struct HubOptions {
    /// Members of the channel, each with one receiving socket.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub members: u64,
    /// Seconds per measurement window.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
    /// Runs of every measurement; medians are taken across them.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,
    /// Seconds of posting before each window opens (not counted).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=60))]
    pub warmup_seconds: u64,
    /// Posting sockets (fanout and latency).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub posters: u64,
    /// Fanout: posts sent but not yet received by the slowest receiver, at most.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub in_flight: u64,
    /// Latency: posts per second, paced open loop.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub rate: u64,
    /// Idle: sockets opened.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub connections: u64,
    /// Durable: concurrent REST posters (each a member with a keep-alive client), also the
    /// clients of the no-op baseline.
    #[arg(long = "durable-posters", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub durable_posters: u64,
    /// Durable: posting WebSocket sockets (one member each).
    #[arg(long = "durable-sockets", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub durable_sockets: u64,
    /// Durable: posts each socket keeps awaiting their ack.
    #[arg(long = "durable-window", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub durable_window: u64,
    /// Concord's database (default: SQLite in a temporary data dir).
    #[arg(long)]
    pub database_url: Option<String>,
}

/// Which measurements to take.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Idle memory per connection.
    Idle,
    /// Durable posts per second.
    Durable,
    /// Saturated fan-out.
    Fanout,
    /// Paced latency.
    Latency,
}

/// One server under test, with its sockets.
struct Target {
    name: &'static str,
    pid: u32,
    receivers: Receivers,
    posters: Posters,
    channel_id: String,
}

/// What a fan-out or latency measurement saw.
struct FlowSample {
    posts: u64,
    deliveries: u64,
    /// Posts the slowest receiver had not received when the drain ended.
    missing: u64,
    seconds: f64,
    latency: Histogram<u64>,
    server_cpu: f64,
    bench_cpu: f64,
    dead: usize,
}

impl FlowSample {
    fn deliveries_per_second(&self) -> f64 {
        self.deliveries as f64 / self.seconds
    }
    fn posts_per_second(&self) -> f64 {
        self.posts as f64 / self.seconds
    }
}

/// What an idle measurement saw.
struct IdleSample {
    before_kib: u64,
    after_kib: u64,
    connections: u64,
}

impl IdleSample {
    fn per_connection_kib(&self) -> f64 {
        self.after_kib.saturating_sub(self.before_kib) as f64 / self.connections as f64
    }
}

/// Raises this process's open-files limit to its hard limit (children inherit it).
pub fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        }
    }
    limit.rlim_cur
}

/// Runs `parts` against a fresh Concord and raw server and returns the Markdown report.
pub async fn run(options: HubOptions, parts: &[Part]) -> anyhow::Result<String> {
    let nofile = raise_open_files_limit();
    let needed = if parts.contains(&Part::Idle) {
        options.connections + 1000
    } else {
        2 * (options.members + options.posters) + 1000
    };
    if nofile < needed {
        bail!("the open-files limit is {nofile}; this run needs about {needed}: raise `ulimit -n`");
    }
    let backend = if options.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    eprintln!("starting the raw server and Concord ({backend})");
    let raw = ChildServer::raw().await?;
    let concord = ChildServer::concord(options.database_url.as_deref()).await?;
    let outcome = measure_all(&options, parts, &raw, &concord, backend).await;
    let stopped = (raw.stop().await, concord.stop().await);
    let report = outcome?;
    stopped.0?;
    stopped.1?;
    Ok(report)
}

async fn measure_all(
    options: &HubOptions,
    parts: &[Part],
    raw: &ChildServer,
    concord: &ChildServer,
    backend: &str,
) -> anyhow::Result<String> {
    let clock = Clock::new();
    let setup_token = concord
        .setup_token
        .as_deref()
        .context("Concord printed no setup link: is its database fresh?")?;
    let members = options.members.max(if parts.contains(&Part::Durable) {
        options.durable_posters
    } else {
        1
    });
    eprintln!("setting up {members} members in one public channel");
    let team = team::setup(&concord.base(), setup_token, members as usize).await?;
    eprintln!("  set up in {:.1} s", team.took.as_secs_f64());

    let mut out = String::new();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    out.push_str(&format!(
        "Hub benchmarks on {backend}: {} runs, {} s windows after {} s warm-up, {cores} cores \
         shared by the server, the clients and anything else running; setup of {members} \
         members took {:.0} s.\n",
        options.runs,
        options.seconds,
        options.warmup_seconds,
        team.took.as_secs_f64()
    ));

    if parts.contains(&Part::Idle) {
        out.push_str(&idle(options, raw, concord, &team, &clock).await?);
    }
    let mut raw_relay: Option<f64> = None;
    let mut durable_section = None;
    if parts.contains(&Part::Durable) {
        durable_section = Some(durable(options, concord, &team).await?);
    }
    if parts.contains(&Part::Fanout) || parts.contains(&Part::Latency) {
        let (section, relay) = flows(options, parts, raw, concord, &team, clock).await?;
        raw_relay = relay;
        out.push_str(&section);
    }
    if let Some((samples, section)) = durable_section {
        out.push_str(&section);
        let rate = median(samples.iter().map(|s| s.0).collect());
        match raw_relay {
            Some(relay) => out.push_str(&format!(
                "\nNo raw baseline stores anything, so durability has none; for context, \
                 {rate:.0} durable posts/s is {:.2} × the posts/s the raw server relayed to \
                 {} receivers in the fan-out measurement ({relay:.0}/s).\n",
                rate / relay.max(f64::MIN_POSITIVE),
                options.members
            )),
            None => out.push_str(
                "\nNo raw baseline stores anything, so durability has none (run `hub` or \
                 `fanout` too for the raw relay rate as context).\n",
            ),
        }
    }
    Ok(out)
}

// ----- idle -----

async fn idle(
    options: &HubOptions,
    raw: &ChildServer,
    concord: &ChildServer,
    team: &Team,
    clock: &Clock,
) -> anyhow::Result<String> {
    let tokens: Vec<String> = team.members.iter().map(|m| m.access.clone()).collect();
    let mut samples: [Vec<IdleSample>; 2] = Default::default();
    // One run per process: memory freed when sockets close stays resident, so a second run
    // would reopen sockets into it and measure almost nothing.
    let runs = 1;
    for run in 1..=runs {
        for (i, server) in [raw, concord].into_iter().enumerate() {
            let sample = idle_once(options, server, &tokens, clock).await?;
            eprintln!(
                "run {run}/{runs}: idle {:<10} {:>7} KiB -> {:>7} KiB: {:.1} KiB per connection",
                server.name,
                sample.before_kib,
                sample.after_kib,
                sample.per_connection_kib()
            );
            samples[i].push(sample);
        }
    }
    let mut s = format!(
        "\n### Resident memory per idle connection ({} connections, one run on a fresh process)\n\n\
         | Server | VmRSS before (MiB) | VmRSS with the connections (MiB) | KiB per connection (median) | Range over runs (KiB) |\n\
         |---|--:|--:|--:|--:|\n",
        options.connections
    );
    for (i, name) in [
        "raw tokio-tungstenite broadcast (baseline)",
        "Concord `/api/v1/ws`, authenticated",
    ]
    .iter()
    .enumerate()
    {
        let per: Vec<f64> = samples[i]
            .iter()
            .map(IdleSample::per_connection_kib)
            .collect();
        let before = median(samples[i].iter().map(|x| x.before_kib as f64).collect());
        let after = median(samples[i].iter().map(|x| x.after_kib as f64).collect());
        s.push_str(&format!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1}–{:.1} |\n",
            before / 1024.0,
            after / 1024.0,
            median(per.clone()),
            per.iter().copied().fold(f64::INFINITY, f64::min),
            per.iter().copied().fold(0.0, f64::max),
        ));
    }
    Ok(s)
}

async fn idle_once(
    options: &HubOptions,
    server: &ChildServer,
    tokens: &[String],
    clock: &Clock,
) -> anyhow::Result<IdleSample> {
    let is_concord = server.name == "concord";
    let endpoint = endpoint(server, is_concord);
    let window = Arc::new(Window::default());
    let before_kib = server.rss_kib()?;
    let started = Instant::now();
    let total = options.connections as usize;
    let mut sockets = Vec::with_capacity(total);
    let toks: &[String] = if is_concord { tokens } else { &[] };
    // One socket per user first: only a user's first socket announces their presence to
    // everyone connected, so this keeps that flood to one notice per user.
    let first = if is_concord {
        toks.len().min(total)
    } else {
        total
    };
    sockets.extend(clients::connect_many(&endpoint, first, 0, toks, CONNECT_CONCURRENCY).await?);
    if total > first {
        sockets.extend(
            clients::connect_many(&endpoint, total - first, first, toks, CONNECT_CONCURRENCY)
                .await?,
        );
    }
    eprintln!(
        "  {} sockets to {} open in {:.1} s",
        sockets.len(),
        server.name,
        started.elapsed().as_secs_f64()
    );
    // Read (and drop) whatever arrives, as a client would; nothing is posted.
    let readers = Receivers::start(sockets, *clock, window)?;
    tokio::time::sleep(SETTLE).await;
    let after_kib = server.rss_kib()?;
    let dead = readers.dead();
    readers.close().await;
    if dead > 0 {
        bail!(
            "{dead} idle sockets to {} were closed by the server",
            server.name
        );
    }
    tokio::time::sleep(SETTLE).await;
    Ok(IdleSample {
        before_kib,
        after_kib,
        connections: options.connections,
    })
}

// ----- durable -----

/// What one closed-loop measurement of the durable section saw.
struct LoopSample {
    rate: f64,
    latency: Histogram<u64>,
    /// Server CPU-seconds per second over the window.
    server_cpu: f64,
}

/// The three closed loops of the durable section.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Loop {
    /// `GET /api/v1/users/me`: an authenticated request that writes nothing (the baseline).
    NoOp,
    /// `POST /api/v1/channels/{id}/messages`, each client awaiting its 201.
    Rest,
    /// The WebSocket's `post` frame, each socket keeping `window` posts awaiting their ack.
    Socket,
}

impl Loop {
    fn label(self) -> &'static str {
        match self {
            Loop::NoOp => "no-op GET /users/me",
            Loop::Rest => "REST posts",
            Loop::Socket => "WebSocket posts",
        }
    }
}

/// Returns per-run REST posts/s (with latency) and the Markdown section.
async fn durable(
    options: &HubOptions,
    concord: &ChildServer,
    team: &Team,
) -> anyhow::Result<(Vec<(f64, Histogram<u64>)>, String)> {
    let n = options.durable_posters as usize;
    let sockets_n = (options.durable_sockets as usize).min(team.members.len());
    let window = options.durable_window as usize;
    let http: Vec<reqwest::Client> = (0..n)
        .map(|_| {
            reqwest::Client::builder()
                .no_proxy()
                .tcp_nodelay(true)
                .timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(1)
                .build()
                .context("building an HTTP client")
        })
        .collect::<anyhow::Result<_>>()?;
    let endpoint = endpoint(concord, true);
    let tokens: Vec<String> = team.members.iter().map(|m| m.access.clone()).collect();
    // Each posting socket posts in a channel of its own: in the shared channel every posting
    // socket would also receive every other socket's posts, 16 times the fan-out for the
    // bench's readers, and be cut off as a slow reader (the hub's bounded queues at work).
    let socket_channels = {
        let setup = team::client()?;
        let mut ids = Vec::with_capacity(sockets_n);
        for (i, token) in tokens.iter().take(sockets_n).enumerate() {
            let created = team::call(
                &setup,
                &concord.base(),
                &format!("/api/v1/workspaces/{}/channels", team.workspace_id),
                Some(token),
                json!({"name": format!("durable-socket-{i}"), "visibility": "public"}),
                201,
            )
            .await?;
            ids.push(team::field(&created, "id")?);
        }
        ids
    };
    let loops = [Loop::NoOp, Loop::Rest, Loop::Socket];
    let mut samples: Vec<Vec<LoopSample>> = vec![Vec::new(), Vec::new(), Vec::new()];
    let pid = concord.pid;
    for run in 0..=options.runs {
        // Run 0 is the warm-up.
        let seconds = if run == 0 {
            options.warmup_seconds.max(1)
        } else {
            options.seconds
        };
        for (k, kind) in loops.iter().copied().enumerate() {
            let cpu_before = child::thread_ticks(pid);
            let started = Instant::now();
            let deadline = started + Duration::from_secs(seconds);
            let (count, latency) = match kind {
                Loop::Socket => {
                    // Opened for each measurement: idle sockets would fill their queues
                    // with the other loops' posts and be cut off as slow readers.
                    let sockets = clients::connect_many(
                        &endpoint,
                        sockets_n,
                        0,
                        &tokens,
                        CONNECT_CONCURRENCY,
                    )
                    .await?;
                    let deadline = Instant::now() + Duration::from_secs(seconds);
                    socket_loop(sockets, &socket_channels, window, deadline, run).await?
                }
                _ => rest_loop(kind, &http, concord, team, deadline, run).await?,
            };
            let elapsed = started.elapsed().as_secs_f64();
            let cpu = child::cpu_between(&cpu_before, &child::thread_ticks(pid));
            // Socket posts count only acks inside the window (connecting and the final
            // drain are outside it); the CPU figure covers all of it.
            let rate = if kind == Loop::Socket {
                count as f64 / seconds as f64
            } else {
                count as f64 / elapsed
            };
            let server_cpu: f64 = cpu.iter().map(|(_, s)| s).sum::<f64>() / elapsed;
            if run == 0 {
                eprintln!("durable warm-up, {}: {rate:.0}/s", kind.label());
                continue;
            }
            eprintln!(
                "run {run}/{}: durable, {}: {rate:.0}/s, p50 {} p99 {}; server CPU {}",
                options.runs,
                kind.label(),
                ms(latency.value_at_quantile(0.5)),
                ms(latency.value_at_quantile(0.99)),
                cpu_summary(&cpu, elapsed)
            );
            samples[k].push(LoopSample {
                rate,
                latency,
                server_cpu,
            });
        }
    }
    let noop = median(samples[0].iter().map(|s| s.rate).collect());
    let mut section = format!(
        "\n### Durable posts into one channel\n\n\
         Closed loops, alternating within each run: {n} keep-alive HTTP clients (one member \
         each), then {sockets_n} WebSocket sockets of members keeping {window} posts each \
         awaiting their ack (every posting socket also receives every post).\n\n\
         | Measured | Per second (median) | Range over runs | × no-op | p50 | p99 | max | Server CPU (cores) | Server CPU ms per request |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|--:|\n"
    );
    for (k, kind) in loops.iter().copied().enumerate() {
        let s = &samples[k];
        let rates: Vec<f64> = s.iter().map(|x| x.rate).collect();
        let rate = median(rates.clone());
        let hs: Vec<&Histogram<u64>> = s.iter().map(|x| &x.latency).collect();
        let cpu = median(s.iter().map(|x| x.server_cpu).collect());
        let per_request = median(
            s.iter()
                .map(|x| 1000.0 * x.server_cpu / x.rate.max(f64::MIN_POSITIVE))
                .collect(),
        );
        section.push_str(&format!(
            "| {} | {:.0} | {:.0}–{:.0} | {:.2} | {} | {} | {} | {:.2} | {:.3} |\n",
            kind.label(),
            rate,
            rates.iter().copied().fold(f64::INFINITY, f64::min),
            rates.iter().copied().fold(0.0, f64::max),
            rate / noop.max(f64::MIN_POSITIVE),
            ms(median_q(&hs, 0.5)),
            ms(median_q(&hs, 0.99)),
            ms(s.iter().map(|x| x.latency.max()).max().unwrap_or(0)),
            cpu,
            per_request,
        ));
    }
    let rest = std::mem::take(&mut samples[1])
        .into_iter()
        .map(|s| (s.rate, s.latency))
        .collect();
    Ok((rest, section))
}

/// `http.len()` clients in a closed loop until `deadline`: the no-op GET or a REST post.
async fn rest_loop(
    kind: Loop,
    http: &[reqwest::Client],
    concord: &ChildServer,
    team: &Team,
    deadline: Instant,
    run: u32,
) -> anyhow::Result<(u64, Histogram<u64>)> {
    let url = Arc::new(match kind {
        Loop::NoOp => format!("{}/api/v1/users/me", concord.base()),
        _ => format!(
            "{}/api/v1/channels/{}/messages",
            concord.base(),
            team.channel_id
        ),
    });
    let mut workers = JoinSet::new();
    for (i, client) in http.iter().enumerate() {
        let (client, url) = (client.clone(), url.clone());
        let token = team.members[i].access.clone();
        workers.spawn(async move {
            let mut latency = clients::histogram()?;
            let mut count = 0u64;
            for seq in 0..MAX_POSTS {
                let began = Instant::now();
                if began >= deadline {
                    break;
                }
                let request = match kind {
                    Loop::NoOp => client.get(url.as_str()),
                    _ => client
                        .post(url.as_str())
                        .json(&json!({"text": format!("durable {i} {seq} {run}")})),
                };
                let response = request
                    .bearer_auth(&token)
                    .send()
                    .await
                    .context("sending a request")?;
                let status = response.status();
                let body = response.bytes().await.context("reading the answer")?;
                let expected = if kind == Loop::NoOp { 200 } else { 201 };
                if status.as_u16() != expected {
                    bail!(
                        "{} answered {status}: {}",
                        kind.label(),
                        String::from_utf8_lossy(&body[..body.len().min(300)])
                    );
                }
                latency.saturating_record(began.elapsed().as_micros() as u64);
                count += 1;
            }
            anyhow::Ok((count, latency))
        });
    }
    let mut total = clients::histogram()?;
    let mut count = 0;
    while let Some(joined) = workers.join_next().await {
        let (c, h) = joined.context("client task")??;
        count += c;
        total.add(&h).context("merging histograms")?;
    }
    Ok((count, total))
}

/// Each socket keeps `window` posts awaiting their ack until `deadline`, then waits for the
/// acks still due and closes; returns the acks received before `deadline` and their
/// latencies (post sent to its ack).
async fn socket_loop(
    sockets: Vec<clients::Ws>,
    channel_ids: &[String],
    window: usize,
    deadline: Instant,
    run: u32,
) -> anyhow::Result<(u64, Histogram<u64>)> {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let mut workers = JoinSet::new();
    for (i, mut ws) in sockets.into_iter().enumerate() {
        let channel_id = channel_ids[i].clone();
        workers.spawn(async move {
            let mut latency = clients::histogram()?;
            let mut sent_at: std::collections::HashMap<String, Instant> =
                std::collections::HashMap::new();
            let mut count = 0u64;
            let mut seq = 0u64;
            loop {
                let now = Instant::now();
                if now < deadline {
                    while sent_at.len() < window {
                        let id = format!("d{run}-{i}-{seq}");
                        let text = format!("durable socket {i} {seq} {run}");
                        let frame = clients::post_frame(&channel_id, &text, &id);
                        ws.feed(Message::text(frame)).await.context("posting")?;
                        sent_at.insert(id, Instant::now());
                        seq += 1;
                    }
                    ws.flush().await.context("posting")?;
                } else if sent_at.is_empty() {
                    break;
                }
                let wait = if now < deadline {
                    deadline - now
                } else {
                    DRAIN
                };
                let next = match tokio::time::timeout(wait, ws.next()).await {
                    Ok(next) => next,
                    Err(_) if now >= deadline => bail!("{} acks never came", sent_at.len()),
                    Err(_) => continue,
                };
                let text = match next {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => bail!("reading a socket: {e}"),
                    None => bail!("the server closed a posting socket"),
                };
                let t = text.as_str();
                if t.starts_with(r#"{"type":"error""#) {
                    bail!("a post was refused: {t}");
                }
                if !t.starts_with(r#"{"type":"ack""#) {
                    continue;
                }
                let frame: serde_json::Value = serde_json::from_str(t).context("an ack")?;
                let id = frame["client_msg_id"].as_str().unwrap_or_default();
                if let Some(sent) = sent_at.remove(id) {
                    let at = Instant::now();
                    if at <= deadline {
                        count += 1;
                        latency.saturating_record((at - sent).as_micros() as u64);
                    }
                }
            }
            let _ = ws.close(None).await;
            anyhow::Ok((count, latency))
        });
    }
    let mut total = clients::histogram()?;
    let mut count = 0;
    while let Some(joined) = workers.join_next().await {
        let (c, h) = joined.context("posting socket")??;
        count += c;
        total.add(&h).context("merging histograms")?;
    }
    Ok((count, total))
}

// ----- fan-out and latency -----

fn endpoint(server: &ChildServer, concord: bool) -> Endpoint {
    Endpoint {
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], server.port)),
        path: if concord {
            "/api/v1/ws".into()
        } else {
            "/".into()
        },
        concord,
    }
}

async fn connect_target(
    options: &HubOptions,
    server: &ChildServer,
    team: &Team,
    clock: Clock,
    window: Arc<Window>,
    first_index: usize,
) -> anyhow::Result<Target> {
    let is_concord = server.name == "concord";
    let endpoint = endpoint(server, is_concord);
    let tokens: Vec<String> = if is_concord {
        team.members.iter().map(|m| m.access.clone()).collect()
    } else {
        Vec::new()
    };
    let members = options.members as usize;
    let started = Instant::now();
    let receivers = clients::connect_many(
        &endpoint,
        members,
        first_index,
        &tokens[..tokens.len().min(members)],
        CONNECT_CONCURRENCY,
    )
    .await?;
    let posters = clients::connect_many(
        &endpoint,
        options.posters as usize,
        first_index + members,
        &tokens[..tokens.len().min(members)],
        CONNECT_CONCURRENCY,
    )
    .await?;
    eprintln!(
        "  {} receivers and {} posters connected to {} in {:.1} s",
        receivers.len(),
        posters.len(),
        server.name,
        started.elapsed().as_secs_f64()
    );
    Ok(Target {
        name: server.name,
        pid: server.pid,
        receivers: Receivers::start(receivers, clock, window)?,
        posters: Posters::start(posters),
        channel_id: team.channel_id.clone(),
    })
}

/// Returns the section and the raw server's median relayed posts/s (fan-out).
async fn flows(
    options: &HubOptions,
    parts: &[Part],
    raw: &ChildServer,
    concord: &ChildServer,
    team: &Team,
    clock: Clock,
) -> anyhow::Result<(String, Option<f64>)> {
    let raw_window = Arc::new(Window::default());
    let concord_window = Arc::new(Window::default());
    let targets = [
        connect_target(options, raw, team, clock, raw_window.clone(), 0).await?,
        connect_target(options, concord, team, clock, concord_window.clone(), 3).await?,
    ];
    let windows = [raw_window, concord_window];
    tokio::time::sleep(SETTLE).await;
    let mut fan: [Vec<FlowSample>; 2] = Default::default();
    let mut lat: [Vec<FlowSample>; 2] = Default::default();
    let mut next_seq = 0u64;
    for run in 1..=options.runs {
        for (i, target) in targets.iter().enumerate() {
            if parts.contains(&Part::Fanout) {
                let s = flow(options, target, &windows[i], clock, None, &mut next_seq).await?;
                log_flow(run, options.runs, "fan-out", target.name, &s);
                fan[i].push(s);
            }
        }
        for (i, target) in targets.iter().enumerate() {
            if parts.contains(&Part::Latency) {
                let rate = Some(options.rate);
                let s = flow(options, target, &windows[i], clock, rate, &mut next_seq).await?;
                log_flow(run, options.runs, "latency", target.name, &s);
                lat[i].push(s);
            }
        }
    }
    for t in targets {
        t.receivers.close().await;
    }
    let names = [
        "raw tokio-tungstenite broadcast (baseline)",
        "Concord `/api/v1/ws` (persisted)",
    ];
    let mut out = String::new();
    let mut relay = None;
    if parts.contains(&Part::Fanout) {
        out.push_str(&format!(
            "\n### Fan-out: 1 channel × {} members, highest sustainable rate\n\n\
             {} posting sockets; posting pauses whenever {} posts are not yet delivered to the \
             slowest receiver.\n\n\
             | Server | Deliveries/s (median) | Range over runs | Posts/s | p50 | p99 | max | Ratio to raw | Server CPU | Bench CPU |\n\
             |---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
            options.members, options.posters, options.in_flight
        ));
        for i in 0..2 {
            let ratio = if i == 0 {
                "1 (baseline)".to_owned()
            } else {
                let r: Vec<f64> = fan[1]
                    .iter()
                    .zip(&fan[0])
                    .map(|(c, r)| {
                        c.deliveries_per_second() / r.deliveries_per_second().max(f64::MIN_POSITIVE)
                    })
                    .collect();
                format!("{:.2}", median(r))
            };
            out.push_str(&flow_row(names[i], &fan[i], &ratio));
        }
        relay = Some(median(
            fan[0].iter().map(FlowSample::posts_per_second).collect(),
        ));
    }
    if parts.contains(&Part::Latency) {
        out.push_str(&format!(
            "\n### Post-to-delivery latency: 1 channel × {} members, {} posts/s paced open loop\n\n\
             | Server | Deliveries/s (median) | Range over runs | Posts/s | p50 | p99 | max | Ratio to raw | Server CPU | Bench CPU |\n\
             |---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
            options.members, options.rate
        ));
        for i in 0..2 {
            out.push_str(&flow_row(
                names[i],
                &lat[i],
                if i == 0 { "1 (baseline)" } else { "" },
            ));
        }
    }
    let lost: u64 = fan
        .iter()
        .chain(lat.iter())
        .flatten()
        .map(|s| s.missing)
        .sum();
    if lost > 0 {
        out.push_str(&format!(
            "\nThe slowest receivers still missed {lost} posts (summed over measurements) \
             {DRAIN:?} after posting stopped.\n"
        ));
    }
    out.push_str(
        "\nLatency: from the poster's send time (carried in the text) to the receiver reading \
         the frame, over every receiver, texts sent inside the window; p50/p99 are medians over \
         runs, max the largest of any run. CPU: busy cores (CPU seconds per second) of the \
         server process and of the bench process (all the clients) during the window.\n",
    );
    Ok((out, relay))
}

fn flow_row(name: &str, samples: &[FlowSample], ratio: &str) -> String {
    let d: Vec<f64> = samples
        .iter()
        .map(FlowSample::deliveries_per_second)
        .collect();
    let hs: Vec<&Histogram<u64>> = samples.iter().map(|s| &s.latency).collect();
    let dead: usize = samples.iter().map(|s| s.dead).max().unwrap_or(0);
    let name = if dead > 0 {
        format!("{name} ({dead} receivers cut off)")
    } else {
        name.to_owned()
    };
    format!(
        "| {name} | {:.0} | {:.0}–{:.0} | {:.0} | {} | {} | {} | {ratio} | {:.2} | {:.2} |\n",
        median(d.clone()),
        d.iter().copied().fold(f64::INFINITY, f64::min),
        d.iter().copied().fold(0.0, f64::max),
        median(samples.iter().map(FlowSample::posts_per_second).collect()),
        ms(median_q(&hs, 0.5)),
        ms(median_q(&hs, 0.99)),
        ms(samples.iter().map(|s| s.latency.max()).max().unwrap_or(0)),
        median(samples.iter().map(|s| s.server_cpu).collect()),
        median(samples.iter().map(|s| s.bench_cpu).collect()),
    )
}

fn log_flow(run: u32, runs: u32, what: &str, name: &str, s: &FlowSample) {
    eprintln!(
        "run {run}/{runs}: {what:<8} {name:<10} {:>9.0} deliveries/s, {:>6.0} posts/s, p50 {} p99 {} max {}, \
         server {:.2} cores, bench {:.2} cores{}",
        s.deliveries_per_second(),
        s.posts_per_second(),
        ms(s.latency.value_at_quantile(0.5)),
        ms(s.latency.value_at_quantile(0.99)),
        ms(s.latency.max()),
        s.server_cpu,
        s.bench_cpu,
        if s.dead > 0 {
            format!(", {} receivers cut off", s.dead)
        } else {
            String::new()
        }
    );
}

/// One measurement: posts for warm-up + window, gated (`rate` None) or paced at `rate`/s.
async fn flow(
    options: &HubOptions,
    target: &Target,
    window: &Window,
    clock: Clock,
    rate: Option<u64>,
    next_seq: &mut u64,
) -> anyhow::Result<FlowSample> {
    let receivers = &target.receivers;
    let posters = &target.posters.posters;
    let base_received = receivers.min_received();
    let acks_before = target.posters.acks();
    let t0 = clock.micros();
    let start = t0 + options.warmup_seconds * 1_000_000;
    let end = start + options.seconds * 1_000_000;
    window.set(start, end);
    // Discard anything left from an earlier measurement.
    receivers.take()?;
    let mut sent = 0u64;
    let mut sent_in_window = 0u64;
    let mut dropped = 0u64;
    let mut cpu_before = None;
    let paced_from = Instant::now();
    for _ in 0..MAX_POSTS {
        let now = clock.micros();
        if now >= end {
            break;
        }
        if cpu_before.is_none() && now >= start {
            cpu_before = Some((
                child::thread_ticks(target.pid),
                child::thread_ticks(std::process::id()),
                Instant::now(),
            ));
        }
        let burst = match rate {
            Some(rate) => {
                let due = sent * 1_000_000 / rate;
                let at = paced_from + Duration::from_micros(due);
                tokio::time::sleep_until(at.into()).await;
                1
            }
            None => {
                let delivered = receivers.min_received().saturating_sub(base_received);
                let allowed = (delivered + options.in_flight).saturating_sub(sent);
                if allowed == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                allowed
            }
        };
        for _ in 0..burst {
            let now = clock.micros();
            let poster = (*next_seq % posters.len() as u64) as usize;
            let text = clients::text(now, poster, *next_seq);
            let frame = clients::post_frame(&target.channel_id, &text, &format!("b{}", *next_seq));
            *next_seq += 1;
            sent += 1;
            if now >= start && now < end {
                sent_in_window += 1;
            }
            if posters[poster].queue.try_send(frame).is_err() {
                dropped += 1;
            }
        }
    }
    let (cpu_server, cpu_bench, cpu_started) = match cpu_before {
        Some(taken) => taken,
        None => (
            child::thread_ticks(target.pid),
            child::thread_ticks(std::process::id()),
            Instant::now(),
        ),
    };
    let cpu_seconds = cpu_started.elapsed().as_secs_f64().max(1e-9);
    let server_cpu: f64 = child::cpu_between(&cpu_server, &child::thread_ticks(target.pid))
        .iter()
        .map(|(_, s)| s)
        .sum::<f64>()
        / cpu_seconds;
    let bench_cpu: f64 = child::cpu_between(&cpu_bench, &child::thread_ticks(std::process::id()))
        .iter()
        .map(|(_, s)| s)
        .sum::<f64>()
        / cpu_seconds;
    let server_threads = child::cpu_between(&cpu_server, &child::thread_ticks(target.pid));
    eprintln!(
        "  {} threads during the window: {}",
        target.name,
        cpu_summary(&server_threads, cpu_seconds)
    );
    // Let every receiver get everything sent, within a bound.
    let target_received = base_received + sent - dropped;
    let drain_deadline = Instant::now() + DRAIN;
    while receivers.min_received() < target_received && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (deliveries, latency) = receivers.take()?;
    let dead = receivers.dead();
    if dropped > 0 {
        eprintln!("  {dropped} posts were dropped: the posting sockets' queues were full");
    }
    if target.posters.errors() > 0 {
        eprintln!("  {} error frames so far", target.posters.errors());
    }
    if target.name == "concord" {
        let acks = target.posters.acks() - acks_before;
        if acks < sent - dropped {
            eprintln!(
                "  {acks} of {} posts acknowledged by the end of the drain",
                sent - dropped
            );
        }
    }
    let short = receivers.min_received() < target_received;
    if short {
        eprintln!(
            "  the slowest receiver is missing {} posts after the drain",
            target_received - receivers.min_received()
        );
    }
    Ok(FlowSample {
        posts: sent_in_window,
        deliveries,
        missing: target_received.saturating_sub(receivers.min_received()),
        seconds: options.seconds as f64,
        latency,
        server_cpu,
        bench_cpu,
        dead,
    })
}

fn cpu_summary(threads: &[(String, f64)], seconds: f64) -> String {
    let total: f64 = threads.iter().map(|(_, s)| s).sum();
    let top: Vec<String> = threads
        .iter()
        .take(4)
        .map(|(n, s)| format!("{n} {:.2}", s / seconds))
        .collect();
    format!("{:.2} cores ({})", total / seconds, top.join(", "))
}

// ----- statistics -----

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

fn median_q(hs: &[&Histogram<u64>], q: f64) -> u64 {
    median(hs.iter().map(|h| h.value_at_quantile(q) as f64).collect()) as u64
}

fn ms(micros: u64) -> String {
    if micros >= 10_000 {
        format!("{:.0} ms", micros as f64 / 1000.0)
    } else if micros >= 1000 {
        format!("{:.1} ms", micros as f64 / 1000.0)
    } else {
        format!("{micros} µs")
    }
}
