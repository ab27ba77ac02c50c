//! Slash commands and ephemeral messages: an administrator gives a bot `/deploy`; a member
//! types it in a channel; an unmodified Slack app built with Bolt (tests/slack/bolt_app.mjs,
//! its signature check on) answers at once, through the command's `response_url`, with
//! `say` and with `chat.postEphemeral`, and reacts to an `app_mention`. What only the member
//! should see reaches only their WebSocket.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::bot_events::Receiver;
use crate::chat::{channel, say};
use crate::harness::{both_backends, spawn_app_with, Backend, Socket, Team, TestApp, WAIT};

/// A Bolt app running tests/slack/bolt_app.mjs, and the lines it printed.
struct BoltApp {
    _child: tokio::process::Child,
    lines: tokio::sync::mpsc::Receiver<Value>,
    url: String,
}

impl BoltApp {
    async fn start(api: &str, token: &str, secret: &str) -> BoltApp {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/slack");
        assert!(
            dir.join("node_modules/@slack/bolt").is_dir(),
            "run `npm ci` in tests/slack (./tests/run does)"
        );
        let config = json!({ "api": api, "token": token, "signingSecret": secret });
        let mut child = tokio::process::Command::new("node")
            .arg(dir.join("bolt_app.mjs"))
            .arg(config.to_string())
            .current_dir(&dir)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    if tx.send(value).await.is_err() {
                        break;
                    }
                }
            }
        });
        let mut app = BoltApp {
            _child: child,
            lines: rx,
            url: String::new(),
        };
        let first = app.line().await;
        let port = first["listening"].as_u64().expect("Bolt listens");
        app.url = format!("http://127.0.0.1:{port}/slack/events");
        app
    }

    /// The next line a handler printed; a listener's error fails the test.
    async fn line(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.lines.recv())
            .await
            .expect("the Bolt app reported in time")
            .expect("the Bolt app runs");
        assert!(
            line.get("error").is_none(),
            "a Bolt listener failed: {line}"
        );
        line
    }
}

/// A server that may call this machine's loopback address.
pub(crate) async fn commands_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |c| {
        c.bots.event_allowed_networks = vec!["127.0.0.1/32".parse().unwrap()];
        c.bots.event_retry_delays_ms = vec![0, 100];
        c.bots.event_timeout_ms = 1500;
    })
    .await
}

pub(crate) async fn add_to(app: &TestApp, team: &Team, channel: &str, who: &str) {
    app.post(
        &format!("/api/v1/channels/{channel}/members"),
        Some(&team.admin.access),
        json!({ "user_id": who }),
    )
    .await
    .expect(200);
}

