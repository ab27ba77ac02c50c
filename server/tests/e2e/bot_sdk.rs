//! The Rust bot SDK (bots/sdk) against the real server: its Web API client posts, edits,
//! lists, reacts and deletes as a bot and reads Slack's refusals as error codes; its
//! receiver, listening as a bot's request, command and interactivity URL, answers the
//! url_verification challenge and gets an event, a slash command and a button press, all
//! signed; and the `notify` example's logic reports a command through an incoming webhook.

use concord_bot_sdk::blocks::{self, button, primary};
use concord_bot_sdk::{
    notify, respond, signature, verify, Error, Message, Receiver, VerifyError, WebClient, Webhook,
};
use serde_json::{json, Value};

use crate::bot_commands::{add_to, bot_in, commands_app, give_command, history, press};
use crate::chat::{channel, say};
use crate::harness::{both_backends, Backend, WAIT};

#[test]
fn signatures_are_checked_as_slack_documents() {
    // Slack's documented example (api.slack.com/authentication/verifying-requests-from-slack).
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let sent = 1531420618;
    let good = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    assert_eq!(signature(secret, sent, body), good);
    assert_eq!(verify(secret, "1531420618", good, body, sent + 10), Ok(()));
    assert_eq!(verify(secret, "1531420618", good, body, sent - 10), Ok(()));
    // Tampered body, signature, secret or timestamp.
    let mut tampered = body.to_vec();
    tampered[6] ^= 1;
    let bad = Err(VerifyError::BadSignature);
    assert_eq!(verify(secret, "1531420618", good, &tampered, sent), bad);
    let flipped = good.replace("a2114d", "a2114e");
    assert_eq!(verify(secret, "1531420618", &flipped, body, sent), bad);
    assert_eq!(
        verify("another secret", "1531420618", good, body, sent),
        bad
    );
    assert_eq!(verify(secret, "1531420619", good, body, sent), bad);
    assert_eq!(verify(secret, "1531420618", "v0=zz", body, sent), bad);
    assert_eq!(verify(secret, "1531420618", &good[3..], body, sent), bad);
    // Stale, or from the future, by more than five minutes.
    let stale = Err(VerifyError::Stale);
    assert_eq!(verify(secret, "1531420618", good, body, sent + 301), stale);
    assert_eq!(verify(secret, "1531420618", good, body, sent - 301), stale);
    assert_eq!(
        verify(secret, "yesterday", good, body, sent),
        Err(VerifyError::Missing)
    );
}

