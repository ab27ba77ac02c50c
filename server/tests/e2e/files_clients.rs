//! File sharing with real clients and a real process: the tus-js-client npm package resuming
//! an interrupted upload (cut by the network, or by the server being killed), a
//! clamd-speaking scanner quarantining a file, and the `concord` binary's resident memory
//! while a 1 GiB file goes up and comes back down.

use std::io::Write;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::harness::{spawn_app, spawn_app_with, Backend, TestApp};

/// tests/files: the tus-js-client package and the script that drives it.
fn tus_client_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/files")
}

async fn channel(app: &TestApp, token: &str) -> String {
    let ws = app
        .post("/api/v1/workspaces", Some(token), json!({"name": "Acme"}))
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &format!("/api/v1/workspaces/{ws}/channels"),
        Some(token),
        json!({"name": "media"}),
    )
    .await
    .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i / 65536) as u8) ^ (i as u8).wrapping_mul(31))
        .collect()
}

async fn tus_js_client_resumes_an_interrupted_upload(backend: Backend) {
    let dir = tus_client_dir();
    assert!(
        dir.join("node_modules/tus-js-client").is_dir(),
        "run `npm ci` in tests/files (./tests/run does)"
    );
    let app = spawn_app(backend).await;
    let admin = app.bootstrap_admin().await;
    let ch = channel(&app, &admin.access).await;
    let data = pattern(24 * 1024 * 1024 + 4321);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("field-recording.wav");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&data)
        .unwrap();

    let endpoint = format!("{}/api/v1/channels/{ch}/uploads", app.base);
    let run = tokio::process::Command::new("node")
        .arg(dir.join("resume.mjs"))
        .arg(&endpoint)
        .arg(&admin.access)
        .arg(&path)
        .arg("0.4")
        .current_dir(&dir)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("node finished in time")
        .expect("node runs");
    assert!(
        out.status.success(),
        "tus-js-client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    let cut_at = report["cut_at"].as_u64().unwrap();
    let resumed_from = report["resumed_from"].as_u64().unwrap();
    assert!(cut_at > 0 && cut_at < data.len() as u64);
    assert_eq!(
        resumed_from, cut_at,
        "the upload continued from where the connection was cut: {report}"
    );
    let id = report["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let file = app.get(&format!("/api/v1/files/{id}"), &admin.access).await;
    assert_eq!(file.expect(200)["status"], "ready");
    assert_eq!(file.body["name"], "field-recording.wav");
    assert_eq!(file.body["size"], data.len() as u64);
    let body = app
        .client
        .get(format!("{}/api/v1/files/{id}/content", app.base))
        .bearer_auth(&admin.access)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        body.as_ref() == data.as_slice(),
        "the resumed file is intact"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_js_client_resumes_an_interrupted_upload_sqlite() {
    tus_js_client_resumes_an_interrupted_upload(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_js_client_resumes_an_interrupted_upload_postgres() {
    tus_js_client_resumes_an_interrupted_upload(Backend::Postgres).await
}

/// tus-js-client is sending when the server is SIGKILLed; after a restart on the same data,
/// the client resumes from the last durable offset (the last whole MiB it had sent) and the
/// file is intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_js_client_resumes_after_the_server_is_killed_mid_upload() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    const MIB: u64 = 1024 * 1024;
    let node_dir = tus_client_dir();
    assert!(
        node_dir.join("node_modules/tus-js-client").is_dir(),
        "run `npm ci` in tests/files (./tests/run does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("concord.db").display());
    let mut server = crate::durability::start(dir.path(), &url);
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
    let data = pattern(24 * 1024 * 1024 + 4321);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("interview.wav");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&data)
        .unwrap();
    let mut node = tokio::process::Command::new("node")
        .arg(node_dir.join("resume.mjs"))
        .arg(format!("{}/api/v1/channels/{ch}/uploads", server.base))
        .arg(&access)
        .arg(&path)
        .arg("0.4")
        .arg("--crash")
        .current_dir(&node_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = tokio::io::BufReader::new(node.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the client reports the cut")
        .unwrap()
        .expect("a line");
    let cut: Value = serde_json::from_str(&first).unwrap();
    let cut_at = cut["cut_at"].as_u64().unwrap();
    // Every whole MiB sent is synced and recorded: wait until the admin view shows them all.
    let durable = cut_at / MIB * MIB;
    assert!(durable > 0);
    let deadline = Instant::now() + Duration::from_secs(30);
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
        if listed[0]["received"].as_u64().unwrap_or(0) >= durable {
            break;
        }
        assert!(Instant::now() < deadline, "no durable progress: {listed}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.child.kill().unwrap(); // SIGKILL, with the client's request open
    server.child.wait().unwrap();

    let mut server = crate::durability::start(dir.path(), &url);
    let mut stdin = node.stdin.take().unwrap();
    stdin
        .write_all(format!("{}\n", server.base).as_bytes())
        .await
        .unwrap();
    stdin.flush().await.unwrap();
    let last = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
        .await
        .expect("the client finished in time")
        .unwrap()
        .expect("a report line");
    let status = node.wait().await.unwrap();
    assert!(status.success(), "tus-js-client failed");
    let report: Value = serde_json::from_str(&last).unwrap();
    let resumed_from = report["resumed_from"].as_u64().unwrap();
    assert_eq!(
        resumed_from, durable,
        "the client resumed from the last durable MiB (cut at {cut_at})"
    );
    let id = cut["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let body = client
        .get(format!("{}/api/v1/files/{id}/content", server.base))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        body.as_ref() == data.as_slice(),
        "the resumed file is byte-identical"
    );
    server.child.kill().unwrap();
    let _ = server.child.wait();
}

/// A marker the stand-in scanner treats as a virus signature.
const SIGNATURE: &[u8] = b"CONCORD-TEST-MALWARE-SIGNATURE";

/// A listener speaking clamd's INSTREAM protocol (no virus database is available here);
/// it records what it was sent.
async fn stand_in_clamd(
    path: std::path::PathBuf,
) -> std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = tokio::net::UnixListener::bind(&path).expect("bind clamd socket");
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut command = [0u8; 10];
                conn.read_exact(&mut command).await.unwrap();
                assert_eq!(&command, b"zINSTREAM\0");
                let mut data = Vec::new();
                loop {
                    let len = conn.read_u32().await.unwrap() as usize;
                    if len == 0 {
                        break;
                    }
                    let mut chunk = vec![0; len];
                    conn.read_exact(&mut chunk).await.unwrap();
                    data.extend_from_slice(&chunk);
                }
                let reply: &[u8] = if data.windows(SIGNATURE.len()).any(|w| w == SIGNATURE) {
                    b"stream: Concord.Test.Signature FOUND\0"
                } else {
                    b"stream: OK\0"
                };
                record.lock().unwrap().push(data);
                conn.write_all(reply).await.unwrap();
            });
        }
    });
    seen
}