/// A bot in `room` with a token of every scope and a signing secret: (id, token, secret).
pub(crate) async fn bot_in(
    app: &TestApp,
    team: &Team,
    room: &str,
    name: &str,
) -> (String, String, String) {
    let ws = &team.ws;
    let bot = app
        .post(
            &format!("/api/v1/workspaces/{ws}/bots"),
            Some(&team.admin.access),
            json!({ "name": name }),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    add_to(app, team, room, &bot).await;
    let token = app
        .post(
            &format!("/api/v1/workspaces/{ws}/bots/{bot}/tokens"),
            Some(&team.admin.access),
            json!({ "scopes": ["chat:write", "channels:read", "channels:history", "reactions:write", "users:read", "commands"] }),
        )
        .await
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = app
        .post(
            &format!("/api/v1/workspaces/{ws}/bots/{bot}/signing-secret"),
            Some(&team.admin.access),
            json!({}),
        )
        .await
        .expect(201)["signing_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    (bot, token, secret)
}

pub(crate) async fn give_command(
    app: &TestApp,
    team: &Team,
    bot: &str,
    name: &str,
    url: &str,
) -> Value {
    app.post(
        &format!("/api/v1/workspaces/{}/bots/{bot}/commands", team.ws),
        Some(&team.admin.access),
        json!({ "command": name, "url": url, "description": "Deploy a service", "usage_hint": "[service] [env]" }),
    )
    .await
    .expect(201)
    .clone()
}

async fn run(
    app: &TestApp,
    who: &str,
    room: &str,
    command: &str,
    text: &str,
) -> crate::harness::Reply {
    app.post(
        &format!("/api/v1/channels/{room}/commands"),
        Some(who),
        json!({ "command": command, "text": text }),
    )
    .await
}

/// The texts of the `ephemeral` frames `socket` gets until `want` of them came.
async fn ephemerals(socket: &mut Socket, want: usize) -> Vec<Value> {
    let mut got = Vec::new();
    while got.len() < want {
        let frame = socket.next().await.expect("an ephemeral frame in time");
        if frame["type"] == "ephemeral" {
            got.push(frame["message"].clone());
        }
    }
    got
}

pub(crate) async fn history(app: &TestApp, token: &str, room: &str) -> Vec<Value> {
    app.get(&format!("/api/v1/channels/{room}/messages"), token)
        .await
        .expect(200)
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn a_bolt_app_answers_a_slash_command_and_a_mention(backend: Backend) {
    let app = commands_app(backend).await;
    let team = app.team().await;
    let deploys = channel(&app, &team.admin, &team.ws, "deploys", "public").await;
    add_to(&app, &team, &deploys, &team.ann.user_id).await;
    let (bot, token, secret) = bot_in(&app, &team, &deploys, "CI").await;
    let mut bolt = BoltApp::start(&format!("{}/api/slack/", app.base), &token, &secret).await;
    // Bolt answers the url_verification challenge itself.
    app.put(
        &format!("/api/v1/workspaces/{}/bots/{bot}/events", team.ws),
        &team.admin.access,
        json!({ "request_url": bolt.url, "event_types": ["app_mention"] }),
    )
    .await
    .expect(200);
    let made = give_command(&app, &team, &bot, "/deploy", &bolt.url).await;
    assert_eq!(made["command"], "/deploy");
    assert_eq!(made["bot_id"], bot.as_str());
    assert_eq!(made["url"], bolt.url.as_str());

    // Members see the workspace's commands (without their URLs) as they type `/`.
    let offered = app
        .get(
            &format!("/api/v1/workspaces/{}/commands", team.ws),
            &team.ann.access,
        )
        .await;
    let offered = offered.expect(200).as_array().unwrap().clone();
    assert_eq!(offered.len(), 1, "{offered:?}");
    assert_eq!(offered[0]["command"], "/deploy");
    assert_eq!(offered[0]["usage_hint"], "[service] [env]");
    assert!(offered[0].get("url").is_none());

    let mut ann_socket = app.socket(&team.ann.access, None).await;
    let mut admin_socket = app.socket(&team.admin.access, None).await;

    // Ann types `/Deploy api prod`: Bolt acknowledges with text, which only Ann sees.
    let reply = run(&app, &team.ann.access, &deploys, "/Deploy", "api prod").await;
    let reply = reply.expect(200);
    assert_eq!(reply["ephemeral"]["text"], "Deploying api prod…", "{reply}");
    assert_eq!(reply["ephemeral"]["author_id"], bot.as_str());
    assert_eq!(reply["ephemeral"]["user_id"], team.ann.user_id.as_str());
    assert!(reply["message"].is_null());

    // What Bolt's handler was given: Slack's slash command payload.
    let handled = bolt.line().await;
    let command = &handled["command"];
    assert_eq!(command["command"], "/deploy");
    assert_eq!(command["text"], "api prod");
    assert_eq!(command["user_id"], team.ann.user_id.as_str());
    assert_eq!(command["channel_id"], deploys.as_str());
    assert_eq!(command["channel_name"], "deploys");
    assert_eq!(command["team_id"], team.ws.as_str());
    assert_eq!(command["api_app_id"], bot.as_str());
    assert!(command["trigger_id"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    let response_url = command["response_url"].as_str().unwrap().to_owned();
    assert!(
        response_url.starts_with(&format!("{}/hooks/responses/", app.base)),
        "{response_url}"
    );

    // `respond` (in_channel, through the response URL) and `say` posted as the bot.
    let seen = history(&app, &team.ann.access, &deploys).await;
    let by_bot: Vec<&str> = seen
        .iter()
        .filter(|m| m["author_id"] == bot.as_str())
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert!(
        by_bot
            .iter()
            .any(|t| t.starts_with("Deployed") && t.contains("api prod")),
        "{by_bot:?}"
    );
    assert!(by_bot.contains(&"api prod is live"), "{by_bot:?}");
    assert!(!seen.iter().any(|m| m["text"]
        .as_str()
        .is_some_and(|t| t.contains("Only you see"))));

    // Ann's socket got both ephemeral messages; the admin, also in the channel, neither.
    let texts: Vec<String> = ephemerals(&mut ann_socket, 2)
        .await
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        texts.contains(&"Deploying api prod…".to_owned()),
        "{texts:?}"
    );
    assert!(texts.contains(&"Only you see this".to_owned()), "{texts:?}");
    while let Some(frame) = admin_socket.next_within(Duration::from_millis(300)).await {
        assert_ne!(frame["type"], "ephemeral", "{frame}");
    }

    // The response URL takes five answers in all: `respond` used one.
    for n in 0..4 {
        let r = reqwest::Client::new()
            .post(&response_url)
            .json(&json!({ "text": format!("update {n}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["ok"], true);
    }
    let used_up = reqwest::Client::new()
        .post(&response_url)
        .json(&json!({ "text": "one too many" }))
        .send()
        .await
        .unwrap();
    assert_eq!(used_up.status(), 404);
    assert_eq!(
        used_up.json::<Value>().await.unwrap()["error"],
        "expired_url"
    );
    assert_eq!(ephemerals(&mut ann_socket, 4).await.len(), 4);

    // Ann mentions the bot: Bolt gets an app_mention and reacts with :eyes:.
    let posted = say(&app, &team.ann, &deploys, &format!("@{bot} status?")).await;
    let mention = bolt.line().await;
    assert_eq!(mention["mention"]["type"], "app_mention");
    let id = posted["id"].as_str().unwrap();
    let reacted = history(&app, &team.ann.access, &deploys)
        .await
        .into_iter()
        .find(|m| m["id"] == id)
        .unwrap();
    assert_eq!(reacted["reactions"][":eyes:"][0], bot.as_str(), "{reacted}");

    // Audited: the command made, Ann's invocation (not its text), the bot's ephemerals.
    let audit = app.audit_events(&team.admin.access).await;
    assert!(audit.iter().any(|e| e["action"] == "bot_command.create"));
    let invoked = audit
        .iter()
        .find(|e| e["action"] == "bot_command.invoke")
        .expect("the invocation is audited");
    assert_eq!(invoked["actor_id"], team.ann.user_id.as_str());
    assert!(!invoked.to_string().contains("api prod"), "{invoked}");
    assert!(audit
        .iter()
        .any(|e| e["action"] == "message.ephemeral_sent" && e["actor_id"] == bot.as_str()));
}

async fn slash_command_mistakes_get_clear_errors(backend: Backend) {
    let app = commands_app(backend).await;
    let team = app.team().await;
    let ws = team.ws.clone();
    let room = channel(&app, &team.admin, &ws, "ops", "public").await;
    add_to(&app, &team, &room, &team.ann.user_id).await;
    let (bot, token, secret) = bot_in(&app, &team, &room, "Ops").await;
    let mut endpoint = Receiver::start(&secret).await;
    let commands = format!("/api/v1/workspaces/{ws}/bots/{bot}/commands");

    // Making commands: bad names, private addresses, no signing secret, duplicates, members.
    for (body, code) in [
        (
            json!({ "command": "/two words", "url": endpoint.url }),
            "validation_failed",
        ),
        (
            json!({ "command": "/", "url": endpoint.url }),
            "validation_failed",
        ),
        (
            json!({ "command": "/x", "url": "http://10.1.2.3/commands" }),
            "validation_failed",
        ),
        (
            json!({ "command": "/x", "url": "ftp://example.org/" }),
            "validation_failed",
        ),
        (
            json!({ "command": "/x", "url": endpoint.url, "description": "a\nb" }),
            "validation_failed",
        ),
    ] {
        app.post(&commands, Some(&team.admin.access), body)
            .await
            .expect_error(422, code);
    }
    app.post(
        &commands,
        Some(&team.ann.access),
        json!({ "command": "/x", "url": endpoint.url }),
    )
    .await
    .expect_error(403, "forbidden");
    let quiet = app
        .post(
            &format!("/api/v1/workspaces/{ws}/bots"),
            Some(&team.admin.access),
            json!({ "name": "Quiet" }),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &format!("/api/v1/workspaces/{ws}/bots/{quiet}/commands"),
        Some(&team.admin.access),
        json!({ "command": "/quiet", "url": endpoint.url }),
    )
    .await
    .expect_error(422, "no_signing_secret");
    let made = give_command(&app, &team, &bot, "/ops", &endpoint.url).await;
    app.post(
        &commands,
        Some(&team.admin.access),
        json!({ "command": "/OPS", "url": endpoint.url }),
    )
    .await
    .expect_error(409, "command_taken");

    // In a private channel the bot is not in, the command still works, the bot is not told
    // the channel's name, and its answers reach the person alone (even `in_channel` ones).
    let hush = channel(&app, &team.admin, &ws, "hush", "private").await;
    add_to(&app, &team, &hush, &team.ann.user_id).await;
    let mut ann_socket = app.socket(&team.ann.access, None).await;
    let quiet_reply = run(&app, &team.ann.access, &hush, "/ops", "status").await;
    assert!(quiet_reply.expect(200)["ephemeral"].is_null());
    let request = endpoint.next_any().await;
    assert_eq!(request["verified"], true, "{request}");
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(request["raw"].as_str().unwrap().as_bytes())
            .into_owned()
            .collect();
    assert_eq!(form["channel_name"], "privategroup");
    assert_eq!(form["channel_id"], hush);
    assert_eq!(form["text"], "status");
    let respond = |body: Value| {
        let url = form["response_url"].clone();
        async move {
            reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let first = respond(json!({ "text": "all quiet" })).await;
    assert_eq!(first.status(), 200, "{:?}", first.text().await);
    assert_eq!(
        respond(json!({ "response_type": "in_channel", "text": "for everyone" }))
            .await
            .status(),
        200
    );
    // A malformed answer is refused without using up one of the five.
    let malformed = respond(json!({ "blocks": "nope" })).await;
    assert_eq!(malformed.status(), 400);
    assert_eq!(
        malformed.json::<Value>().await.unwrap()["error"],
        "invalid_blocks"
    );
    for n in 0..3 {
        assert_eq!(
            respond(json!({ "text": format!("more {n}") }))
                .await
                .status(),
            200
        );
    }
    assert_eq!(respond(json!({ "text": "sixth" })).await.status(), 404);
    let texts: Vec<String> = ephemerals(&mut ann_socket, 2)
        .await
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts[0], "all quiet");
    assert!(
        texts[1].starts_with("for everyone") && texts[1].contains("Only you can see this"),
        "{texts:?}"
    );
    assert!(history(&app, &team.ann.access, &hush).await.is_empty());

    // Running commands.
    run(&app, &team.ann.access, &room, "/nope", "")
        .await
        .expect_error(422, "unknown_command");
    run(&app, &team.ann.access, &room, "not a command", "")
        .await
        .expect_error(422, "validation_failed");
    run(&app, &team.ann.access, &room, "/ops", &"x".repeat(4001))
        .await
        .expect_error(422, "validation_failed");
    run(&app, &team.bo.access, &room, "/ops", "")
        .await
        .expect_error(422, "not_in_channel");
    endpoint.mode("fail").await;
    run(&app, &team.ann.access, &room, "/ops", "restart")
        .await
        .expect_error(502, "command_failed");
    endpoint.mode("hang").await;
    run(&app, &team.ann.access, &room, "/ops", "restart")
        .await
        .expect_error(502, "command_timeout");
    // A bot has at most `bots.event_concurrency_per_bot` (4) invocations in flight.
    let hanging: Vec<_> = (0..4)
        .map(|_| {
            let (base, access, room) = (app.base.clone(), team.ann.access.clone(), room.clone());
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(format!("{base}/api/v1/channels/{room}/commands"))
                    .bearer_auth(access)
                    .json(&json!({ "command": "/ops", "text": "wait" }))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    run(&app, &team.ann.access, &room, "/ops", "one more")
        .await
        .expect_error(503, "command_busy");
    for h in hanging {
        assert_eq!(h.await.unwrap(), 502);
    }
    endpoint.mode("ok").await;

    // A bogus response URL.
    let bogus = reqwest::Client::new()
        .post(format!("{}/hooks/responses/not-a-real-secret", app.base))
        .json(&json!({ "text": "hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bogus.status(), 404);
    assert_eq!(bogus.json::<Value>().await.unwrap()["error"], "expired_url");

    // chat.postEphemeral to someone outside the channel, or into a channel the bot is not in.
    let elsewhere = channel(&app, &team.admin, &ws, "elsewhere", "public").await;
    for (channel_id, user, error) in [
        (&room, &team.bo.user_id, "user_not_in_channel"),
        (&elsewhere, &team.admin.user_id, "not_in_channel"),
    ] {
        let r = reqwest::Client::new()
            .post(format!("{}/api/slack/chat.postEphemeral", app.base))
            .bearer_auth(&token)
            .json(&json!({ "channel": channel_id, "user": user, "text": "psst" }))
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["ok"], false, "{body}");
        assert_eq!(body["error"], error, "{body}");
    }

    // Changing and deleting a command; a deleted command is no longer offered.
    let id = made["id"].as_str().unwrap();
    let changed = app
        .put(
            &format!("/api/v1/workspaces/{ws}/commands/{id}"),
            &team.admin.access,
            json!({ "url": endpoint.url, "description": "Operate things" }),
        )
        .await;
    assert_eq!(changed.expect(200)["description"], "Operate things");
    app.delete(
        &format!("/api/v1/workspaces/{ws}/commands/{id}"),
        &team.admin.access,
    )
    .await
    .expect(204);
    let offered = app
        .get(
            &format!("/api/v1/workspaces/{ws}/commands"),
            &team.ann.access,
        )
        .await;
    assert!(offered.expect(200).as_array().unwrap().is_empty());
    run(&app, &team.ann.access, &room, "/ops", "")
        .await
        .expect_error(422, "unknown_command");
}

/// The message in `room`'s history whose text starts with `prefix`.
async fn message_starting(app: &TestApp, token: &str, room: &str, prefix: &str) -> Value {
    history(app, token, room)
        .await
        .into_iter()
        .find(|m| m["text"].as_str().is_some_and(|t| t.starts_with(prefix)))
        .unwrap_or_else(|| panic!("a message starting {prefix:?}"))
}

pub(crate) async fn press(
    app: &TestApp,
    who: &str,
    message: &str,
    body: Value,
) -> crate::harness::Reply {
    app.post(
        &format!("/api/v1/messages/{message}/actions"),
        Some(who),
        body,
    )
    .await
}

async fn a_bolt_app_posts_a_button_and_handles_its_press(backend: Backend) {
    let app = commands_app(backend).await;
    let team = app.team().await;
    let ws = team.ws.clone();
    let room = channel(&app, &team.admin, &ws, "releases", "public").await;
    add_to(&app, &team, &room, &team.ann.user_id).await;
    let (bot, token, secret) = bot_in(&app, &team, &room, "Release").await;
    let mut bolt = BoltApp::start(&format!("{}/api/slack/", app.base), &token, &secret).await;
    give_command(&app, &team, &bot, "/release", &bolt.url).await;
    let interactivity = format!("/api/v1/workspaces/{ws}/bots/{bot}/interactivity");
    let set = app
        .put(
            &interactivity,
            &team.admin.access,
            json!({ "url": bolt.url }),
        )
        .await;
    assert_eq!(set.expect(200)["interactivity_url"], bolt.url.as_str());
    let events = app
        .get(
            &format!("/api/v1/workspaces/{ws}/bots/{bot}/events"),
            &team.admin.access,
        )
        .await;
    assert_eq!(events.expect(200)["interactivity_url"], bolt.url.as_str());
    let mut ann_socket = app.socket(&team.ann.access, None).await;

    // `/release v2`: Bolt's `say` posts a message with blocks, which are kept structured.
    run(&app, &team.ann.access, &room, "/release", "v2")
        .await
        .expect(200);
    bolt.line().await;
    let posted = message_starting(&app, &team.ann.access, &room, "**Release v2**").await;
    let blocks = posted["blocks"].as_array().expect("blocks kept").clone();
    assert_eq!(blocks.len(), 3, "{posted}");
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(
        blocks[0]["block_id"], "b0",
        "a block_id is given where missing"
    );
    assert_eq!(blocks[2]["block_id"], "release");
    assert_eq!(blocks[2]["elements"][0]["action_id"], "approve");
    assert_eq!(blocks[2]["elements"][0]["style"], "primary");
    let id = posted["id"].as_str().unwrap().to_owned();
    // The hub carries them too.
    loop {
        let frame = ann_socket.next().await.expect("the post reaches Ann");
        let event = &frame["event"];
        if event["type"] == "message_created" && event["message"]["id"] == id.as_str() {
            assert_eq!(event["message"]["blocks"], json!(blocks), "{frame}");
            break;
        }
    }
    // And Slack's Web API.
    let slack_history: Value = reqwest::Client::new()
        .post(format!("{}/api/slack/conversations.history", app.base))
        .bearer_auth(&token)
        .form(&[("channel", room.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = slack_history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["blocks"].is_array())
        .expect("conversations.history has the blocks");
    assert_eq!(listed["blocks"], json!(blocks));

    // Ann presses Approve: Bolt gets Slack's block_actions payload and replaces the message
    // through its response URL.
    press(
        &app,
        &team.ann.access,
        &id,
        json!({ "block_id": "release", "action_id": "approve", "value": "forged" }),
    )
    .await
    .expect(204);
    let handled = bolt.line().await;
    let payload = &handled["action"];
    assert_eq!(payload["type"], "block_actions", "{payload}");
    assert_eq!(payload["user"]["id"], team.ann.user_id.as_str());
    assert_eq!(payload["channel"]["id"], room.as_str());
    assert_eq!(payload["team"]["id"], ws.as_str());
    assert_eq!(payload["api_app_id"], bot.as_str());
    assert_eq!(payload["container"]["type"], "message");
    assert_eq!(payload["container"]["message_ts"], payload["message"]["ts"]);
    assert_eq!(payload["message"]["blocks"], json!(blocks));
    let action = &payload["actions"][0];
    assert_eq!(action["action_id"], "approve");
    assert_eq!(action["block_id"], "release");
    assert_eq!(
        action["value"], "v2",
        "the value comes from the message, not the client"
    );
    let replaced = history(&app, &team.ann.access, &room)
        .await
        .into_iter()
        .find(|m| m["id"] == id.as_str())
        .unwrap();
    assert!(
        replaced["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Approved v2 by")),
        "{replaced}"
    );
    assert!(replaced.get("blocks").is_none(), "{replaced}");
    assert!(replaced["edited_at"].is_string());
    // The button is gone with the blocks.
    press(
        &app,
        &team.ann.access,
        &id,
        json!({ "block_id": "release", "action_id": "approve" }),
    )
    .await
    .expect_error(409, "no_such_action");

    // A pick in the menu of a second release: Bolt edits the message with chat.update.
    run(&app, &team.ann.access, &room, "/release", "v3")
        .await
        .expect(200);
    bolt.line().await;
    let second = message_starting(&app, &team.ann.access, &room, "**Release v3**").await;
    let second_id = second["id"].as_str().unwrap().to_owned();
    for (body, status, code) in [
        (
            json!({ "block_id": "release", "action_id": "env" }),
            422,
            "validation_failed",
        ),
        (
            json!({ "block_id": "release", "action_id": "env", "selected_option": "moon" }),
            422,
            "validation_failed",
        ),
        (
            json!({ "block_id": "release", "action_id": "nope" }),
            409,
            "no_such_action",
        ),
        (
            json!({ "block_id": "nope", "action_id": "env" }),
            409,
            "no_such_action",
        ),
        (
            json!({ "block_id": "b0", "action_id": "a0" }),
            409,
            "no_such_action",
        ),
    ] {
        press(&app, &team.ann.access, &second_id, body)
            .await
            .expect_error(status, code);
    }
    // Bo is not in the channel; nobody presses buttons of a message that does not exist.
    press(
        &app,
        &team.bo.access,
        &second_id,
        json!({ "block_id": "release", "action_id": "env", "selected_option": "staging" }),
    )
    .await
    .expect_error(422, "not_in_channel");
    press(
        &app,
        &team.ann.access,
        "0190a0b0-0000-7000-8000-000000000000",
        json!({ "block_id": "release", "action_id": "env", "selected_option": "staging" }),
    )
    .await
    .expect_error(404, "not_found");
    press(
        &app,
        &team.ann.access,
        &second_id,
        json!({ "block_id": "release", "action_id": "env", "selected_option": "staging" }),
    )
    .await
    .expect(204);
    let handled = bolt.line().await;
    let action = &handled["action"]["actions"][0];
    assert_eq!(action["type"], "static_select");
    assert_eq!(action["selected_option"]["value"], "staging");
    assert_eq!(
        handled["action"]["state"]["values"]["release"]["env"]["selected_option"]["value"],
        "staging"
    );
    let edited = history(&app, &team.ann.access, &room)
        .await
        .into_iter()
        .find(|m| m["id"] == second_id.as_str())
        .unwrap();
    assert_eq!(edited["text"], "Going to **staging**", "{edited}");
    assert_eq!(edited["blocks"][0]["type"], "section", "{edited}");
    // chat.update without `blocks` keeps them, as Slack does; an empty array removes them.
    let ts = handled["action"]["message"]["ts"]
        .as_str()
        .unwrap()
        .to_owned();
    let update = |body: Value| {
        let (base, token) = (app.base.clone(), token.clone());
        async move {
            let answer: Value = reqwest::Client::new()
                .post(format!("{base}/api/slack/chat.update"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(answer["ok"], true, "{answer}");
            answer
        }
    };
    let kept = update(json!({ "channel": room, "ts": ts, "text": "Still going" })).await;
    assert_eq!(kept["message"]["blocks"][0]["type"], "section", "{kept}");
    let cleared = update(json!({ "channel": room, "ts": ts, "text": "Done", "blocks": [] })).await;
    assert!(cleared["message"].get("blocks").is_none(), "{cleared}");

    // A button in an answer only Ann sees: pressed through the ephemeral message's id, it
    // reaches the bot marked ephemeral, and the bot's answer reaches Ann alone.
    give_command(&app, &team, &bot, "/ask", &bolt.url).await;
    let asked = run(&app, &team.ann.access, &room, "/ask", "").await;
    let asked = asked.expect(200)["ephemeral"].clone();
    assert_eq!(
        asked["blocks"][0]["accessory"]["action_id"], "noted",
        "{asked}"
    );
    bolt.line().await;
    let eid = asked["id"].as_str().unwrap().to_owned();
    let pressed_alone = |who: String| {
        let (base, eid) = (app.base.clone(), eid.clone());
        async move {
            reqwest::Client::new()
                .post(format!("{base}/api/v1/ephemerals/{eid}/actions"))
                .bearer_auth(who)
                .json(&json!({ "block_id": "b0", "action_id": "noted" }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(pressed_alone(team.bo.access.clone()).await, 404);
    assert_eq!(pressed_alone(team.admin.access.clone()).await, 404);
    assert_eq!(pressed_alone(team.ann.access.clone()).await, 204);
    let handled = bolt.line().await;
    assert_eq!(handled["action"]["container"]["is_ephemeral"], true);
    assert_eq!(handled["action"]["actions"][0]["value"], "yes");
    let shown = ephemerals(&mut ann_socket, 2).await;
    assert_eq!(shown[1]["text"], "Noted (ephemeral: true)", "{shown:?}");

    // A person's own message has no buttons; a bot without an interactivity URL takes none.
    let mine = say(&app, &team.ann, &room, "plain words").await;
    press(
        &app,
        &team.ann.access,
        mine["id"].as_str().unwrap(),
        json!({ "block_id": "b0", "action_id": "a0" }),
    )
    .await
    .expect_error(409, "no_such_action");
    run(&app, &team.ann.access, &room, "/release", "v4")
        .await
        .expect(200);
    bolt.line().await;
    let third = message_starting(&app, &team.ann.access, &room, "**Release v4**").await;
    app.put(&interactivity, &team.ann.access, json!({ "url": null }))
        .await
        .expect_error(403, "forbidden");
    app.put(
        &interactivity,
        &team.admin.access,
        json!({ "url": "http://10.0.0.1/x" }),
    )
    .await
    .expect_error(422, "validation_failed");
    let cleared = app
        .put(&interactivity, &team.admin.access, json!({ "url": null }))
        .await;
    assert!(cleared.expect(200)["interactivity_url"].is_null());
    press(
        &app,
        &team.ann.access,
        third["id"].as_str().unwrap(),
        json!({ "block_id": "release", "action_id": "approve" }),
    )
    .await
    .expect_error(422, "not_interactive");

    // A person's commands and presses together are limited (about 30 a minute).
    let mut limited = None;
    for _ in 0..40 {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/messages/{second_id}/actions", app.base))
            .bearer_auth(&team.ann.access)
            .json(&json!({ "block_id": "release", "action_id": "nope" }))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    let limited = limited.expect("presses are rate limited");
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(
        limited.json::<Value>().await.unwrap()["error"]["code"],
        "rate_limited"
    );
    run(&app, &team.ann.access, &room, "/release", "v5")
        .await
        .expect_error(429, "rate_limited");

    // Audited: who pressed what, not the message's text.
    let audit = app.audit_events(&team.admin.access).await;
    let pressed = audit
        .iter()
        .find(|e| e["action"] == "bot_action.invoke")
        .expect("the press is audited");
    assert_eq!(pressed["actor_id"], team.ann.user_id.as_str());
    assert!(!pressed.to_string().contains("Release v2"), "{pressed}");
    assert!(audit.iter().any(|e| e["action"] == "bot.interactivity_set"));
}

both_backends!(
    a_bolt_app_answers_a_slash_command_and_a_mention,
    slash_command_mistakes_get_clear_errors,
    a_bolt_app_posts_a_button_and_handles_its_press,
);
