//! Erasure (GDPR Art. 17): a compliance officer erases a person. Their account is emptied at
//! once and their sockets cut; their messages, files and reactions go where the workspace's
//! policy says `delete` (what a legal hold covers stays) and stay without a profile where it
//! says `anonymize`; their data key is destroyed, so their audit entries' sealed fields can no
//! longer be read while the chain still verifies; and a scan of the database files, the blob
//! store and the search index finds none of their personal data.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::chat::{channel, say};
use crate::harness::{both_backends, spawn_app_with, Backend, Session, TestApp, PASSWORD};

async fn spawn(backend: Backend) -> TestApp {
    spawn_app_with(backend, |c| {
        // Members make workspaces of their own (whose only owner they are).
        c.auth.users_can_create_workspaces = true;
        // Retention and erasure passes every second: what a released hold kept goes soon.
        c.retention.interval_seconds = 1;
        // Small writes, so an erasure takes several.
        c.retention.batch = 2;
        // Signed checkpoints often, so `concord audit verify` checks the whole chain.
        c.audit.checkpoint_every = 5;
    })
    .await
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn officer(app: &TestApp, admin: &Session) -> Session {
    app.create_user(admin, "officer@example.org", "Officer")
        .await;
    let officer = app.login("officer@example.org", PASSWORD).await;
    app.put(
        &format!("/api/v1/users/{}/system-role", officer.user_id),
        &admin.access,
        json!({"role": "compliance_officer"}),
    )
    .await
    .expect(200);
    officer
}

/// Waits until the erasure of `who` has the status `status`; the erasure.
async fn erasure_reaches(app: &TestApp, officer: &Session, who: &str, status: &str) -> Value {
    let path = format!("/api/v1/users/{who}/erasure");
    for _ in 0..300 {
        let now = app.get(&path, &officer.access).await.expect(200).clone();
        if now["status"] == status {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the erasure did not reach {status}");
}

/// Asks for the erasure of `who` and waits until it is no longer running; the erasure.
async fn erase(app: &TestApp, officer: &Session, who: &str) -> Value {
    let path = format!("/api/v1/users/{who}/erasure");
    let started = app
        .post(
            &path,
            Some(&officer.access),
            json!({"reason": "Art. 17 request, ticket DSR-7"}),
        )
        .await;
    let started = started.expect(202).clone();
    assert_eq!(started["user_id"], who);
    for _ in 0..300 {
        let now = app.get(&path, &officer.access).await.expect(200).clone();
        if now["status"] != "running" {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the erasure did not finish");
}

async fn history(app: &TestApp, who: &Session, channel: &str) -> Vec<Value> {
    app.get(
        &format!("/api/v1/channels/{channel}/messages?limit=200"),
        &who.access,
    )
    .await
    .expect(200)
    .as_array()
    .unwrap()
    .clone()
}

async fn found(app: &TestApp, who: &Session, ws: &str, word: &str) -> Vec<String> {
    app.get(
        &format!("/api/v1/workspaces/{ws}/search?q={word}&limit=100"),
        &who.access,
    )
    .await
    .expect(200)["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The files under the server's data directory (SQLite's database and write-ahead log, the
/// blob store, the search indexes) that hold `needle`, case-insensitively.
fn files_holding(app: &TestApp, needle: &str) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    files_under(&app.data_dir, &mut files);
    let needle = needle.to_lowercase();
    files.retain(|file| {
        let bytes = std::fs::read(file).unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .to_lowercase()
            .contains(&needle)
    });
    files
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.scalar(sql).await
}

async fn erasure_deletes_a_persons_content_and_destroys_their_key(backend: Backend) {
    let app = spawn(backend).await;
    let t = app.team().await;
    let officer = officer(&app, &t.admin).await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    let legal = channel(&app, &t.ann, &t.ws, "legal", "public").await;
    for c in [&general, &legal] {
        app.post(
            &format!("/api/v1/channels/{c}/join"),
            Some(&t.bo.access),
            json!({}),
        )
        .await
        .expect(200);
    }
    app.put(
        &format!("/api/v1/workspaces/{}/policy", t.ws),
        &t.admin.access,
        json!({"data_subject": {"erasure": "delete"}}),
    )
    .await
    .expect(200);
    // Ann writes: messages (one edited, one with a reply from Bo), a reaction, a file; a hold
    // covers the legal channel.
    let plain = say(&app, &t.ann, &general, "quokka plain words").await;
    let edited = say(&app, &t.ann, &general, "quokka first draft").await;
    app.call(
        Method::PATCH,
        &format!("/api/v1/messages/{}", id(&edited)),
        Some(&t.ann.access),
        Some(json!({"text": "quokka final words"})),
    )
    .await
    .expect(200);
    let root = say(&app, &t.ann, &general, "quokka asks a question").await;
    let reply = app
        .post(
            &format!("/api/v1/channels/{general}/messages"),
            Some(&t.bo.access),
            json!({"text": "bo answers the question", "thread_root_id": id(&root)}),
        )
        .await
        .expect(201)
        .clone();
    let bos = say(&app, &t.bo, &general, "bo says something").await;
    app.call(
        Method::PUT,
        &format!("/api/v1/messages/{}/reactions/:thumbsup:", id(&bos)),
        Some(&t.ann.access),
        None,
    )
    .await
    .expect(200);
    let file = app
        .upload(
            &t.ann,
            &general,
            "quokka.txt",
            b"quokka secret file contents",
        )
        .await
        .expect(201)
        .clone();
    let file = file["file"]["id"]
        .as_str()
        .or(file["id"].as_str())
        .unwrap()
        .to_owned();
    app.post(
        &format!("/api/v1/workspaces/{}/legal-holds", t.ws),
        Some(&officer.access),
        json!({"name": "Legal matter", "channels": [legal]}),
    )
    .await
    .expect(201);
    let held = say(&app, &t.ann, &legal, "quokka held words").await;
    // Four messages, the file and the message it was posted with.
    assert_eq!(found(&app, &t.bo, &t.ws, "quokka").await.len(), 6);
    let ann_key = format!(
        "SELECT COUNT(*) FROM data_keys WHERE scope = 'user:{}'",
        t.ann.user_id
    );
    assert!(count(&app, &ann_key).await > 0, "Ann has a data key");
    let mut ann_socket = app.socket(&t.ann.access, None).await;

    // Who may erase, and how.
    let path = format!("/api/v1/users/{}/erasure", t.ann.user_id);
    let reason = json!({"reason": "Art. 17 request"});
    let r = app.post(&path, Some(&t.bo.access), reason.clone()).await;
    assert!(
        r.status == 403 || r.status == 404,
        "a member may not erase: {}",
        r.status
    );
    let r = app.post(&path, Some(&t.ann.access), reason.clone()).await;
    assert!(
        r.status == 403 || r.status == 404,
        "not for oneself: {}",
        r.status
    );
    app.post(&path, Some(&officer.access), json!({"reason": "  "}))
        .await
        .expect_error(422, "reason_required");
    app.post(&path, Some(&officer.access), json!({}))
        .await
        .expect(422);
    app.post(
        &format!("/api/v1/users/{}/erasure", officer.user_id),
        Some(&officer.access),
        reason.clone(),
    )
    .await
    .expect_error(422, "cannot_erase_self");
    app.post(
        &format!("/api/v1/users/{}/erasure", t.admin.user_id),
        Some(&officer.access),
        reason.clone(),
    )
    .await
    .expect_error(409, "holds_system_role");
    app.get(&path, &officer.access)
        .await
        .expect_error(404, "not_found");
    // The only owner of a workspace is not erased before someone else owns it.
    let own = app.create_workspace(&t.cy, "Cy's own").await;
    assert!(!own.is_empty());
    app.post(
        &format!("/api/v1/users/{}/erasure", t.cy.user_id),
        Some(&officer.access),
        reason.clone(),
    )
    .await
    .expect_error(409, "last_owner");

    let done = erase(&app, &officer, &t.ann.user_id).await;
    // The hold keeps one message: the erasure waits on it.
    assert_eq!(done["status"], "waiting_on_holds", "{done}");
    let report = &done["report"];
    assert!(report["sessions_ended"].as_u64().unwrap() >= 1, "{done}");
    assert!(report["keys_destroyed"].as_u64().unwrap() >= 1, "{done}");
    let w = &report["workspaces"][0];
    assert_eq!(w["content"], "delete", "{done}");
    // Two messages, and the one the file was posted with.
    assert_eq!(w["messages_destroyed"], 3, "{done}");
    assert_eq!(w["messages_emptied"], 1, "{done}");
    assert_eq!(w["messages_held"], 1, "{done}");
    assert_eq!(w["files_destroyed"], 1, "{done}");
    app.post(&path, Some(&officer.access), reason.clone())
        .await
        .expect_error(409, "already_erased");

    // Ann is signed out everywhere and cannot sign in again.
    let closed = tokio::time::timeout(Duration::from_secs(10), ann_socket.closed_with())
        .await
        .expect("Ann's socket is closed");
    assert!(closed.is_some());
    let r = app.get("/api/v1/users/me", &t.ann.access).await;
    assert_eq!(r.status, 401);
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "ann@example.org", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 401);
    // Her account is an empty pseudonym, and not a member anywhere.
    let user = app
        .get(&format!("/api/v1/users/{}", t.ann.user_id), &t.admin.access)
        .await
        .expect(200)
        .clone();
    assert_eq!(user["status"], "erased");
    assert_eq!(user["display_name"], "Erased user");
    assert_eq!(user["email"], "");
    let members = app
        .get(
            &format!("/api/v1/workspaces/{}/members", t.ws),
            &t.admin.access,
        )
        .await
        .expect(200)
        .to_string();
    assert!(!members.contains(&t.ann.user_id), "{members}");
    // Her messages are gone, the root others replied to is an empty tombstone, others'
    // messages stay and her reaction is gone; what the hold covers stays.
    let seen = history(&app, &t.bo, &general).await;
    let ids: Vec<String> = seen.iter().map(id).collect();
    assert!(
        !ids.contains(&id(&plain)) && !ids.contains(&id(&edited)),
        "{seen:?}"
    );
    let tomb = seen
        .iter()
        .find(|m| id(m) == id(&root))
        .expect("root stays");
    assert_eq!(tomb["deleted"], true);
    assert_eq!(tomb["text"], "");
    let bo_says = seen.iter().find(|m| id(m) == id(&bos)).expect("bo's stays");
    assert_eq!(bo_says["text"], "bo says something");
    assert!(
        bo_says["reactions"].as_array().is_none_or(|r| r.is_empty()),
        "{bo_says}"
    );
    let thread = app
        .get(
            &format!("/api/v1/messages/{}/thread", id(&root)),
            &t.bo.access,
        )
        .await;
    if thread.status == 200 {
        assert!(thread.body.to_string().contains(&id(&reply)));
    }
    let legal_seen = history(&app, &t.bo, &legal).await;
    assert_eq!(legal_seen.len(), 1);
    assert_eq!(legal_seen[0]["text"], "quokka held words");
    assert_eq!(id(&legal_seen[0]), id(&held));
    assert_eq!(found(&app, &t.bo, &t.ws, "quokka").await, vec![id(&held)]);
    app.get(&format!("/api/v1/files/{file}"), &t.bo.access)
        .await
        .expect(404);
    // Her key is gone: nothing of hers can be exported, and her audit entries' sealed
    // fields no longer read, while the chain verifies.
    assert_eq!(count(&app, &ann_key).await, 0);
    app.get(
        &format!("/api/v1/users/{}/data-export?reason=request", t.ann.user_id),
        &officer.access,
    )
    .await
    .expect_error(410, "erased");
    let events = app.audit_events(&officer.access).await;
    let subject = format!("user:{}", t.ann.user_id);
    let hers: Vec<&Value> = events.iter().filter(|e| e["subject"] == subject).collect();
    assert!(!hers.is_empty());
    for e in &hers {
        assert!(e["details"].is_null() && e["ip"].is_null(), "{e}");
    }
    let started = events
        .iter()
        .find(|e| e["action"] == "data_subject.erasure_started")
        .expect("the request is audited");
    assert_eq!(
        started["details"]["reason"],
        "Art. 17 request, ticket DSR-7"
    );
    assert_eq!(started["actor_id"], officer.user_id.as_str());
    assert!(events
        .iter()
        .any(|e| e["action"] == "data_subject.erased" && e["target_id"] == t.ann.user_id.as_str()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(app.cli_args())
        .args(["audit", "verify"])
        .env("CONCORD_LOG__FILTER", "warn")
        .env("CONCORD_AUDIT__CHECKPOINT_EVERY", "5")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A byte scan of the database files, the blob store and the search indexes finds none of
    // her personal data.
    app.checkpoint_sqlite().await;
    for needle in [
        "ann@example.org",
        "quokka plain",
        "quokka final",
        "quokka first",
        "quokka secret file",
        "quokka.txt",
    ] {
        assert_eq!(
            files_holding(&app, needle),
            Vec::<std::path::PathBuf>::new(),
            "{needle}"
        );
    }
    // Nothing of hers is left in the tables that held her content but the held message.
    let ann = &t.ann.user_id;
    let literal = match backend {
        Backend::Sqlite => format!("x'{}'", ann.replace('-', "")),
        Backend::Postgres => format!("'{ann}'"),
    };
    let of_hers = |table: &str, column: &str| {
        format!("SELECT COUNT(*) FROM {table} WHERE {column} = {literal}")
    };
    // The held message, and the empty tombstone of the root Bo replied to.
    assert_eq!(count(&app, &of_hers("messages", "author_id")).await, 2);
    assert_eq!(count(&app, &of_hers("files", "uploader_id")).await, 0);
    assert_eq!(count(&app, &of_hers("reactions", "user_id")).await, 0);
    assert_eq!(count(&app, &of_hers("sessions", "user_id")).await, 0);
    assert_eq!(count(&app, &of_hers("memberships", "user_id")).await, 0);
    let versions = format!(
        "SELECT COUNT(*) FROM message_versions v JOIN messages m ON m.id = v.message_id \
         WHERE m.author_id = {literal}"
    );
    assert_eq!(count(&app, &versions).await, 0);
    // Acting on her account or her held message afterwards makes no new key of hers: the
    // audit entries about it are sealed under the audit log's own key.
    app.delete(
        &format!("/api/v1/users/{}/sessions", t.ann.user_id),
        &t.admin.access,
    )
    .await;
    app.put(
        &format!("/api/v1/users/{}/system-role", t.ann.user_id),
        &t.admin.access,
        json!({"role": "compliance_officer"}),
    )
    .await
    .expect_error(410, "erased");
    app.delete(&format!("/api/v1/messages/{}", id(&held)), &t.admin.access)
        .await
        .expect(204);
    assert_eq!(count(&app, &ann_key).await, 0);
    // Once the hold is released, the next pass destroys what it kept, deleted text included.
    let holds = app
        .get(
            &format!("/api/v1/workspaces/{}/legal-holds", t.ws),
            &officer.access,
        )
        .await
        .expect(200)
        .clone();
    let hold = holds["holds"][0]["id"].as_str().unwrap().to_owned();
    app.delete(
        &format!("/api/v1/workspaces/{}/legal-holds/{hold}", t.ws),
        &officer.access,
    )
    .await
    .expect(200);
    let finished = erasure_reaches(&app, &officer, &t.ann.user_id, "done").await;
    assert_eq!(
        finished["report"]["workspaces"][0]["messages_held"], 0,
        "{finished}"
    );
    assert_eq!(count(&app, &of_hers("messages", "author_id")).await, 1);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM message_remnants").await,
        0
    );
    assert!(history(&app, &t.bo, &legal).await.is_empty());
    assert!(app
        .audit_events(&officer.access)
        .await
        .iter()
        .any(|e| e["action"] == "data_subject.erasure_continued"));
    assert_eq!(count(&app, &ann_key).await, 0);
    // Her address is free to be used again, by a new account.
    app.create_user(&t.admin, "ann@example.org", "Ann Again")
        .await;
}

async fn anonymized_content_stays_under_an_empty_account(backend: Backend) {
    let app = spawn(backend).await;
    let t = app.team().await;
    let officer = officer(&app, &t.admin).await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    app.post(
        &format!("/api/v1/channels/{general}/join"),
        Some(&t.bo.access),
        json!({}),
    )
    .await
    .expect(200);
    // The default policy anonymizes.
    let kept = say(&app, &t.ann, &general, "wombat words that stay").await;
    let file = app
        .upload(&t.ann, &general, "wombat.txt", b"wombat file contents")
        .await
        .expect(201)
        .clone();
    let file = file["file"]["id"]
        .as_str()
        .or(file["id"].as_str())
        .unwrap()
        .to_owned();
    let done = erase(&app, &officer, &t.ann.user_id).await;
    let w = &done["report"]["workspaces"][0];
    assert_eq!(w["content"], "anonymize", "{done}");
    assert_eq!(w["messages_destroyed"], 0, "{done}");
    assert_eq!(w["files_destroyed"], 0, "{done}");
    let seen = history(&app, &t.bo, &general).await;
    let m = seen.iter().find(|m| id(m) == id(&kept)).expect("kept");
    assert_eq!(m["text"], "wombat words that stay");
    let author = m["author_id"].as_str().unwrap();
    let profile = app
        .get(&format!("/api/v1/users/{author}"), &t.admin.access)
        .await
        .expect(200)
        .clone();
    assert_eq!(profile["display_name"], "Erased user");
    assert_eq!(profile["email"], "");
    app.get(&format!("/api/v1/files/{file}"), &t.bo.access)
        .await
        .expect(200);
    // The message, the file and the message it was posted with.
    assert_eq!(found(&app, &t.bo, &t.ws, "wombat").await.len(), 3);
    // Members and others cannot follow an erasure.
    let r = app
        .get(
            &format!("/api/v1/users/{}/erasure", t.ann.user_id),
            &t.bo.access,
        )
        .await;
    assert!(r.status == 403 || r.status == 404, "{}", r.status);
    // A restart changes nothing: it is done.
    let app = app.restart().await;
    let again = app
        .get(
            &format!("/api/v1/users/{}/erasure", t.ann.user_id),
            &officer.access,
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(again["status"], "done");
    assert_eq!(again["id"], done["id"]);
}

both_backends!(
    erasure_deletes_a_persons_content_and_destroys_their_key,
    anonymized_content_stays_under_an_empty_account,
);
