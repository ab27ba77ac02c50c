//! Documents over REST and the Yjs sync protocol, with a client built on yrs speaking the
//! same y-protocols messages as the stock `y-websocket` client.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::sync::{Awareness, Message, MessageReader, SyncMessage};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, Text, Transact, Update};

use crate::harness::{both_backends, spawn_app_with, Backend, Session, TestApp, WAIT};

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A Yjs client: a local document kept in sync with the server's.
pub struct YClient {
    stream: Stream,
    pub doc: Doc,
    /// Messages the server refused this client's updates with (auth messages).
    pub denied: Vec<String>,
    /// Awareness updates received (raw JSON states).
    pub awareness: Vec<String>,
    /// The same, with the client id each state is for.
    pub states: Vec<(u64, String)>,
    closed: Option<u16>,
}

pub fn ws_url(app: &TestApp, doc: &str, token: Option<&str>) -> String {
    let port = app.base.rsplit(':').next().unwrap_or_default();
    match token {
        Some(t) => format!("ws://127.0.0.1:{port}/api/v1/yjs/{doc}?token={t}"),
        None => format!("ws://127.0.0.1:{port}/api/v1/yjs/{doc}"),
    }
}

impl YClient {
    /// Connects and completes the initial sync (both directions).
    pub async fn connect(app: &TestApp, doc: &str, token: &str) -> YClient {
        YClient::connect_url(&ws_url(app, doc, Some(token))).await
    }

    /// Connects to a full endpoint URL and completes the initial sync.
    pub async fn connect_url(url: &str) -> YClient {
        let mut c = YClient::open_url(url).await;
        let sv = c.doc.transact().state_vector();
        c.send(Message::Sync(SyncMessage::SyncStep1(sv))).await;
        // The server's first message is its state vector; answer it, then wait for step 2.
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut synced = false;
        while !synced && tokio::time::Instant::now() < deadline {
            for m in c.receive(WAIT).await {
                if let Message::Sync(SyncMessage::SyncStep2(_)) = m {
                    synced = true;
                }
            }
            assert!(c.closed.is_none(), "closed with {:?}", c.closed);
        }
        assert!(synced, "no sync step 2 from the server");
        c
    }

    /// Opens the socket without syncing.
    pub async fn open(app: &TestApp, doc: &str, token: Option<&str>) -> YClient {
        YClient::open_url(&ws_url(app, doc, token)).await
    }

    /// Opens a socket to a full endpoint URL without syncing.
    pub async fn open_url(url: &str) -> YClient {
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects");
        YClient::from_stream(stream)
    }

    /// Wraps an open socket.
    pub fn from_stream(stream: Stream) -> YClient {
        YClient {
            stream,
            doc: Doc::new(),
            denied: Vec::new(),
            awareness: Vec::new(),
            states: Vec::new(),
            closed: None,
        }
    }

    pub async fn send(&mut self, m: Message) {
        self.send_raw(m.encode_v1()).await;
    }

    pub async fn send_raw(&mut self, bytes: Vec<u8>) {
        let _ = self.stream.send(WsMessage::Binary(bytes.into())).await;
    }

    /// Applies what arrives within `wait` (at least one frame if any comes) and returns it.
    pub async fn receive(&mut self, wait: Duration) -> Vec<Message> {
        let mut out = Vec::new();
        let Ok(Some(frame)) = tokio::time::timeout(wait, self.stream.next()).await else {
            return out;
        };
        match frame {
            Ok(WsMessage::Binary(bytes)) => {
                let mut decoder = DecoderV1::from(bytes.as_ref());
                let messages: Vec<Message> = MessageReader::new(&mut decoder)
                    .map(|m| m.expect("server sent valid y-protocols"))
                    .collect();
                for m in messages {
                    self.handle(&m).await;
                    out.push(m);
                }
            }
            Ok(WsMessage::Close(frame)) => {
                self.closed = Some(frame.map(|f| f.code.into()).unwrap_or(1005));
            }
            Ok(_) => {}
            Err(_) => self.closed = Some(1006),
        }
        out
    }

    async fn handle(&mut self, m: &Message) {
        match m {
            Message::Sync(SyncMessage::SyncStep1(sv)) => {
                let diff = self.doc.transact().encode_state_as_update_v1(sv);
                self.send(Message::Sync(SyncMessage::SyncStep2(diff))).await;
            }
            Message::Sync(SyncMessage::SyncStep2(u)) | Message::Sync(SyncMessage::Update(u)) => {
                let update = Update::decode_v1(u).expect("valid update");
                self.doc
                    .transact_mut()
                    .apply_update(update)
                    .expect("applies");
            }
            Message::Auth(Some(reason)) => self.denied.push(reason.clone()),
            Message::Awareness(update) => {
                for (client, entry) in update.clients.iter() {
                    self.awareness.push(entry.json.to_string());
                    self.states.push((client.get(), entry.json.to_string()));
                }
            }
            _ => {}
        }
    }

    pub fn text(&self) -> String {
        let t = self.doc.get_or_insert_text("content");
        let txn = self.doc.transact();
        t.get_string(&txn)
    }

    /// Inserts `s` at `index` of the shared text and sends the update.
    pub async fn insert(&mut self, index: u32, s: &str) {
        let t = self.doc.get_or_insert_text("content");
        let update = {
            let mut txn = self.doc.transact_mut();
            t.insert(&mut txn, index, s);
            txn.encode_update_v1()
        };
        self.send(Message::Sync(SyncMessage::Update(update))).await;
    }

    /// Receives until the text is `expected`.
    pub async fn wait_text(&mut self, expected: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.text() != expected {
            assert!(
                tokio::time::Instant::now() < deadline,
                "text is {:?}, expected {:?}",
                self.text(),
                expected
            );
            self.receive(Duration::from_millis(200)).await;
            assert!(self.closed.is_none(), "closed with {:?}", self.closed);
        }
    }

