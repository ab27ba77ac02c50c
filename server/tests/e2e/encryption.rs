//! Encryption at rest: no plaintext personal data in storage, refusal to start with a wrong
//! key, and ciphertexts that only decrypt where they were written.

use serde_json::json;

use crate::harness::{both_backends, spawn_app, spawn_app_with, Backend, TestApp, PASSWORD};

const ADMIN_EMAIL: &str = "Zephyrine.Quillfeather@Example.org";
const ADMIN_NAME: &str = "Zephyrine Quillfeather";
const USER_EMAIL: &str = "Barnabus.Oakenshield@Example.org";
const USER_NAME: &str = "Barnabus Oakenshield";
const INVITEE_EMAIL: &str = "Ottoline.Marchbanks@Example.org";
const INVITEE_NAME: &str = "Ottoline Marchbanks";
const MESSAGE: &str = "Thistlewaite protocol review at noon";
const EDITED: &str = "Bramblecroft protocol review moved to one";
const REPLY: &str = "Quenbury will bring the samples";
const DOC_TITLE: &str = "Wintergreen roadmap";
const DOC_TEXT: &[&str] = &[
    "Pemberton quarterly figures. ",
    "Cardew signs off. ",
    "Ashdown follows up.",
];
const VERSION_NAME: &str = "Halloway draft";
const WORKSPACE_NAME: &str = "Marigoldhaven Research";
const WORKSPACE_SLUG: &str = "marigoldhaven";
const WORKSPACE_RENAMED: &str = "Tansyford Institute";
const ROLE_NAME: &str = "quincewarden";
const ROLE_DESCRIPTION: &str = "Larkspur stewardship duties";
const CHANNEL_NAME: &str = "tamariskfold";
const CHANNEL_TOPIC: &str = "Foxglovery sample logistics";
const CHANNEL_TOPIC_EDITED: &str = "Snapdragonia sample logistics";
const CHANNEL_PURPOSE: &str = "Juniperwick coordination";
const CLIENT_MSG_ID: &str = "Hollyhockian-cmid-7";
const USER_AGENT: &str = "Brambleweed-Agent/9.1";
const COMMENT: &str = "Gooseberrian remark on the figures";

