//! Key rotation: from the command line with the server stopped (the command re-encrypts
//! itself) and while the server runs and serves writes (the server re-encrypts in the
//! background, resumes after a restart, and reports progress), and through the admin API.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::durability::{json_post, start, start_with_env, Process};
use crate::harness::{both_backends, Backend, PASSWORD};

/// Small, paced batches so that a test sees the job half done; a short poll interval.
const SLOW_JOB: &[(&str, &str)] = &[
    ("CONCORD_KEYS__REENCRYPT_BATCH", "4"),
    ("CONCORD_KEYS__REENCRYPT_PAUSE_MS", "150"),
    ("CONCORD_KEYS__REENCRYPT_POLL_SECONDS", "1"),
];

fn concord(dir: &std::path::Path, args: &[&str], db: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(args)
        .args(["--database-url", db])
        .current_dir(dir)
        .env("CONCORD_LOG__FILTER", "warn")
        .env("CONCORD_KEYS__REENCRYPT_POLL_SECONDS", "1")
        .output()
        .expect("concord runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

async fn stop(mut p: Process) {
    let _ = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status();
    let _ = p.child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_kek_and_data_keys_keeps_data_readable() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("concord.db").display());
    let client = reqwest::Client::new();

    let server = start(dir.path(), &db);
    // A channel message with an edit: its body and its kept first version are encrypted too.
    let (access, ch) = server
        .admin_with_channel(&client, "keeper@example.org", "Key Keeper")
        .await;
    let (s, m) = json_post(
        &client,
        format!("{}/api/v1/channels/{ch}/messages", server.base),
        Some(&access),
        json!({"text": "first words"}),
    )
    .await;
    assert_eq!(s, 201);
    let message = m["id"].as_str().unwrap().to_owned();
    let r = client
        .patch(format!("{}/api/v1/messages/{message}", server.base))
        .bearer_auth(&access)
        .json(&json!({"text": "second words"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    stop(server).await;
    let kek_before = std::fs::read(dir.path().join("data/keys/kek.key")).unwrap();

    let (ok, status, err) = concord(dir.path(), &["keys", "status"], &db);
    assert!(ok, "{err}");
    assert!(
        status.contains("user:") && status.contains("current"),
        "{status}"
    );

    let (ok, out, err) = concord(dir.path(), &["keys", "rotate-kek"], &db);
    assert!(ok, "{err}");
    assert!(out.contains("rewrapped"), "{out}");
    assert_ne!(
        std::fs::read(dir.path().join("data/keys/kek.key")).unwrap(),
        kek_before,
        "a new KEK is in place"
    );

    let (ok, out, err) = concord(dir.path(), &["keys", "rotate-dek"], &db);
    assert!(ok, "{err}");
    assert!(
        out.contains("started new key versions") && out.contains("re-encrypted"),
        "{out}"
    );
    let (_, status, _) = concord(dir.path(), &["keys", "status"], &db);
    assert!(
        status.contains("retired") && !status.contains("unfinished"),
        "{status}"
    );

    // The server starts with the new KEK and everything written before reads back.
    let server = start(dir.path(), &db);
    let (s, login) = json_post(
        &client,
        format!("{}/api/v1/auth/login", server.base),
        None,
        json!({"email": "keeper@example.org", "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 200, "{login}");
    let me: serde_json::Value = client
        .get(format!("{}/api/v1/users/me", server.base))
        .bearer_auth(login["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["display_name"], "Key Keeper");
    let get = |path: String| {
        let client = client.clone();
        let token = login["access_token"].as_str().unwrap().to_owned();
        async move {
            client
                .get(path)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let history = get(format!("{}/api/v1/channels/{ch}/messages", server.base)).await;
    assert_eq!(history[0]["text"], "second words");
    let versions = get(format!(
        "{}/api/v1/messages/{message}/versions",
        server.base
    ))
    .await;
    assert_eq!(versions[0]["text"], "first words");
    stop(server).await;

    // The live audit log still verifies, and records both rotations.
    let (ok, out, err) = concord(dir.path(), &["audit", "verify"], &db);
    assert!(ok, "{out}{err}");
}

/// A fresh database for a test that drives the binary, dropped at the end on PostgreSQL.
async fn database(
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

/// The key version of each stored ciphertext of a column (format byte, then u32 BE version).
async fn stored_versions(db: &str, sql: &str) -> Vec<u32> {
    use sqlx::Connection;
    let rows: Vec<(Option<Vec<u8>>,)> = if db.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(db).await.unwrap();
        sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(db).await.unwrap();
        sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
    };
    rows.into_iter()
        .filter_map(|(b,)| b)
        .filter(|b| b.len() > 5)
        .map(|b| u32::from_be_bytes([b[1], b[2], b[3], b[4]]))
        .collect()
}

/// What [`encrypted_names`] wrote, to read back after a rotation.
struct Named {
    workspace: String,
    channel: String,
}

/// Gives the channel's workspace a custom role and the channel a topic and purpose, and
/// signs in from a client with a User-Agent.
async fn encrypted_names(client: &reqwest::Client, base: &str, access: &str, ch: &str) -> Named {
    let channel: Value = client
        .patch(format!("{base}/api/v1/channels/{ch}"))
        .bearer_auth(access)
        .json(&json!({"topic": "rotating topic", "purpose": "rotating purpose"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(channel["topic"], "rotating topic", "{channel}");
    let workspace = channel["workspace_id"].as_str().unwrap().to_owned();
    let (s, role) = json_post(
        client,
        format!("{base}/api/v1/workspaces/{workspace}/roles"),
        Some(access),
        json!({"name": "rotator", "description": "turns keys", "permissions": ["workspace.read"]}),
    )
    .await;
    assert_eq!(s, 201, "{role}");
    let login = client
        .post(format!("{base}/api/v1/auth/login"))
        .header("User-Agent", "rotation-agent/1")
        .json(&json!({"email": "keeper@example.org", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    Named {
        workspace,
        channel: ch.to_owned(),
    }
}

impl Named {
    /// Everything [`encrypted_names`] wrote reads back.
    async fn read_back(&self, client: &reqwest::Client, base: &str) {
        let access = sign_in(client, base, "keeper@example.org").await;
        let get = |path: String| {
            let access = access.clone();
            async move {
                client
                    .get(format!("{base}{path}"))
                    .bearer_auth(access)
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            }
        };
        let channel = get(format!("/api/v1/channels/{}", self.channel)).await;
        assert_eq!(
            (&channel["name"], &channel["topic"]),
            (&json!("general"), &json!("rotating topic")),
            "{channel}"
        );
        let workspace = get(format!("/api/v1/workspaces/{}", self.workspace)).await;
        assert_eq!(workspace["name"], "Team", "{workspace}");
        let roles = get(format!("/api/v1/workspaces/{}/roles", self.workspace)).await;
        assert!(roles.to_string().contains("turns keys"), "{roles}");
        let sessions = get("/api/v1/users/me/sessions".into()).await;
        assert!(
            sessions.to_string().contains("rotation-agent/1"),
            "{sessions}"
        );
    }
}

async fn status(client: &reqwest::Client, base: &str, access: &str) -> Value {
    let r = client
        .get(format!("{base}/api/v1/admin/keys/status"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn sign_in(client: &reqwest::Client, base: &str, email: &str) -> String {
    let (s, login) = json_post(
        client,
        format!("{base}/api/v1/auth/login"),
        None,
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 200, "{login}");
    login["access_token"].as_str().unwrap().to_owned()
}

async fn rotation_while_the_server_runs(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (db, _guard) = database(backend, dir.path()).await;
    let client = reqwest::Client::new();
    let server = start_with_env(dir.path(), &db, SLOW_JOB);
    let (access, ch) = server
        .admin_with_channel(&client, "keeper@example.org", "Key Keeper")
        .await;
    let post = |text: String, base: String| {
        let (client, access) = (client.clone(), access.clone());
        let ch = ch.clone();
        async move {
            let (s, m) = json_post(
                &client,
                format!("{base}/api/v1/channels/{ch}/messages"),
                Some(&access),
                json!({ "text": text, "client_msg_id": format!("c-{text}") }),
            )
            .await;
            assert_eq!(s, 201, "{m}");
            m["id"].as_str().unwrap().to_owned()
        }
    };
    for i in 0..40 {
        post(format!("before rotation {i}"), server.base.clone()).await;
    }
    // Names, a topic, a custom role and where a session began are encrypted too.
    let named = encrypted_names(&client, &server.base, &access, &ch).await;
    let bodies = "SELECT body FROM messages";
    assert!(stored_versions(&db, bodies).await.iter().all(|&v| v == 1));

    // The command records the rotation; the running server takes the job up and the
    // command returns without re-encrypting anything itself.
    let (ok, out, err) = concord(dir.path(), &["keys", "rotate-dek"], &db);
    assert!(ok, "{err}");
    assert!(out.contains("started new key versions"), "{out}");
    assert!(out.contains("running Concord is re-encrypting"), "{out}");

    // New writes use the new key version at once, while the job is still going.
    let fresh = post("after rotation".into(), server.base.clone()).await;
    let id_literal = match backend {
        Backend::Sqlite => format!("x'{}'", fresh.replace('-', "")),
        Backend::Postgres => format!("'{fresh}'"),
    };
    let fresh_version = stored_versions(
        &db,
        &format!("SELECT body FROM messages WHERE id = {id_literal}"),
    )
    .await;
    assert_eq!(
        fresh_version,
        vec![2],
        "the new message uses the new key version"
    );

    // Progress is visible half-way; the server stops gracefully mid-job.
    let deadline = Instant::now() + Duration::from_secs(60);
    let half = loop {
        let s = status(&client, &server.base, &access).await;
        let r = s["rotations"][0].clone();
        let messages = r["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["target"] == "messages")
            .cloned()
            .unwrap();
        if messages["done"].as_i64().unwrap() > 0 && r["state"] == "running" {
            break r;
        }
        assert!(Instant::now() < deadline, "no progress: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        half["done"].as_i64().unwrap() < half["total"].as_i64().unwrap(),
        "{half}"
    );
    stop(server).await;
    let (ok, out, err) = concord(dir.path(), &["keys", "status"], &db);
    assert!(ok, "{err}");
    assert!(out.contains(": pending: "), "{out}");
    let old_left = stored_versions(&db, bodies)
        .await
        .iter()
        .filter(|&&v| v == 1)
        .count();
    assert!(old_left > 0, "interrupted before the end");

    // A restarted server resumes where the job stopped; --wait shows it to the end.
    let server = start_with_env(dir.path(), &db, SLOW_JOB);
    let (ok, out, err) = concord(
        dir.path(),
        &["keys", "rotate-dek", "--resume", "--wait"],
        &db,
    );
    assert!(ok, "{err}");
    assert!(out.contains("(100%)"), "{out}");
    assert!(out.contains("re-encryption finished"), "{out}");
    let access = sign_in(&client, &server.base, "keeper@example.org").await;
    let done = status(&client, &server.base, &access).await["rotations"][0].clone();
    assert_eq!(done["state"], "finished", "{done}");
    // Resumed, not restarted: every message was examined exactly once.
    let messages = done["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "messages")
        .cloned()
        .unwrap();
    assert_eq!(messages["done"], 41, "{done}");
    assert!(messages["reencrypted"].as_i64().unwrap() <= 40, "{done}");
    assert!(stored_versions(&db, bodies).await.iter().all(|&v| v == 2));
    let emails = "SELECT email_enc FROM users";
    assert!(stored_versions(&db, emails).await.iter().all(|&v| v == 2));
    for column in [
        "SELECT name_enc FROM workspaces",
        "SELECT slug_enc FROM workspaces",
        "SELECT name_enc FROM channels",
        "SELECT topic_enc FROM channels",
        "SELECT purpose_enc FROM channels",
        "SELECT name_enc FROM roles",
        "SELECT description_enc FROM roles",
        "SELECT user_agent_enc FROM sessions",
        "SELECT ip_enc FROM sessions",
        "SELECT client_msg_id_enc FROM messages",
    ] {
        let versions = stored_versions(&db, column).await;
        assert!(
            !versions.is_empty() && versions.iter().all(|&v| v == 2),
            "{column}: {versions:?}"
        );
    }
    named.read_back(&client, &server.base).await;

    // Everything reads back.
    let history: Value = client
        .get(format!(
            "{}/api/v1/channels/{ch}/messages?limit=100",
            server.base
        ))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let texts: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert!(texts.contains(&"before rotation 0") && texts.contains(&"after rotation"));
    assert_eq!(texts.len(), 41);

    // The rotation and the job's end are audited; the log verifies while the server runs.
    let (ok, out, err) = concord(dir.path(), &["audit", "verify"], &db);
    assert!(ok, "{out}{err}");
    let events: Value = client
        .get(format!("{}/api/v1/audit/events?limit=1000", server.base))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "keys.rotate_dek").count(),
        1
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "keys.reencrypt").count(),
        1
    );
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_while_the_server_runs_sqlite() {
    rotation_while_the_server_runs(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_while_the_server_runs_postgres() {
    rotation_while_the_server_runs(Backend::Postgres).await;
}

both_backends! {
    async fn a_system_admin_rotates_data_keys_through_the_api(app) {
        let admin = app.bootstrap_admin().await;
        app.create_user(&admin, "member@example.org", "Member").await;
        let member = app.login("member@example.org", PASSWORD).await;
        app.post("/api/v1/admin/keys/rotate-dek", Some(&member.access), json!({}))
            .await
            .expect_error(403, "forbidden");
        let ws = app.create_workspace(&admin, "Ward").await;
        app.post(&format!("/api/v1/workspaces/{ws}/invitations"), Some(&admin.access),
            json!({"email": "invitee@example.org"})).await.expect(201);
        let r = app.post("/api/v1/admin/keys/rotate-dek", Some(&admin.access), json!({})).await;
        let rotation = r.expect(202).clone();
        let id = rotation["id"].as_str().unwrap().to_owned();
        assert!(rotation["scopes"].as_i64().unwrap() >= 2, "{rotation}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let done = loop {
            let s = app.get("/api/v1/admin/keys/status", &admin.access).await.expect(200).clone();
            let r = s["rotations"][0].clone();
            assert_eq!(r["id"], id.as_str());
            if r["state"] == "finished" {
                break s;
            }
            assert!(Instant::now() < deadline, "not finished: {s}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let users = done["rotations"][0]["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["target"] == "users")
            .cloned()
            .unwrap();
        assert_eq!(users["done"], 2, "{done}");
        assert_eq!(users["reencrypted"], 2, "{done}");
        assert!(done["keys"]["retired_versions"].as_i64().unwrap() >= 2, "{done}");
        let invitations = done["rotations"][0]["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["target"] == "invitations")
            .cloned()
            .unwrap();
        assert_eq!(invitations["reencrypted"], 1, "{done}");
        let listed = app.get(&format!("/api/v1/workspaces/{ws}/invitations"), &admin.access).await;
        assert_eq!(listed.expect(200)[0]["email"], "invitee@example.org");
        // Profiles read back under the new keys.
        let me = app.get("/api/v1/users/me", &member.access).await.expect(200).clone();
        assert_eq!(me["display_name"], "Member");
        app.get("/api/v1/admin/keys/status", &member.access)
            .await
            .expect_error(403, "forbidden");
        let events = app
            .get("/api/v1/audit/events?action=keys.rotate_dek", &admin.access)
            .await
            .expect(200)
            .clone();
        assert_eq!(events["events"].as_array().unwrap().len(), 1, "{events}");
        assert_eq!(events["events"][0]["actor_id"], admin.user_id.as_str());
        let denials = app
            .get("/api/v1/audit/events?action=permission.denied", &admin.access)
            .await
            .expect(200)
            .clone();
        assert!(denials["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["details"]["permission"] == "keys.manage"), "{denials}");
    }
}
