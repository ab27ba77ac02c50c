//! The data inventory against reality: every place the keyring encrypts into is listed, every
//! table and column the inventory names exists on both backends, and a data-key rotation
//! re-encrypts what it lists, files included (name, content key, thumbnail, text), with
//! downloads still whole and the audit log still verifying.

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};

use crate::docs::{create_doc, YClient};
use crate::harness::{both_backends, Backend, Session, TestApp, PASSWORD};

/// A PNG big enough to get a thumbnail.
fn png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(320, 200, |x, y| image::Rgb([x as u8, y as u8, 7]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Shares `bytes` as `name` in `channel` with a message text; returns the file.
async fn upload(app: &TestApp, who: &Session, channel: &str, name: &str, bytes: &[u8]) -> Value {
    let boundary = "inventory-boundary-5f2c";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nthe picture\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = app
        .client
        .post(format!("{}/api/v1/channels/{channel}/files", app.base))
        .bearer_auth(&who.access)
        .header(
            CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

async fn bytes_of(app: &TestApp, who: &Session, path: &str) -> (u16, Vec<u8>) {
    let r = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(&who.access)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// A workspace with a channel, a custom role, a topic, an invitation, an edited message
/// with a client id, a document with content, a version and a comment, and a picture shared
/// with a text: at least one value in every kind of encrypted column.
struct World {
    admin: Session,
    channel: String,
    file: String,
    picture: Vec<u8>,
}

async fn world(app: &TestApp) -> World {
    let admin = app.bootstrap_admin().await;
    app.create_user(&admin, "member@example.org", "Member")
        .await;
    let r = app
        .client
        .post(format!("{}/api/v1/auth/login", app.base))
        .header("User-Agent", "inventory-agent/1")
        .json(&json!({"email": "member@example.org", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ws = app.create_workspace(&admin, "Inventory").await;
    let channel = app
        .post(
            &format!("/api/v1/workspaces/{ws}/channels"),
            Some(&admin.access),
            json!({"name": "stock"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.call(
        reqwest::Method::PATCH,
        &format!("/api/v1/channels/{channel}"),
        Some(&admin.access),
        Some(json!({"topic": "counting", "purpose": "keeping track"})),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/workspaces/{ws}/roles"),
        Some(&admin.access),
        json!({"name": "counter", "description": "counts things", "permissions": ["workspace.read"]}),
    )
    .await
    .expect(201);
    app.post(
        &format!("/api/v1/workspaces/{ws}/invitations"),
        Some(&admin.access),
        json!({"email": "invitee@example.org"}),
    )
    .await
    .expect(201);
    let message = app
        .post(
            &format!("/api/v1/channels/{channel}/messages"),
            Some(&admin.access),
            json!({"text": "first count", "client_msg_id": "c-1"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.call(
        reqwest::Method::PATCH,
        &format!("/api/v1/messages/{message}"),
        Some(&admin.access),
        Some(json!({"text": "second count"})),
    )
    .await
    .expect(200);
    let doc = create_doc(app, &admin, &ws, "Ledger").await;
    let mut y = YClient::connect(app, &doc, &admin.access).await;
    y.insert(0, "ledger lines").await;
    y.settle(Duration::from_millis(300)).await;
    y.close().await;
    app.post(
        &format!("/api/v1/documents/{doc}/versions"),
        Some(&admin.access),
        json!({"name": "v1"}),
    )
    .await
    .expect(201);
    app.post(
        &format!("/api/v1/documents/{doc}/comments"),
        Some(&admin.access),
        json!({"text": "checked"}),
    )
    .await
    .expect(201);
    let picture = png();
    let file = upload(app, &admin, &channel, "count.png", &picture).await;
    assert_eq!(file["has_thumbnail"], true, "{file}");
    World {
        admin,
        channel,
        file: file["id"].as_str().unwrap().to_owned(),
        picture,
    }
}

/// The names of a table's columns.
async fn columns_of(app: &TestApp, table: &str) -> Vec<String> {
    use sqlx::Connection;
    match app.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .unwrap();
            sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
                .bind(table)
                .fetch_all(&mut c)
                .await
                .unwrap()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.database_url)
                .await
                .unwrap();
            sqlx::query_scalar(
                "SELECT column_name::TEXT FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1",
            )
            .bind(table)
            .fetch_all(&mut c)
            .await
            .unwrap()
        }
    }
}

/// The key version of every value of a column (format byte, then the u32 version).
async fn versions(app: &TestApp, table: &str, column: &str) -> Vec<u32> {
    use sqlx::Connection;
    let sql = format!("SELECT {column} FROM {table} WHERE {column} IS NOT NULL");
    let values: Vec<Vec<u8>> = match app.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .unwrap();
            sqlx::query_scalar(&sql).fetch_all(&mut c).await.unwrap()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.database_url)
                .await
                .unwrap();
            sqlx::query_scalar(&sql).fetch_all(&mut c).await.unwrap()
        }
    };
    values
        .into_iter()
        .filter(|v| v.len() > 5)
        .map(|v| u32::from_be_bytes([v[1], v[2], v[3], v[4]]))
        .collect()
}

/// Rotates the data keys through the API and waits for the re-encryption to finish.
async fn rotate(app: &TestApp, admin: &Session) -> Value {
    let r = app
        .post(
            "/api/v1/admin/keys/rotate-dek",
            Some(&admin.access),
            json!({}),
        )
        .await;
    let id = r.expect(202)["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = app
            .get("/api/v1/admin/keys/status", &admin.access)
            .await
            .expect(200)
            .clone();
        let r = s["rotations"][0].clone();
        if r["id"] == id.as_str() && r["state"] == "finished" {
            return r;
        }
        assert!(Instant::now() < deadline, "not finished: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `concord audit verify` on the app's database.
fn audit_verifies(app: &TestApp) {
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .arg("--data-dir")
        .arg(&app.data_dir)
        .args(["--database-url", &app.database_url, "audit", "verify"])
        .env("CONCORD_LOG__FILTER", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

both_backends! {
    async fn every_encrypted_place_is_in_the_inventory_and_its_columns_exist(app) {
        let inventory = concord::startup::inventory();
        world(&app).await;
        // Every place any keyring in this process encrypted into (this test's world, and
        // whatever the tests running beside it wrote) is listed.
        let written = concord::crypto::written_places();
        let unlisted: Vec<_> = written
            .iter()
            .filter(|(t, c)| !inventory.lists_place(t, c))
            .collect();
        assert!(unlisted.is_empty(), "ciphertext written under places the inventory does not list: {unlisted:?}");
        for (table, column) in [
            ("files", "name"), ("files", "content_key"), ("files", "thumbnail"),
            ("messages", "body"), ("message_versions", "body"), ("document_updates", "body"),
            ("sessions", "user_agent"), ("invitations", "email"), ("audit_events", "details"),
        ] {
            assert!(
                written.iter().any(|(t, c)| t == table && c == column),
                "the world wrote no {table}.{column}: {written:?}"
            );
        }
        // Every table and column the inventory names exists on this backend.
        let mut missing = Vec::new();
        let mut tables = std::collections::HashMap::new();
        for (table, column) in inventory.named_columns() {
            if !tables.contains_key(table) {
                tables.insert(table, columns_of(&app, table).await);
            }
            if !tables[table].iter().any(|c| c == column) {
                missing.push(format!("{table}.{column}"));
            }
        }
        assert!(missing.is_empty(), "the inventory names columns that do not exist: {missing:?}");
        assert!(inventory.problems().is_empty(), "{:?}", inventory.problems());
    }

    async fn rotating_data_keys_reencrypts_files_and_the_log_still_verifies(app) {
        let w = world(&app).await;
        // (A file's text is kept encrypted only while a resumable upload is unfinished; this
        // one posted its message at once.)
        let file_columns = ["name_enc", "content_key", "thumbnail_enc"];
        for column in file_columns {
            assert_eq!(versions(&app, "files", column).await, vec![1], "files.{column}");
        }
        let rotation = rotate(&app, &w.admin).await;
        let files = rotation["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["target"] == "files")
            .cloned()
            .expect("files are a target");
        assert_eq!(files["reencrypted"], 1, "{rotation}");
        for column in file_columns {
            assert_eq!(versions(&app, "files", column).await, vec![2], "files.{column}");
        }
        // Every other re-encrypted column is under the new versions too.
        let inventory = concord::startup::inventory();
        for c in inventory.columns().iter().filter(|c| c.shape.reencrypted()) {
            if c.column == "sso_id_token" {
                continue; // base64 text, and no SSO here
            }
            let v = versions(&app, c.table, c.column).await;
            assert!(v.iter().all(|&v| v == 2), "{}.{}: {v:?}", c.table, c.column);
        }
        // The picture, its thumbnail and its name read back, now and after a restart.
        let app = app.restart().await;
        let admin = app.login("admin@example.org", PASSWORD).await;
        let (status, body) = bytes_of(&app, &admin, &format!("/api/v1/files/{}/content", w.file)).await;
        assert_eq!((status, body == w.picture), (200, true));
        let (status, thumb) = bytes_of(&app, &admin, &format!("/api/v1/files/{}/thumbnail", w.file)).await;
        assert_eq!(status, 200);
        assert!(image::load_from_memory(&thumb).is_ok());
        let listed = app
            .get(&format!("/api/v1/channels/{}/files", w.channel), &admin.access)
            .await
            .expect(200)
            .clone();
        assert!(listed.to_string().contains("count.png"), "{listed}");
        let history = app
            .get(&format!("/api/v1/channels/{}/messages", w.channel), &admin.access)
            .await
            .expect(200)
            .clone();
        assert!(history.to_string().contains("the picture"), "{history}");
        audit_verifies(&app);
    }
}
