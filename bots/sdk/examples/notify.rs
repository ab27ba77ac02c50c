//! Runs a command and posts a CI-style notification of how it went through an incoming
//! webhook, then exits with the command's status.
//!
//! ```sh
//! cargo run -p concord-bot-sdk --example notify -- --webhook "$URL" -- cargo test
//! ```
//!
//! Options: `--webhook URL` (or `CONCORD_WEBHOOK_URL`), `--tail N` (lines of output shown,
//! 20). If the notification cannot be posted, that is said on stderr and a successful
//! command's status becomes 1.

use concord_bot_sdk::notify::{self, TAIL_LINES};
use concord_bot_sdk::Webhook;

const USAGE: &str = "usage: notify --webhook URL [--tail N] -- COMMAND [ARGS...]";

struct Args {
    webhook: String,
    tail: usize,
    command: Vec<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut webhook = std::env::var("CONCORD_WEBHOOK_URL").ok();
    let mut tail = TAIL_LINES;
    let mut command = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--webhook" => webhook = Some(args.next().ok_or("--webhook needs a URL")?),
            "--tail" => {
                let n = args.next().ok_or("--tail needs a number")?;
                tail = n
                    .parse()
                    .map_err(|_| format!("--tail needs a number, not {n:?}"))?;
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            "--" => {
                command.extend(args.by_ref());
            }
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            _ => {
                command.push(arg);
                command.extend(args.by_ref());
            }
        }
    }
    let webhook = webhook.ok_or("--webhook URL is required (or CONCORD_WEBHOOK_URL)")?;
    match url::Url::parse(&webhook) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        _ => return Err(format!("--webhook must be an http(s) URL, not {webhook:?}")),
    }
    if command.is_empty() {
        return Err("no command given after --".to_owned());
    }
    Ok(Args {
        webhook,
        tail,
        command,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("notify: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let webhook = Webhook::new(&args.webhook);
    let outcome = match notify::run(&args.command, args.tail, true).await {
        Ok(o) => o,
        Err(e) => {
            eprintln!("notify: {e}");
            std::process::exit(127);
        }
    };
    let mut code = outcome.code;
    match webhook.send(&notify::notification(&outcome)).await {
        Ok(()) => eprintln!(
            "notify: `{}` exited with {} after {}; notification posted",
            outcome.command,
            outcome.code,
            notify::human(outcome.duration)
        ),
        Err(e) => {
            eprintln!("notify: could not post the notification: {e}");
            if code == 0 {
                code = 1;
            }
        }
    }
    std::process::exit(code);
}