async fn the_web_client_speaks_the_web_api(backend: Backend) {
    let app = commands_app(backend).await;
    let team = app.team().await;
    let room = channel(&app, &team.admin, &team.ws, "sdk", "public").await;
    add_to(&app, &team, &room, &team.ann.user_id).await;
    let (bot, token, _) = bot_in(&app, &team, &room, "Helper").await;
    let web = WebClient::new(&app.base, &token);

    let me = web.auth_test().await.unwrap();
    assert_eq!(me.user_id, bot);
    assert_eq!(me.team_id, team.ws);
    assert_eq!(me.user, "Helper");

    // Post with blocks, reply in its thread, edit, react.
    let posted = web
        .post_message(
            &room,
            Message::text("Release v1").blocks(vec![
                blocks::header("Release v1"),
                blocks::section("Ready to ship *v1*"),
                blocks::actions("release", vec![primary(button("approve", "Approve", "v1"))]),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(posted.channel, room);
    assert_eq!(
        posted.message["blocks"][2]["elements"][0]["action_id"],
        "approve"
    );
    let reply = web
        .post_message(&room, Message::text("shipping").thread_ts(&posted.ts))
        .await
        .unwrap();
    assert_ne!(reply.ts, posted.ts);
    let edited = web
        .update(&room, &posted.ts, "Release v1 (shipped)")
        .await
        .unwrap();
    assert_eq!(edited.ts, posted.ts);
    let thread = web.all_replies(&room, &posted.ts).await.unwrap();
    let texts: Vec<&str> = thread.iter().filter_map(|m| m["text"].as_str()).collect();
    assert_eq!(texts, ["Release v1 (shipped)", "shipping"], "{thread:?}");
    web.reactions_add(&room, &posted.ts, "rocket")
        .await
        .unwrap();
    web.reactions_remove(&room, &posted.ts, "rocket")
        .await
        .unwrap();
    assert!(!web
        .post_ephemeral(&room, &team.ann.user_id, "only Ann sees this")
        .await
        .unwrap()
        .is_empty());

    // Lists, a page of two at a time, cursors followed.
    for n in 0..5 {
        web.post_message(&room, format!("note {n}").as_str())
            .await
            .unwrap();
    }
    let paged = web.clone().with_page_size(2);
    let first = paged.conversations_history(&room, None).await.unwrap();
    assert_eq!(first.items.len(), 2);
    assert!(first.next_cursor.is_some());
    let all = paged.all_history(&room).await.unwrap();
    let texts: Vec<&str> = all.iter().filter_map(|m| m["text"].as_str()).collect();
    assert_eq!(
        texts[..5],
        ["note 4", "note 3", "note 2", "note 1", "note 0"],
        "{all:?}"
    );
    assert!(texts.contains(&"Release v1 (shipped)"), "{all:?}");
    let mut stamps: Vec<&str> = all.iter().filter_map(|m| m["ts"].as_str()).collect();
    stamps.dedup();
    assert_eq!(stamps.len(), all.len(), "no message twice");
    let members = paged.all_members(&room).await.unwrap();
    for who in [&bot, &team.ann.user_id, &team.admin.user_id] {
        assert!(members.contains(who), "{members:?}");
    }
    let channels = paged.all_conversations().await.unwrap();
    let sdk = channels.iter().find(|c| c.id == room).expect("listed");
    assert!(sdk.is_member && !sdk.is_private);
    assert_eq!(web.conversations_info(&room).await.unwrap().name, "sdk");
    let users = paged.all_users().await.unwrap();
    assert!(users.iter().any(|u| u.id == bot && u.is_bot), "{users:?}");
    assert!(users.iter().any(|u| u.id == team.ann.user_id && !u.is_bot));
    assert_eq!(
        web.users_info(&team.ann.user_id).await.unwrap().id,
        team.ann.user_id
    );

    // Delete, then the message is gone.
    web.delete(&room, &posted.ts).await.unwrap();
    let left = web.all_history(&room).await.unwrap();
    assert!(
        !left.iter().any(|m| m["text"] == "Release v1 (shipped)"),
        "{left:?}"
    );
    let err = web.delete(&room, "1.999999").await.unwrap_err();
    assert!(matches!(err, Error::Api { .. }), "{err}");

    // Slack's refusals are the SDK's `Api` errors with their codes.
    let elsewhere = channel(&app, &team.admin, &team.ws, "elsewhere", "public").await;
    match web.post_message(&elsewhere, "hi").await {
        Err(Error::Api { code, .. }) => assert_eq!(code, "not_in_channel"),
        other => panic!("expected not_in_channel, got {other:?}"),
    }
    match web.conversations_join(&elsewhere).await {
        Err(Error::Api { code, needed }) => {
            assert_eq!(code, "missing_scope");
            assert_eq!(needed.as_deref(), Some("channels:join"));
        }
        other => panic!("expected missing_scope, got {other:?}"),
    }
    let stranger = WebClient::new(&format!("{}/api/slack/", app.base), "xoxb-not-a-token");
    match stranger.auth_test().await {
        Err(Error::Api { code, .. }) => assert_eq!(code, "invalid_auth"),
        other => panic!("expected invalid_auth, got {other:?}"),
    }

    // Past the token's posting rate, `RateLimited` with the server's Retry-After.
    let impatient = web.clone().with_retries(0);
    let mut limited = None;
    for n in 0..150 {
        match impatient
            .post_message(&room, format!("flood {n}").as_str())
            .await
        {
            Ok(_) => {}
            Err(Error::RateLimited { retry_after }) => {
                limited = Some(retry_after);
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    let wait = limited.expect("posting is rate limited");
    assert!(wait.as_secs() >= 1, "{wait:?}");
}

/// The newest message of `room` whose text contains `needle`.
async fn message_with(
    app: &crate::harness::TestApp,
    token: &str,
    room: &str,
    needle: &str,
) -> Value {
    history(app, token, room)
        .await
        .into_iter()
        .find(|m| m["text"].as_str().is_some_and(|t| t.contains(needle)))
        .unwrap_or_else(|| panic!("a message with {needle:?}"))
}

/// What the receiver's callbacks saw.
type Seen = tokio::sync::mpsc::Receiver<(&'static str, Value)>;

async fn next(seen: &mut Seen, kind: &str) -> Value {
    loop {
        let (k, v) = tokio::time::timeout(WAIT, seen.recv())
            .await
            .unwrap_or_else(|_| panic!("the receiver got a {kind} in time"))
            .expect("the receiver runs");
        if k == kind {
            return v;
        }
    }
}

async fn the_receiver_gets_events_commands_and_presses(backend: Backend) {
    let app = commands_app(backend).await;
    let team = app.team().await;
    let ws = team.ws.clone();
    let room = channel(&app, &team.admin, &ws, "ops", "public").await;
    add_to(&app, &team, &room, &team.ann.user_id).await;
    let (bot, token, secret) = bot_in(&app, &team, &room, "Ops").await;

    let (tx, mut seen) = tokio::sync::mpsc::channel(32);
    let (events, commands, actions) = (tx.clone(), tx.clone(), tx);
    let receiver = Receiver::new(&secret)
        .on_event(move |e| {
            let tx = events.clone();
            async move {
                let _ = tx.send(("event", e.event)).await;
            }
        })
        .on_command(move |c| {
            let tx = commands.clone();
            async move {
                let answer = json!({ "response_type": "ephemeral", "text": format!("Deploying {}", c.text) });
                let _ = tx
                    .send(("command", json!({ "command": c.command, "text": c.text, "user": c.user_id, "channel": c.channel_id, "response_url": c.response_url })))
                    .await;
                Some(answer)
            }
        })
        .on_action(move |press| {
            let tx = actions.clone();
            async move {
                let value = press.actions.first().and_then(|a| a.chosen()).unwrap_or_default().to_owned();
                let answered = respond(
                    &press.response_url,
                    &json!({ "replace_original": true, "text": format!("Approved {value}") }),
                )
                .await;
                let _ = tx
                    .send(("action", json!({ "user": press.user_id, "channel": press.channel_id, "action": press.actions.first().map(|a| a.action_id.clone()), "value": value, "answered": answered.is_ok() })))
                    .await;
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/slack/events", listener.local_addr().unwrap());
    let server = tokio::spawn(receiver.serve(listener));

    // Unsigned requests are refused.
    let unsigned = reqwest::Client::new()
        .post(&url)
        .json(&json!({ "type": "url_verification", "challenge": "c" }))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);

    // The server's url_verification challenge is answered, so the request URL is taken.
    app.put(
        &format!("/api/v1/workspaces/{ws}/bots/{bot}/events"),
        &team.admin.access,
        json!({ "request_url": url, "event_types": ["message"] }),
    )
    .await
    .expect(200);
    say(&app, &team.ann, &room, "is the deploy done?").await;
    let event = next(&mut seen, "event").await;
    assert_eq!(event["type"], "message", "{event}");
    assert_eq!(event["text"], "is the deploy done?");
    assert_eq!(event["user"], team.ann.user_id.as_str());
    assert_eq!(event["channel"], room.as_str());

    // A slash command: the callback's answer is what Ann sees.
    give_command(&app, &team, &bot, "/deploy", &url).await;
    let reply = app
        .post(
            &format!("/api/v1/channels/{room}/commands"),
            Some(&team.ann.access),
            json!({ "command": "/deploy", "text": "api prod" }),
        )
        .await;
    assert_eq!(reply.expect(200)["ephemeral"]["text"], "Deploying api prod");
    let command = next(&mut seen, "command").await;
    assert_eq!(command["command"], "/deploy");
    assert_eq!(command["text"], "api prod");
    assert_eq!(command["user"], team.ann.user_id.as_str());
    assert_eq!(command["channel"], room.as_str());
    assert!(command["response_url"]
        .as_str()
        .is_some_and(|u| u.starts_with(&app.base)));

    // A button press: the callback replaces the message through its response URL.
    app.put(
        &format!("/api/v1/workspaces/{ws}/bots/{bot}/interactivity"),
        &team.admin.access,
        json!({ "url": url }),
    )
    .await
    .expect(200);
    WebClient::new(&app.base, &token)
        .post_message(
            &room,
            Message::text("Release v9").blocks(vec![
                blocks::section("Release v9 is ready"),
                blocks::actions("release", vec![primary(button("approve", "Approve", "v9"))]),
            ]),
        )
        .await
        .unwrap();
    let id = message_with(&app, &team.ann.access, &room, "Release v9").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    press(
        &app,
        &team.ann.access,
        &id,
        json!({ "block_id": "release", "action_id": "approve" }),
    )
    .await
    .expect(204);
    let action = next(&mut seen, "action").await;
    assert_eq!(action["action"], "approve", "{action}");
    assert_eq!(action["value"], "v9");
    assert_eq!(action["user"], team.ann.user_id.as_str());
    assert_eq!(action["channel"], room.as_str());
    assert_eq!(action["answered"], true);
    let replaced = history(&app, &team.ann.access, &room)
        .await
        .into_iter()
        .find(|m| m["id"] == id.as_str())
        .unwrap();
    assert_eq!(replaced["text"], "Approved v9", "{replaced}");
    server.abort();
}

async fn notify_reports_a_command_through_a_webhook(backend: Backend) {
    let app = commands_app(backend).await;
    let team = app.team().await;
    let room = channel(&app, &team.admin, &team.ws, "ci", "public").await;
    let (bot, _, _) = bot_in(&app, &team, &room, "CI").await;
    let hook = app
        .post(
            &format!("/api/v1/workspaces/{}/webhooks", team.ws),
            Some(&team.admin.access),
            json!({ "channel_id": room, "bot_id": bot }),
        )
        .await
        .expect(201)["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let webhook = Webhook::new(&hook);

    let failing: Vec<String> = [
        "sh",
        "-c",
        "echo compiling; echo 'test x failed' >&2; exit 3",
    ]
    .map(String::from)
    .to_vec();
    let outcome = notify::run_and_notify(&webhook, &failing, 20, false)
        .await
        .unwrap();
    assert_eq!(outcome.code, 3);
    assert!(!outcome.succeeded());
    assert_eq!(outcome.tail.len(), 2, "{:?}", outcome.tail);
    assert!(outcome.tail.contains(&"test x failed".to_owned()));
    let posted = message_with(&app, &team.admin.access, &room, "❌").await;
    let text = posted["text"].as_str().unwrap();
    assert!(text.contains("Command failed"), "{text}");
    assert!(text.contains("test x failed"), "{text}");
    assert_eq!(posted["author_id"], bot.as_str());
    assert_eq!(posted["blocks"][0]["type"], "header", "{posted}");

    let passing: Vec<String> = ["sh", "-c", "seq 1 50"].map(String::from).to_vec();
    let outcome = notify::run_and_notify(&webhook, &passing, 5, false)
        .await
        .unwrap();
    assert_eq!(outcome.code, 0);
    assert_eq!(outcome.tail, ["46", "47", "48", "49", "50"]);
    let posted = message_with(&app, &team.admin.access, &room, "✅").await;
    assert!(posted["text"]
        .as_str()
        .unwrap()
        .contains("Command succeeded"));

    // Bad input is an error, never a panic.
    assert!(matches!(
        notify::run(&[], 5, false).await,
        Err(notify::NotifyError::NoCommand)
    ));
    assert!(matches!(
        notify::run(&["/nonexistent/program".to_owned()], 5, false).await,
        Err(notify::NotifyError::Spawn { .. })
    ));
    let gone = Webhook::new(&format!("{}/hooks/not-a-hook", app.base));
    assert_eq!(
        gone.send_text("hello").await.unwrap_err().code(),
        Some("no_service")
    );
}

both_backends!(
    the_web_client_speaks_the_web_api,
    the_receiver_gets_events_commands_and_presses,
    notify_reports_a_command_through_a_webhook,
);
