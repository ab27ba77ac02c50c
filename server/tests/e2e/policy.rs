//! Compliance policy modules: a workspace's effective policy with where each value comes from,
//! overrides stored as versions and audited, refused with their line and key when invalid and
//! refused to anyone but a policy administrator, reloads of the policy folder, HIPAA mode's
//! refusal to start unsafely, and `concord policy check`.

use std::process::{Command, Stdio};

use concord::config::{Config, Mode};
use concord::App;
use serde_json::{json, Value};

use crate::chat::channel;
use crate::harness::{both_backends, spawn_app_with, Backend, Reply, Session, TestApp, PASSWORD};

fn modules(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

async fn policy(app: &TestApp, who: &Session, ws: &str) -> Reply {
    app.get(&format!("/api/v1/workspaces/{ws}/policy"), &who.access)
        .await
}

async fn put_toml(app: &TestApp, who: &Session, ws: &str, toml: &str) -> Reply {
    put_toml_if(app, who, ws, toml, None).await
}

/// A `PUT` of a TOML override, with `If-Match: if_match` if given.
async fn put_toml_if(
    app: &TestApp,
    who: &Session,
    ws: &str,
    toml: &str,
    if_match: Option<&str>,
) -> Reply {
    let mut request = app
        .client
        .put(app.url(&format!("/api/v1/workspaces/{ws}/policy")))
        .bearer_auth(&who.access)
        .header("content-type", "application/toml")
        .body(toml.to_owned());
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    let resp = request.send().await.expect("request sent");
    crate::harness::reply(resp).await
}

async fn audited(app: &TestApp, admin: &Session, action: &str) -> Vec<Value> {
    app.get(
        &format!("/api/v1/audit/events?action={action}"),
        &admin.access,
    )
    .await
    .expect(200)["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn override_rows(app: &TestApp) -> i64 {
    app.scalar("SELECT COUNT(*) FROM policy_versions WHERE workspace_id IS NOT NULL")
        .await
}

both_backends!(
    the_effective_policy_shows_each_value_and_where_it_comes_from,
    an_override_is_stored_as_a_new_version_and_audited,
    a_bad_override_is_refused_with_its_line_and_key,
    only_policy_administrators_override_and_reload,
    a_reload_reads_the_policy_folder_again_versioned_and_audited,
    hipaa_mode_starts_with_its_safeguards_and_keeps_six_years_of_audit,
    policy_check_prints_the_effective_policy_and_refuses_a_bad_one,
    an_override_the_modules_no_longer_allow_is_listed_and_cleared_from_the_command_line,
    an_override_document_is_at_most_64_kib,
    only_policy_managers_see_the_override_and_channels_others_cannot_read,
    a_change_names_the_version_it_was_made_against,
    versions_never_collide_between_processes,
    a_reload_is_authorized_before_the_policy_folder_is_read,
);

async fn the_effective_policy_shows_each_value_and_where_it_comes_from(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.policy.modules = modules(&["default", "gdpr"])
    })
    .await;
    let t = app.team().await;
    // Any member sees the policy that governs the workspace's data.
    let view = policy(&app, &t.ann, &t.ws).await.expect(200).clone();
    assert_eq!(view["workspace_id"], t.ws.as_str());
    assert_eq!(view["modules"], json!(["default", "gdpr"]));
    assert!(view["version"].as_i64().unwrap() >= 1, "{view}");
    let p = &view["policy"];
    assert_eq!(p["retention"]["messages_days"], "forever");
    assert_eq!(p["retention"]["sessions_days"], 30);
    assert_eq!(p["retention"]["audit_days"], "forever");
    assert_eq!(p["phi"]["enabled"], false);
    assert_eq!(p["phi"]["idle_logoff_minutes"], 15);
    assert_eq!(p["data_subject"]["request_deadline_days"], 30);
    assert_eq!(p["data_subject"]["extension_days"], 60);
    assert_eq!(p["data_subject"]["erasure"], "delete");
    assert_eq!(view["sources"]["retention.sessions_days"], "gdpr");
    assert_eq!(view["sources"]["retention.messages_days"], "default");
    assert_eq!(view["sources"]["data_subject.erasure"], "gdpr");
    assert!(view["workspace_override"].is_null(), "{view}");
    // Someone outside the workspace does not learn it exists.
    let outsider_id = app.create_user(&t.admin, "eve@example.org", "Eve").await;
    assert!(!outsider_id.is_empty());
    let eve = app.login("eve@example.org", PASSWORD).await;
    policy(&app, &eve, &t.ws)
        .await
        .expect_error(404, "not_found");
}

