//! File sharing as people use it: simple and resumable (tus) uploads, downloads with byte
//! ranges, who may see a file, safe serving of hostile content and names, limits, deletion,
//! the malware-scan hook, tampering with stored ciphertext, and memory use for a 1 GiB file.

use std::path::{Path, PathBuf};

use reqwest::header::{CONTENT_DISPOSITION, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{reply, Reply, Session, TestApp, PASSWORD};

/// Plaintext bytes per stored chunk (the server's `files::cipher::CHUNK_BYTES`).
const CHUNK: usize = 64 * 1024;
/// A sealed chunk: nonce, ciphertext, tag.
const SEALED: usize = CHUNK + 12 + 16;

/// A workspace owner with a channel, and a way to share files in it.
struct Team {
    owner: Session,
    workspace: String,
    channel: String,
}

async fn team(app: &TestApp) -> Team {
    let owner = app.bootstrap_admin().await;
    let workspace = app.create_workspace(&owner, "Acme").await;
    let channel = app
        .post(
            &format!("/api/v1/workspaces/{workspace}/channels"),
            Some(&owner.access),
            json!({"name": "design", "visibility": "private"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Team {
        owner,
        workspace,
        channel,
    }
}

/// Bytes that differ from chunk to chunk (so a moved chunk would show).
fn sample(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn multipart(name: &str, bytes: &[u8], text: Option<&str>) -> (String, Vec<u8>) {
    let boundary = "concord-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    if let Some(t) = text {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n{t}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: image/png\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl TestApp {
    /// Shares a file in one multipart request.
    pub(crate) async fn upload(
        &self,
        who: &Session,
        channel: &str,
        name: &str,
        bytes: &[u8],
    ) -> Reply {
        let (content_type, body) = multipart(name, bytes, None);
        let resp = self
            .client
            .post(format!("{}/api/v1/channels/{channel}/files", self.base))
            .bearer_auth(&who.access)
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("upload sent");
        reply(resp).await
    }

    /// Downloads a file's contents, with an optional Range header.
    async fn download(
        &self,
        who: &Session,
        file: &str,
        range: Option<&str>,
    ) -> (
        StatusCode,
        reqwest::header::HeaderMap,
        Result<Vec<u8>, String>,
    ) {
        let mut req = self
            .client
            .get(format!("{}/api/v1/files/{file}/content", self.base))
            .bearer_auth(&who.access);
        if let Some(r) = range {
            req = req.header(RANGE, r);
        }
        let resp = req.send().await.expect("download sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| e.to_string());
        (status, headers, body)
    }

    /// Starts a tus upload; returns its URL.
    async fn tus_create(&self, who: &Session, channel: &str, len: u64, name: &str) -> Reply {
        use base64::Engine;
        let meta = format!(
            "filename {}",
            base64::engine::general_purpose::STANDARD.encode(name)
        );
        let resp = self
            .client
            .post(format!("{}/api/v1/channels/{channel}/uploads", self.base))
            .bearer_auth(&who.access)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", len.to_string())
            .header("Upload-Metadata", meta)
            .send()
            .await
            .expect("create sent");
        reply(resp).await
    }

    async fn tus_patch(&self, who: &Session, upload: &str, offset: u64, bytes: Vec<u8>) -> Reply {
        let resp = self
            .client
            .patch(format!("{}{upload}", self.base))
            .bearer_auth(&who.access)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", offset.to_string())
            .header(CONTENT_TYPE, "application/offset+octet-stream")
            .body(bytes)
            .send()
            .await
            .expect("patch sent");
        reply(resp).await
    }

    async fn tus_head(&self, who: &Session, upload: &str) -> Reply {
        let resp = self
            .client
            .head(format!("{}{upload}", self.base))
            .bearer_auth(&who.access)
            .header("Tus-Resumable", "1.0.0")
            .send()
            .await
            .expect("head sent");
        reply(resp).await
    }

    /// A user signed in, created by `admin`.
    async fn person(&self, admin: &Session, email: &str) -> Session {
        self.create_user(admin, email, "Someone").await;
        self.login(email, PASSWORD).await
    }
}

fn header(r: &reqwest::header::HeaderMap, name: impl reqwest::header::AsHeaderName) -> String {
    r.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

fn id_of(r: &Reply) -> String {
    r.body["id"].as_str().expect("file id").to_owned()
}

/// The blob files holding a file's encrypted contents.
fn blobs_of(app: &TestApp, file: &str) -> Vec<PathBuf> {
    let dir = app.data_dir.join("blobs").join("files").join(file);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            all_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

crate::harness::both_backends! {
    async fn a_shared_file_downloads_whole_and_by_range_and_stays_in_its_channel(app) {
        let t = team(&app).await;
        let data = sample(5 * CHUNK + 1234, 1);
        let up = app.upload(&t.owner, &t.channel, "plan.bin", &data).await;
        let file = up.expect(201).clone();
        assert_eq!(file["name"], "plan.bin");
        assert_eq!(file["size"], data.len() as u64);
        assert_eq!(file["status"], "ready");
        assert_eq!(file["content_type"], "application/octet-stream");
        let id = file["id"].as_str().unwrap().to_owned();

        // It is posted in the channel as a message, and listed there.
        let history = app.get(&format!("/api/v1/channels/{}/messages", t.channel), &t.owner.access).await;
        let messages = history.expect(200).as_array().unwrap().clone();
        assert!(messages.iter().any(|m| m["id"] == file["message_id"] && m["text"] == "plan.bin"), "{messages:?}");
        let listed = app.get(&format!("/api/v1/channels/{}/files", t.channel), &t.owner.access).await;
        assert_eq!(listed.expect(200)[0]["id"], id.as_str());

        let (status, headers, body) = app.download(&t.owner, &id, None).await;
        assert_eq!(status, 200);
        assert_eq!(body.unwrap(), data, "the whole file comes back");
        assert_eq!(header(&headers, "accept-ranges"), "bytes");
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");

        // Ranges inside one chunk, across chunk boundaries, open-ended and suffix ranges.
        let n = data.len();
        for (range, from, to) in [
            ("bytes=10-99", 10, 100),
            (&format!("bytes={}-{}", CHUNK - 5, 3 * CHUNK + 7) as &str, CHUNK - 5, 3 * CHUNK + 8),
            (&format!("bytes={}-", n - 1300) as &str, n - 1300, n),
            ("bytes=-17", n - 17, n),
            ("bytes=0-0", 0, 1),
        ] {
            let (status, headers, body) = app.download(&t.owner, &id, Some(range)).await;
            assert_eq!(status, 206, "{range}");
            assert_eq!(body.unwrap(), &data[from..to], "{range}");
            assert_eq!(header(&headers, CONTENT_RANGE), format!("bytes {from}-{}/{n}", to - 1), "{range}");
        }
        let (status, headers, _) = app.download(&t.owner, &id, Some(&format!("bytes={n}-"))).await;
        assert_eq!(status, 416);
        assert_eq!(header(&headers, CONTENT_RANGE), format!("bytes */{n}"));

        // A workspace member outside the private channel, and a stranger, learn nothing.
        let member = app.person(&t.owner, "member@example.org").await;
        app.add_member(&t.owner, &t.workspace, &member, "member").await;
        let stranger = app.person(&t.owner, "stranger@example.org").await;
        for who in [&member, &stranger] {
            for path in [
                format!("/api/v1/files/{id}"),
                format!("/api/v1/files/{id}/content"),
                format!("/api/v1/files/{id}/thumbnail"),
                format!("/api/v1/channels/{}/files", t.channel),
            ] {
                app.get(&path, &who.access).await.expect_error(404, "not_found");
            }
            app.delete(&format!("/api/v1/files/{id}"), &who.access).await.expect_error(404, "not_found");
            app.upload(who, &t.channel, "x.txt", b"hi").await.expect_error(404, "not_found");
        }
        // Once added to the channel, the member can download it.
        app.post(&format!("/api/v1/channels/{}/members", t.channel), Some(&t.owner.access), json!({"user_id": member.user_id}))
            .await
            .expect(200);
        let (status, _, body) = app.download(&member, &id, Some("bytes=0-9")).await;
        assert_eq!(status, 206);
        assert_eq!(body.unwrap(), &data[..10]);

        // Archiving keeps the file visible to the channel and refuses new files.
        app.put(&format!("/api/v1/channels/{}/archived", t.channel), &t.owner.access, json!({"archived": true}))
            .await
            .expect(200);
        let (status, _, body) = app.download(&member, &id, None).await;
        assert_eq!(status, 200);
        assert_eq!(body.unwrap(), data);
        app.upload(&t.owner, &t.channel, "late.txt", b"late").await.expect_error(422, "channel_archived");
        app.get(&format!("/api/v1/files/{id}"), &stranger.access).await.expect_error(404, "not_found");

        // Downloads are in the audit log.
        let audit = app
            .get(&format!("/api/v1/audit/events?action=file.downloaded&target={id}"), &t.owner.access)
            .await;
        let events = audit.expect(200)["events"].as_array().unwrap().clone();
        assert!(events.len() >= 8, "every download is audited: {events:?}");
        let uploaded = app.get("/api/v1/audit/events?action=file.uploaded", &t.owner.access).await;
        assert_eq!(uploaded.expect(200)["events"].as_array().unwrap().len(), 1);
    }

    async fn html_and_svg_are_never_served_inline_and_images_are(app) {
        let t = team(&app).await;
        let html = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>";
        // The client claims a PNG (name and part type); the bytes decide.
        let up = app.upload(&t.owner, &t.channel, "innocent.png", html).await;
        let file = up.expect(201).clone();
        assert_eq!(file["content_type"], "text/html");
        let (status, headers, body) = app.download(&t.owner, file["id"].as_str().unwrap(), None).await;
        assert_eq!(status, 200);
        assert_eq!(body.unwrap(), html);
        assert_eq!(header(&headers, CONTENT_TYPE), "application/octet-stream");
        assert!(header(&headers, CONTENT_DISPOSITION).starts_with("attachment;"), "{headers:?}");
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
        assert!(header(&headers, "content-security-policy").contains("sandbox"));

        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><circle r="4"/></svg>"#;
        let file = app.upload(&t.owner, &t.channel, "logo.svg", svg).await.expect(201).clone();
        assert_eq!(file["content_type"], "image/svg+xml");
        let (_, headers, _) = app.download(&t.owner, file["id"].as_str().unwrap(), None).await;
        assert_eq!(header(&headers, CONTENT_TYPE), "application/octet-stream");
        assert!(header(&headers, CONTENT_DISPOSITION).starts_with("attachment;"));

        // A real PNG is shown inline and gets a thumbnail.
        let img = image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([x as u8, y as u8, 90]));
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        let file = app.upload(&t.owner, &t.channel, "photo.dat", png.get_ref()).await.expect(201).clone();
        assert_eq!(file["content_type"], "image/png");
        assert_eq!(file["has_thumbnail"], true);
        let id = file["id"].as_str().unwrap();
        let (_, headers, body) = app.download(&t.owner, id, None).await;
        assert_eq!(body.unwrap(), png.get_ref().as_slice());
        assert_eq!(header(&headers, CONTENT_TYPE), "image/png");
        assert!(header(&headers, CONTENT_DISPOSITION).starts_with("inline;"));
        let forced = app
            .client
            .get(format!("{}/api/v1/files/{id}/content?download=true", app.base))
            .bearer_auth(&t.owner.access)
            .send()
            .await
            .unwrap();
        assert!(header(forced.headers(), CONTENT_DISPOSITION).starts_with("attachment;"));
        let thumb = app
            .client
            .get(format!("{}/api/v1/files/{id}/thumbnail", app.base))
            .bearer_auth(&t.owner.access)
            .send()
            .await
            .unwrap();
        assert_eq!(thumb.status(), 200);
        assert_eq!(header(thumb.headers(), CONTENT_TYPE), "image/png");
        let small = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
        assert_eq!((small.width(), small.height()), (320, 240));
    }

    async fn traversal_and_hostile_names_are_neutralised(app) {
        let t = team(&app).await;
        for (sent, kept) in [
            ("../../../../etc/passwd", "passwd"),
            ("..\\..\\Windows\\win.ini", "win.ini"),
            ("CON.txt", "_CON.txt"),
            ("report\u{202E}fdp.exe", "report_fdp.exe"),
            ("..", "file"),
            (".bashrc", "bashrc"),
        ] {
            let up = app.upload(&t.owner, &t.channel, sent, b"contents").await;
            let file = up.expect(201).clone();
            assert_eq!(file["name"], kept, "{sent:?}");
            let (_, headers, _) = app.download(&t.owner, file["id"].as_str().unwrap(), None).await;
            let disposition = header(&headers, CONTENT_DISPOSITION);
            assert!(disposition.starts_with(&format!("attachment; filename=\"{kept}\"")), "{disposition}");
            assert!(!disposition.contains('/') && !disposition.contains('\\'), "{disposition}");
        }
        // Control characters cannot travel in a multipart header, but can in tus metadata.
        let created = app.tus_create(&t.owner, &t.channel, 3, "name\twith\u{7}controls\n.txt. ").await;
        assert_eq!(created.expect(201)["name"], "name_with_controls_.txt");
        // A resumable upload's name is sanitized too.
        let created = app.tus_create(&t.owner, &t.channel, 3, "../../.ssh/authorized_keys").await;
        created.expect(201);
        assert_eq!(created.body["name"], "authorized_keys");
        // Nothing is stored under a name a client chose: only ids and segment numbers.
        let mut stored = Vec::new();
        all_files(&app.data_dir.join("blobs"), &mut stored);
        assert!(!stored.is_empty());
        for path in stored {
            let rel = path.strip_prefix(app.data_dir.join("blobs")).unwrap().to_string_lossy().into_owned();
            let parts: Vec<&str> = rel.split('/').collect();
            assert_eq!(parts.len(), 3, "{rel}");
            assert_eq!(parts[0], "files");
            assert!(parts[1].parse::<uuid::Uuid>().is_ok(), "{rel}");
            assert!(parts[2].chars().all(|c| c.is_ascii_digit()), "{rel}");
        }
    }

    async fn a_resumable_upload_continues_from_its_offset(app) {
        let t = team(&app).await;
        let data = sample(3 * CHUNK + 999, 2);
        let len = data.len() as u64;

        let options = app
            .client
            .request(reqwest::Method::OPTIONS, format!("{}/api/v1/channels/{}/uploads", app.base, t.channel))
            .send()
            .await
            .unwrap();
        assert_eq!(options.status(), 204);
        assert_eq!(header(options.headers(), "tus-version"), "1.0.0");
        assert!(header(options.headers(), "tus-extension").contains("creation"));

        let no_version = app
            .client
            .post(format!("{}/api/v1/channels/{}/uploads", app.base, t.channel))
            .bearer_auth(&t.owner.access)
            .header("Upload-Length", "10")
            .send()
            .await
            .unwrap();
        assert_eq!(no_version.status(), 412);

        let created = app.tus_create(&t.owner, &t.channel, len, "big.bin").await;
        created.expect(201);
        let upload = header(&created.headers, "location");
        assert!(upload.starts_with("/api/v1/uploads/"), "{upload}");
        assert_eq!(header(&created.headers, "tus-resumable"), "1.0.0");
        let head = app.tus_head(&t.owner, &upload).await;
        assert_eq!(head.status, 200);
        assert_eq!(header(&head.headers, "upload-offset"), "0");
        assert_eq!(header(&head.headers, "upload-length"), len.to_string());

        // A first request that ends inside a chunk; the offset is exact.
        let cut = CHUNK + 1000;
        let r = app.tus_patch(&t.owner, &upload, 0, data[..cut].to_vec()).await;
        assert_eq!(r.status, 204, "{}", r.body);
        assert_eq!(header(&r.headers, "upload-offset"), cut.to_string());
        // The wrong offset is refused; someone else cannot even see the upload.
        let r = app.tus_patch(&t.owner, &upload, 5, data[5..10].to_vec()).await;
        r.expect_error(409, "offset_mismatch");
        let other = app.person(&t.owner, "other@example.org").await;
        app.add_member(&t.owner, &t.workspace, &other, "member").await;
        let r = app.tus_patch(&other, &upload, cut as u64, data[cut..].to_vec()).await;
        assert_eq!(r.status, 404);
        assert_eq!(app.tus_head(&other, &upload).await.status, 404);
        // Not downloadable until complete.
        let id = upload.rsplit('/').next().unwrap().to_owned();
        app.get(&format!("/api/v1/files/{id}/content"), &t.owner.access).await.expect_error(409, "upload_incomplete");
        // Too many bytes are refused (on a connection of its own: the server closes a
        // connection whose request body it did not read to the end).
        let mut extra = data[cut..].to_vec();
        extra.push(0);
        let resp = reqwest::Client::new()
            .patch(format!("{}{upload}", app.base))
            .bearer_auth(&t.owner.access)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", cut.to_string())
            .header(CONTENT_TYPE, "application/offset+octet-stream")
            .body(extra)
            .send()
            .await
            .unwrap();
        reply(resp).await.expect_error(413, "file_too_large");

        let head = app.tus_head(&t.owner, &upload).await;
        assert_eq!(header(&head.headers, "upload-offset"), cut.to_string());
        let r = app.tus_patch(&t.owner, &upload, cut as u64, data[cut..].to_vec()).await;
        assert_eq!(r.status, 204, "{}", r.body);
        assert_eq!(header(&r.headers, "upload-offset"), len.to_string());

        let file = app.get(&format!("/api/v1/files/{id}"), &t.owner.access).await;
        assert_eq!(file.expect(200)["status"], "ready");
        assert_eq!(file.body["received"], len);
        let (status, _, body) = app.download(&t.owner, &id, None).await;
        assert_eq!(status, 200);
        assert_eq!(body.unwrap(), data);
        let (_, _, body) = app.download(&t.owner, &id, Some(&format!("bytes={}-{}", cut - 3, cut + 3))).await;
        assert_eq!(body.unwrap(), &data[cut - 3..cut + 4]);

        // An abandoned upload (tus termination) leaves nothing behind.
        let created = app.tus_create(&t.owner, &t.channel, 4 * CHUNK as u64, "gone.bin").await;
        let gone = header(&created.headers, "location");
        app.tus_patch(&t.owner, &gone, 0, sample(2 * CHUNK + 5, 3)).await;
        let gone_id = gone.rsplit('/').next().unwrap().to_owned();
        assert_eq!(blobs_of(&app, &gone_id).len(), 1);
        let r = app.client.delete(format!("{}{gone}", app.base)).bearer_auth(&t.owner.access)
            .header("Tus-Resumable", "1.0.0").send().await.unwrap();
        assert_eq!(r.status(), 204);
        assert!(blobs_of(&app, &gone_id).is_empty());
        assert_eq!(app.tus_head(&t.owner, &gone).await.status, 404);
    }

    async fn deleting_a_file_removes_its_contents(app) {
        let t = team(&app).await;
        let up = app.upload(&t.owner, &t.channel, "old.bin", &sample(2 * CHUNK, 4)).await;
        let id = id_of(&up);
        assert_eq!(blobs_of(&app, &id).len(), 1);
        // A channel member who did not upload it may not delete it.
        let member = app.person(&t.owner, "member@example.org").await;
        app.add_member(&t.owner, &t.workspace, &member, "member").await;
        app.post(&format!("/api/v1/channels/{}/members", t.channel), Some(&t.owner.access), json!({"user_id": member.user_id}))
            .await
            .expect(200);
        app.delete(&format!("/api/v1/files/{id}"), &member.access).await.expect_error(403, "forbidden");
        app.delete(&format!("/api/v1/files/{id}"), &t.owner.access).await.expect(204);
        assert!(blobs_of(&app, &id).is_empty(), "the blob is gone");
        assert!(!app.data_dir.join("blobs/files").join(&id).exists());
        app.get(&format!("/api/v1/files/{id}"), &t.owner.access).await.expect_error(404, "not_found");
        let deleted = app.get("/api/v1/audit/events?action=file.deleted", &t.owner.access).await;
        assert_eq!(deleted.expect(200)["events"].as_array().unwrap().len(), 1);
    }

    async fn swapped_or_truncated_ciphertext_is_an_error_not_garbage(app) {
        let t = team(&app).await;
        // 21 chunks: the server verifies the first batch (16 chunks) before it answers, so
        // damage there is an error status and damage further in cuts the body off.
        let data = sample(20 * CHUNK + 100, 5);
        let swap = |blob: &Path, a: usize| {
            let mut raw = std::fs::read(blob).unwrap();
            assert_eq!(raw.len(), 20 * SEALED + 100 + 28);
            let (one, two) = raw.split_at_mut((a + 1) * SEALED);
            one[a * SEALED..].swap_with_slice(&mut two[..SEALED]);
            std::fs::write(blob, &raw).unwrap();
        };

        // Two chunks swapped near the start.
        let id = id_of(&app.upload(&t.owner, &t.channel, "a.bin", &data).await);
        swap(&blobs_of(&app, &id)[0], 1);
        let (status, _, body) = app.download(&t.owner, &id, None).await;
        assert_eq!(status, 500);
        assert!(!body.unwrap().windows(16).any(|w| w == &data[CHUNK..CHUNK + 16]), "no plaintext leaks");
        app.get(&format!("/api/v1/files/{id}/content"), &t.owner.access).await.expect_error(500, "file_corrupt");
        let (status, _, body) = app.download(&t.owner, &id, Some("bytes=3-99")).await;
        assert_eq!((status.as_u16(), body.unwrap()), (206, data[3..100].to_vec()), "undamaged chunks still read");

        // Two chunks swapped further in: the body stops before them, never different bytes.
        let id = id_of(&app.upload(&t.owner, &t.channel, "b.bin", &data).await);
        swap(&blobs_of(&app, &id)[0], 17);
        let (status, _, body) = app.download(&t.owner, &id, None).await;
        assert_eq!(status, 200);
        assert!(body.is_err(), "the body is cut off");
        let (status, _, _) = app.download(&t.owner, &id, Some(&format!("bytes={}-{}", 17 * CHUNK + 1, 17 * CHUNK + 10))).await;
        assert_eq!(status, 500);

        // The file cut short: part of the last chunk, all of it, or whole chunks missing.
        for cut in [10usize, 100 + 28, SEALED + 100 + 28] {
            let id = id_of(&app.upload(&t.owner, &t.channel, "c.bin", &data).await);
            let blob = blobs_of(&app, &id).remove(0);
            let raw = std::fs::read(&blob).unwrap();
            std::fs::write(&blob, &raw[..raw.len() - cut]).unwrap();
            let (status, _, body) = app.download(&t.owner, &id, None).await;
            assert_eq!(status, 200);
            assert!(body.is_err(), "cut by {cut}: the body must fail");
            let (status, _, _) = app.download(&t.owner, &id, Some("bytes=-5")).await;
            assert_eq!(status, 500, "cut by {cut}");
        }

        // A chunk copied from another file (same position) does not authenticate either.
        let x = id_of(&app.upload(&t.owner, &t.channel, "x.bin", &data).await);
        let y = id_of(&app.upload(&t.owner, &t.channel, "y.bin", &sample(data.len(), 6)).await);
        let (bx, by) = (blobs_of(&app, &x).remove(0), blobs_of(&app, &y).remove(0));
        let mut rx = std::fs::read(&bx).unwrap();
        let ry = std::fs::read(&by).unwrap();
        rx[..SEALED].copy_from_slice(&ry[..SEALED]);
        std::fs::write(&bx, &rx).unwrap();
        let (status, _, _) = app.download(&t.owner, &x, None).await;
        assert_eq!(status, 500);
    }
}

mod limits {
    use super::*;
    use crate::harness::{spawn_app_with, Backend};

    async fn body(backend: Backend) {
        let app = spawn_app_with(backend, |c| {
            c.files.max_file_bytes = 100_000;
            c.files.workspace_quota_bytes = 250_000;
        })
        .await;
        let t = team(&app).await;
        let r = app
            .upload(&t.owner, &t.channel, "big.bin", &sample(150_000, 7))
            .await;
        r.expect_error(413, "file_too_large");
        assert_eq!(r.body["error"]["limit"], 100_000);
        let r = app
            .tus_create(&t.owner, &t.channel, 100_001, "big.bin")
            .await;
        r.expect_error(413, "file_too_large");
        assert_eq!(r.body["error"]["limit"], 100_000);
        // Nothing of the refused upload is kept.
        let mut stored = Vec::new();
        all_files(&app.data_dir.join("blobs"), &mut stored);
        assert!(stored.is_empty(), "{stored:?}");

        app.upload(&t.owner, &t.channel, "a.bin", &sample(90_000, 8))
            .await
            .expect(201);
        // A resumable upload reserves its declared length.
        app.tus_create(&t.owner, &t.channel, 90_000, "b.bin")
            .await
            .expect(201);
        let r = app
            .upload(&t.owner, &t.channel, "c.bin", &sample(90_000, 9))
            .await;
        r.expect_error(413, "quota_exceeded");
        assert_eq!(r.body["error"]["limit"], 250_000);
        let r = app.tus_create(&t.owner, &t.channel, 90_000, "d.bin").await;
        r.expect_error(413, "quota_exceeded");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        body(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        body(Backend::Postgres).await
    }
}

/// The one `*.partial` blob under `dir`, once there is one.
fn partial_blob(dir: &Path) -> Option<PathBuf> {
    let mut found = Vec::new();
    all_files(dir, &mut found);
    found
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "partial"))
}

/// A file sent in one request keeps its blob for as long as the request lasts, however old
/// the blob looks to the orphan collector (a slow sender, a long scan, an object store that
/// dates a blob by when its upload began): the collector takes only blobs nobody is writing.
async fn a_file_being_sent_keeps_its_blob_through_a_sweep(backend: crate::harness::Backend) {
    use std::time::{Duration, Instant, SystemTime};

    let app = crate::harness::spawn_app_with(backend, |c| {
        c.files.sweep_interval_seconds = 1;
    })
    .await;
    let t = team(&app).await;
    let data = sample(20 * CHUNK + 99, 4);
    let boundary = "concord-test-boundary-slow-sender";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.bin\"\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    });
    let sending = tokio::spawn(
        app.client
            .post(format!("{}/api/v1/channels/{}/files", app.base, t.channel))
            .bearer_auth(&t.owner.access)
            .header(
                CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(reqwest::Body::wrap_stream(body))
            .send(),
    );
    // More than one batch of chunks arrives, so the blob is being written; then the sender
    // pauses with the request open.
    let split = 18 * CHUNK;
    tx.send(Ok(head.into_bytes())).await.unwrap();
    tx.send(Ok(data[..split].to_vec())).await.unwrap();
    let blobs = app.data_dir.join("blobs").join("files");
    let deadline = Instant::now() + Duration::from_secs(20);
    let partial = loop {
        if let Some(p) = partial_blob(&blobs) {
            break p;
        }
        assert!(Instant::now() < deadline, "no blob is being written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // It looks two hours old, beside an old blob of a file that does not exist.
    let aged = SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&partial)
        .unwrap()
        .set_modified(aged)
        .unwrap();
    let orphan = blobs
        .join(uuid::Uuid::now_v7().to_string())
        .join("00000000");
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, vec![1u8; 5000]).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&orphan)
        .unwrap()
        .set_modified(aged)
        .unwrap();
    // A sweep passes: it removes the orphan and leaves the blob being written.
    let deadline = Instant::now() + Duration::from_secs(20);
    while orphan.exists() {
        assert!(Instant::now() < deadline, "no sweep removed the orphan");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        partial.exists(),
        "the blob of a file being sent was removed"
    );

    tx.send(Ok(data[split..].to_vec())).await.unwrap();
    tx.send(Ok(tail.into_bytes())).await.unwrap();
    drop(tx);
    let sent = reply(sending.await.unwrap().unwrap()).await;
    assert_eq!(sent.expect(201)["size"], data.len() as u64);
    let id = id_of(&sent);
    let r = app
        .client
        .get(format!("{}/api/v1/files/{id}/content", app.base))
        .bearer_auth(&t.owner.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_being_sent_keeps_its_blob_through_a_sweep_sqlite() {
    a_file_being_sent_keeps_its_blob_through_a_sweep(crate::harness::Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_being_sent_keeps_its_blob_through_a_sweep_postgres() {
    a_file_being_sent_keeps_its_blob_through_a_sweep(crate::harness::Backend::Postgres).await
}
