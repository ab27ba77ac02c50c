//! The transactional outbox: durable consumers through `concord events`, killed and resumed,
//! lagging, and pruning.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use concord::outbox::{Consumer, Start};
use concord::store::{outbox, Store, StoreOptions};
use serde_json::Value;

use crate::chat::{channel, say};
use crate::harness::{both_backends, TestApp};

/// A second handle on the test server's database, as another process would have.
async fn open_store(app: &TestApp) -> Store {
    let options = StoreOptions {
        url: app.database_url.clone(),
        max_connections: 2,
        max_batch: 16,
    };
    Store::connect(&options, Default::default())
        .await
        .expect("the test database opens")
}

/// Every stored event after `after`, in id order.
async fn stored_after(store: &Store, after: i64) -> Vec<outbox::OutboxRecord> {
    let mut conn = store.reader().await.expect("reader");
    outbox::after(&mut conn.conn(), after, 1_000_000)
        .await
        .expect("outbox read")
}

fn concord_events(app: &TestApp, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_concord"));
    cmd.arg("--data-dir")
        .arg(&app.data_dir)
        .args(["--database-url", &app.database_url, "events"])
        .args(args)
        .env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("CONCORD_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// A running `concord events tail`, its stdout lines gathered by a thread.
struct Tail {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Tail {
    fn spawn(app: &TestApp, consumer: &str, lines: Arc<Mutex<Vec<String>>>) -> Tail {
        let mut child = concord_events(
            app,
            &[
                "tail",
                "--consumer",
                consumer,
                "--follow",
                "--batch",
                "5",
                "--poll-ms",
                "20",
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("concord events tail runs");
        let stdout = child.stdout.take().expect("stdout");
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Tail {
            child,
            lines,
            reader: Some(reader),
        }
    }

    fn printed(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// SIGKILL: no chance to finish a batch or move the cursor.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// Waits (polling) until `done` holds, failing after `limit`.
async fn eventually(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Posts `count` messages from `writers` concurrent clients; returns the messages' ids.
async fn post_concurrently(
    base: &str,
    client: &reqwest::Client,
    token: &str,
    channel: &str,
    prefix: &str,
    writers: usize,
    count: usize,
) -> Vec<String> {
    let per = count / writers;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let client = client.clone();
        let url = format!("{base}/api/v1/channels/{channel}/messages");
        let token = token.to_owned();
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..per {
                let r = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&serde_json::json!({"text": format!("{prefix} {w}-{i}")}))
                    .send()
                    .await
                    .expect("post sent");
                assert_eq!(r.status().as_u16(), 201, "post accepted");
                let body: Value = r.json().await.expect("json");
                ids.push(body["id"].as_str().expect("id").to_owned());
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.expect("poster"));
    }
    ids
}

/// (outbox id, event id, the line) of each printed line.
fn parse(lines: &[String]) -> Vec<(i64, String, Value)> {
    lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("one JSON object a line");
            (
                v["id"].as_i64().expect("id"),
                v["event_id"].as_str().expect("event_id").to_owned(),
                v,
            )
        })
        .collect()
}

both_backends! {
    async fn a_consumer_killed_mid_stream_resumes_and_sees_every_event_once(app) {
        let store = open_store(&app).await;
        let owner = app.bootstrap_admin().await;
        let ws = app.create_workspace(&owner, "Outbox").await;
        let general = channel(&app, &owner, &ws, "general-talk", "public").await;
        say(&app, &owner, &general, "before the consumers").await;

        // A consumer that never reads keeps every later event stored (pruning waits for it);
        // the tailing consumer is registered after it, at the newest event.
        let witness = Consumer::open(&store, "witness", Start::Latest).await.expect("witness");
        let start = Consumer::open(&store, "tail", Start::Latest).await.expect("tail").cursor();
        assert!(start >= witness.cursor());

        let lines = Arc::new(Mutex::new(Vec::new()));
        let first = Tail::spawn(&app, "tail", lines.clone());
        // Posted from tasks, so the consumer is killed while writes go on: half before the
        // kill, half started right after it (however fast posting is, events remain for the
        // consumer that resumes).
        let post_half = || {
            let app_ref = TestAppRef { base: app.base.clone(), client: app.client.clone() };
            let token = owner.access.clone();
            let general = general.clone();
            tokio::spawn(async move { app_ref.post_many(&token, &general, "outbox secret", 4, 80).await })
        };
        let posting = post_half();
        eventually(Duration::from_secs(60), "the first consumer prints", || first.printed() >= 20).await;
        first.kill();
        let before_kill = lines.lock().unwrap().len();
        let posting_more = post_half();

        let second = Tail::spawn(&app, "tail", lines.clone());
        let mut posted = posting.await.expect("posting");
        posted.extend(posting_more.await.expect("posting"));
        assert_eq!(posted.len(), 160);
        let committed = stored_after(&store, start).await;
        let last = committed.last().expect("events committed").id;
        assert!(
            committed.windows(2).all(|w| w[0].committed_at <= w[1].committed_at),
            "commit times rise with ids"
        );
        eventually(Duration::from_secs(60), "the resumed consumer catches up", || {
            parse(&lines.lock().unwrap()).iter().any(|(id, _, _)| *id >= last)
        }).await;
        second.kill();

        let printed = parse(&lines.lock().unwrap());
        assert!(before_kill < printed.len(), "killed mid-stream: {before_kill} of {}", printed.len());
        // Deduplicated by event id, the printed stream is exactly the committed one, in
        // commit order.
        let mut seen = HashSet::new();
        let deduplicated: Vec<&(i64, String, Value)> =
            printed.iter().filter(|(_, event_id, _)| seen.insert(event_id.clone())).collect();
        let stored: Vec<(i64, &str)> = committed
            .iter()
            .filter(|e| e.id <= deduplicated.last().map(|d| d.0).unwrap_or(0))
            .map(|e| (e.id, e.event_id.as_str()))
            .collect();
        let got: Vec<(i64, &str)> =
            deduplicated.iter().map(|(id, event_id, _)| (*id, event_id.as_str())).collect();
        assert_eq!(got, stored, "every committed event once, in commit order");
        assert!(got.windows(2).all(|w| w[1].0 == w[0].0 + 1), "ids are contiguous");
        // Only a batch interrupted by the kill is printed twice.
        assert!(printed.len() - deduplicated.len() <= 5, "{} repeated", printed.len() - deduplicated.len());

        // Every posted message is among them, and no event carries its text.
        let created: HashSet<String> = deduplicated
            .iter()
            .filter(|(_, _, v)| v["kind"] == "message_created")
            .filter_map(|(_, _, v)| {
                assert_eq!(v["event"]["type"], "message_created");
                assert_eq!(v["workspace_id"].as_str(), Some(ws.as_str()));
                v["event"]["message_id"].as_str()
                    .or_else(|| v["event"]["message"]["id"].as_str())
                    .map(str::to_owned)
            })
            .collect();
        for id in &posted {
            assert!(created.contains(id), "message {id} has its event");
        }
        for (_, _, v) in &printed {
            assert!(!v.to_string().contains("outbox secret"), "event payload holds no text: {v}");
        }
        drop(witness);
        store.close().await;
    }

    async fn a_lagging_consumer_does_not_block_posting(app) {
        let store = open_store(&app).await;
        let owner = app.bootstrap_admin().await;
        let ws = app.create_workspace(&owner, "Lagging").await;
        let general = channel(&app, &owner, &ws, "busy", "public").await;
        let idle = Consumer::open(&store, "idle", Start::Latest).await.expect("register");
        let at = idle.cursor();

        // Posting does not wait for a consumer that never reads, however far behind it is.
        let app_ref = TestAppRef { base: app.base.clone(), client: app.client.clone() };
        let posted = app_ref.post_many(&owner.access, &general, "lag", 8, 400).await;
        assert_eq!(posted.len(), 400);
        let (consumers, head) = concord::outbox::consumers(&store).await.expect("consumers");
        let lagging = consumers.iter().find(|c| c.name == "idle").expect("idle registered");
        assert_eq!(lagging.cursor, at, "the idle consumer did not move");
        assert!(head - at >= 400, "it is {} events behind", head - at);

        // Pruning keeps what it has not read.
        concord::outbox::prune(&store, None).await.expect("prune");
        let kept = stored_after(&store, 0).await;
        assert_eq!(kept.first().map(|e| e.id), Some(at + 1), "nothing after its cursor pruned");
        assert_eq!(kept.last().map(|e| e.id), Some(head));

        // Another consumer reads everything stored from the start, through the command line.
        let out = concord_events(&app, &["tail", "--consumer", "reader", "--from-start"])
            .output()
            .expect("tail runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
        let ids: Vec<i64> = parse(&lines).iter().map(|(id, _, _)| *id).collect();
        let stored: Vec<i64> = kept.iter().map(|e| e.id).collect();
        assert_eq!(ids, stored);

        let out = concord_events(&app, &["consumers"]).output().expect("consumers runs");
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(listing.contains("idle") && listing.contains("reader"), "{listing}");

        // Past the maximum age, events go even if the idle consumer never read them; when it
        // comes back it is told how many it missed.
        concord::outbox::prune(&store, Some(Duration::ZERO)).await.expect("prune by age");
        // With nothing left after its cursor, the head beyond it is what it missed.
        let mut idle = Consumer::open(&store, "idle", Start::Latest).await.expect("resume");
        let batch = idle.next_batch(100).await.expect("read");
        assert!(batch.events.is_empty());
        assert_eq!(batch.missed, head - at, "the pruned events are counted with none left");
        assert_eq!(batch.last_id(), Some(head), "acknowledging the head passes them");
        let again = idle.next_batch(100).await.expect("read");
        assert_eq!((again.missed, again.last_id()), (0, None), "counted once");
        drop(idle);
        say(&app, &owner, &general, "after pruning").await;
        let mut idle = Consumer::open(&store, "idle", Start::Latest).await.expect("resume");
        let batch = idle.next_batch(100).await.expect("read");
        assert_eq!(batch.missed, head - at, "the pruned events are counted");
        assert!(!batch.events.is_empty());
        idle.ack(batch.last_id().unwrap()).await.expect("ack");

        // A removed consumer no longer holds events back.
        let out = concord_events(&app, &["remove", "--consumer", "idle"]).output().expect("remove runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = concord_events(&app, &["tail", "--consumer", "reader"]).output().expect("tail runs");
        assert!(out.status.success());
        concord::outbox::prune(&store, None).await.expect("prune");
        assert!(stored_after(&store, 0).await.is_empty(), "every consumer passed every event");
        store.close().await;
    }
}

/// What a posting task needs of the test app.
struct TestAppRef {
    base: String,
    client: reqwest::Client,
}

impl TestAppRef {
    async fn post_many(
        &self,
        token: &str,
        channel: &str,
        prefix: &str,
        writers: usize,
        count: usize,
    ) -> Vec<String> {
        post_concurrently(
            &self.base,
            &self.client,
            token,
            channel,
            prefix,
            writers,
            count,
        )
        .await
    }
}