async fn an_override_is_stored_as_a_new_version_and_audited(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.policy.modules = modules(&["default", "gdpr"])
    })
    .await;
    let t = app.team().await;
    let before = policy(&app, &t.admin, &t.ws).await.expect(200)["version"]
        .as_i64()
        .unwrap();
    let general = channel(&app, &t.admin, &t.ws, "ward-3", "private").await;

    let toml = format!(
        "# Records schedule 4.2\n[retention]\nmessages_days = 365\n\n[channels.\"{general}\"]\nphi = true\nfiles_days = 30\n"
    );
    let first = put_toml(&app, &t.admin, &t.ws, &toml)
        .await
        .expect(200)
        .clone();
    let v1 = first["version"].as_i64().unwrap();
    assert!(v1 > before, "{first}");
    assert_eq!(first["policy"]["retention"]["messages_days"], 365);
    assert_eq!(first["sources"]["retention.messages_days"], "workspace");
    assert_eq!(first["sources"]["retention.sessions_days"], "gdpr");
    let channel = &first["policy"]["channels"][&general];
    assert_eq!(channel["phi"], true, "{first}");
    assert_eq!(channel["files_days"], 30);
    assert_eq!(channel["messages_days"], 365);
    assert_eq!(first["workspace_override"]["version"], v1);
    assert_eq!(first["workspace_override"]["document"], toml.as_str());
    assert_eq!(
        first["workspace_override"]["created_by"],
        t.admin.user_id.as_str()
    );

    // A JSON override replaces the previous one as a whole, as a new version.
    let second = app
        .put(
            &format!("/api/v1/workspaces/{}/policy", t.ws),
            &t.admin.access,
            json!({"retention": {"files_days": 90}, "phi": {"enabled": true}}),
        )
        .await
        .expect(200)
        .clone();
    let v2 = second["version"].as_i64().unwrap();
    assert!(v2 > v1, "{second}");
    let shown = policy(&app, &t.admin, &t.ws).await.expect(200).clone();
    assert_eq!(shown["version"], v2);
    assert_eq!(shown["policy"]["retention"]["files_days"], 90);
    assert_eq!(shown["policy"]["retention"]["messages_days"], "forever");
    assert_eq!(shown["policy"]["phi"]["enabled"], true);
    assert_eq!(shown["sources"]["phi.enabled"], "workspace");
    assert_eq!(shown["policy"]["channels"], json!({}));
    assert!(
        shown["workspace_override"]["document"]
            .as_str()
            .unwrap()
            .contains("files_days = 90"),
        "{shown}"
    );
    // Members see the values in force, not the document.
    let member = policy(&app, &t.ann, &t.ws).await.expect(200).clone();
    assert_eq!(member["version"], v2);
    assert_eq!(member["policy"], shown["policy"]);
    assert_eq!(member["sources"], shown["sources"]);
    assert!(member["workspace_override"].is_null(), "{member}");

    // An empty document returns the workspace to the modules, again as a version.
    let cleared = put_toml(&app, &t.admin, &t.ws, "")
        .await
        .expect(200)
        .clone();
    assert!(cleared["version"].as_i64().unwrap() > v2);
    assert!(cleared["workspace_override"].is_null(), "{cleared}");
    assert_eq!(cleared["sources"]["retention.files_days"], "default");

    // Every change is its own row; none was updated in place.
    assert_eq!(override_rows(&app).await, 3);
    let entries = audited(&app, &t.admin, "policy.override").await;
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert!(entries
        .iter()
        .all(|e| e["actor_id"] == t.admin.user_id.as_str()
            && e["target_id"] == t.ws.as_str()
            && e["workspace_id"] == t.ws.as_str()
            && e["outcome"] == "allowed"));
    assert_eq!(entries[0]["details"]["version"], v1);

    // The override survives a restart, and an unchanged restart stores no new version.
    let deployment_rows = "SELECT COUNT(*) FROM policy_versions WHERE workspace_id IS NULL";
    assert_eq!(app.scalar(deployment_rows).await, 1);
    let app = app.restart().await;
    let admin = app.login("admin@example.org", PASSWORD).await;
    let again = policy(&app, &admin, &t.ws).await.expect(200).clone();
    assert_eq!(again["version"], cleared["version"]);
    assert_eq!(app.scalar(deployment_rows).await, 1);
}

