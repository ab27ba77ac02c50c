//! The closed-loop load driver: a fixed number of workers each repeat one operation until a
//! deadline (and at most a fixed count), recording every latency in an HDR histogram.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use hdrhistogram::Histogram;
use reqwest::StatusCode;
use tokio::task::JoinSet;

/// Upper bound on operations per worker in one measurement, whatever the duration.
const MAX_OPS_PER_WORKER: u64 = 50_000_000;
/// Longest latency the histograms hold (longer ones saturate), in microseconds.
const MAX_LATENCY_MICROS: u64 = 60_000_000;
/// Longest one HTTP request may take before the measurement fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One worker's repeated operation.
pub enum Op {
    /// Verify `password` against the PHC string `hash` on the blocking pool.
    Argon2 {
        /// The stored hash.
        hash: Arc<String>,
        /// The right password.
        password: Arc<String>,
    },
    /// `POST url` with a JSON body, expecting 200.
    PostJson {
        /// Its own keep-alive client.
        client: reqwest::Client,
        /// Target.
        url: String,
        /// Body.
        body: Arc<serde_json::Value>,
    },
    /// `GET url`, with a bearer token if given, expecting 200.
    Get {
        /// Its own keep-alive client.
        client: reqwest::Client,
        /// Target.
        url: String,
        /// Bearer access token.
        bearer: Option<String>,
    },
}

impl Op {
    async fn once(&self) -> anyhow::Result<()> {
        match self {
            Op::Argon2 { hash, password } => {
                let (hash, password) = (hash.clone(), password.clone());
                // What the server's `PasswordHasher::verify` does: parse the PHC string, verify.
                let ok = tokio::task::spawn_blocking(move || {
                    PasswordHash::new(&hash)
                        .map(|parsed| {
                            Argon2::default()
                                .verify_password(password.as_bytes(), &parsed)
                                .is_ok()
                        })
                        .unwrap_or(false)
                })
                .await
                .context("argon2 task")?;
                if !ok {
                    bail!("argon2 verification failed");
                }
                Ok(())
            }
            Op::PostJson { client, url, body } => {
                let response = client.post(url).json(body.as_ref()).send().await?;
                expect_ok(response, url).await
            }
            Op::Get {
                client,
                url,
                bearer,
            } => {
                let mut request = client.get(url);
                if let Some(token) = bearer {
                    request = request.bearer_auth(token);
                }
                expect_ok(request.send().await?, url).await
            }
        }
    }
}

async fn expect_ok(response: reqwest::Response, url: &str) -> anyhow::Result<()> {
    let status = response.status();
    // Read the whole body so the connection goes back to the pool.
    let body = response.bytes().await?;
    if status != StatusCode::OK {
        bail!(
            "{url} answered {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
    }
    Ok(())
}

/// A keep-alive HTTP client for loopback only (no proxy, no TLS).
pub fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(4)
        .build()
        .context("building the HTTP client")
}

/// What one measurement saw.
pub struct Sample {
    /// Operations completed.
    pub count: u64,
    /// From the start until the last worker finished.
    pub elapsed: Duration,
    /// Latencies in microseconds.
    pub latency: Histogram<u64>,
}

impl Sample {
    /// Completed operations per second.
    pub fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3).context("creating a histogram")
}

/// Runs every op in `ops` in its own worker, each repeating until `duration` has passed.
pub async fn measure(ops: Vec<Op>, duration: Duration) -> anyhow::Result<Sample> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = JoinSet::new();
    for op in ops {
        workers.spawn(async move {
            let mut latency = histogram()?;
            let mut count = 0u64;
            for _ in 0..MAX_OPS_PER_WORKER {
                let began = Instant::now();
                if began >= deadline {
                    break;
                }
                op.once().await?;
                let micros = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
                latency.saturating_record(micros.max(1));
                count += 1;
            }
            anyhow::Ok((count, latency))
        });
    }
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
