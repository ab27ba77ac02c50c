//! The audit log: every action recorded once, the chain detects tampering, exports verify
//! offline with the public key alone.

use std::collections::HashMap;
use std::process::Command;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use concord::audit::chain::{entry_hash, GENESIS};
use concord::audit::export::{parse_public_keys, verify_export, EventLine, Header};
use concord::config::Config;
use concord::store::audit::{AuditFields, PendingAudit};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{both_backends, spawn_app_with, Backend, TestApp, PASSWORD};

/// The first administrator's address (see `TestApp::bootstrap_admin`).
const ADMIN: &str = "admin@example.org";

/// Checkpoints every 5 entries, so a short test sees several; lockout after 3 failures.
fn settings(config: &mut Config) {
    config.auth.lockout_threshold = 3;
    config.audit.checkpoint_every = 5;
}

/// A server with the audit settings of these tests.
async fn audited(backend: Backend) -> TestApp {
    spawn_app_with(backend, settings).await
}

/// A log with a few dozen entries and checkpoints, server stopped.
async fn populated(backend: Backend) -> TestApp {
    let mut app = audited(backend).await;
    let admin = app.bootstrap_admin().await;
    for i in 0..4 {
        app.create_user(&admin, &format!("u{i}@example.org"), &format!("User {i}"))
            .await;
    }
    app.post(
        "/api/v1/workspaces",
        Some(&admin.access),
        json!({"name": "Ops", "slug": "ops"}),
    )
    .await
    .expect(201);
    let user = app.login("u1@example.org", PASSWORD).await;
    app.get("/api/v1/users", &user.access).await.expect(403);
    app.stop().await;
    app
}

/// Runs raw SQL with the table owner's rights; it must succeed.
async fn raw(app: &TestApp, sql: &str) {
    app.raw_sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Whether the database refuses `sql`, even with the table owner's rights.
async fn refused_sql(app: &TestApp, sql: &str) -> bool {
    app.raw_sql(sql).await.is_err()
}

async fn verify(app: &TestApp) -> Result<i64, concord::audit::verify::ChainError> {
    let store = app.open_store().await;
    let result = concord::audit::service::verify_live(&store).await.unwrap();
    store.close().await;
    result.map(|v| v.last_seq)
}

fn disable_triggers(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete; \
                       DROP TRIGGER audit_checkpoints_no_update; DROP TRIGGER audit_checkpoints_no_delete;",
        Backend::Postgres => "ALTER TABLE audit_events DISABLE TRIGGER USER; \
                         ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;",
    }
}

async fn the_database_refuses_changes_to_the_log(backend: Backend) {
    let app = populated(backend).await;
    assert!(refused_sql(&app, "UPDATE audit_events SET action = 'x' WHERE seq = 2").await);
    assert!(refused_sql(&app, "DELETE FROM audit_events WHERE seq = 2").await);
    assert!(refused_sql(&app, "DELETE FROM audit_checkpoints").await);
    if backend == Backend::Postgres {
        assert!(refused_sql(&app, "TRUNCATE audit_events").await);
    }
    assert!(verify(&app).await.is_ok());
}

async fn an_edited_row_is_detected(backend: Backend) {
    let app = populated(backend).await;
    let last = verify(&app).await.expect("intact log verifies");
    assert!(last > 8);
    raw(&app, disable_triggers(backend)).await;
    raw(
        &app,
        "UPDATE audit_events SET action = 'user.nothing_to_see' WHERE seq = 3",
    )
    .await;
    let err = verify(&app).await.unwrap_err();
    assert_eq!(err.seq, 3, "{err}");
    // The command line names it too, and fails.
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(app.cli_args())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sequence 3"), "{stderr}");
}

async fn a_deleted_row_is_detected(backend: Backend) {
    let app = populated(backend).await;
    raw(&app, disable_triggers(backend)).await;
    raw(&app, "DELETE FROM audit_events WHERE seq = 4").await;
    assert_eq!(verify(&app).await.unwrap_err().seq, 4);
}

async fn reordered_rows_are_detected(backend: Backend) {
    let app = populated(backend).await;
    raw(&app, disable_triggers(backend)).await;
    raw(
        &app,
        "UPDATE audit_events SET seq = -1 WHERE seq = 5; UPDATE audit_events SET seq = 5 WHERE seq = 6; \
         UPDATE audit_events SET seq = 6 WHERE seq = -1;",
    )
    .await;
    assert_eq!(verify(&app).await.unwrap_err().seq, 5);
}

async fn a_cut_tail_is_detected(backend: Backend) {
    let app = populated(backend).await;
    let last = verify(&app).await.unwrap();
    raw(&app, disable_triggers(backend)).await;
    raw(
        &app,
        &format!("DELETE FROM audit_events WHERE seq > {}", last - 2),
    )
    .await;
    let err = verify(&app).await.unwrap_err();
    assert_eq!(err.seq, last - 1, "{err}");
}