async fn a_bad_override_is_refused_with_its_line_and_key(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let t = app.team().await;
    let refused = |r: Reply, line: Option<&str>, key: &str| {
        r.expect_error(422, "invalid_policy");
        let message = r.body["error"]["message"].as_str().unwrap().to_owned();
        if let Some(line) = line {
            assert!(
                message.starts_with(&format!("override:{line}: ")),
                "{message}"
            );
        }
        assert!(message.contains(&format!("{key}: ")), "{message}");
        assert!(!message.contains('\n'), "{message}");
        message
    };

    let m = refused(
        put_toml(
            &app,
            &t.admin,
            &t.ws,
            "[retention]\n\nmessages_days = -30\n",
        )
        .await,
        Some("3"),
        "retention.messages_days",
    );
    assert!(m.contains("out of range"), "{m}");
    let m = refused(
        put_toml(
            &app,
            &t.admin,
            &t.ws,
            "[phi]\nenabled = true\nidle_logof = 5\n",
        )
        .await,
        Some("3"),
        "phi.idle_logof",
    );
    assert!(m.contains("unknown field"), "{m}");
    refused(
        put_toml(&app, &t.admin, &t.ws, "[phi]\nenabled = \"yes\"\n").await,
        Some("2"),
        "phi.enabled",
    );
    refused(
        put_toml(
            &app,
            &t.admin,
            &t.ws,
            "[phi]\nbreak_glass_max_minutes = 100000\n",
        )
        .await,
        Some("2"),
        "phi.break_glass_max_minutes",
    );
    refused(
        put_toml(
            &app,
            &t.admin,
            &t.ws,
            "[retention]\naudit_days = \"always\"\n",
        )
        .await,
        Some("2"),
        "retention.audit_days",
    );
    // A channel must be one of this workspace's.
    let elsewhere = app.create_workspace(&t.admin, "Elsewhere").await;
    let foreign = channel(&app, &t.admin, &elsewhere, "theirs", "public").await;
    let m = refused(
        put_toml(
            &app,
            &t.admin,
            &t.ws,
            &format!("[retention]\nfiles_days = 10\n[channels.\"{foreign}\"]\nphi = true\n"),
        )
        .await,
        Some("3"),
        &format!("channels.{foreign}"),
    );
    assert!(m.contains("no such channel"), "{m}");
    // Among several, the one that is not the workspace's is named.
    let (a, b) = (
        channel(&app, &t.admin, &t.ws, "ward-a", "public").await,
        channel(&app, &t.admin, &t.ws, "ward-b", "private").await,
    );
    let m = refused(
        app.put(
            &format!("/api/v1/workspaces/{}/policy", t.ws),
            &t.admin.access,
            json!({"channels": {&a: {"phi": true}, &foreign: {"phi": true}, &b: {"files_days": 3}}}),
        )
        .await,
        None,
        &format!("channels.{foreign}"),
    );
    assert!(m.contains("no such channel"), "{m}");
    // JSON is checked the same way, by key.
    refused(
        app.put(
            &format!("/api/v1/workspaces/{}/policy", t.ws),
            &t.admin.access,
            json!({"data_subject": {"request_deadline_days": 0}}),
        )
        .await,
        None,
        "data_subject.request_deadline_days",
    );
    refused(
        app.put(
            &format!("/api/v1/workspaces/{}/policy", t.ws),
            &t.admin.access,
            json!({"retention": {"message_days": 5}}),
        )
        .await,
        None,
        "retention.message_days",
    );
    // Audit retention is the deployment's: no workspace sets it, whatever the value.
    let m = refused(
        put_toml(
            &app,
            &t.admin,
            &t.ws,
            "[retention]\nfiles_days = 10\naudit_days = \"forever\"\n",
        )
        .await,
        Some("3"),
        "retention.audit_days",
    );
    assert!(m.contains("not a workspace's"), "{m}");
    // A channel is named in one spelling, the canonical one.
    let ours = channel(&app, &t.admin, &t.ws, "ours", "public").await;
    let m = refused(
        put_toml(
            &app,
            &t.admin,
            &t.ws,
            &format!("[channels.\"{}\"]\nphi = true\n", ours.to_uppercase()),
        )
        .await,
        Some("1"),
        &format!("channels.{}", ours.to_uppercase()),
    );
    assert!(m.contains(&format!("canonical form, {ours}")), "{m}");
    let simple = ours.replace('-', "");
    let m = refused(
        app.put(
            &format!("/api/v1/workspaces/{}/policy", t.ws),
            &t.admin.access,
            json!({"channels": {&simple: {"phi": true}}}),
        )
        .await,
        None,
        &format!("channels.{simple}"),
    );
    assert!(m.contains(&format!("canonical form, {ours}")), "{m}");
    // Nothing was stored, and the policy in force is unchanged.
    assert_eq!(override_rows(&app).await, 0);
    let view = policy(&app, &t.admin, &t.ws).await.expect(200).clone();
    assert!(view["workspace_override"].is_null(), "{view}");
    // Every refusal is in the audit log, with its reason.
    let entries = audited(&app, &t.admin, "policy.override").await;
    assert_eq!(entries.len(), 12, "{entries:?}");
    assert!(
        entries.iter().all(|e| e["outcome"] == "failed"
            && e["actor_id"] == t.admin.user_id.as_str()
            && e["workspace_id"] == t.ws.as_str()
            && e["details"]["code"] == "invalid_policy"),
        "{entries:?}"
    );
    let reasons: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["details"]["error"].as_str())
        .collect();
    assert!(
        reasons[0].starts_with("override:3: retention.messages_days: "),
        "{reasons:?}"
    );
    assert!(reasons[9].contains("retention.audit_days: "), "{reasons:?}");
}

async fn only_policy_administrators_override_and_reload(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let t = app.team().await;
    // A workspace admin administers the workspace, not its compliance policy.
    app.create_user(&t.admin, "dan@example.org", "Dan").await;
    let dan = app.login("dan@example.org", PASSWORD).await;
    app.add_member(&t.admin, &t.ws, &dan, "admin").await;
    for who in [&t.ann, &dan] {
        put_toml(&app, who, &t.ws, "[retention]\nmessages_days = 1\n")
            .await
            .expect_error(403, "forbidden");
        // Decided before the document is read: a broken one is refused the same way, and
        // its mistakes are not reported to someone who may not set it.
        put_toml(&app, who, &t.ws, "[retention\nmessages_days = -1\n")
            .await
            .expect_error(403, "forbidden");
        app.post(
            "/api/v1/admin/policies/reload",
            Some(&who.access),
            json!({}),
        )
        .await
        .expect_error(403, "forbidden");
    }
    // Outside the workspace, it is not found.
    let other = app.create_workspace(&t.admin, "Other").await;
    put_toml(&app, &t.ann, &other, "[retention]\nmessages_days = 1\n")
        .await
        .expect_error(404, "not_found");
    assert_eq!(override_rows(&app).await, 0);
    let view = policy(&app, &t.ann, &t.ws).await.expect(200).clone();
    assert_eq!(view["policy"]["retention"]["messages_days"], "forever");
    // Each refusal is in the audit log: the changes against the workspace (and the one
    // outside it), the reloads against the deployment.
    let denials = audited(&app, &t.admin, "permission.denied").await;
    let refused = |target: &str| -> Vec<&str> {
        let mut actors: Vec<&str> = denials
            .iter()
            .filter(|e| {
                e["details"]["permission"] == "policies.manage"
                    && e["outcome"] == "denied"
                    && e["target_id"] == target
            })
            .filter_map(|e| e["actor_id"].as_str())
            .collect();
        actors.sort();
        actors
    };
    let mut by = vec![
        t.ann.user_id.as_str(),
        t.ann.user_id.as_str(),
        dan.user_id.as_str(),
        dan.user_id.as_str(),
    ];
    by.sort();
    assert_eq!(refused(&t.ws), by, "{denials:?}");
    assert_eq!(refused(&other), vec![t.ann.user_id.as_str()], "{denials:?}");
    let reloads = denials
        .iter()
        .filter(|e| e["details"]["permission"] == "policies.manage" && e["target_type"] == "system")
        .count();
    assert_eq!(reloads, 2, "{denials:?}");
    // Refused before it was checked: no refused override was recorded for them.
    assert!(audited(&app, &t.admin, "policy.override").await.is_empty());
    // The system admin may.
    put_toml(&app, &t.admin, &t.ws, "[retention]\nmessages_days = 1\n")
        .await
        .expect(200);
}

