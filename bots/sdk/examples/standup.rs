//! A standup bot: on a schedule it asks a channel's members for their update, collects the
//! answers (buttons in the question, or `/standup <text>`), and posts a summary when everyone
//! answered or the deadline passed.
//!
//! ```sh
//! cargo run -p concord-bot-sdk --example standup -- --api http://localhost:8080 \
//!   --token xoxb-... --signing-secret S --channel C --listen 127.0.0.1:3000 --once
//! ```
//!
//! Give the bot the command `/standup` and an interactivity URL, both
//! `http://<listen>/slack/events`. Options: `--every 24h` (the default: a round now and then
//! every 24 hours) or `--at HH:MM` (every day at that UTC time), `--deadline 30m` (how long
//! a round stays open), `--once` (one round, then exit).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{NaiveTime, Utc};
use concord_bot_sdk::blocks::{self, button, primary};
use concord_bot_sdk::{respond, Interaction, Message, Receiver, SlashCommand, WebClient};
use serde_json::{json, Value};

const USAGE: &str =
    "usage: standup --api URL --token xoxb-... --signing-secret SECRET --channel CHANNEL_ID \
--listen HOST:PORT [--every 24h | --at HH:MM] [--deadline 30m] [--once]";

enum Schedule {
    Every(Duration),
    At(NaiveTime),
}

struct Args {
    api: String,
    token: String,
    secret: String,
    channel: String,
    listen: SocketAddr,
    schedule: Schedule,
    deadline: Duration,
    once: bool,
}

/// `90s`, `15m`, `24h`, `1d`, or seconds.
fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let unit = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("not a duration: {s:?} (use 90s, 15m, 24h or 1d)")),
    };
    let secs = n.saturating_mul(unit);
    if secs == 0 || secs > 366 * 86400 {
        return Err(format!("{s:?} is not between 1 second and a year"));
    }
    Ok(Duration::from_secs(secs))
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut get = BTreeMap::new();
    let mut once = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--once" => once = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            "--api" | "--token" | "--signing-secret" | "--channel" | "--listen" | "--every"
            | "--at" | "--deadline" => {
                let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
                get.insert(arg, value);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let mut required = |name: &str| {
        get.remove(name)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| format!("{name} is required"))
    };
    let api = required("--api")?;
    let token = required("--token")?;
    let secret = required("--signing-secret")?;
    let channel = required("--channel")?;
    let listen = required("--listen")?;
    if !matches!(url::Url::parse(&api), Ok(u) if matches!(u.scheme(), "http" | "https")) {
        return Err(format!("--api must be an http(s) URL, not {api:?}"));
    }
    let listen = listen
        .parse()
        .map_err(|_| format!("--listen must be HOST:PORT, not {listen:?}"))?;
    let schedule = match (get.remove("--every"), get.remove("--at")) {
        (Some(_), Some(_)) => return Err("give --every or --at, not both".to_owned()),
        (Some(every), None) => Schedule::Every(duration(&every)?),
        (None, Some(at)) => Schedule::At(
            NaiveTime::parse_from_str(&at, "%H:%M")
                .map_err(|_| format!("--at must be HH:MM (UTC), not {at:?}"))?,
        ),
        (None, None) => Schedule::Every(Duration::from_secs(24 * 3600)),
    };
    let deadline = match get.remove("--deadline") {
        Some(d) => duration(&d)?,
        None => Duration::from_secs(30 * 60),
    };
    Ok(Args {
        api,
        token,
        secret,
        channel,
        listen,
        schedule,
        deadline,
        once,
    })
}

#[derive(Clone, Debug)]
enum Answer {
    Update(String),
    OnTrack,
    Skipped,
}

struct Round {
    id: String,
    ts: String,
    expected: BTreeSet<String>,
    answers: BTreeMap<String, Answer>,
}

impl Round {
    fn everyone_answered(&self) -> bool {
        self.expected.iter().all(|m| self.answers.contains_key(m))
    }
}

struct Bot {
    web: WebClient,
    channel: String,
    me: String,
    round: Mutex<Option<Round>>,
    answered: tokio::sync::Notify,
}

