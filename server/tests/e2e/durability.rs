//! A server killed with SIGKILL mid-burst keeps every post it acknowledged, exactly once,
//! every document edit any client received, and the synced part of an upload it was
//! receiving.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::harness::{Backend, PASSWORD};

pub(crate) struct Process {
    pub child: Child,
    pub base: String,
    pub setup: Option<String>,
}

pub(crate) fn start(dir: &std::path::Path, database_url: &str) -> Process {
    start_with_env(dir, database_url, &[])
}

/// Starts the server with extra environment variables (configuration overrides).
pub(crate) fn start_with_env(
    dir: &std::path::Path,
    database_url: &str,
    env: &[(&str, &str)],
) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--database-url",
            database_url,
        ])
        .current_dir(dir)
        .env("CONCORD_LOG__FILTER", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("concord starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The setup link (on a fresh database) is printed before the line naming the URL.
    let mut setup = None;
    let base = loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("server prints its URL");
        if let Some((_, t)) = line.split_once("/setup?token=") {
            setup = Some(t.trim().to_owned());
        }
        if let Some(u) = line.strip_prefix("Concord is listening on ") {
            break Some(u.to_owned());
        }
    };
    Process {
        child,
        base: base.expect("server printed its URL"),
        setup,
    }
}

impl Process {
    /// Creates the first administrator through the printed setup link, signs in, and makes a
    /// workspace with one public channel. Returns (access token, channel id).
    pub(crate) async fn admin_with_channel(
        &self,
        client: &reqwest::Client,
        email: &str,
        name: &str,
    ) -> (String, String) {
        let token = self.setup.clone().expect("setup link");
        let (s, _) = json_post(
            client,
            format!("{}/api/v1/setup", self.base),
            None,
            json!({"token": token, "email": email, "display_name": name, "password": PASSWORD}),
        )
        .await;
        assert_eq!(s, 201);
        let (_, login) = json_post(
            client,
            format!("{}/api/v1/auth/login", self.base),
            None,
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
        let access = login["access_token"].as_str().unwrap().to_owned();
        let (_, ws) = json_post(
            client,
            format!("{}/api/v1/workspaces", self.base),
            Some(&access),
            json!({"name": "Team"}),
        )
        .await;
        let ws = ws["id"].as_str().unwrap().to_owned();
        let (_, ch) = json_post(
            client,
            format!("{}/api/v1/workspaces/{ws}/channels", self.base),
            Some(&access),
            json!({"name": "general"}),
        )
        .await;
        (access, ch["id"].as_str().unwrap().to_owned())
    }
}

/// A fresh database for a server binary the test starts itself: a SQLite file in `dir`, or a
/// PostgreSQL database dropped when the guard goes.
pub(crate) async fn database(
    backend: Backend,
    dir: &std::path::Path,
) -> (String, Option<crate::harness::PgGuard>) {
    match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.join("concord.db").display()),
            None,
        ),
        Backend::Postgres => {
            let (url, name) = crate::harness::create_pg_database().await;
            (url, Some(crate::harness::PgGuard(name)))
        }
    }
}

