//! The audit log: every action recorded once, the chain detects tampering, exports verify
//! offline with the public key alone.

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::{token, Db, Env};
use reqwest::Method;
use serde_json::{json, Value};

const ADMIN: &str = "admin@example.org";

/// A log with a few dozen entries and checkpoints, server stopped.
async fn populated(db: Db) -> Env {
    let env = Env::new(db).await;
    let app = env.start().await;
    let admin = token(&app.setup_admin(ADMIN, "Admin").await);
    for i in 0..4 {
        app.create_user(
            &admin,
            &format!("u{i}@example.org"),
            &format!("User {i}"),
            None,
        )
        .await;
    }
    let (status, _) = app
        .post(
            "/api/v1/workspaces",
            Some(&admin),
            json!({"name": "Ops", "slug": "ops"}),
        )
        .await;
    assert_eq!(status, 201);
    let user = token(&app.login("u1@example.org").await);
    let (status, _) = app.get("/api/v1/users", &user).await;
    assert_eq!(status, 403);
    app.stop().await;
    env
}

async fn verify(env: &Env) -> Result<i64, concord::audit::verify::ChainError> {
    let store = env.store().await;
    let result = concord::audit::service::verify_live(&store).await.unwrap();
    store.close().await;
    result.map(|v| v.last_seq)
}

fn disable_triggers(db: Db) -> &'static str {
    match db {
        Db::Sqlite => "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete; \
                       DROP TRIGGER audit_checkpoints_no_update; DROP TRIGGER audit_checkpoints_no_delete;",
        Db::Postgres => "ALTER TABLE audit_events DISABLE TRIGGER USER; \
                         ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;",
    }
}

async fn the_database_refuses_changes_to_the_log(db: Db) {
    let env = populated(db).await;
    assert!(
        env.raw_refused("UPDATE audit_events SET action = 'x' WHERE seq = 2")
            .await
    );
    assert!(
        env.raw_refused("DELETE FROM audit_events WHERE seq = 2")
            .await
    );
    assert!(env.raw_refused("DELETE FROM audit_checkpoints").await);
    if db == Db::Postgres {
        assert!(env.raw_refused("TRUNCATE audit_events").await);
    }
    assert!(verify(&env).await.is_ok());
}

async fn an_edited_row_is_detected(db: Db) {
    let env = populated(db).await;
    let last = verify(&env).await.expect("intact log verifies");
    assert!(last > 8);
    env.raw(disable_triggers(db)).await;
    env.raw("UPDATE audit_events SET action = 'user.nothing_to_see' WHERE seq = 3")
        .await;
    let err = verify(&env).await.unwrap_err();
    assert_eq!(err.seq, 3, "{err}");
    // The command line names it too, and fails.
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(env.cli_args())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sequence 3"), "{stderr}");
}

async fn a_deleted_row_is_detected(db: Db) {
    let env = populated(db).await;
    env.raw(disable_triggers(db)).await;
    env.raw("DELETE FROM audit_events WHERE seq = 4").await;
    assert_eq!(verify(&env).await.unwrap_err().seq, 4);
}

async fn reordered_rows_are_detected(db: Db) {
    let env = populated(db).await;
    env.raw(disable_triggers(db)).await;
    env.raw(
        "UPDATE audit_events SET seq = -1 WHERE seq = 5; UPDATE audit_events SET seq = 5 WHERE seq = 6; \
         UPDATE audit_events SET seq = 6 WHERE seq = -1;",
    )
    .await;
    assert_eq!(verify(&env).await.unwrap_err().seq, 5);
}

async fn a_cut_tail_is_detected(db: Db) {
    let env = populated(db).await;
    let last = verify(&env).await.unwrap();
    env.raw(disable_triggers(db)).await;
    env.raw(&format!(
        "DELETE FROM audit_events WHERE seq > {}",
        last - 2
    ))
    .await;
    let err = verify(&env).await.unwrap_err();
    assert_eq!(err.seq, last - 1, "{err}");
}