async fn a_reload_reads_the_policy_folder_again_versioned_and_audited(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let gdpr = dir.path().join("gdpr.toml");
    std::fs::write(&gdpr, "[retention]\nsessions_days = 30\n").unwrap();
    let path = dir.path().to_owned();
    let app = spawn_app_with(backend, |c| {
        c.policy.modules = modules(&["default", "gdpr"]);
        c.policy.dir = Some(path);
    })
    .await;
    let t = app.team().await;
    let reload = || {
        app.post(
            "/api/v1/admin/policies/reload",
            Some(&t.admin.access),
            json!({}),
        )
    };
    let start = policy(&app, &t.admin, &t.ws).await.expect(200)["version"]
        .as_i64()
        .unwrap();

    let same = reload().await.expect(200).clone();
    assert_eq!(same["changed"], false, "{same}");
    assert_eq!(same["version"], start);
    assert_eq!(same["modules"], json!(["default", "gdpr"]));

    std::fs::write(&gdpr, "[retention]\nsessions_days = 14\n").unwrap();
    let changed = reload().await.expect(200).clone();
    assert_eq!(changed["changed"], true, "{changed}");
    let v = changed["version"].as_i64().unwrap();
    assert!(v > start);
    let view = policy(&app, &t.ann, &t.ws).await.expect(200).clone();
    assert_eq!(view["policy"]["retention"]["sessions_days"], 14);
    assert_eq!(view["version"], v);

    // A bad file is refused with its file, line and key; the policy in force stays.
    std::fs::write(&gdpr, "[retention]\nsessions_days = 14\nsession_days = 7\n").unwrap();
    let r = reload().await;
    r.expect_error(422, "invalid_policy");
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{}:3: retention.session_days: ", gdpr.display())),
        "{message}"
    );
    let view = policy(&app, &t.ann, &t.ws).await.expect(200).clone();
    assert_eq!(view["policy"]["retention"]["sessions_days"], 14);
    assert_eq!(view["version"], v);

    let deployment_rows = app
        .scalar("SELECT COUNT(*) FROM policy_versions WHERE workspace_id IS NULL")
        .await;
    assert_eq!(deployment_rows, 2);
    let entries = audited(&app, &t.admin, "policy.reload").await;
    let outcomes: Vec<&str> = entries
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["allowed", "allowed", "failed"], "{entries:?}");
    assert_eq!(entries[1]["details"]["changed"], true);
    assert!(entries[2]["details"]["error"]
        .as_str()
        .unwrap()
        .contains("retention.session_days"));
    // The first start recorded the modules it loaded.
    assert_eq!(audited(&app, &t.admin, "policy.load").await.len(), 1);
}

/// A production configuration that HIPAA mode accepts.
fn hipaa_ready(c: &mut Config) {
    c.mode = Mode::Production;
    c.keys.kek = Some(
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
            .to_owned()
            .into(),
    );
    c.auth.signing_key = Some(
        "a-production-signing-key-of-at-least-32-bytes"
            .to_owned()
            .into(),
    );
    c.http.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    c.http.tls_proxy = Some("127.0.0.1".parse().unwrap());
    c.policy.modules = modules(&["default", "hipaa"]);
}

async fn hipaa_mode_starts_with_its_safeguards_and_keeps_six_years_of_audit(backend: Backend) {
    let app = spawn_app_with(backend, hipaa_ready).await;
    let t = app.team().await;
    let view = policy(&app, &t.ann, &t.ws).await.expect(200).clone();
    let p = &view["policy"];
    assert_eq!(view["modules"], json!(["default", "hipaa"]));
    assert_eq!(p["retention"]["audit_days"], 2190);
    assert_eq!(p["phi"]["enabled"], true);
    assert_eq!(p["phi"]["idle_logoff_minutes"], 15);
    assert_eq!(p["phi"]["audit_reads"], true);
    assert_eq!(view["sources"]["retention.audit_days"], "hipaa");
    // No workspace sets its own audit retention, shorter or longer.
    for value in ["365", "\"forever\""] {
        let r = put_toml(
            &app,
            &t.admin,
            &t.ws,
            &format!("[phi]\nenabled = false\n\n[retention]\naudit_days = {value}\n"),
        )
        .await;
        r.expect_error(422, "invalid_policy");
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(
                "override:5: retention.audit_days: audit retention is the deployment's"
            ),
            "{message}"
        );
    }
    // Where PHI is held, no override turns off the read audit or stretches logoff and
    // emergency access past the module's values; without PHI they do not apply.
    for (toml, key) in [
        ("[phi]\naudit_reads = false\n", "phi.audit_reads"),
        (
            "[phi]\nidle_logoff_minutes = 120\n",
            "phi.idle_logoff_minutes",
        ),
        (
            "[phi]\nbreak_glass_max_minutes = 600\n",
            "phi.break_glass_max_minutes",
        ),
    ] {
        let r = put_toml(&app, &t.admin, &t.ws, toml).await;
        r.expect_error(422, "invalid_policy");
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("override:2: {key}: HIPAA mode")),
            "{message}"
        );
    }
    put_toml(
        &app,
        &t.admin,
        &t.ws,
        "[phi]\nenabled = false\nidle_logoff_minutes = 120\n",
    )
    .await
    .expect(200);
}

/// What `App::build` answers for a HIPAA-mode configuration adjusted by `adjust`, on a
/// data dir of its own (the refusals come before any storage is opened).
async fn hipaa_start(adjust: impl FnOnce(&mut Config)) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    hipaa_ready(&mut config);
    adjust(&mut config);
    let err = match App::build(config).await {
        Ok(_) => panic!("HIPAA mode started unsafely"),
        Err(e) => e.to_string(),
    };
    assert!(!err.contains('\n'), "{err}");
    (err, dir)
}

