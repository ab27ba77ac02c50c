//! Retention beyond messages: files past `files_days`, documents' history past
//! `document_history_days`, records of sessions ended longer ago than `sessions_days`, and the
//! audit log past `audit_days`, cut only at a signed checkpoint. Each deletes exactly what is
//! older and not held, keeps what is held, newer or live, and is audited; the audit log still
//! verifies after its cut. `concord retention run` runs a pass from the command line.
//!
//! Content is made "old" by running the pass at a later time (`now`), as in `retention.rs`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};

use crate::chat::channel;
use crate::docs::{create_doc, YClient};
use crate::harness::{both_backends, spawn_app_with, Backend, Session, TestApp, PASSWORD};

fn configure(c: &mut concord::config::Config) {
    c.retention.allow_explicit_now = true;
    c.retention.interval_seconds = 0;
    // Small writes, so a pass takes several.
    c.retention.batch = 2;
}

async fn spawn(backend: Backend) -> TestApp {
    spawn_app_with(backend, configure).await
}

/// A moment between what was written before and after it.
async fn moment() -> DateTime<Utc> {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let at = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    at
}

fn a_day_after(at: DateTime<Utc>) -> String {
    (at + TimeDelta::days(1)).to_rfc3339()
}

async fn set_policy(app: &TestApp, admin: &Session, ws: &str, retention: Value) {
    app.put(
        &format!("/api/v1/workspaces/{ws}/policy"),
        &admin.access,
        json!({ "retention": retention }),
    )
    .await
    .expect(200);
}

async fn run(app: &TestApp, admin: &Session, ws: &str, now: &str) -> Value {
    app.post(
        &format!("/api/v1/workspaces/{ws}/retention/run"),
        Some(&admin.access),
        json!({ "now": now }),
    )
    .await
    .expect(200)
    .clone()
}

async fn audited(app: &TestApp, admin: &Session, action: &str) -> Vec<Value> {
    app.get(
        &format!("/api/v1/audit/events?action={action}&limit=1000"),
        &admin.access,
    )
    .await
    .expect(200)["events"]
        .as_array()
        .unwrap()
        .clone()
}

