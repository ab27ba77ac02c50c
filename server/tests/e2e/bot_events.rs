//! Events out: an administrator gives a bot a signing secret and a request URL; what people
//! do then reaches the bot's endpoint as Slack's `event_callback` envelopes, signed as Slack
//! signs. The endpoint is a real receiver (tests/slack/receiver.mjs) that checks every
//! request with Slack's own Bolt (`verifySlackRequest`); the tests check each signature a
//! second time here, independently.

use std::collections::VecDeque;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::chat::{channel, say};
use crate::harness::{both_backends, spawn_app_with, Backend, Team, TestApp, WAIT};

/// A bot's request URL: the Node receiver, and every request it reported, in order.
pub(crate) struct Receiver {
    _child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::sync::mpsc::Receiver<Value>,
    pending: VecDeque<Value>,
    /// Every request received so far.
    pub seen: Vec<Value>,
    pub url: String,
    secret: String,
}

impl Receiver {
    /// Starts a receiver checking signatures with `secret`.
    pub(crate) async fn start(secret: &str) -> Receiver {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/slack");
        assert!(
            dir.join("node_modules/@slack/bolt").is_dir(),
            "run `npm ci` in tests/slack (./tests/run does)"
        );
        let mut child = tokio::process::Command::new("node")
            .arg(dir.join("receiver.mjs"))
            .arg(json!({ "signingSecret": secret }).to_string())
            .current_dir(&dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take().unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(value) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if tx.send(value).await.is_err() {
                    break;
                }
            }
        });
        let mut r = Receiver {
            _child: child,
            stdin,
            lines: rx,
            pending: VecDeque::new(),
            seen: Vec::new(),
            url: String::new(),
            secret: secret.to_owned(),
        };
        let first = r.line().await;
        let port = first["listening"].as_u64().expect("the receiver listens");
        r.url = format!("http://127.0.0.1:{port}/slack/events");
        r
    }

    async fn line(&mut self) -> Value {
        tokio::time::timeout(WAIT, self.lines.recv())
            .await
            .expect("the receiver reported in time")
            .expect("the receiver runs")
    }

    /// Sends a command and waits until the receiver applied it.
    pub(crate) async fn command(&mut self, cmd: Value) {
        if let Some(secret) = cmd["secret"].as_str() {
            self.secret = secret.to_owned();
        }
        self.stdin
            .write_all(format!("{cmd}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
        loop {
            let line = self.line().await;
            if line.get("ack").is_some() {
                return;
            }
            self.pending.push_back(line);
        }
    }

    /// How to answer from now on: `ok`, `fail` (500), `hang`, `wrong_challenge`.
    pub(crate) async fn mode(&mut self, mode: &str) {
        self.command(json!({ "mode": mode })).await;
    }

    /// The next request, checked: Bolt verified its signature (and refused it tampered
    /// with or stale), and so does an HMAC computed here.
    pub(crate) async fn next(&mut self) -> Value {
        let request = match self.pending.pop_front() {
            Some(r) => r,
            None => loop {
                let line = self.line().await;
                if line.get("ack").is_none() {
                    break line;
                }
            },
        };
        assert_eq!(
            request["verified"], true,
            "Bolt refused a request: {request}"
        );
        assert_eq!(request["tamperedRefused"], true, "{request}");
        assert_eq!(request["staleRefused"], true, "{request}");
        check_signature(&self.secret, &request);
        assert_eq!(request["headers"]["contentType"], "application/json");
        self.seen.push(request.clone());
        request
    }

    /// The next request of any kind (a slash command's form too), unchecked.
    pub(crate) async fn next_any(&mut self) -> Value {
        match self.pending.pop_front() {
            Some(r) => r,
            None => loop {
                let line = self.line().await;
                if line.get("ack").is_none() {
                    break line;
                }
            },
        }
    }

    /// The next request that is an event (not a `url_verification`), as its body.
    pub(crate) async fn next_event(&mut self) -> Value {
        loop {
            let r = self.next().await;
            if r["body"]["type"] == "event_callback" {
                return r;
            }
        }
    }
}

/// The signature Slack documents, computed independently of Bolt.
fn check_signature(secret: &str, request: &Value) {
    use hmac::{Hmac, Mac};
    let timestamp = request["headers"]["timestamp"].as_str().expect("timestamp");
    let raw = request["raw"].as_str().expect("raw body");
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:{raw}").as_bytes());
    let expected = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(request["headers"]["signature"], expected.as_str());
    let age = chrono::Utc::now().timestamp() - timestamp.parse::<i64>().unwrap();
    assert!(
        (0..60).contains(&age),
        "timestamp {timestamp} is {age} s old"
    );
}

async fn create_bot(app: &TestApp, team: &Team, name: &str) -> String {
    app.post(
        &format!("/api/v1/workspaces/{}/bots", team.ws),
        Some(&team.admin.access),
        json!({ "name": name }),
    )
    .await
    .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Makes the bot a signing secret; returns it.
async fn signing_secret(app: &TestApp, team: &Team, bot: &str) -> String {
    let made = app
        .post(
            &format!("/api/v1/workspaces/{}/bots/{bot}/signing-secret", team.ws),
            Some(&team.admin.access),
            json!({}),
        )
        .await;
    let made = made.expect(201);
    assert_eq!(made["bot_id"], bot);
    let secret = made["signing_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 64, "{secret}");
    secret
}

async fn subscribe(
    app: &TestApp,
    team: &Team,
    bot: &str,
    url: &str,
    types: &[&str],
) -> crate::harness::Reply {
    app.put(
        &format!("/api/v1/workspaces/{}/bots/{bot}/events", team.ws),
        &team.admin.access,
        json!({ "request_url": url, "event_types": types }),
    )
    .await
}

async fn add_to(app: &TestApp, team: &Team, channel: &str, who: &str) {
    app.post(
        &format!("/api/v1/channels/{channel}/members"),
        Some(&team.admin.access),
        json!({ "user_id": who }),
    )
    .await
    .expect(200);
}

/// A server that may deliver to this machine's loopback address, retrying fast.
pub(crate) async fn events_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |c| {
        c.bots.event_allowed_networks = vec!["127.0.0.1/32".parse().unwrap()];
        c.bots.event_retry_delays_ms = vec![0, 100, 100];
        c.bots.event_timeout_ms = 1000;
    })
    .await
}

/// The Slack `ts` of a message as Concord's API shows it (the Web API's format).
fn ts_of(message: &Value) -> String {
    let created =
        chrono::DateTime::parse_from_rfc3339(message["created_at"].as_str().unwrap()).unwrap();
    format!(
        "{}.{:06}",
        created.timestamp(),
        message["seq"].as_i64().unwrap()
    )
}

async fn events_reach_subscribed_bots_signed_as_slack_signs(backend: Backend) {
    let app = events_app(backend).await;
    let team = app.team().await;
    let deploys = channel(&app, &team.admin, &team.ws, "deploys", "public").await;
    let secret_room = channel(&app, &team.admin, &team.ws, "secret", "private").await;
    let ci = create_bot(&app, &team, "CI").await;
    let outsider = create_bot(&app, &team, "Outsider").await;
    for who in [&ci, &team.ann.user_id] {
        add_to(&app, &team, &deploys, who).await;
    }
    add_to(&app, &team, &secret_room, &ci).await;

    let events = format!("/api/v1/workspaces/{}/bots/{ci}/events", team.ws);
    let before = app
        .get(&events, &team.admin.access)
        .await
        .expect(200)
        .clone();
    assert_eq!(before["has_signing_secret"], false);
    // No URL before the bot has a signing secret.
    subscribe(&app, &team, &ci, "http://127.0.0.1:9/", &["message"])
        .await
        .expect_error(409, "signing_secret_missing");
    let ci_secret = signing_secret(&app, &team, &ci).await;
    let outsider_secret = signing_secret(&app, &team, &outsider).await;
    let mut ci_rx = Receiver::start(&ci_secret).await;
    let mut outsider_rx = Receiver::start(&outsider_secret).await;

    // A URL that does not echo the challenge is refused.
    ci_rx.mode("wrong_challenge").await;
    subscribe(&app, &team, &ci, &ci_rx.url, &["message"])
        .await
        .expect_error(422, "url_verification_failed");
    let challenge = ci_rx.next().await;
    assert_eq!(challenge["body"]["type"], "url_verification");
    ci_rx.mode("ok").await;
    let set = subscribe(
        &app,
        &team,
        &ci,
        &ci_rx.url,
        &[
            "message",
            "app_mention",
            "reaction_added",
            "reaction_removed",
            "member_joined_channel",
            "member_left_channel",
        ],
    )
    .await;
    let set = set.expect(200);
    assert_eq!(set["request_url"], ci_rx.url.as_str());
    assert_eq!(
        set["event_types"],
        json!([
            "app_mention",
            "member_joined_channel",
            "member_left_channel",
            "message",
            "reaction_added",
            "reaction_removed"
        ])
    );
    let verification = ci_rx.next().await;
    assert_eq!(verification["body"]["type"], "url_verification");
    assert!(verification["body"]["challenge"]
        .as_str()
        .is_some_and(|c| c.len() >= 32));
    assert!(verification["body"]["token"].is_string());
    // The secret shows once: never in the subscription.
    let shown = app
        .get(&events, &team.admin.access)
        .await
        .expect(200)
        .clone();
    assert_eq!(shown["has_signing_secret"], true);
    assert!(!shown.to_string().contains(&ci_secret));
    subscribe(
        &app,
        &team,
        &outsider,
        &outsider_rx.url,
        &["message", "channel_created"],
    )
    .await
    .expect(200);
    outsider_rx.next().await;

    // Ann mentions the bot in #deploys: a message and an app_mention.
    let posted = say(&app, &team.ann, &deploys, &format!("deploy please @{ci}")).await;
    let mut got = [ci_rx.next_event().await, ci_rx.next_event().await];
    got.sort_by_key(|r| r["body"]["event"]["type"].as_str().unwrap().to_owned());
    let (mention, message) = (&got[0]["body"], &got[1]["body"]);
    for envelope in [mention, message] {
        assert_eq!(envelope["type"], "event_callback");
        assert_eq!(envelope["team_id"], team.ws.as_str());
        assert_eq!(envelope["api_app_id"], ci.as_str());
        assert!(envelope["token"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(envelope["event_id"].as_str().unwrap().starts_with("Ev"));
        assert!(envelope["event_time"].as_i64().unwrap() > 1_600_000_000);
        assert_eq!(envelope["authorizations"][0]["user_id"], ci.as_str());
        assert_eq!(envelope["authorizations"][0]["is_bot"], true);
        let event = &envelope["event"];
        assert_eq!(event["user"], team.ann.user_id.as_str());
        assert_eq!(event["channel"], deploys.as_str());
        assert_eq!(event["text"], format!("deploy please @{ci}"));
        assert_eq!(event["ts"], ts_of(&posted).as_str());
        assert_eq!(event["event_ts"], event["ts"]);
    }
    assert_eq!(mention["event"]["type"], "app_mention");
    assert_eq!(message["event"]["type"], "message");
    assert_eq!(message["event"]["channel_type"], "channel");
    assert_ne!(mention["event_id"], message["event_id"]);
    for r in &got {
        assert!(r["headers"]["retryNum"].is_null(), "a first attempt: {r}");
    }

    // `@here` reaches everyone, but it is no app_mention: only the message comes.
    say(&app, &team.admin, &deploys, "@here standup in 5").await;
    let here = ci_rx.next_event().await;
    assert_eq!(here["body"]["event"]["type"], "message", "{here}");
    assert_eq!(here["body"]["event"]["text"], "@here standup in 5");

    // Ann reacts: reaction_added names the message by its ts.
    app.call(
        Method::PUT,
        &format!(
            "/api/v1/messages/{}/reactions/:thumbsup:",
            posted["id"].as_str().unwrap()
        ),
        Some(&team.ann.access),
        None,
    )
    .await
    .expect(200);
    let reaction = ci_rx.next_event().await;
    let event = &reaction["body"]["event"];
    assert_eq!(event["type"], "reaction_added", "{reaction}");
    assert_eq!(event["user"], team.ann.user_id.as_str());
    assert_eq!(event["reaction"], "thumbsup");
    assert_eq!(event["item_user"], team.ann.user_id.as_str());
    assert_eq!(
        event["item"],
        json!({"type": "message", "channel": deploys, "ts": ts_of(&posted)})
    );
    app.call(
        Method::DELETE,
        &format!(
            "/api/v1/messages/{}/reactions/:thumbsup:",
            posted["id"].as_str().unwrap()
        ),
        Some(&team.ann.access),
        None,
    )
    .await
    .expect(200);
    let removed = ci_rx.next_event().await;
    assert_eq!(
        removed["body"]["event"]["type"], "reaction_removed",
        "{removed}"
    );
    assert_eq!(removed["body"]["event"]["reaction"], "thumbsup");

    // In the private channel the bot is in, it sees messages as a `group`.
    say(&app, &team.admin, &secret_room, "quiet in here").await;
    let private = ci_rx.next_event().await;
    assert_eq!(private["body"]["event"]["text"], "quiet in here");
    assert_eq!(private["body"]["event"]["channel_type"], "group");

    // What the bot does itself never comes back to it: its own post through the Web API.
    let token = app
        .post(
            &format!("/api/v1/workspaces/{}/bots/{ci}/tokens", team.ws),
            Some(&team.admin.access),
            json!({ "scopes": ["chat:write"] }),
        )
        .await
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let own = app
        .post(
            "/api/slack/chat.postMessage",
            Some(&token),
            json!({"channel": deploys, "text": "deployed"}),
        )
        .await;
    assert_eq!(own.expect(200)["ok"], true, "{}", own.body);
    // Bo joining #deploys comes next; the bot's own post never did.
    add_to(&app, &team, &deploys, &team.bo.user_id).await;
    let joined = ci_rx.next_event().await;
    let event = &joined["body"]["event"];
    assert_eq!(event["type"], "member_joined_channel", "{joined}");
    assert_eq!(event["user"], team.bo.user_id.as_str());
    assert_eq!(event["channel_type"], "C");
    assert_eq!(event["inviter"], team.admin.user_id.as_str());
    // And Bo leaving it.
    app.delete(
        &format!("/api/v1/channels/{deploys}/members/{}", team.bo.user_id),
        &team.bo.access,
    )
    .await
    .expect(204);
    let left = ci_rx.next_event().await;
    assert_eq!(
        left["body"]["event"]["type"], "member_left_channel",
        "{left}"
    );
    assert_eq!(left["body"]["event"]["user"], team.bo.user_id.as_str());

    // The other bot is in no channel: it heard none of that, and sees public channels
    // being created; then, once added to #deploys, its messages.
    channel(&app, &team.admin, &team.ws, "launches", "public").await;
    let created = outsider_rx.next_event().await;
    assert_eq!(
        created["body"]["event"]["type"], "channel_created",
        "{created}"
    );
    assert_eq!(created["body"]["event"]["channel"]["name"], "launches");
    assert_eq!(
        created["body"]["event"]["channel"]["creator"],
        team.admin.user_id.as_str()
    );
    add_to(&app, &team, &deploys, &outsider).await;
    say(&app, &team.ann, &deploys, "welcome, outsider").await;
    let first = outsider_rx.next_event().await;
    assert_eq!(
        first["body"]["event"]["text"], "welcome, outsider",
        "{first}"
    );
    assert_eq!(first["body"]["api_app_id"], outsider.as_str());
    // The first bot hears the other join, then the message.
    let mut heard = [ci_rx.next_event().await, ci_rx.next_event().await];
    heard.sort_by_key(|r| r["body"]["event"]["type"].as_str().unwrap().to_owned());
    assert_eq!(heard[0]["body"]["event"]["type"], "member_joined_channel");
    assert_eq!(heard[0]["body"]["event"]["user"], outsider.as_str());
    assert_eq!(
        heard[1]["body"]["event"]["text"], "welcome, outsider",
        "{}",
        heard[1]
    );
    assert!(
        outsider_rx
            .seen
            .iter()
            .all(|r| !r["raw"].as_str().unwrap().contains("quiet in here")),
        "a private channel leaked to a bot outside it"
    );

    let audit = app.audit_events(&team.admin.access).await;
    for action in ["bot.signing_secret_rotate", "bot.event_subscription_set"] {
        assert!(
            audit.iter().any(|e| e["action"] == action),
            "{action} not audited"
        );
    }
}

async fn failed_deliveries_are_retried_then_parked_and_replayed(backend: Backend) {
    let app = events_app(backend).await;
    let team = app.team().await;
    let room = channel(&app, &team.admin, &team.ws, "alerts", "public").await;
    let bot = create_bot(&app, &team, "Pager").await;
    add_to(&app, &team, &room, &bot).await;
    let secret = signing_secret(&app, &team, &bot).await;
    let mut rx = Receiver::start(&secret).await;
    subscribe(&app, &team, &bot, &rx.url, &["message"])
        .await
        .expect(200);
    rx.next().await;

    rx.mode("fail").await;
    say(&app, &team.admin, &room, "disk full").await;
    // The first attempt and three retries (the configured schedule), one event id.
    let mut attempts = Vec::new();
    for _ in 0..4 {
        attempts.push(rx.next_event().await);
    }
    let event_id = attempts[0]["body"]["event_id"].clone();
    assert!(attempts.iter().all(|a| a["body"]["event_id"] == event_id));
    let nums: Vec<Value> = attempts
        .iter()
        .map(|a| a["headers"]["retryNum"].clone())
        .collect();
    assert_eq!(nums, [Value::Null, json!("1"), json!("2"), json!("3")]);
    assert!(attempts[1..]
        .iter()
        .all(|a| a["headers"]["retryReason"] == "http_error"));
    assert!(attempts.iter().all(|a| a["answered"] == 500));

    // Parked: listed for administrators, not for members.
    let dead = format!("/api/v1/workspaces/{}/bots/{bot}/dead-letters", team.ws);
    let deadline = tokio::time::Instant::now() + WAIT;
    let parked = loop {
        let list = app.get(&dead, &team.admin.access).await.expect(200).clone();
        if let Some(first) = list.as_array().and_then(|l| l.first()).cloned() {
            break first;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the delivery was never parked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(parked["event_id"], event_id);
    assert_eq!(parked["event_type"], "message");
    assert_eq!(parked["state"], "dead");
    assert_eq!(parked["attempts"], 4);
    assert!(
        parked["last_error"]
            .as_str()
            .unwrap()
            .starts_with("http_error"),
        "{parked}"
    );
    app.get(&dead, &team.ann.access)
        .await
        .expect_error(403, "forbidden");

    // Replayed once the endpoint is back: delivered with the same event id, and gone.
    rx.mode("ok").await;
    let replay = format!("{dead}/{}/replay", parked["id"].as_str().unwrap());
    app.post(&replay, Some(&team.ann.access), json!({}))
        .await
        .expect_error(403, "forbidden");
    app.post(&replay, Some(&team.admin.access), json!({}))
        .await
        .expect(202);
    let delivered = rx.next_event().await;
    assert_eq!(delivered["body"]["event_id"], event_id);
    assert_eq!(delivered["body"]["event"]["text"], "disk full");
    assert_eq!(delivered["answered"], 200);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !app
        .get(&dead, &team.admin.access)
        .await
        .expect(200)
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still parked after delivery"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.post(&replay, Some(&team.admin.access), json!({}))
        .await
        .expect_error(404, "not_found");
    let audit = app.audit_events(&team.admin.access).await;
    assert!(audit.iter().any(|e| e["action"] == "bot.event_replay"));

    // A rotated signing secret signs what follows; the old one no longer verifies.
    let rotated = signing_secret(&app, &team, &bot).await;
    assert_ne!(rotated, secret);
    rx.command(json!({ "secret": rotated })).await;
    say(&app, &team.admin, &room, "signed anew").await;
    let fresh = rx.next_event().await;
    assert_eq!(fresh["body"]["event"]["text"], "signed anew");
    assert_eq!(fresh["answered"], 200);

    // A slow endpoint times out like a failure, and holds only its own bot's slots: a
    // second bot's events keep flowing meanwhile.
    rx.mode("hang").await;
    let other = create_bot(&app, &team, "Other").await;
    add_to(&app, &team, &room, &other).await;
    let other_secret = signing_secret(&app, &team, &other).await;
    let mut other_rx = Receiver::start(&other_secret).await;
    subscribe(&app, &team, &other, &other_rx.url, &["message"])
        .await
        .expect(200);
    other_rx.next().await;
    for i in 0..6 {
        say(&app, &team.admin, &room, &format!("burst {i}")).await;
    }
    for _ in 0..6 {
        let e = other_rx.next_event().await;
        assert!(e["body"]["event"]["text"]
            .as_str()
            .unwrap()
            .starts_with("burst"));
    }
    let hung = rx.next_event().await;
    assert_eq!(hung["answered"], 0);
}

async fn bad_input_and_private_addresses_are_refused(backend: Backend) {
    // The default configuration: no private address is allowed.
    let app = spawn_app_with(backend, |_| {}).await;
    let team = app.team().await;
    let bot = create_bot(&app, &team, "Probe").await;
    let secret = signing_secret(&app, &team, &bot).await;
    let mut rx = Receiver::start(&secret).await;
    let port = rx
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    for url in [
        rx.url.clone(),
        format!("http://localhost:{port}/slack/events"),
        format!("http://[::1]:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.7/".to_owned(),
    ] {
        let r = subscribe(&app, &team, &bot, &url, &["message"]).await;
        r.expect_error(422, "request_url_not_allowed");
    }
    // Nothing reached the receiver: send it a command and see no request came before.
    rx.mode("ok").await;
    assert!(
        rx.pending.is_empty(),
        "a refused URL was called: {:?}",
        rx.pending
    );

    let events = format!("/api/v1/workspaces/{}/bots/{bot}/events", team.ws);
    let refused = |r: crate::harness::Reply, status: u16, code: &str, field: Option<&str>| {
        r.expect_error(status, code);
        if let Some(field) = field {
            assert_eq!(r.body["error"]["field"], field, "{}", r.body);
        }
    };
    refused(
        subscribe(&app, &team, &bot, "ftp://bot.example.org/", &["message"]).await,
        422,
        "validation_failed",
        Some("request_url"),
    );
    refused(
        subscribe(
            &app,
            &team,
            &bot,
            "https://u:p@bot.example.org/",
            &["message"],
        )
        .await,
        422,
        "validation_failed",
        Some("request_url"),
    );
    refused(
        subscribe(
            &app,
            &team,
            &bot,
            "https://bot.example.org/",
            &["message.everything"],
        )
        .await,
        422,
        "validation_failed",
        Some("event_types"),
    );
    refused(
        subscribe(&app, &team, &bot, "https://bot.example.org/", &[]).await,
        422,
        "validation_failed",
        Some("event_types"),
    );
    refused(
        app.put(
            &events,
            &team.admin.access,
            json!({"request_url": null, "event_types": [], "extra": 1}),
        )
        .await,
        422,
        "invalid_body",
        None,
    );
    refused(
        app.put(
            &events,
            &team.ann.access,
            json!({"request_url": null, "event_types": []}),
        )
        .await,
        403,
        "forbidden",
        None,
    );
    refused(
        app.post(
            &format!("/api/v1/workspaces/{}/bots/{bot}/signing-secret", team.ws),
            Some(&team.ann.access),
            json!({}),
        )
        .await,
        403,
        "forbidden",
        None,
    );
    refused(
        app.put(
            &format!(
                "/api/v1/workspaces/{}/bots/{}/events",
                team.ws, team.ann.user_id
            ),
            &team.admin.access,
            json!({"request_url": null, "event_types": []}),
        )
        .await,
        404,
        "not_found",
        None,
    );
    refused(
        app.post(
            &format!(
                "/api/v1/workspaces/{}/bots/{bot}/dead-letters/not-a-uuid/replay",
                team.ws
            ),
            Some(&team.admin.access),
            json!({}),
        )
        .await,
        400,
        "invalid_path",
        None,
    );
    // Turning events off needs no URL check.
    let off = app
        .put(
            &events,
            &team.admin.access,
            json!({"request_url": null, "event_types": []}),
        )
        .await;
    assert!(off.expect(200)["request_url"].is_null());
}

both_backends!(
    events_reach_subscribed_bots_signed_as_slack_signs,
    failed_deliveries_are_retried_then_parked_and_replayed,
    bad_input_and_private_addresses_are_refused,
    an_event_queued_before_a_sigkill_is_delivered_once_after_restart,
    hanging_endpoints_do_not_hold_back_a_healthy_bot,
    a_bot_with_a_full_queue_gets_no_more_events_and_others_still_do,
);

/// A bot in `room`, subscribed to messages at a receiver of its own (answering `ok`).
pub(crate) async fn subscribed_bot(
    app: &TestApp,
    team: &Team,
    room: &str,
    name: &str,
) -> (String, Receiver) {
    let bot = create_bot(app, team, name).await;
    add_to(app, team, room, &bot).await;
    let secret = signing_secret(app, team, &bot).await;
    let mut rx = Receiver::start(&secret).await;
    subscribe(app, team, &bot, &rx.url, &["message"])
        .await
        .expect(200);
    rx.next().await;
    (bot, rx)
}

/// Two bots whose endpoints never answer, retried at once every time, against two slots in
/// all: the third bot's events still arrive, in order, while the others keep failing.
async fn hanging_endpoints_do_not_hold_back_a_healthy_bot(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.bots.event_allowed_networks = vec!["127.0.0.1/32".parse().unwrap()];
        c.bots.event_retry_delays_ms = vec![0; 20];
        c.bots.event_timeout_ms = 500;
        c.bots.event_concurrency = 2;
        c.bots.event_concurrency_per_bot = 2;
    })
    .await;
    let team = app.team().await;
    let room = channel(&app, &team.admin, &team.ws, "builds", "public").await;
    let (_, mut first) = subscribed_bot(&app, &team, &room, "Stuck one").await;
    let (_, mut healthy) = subscribed_bot(&app, &team, &room, "Healthy").await;
    let (_, mut second) = subscribed_bot(&app, &team, &room, "Stuck two").await;
    first.mode("hang").await;
    second.mode("hang").await;
    for i in 0..4 {
        say(&app, &team.admin, &room, &format!("build {i} finished")).await;
    }
    // Four events, each of which the stuck bots keep retrying for ten seconds: without
    // turns and a cap on failing bots, they would take both slots for all of that time.
    // Deliveries to one bot run side by side, so they may arrive in any order.
    let mut texts = Vec::new();
    for _ in 0..4 {
        let got = tokio::time::timeout(WAIT, healthy.next_event())
            .await
            .expect("the healthy bot's events were held back");
        texts.push(got["body"]["event"]["text"].as_str().unwrap().to_owned());
    }
    texts.sort();
    let want: Vec<String> = (0..4).map(|i| format!("build {i} finished")).collect();
    assert_eq!(texts, want);
}

/// A bot whose endpoint fails, with no retries, at a queue of two: two deliveries are parked
/// and the rest are not queued at all, while another bot in the channel gets every event.
async fn a_bot_with_a_full_queue_gets_no_more_events_and_others_still_do(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.bots.event_allowed_networks = vec!["127.0.0.1/32".parse().unwrap()];
        c.bots.event_retry_delays_ms = Vec::new();
        c.bots.event_timeout_ms = 1000;
        c.bots.event_queue_max = 2;
    })
    .await;
    let team = app.team().await;
    let room = channel(&app, &team.admin, &team.ws, "tickets", "public").await;
    let (full, mut failing) = subscribed_bot(&app, &team, &room, "Full").await;
    let (_, mut other) = subscribed_bot(&app, &team, &room, "Other").await;
    failing.mode("fail").await;
    // One at a time, so the other bot (whose queue has the same limit) is never full.
    for i in 0..5 {
        say(&app, &team.admin, &room, &format!("ticket {i}")).await;
        let got = other.next_event().await;
        assert_eq!(got["body"]["event"]["text"], format!("ticket {i}"));
    }
    // The other bot has every event, so every event was planned: the full bot's two
    // deliveries are parked, and nothing else was queued for it.
    let dead = format!("/api/v1/workspaces/{}/bots/{full}/dead-letters", team.ws);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let list = app.get(&dead, &team.admin.access).await.expect(200).clone();
        let parked = list.as_array().map_or(0, Vec::len);
        assert!(parked <= 2, "more than the queue's limit: {list}");
        if parked == 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never parked: {list}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The first two events planned (deliveries to one bot run side by side, in any order).
    let mut texts: Vec<String> = [failing.next_event().await, failing.next_event().await]
        .iter()
        .map(|r| r["body"]["event"]["text"].as_str().unwrap().to_owned())
        .collect();
    texts.sort();
    assert_eq!(texts, ["ticket 0", "ticket 1"]);
    // Anything more queued would have been attempted (and parked) at once by now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let list = app.get(&dead, &team.admin.access).await.expect(200).clone();
    assert_eq!(list.as_array().map_or(0, Vec::len), 2, "{list}");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), failing.next_event())
            .await
            .is_err(),
        "an event past the queue's limit was sent"
    );
}