#[tokio::test]
async fn hipaa_mode_refuses_to_start_without_tls() {
    let (err, dir) = hipaa_start(|c| c.http.tls_proxy = None).await;
    assert!(
        err.starts_with("policy: http.tls_proxy: HIPAA mode needs TLS"),
        "{err}"
    );
    // Refused before anything was written.
    assert!(!dir.path().join("concord.db").exists());
}

#[tokio::test]
async fn hipaa_mode_refuses_to_start_without_a_production_key() {
    let (err, dir) = hipaa_start(|c| {
        c.mode = Mode::Development;
        c.keys.kek = None;
    })
    .await;
    assert!(
        err.starts_with("policy: mode: HIPAA mode needs a production key-encryption key"),
        "{err}"
    );
    // The development key it would have generated was not.
    assert!(!dir.path().join("keys").join("kek.key").exists());
}

#[tokio::test]
async fn hipaa_mode_refuses_to_start_with_less_than_six_years_of_audit() {
    let policies = tempfile::tempdir().unwrap();
    let file = policies.path().join("hipaa.toml");
    std::fs::write(
        &file,
        "[phi]\nenabled = true\n[retention]\naudit_days = 1825\n",
    )
    .unwrap();
    let path = policies.path().to_owned();
    let (err, _dir) = hipaa_start(|c| c.policy.dir = Some(path)).await;
    assert!(
        err.starts_with(&format!(
            "policy: {}:4: retention.audit_days: HIPAA mode needs the audit log kept at least six years",
            file.display()
        )),
        "{err}"
    );
}

fn concord_cli(args: &[String], extra: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_concord"));
    cmd.env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("CONCORD_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .args(args)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("concord runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

async fn policy_check_prints_the_effective_policy_and_refuses_a_bad_one(backend: Backend) {
    let mut app = spawn_app_with(backend, |c| {
        c.policy.modules = modules(&["default", "gdpr"])
    })
    .await;
    let t = app.team().await;
    let v = put_toml(
        &app,
        &t.admin,
        &t.ws,
        "[retention]\nmessages_days = 365\n[phi]\nidle_logoff_minutes = 120\n",
    )
    .await
    .expect(200)["version"]
        .as_i64()
        .unwrap();
    app.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("concord.toml");
    std::fs::write(&config, "[policy]\nmodules = [\"default\", \"gdpr\"]\n").unwrap();
    let mut args = app.cli_args();
    args.extend(["--config".into(), config.display().to_string()]);

    let (code, out, err) = concord_cli(&args, &["policy", "check"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("#   gdpr: policies/gdpr.toml (built in)"),
        "{out}"
    );
    assert!(
        out.contains(&format!("[workspace {} (override version {v})]", t.ws)),
        "{out}"
    );
    let section = &out[out.find(&format!("[workspace {}", t.ws)).unwrap()..];
    assert!(
        section
            .lines()
            .any(|l| l.starts_with("retention.messages_days = 365") && l.ends_with("# workspace")),
        "{out}"
    );
    assert!(
        section
            .lines()
            .any(|l| l.starts_with("retention.sessions_days = 30") && l.ends_with("# gdpr")),
        "{out}"
    );

    // A bad module file: one line on stderr naming file, line and key.
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(
        policies.join("gdpr.toml"),
        "[data_subject]\nerasure = \"shred\"\n",
    )
    .unwrap();
    std::fs::write(
        &config,
        format!(
            "[policy]\nmodules = [\"default\", \"gdpr\"]\ndir = \"{}\"\n",
            policies.display()
        ),
    )
    .unwrap();
    let (code, out, err) = concord_cli(&args, &["policy", "check"]);
    assert_ne!(code, 0, "{out}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "{}:2: data_subject.erasure: ",
            policies.join("gdpr.toml").display()
        )),
        "{err}"
    );

    // A stored override that the enabled modules no longer allow: HIPAA's logoff.
    std::fs::write(
        &config,
        "mode = \"production\"\n[http]\ntrusted_proxies = [\"10.0.0.1\"]\ntls_proxy = \"10.0.0.1\"\n\
         [policy]\nmodules = [\"default\", \"hipaa\"]\n",
    )
    .unwrap();
    let (code, out, err) = concord_cli(&args, &["policy", "check"]);
    assert_ne!(code, 0, "{out}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "workspace {} override version {v}:4: phi.idle_logoff_minutes: HIPAA mode allows at most 15 minutes",
            t.ws
        )),
        "{err}"
    );
    // And without TLS, HIPAA mode is refused before anything else.
    std::fs::write(
        &config,
        "mode = \"production\"\n[policy]\nmodules = [\"hipaa\"]\n",
    )
    .unwrap();
    let (code, _, err) = concord_cli(&args, &["policy", "check"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("http.tls_proxy: HIPAA mode needs TLS"),
        "{err}"
    );
}