impl Bot {
    /// Records `answer` for `user` in the open round `id` (any round if `None`); false if no
    /// such round is open.
    fn record(&self, id: Option<&str>, user: &str, answer: Answer) -> bool {
        let Ok(mut round) = self.round.lock() else {
            return false;
        };
        let Some(r) = round.as_mut().filter(|r| id.is_none_or(|id| r.id == id)) else {
            return false;
        };
        // A button press does not replace a written update.
        if matches!(answer, Answer::OnTrack)
            && matches!(r.answers.get(user), Some(Answer::Update(_)))
        {
            return true;
        }
        r.answers.insert(user.to_owned(), answer);
        r.expected.insert(user.to_owned());
        if r.everyone_answered() {
            self.answered.notify_one();
        }
        true
    }

    async fn on_action(self: Arc<Self>, press: Interaction) {
        let Some(action) = press.actions.first() else {
            return;
        };
        let round = action.value.as_deref();
        let (answer, ack) = match action.action_id.as_str() {
            "post" => (
                Answer::OnTrack,
                "Noted: you're on track. Add details before the deadline with `/standup <your update>`.",
            ),
            "skip" => (Answer::Skipped, "Noted: skipping you today."),
            _ => return,
        };
        let text = if self.record(round, &press.user_id, answer) {
            println!("standup: {} pressed {:?}", press.user_id, action.action_id);
            ack
        } else {
            "This standup is closed."
        };
        let reply =
            json!({ "response_type": "ephemeral", "replace_original": false, "text": text });
        if let Err(e) = respond(&press.response_url, &reply).await {
            eprintln!("standup: could not answer a press: {e}");
        }
    }

    async fn on_command(self: Arc<Self>, command: SlashCommand) -> Option<Value> {
        let text = command.text.trim();
        let answer = if text.is_empty() {
            "Usage: `/standup <what you did, what's next, anything in your way>`".to_owned()
        } else if self.record(None, &command.user_id, Answer::Update(text.to_owned())) {
            println!("standup: {} posted an update", command.user_id);
            format!("Thanks, your update is recorded:\n>{text}")
        } else {
            "No standup is open right now.".to_owned()
        };
        Some(json!({ "response_type": "ephemeral", "text": answer }))
    }

    /// Asks the channel's members (people, not bots); false if there is no one to ask.
    async fn open(&self, id: &str, deadline: Duration) -> Result<bool, concord_bot_sdk::Error> {
        let bots: BTreeSet<String> = self
            .web
            .all_users()
            .await?
            .into_iter()
            .filter(|u| u.is_bot || u.deleted)
            .map(|u| u.id)
            .collect();
        let expected: BTreeSet<String> = self
            .web
            .all_members(&self.channel)
            .await?
            .into_iter()
            .filter(|m| *m != self.me && !bots.contains(m))
            .collect();
        if expected.is_empty() {
            println!("standup: nobody to ask in {}", self.channel);
            return Ok(false);
        }
        let closes = Utc::now() + chrono::Duration::seconds(deadline.as_secs() as i64);
        let who: Vec<String> = expected.iter().map(|m| format!("<@{m}>")).collect();
        let question = format!(
            "{}: what did you do since last time, what's next, and is anything in your way?",
            who.join(" ")
        );
        let message = Message::text(format!("Standup: {question}")).blocks(vec![
            blocks::header("Standup"),
            blocks::section(&question),
            blocks::actions(
                "standup",
                vec![
                    primary(button("post", "Post my update", id)),
                    button("skip", "Skip today", id),
                ],
            ),
            blocks::context(&[format!(
                "Write your update with `/standup <text>`. Closes at {} UTC.",
                closes.format("%H:%M")
            )]),
        ]);
        let posted = self.web.post_message(&self.channel, message).await?;
        println!(
            "standup: asked {} member(s) in {} (message {})",
            expected.len(),
            self.channel,
            posted.ts
        );
        if let Ok(mut round) = self.round.lock() {
            *round = Some(Round {
                id: id.to_owned(),
                ts: posted.ts,
                expected,
                answers: BTreeMap::new(),
            });
        }
        Ok(true)
    }

