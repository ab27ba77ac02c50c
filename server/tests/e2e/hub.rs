//! The real-time hub with real WebSocket clients: live delivery to exactly the right
//! people, resume after reconnecting, posting over the socket, bad frames, revocation.

use serde_json::json;

use crate::chat::{channel, say};
use crate::harness::{both_backends, PASSWORD};

both_backends! {
    async fn members_see_events_live_and_outsiders_never(app) {
        let admin = app.bootstrap_admin().await;
        for (e, n) in [("ann@example.org", "Ann"), ("bo@example.org", "Bo"), ("cy@example.org", "Cy")] {
            app.create_user(&admin, e, n).await;
        }
        let ann = app.login("ann@example.org", PASSWORD).await;
        let bo = app.login("bo@example.org", PASSWORD).await;
        let cy = app.login("cy@example.org", PASSWORD).await;
        let ws = app.create_workspace(&admin, "Clinic").await;
        for s in [&ann, &bo, &cy] {
            app.add_member(&admin, &ws, s, "member").await;
        }
        let general = channel(&app, &ann, &ws, "general", "public").await;
        let secret = channel(&app, &ann, &ws, "secret", "private").await;
        for s in [&bo, &cy] {
            app.call(reqwest::Method::POST, &format!("/api/v1/channels/{general}/join"), Some(&s.access), None).await.expect(200);
        }
        app.post(&format!("/api/v1/channels/{secret}/members"), Some(&ann.access), json!({"user_id": bo.user_id})).await.expect(200);

        let mut bo_ws = app.socket(&bo.access, None).await;
        let mut cy_ws = app.socket(&cy.access, None).await;

        // A private message reaches Bo, never Cy; the next public one reaches both, so Cy's
        // next event proves the private one was skipped.
        say(&app, &ann, &secret, "private note").await;
        say(&app, &ann, &general, "public note").await;
        let e = next_message(&mut bo_ws).await;
        assert_eq!(e["event"]["type"], "message_created");
        assert_eq!(e["event"]["message"]["text"], "private note");
        assert_eq!(next_message(&mut bo_ws).await["event"]["message"]["text"], "public note");
        let c = next_message(&mut cy_ws).await;
        assert_eq!(c["event"]["message"]["text"], "public note");
        assert!(c["seq"].as_u64().unwrap() > e["seq"].as_u64().unwrap());

        // Edits, reactions and deletes arrive live.
        let m = say(&app, &ann, &general, "typo").await;
        let id = m["id"].as_str().unwrap();
        app.call(reqwest::Method::PATCH, &format!("/api/v1/messages/{id}"), Some(&ann.access), Some(json!({"text": "fixed"}))).await.expect(200);
        app.call(reqwest::Method::PUT, &format!("/api/v1/messages/{id}/reactions/:tada:"), Some(&cy.access), None).await.expect(200);
        app.delete(&format!("/api/v1/messages/{id}"), &ann.access).await.expect(204);
        let kinds: Vec<String> = {
            let mut v = Vec::new();
            for _ in 0..4 {
                let e = next_message(&mut bo_ws).await;
                v.push(format!("{}:{}", e["event"]["type"].as_str().unwrap(), e["event"]["what"].as_str().unwrap_or("")));
            }
            v
        };
        assert_eq!(kinds, vec!["message_created:", "message_updated:edited", "message_updated:reaction_added", "message_deleted:"]);

        // Cy leaves general: delivery stops at once. A DM to Cy proves the stream still works.
        app.delete(&format!("/api/v1/channels/{general}/members/{}", cy.user_id), &cy.access).await.expect(204);
        say(&app, &ann, &general, "after cy left").await;
        let dm = app.post(&format!("/api/v1/workspaces/{ws}/conversations"), Some(&ann.access), json!({"user_ids": [cy.user_id]})).await;
        let dm = dm.expect(200)["id"].as_str().unwrap().to_owned();
        say(&app, &ann, &dm, "hi cy").await;
        let mut seen = Vec::new();
        loop {
            let e = cy_ws.next_event().await.unwrap();
            let t = e["event"]["type"].as_str().unwrap().to_owned();
            let text = e["event"]["message"]["text"].as_str().unwrap_or("").to_owned();
            seen.push(format!("{t}:{text}"));
            if text == "hi cy" {
                break;
            }
        }
        assert!(!seen.iter().any(|s| s.contains("after cy left")), "{seen:?}");
    }

    async fn reconnecting_clients_get_exactly_what_they_missed(app) {
        let admin = app.bootstrap_admin().await;
        app.create_user(&admin, "bo@example.org", "Bo").await;
        let bo = app.login("bo@example.org", PASSWORD).await;
        let ws = app.create_workspace(&admin, "Clinic").await;
        app.add_member(&admin, &ws, &bo, "member").await;
        let c = channel(&app, &admin, &ws, "general", "public").await;
        app.call(reqwest::Method::POST, &format!("/api/v1/channels/{c}/join"), Some(&bo.access), None).await.expect(200);

        let mut s = app.socket(&bo.access, None).await;
        let epoch = s.hello["epoch"].as_str().unwrap().to_owned();
        say(&app, &admin, &c, "m1").await;
        // Bo's join may still be on its way (events committed just before connecting can
        // arrive after hello); read up to the message.
        let last = loop {
            let e = s.next_event().await.unwrap();
            if e["event"]["type"] == "message_created" {
                break e["seq"].as_u64().unwrap();
            }
        };
        drop(s);

        for text in ["m2", "m3", "m4"] {
            say(&app, &admin, &c, text).await;
        }
        let mut s = app.socket(&bo.access, Some((&epoch, last))).await;
        assert_eq!(s.hello["resync"], false);
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(s.next_event().await.unwrap()["event"]["message"]["text"].as_str().unwrap().to_owned());
        }
        assert_eq!(got, vec!["m2", "m3", "m4"]);
        say(&app, &admin, &c, "m5").await;
        assert_eq!(s.next_event().await.unwrap()["event"]["message"]["text"], "m5");

        // An unknown epoch (another server, or a restart) asks for a resync.
        let s = app.socket(&bo.access, Some(("not-this-server", 3))).await;
        assert_eq!(s.hello["resync"], true);
    }

    async fn posting_over_the_socket_and_bad_frames(app) {
        let admin = app.bootstrap_admin().await;
        let ws = app.create_workspace(&admin, "Clinic").await;
        let c = channel(&app, &admin, &ws, "general", "public").await;
        let mut s = app.socket(&admin.access, None).await;

        s.send(json!({"type": "post", "channel_id": c, "text": "over the socket", "client_msg_id": "k1"})).await;
        let mut ack = None;
        let mut event = None;
        while ack.is_none() || event.is_none() {
            let f = s.next().await.unwrap();
            // Events committed before connecting (the channel's creation) may arrive first.
            match f["type"].as_str().unwrap() {
                "ack" => ack = Some(f),
                "event" if f["event"]["type"] == "message_created" => event = Some(f),
                _ => {}
            }
        }
        let ack = ack.unwrap();
        assert_eq!(ack["client_msg_id"], "k1");
        assert_eq!(event.unwrap()["event"]["message"]["id"], ack["message"]["id"]);
        // A retry is acknowledged with the same message, not a duplicate.
        s.send(json!({"type": "post", "channel_id": c, "text": "over the socket", "client_msg_id": "k1"})).await;
        loop {
            let f = s.next().await.unwrap();
            if f["type"] == "ack" {
                assert_eq!(f["message"]["id"], ack["message"]["id"]);
                break;
            }
        }
        let history = app.get(&format!("/api/v1/channels/{c}/messages"), &admin.access).await;
        assert_eq!(history.expect(200).as_array().unwrap().len(), 1);

        // Garbage, unknown types and invalid posts get error frames; the socket stays usable.
        for bad in ["not json", r#"{"type":"launch"}"#, r#"{"type":"post","channel_id":"x"}"#] {
            s.send_text(bad).await;
            let f = s.next().await.unwrap();
            assert_eq!(f["type"], "error", "{bad}: {f}");
            assert_eq!(f["code"], "invalid_frame");
        }
        s.send(json!({"type": "post", "channel_id": c, "text": " ", "client_msg_id": "k2"})).await;
        let f = s.next().await.unwrap();
        assert_eq!(f["code"], "validation_failed");
        assert_eq!(f["client_msg_id"], "k2");
        s.send(json!({"type": "post", "channel_id": uuid::Uuid::now_v7(), "text": "lost", "client_msg_id": "k3"})).await;
        assert_eq!(s.next().await.unwrap()["code"], "not_found");
        s.send(json!({"type": "ping"})).await;
        assert_eq!(s.next().await.unwrap()["type"], "pong");
    }

    async fn posts_sent_back_to_back_are_stored_and_acknowledged_in_order(app) {
        let admin = app.bootstrap_admin().await;
        let ws = app.create_workspace(&admin, "Clinic").await;
        let c = channel(&app, &admin, &ws, "general", "public").await;
        let mut s = app.socket(&admin.access, None).await;
        // Sent without waiting: the socket has many posts in flight at once (more than it
        // lets wait before reading again), one of them invalid.
        let total = 100;
        for i in 0..total {
            let text = if i == 50 { " ".to_owned() } else { format!("post {i}") };
            s.send(json!({"type": "post", "channel_id": c, "text": text, "client_msg_id": format!("b{i}")})).await;
        }
        let mut acked = Vec::new();
        let mut refused = Vec::new();
        // Every answer, acknowledgement or refusal, in the order the posts were sent.
        let mut answered = Vec::new();
        while acked.len() + refused.len() < total {
            let f = s.next().await.expect("an answer for every post");
            match f["type"].as_str().unwrap() {
                "ack" => acked.push((
                    f["client_msg_id"].as_str().unwrap().to_owned(),
                    f["message"]["seq"].as_i64().unwrap(),
                )),
                "error" => refused.push(f["client_msg_id"].as_str().unwrap().to_owned()),
                _ => continue,
            }
            answered.push(f["client_msg_id"].as_str().unwrap().to_owned());
        }
        assert_eq!(refused, ["b50"]);
        let all: Vec<String> = (0..total).map(|i| format!("b{i}")).collect();
        assert_eq!(answered, all, "answered in the order sent");
        let expected: Vec<String> = (0..total).filter(|i| *i != 50).map(|i| format!("b{i}")).collect();
        let ids: Vec<&str> = acked.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, expected, "acknowledged in the order sent");
        assert!(acked.windows(2).all(|w| w[0].1 < w[1].1), "stored in the order sent: {acked:?}");
        let history = app.get(&format!("/api/v1/channels/{c}/messages?limit=200"), &admin.access).await;
        let texts: Vec<String> = history.expect(200).as_array().unwrap().iter()
            .map(|m| m["text"].as_str().unwrap().to_owned()).collect();
        let sent: Vec<String> = (0..total).filter(|i| *i != 50).map(|i| format!("post {i}")).collect();
        assert_eq!(texts, sent);
    }

    async fn sockets_need_a_live_session(app) {
        let admin = app.bootstrap_admin().await;
        // Garbage token: closed as unauthenticated.
        let url = format!("ws://127.0.0.1:{}/api/v1/ws", app.base.rsplit(':').next().unwrap());
        let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut raw = crate::harness::Socket::from_stream(stream);
        raw.send(json!({"type": "auth", "token": "garbage"})).await;
        assert_eq!(raw.closed_with().await, Some(4401));

        // Revoking the session closes its socket.
        let second = app.login("admin@example.org", PASSWORD).await;
        let mut s = app.socket(&second.access, None).await;
        app.delete(&format!("/api/v1/users/{}/sessions/{}", admin.user_id, second.session_id), &admin.access).await.expect(204);
        assert_eq!(s.closed_with().await, Some(4403));
    }
}

