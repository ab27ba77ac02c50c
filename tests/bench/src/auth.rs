//! The `auth` benchmark: sign-in throughput against raw argon2id verification, and
//! authenticated no-op requests (`GET /api/v1/users/me`) against `GET /healthz`, on one
//! in-process server, with each measured pair taken back to back in every run.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, ensure, Context};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
use serde_json::json;

use crate::load::{self, Op, Sample};
use crate::report::{self, Row};
use crate::server::Server;
use crate::RunOptions;

const EMAIL: &str = "bench-admin@example.org";
const DISPLAY_NAME: &str = "Bench Admin";
const PASSWORD: &str = "correct horse battery staple bench";

/// What is measured, in the order each run measures it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Argon2,
    Login,
    Healthz,
    Me,
}

const KINDS: [Kind; 4] = [Kind::Argon2, Kind::Login, Kind::Healthz, Kind::Me];

impl Kind {
    fn label(self, argon2_parallelism: usize) -> String {
        match self {
            Kind::Argon2 => {
                format!("argon2id `verify_password`, {argon2_parallelism} at a time (baseline)")
            }
            Kind::Login => "`POST /api/v1/auth/login`".into(),
            Kind::Healthz => "`GET /healthz` (baseline)".into(),
            Kind::Me => "`GET /api/v1/users/me` with a bearer token".into(),
        }
    }

    fn index(self) -> usize {
        match self {
            Kind::Argon2 => 0,
            Kind::Login => 1,
            Kind::Healthz => 2,
            Kind::Me => 3,
        }
    }
}

/// Everything the workers need, prepared once.
struct Bench {
    base: String,
    clients: Vec<reqwest::Client>,
    /// Workers in the argon2 baseline.
    argon2_parallelism: usize,
    hash: Arc<String>,
    password: Arc<String>,
    login_body: Arc<serde_json::Value>,
}

/// Runs the benchmark on a fresh in-process server and returns the Markdown report.
pub async fn run(options: RunOptions) -> anyhow::Result<String> {
    let server = Server::start().await?;
    let outcome = benchmark(&server, options).await;
    let stopped = server.stop().await;
    let report = outcome?;
    stopped?;
    Ok(report)
}

async fn benchmark(server: &Server, options: RunOptions) -> anyhow::Result<String> {
    let concurrency = options.concurrency as usize;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    // `App::build` lets the server run at most 2 × cores hashes at once; the baseline runs
    // argon2 as many at a time as the server can, so both oversubscribe the cores alike.
    let argon2_parallelism = options
        .argon2_parallelism
        .map_or(concurrency.min(2 * cores), |p| p as usize);
    let clients = (0..concurrency)
        .map(|_| load::client())
        .collect::<anyhow::Result<Vec<_>>>()?;
    create_admin(server, &clients[0]).await?;

    // The server hashes with `Argon2::default()`; the baseline uses the same parameters,
    // spelled out so a change of the crate's defaults cannot go unnoticed.
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| anyhow!("argon2 params: {e}"))?;
    ensure!(
        params == Params::default(),
        "argon2's default parameters are no longer m=19 MiB, t=2, p=1"
    );
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(PASSWORD.as_bytes(), &salt)
        .map_err(|e| anyhow!("hashing the baseline password: {e}"))?
        .to_string();

    let ctx = Bench {
        base: server.base.clone(),
        clients,
        argon2_parallelism,
        hash: Arc::new(hash),
        password: Arc::new(PASSWORD.to_owned()),
        login_body: Arc::new(json!({ "email": EMAIL, "password": PASSWORD })),
    };

    if options.warmup_seconds > 0 {
        eprintln!("warming up ({} s each)", options.warmup_seconds);
        for kind in KINDS {
            let ops = ops(&ctx, kind).await?;
            load::measure(ops, Duration::from_secs(options.warmup_seconds)).await?;
        }
    }

    let mut samples: [Vec<Sample>; 4] = Default::default();
    for run in 1..=options.runs {
        for kind in KINDS {
            let ops = ops(&ctx, kind).await?;
            let sample = load::measure(ops, Duration::from_secs(options.seconds)).await?;
            eprintln!(
                "run {run}/{}: {:<60} {:>10.1}/s",
                options.runs,
                kind.label(argon2_parallelism),
                sample.rate()
            );
            samples[kind.index()].push(sample);
        }
    }

    let rows = KINDS
        .iter()
        .map(|&kind| {
            let baseline = match kind {
                Kind::Login => Some((Kind::Argon2, "argon2id")),
                Kind::Me => Some((Kind::Healthz, "`/healthz`")),
                Kind::Argon2 | Kind::Healthz => None,
            };
            Row {
                label: kind.label(argon2_parallelism),
                samples: &samples[kind.index()],
                baseline: baseline.map(|(b, name)| (&samples[b.index()][..], name)),
            }
        })
        .collect::<Vec<_>>();
    let heading = format!(
        "`concord-bench auth`: {} runs × {} s, {} concurrent clients, {cores} cores, \
         argon2id m=19 MiB t=2 p=1 ({argon2_parallelism} at a time in the baseline; the \
         server hashes at most {} at a time).",
        options.runs,
        options.seconds,
        options.concurrency,
        2 * cores
    );
    Ok(report::table(&heading, &rows))
}