/// Writes `pieces` into a document through the Yjs endpoint, one stored batch each, and waits
/// until the server holds all of them.
async fn write_document(app: &TestApp, token: &str, doc: &str, pieces: &[&str]) {
    use futures::SinkExt;
    use yrs::sync::{Message, SyncMessage};
    use yrs::updates::encoder::Encode;
    use yrs::{Doc, Text, Transact};
    let url = format!(
        "{}/api/v1/yjs/{doc}?token={token}",
        app.base.replacen("http", "ws", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let ydoc = Doc::new();
    let text = ydoc.get_or_insert_text("content");
    let mut expected = String::new();
    for piece in pieces {
        let update = {
            let mut txn = ydoc.transact_mut();
            text.insert(&mut txn, expected.len() as u32, piece);
            txn.encode_update_v1()
        };
        expected.push_str(piece);
        let frame = Message::Sync(SyncMessage::Update(update)).encode_v1();
        ws.send(tokio_tungstenite::tungstenite::Message::Binary(
            frame.into(),
        ))
        .await
        .unwrap();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let body = export_text(app, token, doc).await;
            if body == expected {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "document holds {body:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        }
    }
    let _ = ws.close(None).await;
}
const FILE_NAME: &str = "Wyndham-Fairweather-minutes.txt";
const FILE_TEXT: &str = "Periwinkle trial results: all cohorts responded.";
const TUS_NAME: &str = "Cattermole-scan.txt";

fn needles() -> Vec<String> {
    let mut out = Vec::new();
    for s in [
        ADMIN_EMAIL,
        ADMIN_NAME,
        USER_EMAIL,
        USER_NAME,
        INVITEE_EMAIL,
        INVITEE_NAME,
    ] {
        out.push(s.to_owned());
        out.push(s.to_lowercase());
    }
    for s in ["Wintergreen", "Pemberton", "Cardew", "Ashdown", "Halloway"] {
        out.push(s.to_owned());
    }
    for s in [
        "Marigoldhaven",
        "marigoldhaven",
        "Tansyford",
        "quincewarden",
        "Larkspur",
        "tamariskfold",
        "Foxglovery",
        "Snapdragonia",
        "Juniperwick",
        "Hollyhockian",
        "Brambleweed",
        "Gooseberrian",
    ] {
        out.push(s.to_owned());
    }
    out.push("Quillfeather".into());
    out.push("quillfeather".into());
    out.push("Oakenshield".into());
    out.push("Marchbanks".into());
    for s in [
        "Thistlewaite",
        "Bramblecroft",
        "Quenbury",
        "Wyndham-Fairweather",
        "Periwinkle trial",
        "Cattermole",
        "Featherstonehaugh",
        "Loxleyvale",
        "Dunwoodyan",
        "Wraxhallian",
        "Pendlebury tier",
        "Abernethyish",
    ] {
        out.push(s.to_owned());
    }
    // The search index stores lower-cased, stemmed terms: look for those too.
    for s in [
        "thistlewait",
        "bramblecroft",
        "quenburi",
        "quenbury",
        "sesquipedal",
        "zanzibarian",
    ] {
        out.push(s.to_owned());
    }
    out
}

/// The document's text, as its export gives it.
async fn export_text(app: &TestApp, token: &str, doc: &str) -> String {
    app.client
        .get(app.url(&format!("/api/v1/documents/{doc}/export?format=text")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap_or_default()
}

fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

async fn plaintext_appears_nowhere(backend: Backend) {
    // Compact after two batches, so the scan covers a snapshot as well as the update log.
    let mut app = spawn_app_with(backend, |config| config.docs.compact_after_updates = 2).await;
    let admin = app.bootstrap_admin_as(ADMIN_EMAIL, ADMIN_NAME).await;
    app.create_user(&admin, USER_EMAIL, USER_NAME).await;
    let ws = app
        .post(
            "/api/v1/workspaces",
            Some(&admin.access),
            json!({"name": WORKSPACE_NAME, "slug": WORKSPACE_SLUG}),
        )
        .await
        .expect(201)
        .clone();
    let ws_id = ws["id"].as_str().unwrap().to_owned();
    let renamed = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/workspaces/{ws_id}"),
            Some(&admin.access),
            Some(json!({"name": WORKSPACE_RENAMED})),
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(
        renamed["name"], WORKSPACE_RENAMED,
        "the API decrypts the name"
    );
    assert_eq!(renamed["slug"], WORKSPACE_SLUG, "the API decrypts the slug");
    app.post(
        &format!("/api/v1/workspaces/{ws_id}/roles"),
        Some(&admin.access),
        json!({"name": ROLE_NAME, "description": ROLE_DESCRIPTION,
                   "permissions": ["workspace.read", "members.read", "channels.read"]}),
    )
    .await
    .expect(201);
    let inv = app
        .post(
            &format!("/api/v1/workspaces/{ws_id}/invitations"),
            Some(&admin.access),
            json!({"email": INVITEE_EMAIL, "role": ROLE_NAME}),
        )
        .await
        .expect(201)
        .clone();
    let accepted = app
        .post(
            &format!(
                "/api/v1/invitations/{}/accept",
                inv["token"].as_str().unwrap()
            ),
            None,
            json!({"email": INVITEE_EMAIL, "display_name": INVITEE_NAME, "password": PASSWORD}),
        )
        .await;
    assert!(accepted.status.is_success(), "{}", accepted.body);
    // A failed sign-in with a known email, and one with the user's address, leave audit entries.
    app.post(
        "/api/v1/auth/login",
        None,
        json!({"email": USER_EMAIL, "password": "wrong password!"}),
    )
    .await
    .expect(401);
    // Reading back works: the API decrypts.
    let members = app
        .get(
            &format!("/api/v1/workspaces/{ws_id}/members"),
            &admin.access,
        )
        .await
        .body;
    let names: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["display_name"].as_str())
        .collect();
    assert!(
        names.contains(&INVITEE_NAME) && names.contains(&ADMIN_NAME),
        "{members}"
    );
    assert!(
        members
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["display_name"] == INVITEE_NAME && m["role"] == ROLE_NAME),
        "the API decrypts the custom role's name: {members}"
    );
    let roles = app
        .get(&format!("/api/v1/workspaces/{ws_id}/roles"), &admin.access)
        .await
        .body;
    assert!(
        roles
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == ROLE_NAME && r["description"] == ROLE_DESCRIPTION),
        "{roles}"
    );
    // Chat: a message, its edit (the first text kept as a version) and a thread reply.
    let channel = app
        .post(
            &format!("/api/v1/workspaces/{ws_id}/channels"),
            Some(&admin.access),
            json!({"name": CHANNEL_NAME, "topic": CHANNEL_TOPIC, "purpose": CHANNEL_PURPOSE}),
        )
        .await
        .expect(201)
        .clone();
    let channel_id = channel["id"].as_str().unwrap().to_owned();
    let updated = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/channels/{channel_id}"),
            Some(&admin.access),
            Some(json!({"topic": CHANNEL_TOPIC_EDITED})),
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(
        (&updated["name"], &updated["topic"], &updated["purpose"]),
        (
            &json!(CHANNEL_NAME),
            &json!(CHANNEL_TOPIC_EDITED),
            &json!(CHANNEL_PURPOSE)
        ),
        "the API decrypts the channel's details"
    );
    let path = format!("/api/v1/channels/{channel_id}/messages");
    let message = app
        .post(
            &path,
            Some(&admin.access),
            json!({"text": MESSAGE, "client_msg_id": CLIENT_MSG_ID}),
        )
        .await
        .expect(201)
        .clone();
    let history = app.get(&path, &admin.access).await.body;
    assert!(
        history.to_string().contains(CLIENT_MSG_ID),
        "the API decrypts the client id: {history}"
    );
    let message_id = message["id"].as_str().unwrap().to_owned();
    app.call(
        reqwest::Method::PATCH,
        &format!("/api/v1/messages/{message_id}"),
        Some(&admin.access),
        Some(json!({"text": EDITED})),
    )
    .await
    .expect(200);
    app.post(
        &path,
        Some(&admin.access),
        json!({"text": REPLY, "thread_root_id": message_id}),
    )
    .await
    .expect(201);
    let versions = app
        .get(
            &format!("/api/v1/messages/{message_id}/versions"),
            &admin.access,
        )
        .await
        .body;
    assert_eq!(
        versions[0]["text"], MESSAGE,
        "the API decrypts the kept version"
    );
    // Documents: title, update log, compacted snapshot and a named version.
    let doc = app
        .post(
            &format!("/api/v1/workspaces/{ws_id}/documents"),
            Some(&admin.access),
            json!({"title": DOC_TITLE}),
        )
        .await
        .expect(201)
        .clone();
    let doc_id = doc["id"].as_str().unwrap().to_owned();
    write_document(&app, &admin.access, &doc_id, DOC_TEXT).await;
    app.post(
        &format!("/api/v1/documents/{doc_id}/versions"),
        Some(&admin.access),
        json!({"name": VERSION_NAME}),
    )
    .await
    .expect(201);
    let listed = app
        .get(
            &format!("/api/v1/workspaces/{ws_id}/documents"),
            &admin.access,
        )
        .await
        .body;
    assert_eq!(listed[0]["title"], DOC_TITLE, "the API decrypts the title");
    app.post(
        &format!("/api/v1/documents/{doc_id}/comments"),
        Some(&admin.access),
        json!({"text": COMMENT}),
    )
    .await
    .expect(201);
    // Files: one sent whole, one resumable upload left half-way (its partial chunk is kept).
    let body = FILE_TEXT.repeat(2000);
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(body.clone().into_bytes()).file_name(FILE_NAME),
    );
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/channels/{channel_id}/files")))
        .bearer_auth(&admin.access)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let file: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(file["name"], FILE_NAME);
    let download = app
        .client
        .get(app.url(&format!(
            "/api/v1/files/{}/content",
            file["id"].as_str().unwrap()
        )))
        .bearer_auth(&admin.access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        download.text().await.unwrap(),
        body,
        "the API decrypts the file"
    );
    use base64::Engine;
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/channels/{channel_id}/uploads")))
        .bearer_auth(&admin.access)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", "100000")
        .header(
            "Upload-Metadata",
            format!(
                "filename {}",
                base64::engine::general_purpose::STANDARD.encode(TUS_NAME)
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let upload = resp.headers()["location"].to_str().unwrap().to_owned();
    let resp = app
        .client
        .patch(app.url(&upload))
        .bearer_auth(&admin.access)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body(FILE_TEXT.repeat(1000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    app.login(USER_EMAIL, PASSWORD).await;
    // A sign-in from a client with a telling User-Agent: kept with the session, encrypted.
    let resp = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("User-Agent", USER_AGENT)
        .json(&json!({"email": USER_EMAIL, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let user_token = resp.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let sessions = app.get("/api/v1/users/me/sessions", &user_token).await.body;
    assert!(
        sessions
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["user_agent"] == USER_AGENT && s["ip"] == "127.0.0.1"),
        "the API decrypts where a session began: {sessions}"
    );
    // Search indexed the messages (so the index folder holds them, encrypted).
    app.post(
        &path,
        Some(&admin.access),
        json!({"text": "Sesquipedalian Zanzibarian vocabulary"}),
    )
    .await
    .expect(201);
    let found = app
        .get(
            &format!("/api/v1/workspaces/{ws_id}/search?q=zanzibarian"),
            &admin.access,
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(found["total"], 1, "{found}");
    let found = app
        .get(
            &format!("/api/v1/workspaces/{ws_id}/search?q=bramblecroft"),
            &admin.access,
        )
        .await
        .body;
    assert_eq!(found["total"], 1, "{found}");
    // A channel is still found by its (encrypted) name.
    let found = app
        .get(
            &format!("/api/v1/workspaces/{ws_id}/search?q=zanzibarian%20in:%23{CHANNEL_NAME}"),
            &admin.access,
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["results"][0]["channel_name"], CHANNEL_NAME, "{found}");
    // A workflow: a form, its model, variables, task and trigger settings.
    app.post(
        &format!("/api/v1/workspaces/{ws_id}/workflow-forms"),
        Some(&admin.access),
        json!({"key": "intake", "schema": {"title": "Dunwoodyan intake", "type": "object",
            "properties": {"note": {"type": "string", "title": "Loxleyvale note"}}}}),
    )
    .await
    .expect(201);
    let model = "process: intake_flow\nname: Featherstonehaugh intake\nsteps:\n  - start: s\n  - user_task: review\n    name: Featherstonehaugh review\n    person: ${owner}\n  - end: e\n";
    app.post(
        &format!("/api/v1/workspaces/{ws_id}/workflows"),
        Some(&admin.access),
        json!({ "source": model, "note": "Abernethyish review added" }),
    )
    .await
    .expect(201);
    let started = app
        .post(
            &format!("/api/v1/workspaces/{ws_id}/workflows/intake_flow/instances"),
            Some(&admin.access),
            json!({"variables": {"owner": admin.user_id, "client": "Loxleyvale"}}),
        )
        .await
        .expect(201)
        .clone();
    assert_eq!(started["variables"]["client"], "Loxleyvale", "{started}");
    assert_eq!(started["tasks"][0]["name"], "Featherstonehaugh review");
    // A decision table: its rules (a business's policy) and annotations.
    app.post(
        &format!("/api/v1/workspaces/{ws_id}/workflow-decisions"),
        Some(&admin.access),
        json!({"source": "decision: intake_route\nname: Wraxhallian routing\ninputs: [client]\noutputs: [queue]\nrules:\n  - when: ['\"Loxleyvale\"']\n    then: ['\"Pendlebury tier\"']\n    description: Wraxhallian accounts\n"}),
    )
    .await
    .expect(201);
    app.post(
        &format!("/api/v1/workspaces/{ws_id}/workflows/intake_flow/triggers"),
        Some(&admin.access),
        json!({"kind": "message", "pattern": "Dunwoodyan"}),
    )
    .await
    .expect(201);
    app.stop().await;
    let mut index_files = Vec::new();
    files_under(&app.data_dir.join("search"), &mut index_files);
    assert!(
        index_files.len() > 3,
        "the index folder holds segments: {index_files:?}"
    );

    let needles = needles();
    let mut files = Vec::new();
    files_under(&app.data_dir, &mut files);
    assert!(!files.is_empty());
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for needle in &needles {
            assert!(
                !text.contains(needle.as_str()),
                "{needle:?} found in plaintext in {}",
                file.display()
            );
        }
    }
    if backend == Backend::Postgres {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&app.database_url)
            .await
            .unwrap();
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert!(tables.len() > 5);
        for (table,) in tables {
            // Every column, text and bytea alike, as the row's text form (bytea in hex) and as raw bytes.
            let rows: Vec<(String,)> = sqlx::query_as(&format!("SELECT t::text FROM {table} t"))
                .fetch_all(&mut conn)
                .await
                .unwrap();
            let dump: String = rows.into_iter().map(|r| r.0).collect::<Vec<_>>().join("\n");
            for needle in &needles {
                assert!(
                    !dump.contains(needle.as_str()),
                    "{needle:?} in table {table}"
                );
                let hex_needle = hex::encode(needle.as_bytes());
                assert!(
                    !dump.contains(&hex_needle),
                    "{needle:?} (as bytes) in table {table}"
                );
            }
        }
    }
    // The client's address is not findable by its bytes alone (127.0.0.1 appears elsewhere
    // legitimately), so the stored column is checked: only ciphertext.
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions WHERE ip IS NOT NULL OR user_agent IS NOT NULL")
            .await,
        0
    );
    assert!(
        app.scalar("SELECT COUNT(*) FROM sessions WHERE ip_enc IS NOT NULL")
            .await
            > 0
    );
}

async fn refuses_to_start_with_a_wrong_kek(backend: Backend) {
    let mut app = spawn_app(backend).await;
    app.bootstrap_admin_as(ADMIN_EMAIL, ADMIN_NAME).await;
    app.stop().await;
    let mut config = app.config.clone();
    let other = concord::crypto::Kek::generate();
    config.keys.kek = Some(serde_json::from_value(json!(other.to_base64().as_str())).unwrap());
    let err = match concord::App::build(config).await {
        Ok(_) => panic!("started with the wrong KEK"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("wrong key-encryption key"), "{err}");
    // The right key still works.
    let mut app = app.restart().await;
    let admin = app.login(ADMIN_EMAIL, PASSWORD).await;
    let me = app
        .get("/api/v1/users/me", &admin.access)
        .await
        .expect(200)
        .clone();
    assert_eq!(me["email"], ADMIN_EMAIL);
    app.stop().await;
}

async fn ciphertext_moved_to_another_row_fails(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let admin = app.bootstrap_admin_as(ADMIN_EMAIL, ADMIN_NAME).await;
    let user_id = app.create_user(&admin, USER_EMAIL, USER_NAME).await;
    let admin_id = admin.user_id.clone();
    app.get(&format!("/api/v1/users/{user_id}"), &admin.access)
        .await
        .expect(200);
    app.stop().await;

    // An attacker with database access copies the display name into another column and row.
    let id_literal = |id: &str| match backend {
        Backend::Sqlite => format!("X'{}'", id.replace('-', "")),
        Backend::Postgres => format!("'{id}'"),
    };
    app.raw_sql(&format!(
        "UPDATE users SET display_name_enc = (SELECT display_name_enc FROM users WHERE id = {}) WHERE id = {}",
        id_literal(&admin_id),
        id_literal(&user_id)
    ))
    .await
    .expect("raw sql");
    let mut app = app.restart().await;
    let admin = app.login(ADMIN_EMAIL, PASSWORD).await;
    let body = app
        .get(&format!("/api/v1/users/{user_id}"), &admin.access)
        .await;
    assert_eq!(
        body.status.as_u16(),
        500,
        "a moved ciphertext must not decrypt: {}",
        body.body
    );
    assert!(!body.body.to_string().contains(ADMIN_NAME));
    app.stop().await;
}

/// A deployment upgraded from before names, topics, roles and client details were encrypted
/// keeps them in plaintext until its next start, which encrypts every such row.
async fn legacy_plaintext_is_encrypted_at_start(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let admin = app.bootstrap_admin_as(ADMIN_EMAIL, ADMIN_NAME).await;
    let ws = app
        .post(
            "/api/v1/workspaces",
            Some(&admin.access),
            json!({"name": "Placeholder", "slug": "placeholder"}),
        )
        .await
        .expect(201)
        .clone();
    let ws_id = ws["id"].as_str().unwrap().to_owned();
    app.post(
        &format!("/api/v1/workspaces/{ws_id}/roles"),
        Some(&admin.access),
        json!({"name": "placeholder_role", "description": "x", "permissions": ["workspace.read"]}),
    )
    .await
    .expect(201);
    let channel = app
        .post(
            &format!("/api/v1/workspaces/{ws_id}/channels"),
            Some(&admin.access),
            json!({"name": "placeholder-chan", "topic": "t", "purpose": "p"}),
        )
        .await
        .expect(201)
        .clone();
    let channel_id = channel["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/channels/{channel_id}/messages");
    let message = app
        .post(
            &path,
            Some(&admin.access),
            json!({"text": "hello", "client_msg_id": "placeholder-cmid"}),
        )
        .await
        .expect(201)
        .clone();
    // Enough rows that replacing them frees whole pages, not only space within a page.
    for i in 0..BULK_CHANNELS {
        app.post(
            &format!("/api/v1/workspaces/{ws_id}/channels"),
            Some(&admin.access),
            json!({"name": format!("bulk-{i}"), "topic": "bulk", "purpose": "bulk"}),
        )
        .await
        .expect(201);
    }
    app.stop().await;

    // What a deployment from before encryption at rest holds: the same rows in plaintext.
    app.raw_sql(
        "UPDATE workspaces SET name = 'Oldmoor Works', slug_index = 'oldmoor', name_enc = NULL, slug_enc = NULL; \
         UPDATE channels SET name_index = 'oldmoor-chan', name_enc = NULL, topic = 'Oldmoor topic', \
           topic_enc = NULL, purpose = 'Oldmoor purpose', purpose_enc = NULL \
           WHERE kind = 'public' AND created_at = (SELECT MIN(created_at) FROM channels WHERE kind = 'public'); \
         UPDATE channels SET name_index = 'oldmoorbulk-' || substr(name_index, 1, 16), name_enc = NULL, \
           topic = 'Oldmoor bulk topic about the Oldmoor estate ' || name_index, topic_enc = NULL, \
           purpose = 'Oldmoor bulk purpose for the Oldmoor estate ' || name_index, purpose_enc = NULL \
           WHERE kind = 'public' AND name_index <> 'oldmoor-chan'; \
         UPDATE roles SET name = 'oldmoor_role', description = 'Oldmoor duties', name_enc = NULL, \
           description_enc = NULL WHERE builtin = FALSE; \
         UPDATE sessions SET user_agent = 'Oldmoor-Agent/1', ip = '10.9.8.7', user_agent_enc = NULL, ip_enc = NULL; \
         UPDATE messages SET client_msg_id = 'oldmoor-cmid', client_msg_index = NULL, client_msg_id_enc = NULL \
           WHERE client_msg_index IS NOT NULL;",
    )
    .await
    .expect("raw sql");

    if app.backend == Backend::Sqlite {
        assert!(
            !files_containing(&app, "oldmoor").is_empty(),
            "the legacy rows are on disk before the restart"
        );
    }
    let mut app = app.restart().await;
    // Right after the start-up backfill, with the server running: neither the database file nor
    // its write-ahead log keeps the replaced plaintext in freed pages.
    if app.backend == Backend::Sqlite {
        let left = files_containing(&app, "oldmoor");
        assert!(
            left.is_empty(),
            "plaintext left after the backfill in {left:?}"
        );
    }
    let admin = app.login(ADMIN_EMAIL, PASSWORD).await;
    let list = app.get("/api/v1/workspaces", &admin.access).await.body;
    assert_eq!(list[0]["name"], "Oldmoor Works", "{list}");
    assert_eq!(list[0]["slug"], "oldmoor", "{list}");
    let channel = app
        .get(&format!("/api/v1/channels/{channel_id}"), &admin.access)
        .await
        .body;
    assert_eq!(
        (&channel["name"], &channel["topic"], &channel["purpose"]),
        (
            &json!("oldmoor-chan"),
            &json!("Oldmoor topic"),
            &json!("Oldmoor purpose")
        ),
        "{channel}"
    );
    let roles = app
        .get(&format!("/api/v1/workspaces/{ws_id}/roles"), &admin.access)
        .await
        .body;
    assert!(
        roles
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "oldmoor_role" && r["description"] == "Oldmoor duties"),
        "{roles}"
    );
    let sessions = app
        .get("/api/v1/users/me/sessions", &admin.access)
        .await
        .body;
    assert!(
        sessions
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["user_agent"] == "Oldmoor-Agent/1" && s["ip"] == "10.9.8.7"),
        "{sessions}"
    );
    let history = app.get(&path, &admin.access).await.body;
    assert!(history.to_string().contains("oldmoor-cmid"), "{history}");
    // Lookups and uniqueness now go through the blind indexes the backfill wrote.
    let again = app
        .post(
            &path,
            Some(&admin.access),
            json!({"text": "hello", "client_msg_id": "oldmoor-cmid"}),
        )
        .await;
    assert!(again.status.is_success(), "{}", again.body);
    let again = again.body;
    assert_eq!(
        again["id"], message["id"],
        "a retried post is not duplicated"
    );
    // The slug is taken.
    app.post(
        "/api/v1/workspaces",
        Some(&admin.access),
        json!({"name": "Another", "slug": "oldmoor"}),
    )
    .await
    .expect(409);
    // The channel name is taken.
    app.post(
        &format!("/api/v1/workspaces/{ws_id}/channels"),
        Some(&admin.access),
        json!({"name": "oldmoor-chan"}),
    )
    .await
    .expect(409);
    // The role name is taken.
    app.post(
        &format!("/api/v1/workspaces/{ws_id}/roles"),
        Some(&admin.access),
        json!({"name": "oldmoor_role", "permissions": ["workspace.read"]}),
    )
    .await
    .expect(409);
    app.stop().await;

    for sql in [
        "SELECT COUNT(*) FROM workspaces WHERE name <> '' OR slug_enc IS NULL OR name_enc IS NULL \
         OR slug_index = 'oldmoor'",
        "SELECT COUNT(*) FROM channels WHERE topic <> '' OR purpose <> '' \
         OR (name_index IS NOT NULL AND name_enc IS NULL) OR name_index = 'oldmoor-chan'",
        "SELECT COUNT(*) FROM roles WHERE builtin = FALSE AND (name_enc IS NULL OR description <> '' \
         OR name = 'oldmoor_role')",
        "SELECT COUNT(*) FROM sessions WHERE user_agent IS NOT NULL OR ip IS NOT NULL",
        "SELECT COUNT(*) FROM messages WHERE client_msg_id IS NOT NULL",
    ] {
        assert_eq!(app.scalar(sql).await, 0, "plaintext left: {sql}");
    }
    // Nor do the files keep the old bytes in freed space (PostgreSQL's dead row versions are
    // left to its vacuum; the SQL scan above covers what it serves).
    let left = files_containing(&app, "oldmoor");
    assert!(left.is_empty(), "plaintext left in {left:?}");
}

/// Legacy channels written besides the named one, so the backfill frees whole pages.
const BULK_CHANNELS: usize = 300;

/// The files under the environment's directory (database, WAL, data dir) holding `marker`,
/// compared case-insensitively.
fn files_containing(app: &TestApp, marker: &str) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    files_under(&app.data_dir, &mut files);
    files.retain(|file| {
        // A file may vanish while listed (the WAL is removed when the last connection closes).
        let bytes = std::fs::read(file).unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .to_lowercase()
            .contains(marker)
    });
    files
}

both_backends!(
    plaintext_appears_nowhere,
    legacy_plaintext_is_encrypted_at_start,
    refuses_to_start_with_a_wrong_kek,
    ciphertext_moved_to_another_row_fails,
);