both_backends! {
    async fn a_slow_client_is_cut_off_while_others_keep_up(app) {
        let admin = app.bootstrap_admin().await;
        let ws = app.create_workspace(&admin, "Clinic").await;
        let c = channel(&app, &admin, &ws, "firehose", "public").await;
        let mut fast = app.socket(&admin.access, None).await;

        // The slow client: a tiny receive buffer, authenticates, then never reads again.
        let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
        let tcp = tokio::net::TcpSocket::new_v4().unwrap();
        tcp.set_recv_buffer_size(4096).unwrap();
        let stream = tcp.connect(([127, 0, 0, 1], port).into()).await.unwrap();
        let (ws_stream, _) = tokio_tungstenite::client_async(format!("ws://127.0.0.1:{port}/api/v1/ws"), tokio_tungstenite::MaybeTlsStream::Plain(stream)).await.unwrap();
        let mut slow = crate::harness::Socket::from_stream(ws_stream);
        slow.send(json!({"type": "auth", "token": admin.access})).await;
        assert_eq!(slow.next().await.unwrap()["type"], "hello");

        // About 12 MiB of messages: far more than the slow client's queue and socket buffers.
        let text = "x".repeat(15 * 1024);
        let total = 800;
        let mut posters = Vec::new();
        for p in 0..4 {
            let client = app.client.clone();
            let url = format!("{}/api/v1/channels/{c}/messages", app.base);
            let token = admin.access.clone();
            let text = text.clone();
            posters.push(tokio::spawn(async move {
                for i in 0..total / 4 {
                    let r = client.post(&url).bearer_auth(&token).json(&json!({"text": format!("{p}-{i} {text}")})).send().await.unwrap();
                    assert_eq!(r.status(), 201);
                }
            }));
        }
        // The fast client keeps receiving every message, in order, while the slow one lags.
        let mut last = 0;
        for _ in 0..total {
            let e = fast.next_event().await.expect("fast client keeps receiving");
            let seq = e["seq"].as_u64().unwrap();
            assert!(seq > last);
            last = seq;
        }
        for p in posters {
            p.await.unwrap();
        }
        // The slow client was cut off with the resync code (or reset) before getting them all.
        let mut received = 0;
        let code = loop {
            match slow.next_raw().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(_))) => received += 1,
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break None,
            }
        };
        assert!(received < total, "the slow client should have been cut off, got {received}");
        assert!(matches!(code, Some(4408) | None), "{code:?}");
        let metrics = app.metrics().await;
        assert!(metrics.contains("concord_hub_slow_disconnects_total"), "{metrics}");
    }

    async fn typing_and_presence_reach_the_right_people(app) {
        let admin = app.bootstrap_admin().await;
        app.create_user(&admin, "bo@example.org", "Bo").await;
        app.create_user(&admin, "cy@example.org", "Cy").await;
        let bo = app.login("bo@example.org", PASSWORD).await;
        let cy = app.login("cy@example.org", PASSWORD).await;
        let ws = app.create_workspace(&admin, "Clinic").await;
        app.add_member(&admin, &ws, &bo, "member").await;
        let c = channel(&app, &admin, &ws, "general", "public").await;
        app.call(reqwest::Method::POST, &format!("/api/v1/channels/{c}/join"), Some(&bo.access), None).await.expect(200);

        let mut a = app.socket(&admin.access, None).await;
        // Bo comes online: the admin (same workspace) hears of it.
        let mut b = app.socket(&bo.access, None).await;
        let p = next_of(&mut a, "presence").await;
        assert_eq!((p["user_id"].as_str().unwrap(), p["status"].as_str().unwrap()), (bo.user_id.as_str(), "online"));
        // Bo's greeting already says who was there before: the admin, online; not Bo itself.
        assert_eq!(b.hello["presence"], json!({admin.user_id.clone(): "online"}), "{}", b.hello);
        // Cy shares no workspace: nobody hears about Cy, and Cy hears about nobody.
        let mut cy_ws = app.socket(&cy.access, None).await;
        assert_eq!(cy_ws.hello["presence"], json!({}), "{}", cy_ws.hello);

        // Typing reaches the other member, throttled to one notice per two seconds.
        b.send(json!({"type": "typing", "channel_id": c})).await;
        b.send(json!({"type": "typing", "channel_id": c})).await;
        let t = next_of(&mut a, "typing").await;
        assert_eq!(t["user_id"], bo.user_id.as_str());
        // Away on every device, then offline.
        b.send(json!({"type": "presence", "status": "away"})).await;
        // The second typing notice was swallowed by the throttle: next comes the presence change.
        let f = a.next().await.unwrap();
        assert_eq!((f["type"].as_str().unwrap(), f["status"].as_str().unwrap_or("")), ("presence", "away"), "{f}");
        drop(b);
        let p = next_of(&mut a, "presence").await;
        assert_eq!(p["status"], "offline");
        // Cy, in no shared workspace or channel, received none of it: the first frame Cy
        // gets after all that is the answer to its own ping.
        say(&app, &admin, &c, "sentinel").await;
        cy_ws.send(json!({"type": "ping"})).await;
        assert_eq!(cy_ws.next().await.unwrap()["type"], "pong");
    }
}

