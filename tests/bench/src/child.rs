//! Servers run as child processes, so their resident memory and CPU time can be read
//! alone from `/proc/PID`: the `concord` binary next to this executable, and the raw
//! baseline (this executable's hidden `raw-server` subcommand). Both are stopped when the
//! handle is dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::server::TempDir;

/// How long a server may take to print that it is listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server process.
pub struct ChildServer {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// Its loopback port.
    pub port: u16,
    /// Concord's first-admin setup token (None for the raw server).
    pub setup_token: Option<String>,
    /// What it is, for messages.
    pub name: &'static str,
    dir: TempDir,
}

/// A free loopback port (bound then released; the child binds it right after).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating concord-bench")?;
    let dir = exe.parent().context("concord-bench has no directory")?;
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release -p concord-server -p concord-bench`",
            path.display()
        );
    }
    Ok(path)
}

impl ChildServer {
    /// Starts `concord serve` on a fresh data dir (and `database_url` if given), with
    /// sign-in throttling out of the way and hour-long access tokens.
    pub async fn concord(database_url: Option<&str>) -> anyhow::Result<ChildServer> {
        let binary = sibling("concord")?;
        let dir = TempDir::new()?;
        let port = free_port()?;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(dir.path());
        if let Some(url) = database_url {
            command.arg("--database-url").arg(url);
        }
        command
            .env("CONCORD_AUTH__LOCKOUT_THRESHOLD", "1000000")
            .env("CONCORD_AUTH__IP_LOCKOUT_THRESHOLD", "1000000")
            .env("CONCORD_AUTH__ACCESS_TOKEN_SECONDS", "3600");
        Self::spawn(
            command,
            "concord",
            port,
            dir,
            "Concord is listening on http://",
        )
        .await
    }

    /// Starts the raw baseline server.
    pub async fn raw() -> anyhow::Result<ChildServer> {
        let binary = std::env::current_exe().context("locating concord-bench")?;
        let dir = TempDir::new()?;
        let port = free_port()?;
        let mut command = Command::new(binary);
        command
            .arg("raw-server")
            .arg("--port")
            .arg(port.to_string());
        Self::spawn(command, "raw server", port, dir, "raw server listening on").await
    }

    async fn spawn(
        mut command: Command,
        name: &'static str,
        port: u16,
        dir: TempDir,
        ready: &str,
    ) -> anyhow::Result<ChildServer> {
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        // Argon2 allocates 19 MiB per hash; glibc's dynamic mmap threshold would keep those
        // blocks in its arenas after sign-ins (over 1 GiB for a few hundred), and freed arena
        // memory would then absorb the connections' allocations and hide them from VmRSS. A
        // fixed threshold returns large blocks to the system; small allocations are unaffected.
        command
            .env("MALLOC_MMAP_THRESHOLD_", "262144")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let pid = child.id().context("the child has no pid")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut setup_token = None;
        let waited = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some((_, token)) = line.trim().split_once("/setup?token=") {
                    setup_token = Some(token.to_owned());
                }
                if line.contains(ready) {
                    return anyhow::Ok(true);
                }
            }
            Ok(false)
        })
        .await;
        match waited {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => bail!(
                "{name} exited before listening; its log:\n{}",
                tail(&log_path)
            ),
            Ok(Err(e)) => bail!("reading {name}'s output: {e}"),
            Err(_) => bail!(
                "{name} did not listen within {START_TIMEOUT:?}; its log:\n{}",
                tail(&log_path)
            ),
        }
        // Keep reading stdout so a later line never meets a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(ChildServer {
            child,
            pid,
            port,
            setup_token,
            name,
            dir,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Resident memory (VmRSS) in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no VmRSS in {path}"))
    }

    /// SIGTERM, then SIGKILL if it does not exit in time.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        let pid = i32::try_from(self.pid).context("pid out of range")?;
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        if tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .is_err()
        {
            eprintln!("{} did not stop in {STOP_TIMEOUT:?}; killing it", self.name);
            let _ = self.child.kill().await;
        }
        drop(self.dir);
        Ok(())
    }
}

/// CPU time (user + system, in clock ticks) of each thread of `pid`, by thread name.
pub fn thread_ticks(pid: u32) -> Vec<(String, u64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // The name is in parentheses and may hold spaces; fields follow the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // After ')': state is field 3, utime field 14, stime field 15 (1-based in proc(5)).
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        out.push((name, ticks(11) + ticks(12)));
    }
    out
}

/// Per-thread-name CPU seconds between two snapshots, busiest first.
pub fn cpu_between(before: &[(String, u64)], after: &[(String, u64)]) -> Vec<(String, f64)> {
    let ticks_per_second = 100.0;
    let mut by_name: std::collections::BTreeMap<String, i64> = Default::default();
    for (name, t) in after {
        *by_name.entry(name.clone()).or_default() += *t as i64;
    }
    for (name, t) in before {
        *by_name.entry(name.clone()).or_default() -= *t as i64;
    }
    let mut v: Vec<(String, f64)> = by_name
        .into_iter()
        .map(|(n, t)| (n, t.max(0) as f64 / ticks_per_second))
        .filter(|(_, s)| *s > 0.0)
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