async fn upload(app: &TestApp, who: &Session, channel: &str, name: &str) -> String {
    app.upload(
        who,
        channel,
        name,
        format!("wombat notes in {name}").as_bytes(),
    )
    .await
    .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned()
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

/// Whether any stored blob's path names `file`.
fn has_blobs(data_dir: &Path, file: &str) -> bool {
    let mut stack = vec![data_dir.join("blobs")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.to_string_lossy().contains(file) {
                return true;
            }
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    false
}

async fn files_past_their_period_go_unless_held(backend: Backend) {
    let app = spawn(backend).await;
    let t = app.team().await;
    let general = channel(&app, &t.admin, &t.ws, "general", "public").await;
    for who in [&t.ann, &t.bo] {
        app.post(
            &format!("/api/v1/channels/{general}/join"),
            Some(&who.access),
            json!({}),
        )
        .await
        .expect(200);
    }
    let held = upload(&app, &t.ann, &general, "held.txt").await;
    let old_one = upload(&app, &t.bo, &general, "old-one.txt").await;
    let old_two = upload(&app, &t.bo, &general, "old-two.txt").await;
    let cutoff = moment().await;
    let newer = upload(&app, &t.bo, &general, "newer.txt").await;
    assert!(has_blobs(&app.data_dir, &old_one));
    let before = found(&app, &t.bo, &t.ws, "wombat").await;
    for f in [&held, &old_one, &old_two, &newer] {
        assert!(before.contains(f), "{before:?}");
    }

    app.post(
        &format!("/api/v1/workspaces/{}/legal-holds", t.ws),
        Some(&t.admin.access),
        json!({"name": "Ann's files", "custodians": [t.ann.user_id]}),
    )
    .await
    .expect(201);
    set_policy(&app, &t.admin, &t.ws, json!({"files_days": 1})).await;
    let report = run(&app, &t.admin, &t.ws, &a_day_after(cutoff)).await;
    assert_eq!(report["files_days"], 1, "{report}");
    assert_eq!(report["files_expired"], 2, "{report}");
    assert_eq!(report["files_expired_held"], 1, "{report}");
    // Nothing else had a period: messages stay.
    assert_eq!(report["destroyed"], 0, "{report}");

    for gone in [&old_one, &old_two] {
        app.get(&format!("/api/v1/files/{gone}"), &t.bo.access)
            .await
            .expect_error(404, "not_found");
    }
    for kept in [&held, &newer] {
        app.get(&format!("/api/v1/files/{kept}"), &t.bo.access)
            .await
            .expect(200);
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM files").await, 2);
    // The search index follows, and the housekeeping removes the blobs.
    let left = found(&app, &t.bo, &t.ws, "wombat").await;
    assert!(left.contains(&held) && left.contains(&newer), "{left:?}");
    assert!(
        !left.contains(&old_one) && !left.contains(&old_two),
        "{left:?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while has_blobs(&app.data_dir, &old_one) || has_blobs(&app.data_dir, &old_two) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the blobs of expired files stay"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(has_blobs(&app.data_dir, &held) && has_blobs(&app.data_dir, &newer));

    let runs = audited(&app, &t.admin, "retention.run").await;
    let last = runs.last().expect("the pass is audited");
    assert_eq!(last["details"]["files_expired"], 2, "{last}");
    assert_eq!(last["details"]["files_expired_held"], 1, "{last}");
    // Again: nothing left to do.
    let again = run(&app, &t.admin, &t.ws, &a_day_after(cutoff)).await;
    assert_eq!(again["files_expired"], 0, "{again}");
    assert_eq!(again["files_expired_held"], 1, "{again}");
}

async fn versions(app: &TestApp, who: &Session, doc: &str) -> Vec<String> {
    app.get(&format!("/api/v1/documents/{doc}/versions"), &who.access)
        .await
        .expect(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn name_version(app: &TestApp, who: &Session, doc: &str, name: &str) {
    app.post(
        &format!("/api/v1/documents/{doc}/versions"),
        Some(&who.access),
        json!({ "name": name }),
    )
    .await
    .expect(201);
}

async fn document_history_past_its_period_is_folded_while_editing_goes_on(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        configure(c);
        // Rooms stay open and never compact on their own while the test runs.
        c.docs.idle_seconds = 3600;
        c.docs.compact_after_updates = 100_000;
    })
    .await;
    let t = app.team().await;
    let spec = create_doc(&app, &t.ann, &t.ws, "Spec").await;
    let notes = create_doc(&app, &t.bo, &t.ws, "Notes").await;
    let mut ann = YClient::connect(&app, &spec, &t.ann.access).await;
    let mut bo = YClient::connect(&app, &notes, &t.bo.access).await;
    // Second connections see each edit only once it is stored.
    let mut ann_watch = YClient::connect(&app, &spec, &t.ann.access).await;
    let mut bo_watch = YClient::connect(&app, &notes, &t.bo.access).await;
    ann.insert(0, "alpha ").await;
    ann.insert(0, "beta ").await;
    ann_watch.wait_text("beta alpha ").await;
    name_version(&app, &t.ann, &spec, "old").await;
    bo.insert(0, "held words ").await;
    bo_watch.wait_text("held words ").await;
    name_version(&app, &t.bo, &notes, "held").await;
    let cutoff = moment().await;
    ann.insert(0, "gamma ").await;
    ann_watch.wait_text("gamma beta alpha ").await;
    name_version(&app, &t.ann, &spec, "new").await;
    let updates_before = app.scalar("SELECT COUNT(*) FROM document_updates").await;
    assert!(updates_before >= 3, "{updates_before}");

    app.post(
        &format!("/api/v1/workspaces/{}/legal-holds", t.ws),
        Some(&t.admin.access),
        json!({"name": "Bo's papers", "custodians": [t.bo.user_id]}),
    )
    .await
    .expect(201);
    set_policy(&app, &t.admin, &t.ws, json!({"document_history_days": 1})).await;
    let report = run(&app, &t.admin, &t.ws, &a_day_after(cutoff)).await;
    assert_eq!(report["document_history_days"], 1, "{report}");
    assert_eq!(report["documents_folded"], 1, "{report}");
    assert_eq!(report["versions_destroyed"], 1, "{report}");
    // Bo's document: its old update and its old version.
    assert_eq!(report["history_held"], 2, "{report}");
    let folded = report["updates_folded"].as_i64().unwrap();
    assert!(folded >= 1, "{report}");
    let updates_after = app.scalar("SELECT COUNT(*) FROM document_updates").await;
    assert_eq!(updates_after, updates_before - folded);
    // Spec's newer update stays in the log, with Bo's held ones.
    assert!(updates_after >= 2, "{updates_after}");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM document_snapshots").await,
        1
    );
    assert_eq!(versions(&app, &t.ann, &spec).await, vec!["new".to_owned()]);
    assert_eq!(versions(&app, &t.bo, &notes).await, vec!["held".to_owned()]);

    // Live editing goes on: the open room appends after the folded part and a new
    // connection syncs the whole current state.
    ann.insert(0, "delta ").await;
    let expected = "delta gamma beta alpha ";
    ann_watch.wait_text(expected).await;
    let mut late = YClient::connect(&app, &spec, &t.ann.access).await;
    late.wait_text(expected).await;
    for client in [late, ann, ann_watch, bo, bo_watch] {
        client.close().await;
    }

    // Idempotent: nothing older is left to fold.
    let again = run(&app, &t.admin, &t.ws, &a_day_after(cutoff)).await;
    assert_eq!(again["documents_folded"], 0, "{again}");
    assert_eq!(again["versions_destroyed"], 0, "{again}");

    // After a restart (the rooms store and leave memory), the document loads whole.
    let app = app.restart().await;
    let reopened = YClient::connect(&app, &spec, &t.ann.access).await;
    assert_eq!(reopened.text(), expected);
    let held = YClient::connect(&app, &notes, &t.bo.access).await;
    assert_eq!(held.text(), "held words ");
}

/// The `concord` command line pointed at `app`, with explicit times allowed.
fn concord(app: &TestApp) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_concord"));
    cmd.args(app.cli_args())
        .env("CONCORD_LOG__FILTER", "warn")
        .env("CONCORD_RETENTION__ALLOW_EXPLICIT_NOW", "true")
        .env(
            "CONCORD_AUDIT__CHECKPOINT_EVERY",
            app.config.audit.checkpoint_every.to_string(),
        );
    cmd
}

/// Runs `concord retention run` with `args`; its exit code, stdout and stderr.
fn retention_cli(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let out = concord(app)
        .args(["retention", "run"])
        .args(args)
        .output()
        .expect("concord runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn report_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

async fn ended_sessions_go_after_their_period_and_live_ones_stay(backend: Backend) {
    let app = spawn(backend).await;
    let t = app.team().await;
    let phone = app.login("ann@example.org", PASSWORD).await;
    app.call(
        reqwest::Method::POST,
        "/api/v1/auth/logout",
        Some(&phone.access),
        None,
    )
    .await
    .expect(204);
    let sessions = app.scalar("SELECT COUNT(*) FROM sessions").await;
    let ended = app
        .scalar("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NOT NULL")
        .await;
    assert!(ended >= 1 && sessions > ended, "{sessions} {ended}");

    // `default` keeps session records 90 days: not yet 90 days after the sign-out.
    let (code, out, err) = retention_cli(&app, &[]);
    assert_eq!(code, 0, "{err}");
    let report = report_of(&out);
    assert_eq!(report["deployment"]["sessions_days"], 90, "{report}");
    assert_eq!(report["deployment"]["sessions_deleted"], 0, "{report}");
    // `default` keeps the audit log forever: it is not cut.
    assert_eq!(report["deployment"]["audit_days"], Value::Null, "{report}");
    assert_eq!(
        report["deployment"]["audit_cut_at"],
        Value::Null,
        "{report}"
    );
    assert_eq!(
        report["workspaces"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    assert_eq!(report["failures"], json!([]));

    // A run naming a later time applies it to the workspaces only: the deployment's periods
    // apply at the present, so no session record goes and the live ones stay.
    let later = (Utc::now() + TimeDelta::days(91)).to_rfc3339();
    let (code, out, err) = retention_cli(&app, &["--now", &later]);
    assert_eq!(code, 0, "{err}");
    let report = report_of(&out);
    assert_eq!(report["deployment"]["sessions_deleted"], 0, "{report}");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, sessions);
    let ran_at: DateTime<Utc> = report["deployment"]["now"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{report}"));
    assert!((Utc::now() - ran_at).num_minutes().abs() < 5, "{report}");

    // Ended 91 days ago: their records go.
    age_ended_sessions(&app, 91).await;
    let (code, out, err) = retention_cli(&app, &[]);
    assert_eq!(code, 0, "{err}");
    let report = report_of(&out);
    assert_eq!(
        report["deployment"]["sessions_deleted"].as_i64(),
        Some(ended),
        "{report}"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions").await,
        sessions - ended
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NOT NULL")
            .await,
        0
    );
    // Live sessions still work.
    for who in [&t.admin, &t.ann, &t.bo] {
        app.get("/api/v1/users/me", &who.access).await.expect(200);
    }
    let runs = audited(&app, &t.admin, "retention.run").await;
    assert!(
        runs.iter().any(|e| e["target_type"] == "deployment"
            && e["details"]["sessions_deleted"].as_i64() == Some(ended)),
        "{runs:?}"
    );

    // While a legal hold is in force, no session record goes.
    let tablet = app.login("bo@example.org", PASSWORD).await;
    app.call(
        reqwest::Method::POST,
        "/api/v1/auth/logout",
        Some(&tablet.access),
        None,
    )
    .await
    .expect(204);
    age_ended_sessions(&app, 91).await;
    app.post(
        &format!("/api/v1/workspaces/{}/legal-holds", t.ws),
        Some(&t.admin.access),
        json!({"name": "Cy's matter", "custodians": [t.cy.user_id]}),
    )
    .await
    .expect(201);
    let (code, out, err) = retention_cli(&app, &[]);
    assert_eq!(code, 0, "{err}");
    let report = report_of(&out);
    assert_eq!(report["deployment"]["held_by_legal_hold"], true, "{report}");
    assert_eq!(report["deployment"]["sessions_deleted"], 0, "{report}");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NOT NULL")
            .await,
        1
    );
}

/// Moves the end of every ended session `days` into the past.
async fn age_ended_sessions(app: &TestApp, days: i64) {
    let at =
        (Utc::now() - TimeDelta::days(days)).to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    app.raw_sql(&format!(
        "UPDATE sessions SET revoked_at = '{at}' WHERE revoked_at IS NOT NULL"
    ))
    .await
    .unwrap();
}

/// A byte string as a SQL literal of `backend`.
fn bytes_literal(backend: Backend, bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    match backend {
        Backend::Sqlite => format!("X'{hex}'"),
        Backend::Postgres => format!("'\\x{hex}'::bytea"),
    }
}

/// Makes the checkpoints after `after` look signed two days ago: each is signed again with
/// the signing key, as the writer would have then (the append-only trigger is lifted
/// meanwhile).
async fn age_checkpoints(app: &TestApp, after: i64) {
    use concord::store::audit::CheckpointSigner;
    let (kek, _) = concord::crypto::kek::load(&app.config).unwrap();
    let keyring = concord::crypto::Keyring::open(&app.store, kek, app.config.keys.dek_rotate_after)
        .await
        .unwrap();
    let (checkpoints, key) = {
        let mut conn = app.store.reader().await.unwrap();
        let checkpoints = concord::store::audit::checkpoints(&mut conn.conn(), after + 1, i64::MAX)
            .await
            .unwrap();
        let key = concord::store::keys::latest(
            &mut conn.conn(),
            concord::store::keys::AUDIT_SIGNING_SCOPE,
        )
        .await
        .unwrap()
        .unwrap();
        (checkpoints, key)
    };
    let (lift, restore) = match app.backend {
        Backend::Sqlite => (
            "DROP TRIGGER audit_checkpoints_no_update;",
            "CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints \
             BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;",
        ),
        Backend::Postgres => (
            "ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_append_only;",
            "ALTER TABLE audit_checkpoints ENABLE TRIGGER audit_checkpoints_append_only;",
        ),
    };
    let mut sql = lift.to_owned();
    for cp in checkpoints {
        let signed: DateTime<Utc> = cp.signed_at.parse().unwrap();
        let signed_at =
            (signed - TimeDelta::days(2)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let message = concord::store::audit_chain::checkpoint_message(
            cp.seq,
            &cp.head_hash,
            key.version,
            &signed_at,
        );
        let signature = keyring.sign(&key, &message).unwrap();
        sql.push_str(&format!(
            "UPDATE audit_checkpoints SET signed_at = '{signed_at}', key_version = {}, \
             signature = {} WHERE seq = {};",
            key.version,
            bytes_literal(app.backend, &signature),
            cp.seq
        ));
    }
    sql.push_str(restore);
    app.raw_sql(&sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn the_command_line_runs_a_pass_and_refuses_bad_input(backend: Backend) {
    let app = spawn(backend).await;
    let t = app.team().await;
    set_policy(&app, &t.admin, &t.ws, json!({"messages_days": 1})).await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    crate::chat::say(&app, &t.ann, &general, "numbat old").await;
    let later = (Utc::now() + TimeDelta::days(2)).to_rfc3339();
    let (code, out, err) = retention_cli(&app, &["--workspace", &t.ws, "--now", &later]);
    assert_eq!(code, 0, "{err}");
    let report = report_of(&out);
    assert_eq!(report["workspaces"][0]["workspace_id"], t.ws.as_str());
    assert_eq!(report["workspaces"][0]["destroyed"], 1, "{report}");
    // One workspace only: the deployment's periods are not applied.
    assert_eq!(report["deployment"], Value::Null, "{report}");
    let left = app
        .get(
            &format!("/api/v1/channels/{general}/messages"),
            &t.ann.access,
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(left, json!([]));

    // A pass at the present time: nothing is old enough.
    let (code, out, err) = retention_cli(&app, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(report_of(&out)["deployment"].is_object(), "{out}");

    let unknown = uuid::Uuid::now_v7().to_string();
    let no_explicit = |c: &mut Command| {
        c.env("CONCORD_RETENTION__ALLOW_EXPLICIT_NOW", "false");
    };
    let cases: Vec<(Vec<&str>, &str, bool)> = vec![
        (vec!["--workspace", "nope"], "not a workspace id", true),
        (vec!["--workspace", &unknown], "no such workspace", true),
        (vec!["--now", "yesterday"], "not an RFC 3339 time", true),
        (vec!["--now", &later], "allow_explicit_now", false),
    ];
    for (args, says, explicit) in cases {
        let mut cmd = concord(&app);
        if !explicit {
            no_explicit(&mut cmd);
        }
        let out = cmd
            .args(["retention", "run"])
            .args(&args)
            .output()
            .expect("concord runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// A policy folder with a module keeping the audit log one day.
fn short_audit_module(dir: &Path) {
    std::fs::write(
        dir.join("brief.toml"),
        "description = \"keeps the audit log one day\"\n[retention]\naudit_days = 1\n",
    )
    .unwrap();
}

/// Runs `concord audit verify` on `app`'s database; its success and output.
fn verify_cli(app: &TestApp, policy_dir: &Path) -> (bool, String) {
    let out = concord(app)
        .args([
            "--config",
            &policy_dir.join("concord.toml").display().to_string(),
        ])
        .args(["audit", "verify"])
        .output()
        .expect("concord runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn the_audit_log_is_cut_at_a_signed_checkpoint_and_still_verifies(backend: Backend) {
    let policies = tempfile::tempdir().unwrap();
    short_audit_module(policies.path());
    std::fs::write(
        policies.path().join("concord.toml"),
        format!(
            "[policy]\nmodules = [\"default\", \"brief\"]\ndir = {:?}\n",
            policies.path().display().to_string()
        ),
    )
    .unwrap();
    let dir = policies.path().to_path_buf();
    let app = spawn_app_with(backend, move |c| {
        configure(c);
        // Checkpoints every few entries, so there are several to cut at.
        c.audit.checkpoint_every = 5;
        c.policy.modules = vec!["default".into(), "brief".into()];
        c.policy.dir = Some(dir);
    })
    .await;
    let t = app.team().await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    for i in 0..12 {
        crate::chat::say(&app, &t.ann, &general, &format!("dingo {i}")).await;
    }
    let (ok, out) = verify_cli(&app, policies.path());
    assert!(ok, "{out}");
    let first_before = app.scalar("SELECT MIN(seq) FROM audit_events").await;
    assert_eq!(first_before, 1);
    let checkpoints = app.scalar("SELECT COUNT(*) FROM audit_checkpoints").await;
    assert!(checkpoints >= 2, "{checkpoints}");

    // Nothing is a day old yet: the newest checkpoint before the cutoff does not exist.
    let (code, out, err) = retention_cli_with(&app, policies.path(), None);
    assert_eq!(code, 0, "{err}");
    let report = report_of(&out);
    assert_eq!(report["deployment"]["audit_days"], 1, "{report}");
    assert_eq!(
        report["deployment"]["audit_cut_at"],
        Value::Null,
        "{report}"
    );
    assert_eq!(app.scalar("SELECT MIN(seq) FROM audit_events").await, 1);
    // A run naming a later time does not cut the log either: the deployment's periods
    // apply at the present.
    let later = (Utc::now() + TimeDelta::days(2)).to_rfc3339();
    let (code, out, err) = retention_cli_with(&app, policies.path(), Some(&later));
    assert_eq!(code, 0, "{err}");
    let report = report_of(&out);
    assert_eq!(
        report["deployment"]["audit_cut_at"],
        Value::Null,
        "{report}"
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM audit_cuts").await, 0);

    // Every checkpoint so far signed two days ago, older than the period: the log is cut at
    // the newest of them.
    age_checkpoints(&app, 0).await;
    let newest_checkpoint = app.scalar("SELECT MAX(seq) FROM audit_checkpoints").await;
    let (code, out, err) = retention_cli_with(&app, policies.path(), None);
    assert_eq!(code, 0, "{err}");
    let report = report_of(&out);
    let cut = report["deployment"]["audit_cut_at"]
        .as_i64()
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(cut, newest_checkpoint, "{report}");
    assert_eq!(report["deployment"]["audit_cuts_recorded"], 1, "{report}");
    assert_eq!(
        report["deployment"]["audit_entries_deleted"].as_i64(),
        Some(cut),
        "{report}"
    );
    assert_eq!(
        app.scalar("SELECT MIN(seq) FROM audit_events").await,
        cut + 1
    );
    // The anchor's checkpoint stays, and the ones before it go.
    assert_eq!(
        app.scalar("SELECT MIN(seq) FROM audit_checkpoints").await,
        cut
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM audit_cuts").await, 1);

    // The rest still verifies, from the anchor, and says where it starts.
    let (ok, out) = verify_cli(&app, policies.path());
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("starts after the signed checkpoint at {cut}")),
        "{out}"
    );
    let cuts = audited(&app, &t.admin, "audit.cut").await;
    assert_eq!(cuts.len(), 1, "{cuts:?}");
    assert_eq!(cuts[0]["target_id"], cut.to_string());
    assert_eq!(cuts[0]["details"]["audit_days"], 1);

    // The database still refuses any other delete.
    assert!(app
        .raw_sql(&format!("DELETE FROM audit_events WHERE seq = {}", cut + 1))
        .await
        .is_err());
    assert!(app
        .raw_sql(&format!("DELETE FROM audit_checkpoints WHERE seq = {cut}"))
        .await
        .is_err());
    assert!(app.raw_sql("DELETE FROM audit_cuts").await.is_err());
    // Nor does it take a cut it cannot anchor, or one replacing a recorded cut.
    let columns = "upto_seq, head_hash, cut_at, cutoff, audit_days, key_version, signature";
    let copy = |upto: &str| {
        format!(
            "INSERT INTO audit_cuts ({columns}) SELECT {upto}, head_hash, cut_at, cutoff, \
             audit_days, key_version, signature FROM audit_cuts"
        )
    };
    assert!(app.raw_sql(&copy("1000000")).await.is_err());
    assert!(app.raw_sql(&copy("upto_seq")).await.is_err());
    let replace = match backend {
        Backend::Sqlite => copy("upto_seq").replace("INSERT INTO", "INSERT OR REPLACE INTO"),
        Backend::Postgres => format!(
            "{} ON CONFLICT (upto_seq) DO UPDATE SET cut_at = 'x'",
            copy("upto_seq")
        ),
    };
    assert!(app.raw_sql(&replace).await.is_err());
    // A temporary table named like the cuts does not stand in for them.
    let shadowed = "CREATE TEMP TABLE audit_cuts (upto_seq BIGINT); \
                    INSERT INTO audit_cuts (upto_seq) VALUES (1000000); \
                    DELETE FROM audit_events;";
    assert!(app.raw_sql(shadowed).await.is_err());
    assert_eq!(
        app.scalar("SELECT MIN(seq) FROM audit_events").await,
        cut + 1
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM audit_cuts").await, 1);

    // A later pass cuts again at a newer checkpoint (the ones signed since are older than the
    // period too), and the log still verifies from there.
    age_checkpoints(&app, cut).await;
    let (code, out, err) = retention_cli_with(&app, policies.path(), None);
    assert_eq!(code, 0, "{err}");
    let report = report_of(&out);
    assert_eq!(report["deployment"]["audit_cuts_recorded"], 1, "{report}");
    let second = report["deployment"]["audit_cut_at"].as_i64().unwrap();
    assert!(second > cut, "{report}");
    assert_eq!(
        report["deployment"]["audit_entries_deleted"].as_i64(),
        Some(second - cut),
        "{report}"
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM audit_cuts").await, 2);
    assert_eq!(
        app.scalar("SELECT MIN(seq) FROM audit_events").await,
        second + 1
    );
    let (ok, out) = verify_cli(&app, policies.path());
    assert!(ok, "{out}");
    assert!(out.contains("2 cut(s) recorded"), "{out}");
}

/// The deployment of [`the_audit_log_is_cut_at_a_signed_checkpoint_and_still_verifies`]:
/// its policy folder (kept alive with it) and a log with checkpoints every few entries.
async fn short_audit_app(backend: Backend) -> (tempfile::TempDir, TestApp) {
    let policies = tempfile::tempdir().unwrap();
    short_audit_module(policies.path());
    std::fs::write(
        policies.path().join("concord.toml"),
        format!(
            "[policy]\nmodules = [\"default\", \"brief\"]\ndir = {:?}\n",
            policies.path().display().to_string()
        ),
    )
    .unwrap();
    let dir = policies.path().to_path_buf();
    let app = spawn_app_with(backend, move |c| {
        configure(c);
        c.audit.checkpoint_every = 5;
        c.policy.modules = vec!["default".into(), "brief".into()];
        c.policy.dir = Some(dir);
    })
    .await;
    (policies, app)
}

async fn a_forged_cut_is_refused_and_exposed(backend: Backend) {
    let (policies, app) = short_audit_app(backend).await;
    let t = app.team().await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    for i in 0..12 {
        crate::chat::say(&app, &t.ann, &general, &format!("quokka {i}")).await;
    }
    age_checkpoints(&app, 0).await;
    // Someone with the database's credentials records a cut at the newest checkpoint: the
    // database cannot check its signature, and takes it.
    let forged = app.scalar("SELECT MAX(seq) FROM audit_checkpoints").await;
    app.raw_sql(&format!(
        "INSERT INTO audit_cuts (upto_seq, head_hash, cut_at, cutoff, audit_days, key_version, \
         signature) SELECT seq, head_hash, '2099-01-01T00:00:00.000000Z', \
         '2098-12-31T00:00:00.000000Z', 1, key_version, signature FROM audit_checkpoints \
         WHERE seq = {forged}"
    ))
    .await
    .unwrap();
    // Retention refuses to carry it out: nothing is deleted, and the refusal is audited.
    let (code, _, err) = retention_cli_with(&app, policies.path(), None);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("does not verify"), "{err}");
    assert_eq!(app.scalar("SELECT MIN(seq) FROM audit_events").await, 1);
    let refused = audited(&app, &t.admin, "audit.cut").await;
    let forged_id = forged.to_string();
    assert!(
        refused
            .iter()
            .any(|e| e["outcome"] == "failed" && e["target_id"] == forged_id.as_str()),
        "{refused:?}"
    );
    // The database lets them delete up to it; verification exposes the forged cut.
    app.raw_sql(&format!("DELETE FROM audit_events WHERE seq <= {forged}"))
        .await
        .unwrap();
    let (ok, out) = verify_cli(&app, policies.path());
    assert!(!ok, "{out}");
    assert!(out.contains("does not verify"), "{out}");
}

async fn an_emptied_log_does_not_verify(backend: Backend) {
    let app = spawn(backend).await;
    app.team().await;
    let lift = match backend {
        Backend::Sqlite => {
            "DROP TRIGGER audit_events_no_delete; DROP TRIGGER audit_checkpoints_no_delete;"
        }
        Backend::Postgres => {
            "ALTER TABLE audit_events DISABLE TRIGGER USER; \
                              ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;"
        }
    };
    app.raw_sql(lift).await.unwrap();
    app.raw_sql("DELETE FROM audit_events; DELETE FROM audit_checkpoints;")
        .await
        .unwrap();
    let store = app.open_store().await;
    let result = concord::audit::service::verify_live(&store).await.unwrap();
    store.close().await;
    let err = result.expect_err("an empty log without a cut does not verify");
    assert!(err.reason.contains("empty"), "{err}");
}

/// `concord retention run` with the short audit module enabled.
fn retention_cli_with(
    app: &TestApp,
    policy_dir: &Path,
    now: Option<&str>,
) -> (i32, String, String) {
    let mut cmd = concord(app);
    cmd.args([
        "--config",
        &policy_dir.join("concord.toml").display().to_string(),
    ])
    .args(["retention", "run"]);
    if let Some(now) = now {
        cmd.args(["--now", now]);
    }
    let out = cmd.output().expect("concord runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

both_backends!(
    files_past_their_period_go_unless_held,
    document_history_past_its_period_is_folded_while_editing_goes_on,
    ended_sessions_go_after_their_period_and_live_ones_stay,
    the_command_line_runs_a_pass_and_refuses_bad_input,
    the_audit_log_is_cut_at_a_signed_checkpoint_and_still_verifies,
    a_forged_cut_is_refused_and_exposed,
    an_emptied_log_does_not_verify,
);