/// The next event about a message (membership events committed just before connecting may
/// still arrive first).
async fn next_message(s: &mut crate::harness::Socket) -> serde_json::Value {
    loop {
        let e = s.next_event().await.expect("an event");
        if e["event"]["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("message_"))
        {
            return e;
        }
    }
}

async fn next_of(s: &mut crate::harness::Socket, kind: &str) -> serde_json::Value {
    loop {
        let f = s
            .next()
            .await
            .unwrap_or_else(|| panic!("waiting for {kind}"));
        if f["type"] == kind {
            return f;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_sockets_to_go_away() {
    let mut app = crate::harness::spawn_app(crate::harness::Backend::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let mut s = app.socket(&admin.access, None).await;
    app.stop().await;
    assert_eq!(s.closed_with().await, Some(1001));
}

both_backends! {
    async fn threads_mentions_and_read_state_arrive_live(app) {
        let admin = app.bootstrap_admin().await;
        app.create_user(&admin, "bo@example.org", "Bo").await;
        let bo = app.login("bo@example.org", PASSWORD).await;
        let bo_phone = app.login("bo@example.org", PASSWORD).await;
        let ws = app.create_workspace(&admin, "Clinic").await;
        app.add_member(&admin, &ws, &bo, "member").await;
        let c = channel(&app, &admin, &ws, "general", "public").await;
        app.call(reqwest::Method::POST, &format!("/api/v1/channels/{c}/join"), Some(&bo.access), None).await.expect(200);

        let mut laptop = app.socket(&bo.access, None).await;
        let mut phone = app.socket(&bo_phone.access, None).await;

        // A mention of Bo, then a reply in its thread: both arrive live, the mention naming Bo.
        let root = say(&app, &admin, &c, &format!("@{} can you check?", bo.user_id)).await;
        let e = next_message(&mut laptop).await;
        assert_eq!(e["event"]["mentioned"], json!([bo.user_id]));
        let reply = app
            .post(&format!("/api/v1/channels/{c}/messages"), Some(&admin.access),
                json!({"text": "details inside", "thread_root_id": root["id"]}))
            .await;
        reply.expect(201);
        let e = next_message(&mut laptop).await;
        assert_eq!(e["event"]["message"]["thread_root_id"], root["id"]);

        // Bo reads on the laptop; the phone hears the new read pointer (and nobody else would).
        app.put(&format!("/api/v1/channels/{c}/read"), &bo.access, json!({"seq": root["seq"]})).await.expect(200);
        let read = loop {
            let e = phone.next_event().await.expect("read state");
            if e["event"]["type"] == "read_state_changed" {
                break e;
            }
        };
        assert_eq!(read["event"]["last_read_seq"], root["seq"]);
        assert_eq!(read["event"]["channel_id"], c.as_str());
    }
}

both_backends! {
    async fn shared_and_deleted_files_arrive_live_in_their_channel_only(app) {
        let admin = app.bootstrap_admin().await;
        for (e, n) in [("bo@example.org", "Bo"), ("cy@example.org", "Cy")] {
            app.create_user(&admin, e, n).await;
        }
        let bo = app.login("bo@example.org", PASSWORD).await;
        let cy = app.login("cy@example.org", PASSWORD).await;
        let ws = app.create_workspace(&admin, "Clinic").await;
        app.add_member(&admin, &ws, &bo, "member").await;
        app.add_member(&admin, &ws, &cy, "member").await;
        let secret = channel(&app, &admin, &ws, "secret", "private").await;
        let general = channel(&app, &admin, &ws, "general", "public").await;
        app.post(&format!("/api/v1/channels/{secret}/members"), Some(&admin.access), json!({"user_id": bo.user_id})).await.expect(200);
        app.call(reqwest::Method::POST, &format!("/api/v1/channels/{general}/join"), Some(&cy.access), None).await.expect(200);
        let mut bo_ws = app.socket(&bo.access, None).await;
        let mut cy_ws = app.socket(&cy.access, None).await;

        let file = app.upload(&admin, &secret, "scan.txt", b"lab results").await.expect(201).clone();
        let shared = next_event_of(&mut bo_ws, "file_shared").await;
        assert_eq!(shared["event"]["file_id"], file["id"]);
        assert_eq!(shared["event"]["message_id"], file["message_id"]);
        assert_eq!(shared["event"]["channel_id"], secret.as_str());
        let file_id = file["id"].as_str().unwrap();
        let r = app.delete(&format!("/api/v1/files/{file_id}"), &admin.access).await;
        assert!(r.status.is_success(), "{}", r.body);
        let deleted = next_event_of(&mut bo_ws, "file_deleted").await;
        assert_eq!(deleted["event"]["file_id"], file["id"]);

        // Cy is not in #secret: the first file event Cy hears is the one in #general.
        let public = app.upload(&admin, &general, "menu.txt", b"soup").await.expect(201).clone();
        let e = next_event_of(&mut cy_ws, "file_shared").await;
        assert_eq!(e["event"]["file_id"], public["id"]);
    }
}

async fn next_event_of(s: &mut crate::harness::Socket, kind: &str) -> serde_json::Value {
    loop {
        let e = s
            .next_event()
            .await
            .unwrap_or_else(|| panic!("waiting for {kind}"));
        if e["event"]["type"] == kind {
            return e;
        }
    }
}

/// Frames up to the answer to a ping: everything queued for the socket before it.
async fn until_pong(s: &mut crate::harness::Socket) -> Vec<serde_json::Value> {
    s.send(json!({"type": "ping"})).await;
    let mut seen = Vec::new();
    loop {
        let f = s.next().await.expect("pong");
        if f["type"] == "pong" {
            return seen;
        }
        seen.push(f);
    }
}

/// Someone removed from a workspace stops hearing its presence, typing and messages on the
/// sockets they already have open, and stops showing their own presence there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_stops_hearing_the_workspace_at_once() {
    let app = crate::harness::spawn_app(crate::harness::Backend::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    for (e, n) in [
        ("bo@example.org", "Bo"),
        ("cy@example.org", "Cy"),
        ("dee@example.org", "Dee"),
    ] {
        app.create_user(&admin, e, n).await;
    }
    let bo = app.login("bo@example.org", PASSWORD).await;
    let cy = app.login("cy@example.org", PASSWORD).await;
    let dee = app.login("dee@example.org", PASSWORD).await;
    let clinic = app.create_workspace(&admin, "Clinic").await;
    app.add_member(&admin, &clinic, &bo, "member").await;
    app.add_member(&admin, &clinic, &cy, "member").await;
    let other = app.create_workspace(&admin, "Other").await;
    app.add_member(&admin, &other, &bo, "member").await;
    app.add_member(&admin, &other, &dee, "member").await;
    let general = channel(&app, &admin, &clinic, "general", "public").await;
    for s in [&bo, &cy] {
        app.call(
            reqwest::Method::POST,
            &format!("/api/v1/channels/{general}/join"),
            Some(&s.access),
            None,
        )
        .await
        .expect(200);
    }

    let mut a = app.socket(&admin.access, None).await;
    let mut b = app.socket(&bo.access, None).await;
    let mut c = app.socket(&cy.access, None).await;
    // While a member, Bo hears Cy come online.
    let p = next_of(&mut b, "presence").await;
    assert_eq!(
        (
            p["user_id"].as_str().unwrap(),
            p["status"].as_str().unwrap()
        ),
        (cy.user_id.as_str(), "online")
    );

    app.delete(
        &format!("/api/v1/workspaces/{clinic}/members/{}", bo.user_id),
        &admin.access,
    )
    .await
    .expect(204);
    // Cy shares no other workspace with Bo: Bo goes offline in Cy's eyes.
    loop {
        let p = next_of(&mut c, "presence").await;
        if p["user_id"] == bo.user_id.as_str() && p["status"] == "offline" {
            break;
        }
    }

    // Cy goes away and types, the admin posts: the admin sees all of it, Bo none of it.
    c.send(json!({"type": "presence", "status": "away"})).await;
    c.send(json!({"type": "typing", "channel_id": general}))
        .await;
    say(&app, &admin, &general, "after bo left").await;
    let mut heard = (false, false, false);
    while heard != (true, true, true) {
        let f = a.next().await.expect("the admin hears the workspace");
        heard.0 |=
            f["type"] == "presence" && f["user_id"] == cy.user_id.as_str() && f["status"] == "away";
        heard.1 |= f["type"] == "typing" && f["user_id"] == cy.user_id.as_str();
        heard.2 |= f["event"]["message"]["text"] == "after bo left";
    }
    // Dee, in the workspace Bo kept, comes online: that still reaches him.
    let _d = app.socket(&dee.access, None).await;
    let frames = until_pong(&mut b).await;
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "presence" && f["user_id"] == dee.user_id.as_str()),
        "{frames:?}"
    );
    for f in &frames {
        let about_clinic = f["user_id"] == cy.user_id.as_str()
            || f["type"] == "typing"
            || f["event"]["type"] == "message_created";
        assert!(!about_clinic, "Bo still hears the workspace he left: {f}");
    }

    // Bo's own presence no longer reaches the workspace he left.
    b.send(json!({"type": "presence", "status": "away"})).await;
    until_pong(&mut b).await;
    for f in until_pong(&mut c).await {
        assert!(
            f["user_id"] != bo.user_id.as_str(),
            "Cy still hears Bo: {f}"
        );
    }
}

both_backends! {
    async fn message_events_without_their_message_are_completed_by_id(app) {
        use concord::domain::{ChannelId, MessageId, WorkspaceId};
        use concord::events::{DomainEvent, Local, MessageChange};
        let admin = app.bootstrap_admin().await;
        let ws = app.create_workspace(&admin, "Clinic").await;
        let general = channel(&app, &admin, &ws, "general", "public").await;
        let m = say(&app, &admin, &general, "read me by id").await;
        let other = channel(&app, &admin, &ws, "other", "public").await;
        let elsewhere = app.create_workspace(&admin, "Elsewhere").await;
        let mut s = app.socket(&admin.access, None).await;
        assert_eq!(s.hello["protocol"], 2, "{}", s.hello);
        let event = |workspace: &str, channel: &str| DomainEvent::MessageUpdated {
            workspace_id: workspace.parse::<WorkspaceId>().unwrap(),
            channel_id: channel.parse::<ChannelId>().unwrap(),
            message_id: m["id"].as_str().unwrap().parse::<MessageId>().unwrap(),
            seq: m["seq"].as_i64().unwrap(),
            what: MessageChange::Pinned,
            reaction: None,
            view: Local::none(),
        };
        // An event naming another channel or workspace than the message's is skipped alone:
        // the message is not shown there, and nobody is asked to resync.
        app.events.publish(event(&ws, &other));
        app.events.publish(event(&elsewhere, &general));
        // As a bus spanning processes delivers it: ids only, no message attached.
        app.events.publish(event(&ws, &general));
        let e = next_message(&mut s).await;
        assert_eq!(e["event"]["type"], "message_updated", "{e}");
        assert_eq!(e["event"]["what"], "pinned");
        assert_eq!(e["event"]["message"]["id"], m["id"]);
        assert_eq!(e["event"]["message"]["channel_id"], general.as_str(), "{e}");
        assert_eq!(e["event"]["message"]["text"], "read me by id");
        let after = say(&app, &admin, &general, "still connected").await;
        let e = next_message(&mut s).await;
        assert_eq!(e["event"]["message"]["id"], after["id"], "{e}");
    }
}

/// With more people online than one frame lists, a new connection's greeting is the hello plus
/// `presence_snapshot` frames, sent before anything else, that together name everyone online
/// in its workspaces (with their status), and no frame of it grows with the crowd: a socket's
/// write buffer stays as large as the largest frame it ever sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_is_greeted_in_small_frames() {
    const CROWD: usize = 150;
    const LARGEST_FRAME: usize = 8 * 1024;
    // The crowd signs in from one address.
    let app = crate::harness::spawn_app_with(crate::harness::Backend::Sqlite, |c| {
        c.auth.ip_lockout_threshold = 10_000;
    })
    .await;
    let admin = app.bootstrap_admin().await;
    let clinic = app.create_workspace(&admin, "Clinic").await;
    let invitation = app
        .post(
            &format!("/api/v1/workspaces/{clinic}/invitations"),
            Some(&admin.access),
            json!({"role": "member", "max_uses": CROWD + 1}),
        )
        .await;
    let invitation = invitation.expect(201)["token"].as_str().unwrap().to_owned();
    let join = |n: usize| {
        let (app, admin, invitation) = (&app, &admin, &invitation);
        async move {
            let email = format!("member{n}@example.org");
            app.create_user(admin, &email, &format!("Member {n}")).await;
            let session = app.login(&email, PASSWORD).await;
            app.post(
                &format!("/api/v1/invitations/{invitation}/accept"),
                Some(&session.access),
                json!({}),
            )
            .await
            .expect(201);
            session
        }
    };
    let crowd = futures::future::join_all((0..CROWD).map(&join)).await;
    let newcomer = join(CROWD).await;
    // Someone outside the workspace is online too, and never listed.
    app.create_user(&admin, "out@example.org", "Out").await;
    let outsider = app.login("out@example.org", PASSWORD).await;
    let _out = app.socket(&outsider.access, None).await;

    let mut a = app.socket(&admin.access, None).await;
    let mut sockets = Vec::new();
    for member in &crowd {
        sockets.push(app.socket(&member.access, None).await);
    }
    // One of them is away on their only device; the admin hears it before the newcomer comes.
    sockets[0]
        .send(json!({"type": "presence", "status": "away"}))
        .await;
    loop {
        let p = next_of(&mut a, "presence").await;
        if p["user_id"] == crowd[0].user_id.as_str() && p["status"] == "away" {
            break;
        }
    }

    let mut s = app.socket(&newcomer.access, None).await;
    let mut greeting = vec![s.hello.clone()];
    let more = s.hello["presence_frames"]
        .as_u64()
        .expect("presence_frames");
    for _ in 0..more {
        greeting.push(s.next().await.expect("a presence_snapshot frame"));
    }
    let mut seen = serde_json::Map::new();
    for frame in &greeting {
        let size = frame.to_string().len();
        assert!(size <= LARGEST_FRAME, "a {size}-byte greeting frame");
        let presence = frame["presence"].as_object().expect("presence");
        assert!(!presence.is_empty() && presence.len() <= 64, "{frame}");
        for (user, status) in presence {
            assert!(
                seen.insert(user.clone(), status.clone()).is_none(),
                "{user} twice"
            );
        }
    }
    assert!(
        greeting[1..]
            .iter()
            .all(|f| f["type"] == "presence_snapshot"),
        "{greeting:?}"
    );
    let mut expected: serde_json::Map<String, serde_json::Value> = crowd
        .iter()
        .map(|m| (m.user_id.clone(), json!("online")))
        .collect();
    expected.insert(crowd[0].user_id.clone(), json!("away"));
    expected.insert(admin.user_id.clone(), json!("online"));
    assert_eq!(seen, expected);
    assert_eq!(s.hello["protocol"], 2, "{}", s.hello);
    // What follows the snapshot is live: the next presence change, then the pong.
    drop(sockets.pop());
    let p = s.next().await.expect("presence");
    assert_eq!(
        (p["type"].as_str(), p["status"].as_str()),
        (Some("presence"), Some("offline")),
        "{p}"
    );
    s.send(json!({"type": "ping"})).await;
    assert_eq!(s.next().await.unwrap()["type"], "pong");
}