async fn a_forged_checkpoint_is_detected(db: Db) {
    let env = populated(db).await;
    env.raw(disable_triggers(db)).await;
    // Rewrite entry 2 and recompute nothing; then claim a checkpoint over the altered chain.
    let forged_sig = match db {
        Db::Sqlite => format!("X'{}'", "00".repeat(64)),
        Db::Postgres => format!("'\\x{}'", "00".repeat(64)),
    };
    env.raw(&format!(
        "INSERT INTO audit_checkpoints (seq, head_hash, signed_at, key_version, signature) \
         SELECT seq, hash, '2030-01-01T00:00:00.000000Z', 1, {forged_sig} FROM audit_events WHERE seq = 2"
    ))
    .await;
    let err = verify(&env).await.unwrap_err();
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

async fn every_action_is_recorded_once(db: Db) {
    let env = Env::new(db).await;
    let app = env.start().await;
    let admin_pair = app.setup_admin(ADMIN, "Admin").await;
    let admin = token(&admin_pair);
    let admin_id = admin_pair["user_id"].as_str().unwrap().to_owned();
    let bo = app.create_user(&admin, "bo@example.org", "Bo", None).await;
    let bo_id = bo["id"].as_str().unwrap().to_owned();
    app.create_user(&admin, "locky@example.org", "Locky", None)
        .await;
    // Three failures lock the account (threshold 3 in tests); the fourth attempt is refused.
    for _ in 0..3 {
        let (s, _) = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": "locky@example.org", "password": "wrong password"}),
            )
            .await;
        assert_eq!(s, 401);
    }
    let (s, _) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "locky@example.org", "password": "wrong password"}),
        )
        .await;
    assert_eq!(s, 429);
    let bo_pair = app.login("bo@example.org").await;
    let bo_token = token(&bo_pair);
    let (s, _) = app.get("/api/v1/users", &bo_token).await;
    assert_eq!(s, 403);
    let (s, _) = app
        .send(
            Method::PUT,
            &format!("/api/v1/users/{bo_id}/system-role"),
            &admin,
            Some(json!({"role": "compliance_officer"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, ws) = app
        .post(
            "/api/v1/workspaces",
            Some(&admin),
            json!({"name": "Ops", "slug": "ops"}),
        )
        .await;
    assert_eq!(s, 201);
    let ws_id = ws["id"].as_str().unwrap().to_owned();
    let (s, _) = app
        .send(
            Method::PATCH,
            &format!("/api/v1/workspaces/{ws_id}"),
            &admin,
            Some(json!({"name": "Operations"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, inv) = app
        .post(
            &format!("/api/v1/workspaces/{ws_id}/invitations"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(s, 201, "{inv}");
    let (s, _) = app
        .send(
            Method::DELETE,
            &format!(
                "/api/v1/workspaces/{ws_id}/invitations/{}",
                inv["id"].as_str().unwrap()
            ),
            &admin,
            None,
        )
        .await;
    assert_eq!(s, 204);
    let refresh = bo_pair["refresh_token"].as_str().unwrap().to_owned();
    let (s, _) = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(s, 401);
    let (s, _) = app
        .send(Method::POST, "/api/v1/auth/logout", &admin, None)
        .await;
    assert!(s < 300, "logout {s}");
    let admin = token(&app.login(ADMIN).await);
    let (s, _) = app
        .send(
            Method::DELETE,
            &format!("/api/v1/users/{bo_id}/sessions"),
            &admin,
            None,
        )
        .await;
    assert_eq!(s, 200);
    let events = app.audit_events(&admin).await;
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

async fn an_export_verifies_offline_and_names_tampering(db: Db) {
    let env = Env::new(db).await;
    let app = env.start().await;
    let admin = token(&app.setup_admin(ADMIN, "Admin").await);
    for i in 0..7 {
        app.create_user(&admin, &format!("x{i}@example.org"), "X", None)
            .await;
    }
    let resp = app
        .client
        .get(app.url("/api/v1/audit/export?format=jsonl"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let export = resp.text().await.unwrap();
    let (_, csv) = {
        let r = app
            .client
            .get(app.url("/api/v1/audit/export?format=csv"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    };
    assert!(csv.starts_with("record,seq,"));
    let events = app.audit_events(&admin).await;
    assert_eq!(count(&events, "audit.export", "allowed", None), 2);
    app.stop().await;
    assert!(export
        .lines()
        .any(|l| l.contains("\"type\":\"checkpoint\"")));

    let dir = tempfile::tempdir().unwrap();
    let export_path = dir.path().join("export.jsonl");
    std::fs::write(&export_path, &export).unwrap();
    let key = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(env.cli_args())
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
    std::fs::write(&bad_path, tampered.join("\n")).unwrap();
    let bad = run(&bad_path);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("sequence 4"), "{stderr}");

    let cut: Vec<&str> = export
        .lines()
        .filter(|l| !(l.contains("\"type\":\"event\"") && l.contains("\"seq\":9,")))
        .collect();
    let cut_path = dir.path().join("cut.jsonl");
    std::fs::write(&cut_path, cut.join("\n")).unwrap();
    let out = run(&cut_path);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sequence 9"));
}

/// Runs the `concord` binary against `env`; returns (success, stdout, stderr).
fn cli(env: &Env, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(env.cli_args())
        .args(args)
        .env("CONCORD_LOG__FILTER", "warn")
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

async fn a_rotated_signing_key_verifies_live_and_offline(db: Db) {
    let env = Env::new(db).await;
    let app = env.start().await;
    let admin = token(&app.setup_admin(ADMIN, "Admin").await);
    for i in 0..6 {
        app.create_user(&admin, &format!("r{i}@example.org"), "Before", None)
            .await;
    }
    // Rotated from the command line while the server runs: the server signs its next
    // checkpoints with the new key without a restart.
    let (ok, out, err) = cli(&env, &["keys", "rotate-audit-key"]);
    assert!(ok, "{err}");
    assert!(out.contains("key version 2 (was 1)"), "{out}");
    for i in 0..6 {
        app.create_user(&admin, &format!("s{i}@example.org"), "After", None)
            .await;
    }
    let export = app
        .client
        .get(app.url("/api/v1/audit/export?format=jsonl"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = app.audit_events(&admin).await;
    assert_eq!(count(&events, "keys.rotate_audit_key", "allowed", None), 1);
    // The running server's view: both versions, oldest first.
    let (status, keys) = app.get("/api/v1/admin/keys/status", &admin).await;
    assert_eq!(status, 200);
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
    let (ok, history, err) = cli(&env, &["audit", "public-key"]);
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
    let (ok, out, err) = cli(&env, &["audit", "verify"]);
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
    let (ok, out) = verify_file(dir.path(), &tampered.join("\n"), &history);
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
    let (ok, out) = verify_file(dir.path(), &relabelled.join("\n"), &history);
    assert!(!ok);
    assert!(out.contains(&format!("sequence {first_new}")), "{out}");
}

both_backends!(
    the_database_refuses_changes_to_the_log,
    an_edited_row_is_detected,
    a_deleted_row_is_detected,
    reordered_rows_are_detected,
    a_cut_tail_is_detected,
    a_forged_checkpoint_is_detected,
    every_action_is_recorded_once,
    an_export_verifies_offline_and_names_tampering,
    a_rotated_signing_key_verifies_live_and_offline,
);
