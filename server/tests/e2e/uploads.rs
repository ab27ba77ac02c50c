//! Uploads over time: unfinished uploads expire (tus expiration) and stop counting against
//! the quota, admins see and cancel uploads in progress, orphaned blobs are collected,
//! deleting a message deletes its files, oversized images get no thumbnail, and an empty
//! file uploads through tus.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use serde_json::json;

use crate::harness::{reply, spawn_app_with, Backend, Reply, Session, Team, TestApp, PASSWORD};

/// Plaintext bytes per stored chunk (the server's `files::cipher::CHUNK_BYTES`).
const CHUNK: usize = 64 * 1024;

/// The harness's team, with a public channel "design" its administrator created and Ann joined.
async fn team(app: &TestApp) -> (Team, String) {
    let t = app.team().await;
    let design = crate::chat::channel(app, &t.admin, &t.ws, "design", "public").await;
    app.post(
        &format!("/api/v1/channels/{design}/join"),
        Some(&t.ann.access),
        json!({}),
    )
    .await
    .expect(200);
    (t, design)
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed ^ (i >> 16) as u8)
        .collect()
}

async fn tus_create(app: &TestApp, who: &Session, channel: &str, len: u64) -> Reply {
    let meta = format!(
        "filename {}",
        base64::engine::general_purpose::STANDARD.encode("take.bin")
    );
    let resp = app
        .client
        .post(format!("{}/api/v1/channels/{channel}/uploads", app.base))
        .bearer_auth(&who.access)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", len.to_string())
        .header("Upload-Metadata", meta)
        .send()
        .await
        .expect("create sent");
    reply(resp).await
}

async fn tus_patch(
    app: &TestApp,
    who: &Session,
    upload: &str,
    offset: u64,
    body: Vec<u8>,
) -> Reply {
    let resp = app
        .client
        .patch(format!("{}{upload}", app.base))
        .bearer_auth(&who.access)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", offset.to_string())
        .header("Content-Type", "application/offset+octet-stream")
        .body(body)
        .send()
        .await
        .expect("patch sent");
    reply(resp).await
}

async fn tus_head(app: &TestApp, who: &Session, upload: &str) -> Reply {
    let resp = app
        .client
        .head(format!("{}{upload}", app.base))
        .bearer_auth(&who.access)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .expect("head sent");
    reply(resp).await
}

fn location(r: &Reply) -> String {
    r.headers["location"].to_str().unwrap().to_owned()
}

/// `Upload-Expires`, parsed (an HTTP date).
fn upload_expires(r: &Reply) -> chrono::DateTime<chrono::Utc> {
    let raw = r.headers["upload-expires"].to_str().unwrap();
    chrono::DateTime::parse_from_rfc2822(raw)
        .unwrap_or_else(|e| panic!("Upload-Expires {raw:?}: {e}"))
        .with_timezone(&chrono::Utc)
}

fn blob_dir(app: &TestApp, file: &str) -> PathBuf {
    app.data_dir.join("blobs").join("files").join(file)
}

