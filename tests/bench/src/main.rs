//! `concord-bench`: load benchmarks that run a real Concord server in-process and measure it
//! against a baseline taken in the same run, so the figures in BENCHMARKS.md are ratios that
//! hold from one machine to another. Only loopback traffic; progress goes to stderr and the
//! Markdown result table to stdout.

mod auth;
mod load;
mod report;
mod server;

use clap::{Args, Parser, Subcommand};

/// Concord benchmarks.
#[derive(Parser)]
#[command(name = "concord-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign-in (against raw argon2id) and authenticated no-op requests (against /healthz).
    Auth(RunOptions),
}

/// How long and how hard to measure.
#[derive(Args, Clone, Copy, Debug)]
pub struct RunOptions {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
    /// Runs of every measurement; medians are taken across them.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,
    /// Concurrent clients (each a keep-alive HTTP client), and argon2 calls at a time.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    /// Seconds of discarded warm-up per measurement before the first run.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=60))]
    pub warmup_seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Auth(options) => {
            let table = auth::run(options).await?;
            println!("{table}");
        }
    }
    Ok(())
}