async fn a_forged_checkpoint_is_detected(backend: Backend) {
    let app = populated(backend).await;
    raw(&app, disable_triggers(backend)).await;
    // Rewrite entry 2 and recompute nothing; then claim a checkpoint over the altered chain.
    let forged_sig = match backend {
        Backend::Sqlite => format!("X'{}'", "00".repeat(64)),
        Backend::Postgres => format!("'\\x{}'", "00".repeat(64)),
    };
    raw(&app, &format!(
        "INSERT INTO audit_checkpoints (seq, head_hash, signed_at, key_version, signature) \
         SELECT seq, hash, '2030-01-01T00:00:00.000000Z', 1, {forged_sig} FROM audit_events WHERE seq = 2"
    ))
    .await;
    let err = verify(&app).await.unwrap_err();
    assert_eq!(err.seq, 2, "{err}");
    assert!(err.reason.contains("signature"), "{err}");
}

fn count(events: &[Value], action: &str, outcome: &str, actor: Option<&str>) -> usize {
    events
        .iter()
        .filter(|e| {
            e["action"] == action
                && e["outcome"] == outcome
                && actor.is_none_or(|a| e["actor_id"].as_str() == Some(a))
        })
        .count()
}

async fn every_action_is_recorded_once(backend: Backend) {
    let mut app = audited(backend).await;
    let admin = app.bootstrap_admin().await;
    let admin_id = admin.user_id.clone();
    let bo_id = app.create_user(&admin, "bo@example.org", "Bo").await;
    app.create_user(&admin, "locky@example.org", "Locky").await;
    // Three failures lock the account (threshold 3 in tests); the fourth attempt is refused.
    let wrong = json!({"email": "locky@example.org", "password": "wrong password"});
    for _ in 0..3 {
        app.post("/api/v1/auth/login", None, wrong.clone())
            .await
            .expect(401);
    }
    app.post("/api/v1/auth/login", None, wrong)
        .await
        .expect(429);
    let bo = app.login("bo@example.org", PASSWORD).await;
    app.get("/api/v1/users", &bo.access).await.expect(403);
    app.put(
        &format!("/api/v1/users/{bo_id}/system-role"),
        &admin.access,
        json!({"role": "compliance_officer"}),
    )
    .await
    .expect(200);
    let ws = app
        .post(
            "/api/v1/workspaces",
            Some(&admin.access),
            json!({"name": "Ops", "slug": "ops"}),
        )
        .await;
    let ws_id = ws.expect(201)["id"].as_str().unwrap().to_owned();
    app.call(
        Method::PATCH,
        &format!("/api/v1/workspaces/{ws_id}"),
        Some(&admin.access),
        Some(json!({"name": "Operations"})),
    )
    .await
    .expect(200);
    let inv = app
        .post(
            &format!("/api/v1/workspaces/{ws_id}/invitations"),
            Some(&admin.access),
            json!({}),
        )
        .await;
    let inv_id = inv.expect(201)["id"].as_str().unwrap().to_owned();
    app.delete(
        &format!("/api/v1/workspaces/{ws_id}/invitations/{inv_id}"),
        &admin.access,
    )
    .await
    .expect(204);
    let refresh = json!({"refresh_token": bo.refresh});
    app.post("/api/v1/auth/refresh", None, refresh.clone())
        .await
        .expect(200);
    app.post("/api/v1/auth/refresh", None, refresh)
        .await
        .expect(401);
    let out = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&admin.access),
            None,
        )
        .await;
    assert!(out.status.as_u16() < 300, "logout {}", out.status);
    let admin = app.login(ADMIN, PASSWORD).await;
    app.delete(&format!("/api/v1/users/{bo_id}/sessions"), &admin.access)
        .await
        .expect(200);
    let events = app.audit_events(&admin.access).await;
    app.stop().await;

    let by_admin = Some(admin_id.as_str());
    let expected: &[(&str, &str, Option<&str>, usize)] = &[
        ("setup.complete", "allowed", None, 1),
        ("auth.sign_in", "allowed", by_admin, 2),
        ("auth.sign_in", "allowed", Some(bo_id.as_str()), 1),
        ("user.create", "allowed", by_admin, 2),
        ("auth.sign_in", "failed", None, 3),
        ("auth.lockout", "allowed", None, 1),
        ("auth.sign_in", "denied", None, 1),
        ("permission.denied", "denied", Some(bo_id.as_str()), 1),
        ("user.system_role.set", "allowed", by_admin, 1),
        ("workspace.create", "allowed", by_admin, 1),
        ("workspace.rename", "allowed", by_admin, 1),
        ("invitation.create", "allowed", by_admin, 1),
        ("invitation.revoke", "allowed", by_admin, 1),
        ("auth.refresh", "allowed", Some(bo_id.as_str()), 1),
        ("auth.refresh_reuse", "denied", Some(bo_id.as_str()), 1),
        ("auth.sign_out", "allowed", by_admin, 1),
        ("sessions.revoke_all", "allowed", by_admin, 1),
    ];
    let mut problems = Vec::new();
    for (action, outcome, actor, n) in expected {
        let got = count(&events, action, outcome, *actor);
        if got != *n {
            problems.push(format!(
                "{action}/{outcome}/{actor:?}: expected {n}, got {got}"
            ));
        }
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for e in &events {
        *seen
            .entry(e["action"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    assert!(problems.is_empty(), "{problems:#?}\nall: {seen:?}");
    // Personal fields are decrypted for the compliance officer.
    let denial = events
        .iter()
        .find(|e| e["action"] == "permission.denied")
        .unwrap();
    assert_eq!(denial["details"]["permission"], "users.read");
    assert_eq!(denial["ip"], "127.0.0.1");
}

async fn an_export_verifies_offline_and_names_tampering(backend: Backend) {
    let mut app = audited(backend).await;
    let admin = app.bootstrap_admin().await;
    for i in 0..7 {
        app.create_user(&admin, &format!("x{i}@example.org"), "X")
            .await;
    }
    let resp = app
        .client
        .get(app.url("/api/v1/audit/export?format=jsonl"))
        .bearer_auth(&admin.access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let export = resp.text().await.unwrap();
    let (_, csv) = {
        let r = app
            .client
            .get(app.url("/api/v1/audit/export?format=csv"))
            .bearer_auth(&admin.access)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    };
    assert!(csv.starts_with("record,seq,"));
    let events = app.audit_events(&admin.access).await;
    assert_eq!(count(&events, "audit.export", "allowed", None), 2);
    app.stop().await;
    assert!(export
        .lines()
        .any(|l| l.contains("\"type\":\"checkpoint\"")));

    let dir = tempfile::tempdir().unwrap();
    let export_path = dir.path().join("export.jsonl");
    std::fs::write(&export_path, &export).unwrap();
    let key = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(app.cli_args())
        .args(["audit", "public-key"])
        .output()
        .unwrap();
    assert!(
        key.status.success(),
        "{}",
        String::from_utf8_lossy(&key.stderr)
    );
    let key_path = dir.path().join("audit.pub");
    std::fs::write(&key_path, &key.stdout).unwrap();

    // Offline: no data dir, no database, only the export and the public key.
    let run = |file: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_concord"))
            .current_dir(dir.path())
            .args(["audit", "verify", "--file"])
            .arg(file)
            .arg("--public-key")
            .arg(&key_path)
            .output()
            .unwrap()
    };
    let ok = run(&export_path);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let tampered: Vec<String> = export
        .lines()
        .map(|l| {
            if l.contains("\"seq\":4,") && l.contains("\"type\":\"event\"") {
                l.replace("\"outcome\":\"allowed\"", "\"outcome\":\"denied\"")
            } else {
                l.to_owned()
            }
        })
        .collect();
    let bad_path = dir.path().join("tampered.jsonl");
    std::fs::write(&bad_path, tampered.join("\n") + "\n").unwrap();
    let bad = run(&bad_path);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("sequence 4"), "{stderr}");

    let cut: Vec<&str> = export
        .lines()
        .filter(|l| !(l.contains("\"type\":\"event\"") && l.contains("\"seq\":9,")))
        .collect();
    let cut_path = dir.path().join("cut.jsonl");
    std::fs::write(&cut_path, cut.join("\n") + "\n").unwrap();
    let out = run(&cut_path);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sequence 9"));
}

/// Runs the `concord` binary against `app`'s data; returns (success, stdout, stderr).
fn cli(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(app.cli_args())
        .args(args)
        .env("CONCORD_LOG__FILTER", "warn")
        // The deployment's own setting (the servers these tests start use 5).
        .env("CONCORD_AUDIT__CHECKPOINT_EVERY", "5")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn verify_file(dir: &std::path::Path, export: &str, keys: &str) -> (bool, String) {
    let export_path = dir.join("export.jsonl");
    let key_path = dir.join("audit.pub");
    std::fs::write(&export_path, export).unwrap();
    std::fs::write(&key_path, keys).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .current_dir(dir)
        .args(["audit", "verify", "--file"])
        .arg(&export_path)
        .arg("--public-key")
        .arg(&key_path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

async fn a_rotated_signing_key_verifies_live_and_offline(backend: Backend) {
    let mut app = audited(backend).await;
    let admin = app.bootstrap_admin().await;
    for i in 0..6 {
        app.create_user(&admin, &format!("r{i}@example.org"), "Before")
            .await;
    }
    // Rotated from the command line while the server runs: the server signs its next
    // checkpoints with the new key without a restart.
    let (ok, out, err) = cli(&app, &["keys", "rotate-audit-key"]);
    assert!(ok, "{err}");
    assert!(out.contains("key version 2 (was 1)"), "{out}");
    for i in 0..6 {
        app.create_user(&admin, &format!("s{i}@example.org"), "After")
            .await;
    }
    let export = app
        .client
        .get(app.url("/api/v1/audit/export?format=jsonl"))
        .bearer_auth(&admin.access)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = app.audit_events(&admin.access).await;
    assert_eq!(count(&events, "keys.rotate_audit_key", "allowed", None), 1);
    // The running server's view: both versions, oldest first.
    let keys = app.get("/api/v1/admin/keys/status", &admin.access).await;
    let keys = keys.expect(200);
    assert_eq!(
        keys["audit_signing_keys"].as_array().unwrap().len(),
        2,
        "{keys}"
    );
    app.stop().await;

    let checkpoint_keys: Vec<i64> = export
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "checkpoint")
        .map(|v| v["key_version"].as_i64().unwrap())
        .collect();
    assert!(
        checkpoint_keys.contains(&1) && checkpoint_keys.contains(&2),
        "{checkpoint_keys:?}"
    );
    assert!(
        checkpoint_keys.windows(2).all(|w| w[0] <= w[1]),
        "{checkpoint_keys:?}"
    );

    // The public key file holds the history; the live log and the export verify across it.
    let (ok, history, err) = cli(&app, &["audit", "public-key"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = history
        .lines()
        .filter(|l| l.starts_with("concord-audit-key "))
        .collect();
    assert_eq!(lines.len(), 2, "{history}");
    assert!(
        lines[0].starts_with("concord-audit-key 1 ")
            && lines[1].starts_with("concord-audit-key 2 ")
    );
    let (ok, out, err) = cli(&app, &["audit", "verify"]);
    assert!(ok, "{out}{err}");
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = verify_file(dir.path(), &export, &history);
    assert!(ok, "{out}");

    // Only the old key: the first checkpoint signed by the new one is named.
    let first_new = export
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "checkpoint" && v["key_version"] == 2)
        .unwrap()["seq"]
        .as_i64()
        .unwrap();
    let (ok, out) = verify_file(dir.path(), &export, lines[0]);
    assert!(!ok);
    assert!(out.contains(&format!("sequence {first_new}")), "{out}");

    // Tampering after the rotation is still detected and named.
    let rotated_seq = events
        .iter()
        .find(|e| e["action"] == "keys.rotate_audit_key")
        .unwrap()["seq"]
        .as_i64()
        .unwrap();
    let tampered: Vec<String> = export
        .lines()
        .map(|l| {
            if l.contains(&format!("\"seq\":{rotated_seq},")) && l.contains("\"type\":\"event\"") {
                l.replace("\"outcome\":\"allowed\"", "\"outcome\":\"denied\"")
            } else {
                l.to_owned()
            }
        })
        .collect();
    let (ok, out) = verify_file(dir.path(), &(tampered.join("\n") + "\n"), &history);
    assert!(!ok);
    assert!(out.contains(&format!("sequence {rotated_seq}")), "{out}");

    // A checkpoint signed after the rotation but relabelled as the old key does not verify.
    let relabelled: Vec<String> = export
        .lines()
        .map(|l| {
            if l.contains("\"type\":\"checkpoint\"") && l.contains(&format!("\"seq\":{first_new},"))
            {
                l.replace("\"key_version\":2", "\"key_version\":1")
            } else {
                l.to_owned()
            }
        })
        .collect();
    let (ok, out) = verify_file(dir.path(), &(relabelled.join("\n") + "\n"), &history);
    assert!(!ok);
    assert!(out.contains(&format!("sequence {first_new}")), "{out}");
}

/// An export taken apart the way someone editing it would: typed lines, put back together in
/// their canonical encoding (so only what was changed on purpose differs).
#[derive(Clone)]
struct Parts {
    header: Header,
    events: Vec<EventLine>,
    checkpoints: Vec<String>,
    seal: Option<String>,
}

impl Parts {
    fn of(export: &str) -> Parts {
        let mut lines = export.lines();
        let header = serde_json::from_str(lines.next().unwrap()).unwrap();
        let mut parts = Parts {
            header,
            events: Vec::new(),
            checkpoints: Vec::new(),
            seal: None,
        };
        for line in lines {
            let value: Value = serde_json::from_str(line).unwrap();
            match value["type"].as_str().unwrap() {
                "event" => parts.events.push(serde_json::from_str(line).unwrap()),
                "checkpoint" => parts.checkpoints.push(line.to_owned()),
                "seal" => parts.seal = Some(line.to_owned()),
                other => panic!("unexpected line type {other}"),
            }
        }
        parts
    }

    fn render(&self) -> String {
        let mut out = serde_json::to_string(&self.header).unwrap() + "\n";
        for e in &self.events {
            out += &(serde_json::to_string(e).unwrap() + "\n");
        }
        for c in self.checkpoints.iter().chain(&self.seal) {
            out += &(c.clone() + "\n");
        }
        out
    }

    fn checkpoint_seqs(&self) -> Vec<i64> {
        self.checkpoints
            .iter()
            .map(|c| {
                serde_json::from_str::<Value>(c).unwrap()["seq"]
                    .as_i64()
                    .unwrap()
            })
            .collect()
    }

    /// The index of the event with sequence number `seq`.
    fn at(&self, seq: i64) -> usize {
        self.events.iter().position(|e| e.seq == seq).unwrap()
    }

    /// Recomputes every hash from event index `from` on, as a forger without the key can.
    fn rehash(&mut self, from: usize) {
        let mut prev = match from {
            0 => hex::decode(&self.header.prev_hash).unwrap(),
            i => hex::decode(&self.events[i - 1].hash).unwrap(),
        };
        for e in &mut self.events[from..] {
            let hash = entry_hash(&prev, e.seq, &fields_of(e));
            e.prev_hash = hex::encode(&prev);
            e.hash = hex::encode(hash);
            prev = hash.to_vec();
        }
    }

    /// Appends a well-chained entry after the last one.
    fn append_forged(&mut self) {
        let mut forged = self.events.last().unwrap().clone();
        forged.seq += 1;
        forged.id = uuid::Uuid::now_v7().to_string();
        forged.action = "user.nothing_to_see".into();
        self.events.push(forged);
        self.rehash(self.events.len() - 1);
    }
}

fn fields_of(e: &EventLine) -> AuditFields {
    let b64 = |v: &Option<String>| v.as_ref().map(|s| STANDARD.decode(s).unwrap());
    AuditFields {
        id: e.id.clone(),
        occurred_at: e.occurred_at.clone(),
        actor_type: e.actor_type.clone(),
        actor_id: e.actor_id.clone(),
        session_id: e.session_id.clone(),
        action: e.action.clone(),
        target_type: e.target_type.clone(),
        target_id: e.target_id.clone(),
        workspace_id: e.workspace_id.clone(),
        outcome: e.outcome.clone(),
        subject: e.subject.clone(),
        ip_enc: b64(&e.ip_enc),
        details_enc: b64(&e.details_enc),
    }
}

async fn fetch_export(app: &TestApp, token: &str, query: &str) -> String {
    let resp = app
        .client
        .get(app.url(&format!("/api/v1/audit/export?format=jsonl{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// The verifier's complaint about `text`, which must not verify.
fn refused(text: &str, keys: &HashMap<i64, Vec<u8>>) -> String {
    match verify_export(text, keys) {
        Ok(v) => panic!("a tampered export verified: {v:?}\n{text}"),
        Err(e) => e.to_string(),
    }
}

async fn an_export_is_sealed_and_changes_to_its_tail_or_header_are_refused(backend: Backend) {
    let mut app = audited(backend).await;
    let admin = app.bootstrap_admin().await;
    for i in 0..9 {
        app.create_user(&admin, &format!("t{i}@example.org"), "T")
            .await;
    }
    let export = fetch_export(&app, &admin.access, "").await;
    let parts = Parts::of(&export);
    // A range ending on an entry no checkpoint covers: the seal covers it.
    let cps = parts.checkpoint_seqs();
    let end = (cps[0] + 1..parts.header.to_seq)
        .rev()
        .find(|s| {
            let (this, after) = (parts.at(*s), parts.at(s + 1));
            !cps.contains(s) && parts.events[after].occurred_at > parts.events[this].occurred_at
        })
        .expect("an entry between checkpoints");
    let next = &parts.events[parts.at(end + 1)].occurred_at;
    let partial = fetch_export(&app, &admin.access, &format!("&to={next}")).await;
    app.stop().await;
    let (ok, keys_text, err) = cli(&app, &["audit", "public-key"]);
    assert!(ok, "{err}");
    let keys = parse_public_keys(&keys_text).unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Untouched, both verify (offline, with the command line too).
    let (ok, out) = verify_file(dir.path(), &export, &keys_text);
    assert!(ok, "{out}");
    let seal: Value = serde_json::from_str(parts.seal.as_deref().expect("a seal")).unwrap();
    assert_eq!(seal["seq"], parts.header.to_seq);
    assert_eq!(
        seal["head_hash"],
        parts.events.last().unwrap().hash.as_str()
    );
    let p = Parts::of(&partial);
    assert_eq!(p.header.to_seq, end, "{partial}");
    assert!(!p.checkpoint_seqs().contains(&end));
    assert_eq!(p.header.filters.to.as_deref(), Some(next.as_str()));
    let (ok, out) = verify_file(dir.path(), &partial, &keys_text);
    assert!(ok, "{out}");

    // The seal removed: nothing vouches for the tail.
    let mut t = parts.clone();
    t.seal = None;
    let (ok, out) = verify_file(dir.path(), &t.render(), &keys_text);
    assert!(!ok);
    assert!(out.contains("ends without its seal"), "{out}");

    // The last checkpoint removed and the entries after the remaining one rewritten with
    // their hashes recomputed: with the seal or without it.
    let mut t = parts.clone();
    t.checkpoints.pop();
    let last_cp = *t.checkpoint_seqs().last().unwrap();
    let i = t.at(last_cp + 1);
    t.events[i].outcome = "denied".into();
    t.rehash(i);
    let err = refused(&t.render(), &keys);
    assert!(
        err.contains("entries after the last checkpoint were altered"),
        "{err}"
    );
    t.seal = None;
    assert!(refused(&t.render(), &keys).contains("ends without its seal"));

    // An entry after the last checkpoint edited and the hashes recomputed (partial range).
    let mut t = p.clone();
    let i = t.at(end);
    t.events[i].action = "user.nothing_to_see".into();
    t.rehash(i);
    let (ok, out) = verify_file(dir.path(), &t.render(), &keys_text);
    assert!(!ok);
    assert!(
        out.contains("seal does not verify") && out.contains("altered"),
        "{out}"
    );

    // A forged entry appended and the header's to_seq raised to include it.
    let mut t = parts.clone();
    t.append_forged();
    t.header.to_seq += 1;
    let err = refused(&t.render(), &keys);
    assert!(err.contains("seal does not verify"), "{err}");
    assert!(err.contains("header's to_seq"), "{err}");

    // An entry beyond the header's to_seq.
    let mut t = parts.clone();
    t.append_forged();
    let err = refused(&t.render(), &keys);
    assert!(err.contains("beyond the header's to_seq"), "{err}");

    // A repeated key: a reader keeping the last one would see an unchanged entry.
    let line = serde_json::to_string(&parts.events[3]).unwrap();
    assert!(line.contains("\"outcome\":\"allowed\""), "{line}");
    let doubled = line.replacen(
        "\"outcome\":\"allowed\"",
        "\"outcome\":\"denied\",\"outcome\":\"allowed\"",
        1,
    );
    let err = refused(&export.replacen(&line, &doubled, 1), &keys);
    assert!(err.contains("duplicate key \"outcome\""), "{err}");
    let (ok, out) = verify_file(dir.path(), &export.replacen(&line, &doubled, 1), &keys_text);
    assert!(!ok && out.contains("duplicate key"), "{out}");

    // The header edited: its range, its filters or its time.
    let mut t = parts.clone();
    t.header.exported_at = "2020-01-01T00:00:00.000000Z".into();
    assert!(refused(&t.render(), &keys).contains("changed after sealing"));
    let mut t = p.clone();
    t.header.filters.to = None;
    assert!(refused(&t.render(), &keys).contains("changed after sealing"));
    let mut t = parts.clone();
    t.header.from_seq = 2;
    t.header.prev_hash = t.events[0].hash.clone();
    t.events.remove(0);
    assert!(refused(&t.render(), &keys).contains("changed after sealing"));

    // Unknown fields and non-canonical encodings.
    let header = export.lines().next().unwrap();
    let extra = header.replacen("{", "{\"note\":\"ok\",", 1);
    assert!(refused(&export.replacen(header, &extra, 1), &keys).contains("unknown field"));
    let spaced = line.replacen("\"seq\":", "\"seq\": ", 1);
    assert!(refused(&export.replacen(&line, &spaced, 1), &keys).contains("canonical"));
    let upper = line.replacen(
        &parts.events[3].hash,
        &parts.events[3].hash.to_uppercase(),
        1,
    );
    assert!(refused(&export.replacen(&line, &upper, 1), &keys).contains("lowercase hex"));
    let cut = &export[..export.len() - 1];
    assert!(refused(cut, &keys).contains("end with a newline"));
}

/// Entries appended straight to the database by someone without the signing key: chained
/// like the writer chains them, never signed.
async fn append_unsigned(app: &TestApp, n: usize) {
    let store = app.open_store().await;
    for _ in 0..n {
        store
            .write(move |tx: &mut concord::store::Tx| {
                Box::pin(async move {
                    tx.audit(PendingAudit {
                        fields: AuditFields {
                            id: uuid::Uuid::now_v7().to_string(),
                            occurred_at: chrono::Utc::now()
                                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                            actor_type: "system".into(),
                            action: "user.nothing_to_see".into(),
                            outcome: "allowed".into(),
                            ..AuditFields::default()
                        },
                        survives_rollback: false,
                    });
                    Ok::<_, concord::store::StoreError>(())
                })
            })
            .await
            .unwrap();
    }
    store.close().await;
}

async fn the_live_log_bounds_its_unsigned_tail(backend: Backend) {
    let app = populated(backend).await;
    let (ok, out, err) = cli(&app, &["audit", "verify"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("unsigned tail: 0 entries after the last checkpoint (bound: 5 entries, 90 s)"),
        "{out}"
    );
    // Within the bound (checkpoint_every = 5 in tests): reported, accepted.
    append_unsigned(&app, 2).await;
    let last = verify(&app).await.unwrap();
    let (ok, out, err) = cli(&app, &["audit", "verify"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("unsigned tail: 2 entries"), "{out}");
    // More than a writer leaves unsigned: refused, naming the first unsigned entry.
    append_unsigned(&app, 6).await;
    let (ok, out, err) = cli(&app, &["audit", "verify"]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("6 entries follow the last signed checkpoint"),
        "{err}"
    );
    // `last` + the command line's own record and checkpoint come before the forged six.
    assert!(err.contains(&format!("sequence {}", last + 2)), "{err}");
}

async fn a_rewritten_database_is_caught_against_the_witness(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let witness = files.path().join("witness.heads");
    let target = witness.display().to_string();
    let mut app = spawn_app_with(backend, |config| {
        settings(config);
        config.audit.witness = Some(target);
    })
    .await;
    let admin = app.bootstrap_admin().await;
    for i in 0..8 {
        app.create_user(&admin, &format!("w{i}@example.org"), "W")
            .await;
    }
    let honest_export = fetch_export(&app, &admin.access, "").await;
    app.stop().await;
    let heads = std::fs::read_to_string(&witness).unwrap();
    let lines: Vec<&str> = heads.lines().collect();
    assert!(lines.len() >= 2, "{heads}");
    assert!(
        lines.iter().all(|l| l.starts_with("concord-audit-head ")),
        "{heads}"
    );
    let witnessed: Vec<i64> = lines
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    let path = witness.display().to_string();
    let (ok, out, err) = cli(&app, &["audit", "verify", "--witness", &path]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!("holds all {} recorded head(s)", lines.len())),
        "{out}"
    );

    // Someone with the database and the keys rewrites entry 3, recomputes every later hash
    // and signs a fresh checkpoint: the log verifies on its own...
    raw(&app, disable_triggers(backend)).await;
    let store = app.open_store().await;
    let records = {
        let mut conn = store.reader().await.unwrap();
        concord::store::audit::range(&mut conn.conn(), 1, i64::MAX, 100_000)
            .await
            .unwrap()
    };
    store.close().await;
    let bytes = |b: &[u8]| match backend {
        Backend::Sqlite => format!("X'{}'", hex::encode(b)),
        Backend::Postgres => format!("'\\x{}'", hex::encode(b)),
    };
    let mut prev = GENESIS.to_vec();
    let mut sql = String::from("DELETE FROM audit_checkpoints;");
    for mut r in records {
        if r.seq == 3 {
            r.fields.action = "user.nothing_to_see".into();
        }
        let hash = entry_hash(&prev, r.seq, &r.fields);
        if r.seq >= 3 {
            sql += &format!(
                "UPDATE audit_events SET action = '{}', prev_hash = {}, hash = {} WHERE seq = {};",
                r.fields.action,
                bytes(&prev),
                bytes(&hash),
                r.seq
            );
        }
        prev = hash.to_vec();
    }
    raw(&app, &sql).await;
    let signer = concord::App::build(app.config.clone()).await.unwrap();
    signer.store().checkpoint().await.unwrap();
    signer.close().await;
    // The removed checkpoints leave a gap wider than the writer allows between the log's
    // start and the new checkpoint: refused, naming it.
    let (ok, out, err) = cli(&app, &["audit", "verify"]);
    assert!(!ok, "{out}");
    assert!(err.contains("checkpoint gap"), "{err}");
    assert!(err.contains("sequence 1:"), "{err}");
    assert!(err.contains("the start of the log"), "{err}");
    let (ok, out, _) = cli(&app, &["audit", "verify", "--witness", &path]);
    assert!(!ok, "{out}");
    let first = witnessed.iter().copied().filter(|s| *s >= 3).min().unwrap();
    assert!(first >= 3);

    // An export of the rewritten log is sealed by the server like any other, so it verifies
    // on its own; against the witness it fails at the same place, while an honest export
    // passes.
    let (ok, keys, err) = cli(&app, &["audit", "public-key"]);
    assert!(ok, "{err}");
    // The same configuration, witness included.
    let mut app = app.restart().await;
    let admin = app.login(ADMIN, PASSWORD).await;
    let rewritten_export = fetch_export(&app, &admin.access, "").await;
    app.stop().await;
    let (ok, out) = verify_file(files.path(), &rewritten_export, &keys);
    assert!(!ok, "{out}");
    assert!(out.contains("checkpoint gap"), "{out}");
    assert!(out.contains("the start of the log"), "{out}");
    let (ok, out) = verify_file_witnessed(files.path(), &rewritten_export, &keys, &witness);
    assert!(!ok, "{out}");
    let (ok, out) = verify_file_witnessed(files.path(), &honest_export, &keys, &witness);
    assert!(ok, "{out}");
    assert!(out.contains("recorded head(s) in its range"), "{out}");
}

fn verify_file_witnessed(
    dir: &std::path::Path,
    export: &str,
    keys: &str,
    witness: &std::path::Path,
) -> (bool, String) {
    let export_path = dir.join("export-witnessed.jsonl");
    let key_path = dir.join("audit-witnessed.pub");
    std::fs::write(&export_path, export).unwrap();
    std::fs::write(&key_path, keys).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .current_dir(dir)
        .args(["audit", "verify", "--file"])
        .arg(&export_path)
        .arg("--public-key")
        .arg(&key_path)
        .arg("--witness")
        .arg(witness)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A URL witness receives each signed head as a JSON POST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_witness_receives_every_signed_head() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let router = axum::Router::new().route(
        "/heads",
        axum::routing::post(move |axum::Json(head): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(head);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let witness = tokio::spawn(async move { axum::serve(listener, router).await });
    let mut app = spawn_app_with(Backend::Sqlite, |config| {
        settings(config);
        config.audit.witness = Some(format!("http://{addr}/heads"));
    })
    .await;
    let admin = app.bootstrap_admin().await;
    for i in 0..6 {
        app.create_user(&admin, &format!("u{i}@example.org"), "U")
            .await;
    }
    app.stop().await;
    witness.abort();
    let mut heads = Vec::new();
    while let Ok(head) = rx.try_recv() {
        heads.push(head);
    }
    assert!(!heads.is_empty());
    let store = app.open_store().await;
    let checkpoints = {
        let mut conn = store.reader().await.unwrap();
        concord::store::audit::checkpoints(&mut conn.conn(), 0, i64::MAX)
            .await
            .unwrap()
    };
    store.close().await;
    // The server stopped after its final checkpoint reached the witness: every one arrived.
    assert_eq!(heads.len(), checkpoints.len(), "{heads:?}");
    for (head, cp) in heads.iter().zip(&checkpoints) {
        assert_eq!(head["type"], "checkpoint");
        assert_eq!(head["seq"], cp.seq);
        assert_eq!(head["head_hash"], hex::encode(&cp.head_hash));
        assert_eq!(head["signature"], STANDARD.encode(&cp.signature));
        assert_eq!(head["key_version"], cp.key_version);
    }
}

/// The command line appends its own record and signs a checkpoint while a server writes:
/// the server, which chains after the head it committed last, sees the chain moved and
/// chains after the new head.
async fn the_chain_stays_whole_when_the_command_line_appends_while_a_server_writes(
    backend: Backend,
) {
    let app = audited(backend).await;
    let admin = &app.bootstrap_admin().await;
    let app = &app;
    for round in 0..3 {
        // Concurrent audited writes, which the server groups into batches.
        let creates = (0..6).map(|i| {
            let email = format!("r{round}u{i}@example.org");
            let name = format!("User {round} {i}");
            async move { app.create_user(admin, &email, &name).await }
        });
        futures::future::join_all(creates).await;
        let (ok, out, err) = cli(app, &["audit", "verify"]);
        assert!(ok, "{out}{err}");
        append_unsigned(app, 1).await;
    }
    app.create_user(admin, "last@example.org", "Last").await;
    let (ok, out, err) = cli(app, &["audit", "verify"]);
    assert!(ok, "{out}{err}");
    verify(app).await.unwrap();
}

async fn officers_verify_the_live_log_over_the_api(backend: Backend) {
    let app = audited(backend).await;
    let admin = app.bootstrap_admin().await;
    let officer_id = app
        .create_user(&admin, "officer@example.org", "Olive Officer")
        .await;
    app.create_user(&admin, "member@example.org", "Max Member")
        .await;
    app.put(
        &format!("/api/v1/users/{officer_id}/system-role"),
        &admin.access,
        json!({"role": "compliance_officer"}),
    )
    .await
    .expect(200);
    let officer = app.login("officer@example.org", PASSWORD).await;
    let member = app.login("member@example.org", PASSWORD).await;

    // Nothing verified yet since the server started.
    let status = app
        .get("/api/v1/audit/verification", &officer.access)
        .await
        .expect(200)
        .clone();
    assert_eq!(status["running"], false, "{status}");
    assert!(status["last"].is_null(), "{status}");

    // Without audit.read: refused, both ways.
    app.post("/api/v1/audit/verify", Some(&member.access), json!({}))
        .await
        .expect_error(403, "forbidden");
    app.get("/api/v1/audit/verification", &member.access)
        .await
        .expect_error(403, "forbidden");

    let result = app
        .post("/api/v1/audit/verify", Some(&officer.access), json!({}))
        .await
        .expect(200)
        .clone();
    assert_eq!(result["ok"], true, "{result}");
    let entries = result["checked_entries"].as_i64().unwrap();
    assert!(entries > 5, "{result}");
    assert!(result["head_seq"].as_i64().unwrap() >= entries, "{result}");
    assert!(result["checkpoints"].as_i64().unwrap() >= 1, "{result}");
    assert!(result["problem"].is_null(), "{result}");
    assert!(result["verified_at"].as_str().is_some(), "{result}");
    assert_eq!(result["verified_by"], officer_id.as_str(), "{result}");

    let status = app
        .get("/api/v1/audit/verification", &officer.access)
        .await
        .expect(200)
        .clone();
    assert_eq!(status["running"], false, "{status}");
    assert_eq!(status["last"]["ok"], true, "{status}");
    assert_eq!(status["last"]["head_seq"], result["head_seq"], "{status}");

    // Each verification is recorded.
    let page = app
        .get("/api/v1/audit/events?action=audit.verify", &officer.access)
        .await
        .expect(200)
        .clone();
    let recorded = page["events"].as_array().unwrap();
    assert_eq!(recorded.len(), 1, "{page}");
    assert_eq!(recorded[0]["outcome"], "allowed", "{page}");
    assert_eq!(recorded[0]["actor_id"], officer_id.as_str(), "{page}");
}

async fn the_api_names_the_first_tampered_entry(backend: Backend) {
    let app = populated(backend).await;
    raw(&app, disable_triggers(backend)).await;
    raw(
        &app,
        "UPDATE audit_events SET action = 'user.nothing_to_see' WHERE seq = 3",
    )
    .await;
    let app = app.restart().await;
    let admin = app.login(ADMIN, PASSWORD).await;
    let result = app
        .post("/api/v1/audit/verify", Some(&admin.access), json!({}))
        .await
        .expect(200)
        .clone();
    assert_eq!(result["ok"], false, "{result}");
    assert_eq!(result["problem"]["seq"], 3, "{result}");
    assert_eq!(result["problem"]["code"], "chain_broken", "{result}");
    assert!(
        result["problem"]["message"]
            .as_str()
            .unwrap()
            .contains("sequence 3"),
        "{result}"
    );
    let status = app
        .get("/api/v1/audit/verification", &admin.access)
        .await
        .expect(200)
        .clone();
    assert_eq!(status["last"]["ok"], false, "{status}");
    assert_eq!(status["last"]["problem"]["seq"], 3, "{status}");
    let page = app
        .get("/api/v1/audit/events?action=audit.verify", &admin.access)
        .await
        .expect(200)
        .clone();
    assert_eq!(page["events"][0]["outcome"], "failed", "{page}");
}

both_backends!(
    officers_verify_the_live_log_over_the_api,
    the_api_names_the_first_tampered_entry,
    the_database_refuses_changes_to_the_log,
    an_edited_row_is_detected,
    a_deleted_row_is_detected,
    reordered_rows_are_detected,
    a_cut_tail_is_detected,
    a_forged_checkpoint_is_detected,
    every_action_is_recorded_once,
    an_export_verifies_offline_and_names_tampering,
    a_rotated_signing_key_verifies_live_and_offline,
    an_export_is_sealed_and_changes_to_its_tail_or_header_are_refused,
    the_live_log_bounds_its_unsigned_tail,
    a_rewritten_database_is_caught_against_the_witness,
    the_chain_stays_whole_when_the_command_line_appends_while_a_server_writes,
);