async fn an_override_the_modules_no_longer_allow_is_listed_and_cleared_from_the_command_line(
    backend: Backend,
) {
    let mut app = spawn_app_with(backend, |c| {
        c.policy.modules = modules(&["default", "gdpr"])
    })
    .await;
    let t = app.team().await;
    let other = app.create_workspace(&t.admin, "Lab").await;
    let v1 = put_toml(&app, &t.admin, &t.ws, "[retention]\nmessages_days = 365\n")
        .await
        .expect(200)["version"]
        .as_i64()
        .unwrap();
    let v2 = put_toml(&app, &t.admin, &other, "[retention]\nfiles_days = 30\n")
        .await
        .expect(200)["version"]
        .as_i64()
        .unwrap();
    app.stop().await;
    // Both overrides were stored before the rules they break: a workspace's own audit
    // retention, and a key no module knows.
    app.raw_sql(&format!(
        "UPDATE policy_versions SET document = '[retention]\nmessages_days = 365\naudit_days = 400\n' WHERE version = {v1}"
    ))
    .await
    .unwrap();
    app.raw_sql(&format!(
        "UPDATE policy_versions SET document = '[retention]\nfile_days = 30\n' WHERE version = {v2}"
    ))
    .await
    .unwrap();

    // The server refuses to start, and says how to get out.
    let refused = match App::build(app.config.clone()).await {
        Ok(_) => panic!("started with an invalid stored override"),
        Err(e) => e.to_string(),
    };
    // Listed in workspace id order.
    let first = if t.ws < other {
        (&t.ws, v1)
    } else {
        (&other, v2)
    };
    assert!(
        refused.starts_with(&format!(
            "policy: workspace {} override version {}:",
            first.0, first.1
        )),
        "{refused}"
    );
    assert!(
        refused.contains(&format!(
            "`concord policy clear-override --workspace {}` clears it (1 more: `concord policy check` lists them)",
            first.0
        )),
        "{refused}"
    );

    // `policy check` lists every one of them, one line each.
    let args = app.cli_args();
    let (code, out, err) = concord_cli(&args, &["policy", "check"]);
    assert_ne!(code, 0, "{out}");
    let lines: Vec<&str> = err.trim().lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines.iter().any(|l| l.contains(&format!(
            "workspace {} override version {v1}:3: retention.audit_days: audit retention is the deployment's"
        , t.ws)) && l.contains(&format!("clear-override --workspace {}", t.ws))),
        "{err}"
    );
    assert!(
        lines.iter().any(|l| l.contains(&format!(
            "workspace {other} override version {v2}:2: retention.file_days: "
        ))),
        "{err}"
    );
    // The workspaces whose overrides hold are still described.
    assert!(out.contains("[deployment]"), "{out}");

    // Clearing one from the command line, with the server stopped.
    let (code, out, err) = concord_cli(
        &args,
        &["policy", "clear-override", "--workspace", t.ws.as_str()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "cleared the policy override of workspace {}",
            t.ws
        )),
        "{out}"
    );
    let (code, _, err) = concord_cli(&args, &["policy", "check"]);
    assert_ne!(code, 0);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(&format!("workspace {other} ")), "{err}");
    let (code, _, err) = concord_cli(
        &args,
        &["policy", "clear-override", "--workspace", other.as_str()],
    );
    assert_eq!(code, 0, "{err}");
    // Nothing left to clear: nothing is written.
    let rows = override_rows(&app).await;
    let (code, out, err) = concord_cli(
        &args,
        &["policy", "clear-override", "--workspace", other.as_str()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("has no policy override"), "{out}");
    assert_eq!(override_rows(&app).await, rows);
    let (code, _, err) = concord_cli(
        &args,
        &["policy", "clear-override", "--workspace", "not-a-workspace"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("--workspace: not a workspace id"), "{err}");
    let (code, _, _) = concord_cli(&args, &["policy", "check"]);
    assert_eq!(code, 0);

    // The server starts again; the workspaces follow the modules, and the clearing was
    // audited as a system action.
    let app = app.restart().await;
    let admin = app.login("admin@example.org", PASSWORD).await;
    let view = policy(&app, &admin, &t.ws).await.expect(200).clone();
    assert!(view["workspace_override"].is_null(), "{view}");
    assert_eq!(view["sources"]["retention.messages_days"], "default");
    let entries = audited(&app, &admin, "policy.override").await;
    let cleared: Vec<&Value> = entries
        .iter()
        .filter(|e| e["actor_type"] == "system")
        .collect();
    assert_eq!(cleared.len(), 2, "{entries:?}");
    assert!(cleared.iter().all(|e| e["outcome"] == "allowed"));
    let of_ws = cleared
        .iter()
        .find(|e| e["workspace_id"] == t.ws.as_str())
        .expect("the clearing of the workspace's override");
    assert_eq!(of_ws["details"]["cleared_version"], v1);
    assert_eq!(of_ws["target_id"], t.ws.as_str());
}

async fn an_override_document_is_at_most_64_kib(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let t = app.team().await;
    let document = |size: usize| {
        let mut text = String::from("[retention]\nfiles_days = 30\n");
        while text.len() < size {
            text.push_str("# Records schedule 4.2: every file is kept for thirty days.\n");
        }
        text.truncate(size - 1);
        text.push('\n');
        text
    };
    let r = put_toml(&app, &t.admin, &t.ws, &document(64 * 1024 + 1)).await;
    r.expect_error(413, "policy_too_large");
    assert_eq!(r.body["error"]["limit"], 64 * 1024);
    let r = app
        .put(
            &format!("/api/v1/workspaces/{}/policy", t.ws),
            &t.admin.access,
            json!({"description": "x".repeat(70 * 1024)}),
        )
        .await;
    r.expect_error(413, "policy_too_large");
    // A body that declares no length and runs somewhat over the limit is read to its end and
    // refused, so the client, still sending, receives the refusal.
    let line = b"# Records schedule 4.2, reviewed every year, no key here.\n";
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(line.repeat(60 * 1024 / line.len())),
        Ok(line.repeat(8 * 1024 / line.len())),
    ];
    let sent = app
        .client
        .put(app.url(&format!("/api/v1/workspaces/{}/policy", t.ws)))
        .bearer_auth(&t.admin.access)
        .header("content-type", "application/toml")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("the refusal is received");
    let r = crate::harness::reply(sent).await;
    r.expect_error(413, "policy_too_large");
    assert_eq!(r.body["error"]["limit"], 64 * 1024);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("64 KiB"));
    assert_eq!(override_rows(&app).await, 0);
    // Up to the limit is accepted.
    put_toml(&app, &t.admin, &t.ws, &document(64 * 1024))
        .await
        .expect(200);
    assert_eq!(override_rows(&app).await, 1);
}