pub(crate) async fn json_post(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut req = client.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

async fn acknowledged_posts_survive_sigkill(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _guard) = crate::durability::database(backend, dir.path()).await;
    let mut server = start(dir.path(), &database_url);
    let client = reqwest::Client::new();
    let (access, ch) = server
        .admin_with_channel(&client, "admin@example.org", "Admin")
        .await;

    // 16 posters post as fast as they can; the server is killed after 300 acknowledgements.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let kill_at = 300;
    let (killed_tx, killed_rx) = tokio::sync::watch::channel(false);
    let mut posters = Vec::new();
    for p in 0..16 {
        let (client, acked, count, access) =
            (client.clone(), acked.clone(), count.clone(), access.clone());
        let url = format!("{}/api/v1/channels/{ch}/messages", server.base);
        let killed = killed_rx.clone();
        posters.push(tokio::spawn(async move {
            for i in 0.. {
                if *killed.borrow() {
                    break;
                }
                let id = format!("p{p}-{i}");
                let (status, _) = json_post(
                    &client,
                    url.clone(),
                    Some(&access),
                    json!({"text": format!("burst {id}"), "client_msg_id": id}),
                )
                .await;
                match status {
                    201 => {
                        acked.lock().unwrap().push(id);
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    0 => break, // connection refused or reset: the server is gone
                    other => panic!("unexpected status {other}"),
                }
            }
        }));
    }
    while count.load(Ordering::SeqCst) < kill_at {
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let _ = killed_tx.send(true);
    for p in posters {
        p.await.unwrap();
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(acked.len() >= kill_at);

    // Restart on the same data and read the whole channel back.
    let mut server = start(dir.path(), &database_url);
    let mut stored = Vec::new();
    let mut after = 0;
    loop {
        let r = client
            .get(format!(
                "{}/api/v1/channels/{ch}/messages?after={after}&limit=200",
                server.base
            ))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let page: Vec<Value> = r.json().await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().unwrap()["seq"].as_i64().unwrap();
        stored.extend(
            page.into_iter()
                .map(|m| m["client_msg_id"].as_str().unwrap_or("").to_owned()),
        );
    }
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "a post was stored twice");
    for id in &acked {
        assert!(unique.contains(id), "acknowledged post {id} was lost");
    }
    server.child.kill().unwrap();
    let _ = server.child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_posts_survive_sigkill_sqlite() {
    acknowledged_posts_survive_sigkill(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_posts_survive_sigkill_postgres() {
    acknowledged_posts_survive_sigkill(Backend::Postgres).await;
}

/// Edits stream from one writer to a reader; the server is killed mid-stream. After a restart
/// the document holds at least everything the reader had received.
async fn received_document_edits_survive_sigkill(backend: Backend) {
    use crate::docs::YClient;
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _guard) = crate::durability::database(backend, dir.path()).await;
    let mut server = start(dir.path(), &database_url);
    let client = reqwest::Client::new();
    let (access, ch) = server
        .admin_with_channel(&client, "admin@example.org", "Admin")
        .await;
    let channel = client
        .get(format!("{}/api/v1/channels/{ch}", server.base))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let ws = channel["workspace_id"].as_str().unwrap().to_owned();
    let (status, doc) = json_post(
        &client,
        format!("{}/api/v1/workspaces/{ws}/documents", server.base),
        Some(&access),
        json!({"title": "Log"}),
    )
    .await;
    assert_eq!(status, 201, "{doc}");
    let doc = doc["id"].as_str().unwrap().to_owned();
    let ws_base = server.base.replace("http://", "ws://");
    let url = format!("{ws_base}/api/v1/yjs/{doc}?token={access}");
    let mut writer = YClient::connect_url(&url).await;
    let mut reader = YClient::connect_url(&url).await;
    let writing = tokio::spawn(async move {
        let mut len = 0u32;
        for i in 0..100_000 {
            let piece = format!("{i},");
            writer.insert(len, &piece).await;
            len += piece.len() as u32;
            if i % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
        writer
    });
    while reader.text().len() < 4000 {
        reader.receive(std::time::Duration::from_millis(200)).await;
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    writing.abort();
    // Drain what the server sent before it died.
    reader.settle(std::time::Duration::from_millis(300)).await;
    let received = reader.text();
    assert!(received.len() >= 4000);

    let server = start(dir.path(), &database_url);
    let (_, login) = json_post(
        &client,
        format!("{}/api/v1/auth/login", server.base),
        None,
        json!({"email": "admin@example.org", "password": PASSWORD}),
    )
    .await;
    let access = login["access_token"].as_str().unwrap().to_owned();
    let ws_base = server.base.replace("http://", "ws://");
    let after = YClient::connect_url(&format!("{ws_base}/api/v1/yjs/{doc}?token={access}")).await;
    let stored = after.text();
    assert!(
        stored.starts_with(&received),
        "the reader had {} characters the restarted server lost (stored {}, received {})",
        received.len().saturating_sub(stored.len()),
        stored.len(),
        received.len()
    );
    let mut server = server;
    let _ = server.child.kill();
    let _ = server.child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn received_document_edits_survive_sigkill_sqlite() {
    received_document_edits_survive_sigkill(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn received_document_edits_survive_sigkill_postgres() {
    received_document_edits_survive_sigkill(Backend::Postgres).await;
}

/// An upload is receiving bytes when the server is killed: after a restart on the same data
/// it continues from the last durable chunk boundary (at most 1 MiB back), and the file that
/// results is byte-identical to what was sent.
async fn an_upload_cut_by_a_crash_resumes_where_it_was_durable(backend: Backend) {
    const MIB: u64 = 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _guard) = crate::durability::database(backend, dir.path()).await;
    let mut server = start(dir.path(), &database_url);
    let client = reqwest::Client::new();
    let (access, ch) = server
        .admin_with_channel(&client, "admin@example.org", "Admin")
        .await;
    let ws = client
        .get(format!("{}/api/v1/channels/{ch}", server.base))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["workspace_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let data: Vec<u8> = (0..12 * MIB as usize + 777)
        .map(|i| (i as u8).wrapping_mul(29) ^ (i >> 16) as u8)
        .collect();
    let created = client
        .post(format!("{}/api/v1/channels/{ch}/uploads", server.base))
        .bearer_auth(&access)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", data.len().to_string())
        .header("Upload-Metadata", "filename cmVjb3JkaW5nLmJpbg==")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let upload = created.headers()["location"].to_str().unwrap().to_owned();

    // 5.5 MiB arrive, then the client goes quiet with the request still open.
    let sent = 5 * MIB as usize + 512 * 1024;
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> = data[..sent]
        .chunks(100_000)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let body = futures::StreamExt::chain(futures::stream::iter(pieces), futures::stream::pending());
    let patch = client
        .patch(format!("{}{upload}", server.base))
        .bearer_auth(&access)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .header("Content-Length", data.len().to_string())
        .body(reqwest::Body::wrap_stream(body))
        .send();
    let patching = tokio::spawn(patch);
    // The admin's view of uploads in progress shows what is recorded as durable.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let listed: Value = client
            .get(format!("{}/api/v1/workspaces/{ws}/uploads", server.base))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if listed[0]["received"].as_u64().unwrap_or(0) >= 5 * MIB {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no durable progress: {listed}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.child.kill().unwrap(); // SIGKILL, mid-request
    server.child.wait().unwrap();
    let _ = patching.await;

    let mut server = start(dir.path(), &database_url);
    let head = client
        .head(format!("{}{upload}", server.base))
        .bearer_auth(&access)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let offset: u64 = head.headers()["upload-offset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(offset > 0, "the upload kept its durable progress");
    assert_eq!(
        offset % (64 * 1024),
        0,
        "progress is kept at chunk boundaries"
    );
    assert!(
        offset <= sent as u64 && sent as u64 - offset <= MIB,
        "at most the last MiB is lost: offset {offset}, sent {sent}"
    );
    let rest = client
        .patch(format!("{}{upload}", server.base))
        .bearer_auth(&access)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", offset.to_string())
        .header("Content-Type", "application/offset+octet-stream")
        .body(data[offset as usize..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 204);
    let id = upload.rsplit('/').next().unwrap();
    let back = client
        .get(format!("{}/api/v1/files/{id}/content", server.base))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 200);
    let back = back.bytes().await.unwrap();
    assert!(
        back.as_ref() == data.as_slice(),
        "the resumed file is byte-identical"
    );
    server.child.kill().unwrap();
    let _ = server.child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_by_a_crash_resumes_where_it_was_durable_sqlite() {
    an_upload_cut_by_a_crash_resumes_where_it_was_durable(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_by_a_crash_resumes_where_it_was_durable_postgres() {
    an_upload_cut_by_a_crash_resumes_where_it_was_durable(Backend::Postgres).await;
}
