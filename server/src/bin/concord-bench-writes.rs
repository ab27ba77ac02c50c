//! Benchmark: audited and encrypted writes per second, as a ratio to the same writes with
//! encryption and audit switched off, measured in one run on the same database.
//!
//! Each write updates one account's email and display name through `Store::write` (the
//! group-commit writer) from many concurrent callers. The protected variant encrypts both
//! fields under the account's data key and records an audit entry (encrypted details, chained
//! and checkpointed at commit), encrypting and building the entry before the write reaches
//! the writer (`Keyring::seal_ahead`, `Auditor::prepare`) as a service does; the plain
//! variant stores the same bytes unencrypted and records nothing. Runs alternate, and the
//! medians are compared.
//!
//! Usage: concord-bench-writes [--writes N] [--concurrency C] [--runs R] [--database-url URL]

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use concord::audit::{Auditor, Event, Outcome};
use concord::crypto::{Kek, Keyring, Scope};
use concord::domain::UserId;
use concord::rbac::Actor;
use concord::store::{users, Store, StoreOptions, Tx};

struct Args {
    writes: usize,
    concurrency: usize,
    runs: usize,
    url: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        writes: 20_000,
        concurrency: 64,
        runs: 5,
        url: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--writes" => a.writes = value.parse()?,
            "--concurrency" => a.concurrency = value.parse()?,
            "--runs" => a.runs = value.parse()?,
            "--database-url" => a.url = Some(value),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

async fn run(
    store: &Store,
    auditor: Option<&Auditor>,
    accounts: &Arc<Vec<UserId>>,
    writes: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let store = store.clone();
        let auditor = auditor.cloned();
        let accounts = accounts.clone();
        let n = writes / concurrency;
        tasks.push(tokio::spawn(async move {
            for i in 0..n {
                let id = accounts[(worker * n + i) % accounts.len()];
                // The protected path encrypts and builds its audit entry before the write
                // reaches the writer, as the services do; the writer confirms the key version.
                let prepared = match &auditor {
                    Some(a) => {
                        let email = format!("person{i}@example.org");
                        let name = format!("Person {worker}-{i}");
                        let row = id.to_string();
                        let scope = Scope::User(id);
                        let keyring = a.keyring();
                        let e = keyring.seal_ahead(
                            &scope,
                            "users",
                            row.clone(),
                            "email",
                            email.as_bytes(),
                        )?;
                        let n = keyring.seal_ahead(
                            &scope,
                            "users",
                            row,
                            "display_name",
                            name.as_bytes(),
                        )?;
                        let event = a.prepare(
                            Event::by(&Actor::system(), "user.profile.update", Outcome::Allowed)
                                .target("user", id)
                                .subject(id)
                                .details(
                                    serde_json::json!({ "fields": ["email", "display_name"] }),
                                ),
                        )?;
                        Some((a.clone(), e, n, event))
                    }
                    None => None,
                };
                store
                    .write(move |tx: &mut Tx| {
                        Box::pin(async move {
                            let (email_v, name_v) = match prepared {
                                Some((a, e, n, event)) => {
                                    let e = a.keyring().finish(tx, e).await?;
                                    let n = a.keyring().finish(tx, n).await?;
                                    a.record_prepared(tx, event).await?;
                                    (e, n)
                                }
                                None => (
                                    format!("person{i}@example.org").into_bytes(),
                                    format!("Person {worker}-{i}").into_bytes(),
                                ),
                            };
                            users::reencrypt_profile(&mut tx.conn(), id, &email_v, &name_v).await?;
                            Ok::<_, concord::error::Error>(())
                        })
                    })
                    .await?;
            }
            Ok::<_, concord::error::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((writes / concurrency * concurrency) as f64 / started.elapsed().as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let dir = std::env::temp_dir().join(format!("concord-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let url = a
        .url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));
    let store = Store::open(
        &StoreOptions {
            url: url.clone(),
            max_connections: 16,
            max_batch: 512,
        },
        concord::events::Events::in_process(),
    )
    .await?;
    let keyring = Keyring::open(&store, Kek::generate(), 1 << 31).await?;
    store.set_checkpoint_signer(Arc::new(keyring.clone()), 1000);
    let auditor = Auditor::new(keyring.clone());
    let accounts = Arc::new(concord::bench_support::seed_accounts(&store, &keyring, 1000).await?);
    // Warm up: load every account's key once, as a long-running server would have.
    run(&store, Some(&auditor), &accounts, 2000, a.concurrency).await?;
    run(&store, None, &accounts, 2000, a.concurrency).await?;
    let (mut plain, mut protected) = (Vec::new(), Vec::new());
    for _ in 0..a.runs {
        plain.push(run(&store, None, &accounts, a.writes, a.concurrency).await?);
        protected.push(run(&store, Some(&auditor), &accounts, a.writes, a.concurrency).await?);
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    let (p, q) = (median(plain.clone()), median(protected.clone()));
    println!("backend: {}", url.split(':').next().unwrap_or("?"));
    println!(
        "writes per run: {}, concurrency: {}, runs: {}",
        a.writes, a.concurrency, a.runs
    );
    println!("plain writes/s (median):               {p:.0}  {plain:.0?}");
    println!("audited+encrypted writes/s (median):   {q:.0}  {protected:.0?}");
    println!("ratio: {:.2}", q / p);
    Ok(())
}