/// Waits (polling, at most `within`) until `done` holds.
async fn eventually<F, Fut>(within: Duration, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn set_age(path: &Path, age: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

async fn uploads_expire_and_release_the_quota(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.files.workspace_quota_bytes = 1024 * 1024;
        c.files.upload_expiry_seconds = 3;
        // Only the pass at start: what the quota does before the sweeper runs is the point.
        c.files.sweep_interval_seconds = 3600;
    })
    .await;
    let (t, design) = team(&app).await;
    let options = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/v1/channels/{}/uploads", app.base, design),
        )
        .send()
        .await
        .unwrap();
    let extensions = options.headers()["tus-extension"].to_str().unwrap();
    assert!(
        extensions.split(',').any(|e| e == "expiration"),
        "{extensions}"
    );

    let created = tus_create(&app, &t.ann, &design, 900 * 1024).await;
    created.expect(201);
    let expires = upload_expires(&created);
    let ahead = expires - chrono::Utc::now();
    assert!(
        ahead > chrono::Duration::zero() && ahead <= chrono::Duration::seconds(4),
        "expires in {ahead}"
    );
    assert!(created.body["expires_at"].is_string(), "{}", created.body);
    let upload = location(&created);
    let patched = tus_patch(&app, &t.ann, &upload, 0, bytes(2 * CHUNK, 1)).await;
    patched.expect(204);
    assert!(
        upload_expires(&patched) >= expires,
        "progress pushes the expiry back"
    );

    // The declared length is reserved while the upload lives...
    tus_create(&app, &t.admin, &design, 900 * 1024)
        .await
        .expect_error(413, "quota_exceeded");
    // ...and released once it expires, before any sweeper has run.
    eventually(Duration::from_secs(10), "the upload expires", || async {
        tus_head(&app, &t.ann, &upload).await.status == 410
    })
    .await;
    let patched = tus_patch(&app, &t.ann, &upload, 2 * CHUNK as u64, bytes(10, 2)).await;
    patched.expect_error(410, "upload_expired");
    let listed = app
        .get(
            &format!("/api/v1/workspaces/{}/uploads", t.ws),
            &t.admin.access,
        )
        .await;
    assert_eq!(listed.expect(200)[0]["expired"], true);
    tus_create(&app, &t.admin, &design, 900 * 1024)
        .await
        .expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_expire_and_release_the_quota_sqlite() {
    uploads_expire_and_release_the_quota(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_expire_and_release_the_quota_postgres() {
    uploads_expire_and_release_the_quota(Backend::Postgres).await
}

async fn expired_uploads_are_swept_with_their_blobs(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.files.upload_expiry_seconds = 3;
        c.files.sweep_interval_seconds = 1;
    })
    .await;
    let (t, design) = team(&app).await;
    let created = tus_create(&app, &t.ann, &design, 10 * CHUNK as u64).await;
    let id = created.expect(201)["id"].as_str().unwrap().to_owned();
    let upload = location(&created);
    tus_patch(&app, &t.ann, &upload, 0, bytes(3 * CHUNK + 5, 3))
        .await
        .expect(204);
    assert!(
        blob_dir(&app, &id).is_dir(),
        "the received chunks are stored"
    );
    eventually(
        Duration::from_secs(15),
        "the sweeper removes it",
        || async { tus_head(&app, &t.ann, &upload).await.status == 404 },
    )
    .await;
    // The row goes first (so nothing can read a half-removed upload), then its blobs.
    eventually(
        Duration::from_secs(5),
        "its blobs are removed too",
        || async { !blob_dir(&app, &id).exists() },
    )
    .await;
    let listed = app
        .get(
            &format!("/api/v1/workspaces/{}/uploads", t.ws),
            &t.admin.access,
        )
        .await;
    assert_eq!(listed.expect(200).as_array().unwrap().len(), 0);
    let audit = app
        .get(
            "/api/v1/audit/events?action=file.upload_expired",
            &t.admin.access,
        )
        .await;
    let events = audit.expect(200)["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["target_id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_uploads_are_swept_with_their_blobs_sqlite() {
    expired_uploads_are_swept_with_their_blobs(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_uploads_are_swept_with_their_blobs_postgres() {
    expired_uploads_are_swept_with_their_blobs(Backend::Postgres).await
}

crate::harness::both_backends! {
    async fn admins_see_uploads_in_progress_and_cancel_them(app) {
        let (t, design) = team(&app).await;
        let created = tus_create(&app, &t.ann, &design, 5 * CHUNK as u64).await;
        let id = created.expect(201)["id"].as_str().unwrap().to_owned();
        let upload = location(&created);
        tus_patch(&app, &t.ann, &upload, 0, bytes(CHUNK + 7, 4)).await.expect(204);

        let path = format!("/api/v1/workspaces/{}/uploads", t.ws);
        let listed = app.get(&path, &t.admin.access).await;
        let all = listed.expect(200).as_array().unwrap().clone();
        assert_eq!(all.len(), 1, "{all:?}");
        let u = &all[0];
        assert_eq!(u["id"], id.as_str());
        assert_eq!(u["uploader_id"], t.ann.user_id.as_str());
        assert_eq!(u["channel_id"], design.as_str());
        assert_eq!(u["size"], 5 * CHUNK as u64);
        assert_eq!(u["received"], CHUNK as u64 + 7);
        assert_eq!(u["expired"], false);
        assert!(u["created_at"].is_string() && u["expires_at"].is_string(), "{u}");
        assert!(u.get("name").is_none(), "names stay with the channel's members");

        // A plain member may not look, nor cancel; an outsider does not learn the workspace exists.
        app.get(&path, &t.ann.access).await.expect_error(403, "forbidden");
        app.delete(&format!("{path}/{id}"), &t.ann.access).await.expect_error(403, "forbidden");
        app.create_user(&t.admin, "stranger@example.org", "Stranger").await;
        let stranger = app.login("stranger@example.org", PASSWORD).await;
        app.get(&path, &stranger.access).await.expect_error(404, "not_found");

        app.delete(&format!("{path}/{id}"), &t.admin.access).await.expect(204);
        assert_eq!(app.get(&path, &t.admin.access).await.expect(200).as_array().unwrap().len(), 0);
        assert!(!blob_dir(&app, &id).exists(), "the cancelled upload's bytes are removed");
        assert_eq!(tus_head(&app, &t.ann, &upload).await.status, 404);
        app.delete(&format!("{path}/{id}"), &t.admin.access).await.expect_error(404, "not_found");
        let audit = app.get("/api/v1/audit/events?action=file.upload_cancelled", &t.admin.access).await;
        assert_eq!(audit.expect(200)["events"].as_array().unwrap().len(), 1);
    }

    async fn deleting_a_message_deletes_its_files(app) {
        let (t, design) = team(&app).await;
        let data = bytes(3 * CHUNK, 5);
        let part = reqwest::multipart::Part::bytes(data).file_name("notes.bin");
        let resp = app
            .client
            .post(format!("{}/api/v1/channels/{}/files", app.base, design))
            .bearer_auth(&t.ann.access)
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
            .unwrap();
        let file = reply(resp).await.expect(201).clone();
        let id = file["id"].as_str().unwrap().to_owned();
        let message = file["message_id"].as_str().unwrap().to_owned();
        assert!(blob_dir(&app, &id).is_dir());

        app.delete(&format!("/api/v1/messages/{message}"), &t.ann.access).await.expect(204);
        app.get(&format!("/api/v1/files/{id}"), &t.ann.access).await.expect_error(404, "not_found");
        let listed = app.get(&format!("/api/v1/channels/{}/files", design), &t.ann.access).await;
        assert_eq!(listed.expect(200).as_array().unwrap().len(), 0);
        eventually(Duration::from_secs(10), "the file's blobs are removed", || async {
            !blob_dir(&app, &id).exists()
        })
        .await;
        let audit = app.get("/api/v1/audit/events?action=file.deleted", &t.admin.access).await;
        let events = audit.expect(200)["events"].as_array().unwrap().clone();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["target_id"], id.as_str());
    }

    async fn an_image_over_the_limits_gets_no_thumbnail(app) {
        let (t, design) = team(&app).await;
        // A PNG of a few dozen bytes claiming 60000 × 60000 pixels (14 GB decoded).
        let bomb = png_claiming(60_000, 60_000);
        let part = reqwest::multipart::Part::bytes(bomb).file_name("huge.png");
        let started = Instant::now();
        let resp = app
            .client
            .post(format!("{}/api/v1/channels/{}/files", app.base, design))
            .bearer_auth(&t.ann.access)
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
            .unwrap();
        let file = reply(resp).await.expect(201).clone();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(file["content_type"], "image/png");
        assert_eq!(file["status"], "ready");
        assert_eq!(file["has_thumbnail"], false);
        let id = file["id"].as_str().unwrap();
        app.get(&format!("/api/v1/files/{id}/thumbnail"), &t.ann.access)
            .await
            .expect_error(422, "image_too_large");
    }

    async fn an_empty_file_uploads_through_tus(app) {
        let (t, design) = team(&app).await;
        // tus clients send no PATCH for an empty file: it is complete once created.
        let created = tus_create(&app, &t.ann, &design, 0).await;
        let file = created.expect(201).clone();
        assert_eq!(file["name"], "take.bin");
        assert_eq!(file["size"], 0);
        assert_eq!(file["received"], 0);
        assert_eq!(file["status"], "ready", "{file}");
        assert!(file["message_id"].is_string(), "{file}");
        assert!(file["expires_at"].is_null(), "{file}");
        assert_eq!(created.headers["upload-offset"], "0");
        assert!(created.headers.get("upload-expires").is_none());
        let id = file["id"].as_str().unwrap().to_owned();
        let upload = location(&created);

        // HEAD and PATCH on it tell that it is complete, or refuse what does not fit.
        let head = tus_head(&app, &t.ann, &upload).await;
        assert_eq!(head.status, 200);
        assert_eq!(head.headers["upload-offset"], "0");
        assert_eq!(head.headers["upload-length"], "0");
        let done = tus_patch(&app, &t.ann, &upload, 0, Vec::new()).await;
        assert_eq!(done.status, 204, "{:?}", done.body);
        assert_eq!(done.headers["upload-offset"], "0");
        tus_patch(&app, &t.ann, &upload, 3, Vec::new())
            .await
            .expect_error(409, "offset_mismatch");
        let extra = tus_patch(&app, &t.ann, &upload, 0, b"hello".to_vec()).await;
        assert!(extra.status.as_u16() < 500, "{} {:?}", extra.status, extra.body);
        let untyped = app
            .client
            .patch(format!("{}{upload}", app.base))
            .bearer_auth(&t.ann.access)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", "")
            .header("Content-Type", "text/plain")
            .body("hi")
            .send()
            .await
            .unwrap();
        reply(untyped).await.expect_error(415, "unsupported_media_type");
        let head = tus_head(&app, &t.ann, &upload).await;
        assert_eq!(head.status, 200);
        assert_eq!(head.headers["upload-offset"], "0");

        // It is posted in the channel, listed, and downloads as nothing.
        let history = app.get(&format!("/api/v1/channels/{}/messages", design), &t.admin.access).await;
        let messages = history.expect(200).as_array().unwrap().clone();
        assert!(
            messages.iter().any(|m| m["id"] == file["message_id"] && m["text"] == "take.bin"),
            "{messages:?}"
        );
        let listed = app.get(&format!("/api/v1/channels/{}/files", design), &t.admin.access).await;
        let listed = listed.expect(200).as_array().unwrap().clone();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0]["id"], id.as_str());
        assert_eq!(listed[0]["size"], 0);
        assert_eq!(listed[0]["status"], "ready");
        let download = app
            .client
            .get(format!("{}/api/v1/files/{id}/content", app.base))
            .bearer_auth(&t.admin.access)
            .send()
            .await
            .unwrap();
        assert_eq!(download.status(), 200);
        assert_eq!(download.bytes().await.unwrap().len(), 0);
        let ranged = app
            .client
            .get(format!("{}/api/v1/files/{id}/content", app.base))
            .bearer_auth(&t.admin.access)
            .header("Range", "bytes=0-0")
            .send()
            .await
            .unwrap();
        assert_eq!(ranged.status(), 416);
        let audit = app.get("/api/v1/audit/events?action=file.uploaded", &t.admin.access).await;
        let events = audit.expect(200)["events"].as_array().unwrap().clone();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["target_id"], id.as_str());
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A tiny PNG whose header claims `width` × `height` RGBA pixels.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01],
    );
    chunk(b"IEND", &[]);
    out
}