    /// Closes the open round and posts its summary.
    async fn close(&self) -> Result<(), concord_bot_sdk::Error> {
        let Some(round) = self.round.lock().ok().and_then(|mut r| r.take()) else {
            return Ok(());
        };
        let mut sections = vec![blocks::header(&format!(
            "Standup summary, {}",
            Utc::now().format("%Y-%m-%d")
        ))];
        let mut text = vec!["Standup summary".to_owned()];
        let (mut on_track, mut skipped, mut silent) = (Vec::new(), Vec::new(), Vec::new());
        for member in &round.expected {
            match round.answers.get(member) {
                Some(Answer::Update(update)) => {
                    sections.push(blocks::section(&format!("*<@{member}>*\n{update}")));
                    text.push(format!("<@{member}>: {update}"));
                }
                Some(Answer::OnTrack) => on_track.push(format!("<@{member}>")),
                Some(Answer::Skipped) => skipped.push(format!("<@{member}>")),
                None => silent.push(format!("<@{member}>")),
            }
        }
        let mut notes = Vec::new();
        for (label, list) in [
            ("On track", &on_track),
            ("Skipped", &skipped),
            ("No answer", &silent),
        ] {
            if !list.is_empty() {
                notes.push(format!("{label}: {}", list.join(", ")));
            }
        }
        if !notes.is_empty() {
            let notes: Vec<&str> = notes.iter().map(String::as_str).collect();
            sections.push(blocks::context(&notes));
            text.extend(notes.iter().map(|n| n.to_string()));
        }
        let closed = Message::text("Standup (closed)").blocks(vec![
            blocks::header("Standup"),
            blocks::section("This standup is closed: the summary follows."),
        ]);
        if let Err(e) = self.web.update(&self.channel, &round.ts, closed).await {
            eprintln!("standup: could not close the question: {e}");
        }
        let summary = Message::text(text.join("\n")).blocks(sections);
        let posted = self.web.post_message(&self.channel, summary).await?;
        println!(
            "standup: posted the summary ({} of {} answered) as {}",
            round.answers.len(),
            round.expected.len(),
            posted.ts
        );
        Ok(())
    }

    async fn round(&self, id: &str, deadline: Duration) {
        match self.open(id, deadline).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                eprintln!("standup: could not ask for updates: {e}");
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(deadline) => println!("standup: deadline reached"),
            _ = self.answered.notified() => println!("standup: everyone answered"),
        }
        if let Err(e) = self.close().await {
            eprintln!("standup: could not post the summary: {e}");
        }
    }
}

/// How long until the next `at` (UTC).
fn until(at: NaiveTime) -> Duration {
    let now = Utc::now();
    let mut next = now.date_naive().and_time(at).and_utc();
    if next <= now {
        next += chrono::Duration::days(1);
    }
    (next - now).to_std().unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("standup: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let web = WebClient::new(&args.api, &args.token);
    let me = match web.auth_test().await {
        Ok(me) => me,
        Err(e) => {
            eprintln!("standup: the token does not work at {}: {e}", web.api_url());
            std::process::exit(1);
        }
    };
    println!(
        "standup: signed in as {} ({}) in {}",
        me.user, me.user_id, me.team
    );
    if let Err(e) = web.conversations_info(&args.channel).await {
        eprintln!("standup: cannot use channel {}: {e}", args.channel);
        std::process::exit(1);
    }
    let bot = Arc::new(Bot {
        web,
        channel: args.channel.clone(),
        me: me.user_id,
        round: Mutex::new(None),
        answered: tokio::sync::Notify::new(),
    });
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("standup: cannot listen on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    let addr = listener.local_addr().unwrap_or(args.listen);
    println!(
        "standup: listening on http://{addr}/slack/events (the bot's /standup command URL and interactivity URL)"
    );
    let (on_action, on_command) = (bot.clone(), bot.clone());
    let receiver = Receiver::new(&args.secret)
        .on_action(move |press| on_action.clone().on_action(press))
        .on_command(move |command| on_command.clone().on_command(command));
    let server = tokio::spawn(receiver.serve(listener));
    let mut n = 0u64;
    loop {
        let wait = match (&args.schedule, n) {
            (Schedule::Every(_), 0) => Duration::ZERO,
            (Schedule::Every(every), _) => every.saturating_sub(args.deadline),
            (Schedule::At(at), _) => until(*at),
        };
        if !wait.is_zero() {
            println!("standup: next round in {}s", wait.as_secs());
            tokio::time::sleep(wait).await;
        }
        n += 1;
        let id = format!("{}-{n}", Utc::now().format("%Y%m%d%H%M%S"));
        bot.round(&id, args.deadline).await;
        if args.once {
            break;
        }
    }
    server.abort();
}