/// Creates the first administrator through the setup endpoint.
async fn create_admin(server: &Server, client: &reqwest::Client) -> anyhow::Result<()> {
    let response = client
        .post(format!("{}/api/v1/setup", server.base))
        .json(&json!({
            "token": server.setup_token,
            "email": EMAIL,
            "display_name": DISPLAY_NAME,
            "password": PASSWORD,
        }))
        .send()
        .await
        .context("POST /api/v1/setup")?;
    let status = response.status();
    let body = response.text().await?;
    ensure!(
        status == reqwest::StatusCode::CREATED,
        "setup answered {status}: {body}"
    );
    Ok(())
}

/// Signs in once and returns the access token.
async fn access_token(ctx: &Bench, client: &reqwest::Client) -> anyhow::Result<String> {
    let response = client
        .post(format!("{}/api/v1/auth/login", ctx.base))
        .json(ctx.login_body.as_ref())
        .send()
        .await
        .context("POST /api/v1/auth/login")?;
    let status = response.status();
    ensure!(status == reqwest::StatusCode::OK, "login answered {status}");
    let pair: serde_json::Value = response.json().await?;
    pair.get("access_token")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .context("login response without access_token")
}

/// One op per worker for `kind`: one per client for HTTP (for `Me`, each client signs in
/// first, not timed), `argon2_parallelism` for the argon2 baseline.
async fn ops(ctx: &Bench, kind: Kind) -> anyhow::Result<Vec<Op>> {
    let get = |client: &reqwest::Client, path: &str, bearer: Option<String>| Op::Get {
        client: client.clone(),
        url: format!("{}{path}", ctx.base),
        bearer,
    };
    Ok(match kind {
        Kind::Argon2 => (0..ctx.argon2_parallelism)
            .map(|_| Op::Argon2 {
                hash: ctx.hash.clone(),
                password: ctx.password.clone(),
            })
            .collect(),
        Kind::Login => ctx
            .clients
            .iter()
            .map(|client| Op::PostJson {
                client: client.clone(),
                url: format!("{}/api/v1/auth/login", ctx.base),
                body: ctx.login_body.clone(),
            })
            .collect(),
        Kind::Healthz => ctx
            .clients
            .iter()
            .map(|client| get(client, "/healthz", None))
            .collect(),
        Kind::Me => {
            let mut ops = Vec::with_capacity(ctx.clients.len());
            for client in &ctx.clients {
                let token = access_token(ctx, client).await?;
                ops.push(get(client, "/api/v1/users/me", Some(token)));
            }
            ops
        }
    })
}