async fn only_policy_managers_see_the_override_and_channels_others_cannot_read(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let t = app.team().await;
    app.create_user(&t.admin, "dan@example.org", "Dan").await;
    let dan = app.login("dan@example.org", PASSWORD).await;
    app.add_member(&t.admin, &t.ws, &dan, "admin").await;
    // A compliance officer who is a member of the workspace (in none of its private channels).
    let cora_id = app.create_user(&t.admin, "cora@example.org", "Cora").await;
    app.put(
        &format!("/api/v1/users/{cora_id}/system-role"),
        &t.admin.access,
        json!({"role": "compliance_officer"}),
    )
    .await
    .expect(200);
    let cora = app.login("cora@example.org", PASSWORD).await;
    app.add_member(&t.admin, &t.ws, &cora, "member").await;
    let ward = channel(&app, &t.admin, &t.ws, "ward-3", "private").await;
    let lobby = channel(&app, &t.admin, &t.ws, "lobby", "public").await;
    let notes = channel(&app, &t.ann, &t.ws, "ann-notes", "private").await;
    let toml = format!(
        "# the oncology ward\n[channels.\"{ward}\"]\nphi = true\n\n[channels.\"{lobby}\"]\nfiles_days = 7\n\n[channels.\"{notes}\"]\nmessages_days = 30\n"
    );
    put_toml(&app, &t.admin, &t.ws, &toml).await.expect(200);

    // Who sets overrides, and a compliance officer, see all of it.
    for who in [&t.admin, &cora] {
        let view = policy(&app, who, &t.ws).await.expect(200).clone();
        assert_eq!(view["workspace_override"]["document"], toml.as_str());
        for id in [&ward, &lobby, &notes] {
            assert!(view["policy"]["channels"].get(id).is_some(), "{view}");
        }
        assert_eq!(
            view["sources"][&format!("channels.{ward}.phi")],
            "workspace"
        );
    }
    // A member sees the effective values of the channels they may read, and nothing that
    // names the others.
    let r = policy(&app, &t.ann, &t.ws).await;
    let view = r.expect(200).clone();
    assert!(view["workspace_override"].is_null(), "{view}");
    let channels = view["policy"]["channels"].as_object().unwrap();
    let mut shown: Vec<&String> = channels.keys().collect();
    shown.sort();
    let mut readable = vec![&lobby, &notes];
    readable.sort();
    assert_eq!(shown, readable, "{view}");
    assert_eq!(channels[&lobby]["files_days"], 7);
    assert_eq!(channels[&notes]["messages_days"], 30);
    assert_eq!(
        view["sources"][&format!("channels.{lobby}.files_days")],
        "workspace"
    );
    assert!(!view.to_string().contains(&ward), "{view}");
    assert_eq!(r.headers["x-concord-authz"], "allowed");
    // Bo is in none of the private channels, and neither is Dan, who administers the
    // workspace but not its compliance policy: neither sees the override or the ward's PHI flag.
    for who in [&t.bo, &dan] {
        let view = policy(&app, who, &t.ws).await.expect(200).clone();
        assert!(view["workspace_override"].is_null(), "{view}");
        assert!(!view.to_string().contains(&ward), "{view}");
        assert!(!view.to_string().contains(&notes), "{view}");
        assert!(!view.to_string().contains("oncology"), "{view}");
        let channels = view["policy"]["channels"].as_object().unwrap();
        assert_eq!(channels.keys().collect::<Vec<_>>(), vec![&lobby], "{view}");
        assert_eq!(channels[&lobby]["files_days"], 7);
        // The workspace-wide values are there.
        assert_eq!(view["policy"]["retention"]["messages_days"], "forever");
    }
}

async fn a_change_names_the_version_it_was_made_against(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let t = app.team().await;
    let read = policy(&app, &t.admin, &t.ws).await;
    let version = read.expect(200)["version"].as_i64().unwrap();
    let etag = read.headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{version}\""));

    let first = put_toml_if(
        &app,
        &t.admin,
        &t.ws,
        "[retention]\nfiles_days = 30\n",
        Some(&etag),
    )
    .await;
    let v1 = first.expect(200)["version"].as_i64().unwrap();
    assert!(v1 > version);
    assert_eq!(first.headers["etag"].to_str().unwrap(), format!("\"{v1}\""));

    // A change made against the version before is refused, and so are tags naming none.
    for stale in [etag.as_str(), "W/\"1\"", "\"latest\""] {
        let r = put_toml_if(
            &app,
            &t.admin,
            &t.ws,
            "[retention]\nfiles_days = 60\n",
            Some(stale),
        )
        .await;
        r.expect_error(412, "version_conflict");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("version {v1}")),
            "{}",
            r.body
        );
    }
    let view = policy(&app, &t.ann, &t.ws).await.expect(200).clone();
    assert_eq!(view["version"], v1);
    assert_eq!(view["policy"]["retention"]["files_days"], 30);
    // Any of several, or any at all.
    let list = format!("\"{version}\", \"{v1}\"");
    let v2 = put_toml_if(
        &app,
        &t.admin,
        &t.ws,
        "[retention]\nfiles_days = 60\n",
        Some(&list),
    )
    .await
    .expect(200)["version"]
        .as_i64()
        .unwrap();
    put_toml_if(&app, &t.admin, &t.ws, "", Some("*"))
        .await
        .expect(200);
    // The refusals are audited with their reason.
    let entries = audited(&app, &t.admin, "policy.override").await;
    let failed: Vec<&Value> = entries
        .iter()
        .filter(|e| e["outcome"] == "failed")
        .collect();
    assert_eq!(failed.len(), 3, "{entries:?}");
    assert!(failed
        .iter()
        .all(|e| e["details"]["code"] == "version_conflict"));
    assert_eq!(
        entries.iter().filter(|e| e["outcome"] == "allowed").count(),
        3
    );
    assert!(v2 > v1);
}

