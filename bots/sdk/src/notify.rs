//! CI-style notifications: run a command, then post how it went (success or failure, exit
//! code, duration, the last lines of its output) through an incoming webhook. The `notify`
//! example is this module behind a command line.

use std::collections::VecDeque;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::blocks;
use crate::{Error, Webhook};

/// How many of the output's last lines the notification shows by default.
pub const TAIL_LINES: usize = 20;

/// The most characters of output a notification carries (Block Kit's section limit is 3000).
const MAX_OUTPUT_CHARS: usize = 2500;

/// Why a command could not be reported on.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// No command was given.
    #[error("no command to run")]
    NoCommand,
    /// The command could not be started (not found, not executable).
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// The notification was refused or did not arrive.
    #[error("could not post the notification: {0}")]
    Post(#[from] Error),
}

/// How a command went.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The command line, as given.
    pub command: String,
    /// Its exit code (128 + the signal's number when a signal ended it).
    pub code: i32,
    /// How long it ran.
    pub duration: Duration,
    /// Its last lines of output (stdout and stderr, in the order they came).
    pub tail: Vec<String>,
}

impl Outcome {
    /// It exited with 0.
    pub fn succeeded(&self) -> bool {
        self.code == 0
    }
}

/// Runs `command` (a program and its arguments), keeping its last `tail_lines` lines of
/// output and, with `echo`, passing its output through to this process's stdout.
pub async fn run(
    command: &[String],
    tail_lines: usize,
    echo: bool,
) -> Result<Outcome, NotifyError> {
    let (program, args) = command.split_first().ok_or(NotifyError::NoCommand)?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| NotifyError::Spawn {
            program: program.clone(),
            source,
        })?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(256);
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(tokio::spawn(lines(out, tx.clone())));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(tokio::spawn(lines(err, tx.clone())));
    }
    drop(tx);
    let mut tail = VecDeque::with_capacity(tail_lines + 1);
    while let Some(line) = rx.recv().await {
        if echo {
            println!("{line}");
        }
        tail.push_back(line);
        if tail.len() > tail_lines {
            tail.pop_front();
        }
    }
    for r in readers {
        let _ = r.await;
    }
    let status = child.wait().await.map_err(|source| NotifyError::Spawn {
        program: program.clone(),
        source,
    })?;
    Ok(Outcome {
        command: command.join(" "),
        code: exit_code(&status),
        duration: started.elapsed(),
        tail: tail.into_iter().collect(),
    })
}

/// Sends each line of `from` (bytes that are not UTF-8 replaced, a line cut at 4 KiB), reading
/// to the end so the command never writes into a closed pipe.
async fn lines(from: impl AsyncRead + Unpin, to: tokio::sync::mpsc::Sender<String>) {
    const MAX_LINE: usize = 4096;
    let mut reader = BufReader::new(from);
    let mut line: Vec<u8> = Vec::new();
    loop {
        let chunk = match reader.fill_buf().await {
            Ok(chunk) if !chunk.is_empty() => chunk,
            _ => break,
        };
        let newline = chunk.iter().position(|b| *b == b'\n');
        let part = &chunk[..newline.unwrap_or(chunk.len())];
        let room = MAX_LINE.saturating_sub(line.len());
        line.extend_from_slice(&part[..part.len().min(room)]);
        let used = newline.map_or(chunk.len(), |i| i + 1);
        reader.consume(used);
        if newline.is_some() {
            let text = String::from_utf8_lossy(&line).into_owned();
            line.clear();
            // Nobody listens any more: keep reading anyway, so the command can finish.
            let _ = to.send(text).await;
        }
    }
    if !line.is_empty() {
        let _ = to.send(String::from_utf8_lossy(&line).into_owned()).await;
    }
}

#[cfg(unix)]
fn exit_code(status: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

#[cfg(not(unix))]
fn exit_code(status: &std::process::ExitStatus) -> i32 {
    status.code().unwrap_or(1)
}

/// `1m 05s`, `3.2s`.
pub fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 60 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

/// The webhook payload reporting `outcome`: blocks (header, fields, output, context) and a
/// green or red attachment, with a text fallback.
pub fn notification(outcome: &Outcome) -> Value {
    let ok = outcome.succeeded();
    let verdict = if ok { "succeeded" } else { "failed" };
    let icon = if ok { "✅" } else { "❌" };
    let command = outcome.command.replace('`', "'");
    let summary = format!(
        "{icon} `{command}` {verdict} (exit code {}) in {}",
        outcome.code,
        human(outcome.duration)
    );
    let mut output = outcome.tail.join("\n").replace("```", "'''");
    if output.chars().count() > MAX_OUTPUT_CHARS {
        let skip = output.chars().count() - MAX_OUTPUT_CHARS;
        output = format!("…{}", output.chars().skip(skip).collect::<String>());
    }
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let mut blocks = vec![
        blocks::header(&format!("{icon} Command {verdict}")),
        blocks::fields(&[
            format!("*Command*\n`{command}`"),
            format!("*Exit code*\n{}", outcome.code),
            format!("*Duration*\n{}", human(outcome.duration)),
        ]),
    ];
    if !output.trim().is_empty() {
        blocks.push(blocks::section(&format!(
            "*Last {} lines of output*\n```\n{output}\n```",
            outcome.tail.len()
        )));
    }
    let mut context = format!(
        "Finished {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
    );
    if !host.is_empty() {
        context.push_str(&format!(" on {host}"));
    }
    blocks.push(blocks::context(&[context]));
    json!({
        "text": summary,
        "blocks": blocks,
        "attachments": [{
            "color": if ok { "#2eb67d" } else { "#e01e5a" },
            "fallback": summary,
            "text": summary,
        }],
    })
}

/// Runs `command`, posts its [`notification`] through `webhook` and returns how it went.
pub async fn run_and_notify(
    webhook: &Webhook,
    command: &[String],
    tail_lines: usize,
    echo: bool,
) -> Result<Outcome, NotifyError> {
    let outcome = run(command, tail_lines, echo).await?;
    webhook.send(&notification(&outcome)).await?;
    Ok(outcome)
}