    /// Receives for `wait`, then says whether the text is still `expected`.
    pub async fn settle(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline && self.closed.is_none() {
            self.receive(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the close frame and returns its code.
    pub async fn closed_with(&mut self) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.closed.is_none() && tokio::time::Instant::now() < deadline {
            self.receive(Duration::from_millis(200)).await;
        }
        self.closed
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

pub async fn create_doc(app: &TestApp, who: &Session, ws: &str, title: &str) -> String {
    let r = app
        .post(
            &format!("/api/v1/workspaces/{ws}/documents"),
            Some(&who.access),
            json!({ "title": title }),
        )
        .await;
    r.expect(201)["id"].as_str().expect("id").to_owned()
}

pub async fn share(app: &TestApp, by: &Session, doc: &str, user: &Session, level: &str) {
    app.put(
        &format!("/api/v1/documents/{doc}/access"),
        &by.access,
        json!({ "user_id": user.user_id, "level": level }),
    )
    .await
    .expect(200);
}

async fn patch(app: &TestApp, path: &str, token: &str, body: Value) -> crate::harness::Reply {
    app.call(Method::PATCH, path, Some(token), Some(body)).await
}

async fn export(app: &TestApp, token: &str, path: &str) -> (u16, String, String) {
    let resp = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("export");
    let status = resp.status().as_u16();
    let disposition = resp
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, disposition, resp.text().await.unwrap_or_default())
}

async fn audit_actions(app: &TestApp, admin: &Session) -> Vec<String> {
    let r = app
        .get("/api/v1/audit/events?limit=500", &admin.access)
        .await;
    r.expect(200)["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect()
}

both_backends! {
    async fn documents_are_created_listed_shared_and_deleted(app) {
        let t = app.team().await;
        let doc = create_doc(&app, &t.ann, &t.ws, "Release plan").await;

        // Bo is in the workspace but has no access yet: he cannot see it at all.
        let bo_list = app.get(&format!("/api/v1/workspaces/{}/documents", t.ws), &t.bo.access).await;
        assert_eq!(bo_list.expect(200).as_array().unwrap().len(), 0);
        app.get(&format!("/api/v1/documents/{doc}"), &t.bo.access).await.expect_error(404, "not_found");

        share(&app, &t.ann, &doc, &t.bo, "view").await;
        let seen = app.get(&format!("/api/v1/documents/{doc}"), &t.bo.access).await;
        assert_eq!(seen.expect(200)["title"], "Release plan");
        assert_eq!(seen.expect(200)["my_access"], "view");
        // A viewer may not rename.
        patch(&app, &format!("/api/v1/documents/{doc}"), &t.bo.access, json!({"title": "x"}))
            .await
            .expect_error(403, "forbidden");

        let renamed = patch(&app, &format!("/api/v1/documents/{doc}"), &t.ann.access,
            json!({"title": "Release plan v2", "general_access": "edit"})).await;
        assert_eq!(renamed.expect(200)["title"], "Release plan v2");
        let grants = app.get(&format!("/api/v1/documents/{doc}/access"), &t.bo.access).await;
        assert_eq!(grants.expect(200)[0]["level"], "view");
        // General access `edit` raises Bo above his grant.
        let seen = app.get(&format!("/api/v1/documents/{doc}"), &t.bo.access).await;
        assert_eq!(seen.expect(200)["my_access"], "edit");

        // Bad input gets clear errors.
        app.post(&format!("/api/v1/workspaces/{}/documents", t.ws), Some(&t.ann.access), json!({"title": "  "}))
            .await
            .expect_error(422, "validation_failed");
        patch(&app, &format!("/api/v1/documents/{doc}"), &t.ann.access, json!({"general_access": "owner"}))
            .await
            .expect_error(422, "validation_failed");
        app.put(&format!("/api/v1/documents/{doc}/access"), &t.ann.access,
            json!({"user_id": t.bo.user_id, "role_id": t.bo.user_id, "level": "view"}))
            .await
            .expect_error(422, "validation_failed");
        let (status, _, _) = export(&app, &t.ann.access, &format!("/api/v1/documents/{doc}/export?format=docx")).await;
        assert_eq!(status, 422);

        // The admin is not a member of the document's audience unless granted: system roles
        // grant nothing, but workspace admins administer documents.
        let admin_view = app.get(&format!("/api/v1/documents/{doc}"), &t.admin.access).await;
        assert_eq!(admin_view.expect(200)["my_access"], "manage");

        app.delete(&format!("/api/v1/documents/{doc}/access/users/{}", t.bo.user_id), &t.ann.access)
            .await
            .expect(204);
        patch(&app, &format!("/api/v1/documents/{doc}"), &t.ann.access, json!({"general_access": "none"}))
            .await
            .expect(200);
        app.get(&format!("/api/v1/documents/{doc}"), &t.bo.access).await.expect_error(404, "not_found");

        app.delete(&format!("/api/v1/documents/{doc}"), &t.ann.access).await.expect(204);
        app.get(&format!("/api/v1/documents/{doc}"), &t.ann.access).await.expect_error(404, "not_found");
        let actions = audit_actions(&app, &t.admin).await;
        for a in ["document.created", "document.updated", "document.shared", "document.unshared", "document.deleted"] {
            assert!(actions.iter().any(|x| x == a), "{a} not audited: {actions:?}");
        }
    }

    async fn channel_linked_documents_follow_channel_membership(app) {
        let t = app.team().await;
        let channel = app
            .post(&format!("/api/v1/workspaces/{}/channels", t.ws), Some(&t.ann.access),
                json!({"name": "ops", "visibility": "private"}))
            .await
            .expect(201)["id"].as_str().unwrap().to_owned();
        let doc = app
            .post(&format!("/api/v1/workspaces/{}/documents", t.ws), Some(&t.ann.access),
                json!({"title": "Runbook", "channel_id": channel}))
            .await
            .expect(201)["id"].as_str().unwrap().to_owned();
        app.get(&format!("/api/v1/documents/{doc}"), &t.bo.access).await.expect_error(404, "not_found");
        app.post(&format!("/api/v1/channels/{channel}/members"), Some(&t.ann.access), json!({"user_id": t.bo.user_id}))
            .await
            .expect(200);
        let seen = app.get(&format!("/api/v1/documents/{doc}"), &t.bo.access).await;
        assert_eq!(seen.expect(200)["my_access"], "edit");
        // Unlinking (moving out of the channel) takes the access away again.
        patch(&app, &format!("/api/v1/documents/{doc}"), &t.ann.access, json!({"channel_id": null}))
            .await
            .expect(200);
        app.get(&format!("/api/v1/documents/{doc}"), &t.bo.access).await.expect_error(404, "not_found");
    }

    async fn commenters_comment_without_editing(app) {
        let t = app.team().await;
        let doc = create_doc(&app, &t.ann, &t.ws, "Draft").await;
        share(&app, &t.ann, &doc, &t.bo, "view").await;
        let path = format!("/api/v1/documents/{doc}/comments");
        // A viewer may read comments but not write them.
        app.post(&path, Some(&t.bo.access), json!({"text": "hm"})).await.expect_error(403, "forbidden");
        share(&app, &t.ann, &doc, &t.bo, "comment").await;
        let anchor = json!({"type": null, "tname": "content", "item": {"client": 1, "clock": 4}, "assoc": 0});
        let c = app.post(&path, Some(&t.bo.access), json!({"text": "Friday?", "anchor": anchor})).await;
        let id = c.expect(201)["id"].as_str().unwrap().to_owned();
        let listed = app.get(&path, &t.ann.access).await;
        assert_eq!(listed.expect(200)[0]["text"], "Friday?");
        assert_eq!(listed.expect(200)[0]["anchor"], anchor);
        // A commenter still cannot change the content.
        let mut bo = YClient::connect(&app, &doc, &t.bo.access).await;
        bo.insert(0, "edit").await;
        let mut ann = YClient::connect(&app, &doc, &t.ann.access).await;
        ann.settle(Duration::from_millis(400)).await;
        assert_eq!(ann.text(), "");
        // The author or an editor resolves; only the author or a manager deletes.
        let resolved = patch(&app, &format!("{path}/{id}"), &t.ann.access, json!({"resolved": true})).await;
        assert!(resolved.expect(200)["resolved_at"].is_string());
        app.post(&path, Some(&t.bo.access), json!({"text": " "})).await.expect_error(422, "validation_failed");
        app.delete(&format!("{path}/{id}"), &t.bo.access).await.expect(204);
        assert_eq!(app.get(&path, &t.ann.access).await.expect(200).as_array().unwrap().len(), 0);
    }

    async fn rotating_data_keys_reencrypts_documents(app) {
        let t = app.team().await;
        let doc = create_doc(&app, &t.ann, &t.ws, "Rotated").await;
        let mut a = YClient::connect(&app, &doc, &t.ann.access).await;
        a.insert(0, "before rotation").await;
        let mut b = YClient::connect(&app, &doc, &t.ann.access).await;
        b.wait_text("before rotation").await;
        app.post(&format!("/api/v1/documents/{doc}/versions"), Some(&t.ann.access), json!({"name": "v"}))
            .await
            .expect(201);
        app.post(&format!("/api/v1/documents/{doc}/comments"), Some(&t.ann.access), json!({"text": "c"}))
            .await
            .expect(201);
        let rotation = app.post("/api/v1/admin/keys/rotate-dek", Some(&t.admin.access), json!({})).await;
        let id = rotation.expect(202)["id"].as_str().unwrap().to_owned();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let done = loop {
            let s = app.get("/api/v1/admin/keys/status", &t.admin.access).await.expect(200).clone();
            if s["rotations"][0]["id"] == id.as_str() && s["rotations"][0]["state"] == "finished" {
                break s;
            }
            assert!(tokio::time::Instant::now() < deadline, "not finished: {s}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let docs = done["rotations"][0]["targets"].as_array().unwrap().iter()
            .find(|t| t["target"] == "documents").cloned().expect("documents are a target");
        assert_eq!(docs["reencrypted"], 1, "{done}");
        // Edits after the rotation, a reload from storage and every read still work.
        a.insert(0, "after; ").await;
        b.wait_text("after; before rotation").await;
        a.close().await;
        b.close().await;
        let app = app.restart().await;
        let mut c = YClient::connect(&app, &doc, &t.ann.access).await;
        c.wait_text("after; before rotation").await;
        let versions = app.get(&format!("/api/v1/documents/{doc}/versions"), &t.ann.access).await;
        assert_eq!(versions.expect(200)[0]["name"], "v");
        let comments = app.get(&format!("/api/v1/documents/{doc}/comments"), &t.ann.access).await;
        assert_eq!(comments.expect(200)[0]["text"], "c");
        let seen = app.get(&format!("/api/v1/documents/{doc}"), &t.ann.access).await;
        assert_eq!(seen.expect(200)["title"], "Rotated");
    }

    async fn two_clients_converge_and_content_survives_a_restart(app) {
        let t = app.team().await;
        let doc = create_doc(&app, &t.ann, &t.ws, "Notes").await;
        share(&app, &t.ann, &doc, &t.bo, "edit").await;
        let mut a = YClient::connect(&app, &doc, &t.ann.access).await;
        let mut b = YClient::connect(&app, &doc, &t.bo.access).await;
        a.insert(0, "Hello").await;
        b.wait_text("Hello").await;
        b.insert(5, " world").await;
        a.wait_text("Hello world").await;
        // Concurrent edits at both ends converge.
        a.insert(0, ">> ").await;
        b.insert(11, "!").await;
        a.wait_text(">> Hello world!").await;
        b.wait_text(">> Hello world!").await;
        a.close().await;
        b.close().await;

        let (status, disposition, body) =
            export(&app, &t.ann.access, &format!("/api/v1/documents/{doc}/export?format=text")).await;
        assert_eq!((status, body.as_str()), (200, ">> Hello world!"));
        assert!(disposition.starts_with("attachment;"), "{disposition}");

        let app = app.restart().await;
        let mut c = YClient::connect(&app, &doc, &t.bo.access).await;
        c.wait_text(">> Hello world!").await;
        let actions = audit_actions(&app, &t.admin).await;
        assert!(actions.iter().filter(|a| *a == "document.opened").count() >= 3);
        assert!(actions.iter().any(|a| a == "document.exported"));
    }

    async fn refusals_close_with_their_codes(app) {
        let t = app.team().await;
        let doc = create_doc(&app, &t.ann, &t.ws, "Private").await;
        let mut none = YClient::open(&app, &doc, None).await;
        assert_eq!(none.closed_with().await, Some(4401));
        let mut bad = YClient::open(&app, &doc, Some("not-a-token")).await;
        assert_eq!(bad.closed_with().await, Some(4401));
        let mut outsider = YClient::open(&app, &doc, Some(&t.bo.access)).await;
        assert_eq!(outsider.closed_with().await, Some(4403));
        let mut missing = YClient::open(&app, "01939e4e-0000-7000-8000-00000000dead", Some(&t.ann.access)).await;
        assert_eq!(missing.closed_with().await, Some(4403));

        // The token may come from the browser's cookie (on a page of this server) instead.
        {
            use tokio_tungstenite::tungstenite::client::IntoClientRequest;
            let mut request = ws_url(&app, &doc, None).into_client_request().unwrap();
            request.headers_mut().insert(
                "cookie",
                format!("theme=dark; concord_access_token={}", t.ann.access).parse().unwrap(),
            );
            request.headers_mut().insert("origin", app.base.parse().unwrap());
            let (stream, _) = tokio_tungstenite::connect_async(request).await.expect("connects");
            let mut by_cookie = YClient::from_stream(stream);
            let got = by_cookie.receive(WAIT).await;
            assert!(matches!(got.first(), Some(Message::Sync(SyncMessage::SyncStep1(_)))), "{:?}", by_cookie.closed);
        }
        // A malformed update closes that connection and leaves the document intact.
        let mut a = YClient::connect(&app, &doc, &t.ann.access).await;
        a.insert(0, "safe").await;
        let mut evil = YClient::connect(&app, &doc, &t.ann.access).await;
        evil.wait_text("safe").await;
        evil.send(Message::Sync(SyncMessage::Update(vec![1, 2, 3, 250, 255, 255, 255, 7]))).await;
        assert_eq!(evil.closed_with().await, Some(4400));
        let mut garbage = YClient::connect(&app, &doc, &t.ann.access).await;
        garbage.send_raw(vec![0, 9, 9, 9]).await;
        assert_eq!(garbage.closed_with().await, Some(4400));
        a.insert(4, "!").await;
        let mut check = YClient::connect(&app, &doc, &t.ann.access).await;
        check.wait_text("safe!").await;

        // Revoking access closes the connection at once.
        share(&app, &t.ann, &doc, &t.bo, "edit").await;
        let mut bo = YClient::connect(&app, &doc, &t.bo.access).await;
        bo.wait_text("safe!").await;
        app.delete(&format!("/api/v1/documents/{doc}/access/users/{}", t.bo.user_id), &t.ann.access)
            .await
            .expect(204);
        assert_eq!(bo.closed_with().await, Some(4403));
        // Signing out closes the connections of that session.
        let mut again = YClient::connect(&app, &doc, &t.ann.access).await;
        app.post("/api/v1/auth/logout", Some(&t.ann.access), json!({})).await;
        assert_eq!(again.closed_with().await, Some(4401));
    }

    async fn view_only_users_receive_but_cannot_write(app) {
        let t = app.team().await;
        let doc = create_doc(&app, &t.ann, &t.ws, "Policy").await;
        share(&app, &t.ann, &doc, &t.bo, "view").await;
        let mut editor = YClient::connect(&app, &doc, &t.ann.access).await;
        let mut viewer = YClient::connect(&app, &doc, &t.bo.access).await;
        editor.insert(0, "v1").await;
        viewer.wait_text("v1").await;
        viewer.insert(0, "HACK ").await;
        editor.settle(Duration::from_millis(700)).await;
        assert_eq!(editor.text(), "v1");
        assert!(viewer.denied.iter().any(|r| r.contains("permission-denied")), "{:?}", viewer.denied);
        let mut fresh = YClient::connect(&app, &doc, &t.ann.access).await;
        fresh.settle(Duration::from_millis(300)).await;
        assert_eq!(fresh.text(), "v1");
        // The viewer still follows the editor.
        editor.insert(2, " and v2").await;
        viewer.settle(Duration::from_millis(500)).await;
        assert!(viewer.text().contains("v1 and v2"), "{}", viewer.text());
    }

    async fn awareness_reaches_other_connections_of_the_same_user(app) {
        let t = app.team().await;
        let doc = create_doc(&app, &t.ann, &t.ws, "Cursors").await;
        let mut tab1 = YClient::connect(&app, &doc, &t.ann.access).await;
        let mut tab2 = YClient::connect(&app, &doc, &t.ann.access).await;
        let mut awareness = Awareness::new(Doc::new());
        awareness.set_local_state(json!({"user": {"name": "Ann", "color": "#30bced"}})).unwrap();
        tab1.send(Message::Awareness(awareness.update().unwrap())).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        while !tab2.awareness.iter().any(|s| s.contains("Ann")) {
            assert!(tokio::time::Instant::now() < deadline, "awareness never arrived");
            tab2.receive(Duration::from_millis(200)).await;
        }
        // A third connection joining later gets the current states at once.
        let mut tab3 = YClient::connect(&app, &doc, &t.ann.access).await;
        tab3.settle(Duration::from_millis(300)).await;
        assert!(tab3.awareness.iter().any(|s| s.contains("Ann")));
        // When tab1 leaves, the others hear its state removed.
        tab1.close().await;
        let deadline = tokio::time::Instant::now() + WAIT;
        while !tab2.awareness.iter().any(|s| s == "null") {
            assert!(tokio::time::Instant::now() < deadline, "removal never arrived");
            tab2.receive(Duration::from_millis(200)).await;
        }
    }

    async fn versions_restore_live_and_export(app) {
        let t = app.team().await;
        let doc = create_doc(&app, &t.ann, &t.ws, "Spec").await;
        share(&app, &t.ann, &doc, &t.bo, "edit").await;
        let mut a = YClient::connect(&app, &doc, &t.ann.access).await;
        let mut b = YClient::connect(&app, &doc, &t.bo.access).await;
        a.insert(0, "first draft").await;
        b.wait_text("first draft").await;
        let v = app
            .post(&format!("/api/v1/documents/{doc}/versions"), Some(&t.ann.access), json!({"name": "Draft 1"}))
            .await;
        let version = v.expect(201)["id"].as_str().unwrap().to_owned();
        a.insert(0, "REWRITTEN ").await;
        b.wait_text("REWRITTEN first draft").await;

        let listed = app.get(&format!("/api/v1/documents/{doc}/versions"), &t.bo.access).await;
        assert_eq!(listed.expect(200)[0]["name"], "Draft 1");
        let (status, _, body) =
            export(&app, &t.bo.access, &format!("/api/v1/documents/{doc}/versions/{version}?format=text")).await;
        assert_eq!((status, body.as_str()), (200, "first draft"));

        app.post(&format!("/api/v1/documents/{doc}/versions/{version}/restore"), Some(&t.bo.access), json!({}))
            .await
            .expect(204);
        // Both connected clients see the restore live.
        a.wait_text("first draft").await;
        b.wait_text("first draft").await;
        let actions = audit_actions(&app, &t.admin).await;
        assert!(actions.iter().any(|x| x == "document.version_created"));
        assert_eq!(actions.iter().filter(|x| *x == "document.version_restored").count(), 1);
        let missing = format!("/api/v1/documents/{doc}/versions/01939e4e-0000-7000-8000-00000000dead/restore");
        app.post(&missing, Some(&t.bo.access), json!({})).await.expect_error(404, "not_found");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_close_oversized_updates_and_compaction_keeps_content() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.docs.max_update_bytes = 2048;
        c.docs.max_document_bytes = 64 * 1024;
        c.docs.compact_after_updates = 5;
        c.docs.idle_seconds = 1;
    })
    .await;
    let t = app.team().await;
    let doc = create_doc(&app, &t.ann, &t.ws, "Big").await;
    let mut a = YClient::connect(&app, &doc, &t.ann.access).await;
    let mut expected = String::new();
    for i in 0..40 {
        let piece = format!("line {i}\n");
        a.insert(expected.len() as u32, &piece).await;
        expected.push_str(&piece);
        // One at a time, so each is its own stored batch and compaction runs.
        a.settle(Duration::from_millis(20)).await;
    }
    let mut b = YClient::connect(&app, &doc, &t.ann.access).await;
    b.wait_text(&expected).await;
    // An update over the limit closes the connection with 4413.
    a.insert(0, &"x".repeat(4096)).await;
    assert_eq!(a.closed_with().await, Some(4413));
    b.close().await;
    // Once idle the document leaves memory; it loads back from its snapshot and log.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (updates, snapshots): (i64, i64) = {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&app.database_url)
            .await
            .unwrap();
        (
            sqlx::query_scalar("SELECT COUNT(*) FROM document_updates")
                .fetch_one(&mut c)
                .await
                .unwrap(),
            sqlx::query_scalar("SELECT COUNT(*) FROM document_snapshots")
                .fetch_one(&mut c)
                .await
                .unwrap(),
        )
    };
    assert_eq!(snapshots, 1);
    assert!(updates < 5, "the log was not compacted: {updates} updates");
    let mut c = YClient::connect(&app, &doc, &t.ann.access).await;
    c.wait_text(&expected).await;
    // The document size limit refuses growth beyond it.
    for _ in 0..40 {
        c.insert(0, &"y".repeat(1900)).await;
        if c.closed_with_within(Duration::from_millis(50))
            .await
            .is_some()
        {
            break;
        }
    }
    assert_eq!(c.closed, Some(4413));
}

impl YClient {
    async fn closed_with_within(&mut self, wait: Duration) -> Option<u16> {
        self.settle(wait).await;
        self.closed
    }
}

impl YClient {
    /// Receives until a state for `client` containing `needle` arrives.
    async fn wait_state(&mut self, client: u64, needle: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self
            .states
            .iter()
            .any(|(c, json)| *c == client && json.contains(needle))
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no state {needle:?} for client {client}: {:?}",
                self.states
            );
            assert!(self.closed.is_none(), "closed with {:?}", self.closed);
            self.receive(Duration::from_millis(200)).await;
        }
    }

    /// The states received for `client`, in order.
    fn states_of(&self, client: u64) -> Vec<&str> {
        self.states
            .iter()
            .filter(|(c, _)| *c == client)
            .map(|(_, json)| json.as_str())
            .collect()
    }
}

/// An awareness message announcing `(client id, clock, JSON state)` entries.
fn awareness(entries: &[(u64, u32, &str)]) -> Message {
    use yrs::sync::awareness::AwarenessUpdateEntry;
    Message::Awareness(yrs::sync::AwarenessUpdate {
        clients: entries
            .iter()
            .map(|(client, clock, json)| {
                (
                    yrs::block::ClientID::new(*client),
                    AwarenessUpdateEntry {
                        clock: *clock,
                        json: (*json).into(),
                    },
                )
            })
            .collect(),
    })
}

/// Awareness is per connection: a client id belongs to the connection that announced it
/// first, and what a connection may announce is capped and checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awareness_states_belong_to_the_connection_that_announced_them() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.docs.awareness_max_state_bytes = 256;
        c.docs.awareness_max_clients = 2;
    })
    .await;
    let t = app.team().await;
    let doc = create_doc(&app, &t.ann, &t.ws, "Presence").await;
    share(&app, &t.ann, &doc, &t.bo, "edit").await;
    let mut ann = YClient::connect(&app, &doc, &t.ann.access).await;
    let mut bo = YClient::connect(&app, &doc, &t.bo.access).await;
    let mut watcher = YClient::connect(&app, &doc, &t.admin.access).await;

    ann.send(awareness(&[(101, 1, r#"{"user":{"name":"Ann"}}"#)]))
        .await;
    watcher.wait_state(101, "Ann").await;

    // Bo tries to overwrite and remove Ann's state, sends states that are too big, not JSON,
    // not an object, or that name Ann's account, and more client ids than he may own; then a
    // marker. Relaying keeps each connection's order, so the marker comes after all of it.
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(300));
    let as_ann = format!(r#"{{"user":{{"id":"{}","name":"Ann"}}}}"#, t.ann.user_id);
    bo.send(awareness(&[(101, 5, r#"{"user":{"name":"Mallory"}}"#)]))
        .await;
    bo.send(awareness(&[(101, 6, "null")])).await;
    bo.send(awareness(&[(201, 1, &big)])).await;
    bo.send(awareness(&[(202, 1, "{not json")])).await;
    bo.send(awareness(&[(203, 1, "[1,2]")])).await;
    bo.send(awareness(&[(204, 1, &as_ann)])).await;
    let own = format!(r#"{{"user":{{"id":"{}","name":"Bo"}}}}"#, t.bo.user_id);
    bo.send(awareness(&[(205, 1, &own)])).await;
    bo.send(awareness(&[(206, 1, r#"{"tab":2}"#)])).await;
    bo.send(awareness(&[(207, 1, r#"{"tab":3}"#)])).await;
    bo.send(awareness(&[(205, 2, r#"{"marker":1}"#)])).await;
    watcher.wait_state(205, "marker").await;
    assert_eq!(watcher.states_of(101), vec![r#"{"user":{"name":"Ann"}}"#]);
    for dropped in [201, 202, 203, 204, 207] {
        assert!(
            watcher.states_of(dropped).is_empty(),
            "{dropped}: {:?}",
            watcher.states
        );
    }
    assert_eq!(watcher.states_of(206), vec![r#"{"tab":2}"#]);
    assert!(watcher.states_of(205).contains(&own.as_str()));

    // An awareness message that does not decode closes its sender and reaches nobody.
    let mut garbage = YClient::connect(&app, &doc, &t.bo.access).await;
    // Message type 1 (awareness), then a buffer: one entry for client 9, clock 1, a state
    // that is not UTF-8.
    garbage.send_raw(vec![1, 5, 1, 9, 1, 1, 0xff]).await;
    assert_eq!(garbage.closed_with().await, Some(4400));

    // Bo leaves: his states go, Ann's stays.
    bo.close().await;
    watcher.wait_state(206, "null").await;
    assert_eq!(watcher.states_of(101), vec![r#"{"user":{"name":"Ann"}}"#]);
    assert!(watcher.states_of(9).is_empty(), "{:?}", watcher.states);
    // Someone joining now gets Ann's state and nobody else's.
    let fresh = YClient::connect(&app, &doc, &t.admin.access).await;
    let present: Vec<u64> = fresh.states.iter().map(|(c, _)| *c).collect();
    assert_eq!(present, vec![101], "{:?}", fresh.states);

    // A viewer shows its own cursor, under one client id only.
    share(&app, &t.ann, &doc, &t.bo, "view").await;
    let mut viewer = YClient::connect(&app, &doc, &t.bo.access).await;
    viewer
        .send(awareness(&[(301, 1, r#"{"cursor":"viewer"}"#)]))
        .await;
    viewer
        .send(awareness(&[(302, 1, r#"{"cursor":"second"}"#)]))
        .await;
    viewer.send(awareness(&[(101, 9, "null")])).await;
    viewer.send(awareness(&[(301, 2, r#"{"marker":2}"#)])).await;
    watcher.wait_state(301, "marker").await;
    assert_eq!(
        watcher.states_of(301),
        vec![r#"{"cursor":"viewer"}"#, r#"{"marker":2}"#]
    );
    assert!(watcher.states_of(302).is_empty(), "{:?}", watcher.states);
    assert_eq!(watcher.states_of(101), vec![r#"{"user":{"name":"Ann"}}"#]);

    // Ann's own removal is hers to make.
    ann.send(awareness(&[(101, 2, "null")])).await;
    watcher.wait_state(101, "null").await;
}

/// A socket opened with the sign-in cookie must come from a page of this server; a token sent
/// explicitly (subprotocol or query) is not ambient and needs no such check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_sockets_need_an_allowed_origin_and_tokens_travel_in_the_subprotocol() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Error as WsError;

    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let t = app.team().await;
    let doc = create_doc(&app, &t.ann, &t.ws, "Origins").await;

    async fn attempt(
        app: &TestApp,
        doc: &str,
        headers: &[(&'static str, String)],
    ) -> Result<(Stream, Option<String>), (u16, String)> {
        let mut request = ws_url(app, doc, None).into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(*name, value.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((stream, response)) => {
                let protocol = response
                    .headers()
                    .get("sec-websocket-protocol")
                    .map(|v| v.to_str().unwrap().to_owned());
                Ok((stream, protocol))
            }
            Err(WsError::Http(response)) => Err((
                response.status().as_u16(),
                String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                    .into_owned(),
            )),
            Err(e) => panic!("unexpected handshake failure: {e}"),
        }
    }

    async fn in_sync(stream: Stream) -> YClient {
        let mut c = YClient::from_stream(stream);
        let got = c.receive(WAIT).await;
        assert!(
            matches!(got.first(), Some(Message::Sync(SyncMessage::SyncStep1(_)))),
            "{:?}",
            c.closed
        );
        c
    }

    let cookie = format!("concord_access_token={}", t.ann.access);
    // Another site's page, or no page at all, cannot use the cookie.
    for origin in [
        Some("http://evil.example".to_owned()),
        Some("null".to_owned()),
        None,
    ] {
        let mut headers = vec![("cookie", cookie.clone())];
        if let Some(o) = &origin {
            headers.push(("origin", o.clone()));
        }
        let (status, body) = attempt(&app, &doc, &headers)
            .await
            .err()
            .unwrap_or_else(|| panic!("{origin:?} was let in"));
        assert_eq!(status, 403, "{body}");
        let body: Value = serde_json::from_str(&body).expect("JSON error");
        assert_eq!(body["error"]["code"], "origin_not_allowed", "{body}");
    }
    // This server's own page can.
    let (stream, _) = attempt(
        &app,
        &doc,
        &[("cookie", cookie.clone()), ("origin", app.base.clone())],
    )
    .await
    .expect("same origin is let in");
    in_sync(stream).await;

    // The token offered as a subprotocol; the server answers with `concord.yjs.v1`.
    let offer = format!("concord.yjs.v1, concord.bearer.{}", t.ann.access);
    let (stream, protocol) = attempt(
        &app,
        &doc,
        &[
            ("sec-websocket-protocol", offer.clone()),
            ("origin", "http://evil.example".into()),
        ],
    )
    .await
    .expect("a token in the subprotocol is let in");
    assert_eq!(protocol.as_deref(), Some("concord.yjs.v1"));
    let mut a = in_sync(stream).await;
    a.insert(0, "by header").await;
    let mut check = YClient::connect(&app, &doc, &t.ann.access).await;
    check.wait_text("by header").await;
    let (stream, _) = attempt(
        &app,
        &doc,
        &[(
            "sec-websocket-protocol",
            "concord.yjs.v1, concord.bearer.not-a-token".into(),
        )],
    )
    .await
    .expect("handshake");
    assert_eq!(YClient::from_stream(stream).closed_with().await, Some(4401));

    // With a public URL, its origin and the listed ones are the only pages allowed.
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.public_url = Some("https://chat.example.org".into());
        c.http.allowed_origins = vec!["http://localhost:5173".into()];
    })
    .await;
    let t = app.team().await;
    let doc = create_doc(&app, &t.ann, &t.ws, "Origins").await;
    let cookie = format!("concord_access_token={}", t.ann.access);
    for allowed in ["https://chat.example.org", "http://localhost:5173"] {
        let (stream, _) = attempt(
            &app,
            &doc,
            &[("cookie", cookie.clone()), ("origin", allowed.into())],
        )
        .await
        .unwrap_or_else(|e| panic!("{allowed}: {e:?}"));
        in_sync(stream).await;
    }
    let refused = attempt(
        &app,
        &doc,
        &[("cookie", cookie.clone()), ("origin", app.base.clone())],
    )
    .await
    .expect_err("the bound address is not the public origin");
    assert_eq!(refused.0, 403);
}

both_backends! {
    async fn a_batch_number_taken_elsewhere_makes_the_room_reload(app) {
        use concord::domain::DocumentId;
        use concord::store::{documents, Tx};
        let t = app.team().await;
        let doc = create_doc(&app, &t.ann, &t.ws, "Shared").await;
        let created = app.get(&format!("/api/v1/documents/{doc}"), &t.ann.access).await;
        let created_at = created.expect(200)["updated_at"].as_str().unwrap().to_owned();
        let mut a = YClient::connect(&app, &doc, &t.ann.access).await;
        a.insert(0, "one").await;
        a.settle(Duration::from_millis(300)).await;
        // The room numbers its batches itself; the document's details still follow the log.
        let seen = app.get(&format!("/api/v1/documents/{doc}"), &t.ann.access).await;
        let seen = seen.expect(200)["updated_at"].as_str().unwrap().to_owned();
        let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
        assert!(parse(&seen) > parse(&created_at), "{seen} after {created_at}");
        let stored = app
            .scalar("SELECT COALESCE(MAX(seq), 0) FROM document_updates")
            .await;
        assert!(stored >= 1);
        // Another writer (a second node, the command line) appends the next number first.
        let id: DocumentId = doc.parse().unwrap();
        let store = app.open_store().await;
        let append = |seq: i64| {
            store.write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let at = chrono::Utc::now();
                    documents::append_update(&mut tx.conn(), id, seq, b"elsewhere", at).await
                })
            })
        };
        assert!(!append(stored).await.unwrap(), "a stored number is refused");
        assert!(append(stored + 1).await.unwrap());
        // The room's next batch finds its number taken: nothing is stored under it, and its
        // connections are told to reconnect, so the room loads the document again.
        a.insert(3, " two").await;
        assert_eq!(a.closed_with().await, Some(1013));
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM document_updates").await,
            stored + 1,
        );
        // (The foreign batch is not a real Yjs update; remove it so the document loads.)
        app.raw_sql(&format!("DELETE FROM document_updates WHERE seq = {}", stored + 1))
            .await
            .unwrap();
        let mut b = YClient::connect(&app, &doc, &t.ann.access).await;
        b.wait_text("one").await;
        b.insert(3, " three").await;
        b.settle(Duration::from_millis(300)).await;
        let mut c = YClient::connect(&app, &doc, &t.ann.access).await;
        c.wait_text("one three").await;
        // A number a snapshot covers is refused too, even once its row is gone.
        let max = app.scalar("SELECT MAX(seq) FROM document_updates").await;
        let covered = store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let at = chrono::Utc::now();
                    documents::save_snapshot(&mut tx.conn(), id, max + 5, b"state", at).await?;
                    documents::append_update(&mut tx.conn(), id, max + 3, b"late", at).await
                })
            })
            .await;
        assert!(!covered.unwrap(), "a number under the snapshot is refused");
        store.close().await;
    }
}

both_backends!(a_newer_snapshot_stored_elsewhere_survives_a_stale_room);

async fn a_newer_snapshot_stored_elsewhere_survives_a_stale_room(backend: Backend) {
    use concord::domain::DocumentId;
    use concord::store::{documents, Store, Tx};
    let app = spawn_app_with(backend, |c| c.docs.idle_seconds = 1).await;
    let t = app.team().await;
    // Another process (a second node) that loaded the same document, edited it further and
    // compacted its log into a snapshot ahead of this server's room.
    let store = app.open_store().await;
    async fn compact(store: &Store, id: DocumentId, upto: i64, state: &'static [u8]) -> bool {
        store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let at = chrono::Utc::now();
                    documents::save_snapshot(&mut tx.conn(), id, upto, state, at).await
                })
            })
            .await
            .unwrap()
    }
    let stored_snapshot = |store: &Store, id: DocumentId| {
        let store = store.clone();
        async move {
            let mut reader = store.reader().await.unwrap();
            let (snapshot, _) = documents::load(&mut reader.conn(), id).await.unwrap();
            snapshot.map(|s| (s.upto_seq, s.state))
        }
    };
    let last_seq = |store: &Store, id: DocumentId| {
        let store = store.clone();
        async move {
            let mut reader = store.reader().await.unwrap();
            let record = documents::by_id(&mut reader.conn(), id).await.unwrap();
            record.unwrap().last_seq
        }
    };

    // The room leaves memory when idle and compacts what it holds: a newer snapshot stored
    // meanwhile is kept (nothing replaced, nothing dropped), and the room is gone.
    let doc = create_doc(&app, &t.ann, &t.ws, "Left").await;
    let id: DocumentId = doc.parse().unwrap();
    let mut a = YClient::connect(&app, &doc, &t.ann.access).await;
    a.insert(0, "one").await;
    a.settle(Duration::from_millis(300)).await;
    let seq = last_seq(&store, id).await;
    assert!(seq >= 1);
    assert!(compact(&store, id, seq + 3, b"newer").await);
    assert_eq!(last_seq(&store, id).await, seq + 3);
    a.close().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        stored_snapshot(&store, id).await,
        Some((seq + 3, b"newer".to_vec())),
        "the stale room's snapshot replaced a newer one"
    );
    assert_eq!(last_seq(&store, id).await, seq + 3);
    // Only a newer snapshot replaces the stored one.
    assert!(!compact(&store, id, seq + 3, b"same").await);
    assert!(!compact(&store, id, seq + 1, b"older").await);
    assert_eq!(
        stored_snapshot(&store, id).await,
        Some((seq + 3, b"newer".to_vec()))
    );
    // (The foreign snapshot is not real Yjs state; remove it so the document loads. Its log
    // was compacted into it, so a reloaded room holds an empty document where the stale one
    // held "one".)
    app.raw_sql("DELETE FROM document_snapshots").await.unwrap();
    let mut b = YClient::connect(&app, &doc, &t.ann.access).await;
    b.settle(Duration::from_millis(300)).await;
    assert_eq!(b.text(), "", "the stale room stayed in memory");
    b.insert(0, "fresh").await;
    b.settle(Duration::from_millis(300)).await;
    assert_eq!(last_seq(&store, id).await, seq + 4);
    let mut c = YClient::connect(&app, &doc, &t.ann.access).await;
    c.wait_text("fresh").await;
    c.close().await;
    b.close().await;

    // A loaded room whose next batch a newer snapshot covers stores nothing and reloads.
    let doc = create_doc(&app, &t.ann, &t.ws, "Written").await;
    let id: DocumentId = doc.parse().unwrap();
    let mut a = YClient::connect(&app, &doc, &t.ann.access).await;
    a.insert(0, "one").await;
    a.settle(Duration::from_millis(300)).await;
    let seq = last_seq(&store, id).await;
    assert!(compact(&store, id, seq + 3, b"newer").await);
    a.insert(3, " two").await;
    assert_eq!(a.closed_with().await, Some(1013));
    assert_eq!(
        stored_snapshot(&store, id).await,
        Some((seq + 3, b"newer".to_vec()))
    );
    assert_eq!(last_seq(&store, id).await, seq + 3);

    // A batch appended while another process's compaction is still being written waits for
    // it, then finds its number covered (on PostgreSQL the append checks only once it holds
    // the document's row lock, which compaction takes first).
    let base = seq + 3;
    let other = app.open_store().await;
    let slow = store.write(move |tx: &mut Tx| {
        Box::pin(async move {
            let at = chrono::Utc::now();
            let stored =
                documents::save_snapshot(&mut tx.conn(), id, base + 3, b"newest", at).await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            Ok::<bool, concord::store::StoreError>(stored)
        })
    });
    let late = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        other
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let at = chrono::Utc::now();
                    documents::append_update(&mut tx.conn(), id, base + 1, b"late", at).await
                })
            })
            .await
    };
    let (stored, appended) = tokio::join!(slow, late);
    assert!(stored.unwrap());
    assert!(
        !appended.unwrap(),
        "an append slipped under a snapshot being written"
    );
    assert_eq!(
        stored_snapshot(&store, id).await,
        Some((base + 3, b"newest".to_vec()))
    );
    other.close().await;
    store.close().await;
}