async fn versions_never_collide_between_processes(backend: Backend) {
    use concord::domain::WorkspaceId;
    use concord::store::policies::{self as stored, PolicyVersionRecord};
    use concord::store::{StoreError, Tx};

    let app = spawn_app_with(backend, |_| {}).await;
    let t = app.team().await;
    let ws: WorkspaceId = t.ws.parse().unwrap();
    // Another process on the same database (a second node, or the command line) has taken
    // the next version and not committed yet.
    let other = app.open_store().await;
    let (taken_tx, taken_rx) = tokio::sync::oneshot::channel::<i64>();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let holder = tokio::spawn(async move {
        let result = other
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let version = stored::next_version(&mut tx.conn()).await?;
                    let record = PolicyVersionRecord {
                        version,
                        workspace_id: Some(ws),
                        document: String::new(),
                        digest: String::new(),
                        created_by: None,
                        created_at: chrono::Utc::now(),
                    };
                    stored::insert(&mut tx.conn(), &record).await?;
                    let _ = taken_tx.send(version);
                    let _ = release_rx.await;
                    Ok::<_, StoreError>(version)
                })
            })
            .await;
        other.close().await;
        result
    });
    let taken = taken_rx.await.expect("the other process took a version");

    let put = {
        let client = app.client.clone();
        let url = app.url(&format!("/api/v1/workspaces/{}/policy", t.ws));
        let token = t.admin.access.clone();
        tokio::spawn(async move {
            let resp = client
                .put(url)
                .bearer_auth(token)
                .header("content-type", "application/toml")
                .body("[retention]\nfiles_days = 30\n")
                .send()
                .await
                .expect("request sent");
            crate::harness::reply(resp).await
        })
    };
    if backend == Backend::Postgres {
        // The server's write has taken the same version and waits on the other's row.
        let waiting = "SELECT COUNT(*) FROM pg_stat_activity \
                       WHERE datname = current_database() AND wait_event_type = 'Lock'";
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while app.scalar(waiting).await == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the server's write never waited"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    // (SQLite: the other process holds the database's write lock, so the server's write
    // begins after it commits, and reads its version.)
    release_tx.send(()).unwrap();
    assert_eq!(holder.await.unwrap().unwrap(), taken);
    let r = put.await.unwrap();
    match backend {
        Backend::Postgres => {
            r.expect_error(409, "version_conflict");
            assert_eq!(override_rows(&app).await, 1);
            let entries = audited(&app, &t.admin, "policy.override").await;
            assert_eq!(entries.len(), 1, "{entries:?}");
            assert_eq!(entries[0]["outcome"], "failed");
            assert_eq!(entries[0]["details"]["code"], "version_conflict");
            // Read again and retried, it is stored under the next version.
            let v = put_toml(&app, &t.admin, &t.ws, "[retention]\nfiles_days = 30\n")
                .await
                .expect(200)["version"]
                .as_i64()
                .unwrap();
            assert!(v > taken);
        }
        Backend::Sqlite => {
            assert_eq!(r.expect(200)["version"].as_i64().unwrap(), taken + 1);
        }
    }
    assert_eq!(override_rows(&app).await, 2);
}

/// Bytes this process has read so far (Linux), or `None` where that is not known.
fn bytes_read() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("rchar:"))
        .and_then(|n| n.trim().parse().ok())
}

async fn a_reload_is_authorized_before_the_policy_folder_is_read(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let app = spawn_app_with(backend, |c| {
        c.policy.modules = modules(&["default", "gdpr"]);
        c.policy.dir = Some(path);
    })
    .await;
    let t = app.team().await;
    // A large module file (with a mistake at its end, so no reload puts it in force).
    const SIZE: usize = 16 * 1024 * 1024;
    let mut text = String::with_capacity(SIZE + 64);
    while text.len() < SIZE {
        text.push_str("# Retention per records schedule 4.2, reviewed every year.\n");
    }
    text.push_str("[retention]\nsession_days = 30\n");
    std::fs::write(dir.path().join("gdpr.toml"), &text).unwrap();
    drop(text);
    let reload = |who: Session| {
        let app = &app;
        async move {
            app.post(
                "/api/v1/admin/policies/reload",
                Some(&who.access),
                json!({}),
            )
            .await
        }
    };
    // Measured one test at a time: the other backend's run reads its own large file.
    static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _alone = MEASURING.lock().await;
    let Some(before) = bytes_read() else {
        return;
    };
    reload(t.ann.clone()).await.expect_error(403, "forbidden");
    let mut refused = bytes_read().unwrap() - before;
    // The least of a few tries: another test's reads can only add to one of them.
    for _ in 0..2 {
        let before = bytes_read().unwrap();
        reload(t.ann.clone()).await.expect_error(403, "forbidden");
        refused = refused.min(bytes_read().unwrap() - before);
    }
    // The measure sees a reload that reads the folder.
    let before = bytes_read().unwrap();
    reload(t.admin.clone())
        .await
        .expect_error(422, "invalid_policy");
    let read = bytes_read().unwrap() - before;
    assert!(read >= SIZE as u64, "read {read} bytes");
    assert!(
        refused < SIZE as u64 / 2,
        "a refused reload read {refused} bytes"
    );
}
