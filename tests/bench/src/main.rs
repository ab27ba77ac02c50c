//! `concord-bench`: load benchmarks that run a real Concord server in-process and measure it
//! against a baseline taken in the same run, so the figures in BENCHMARKS.md are ratios that
//! hold from one machine to another. Only loopback traffic; progress goes to stderr and the
//! Markdown result table to stdout. The real-time hub benchmarks run Concord and a raw
//! WebSocket baseline as child processes instead, so their memory can be measured alone.

mod auth;
mod child;
mod clients;
mod dashboard;
mod decisions;
mod fanout;
mod files;
mod load;
mod mining;
mod raw;
mod report;
mod route;
mod route_server;
mod routing;
mod server;
mod team;
mod workflows;

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
    /// Every real-time hub benchmark (idle, durable, fanout, latency) on one setup.
    Hub(fanout::HubOptions),
    /// Deliveries/s, 1 channel x N members, at the highest sustainable post rate, vs raw.
    Fanout(fanout::HubOptions),
    /// Post-to-delivery latency at a paced post rate, vs raw.
    Latency(fanout::HubOptions),
    /// Resident memory per idle WebSocket connection, vs raw.
    Idle(fanout::HubOptions),
    /// Durable posts/s into one channel from concurrent REST posters.
    Durable(fanout::HubOptions),
    /// Upload and download throughput of one large file against `cp` of it.
    Files(files::FilesOptions),
    /// Workflow instances, tasks and timers per second, vs durable chat posts.
    Workflows(workflows::WorkflowOptions),
    /// Decisions per second of a 50-rule decision table, vs the rules as a Rust function.
    Decisions(decisions::DecisionOptions),
    /// The learned router's training time and accuracy, vs the majority and keyword rules.
    Routing(routing::RoutingOptions),
    /// Routing decisions/s and latency per rule-based policy over a generated group, vs a
    /// loop that picks the fewest open tasks.
    Route(route::RouteOptions),
    /// What a routing block adds to opening a user task in the server, with the group's
    /// snapshot gathered from the database, vs the same task without routing.
    RouteServer(route_server::RouteServerOptions),
    /// The workflow event log export (XES, OCEL) in events/s and MB/s, vs the CSV export of
    /// the same events, and the mining view of the process.
    Mining(mining::MiningOptions),
    /// A process's dashboard over 100,000 completed instances, vs the process's instance
    /// list.
    Dashboard(dashboard::DashboardOptions),
    /// The raw baseline server (started by the hub benchmarks as a child process).
    #[command(hide = true)]
    RawServer {
        /// Loopback port to listen on.
        #[arg(long)]
        port: u16,
    },
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
    /// Concurrent clients (each a keep-alive HTTP client).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    /// argon2 calls at a time in the baseline; defaults to what the server itself runs at
    /// most, the smaller of `--concurrency` and its hashing cap (2 × cores).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub argon2_parallelism: Option<u32>,
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
        Command::Hub(options) => {
            use fanout::Part::*;
            println!(
                "{}",
                fanout::run(options, &[Idle, Durable, Fanout, Latency]).await?
            );
        }
        Command::Fanout(options) => {
            println!("{}", fanout::run(options, &[fanout::Part::Fanout]).await?);
        }
        Command::Latency(options) => {
            println!("{}", fanout::run(options, &[fanout::Part::Latency]).await?);
        }
        Command::Idle(options) => {
            println!("{}", fanout::run(options, &[fanout::Part::Idle]).await?);
        }
        Command::Durable(options) => {
            println!("{}", fanout::run(options, &[fanout::Part::Durable]).await?);
        }
        Command::Files(options) => {
            println!("{}", files::run(options).await?);
        }
        Command::Workflows(options) => {
            println!("{}", workflows::run(options).await?);
        }
        Command::Decisions(options) => {
            println!("{}", decisions::run(options)?);
        }
        Command::Routing(options) => {
            println!("{}", routing::run(options)?);
        }
        Command::Route(options) => {
            println!("{}", route::run(options)?);
        }
        Command::RouteServer(options) => {
            println!("{}", route_server::run(options).await?);
        }
        Command::Mining(options) => {
            println!("{}", mining::run(options).await?);
        }
        Command::Dashboard(options) => {
            println!("{}", dashboard::run(options).await?);
        }
        Command::RawServer { port } => raw::serve(port).await?,
    }
    Ok(())
}