async fn orphaned_blobs_are_collected(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.files.sweep_interval_seconds = 1;
        c.files.upload_idle_seconds = 1;
        c.files.scan_timeout_seconds = 1;
        c.files.orphan_grace_seconds = 600;
    })
    .await;
    let (t, design) = team(&app).await;
    let data = bytes(2 * CHUNK + 11, 6);
    let part = reqwest::multipart::Part::bytes(data.clone()).file_name("keep.bin");
    let resp = app
        .client
        .post(format!("{}/api/v1/channels/{}/files", app.base, design))
        .bearer_auth(&t.ann.access)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    let live = reply(resp).await.expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let live_dir = blob_dir(&app, &live);
    let live_blob = live_dir.join("00000000");
    assert!(live_blob.is_file());
    // An old blob of a live file stays; an old write a crash cut short beside it goes.
    set_age(&live_blob, Duration::from_secs(7200));
    let cut = live_dir.join("00000001.partial");
    std::fs::write(&cut, vec![7u8; 5000]).unwrap();
    set_age(&cut, Duration::from_secs(7200));
    // Blobs of a file with no row: an old one goes, a fresh one (maybe in flight) stays.
    let gone_file = uuid::Uuid::now_v7().to_string();
    let old_orphan = blob_dir(&app, &gone_file).join("00000000");
    std::fs::create_dir_all(old_orphan.parent().unwrap()).unwrap();
    std::fs::write(&old_orphan, vec![1u8; 5000]).unwrap();
    set_age(&old_orphan, Duration::from_secs(7200));
    let new_file = uuid::Uuid::now_v7().to_string();
    let fresh_orphan = blob_dir(&app, &new_file).join("00000000.partial");
    std::fs::create_dir_all(fresh_orphan.parent().unwrap()).unwrap();
    std::fs::write(&fresh_orphan, vec![2u8; 5000]).unwrap();

    eventually(
        Duration::from_secs(15),
        "the orphans are collected",
        || async { !old_orphan.exists() && !cut.exists() },
    )
    .await;
    assert!(
        fresh_orphan.exists(),
        "a blob younger than the grace period is kept"
    );
    assert!(live_blob.exists(), "a live file's blob is kept");
    let r = app
        .client
        .get(format!("{}/api/v1/files/{live}/content", app.base))
        .bearer_auth(&t.ann.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_blobs_are_collected_sqlite() {
    orphaned_blobs_are_collected(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_blobs_are_collected_postgres() {
    orphaned_blobs_are_collected(Backend::Postgres).await
}

crate::harness::both_backends! {
    async fn who_may_not_cancel_an_upload_being_written_learns_nothing_of_it(app) {
        let (t, design) = team(&app).await;
        app.create_user(&t.admin, "stranger@example.org", "Stranger").await;
        let stranger = app.login("stranger@example.org", PASSWORD).await;
        let size = 4 * CHUNK;
        let created = tus_create(&app, &t.ann, &design, size as u64).await;
        let id = created.expect(201)["id"].as_str().unwrap().to_owned();
        let upload = location(&created);

        // The uploader's PATCH is open, its body paused half way.
        let data = bytes(size, 9);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
        let body = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|piece| (piece, rx))
        });
        let writing = tokio::spawn(
            app.client
                .patch(format!("{}{upload}", app.base))
                .bearer_auth(&t.ann.access)
                .header("Tus-Resumable", "1.0.0")
                .header("Upload-Offset", "0")
                .header("Content-Type", "application/offset+octet-stream")
                .body(reqwest::Body::wrap_stream(body))
                .send(),
        );
        tx.send(Ok(data[..CHUNK].to_vec())).await.unwrap();
        eventually(Duration::from_secs(20), "the upload is being written", || async {
            tus_head(&app, &t.ann, &upload).await.status == 423
        })
        .await;

        // Those who may not cancel or delete it are refused as if nothing were written.
        let cancel = format!("/api/v1/workspaces/{}/uploads/{id}", t.ws);
        let missing = format!("/api/v1/workspaces/{}/uploads/{}", t.ws, uuid::Uuid::now_v7());
        app.delete(&cancel, &stranger.access).await.expect_error(404, "not_found");
        app.delete(&missing, &stranger.access).await.expect_error(404, "not_found");
        app.delete(&cancel, &t.ann.access).await.expect_error(403, "forbidden");
        let file = format!("/api/v1/files/{id}");
        let missing_file = format!("/api/v1/files/{}", uuid::Uuid::now_v7());
        app.delete(&file, &stranger.access).await.expect_error(404, "not_found");
        app.delete(&missing_file, &stranger.access).await.expect_error(404, "not_found");
        // An admin who may cancel it is told to wait for the request writing it.
        app.delete(&cancel, &t.admin.access).await.expect_error(423, "upload_busy");

        // The uploader's request was not disturbed: it finishes and the file is posted.
        tx.send(Ok(data[CHUNK..].to_vec())).await.unwrap();
        drop(tx);
        let done = reply(writing.await.unwrap().unwrap()).await;
        assert_eq!(done.status, 204, "{:?}", done.body);
        assert_eq!(done.headers["upload-offset"], size.to_string().as_str());
        let got = app.get(&file, &t.admin.access).await;
        assert_eq!(got.expect(200)["status"], "ready");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_patches_do_not_keep_an_upload_alive() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.files.upload_expiry_seconds = 3;
        c.files.sweep_interval_seconds = 3600;
    })
    .await;
    let (t, design) = team(&app).await;
    let created = tus_create(&app, &t.ann, &design, 3 * CHUNK as u64).await;
    let upload = location(&created);
    let patched = tus_patch(&app, &t.ann, &upload, 0, bytes(CHUNK + 5, 3)).await;
    patched.expect(204);
    let expires = upload_expires(&patched);
    // Empty PATCHes, as often as a client likes, leave the expiry where progress put it...
    let offset = CHUNK as u64 + 5;
    let empty = std::cell::Cell::new(0);
    eventually(Duration::from_secs(15), "the upload expires", || async {
        let r = tus_patch(&app, &t.ann, &upload, offset, Vec::new()).await;
        if r.status == 410 {
            return true;
        }
        assert_eq!(r.status, 204, "{:?}", r.body);
        assert_eq!(
            upload_expires(&r),
            expires,
            "an empty PATCH moved the expiry"
        );
        empty.set(empty.get() + 1);
        false
    })
    .await;
    assert!(empty.get() > 0);
    // ...so the upload expires on time.
    assert_eq!(tus_head(&app, &t.ann, &upload).await.status, 410);
}
