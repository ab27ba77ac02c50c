//! Fuzzing, for a fixed time, of every decoder that takes bytes from the network: search
//! queries, the hub's WebSocket frames, Yjs sync and awareness messages, tus headers,
//! multipart bodies, the Slack-compatible edge's bodies and audit exports.
//!
//! Each target starts from valid inputs and mutates them (bit flips, cut, spliced and repeated
//! ranges, dictionary tokens, random bytes). The server must never answer 5xx, never panic,
//! and must still serve a well-formed request afterwards. `CONCORD_FUZZ_SECONDS` sets the time
//! per target (default 4); a failure prints `CONCORD_FUZZ_SEED`, which replays the same run.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use base64::Engine;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::header::CONTENT_TYPE;
use serde_json::json;

use crate::docs::YClient;
use crate::harness::{spawn_app, Backend, Session, TestApp};

/// How long each target runs.
fn budget() -> Duration {
    let secs = std::env::var("CONCORD_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(4.0);
    Duration::from_secs_f64(secs.max(0.1))
}

/// A seeded generator; the seed is printed so a failing run can be replayed.
fn rng(target: &str) -> (StdRng, u64) {
    let seed = std::env::var("CONCORD_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    eprintln!("fuzz {target}: CONCORD_FUZZ_SEED={seed}");
    (StdRng::seed_from_u64(seed), seed)
}

/// One mutation of `input`, sometimes with a token from `dict` spliced in.
fn mutate(rng: &mut StdRng, input: &[u8], dict: &[&[u8]]) -> Vec<u8> {
    let mut out = input.to_vec();
    let rounds = rng.gen_range(1..=4);
    for _ in 0..rounds {
        let len = out.len();
        match rng.gen_range(0..9) {
            0 if len > 0 => {
                let i = rng.gen_range(0..len);
                out[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.gen_range(0..len);
                out[i] = rng.gen();
            }
            2 if len > 0 => {
                let a = rng.gen_range(0..len);
                let b = rng.gen_range(a..=len.min(a + 16));
                out.drain(a..b);
            }
            3 if len > 0 => {
                let a = rng.gen_range(0..len);
                let b = rng.gen_range(a..=len.min(a + 32));
                let piece = out[a..b].to_vec();
                let at = rng.gen_range(0..=out.len());
                let times = rng.gen_range(1..=8);
                for _ in 0..times {
                    out.splice(at..at, piece.iter().copied());
                }
            }
            4 if !dict.is_empty() => {
                let tok = dict[rng.gen_range(0..dict.len())];
                let at = rng.gen_range(0..=len);
                out.splice(at..at, tok.iter().copied());
            }
            5 => {
                let at = rng.gen_range(0..=len);
                let n = rng.gen_range(1..=8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
                out.splice(at..at, bytes);
            }
            6 if len > 0 => out.truncate(rng.gen_range(0..len)),
            7 if len > 0 => {
                // Extreme varints and numbers: a byte run of 0xff.
                let at = rng.gen_range(0..len);
                let n = rng.gen_range(1..=10);
                out.splice(at..at, std::iter::repeat_n(0xffu8, n));
            }
            _ => {
                let n = rng.gen_range(0..64);
                out = (0..n).map(|_| rng.gen()).collect();
            }
        }
    }
    out
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Runs `f` until the budget is spent; returns how many inputs were tried.
async fn for_budget<F, Fut>(mut f: F) -> u64
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let end = Instant::now() + budget();
    let mut n = 0;
    while Instant::now() < end {
        f(n).await;
        n += 1;
    }
    n
}

struct Team {
    owner: Session,
    workspace: String,
    channel: String,
}

async fn team(app: &TestApp) -> Team {
    let owner = app.bootstrap_admin().await;
    let workspace = app.create_workspace(&owner, "Fuzz").await;
    let channel = app
        .post(
            &format!("/api/v1/workspaces/{workspace}/channels"),
            Some(&owner.access),
            json!({"name": "fuzz"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .expect("channel id")
        .to_owned();
    Team {
        owner,
        workspace,
        channel,
    }
}

/// The server still answers a well-formed request after the barrage.
async fn still_serves(app: &TestApp, t: &Team) {
    let r = app
        .post(
            &format!("/api/v1/channels/{}/messages", t.channel),
            Some(&t.owner.access),
            json!({"text": "still here", "client_msg_id": uuid::Uuid::new_v4().to_string()}),
        )
        .await;
    r.expect(201);
}

const QUERY_DICT: &[&[u8]] = &[
    b"from:@",
    b"in:#",
    b"in:@",
    b"on:",
    b"before:",
    b"after:",
    b"has:",
    b"is:thread",
    b"\"",
    b"-",
    b"+262142-12-31",
    b"-262143-01-01",
    b"9999999999-99-99",
    b"2024-02-30",
    b"\xed\x95\x9c\xea\xb5\xad",
    b"\xe6\x97\xa5\xe6\x9c\xac",
    b"*",
    b"(",
    b")",
    b":",
    b"\\",
    b"AND",
    b"OR",
    b"~2",
    b"^3",
    b"\0",
];

const QUERY_SEEDS: &[&str] = &[
    "release plan",
    "\"exact phrase\" -excluded",
    "from:@\"Ann Lee\" in:#general before:2024-01-01",
    "after:2023-12-31 on:2024-06-01 has:link has:file",
    "in:@ann@example.org is:thread 회의록",
    "東京 会議",
    "has:reaction has:pin sort",
];

/// The query parser, in process: every input parses or is refused, never panics.
#[test]
fn search_query_parser_never_panics() {
    let (mut rng, seed) = rng("search query parser");
    let end = Instant::now() + budget();
    let mut n = 0u64;
    while Instant::now() < end {
        let seed_q = QUERY_SEEDS[rng.gen_range(0..QUERY_SEEDS.len())].as_bytes();
        let q = text(mutate(&mut rng, seed_q, QUERY_DICT));
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let _ = concord::search::query::parse(&q);
        }));
        assert!(
            outcome.is_ok(),
            "the query parser panicked on {q:?} (CONCORD_FUZZ_SEED={seed})"
        );
        n += 1;
    }
    assert!(n > 100, "only {n} queries tried");
}

/// Search over HTTP, where parsed dates and names are resolved: never a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_requests_never_fail_on_the_server() {
    let app = spawn_app(Backend::Sqlite).await;
    let t = team(&app).await;
    still_serves(&app, &t).await;
    let (mut rng, seed) = rng("search requests");
    let n = for_budget(|_| {
        let seed_q = QUERY_SEEDS[rng.gen_range(0..QUERY_SEEDS.len())].as_bytes();
        let q = text(mutate(&mut rng, seed_q, QUERY_DICT));
        let (app, t) = (&app, &t);
        async move {
            let r = app
                .client
                .get(format!(
                    "{}/api/v1/workspaces/{}/search",
                    app.base, t.workspace
                ))
                .query(&[("q", q.as_str())])
                .bearer_auth(&t.owner.access)
                .send()
                .await
                .expect("search sent");
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            assert!(
                status.as_u16() < 500,
                "search {q:?} answered {status}: {body} (CONCORD_FUZZ_SEED={seed})"
            );
        }
    })
    .await;
    assert!(n > 10, "only {n} searches tried");
    still_serves(&app, &t).await;
}

/// The hub: mutated client frames (text and binary) close or refuse, never break the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_frames_never_break_the_server() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let app = spawn_app(Backend::Sqlite).await;
    let t = team(&app).await;
    let port = app.base.rsplit(':').next().expect("port").to_owned();
    let url = format!("ws://127.0.0.1:{port}/api/v1/ws");
    let frames: Vec<String> = vec![
        json!({"type": "auth", "token": t.owner.access}).to_string(),
        json!({"type": "auth", "token": t.owner.access, "epoch": "e", "last_seq": 3}).to_string(),
        json!({"type": "post", "channel_id": t.channel, "text": "hi", "client_msg_id": "m1"})
            .to_string(),
        json!({"type": "typing", "channel_id": t.channel}).to_string(),
        json!({"type": "presence", "status": "away"}).to_string(),
        json!({"type": "ping"}).to_string(),
    ];
    let dict: &[&[u8]] = &[
        b"{",
        b"}",
        b"\"type\"",
        b":",
        b",",
        b"null",
        b"18446744073709551616",
        b"-1",
        b"\"\\ud800\"",
        b"[]",
        b"\"auth\"",
        b"\"post\"",
    ];
    let (mut rng, seed) = rng("hub frames");
    let end = Instant::now() + budget();
    let mut sent = 0u64;
    while Instant::now() < end {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .expect("hub accepts connections");
        // Authenticated half the time, so post-auth frames are reached too.
        if rng.gen_bool(0.5) {
            ws.send(Message::text(frames[0].clone())).await.ok();
        }
        for _ in 0..rng.gen_range(1..20) {
            let base = frames[rng.gen_range(0..frames.len())].as_bytes();
            let bytes = mutate(&mut rng, base, dict);
            let msg = if rng.gen_bool(0.85) {
                Message::text(text(bytes))
            } else {
                Message::binary(bytes)
            };
            if ws.send(msg).await.is_err() {
                break;
            }
            sent += 1;
        }
        // Drain what the server says until it goes quiet or closes.
        while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(20), ws.next()).await
        {
            if m.is_close() {
                break;
            }
        }
    }
    assert!(
        sent > 10,
        "only {sent} frames sent (CONCORD_FUZZ_SEED={seed})"
    );
    let socket = app.socket(&t.owner.access, None).await;
    assert_eq!(socket.hello["type"], "hello");
    still_serves(&app, &t).await;
}

/// Yjs: mutated sync and awareness messages are refused or ignored; the document still syncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yjs_messages_never_break_a_room() {
    use yrs::sync::{Awareness, Message, SyncMessage};
    use yrs::updates::encoder::Encode;
    use yrs::{Doc, ReadTxn, Text, Transact};

    let app = spawn_app(Backend::Sqlite).await;
    let t = team(&app).await;
    let doc = app
        .post(
            &format!("/api/v1/workspaces/{}/documents", t.workspace),
            Some(&t.owner.access),
            json!({"title": "Fuzzed"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .expect("document id")
        .to_owned();

    // Valid messages to start from: an update, a state vector, an awareness state.
    let local = Doc::new();
    let text_ref = local.get_or_insert_text("content");
    {
        let mut txn = local.transact_mut();
        text_ref.insert(&mut txn, 0, "hello fuzz");
    }
    let update = local
        .transact()
        .encode_state_as_update_v1(&yrs::StateVector::default());
    let sv = local.transact().state_vector();
    let mut awareness = Awareness::new(Doc::new());
    awareness
        .set_local_state(json!({"user": {"name": "Ann", "color": "#f00"}}))
        .expect("awareness state");
    let seeds: Vec<Vec<u8>> = vec![
        Message::Sync(SyncMessage::SyncStep1(sv)).encode_v1(),
        Message::Sync(SyncMessage::SyncStep2(update.clone())).encode_v1(),
        Message::Sync(SyncMessage::Update(update)).encode_v1(),
        Message::Awareness(awareness.update().expect("awareness update")).encode_v1(),
        vec![3],
        vec![2, 0],
    ];

    let (mut rng, seed) = rng("yjs messages");
    let end = Instant::now() + budget();
    let mut sent = 0u64;
    while Instant::now() < end {
        let mut client = YClient::open(&app, &doc, Some(&t.owner.access)).await;
        for _ in 0..rng.gen_range(1..16) {
            let base = &seeds[rng.gen_range(0..seeds.len())];
            client.send_raw(mutate(&mut rng, base, &[])).await;
            sent += 1;
        }
        client.settle(Duration::from_millis(20)).await;
    }
    assert!(
        sent > 10,
        "only {sent} messages sent (CONCORD_FUZZ_SEED={seed})"
    );

    // A well-behaved client still joins, writes and is heard by another.
    let mut a = YClient::connect(&app, &doc, &t.owner.access).await;
    let mut b = YClient::connect(&app, &doc, &t.owner.access).await;
    a.insert(0, "after the storm ").await;
    b.wait_text(&a.text()).await;
    assert!(b.text().contains("after the storm"), "{}", b.text());
    still_serves(&app, &t).await;
}

/// tus: mutated creation and PATCH headers are answered with 4xx, never 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_headers_never_fail_on_the_server() {
    let app = spawn_app(Backend::Sqlite).await;
    let t = team(&app).await;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let metadata = format!("filename {},text {}", b64("notes.txt"), b64("hello"));
    let dict: &[&[u8]] = &[
        b",",
        b" ",
        b"=",
        b"-",
        b"18446744073709551616",
        b"0x10",
        b"\xff",
    ];
    let (mut rng, seed) = rng("tus headers");
    let create_url = format!("{}/api/v1/channels/{}/uploads", app.base, t.channel);
    let n = for_budget(|_| {
        let len = text(mutate(&mut rng, b"11", dict));
        let meta = text(mutate(&mut rng, metadata.as_bytes(), dict));
        let version = if rng.gen_bool(0.8) {
            "1.0.0".to_owned()
        } else {
            text(mutate(&mut rng, b"1.0.0", dict))
        };
        let offset = text(mutate(&mut rng, b"0", dict));
        let content_type = if rng.gen_bool(0.7) {
            "application/offset+octet-stream".to_owned()
        } else {
            text(mutate(&mut rng, b"application/offset+octet-stream", dict))
        };
        let body: Vec<u8> = b"hello world"[..rng.gen_range(0..=11)].to_vec();
        let (app, t, create_url) = (&app, &t, &create_url);
        async move {
            let mut req = app
                .client
                .post(create_url)
                .bearer_auth(&t.owner.access)
                .header("Tus-Resumable", "1.0.0");
            // Header values that are not valid HTTP are dropped by the client: skip those.
            for (k, v) in [
                ("Tus-Resumable", version.as_str()),
                ("Upload-Length", len.as_str()),
                ("Upload-Metadata", meta.as_str()),
            ] {
                if reqwest::header::HeaderValue::from_str(v).is_ok() {
                    req = req.header(k, v);
                }
            }
            let r = req.send().await.expect("create sent");
            let status = r.status();
            let location = r
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned);
            let text = r.text().await.unwrap_or_default();
            assert!(
                status.as_u16() < 500,
                "create (len {len:?}, metadata {meta:?}) answered {status}: {text} \
                 (CONCORD_FUZZ_SEED={seed})"
            );
            let Some(location) = location else { return };
            let url = if location.starts_with("http") {
                location
            } else {
                format!("{}{location}", app.base)
            };
            let mut patch = app
                .client
                .patch(&url)
                .bearer_auth(&t.owner.access)
                .header("Tus-Resumable", "1.0.0")
                .body(body);
            for (k, v) in [
                ("Upload-Offset", offset.as_str()),
                ("Content-Type", content_type.as_str()),
            ] {
                if reqwest::header::HeaderValue::from_str(v).is_ok() {
                    patch = patch.header(k, v);
                }
            }
            let r = patch.send().await.expect("patch sent");
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            assert!(
                status.as_u16() < 500,
                "PATCH (offset {offset:?}, type {content_type:?}) answered {status}: {text} \
                 (CONCORD_FUZZ_SEED={seed})"
            );
            let r = app
                .client
                .head(&url)
                .bearer_auth(&t.owner.access)
                .header("Tus-Resumable", "1.0.0")
                .send()
                .await
                .expect("head sent");
            assert!(
                r.status().as_u16() < 500,
                "HEAD answered {} (CONCORD_FUZZ_SEED={seed})",
                r.status()
            );
            let _ = app
                .client
                .delete(&url)
                .bearer_auth(&t.owner.access)
                .header("Tus-Resumable", "1.0.0")
                .send()
                .await;
        }
    })
    .await;
    assert!(n > 5, "only {n} uploads tried");
    still_serves(&app, &t).await;
}

/// The Slack-compatible edge: mutated JSON and form bodies for Web API methods (with
/// `chat.postEphemeral`), incoming webhooks and slash commands' response URLs are answered in
/// Slack's terms (or refused, or rate limited), never a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_bodies_never_fail_on_the_server() {
    let app = spawn_app(Backend::Sqlite).await;
    let t = team(&app).await;
    let bot = app
        .post(
            &format!("/api/v1/workspaces/{}/bots", t.workspace),
            Some(&t.owner.access),
            json!({"name": "Fuzz Bot"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .expect("bot id")
        .to_owned();
    let token = app
        .post(
            &format!("/api/v1/workspaces/{}/bots/{bot}/tokens", t.workspace),
            Some(&t.owner.access),
            json!({"scopes": ["chat:write", "channels:read", "channels:history", "reactions:write", "users:read"]}),
        )
        .await
        .expect(201)["token"]
        .as_str()
        .expect("token")
        .to_owned();
    // Creating the webhook also adds the bot to the channel.
    let hook = app
        .post(
            &format!("/api/v1/workspaces/{}/webhooks", t.workspace),
            Some(&t.owner.access),
            json!({"channel_id": t.channel, "bot_id": bot}),
        )
        .await
        .expect(201)["url"]
        .as_str()
        .expect("webhook url")
        .to_owned();
    let c = &t.channel;
    let json_seeds = [
        format!(
            r#"{{"channel":"{c}","text":"hi *there* <https://example.org|link>","thread_ts":"1700000000.000001"}}"#
        ),
        format!(
            r#"{{"channel":"{c}","blocks":[{{"type":"section","text":{{"type":"mrkdwn","text":"x"}}}}],"attachments":[{{"color":"danger","fields":[{{"title":"a","value":"b"}}]}}]}}"#
        ),
        format!(
            r#"{{"channel":"{c}","latest":"1700000000.000009","oldest":"0","inclusive":true,"limit":5,"cursor":"eyJvIjoxfQ=="}}"#
        ),
        format!(r#"{{"channel":"{c}","timestamp":"1700000000.000001","name":"thumbsup"}}"#),
        format!(
            r#"{{"channel":"{c}","user":"{}","text":"*only* ~you~ `*x*`","response_type":"in_channel","replace_original":true}}"#,
            t.owner.user_id
        ),
    ];
    let form_seed = format!("channel={c}&text=hello%20world&limit=2&cursor=&ts=1700000000.000001");
    let methods = [
        "chat.postMessage",
        "chat.update",
        "chat.postEphemeral",
        "conversations.history",
        "conversations.replies",
        "reactions.add",
        "users.info",
    ];
    let dict: &[&[u8]] = &[
        b"\"",
        b"{",
        b"}",
        b"[",
        b"]",
        b"&",
        b"=",
        b"%",
        b"9223372036854775807",
        b"1.9223372036854775807",
        b"-1",
        b"null",
        b"\xff",
        b"<",
        b">",
        b"|",
    ];
    let (mut rng, seed) = rng("slack bodies");
    let n = for_budget(|i| {
        let as_json = rng.gen_bool(0.6);
        let body = if as_json {
            mutate(
                &mut rng,
                json_seeds[i as usize % json_seeds.len()].as_bytes(),
                dict,
            )
        } else {
            mutate(&mut rng, form_seed.as_bytes(), dict)
        };
        let method = methods[rng.gen_range(0..methods.len())];
        // A webhook, a slash command's response URL (read and checked before its secret is
        // looked up), or a Web API method.
        let target = rng.gen_range(0..10);
        let (to_hook, to_response) = (target < 2, target == 2);
        let (app, token, hook) = (&app, &token, &hook);
        async move {
            let content_type = if as_json {
                "application/json"
            } else {
                "application/x-www-form-urlencoded"
            };
            let req = if to_hook {
                app.client.post(hook)
            } else if to_response {
                app.client
                    .post(format!("{}/hooks/responses/fuzz-secret", app.base))
            } else {
                app.client
                    .post(format!("{}/api/slack/{method}", app.base))
                    .bearer_auth(token)
            };
            let r = req
                .header(CONTENT_TYPE, content_type)
                .body(body.clone())
                .send()
                .await
                .expect("sent");
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            assert!(
                status.as_u16() < 500,
                "{} {:?} answered {status}: {text} (CONCORD_FUZZ_SEED={seed})",
                if to_hook {
                    "webhook"
                } else if to_response {
                    "response URL"
                } else {
                    method
                },
                String::from_utf8_lossy(&body)
            );
        }
    })
    .await;
    assert!(n > 5, "only {n} bodies tried");
    still_serves(&app, &t).await;
}

/// Multipart file shares: mutated bodies and boundaries are refused, never a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_bodies_never_fail_on_the_server() {
    let app = spawn_app(Backend::Sqlite).await;
    let t = team(&app).await;
    let boundary = "fuzz-boundary-7MA4YWxk";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nhello\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nsome file text\r\n--{boundary}--\r\n"
    );
    let dict: &[&[u8]] = &[
        b"\r\n",
        b"--",
        b"fuzz-boundary-7MA4YWxk",
        b"Content-Disposition: form-data; name=\"file\"; filename=\"",
        b"filename*=UTF-8''%FF",
        b"\"",
        b";",
    ];
    let (mut rng, seed) = rng("multipart bodies");
    let url = format!("{}/api/v1/channels/{}/files", app.base, t.channel);
    let n = for_budget(|_| {
        let bytes = mutate(&mut rng, body.as_bytes(), dict);
        let content_type = if rng.gen_bool(0.8) {
            format!("multipart/form-data; boundary={boundary}")
        } else {
            text(mutate(
                &mut rng,
                format!("multipart/form-data; boundary={boundary}").as_bytes(),
                dict,
            ))
        };
        let (app, t, url) = (&app, &t, &url);
        async move {
            let mut req = app
                .client
                .post(url)
                .bearer_auth(&t.owner.access)
                .body(bytes);
            if reqwest::header::HeaderValue::from_str(&content_type).is_ok() {
                req = req.header(CONTENT_TYPE, content_type.as_str());
            }
            let r = req.send().await.expect("upload sent");
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            assert!(
                status.as_u16() < 500,
                "multipart (type {content_type:?}) answered {status}: {text} \
                 (CONCORD_FUZZ_SEED={seed})"
            );
        }
    })
    .await;
    assert!(n > 5, "only {n} bodies tried");
    still_serves(&app, &t).await;
}

/// An export's lines as JSON values: a change that leaves them equal (white space) is no
/// tampering.
fn records(export: &str) -> Vec<Option<serde_json::Value>> {
    export
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Audit exports: a mutated export is refused with an error, never a panic, and never
/// verifies when its bytes changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_export_verifier_never_panics_and_refuses_changes() {
    use concord::audit::export::{parse_public_keys, verify_export};

    let app = spawn_app(Backend::Sqlite).await;
    let t = team(&app).await;
    still_serves(&app, &t).await;
    let export = app
        .client
        .get(format!("{}/api/v1/audit/export?format=jsonl", app.base))
        .bearer_auth(&t.owner.access)
        .send()
        .await
        .expect("export sent")
        .text()
        .await
        .expect("export body");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
        .arg("--data-dir")
        .arg(&app.data_dir)
        .args(["--database-url", &app.database_url, "audit", "public-key"])
        .env_remove("RUST_LOG")
        .env_remove("CONCORD_FUZZ_SECONDS")
        .env_remove("CONCORD_FUZZ_SEED")
        .output()
        .expect("concord runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys_text = String::from_utf8_lossy(&out.stdout).into_owned();
    let keys = parse_public_keys(&keys_text).expect("public keys parse");
    assert!(
        verify_export(&export, &keys).is_ok(),
        "the untouched export verifies"
    );
    let dict: &[&[u8]] = &[
        b"\n",
        b"{\"type\":\"checkpoint\"}",
        b"\"seq\":",
        b"\"to_seq\":",
        b",",
        b"\"",
        b"9223372036854775808",
    ];
    let (mut rng, seed) = rng("audit export");
    let end = Instant::now() + budget();
    let mut n = 0u64;
    while Instant::now() < end {
        let mutated = text(mutate(&mut rng, export.as_bytes(), dict));
        let outcome = catch_unwind(AssertUnwindSafe(|| verify_export(&mutated, &keys)));
        match outcome {
            Err(_) => panic!("the audit verifier panicked (CONCORD_FUZZ_SEED={seed})"),
            Ok(Ok(_)) => assert_eq!(
                records(&mutated),
                records(&export),
                "a changed export verified (CONCORD_FUZZ_SEED={seed}):\n{mutated}"
            ),
            Ok(Err(_)) => {}
        }
        n += 1;
    }
    assert!(n > 10, "only {n} exports tried");
}

const MODEL_SEEDS: &[&str] = &[
    include_str!("../../../bots/workflows/examples/employee-onboarding.bpmn"),
    include_str!("../../../bots/workflows/examples/purchase-order.bpmn"),
    "process: p\nsteps:\n  - start: s\n  - user_task: t\n    person: ${who}\n    due: PT1H\n  - exclusive: x\n    branches:\n      - when: n > 2\n        goto: e\n    default: e\n  - end: e\n",
    "process: q\nsteps:\n  - start: s\n    timer: R/PT1H\n  - wait: w\n    timer: PT1S\n  - service_task: c\n    method: POST\n    url: https://example.invalid/${n}\n    body: {a: \"${n}\"}\n  - end: e\n",
];

const MODEL_DICT: &[&[u8]] = &[
    b"<bpmn:parallelGateway id=\"g\" />",
    b"<bpmn:sequenceFlow id=\"f\" sourceRef=\"g\" targetRef=\"g\" />",
    b"${",
    b"}",
    b"\n  - ",
    b": ",
    b"goto: s",
    b"R99999999/PT0S",
    b"P99999999Y",
    b"'",
    b"&amp;",
    b"<!ENTITY x \"y\">",
    b"\0",
];

/// Workflow models: mutated BPMN and YAML are deployed or refused with 4xx, and those that
/// deploy start or are refused, never 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_models_never_fail_on_the_server() {
    let app = spawn_app(Backend::Sqlite).await;
    let t = team(&app).await;
    let (mut rng, seed) = rng("workflow models");
    let n = for_budget(|_| {
        let model = MODEL_SEEDS[rng.gen_range(0..MODEL_SEEDS.len())].as_bytes();
        let source = text(mutate(&mut rng, model, MODEL_DICT));
        let (app, t) = (&app, &t);
        async move {
            let r = app
                .post(
                    &format!("/api/v1/workspaces/{}/workflows", t.workspace),
                    Some(&t.owner.access),
                    json!({ "source": source }),
                )
                .await;
            assert!(
                r.status.as_u16() < 500,
                "deploy {source:?} answered {}: {} (CONCORD_FUZZ_SEED={seed})",
                r.status,
                r.body
            );
            if r.status.as_u16() == 201 {
                let process = r.body["process_id"].as_str().unwrap_or_default();
                let s = app
                    .post(
                        &format!(
                            "/api/v1/workspaces/{}/workflows/{process}/instances",
                            t.workspace
                        ),
                        Some(&t.owner.access),
                        json!({"variables": {"n": 3, "who": "nobody"}}),
                    )
                    .await;
                assert!(
                    s.status.as_u16() < 500,
                    "starting {source:?} answered {}: {} (CONCORD_FUZZ_SEED={seed})",
                    s.status,
                    s.body
                );
            }
        }
    })
    .await;
    assert!(n > 10, "only {n} models tried");
    still_serves(&app, &t).await;
}