async fn infected_files_are_quarantined(backend: Backend) {
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("clamd.sock");
    let seen = stand_in_clamd(sock.clone()).await;
    let app = spawn_app_with(backend, |c| {
        c.files.clamd = Some(format!("unix:{}", sock.display()));
    })
    .await;
    let admin = app.bootstrap_admin().await;
    let ch = channel(&app, &admin.access).await;
    let upload = |name: &'static str, bytes: Vec<u8>| {
        let app = &app;
        let token = admin.access.clone();
        let ch = ch.clone();
        async move {
            let part = reqwest::multipart::Part::bytes(bytes).file_name(name);
            let form = reqwest::multipart::Form::new().part("file", part);
            let r = app
                .client
                .post(format!("{}/api/v1/channels/{ch}/files", app.base))
                .bearer_auth(token)
                .multipart(form)
                .send()
                .await
                .unwrap();
            crate::harness::reply(r).await
        }
    };
    let clean = pattern(200_000);
    let ok = upload("notes.bin", clean.clone()).await;
    assert_eq!(ok.expect(201)["status"], "ready");
    let mut bad = pattern(150_000);
    bad.splice(70_000..70_000, SIGNATURE.iter().copied());
    let flagged = upload("invoice.exe", bad.clone()).await;
    assert_eq!(flagged.expect(201)["status"], "quarantined");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0], clean, "the scanner sees the plaintext, whole");
        assert_eq!(seen[1], bad);
    }
    let id = flagged.body["id"].as_str().unwrap();
    app.get(&format!("/api/v1/files/{id}/content"), &admin.access)
        .await
        .expect_error(410, "file_quarantined");
    let ok_id = ok.body["id"].as_str().unwrap();
    let r = app
        .client
        .get(format!("{}/api/v1/files/{ok_id}/content", app.base))
        .bearer_auth(&admin.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), clean.as_slice());
    let audit = app
        .get("/api/v1/audit/events?action=file.uploaded", &admin.access)
        .await;
    let events = audit.expect(200)["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infected_files_are_quarantined_sqlite() {
    infected_files_are_quarantined(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infected_files_are_quarantined_postgres() {
    infected_files_are_quarantined(Backend::Postgres).await
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// 1 GiB of bytes, generated as sent: each 1 MiB block differs.
fn gib_stream(
    block: std::sync::Arc<Vec<u8>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::iter(0..1024u32).map(move |i| {
        let mut b = block.as_ref().clone();
        b[..4].copy_from_slice(&i.to_be_bytes());
        Ok(b)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_1_gib_file_goes_up_and_down_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("concord.db").display());
    let mut server = crate::durability::start(dir.path(), &url);
    let pid = server.child.id();
    let client = reqwest::Client::new();
    let (access, ch) = server
        .admin_with_channel(&client, "admin@example.org", "Admin")
        .await;
    let base = server.base.clone();

    // Sample the server's resident memory throughout.
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let idle_kib = rss_kib(pid);

    let block = std::sync::Arc::new(pattern(1 << 20));
    let len: u64 = 1 << 30;
    let created = client
        .post(format!("{base}/api/v1/channels/{ch}/uploads"))
        .bearer_auth(&access)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", len.to_string())
        .header("Upload-Metadata", "filename Ymlnc2V0LmJpbg==")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let upload = created.headers()["location"].to_str().unwrap().to_owned();
    let started = Instant::now();
    let patched = client
        .patch(format!("{base}{upload}"))
        .bearer_auth(&access)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .header("Content-Length", len.to_string())
        .body(reqwest::Body::wrap_stream(gib_stream(block.clone())))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 204);
    let up_secs = started.elapsed().as_secs_f64();
    assert_eq!(patched.headers()["upload-offset"], len.to_string().as_str());
    let up_peak = peak.load(std::sync::atomic::Ordering::Relaxed);

    let id = upload.rsplit('/').next().unwrap();
    let started = Instant::now();
    let resp = client
        .get(format!("{base}/api/v1/files/{id}/content"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut got = Sha256::new();
    let mut n = 0u64;
    let mut body = resp.bytes_stream();
    while let Some(piece) = body.next().await {
        let piece = piece.unwrap();
        n += piece.len() as u64;
        got.update(&piece);
    }
    let down_secs = started.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.await.unwrap();
    let mut want = Sha256::new();
    let mut stream = Box::pin(gib_stream(block));
    while let Some(b) = stream.next().await {
        want.update(b.unwrap());
    }
    assert_eq!(n, len);
    assert_eq!(
        got.finalize(),
        want.finalize(),
        "the 1 GiB file came back intact"
    );
    let peak_kib = peak.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "1 GiB: server RSS idle {} MiB, peak during upload {} MiB, peak overall {} MiB; upload {:.1} s, download {:.1} s",
        idle_kib / 1024,
        up_peak / 1024,
        peak_kib / 1024,
        up_secs,
        down_secs
    );
    assert!(
        peak_kib < 300 * 1024,
        "server resident memory peaked at {} MiB",
        peak_kib / 1024
    );
    server.child.kill().unwrap();
    let _ = server.child.wait();
}