/// The server binary, killed with SIGKILL while a delivery waits for its endpoint, delivers
/// it after restart exactly once (one successful answer per event id).
async fn an_event_queued_before_a_sigkill_is_delivered_once_after_restart(backend: Backend) {
    use crate::durability::{json_post, start_with_env};
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _guard) = crate::durability::database(backend, dir.path()).await;
    let env = [
        ("CONCORD_BOTS__EVENT_ALLOWED_NETWORKS", "[\"127.0.0.1/32\"]"),
        ("CONCORD_BOTS__EVENT_RETRY_DELAYS_MS", "[200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]"),
        ("CONCORD_BOTS__EVENT_TIMEOUT_MS", "1000"),
    ];
    let mut server = start_with_env(dir.path(), &database_url, &env);
    let client = reqwest::Client::new();
    let (access, ch) = server
        .admin_with_channel(&client, "admin@example.org", "Admin")
        .await;
    let get = |url: String| {
        let (client, access) = (client.clone(), access.clone());
        async move {
            client
                .get(url)
                .bearer_auth(access)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let ws = get(format!("{}/api/v1/channels/{ch}", server.base)).await["workspace_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, bot) = json_post(
        &client,
        format!("{}/api/v1/workspaces/{ws}/bots", server.base),
        Some(&access),
        json!({"name": "Durable"}),
    )
    .await;
    let bot = bot["id"].as_str().unwrap().to_owned();
    let (s, _) = json_post(
        &client,
        format!("{}/api/v1/channels/{ch}/members", server.base),
        Some(&access),
        json!({"user_id": bot}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, made) = json_post(
        &client,
        format!(
            "{}/api/v1/workspaces/{ws}/bots/{bot}/signing-secret",
            server.base
        ),
        Some(&access),
        json!({}),
    )
    .await;
    assert_eq!(s, 201);
    let mut rx = Receiver::start(made["signing_secret"].as_str().unwrap()).await;
    let put = client
        .put(format!(
            "{}/api/v1/workspaces/{ws}/bots/{bot}/events",
            server.base
        ))
        .bearer_auth(&access)
        .json(&json!({"request_url": rx.url, "event_types": ["message"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    rx.next().await;

    // The endpoint is down; the event is queued and its first attempts fail.
    rx.mode("fail").await;
    let (s, _) = json_post(
        &client,
        format!("{}/api/v1/channels/{ch}/messages", server.base),
        Some(&access),
        json!({"text": "survives"}),
    )
    .await;
    assert_eq!(s, 201);
    let failed = rx.next_event().await;
    let event_id = failed["body"]["event_id"].as_str().unwrap().to_owned();
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    rx.mode("ok").await;
    // Attempts that were under way when the server died may still report: all failed.
    let mut answered_ok = 0;
    server = start_with_env(dir.path(), &database_url, &env);
    let delivered = loop {
        let r = rx.next_event().await;
        assert_eq!(r["body"]["event_id"], event_id.as_str(), "{r}");
        if r["answered"] == 200 {
            answered_ok += 1;
            break r;
        }
    };
    assert_eq!(delivered["body"]["event"]["text"], "survives");
    // (Its retry number counts the failed attempts recorded before the kill: possibly none.)

    // A later event arrives; the first one never again.
    // The session and its access token outlive the restart.
    let (s, _) = json_post(
        &client,
        format!("{}/api/v1/channels/{ch}/messages", server.base),
        Some(&access),
        json!({"text": "after restart"}),
    )
    .await;
    assert_eq!(s, 201);
    let later = rx.next_event().await;
    assert_eq!(later["body"]["event"]["text"], "after restart", "{later}");
    assert_ne!(later["body"]["event_id"], event_id.as_str());
    let restarted = Duration::from_millis(800);
    let quiet = tokio::time::timeout(restarted, rx.next_event()).await;
    assert!(quiet.is_err(), "delivered again: {quiet:?}");
    assert_eq!(answered_ok, 1);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
