//! Retention and legal holds: a pass destroys exactly the messages older than the policy's
//! period (their versions, reactions, pins and search entries with them) and nothing newer,
//! keeps what a hold covers by custodian, channel or date range until the hold is released,
//! and is audited; holds are checked and limited to those who manage them. A message its
//! author deletes keeps its text apart, for compliance officers only, while a hold covers it
//! or the policy's grace period runs, and not a moment after.
//!
//! Messages are made "old" by running the pass at a later time (`now`, which the servers here
//! allow with `retention.allow_explicit_now`), not by editing the database.

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::Method;
use serde_json::{json, Value};

use crate::chat::{channel, say};
use crate::harness::{both_backends, spawn_app_with, Backend, Session, TestApp, PASSWORD};

async fn spawn(backend: Backend) -> TestApp {
    spawn_app_with(backend, |c| {
        c.retention.allow_explicit_now = true;
        // No background pass: each test runs its own, at the time it names.
        c.retention.interval_seconds = 0;
        // Small writes, so a pass takes several.
        c.retention.batch = 2;
    })
    .await
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn posted_at(v: &Value) -> DateTime<Utc> {
    v["created_at"].as_str().unwrap().parse().unwrap()
}

/// A time between two posts (each post's stored time may be rounded to microseconds).
fn between(earlier: &Value, later: &Value) -> DateTime<Utc> {
    let (old, new) = (posted_at(earlier), posted_at(later));
    assert!(old < new, "{old} {new}");
    old + (new - old) / 2
}

/// The time a pass must run at for `messages_days = 1` to reach everything posted up to
/// `last_old` and nothing posted from `first_new` on.
fn a_day_after_between(last_old: &Value, first_new: &Value) -> String {
    (between(last_old, first_new) + TimeDelta::days(1)).to_rfc3339()
}

async fn keep_messages_one_day(app: &TestApp, admin: &Session, ws: &str) {
    app.put(
        &format!("/api/v1/workspaces/{ws}/policy"),
        &admin.access,
        json!({"retention": {"messages_days": 1}}),
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

/// The ids of a channel's top-level messages as a member sees them, with deleted flags.
async fn history(app: &TestApp, who: &Session, channel: &str) -> Vec<(String, bool, String)> {
    app.get(
        &format!("/api/v1/channels/{channel}/messages?limit=200"),
        &who.access,
    )
    .await
    .expect(200)
    .as_array()
    .unwrap()
    .iter()
    .map(|m| {
        (
            id(m),
            m["deleted"].as_bool().unwrap(),
            m["text"].as_str().unwrap().to_owned(),
        )
    })
    .collect()
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

async fn audit(app: &TestApp, admin: &Session, action: &str) -> Vec<Value> {
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

async fn retention_destroys_what_is_older_than_the_period(backend: Backend) {
    let app = spawn(backend).await;
    let t = app.team().await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    app.post(
        &format!("/api/v1/channels/{general}/join"),
        Some(&t.bo.access),
        json!({}),
    )
    .await
    .expect(200);

    // Old: an edited message with a reaction and a pin, a plain one, a thread whose reply is
    // old too, and a root whose reply comes after the cutoff.
    let edited = say(&app, &t.ann, &general, "quagga draft").await;
    app.call(
        Method::PATCH,
        &format!("/api/v1/messages/{}", id(&edited)),
        Some(&t.ann.access),
        Some(json!({"text": "quagga final"})),
    )
    .await
    .expect(200);
    app.call(
        Method::PUT,
        &format!("/api/v1/messages/{}/reactions/thumbsup", id(&edited)),
        Some(&t.bo.access),
        None,
    )
    .await;
    app.call(
        Method::PUT,
        &format!("/api/v1/messages/{}/pin", id(&edited)),
        Some(&t.ann.access),
        None,
    )
    .await;
    let plain = say(&app, &t.bo, &general, "quagga plain").await;
    let thread = say(&app, &t.ann, &general, "quagga thread").await;
    let reply = app
        .post(
            &format!("/api/v1/channels/{general}/messages"),
            Some(&t.bo.access),
            json!({"text": "quagga reply", "thread_root_id": id(&thread)}),
        )
        .await
        .expect(201)
        .clone();
    let lasting_root = say(&app, &t.ann, &general, "quagga lasting root").await;
    // New: posted after the cutoff.
    let new = say(&app, &t.bo, &general, "okapi fresh").await;
    let late_reply = app
        .post(
            &format!("/api/v1/channels/{general}/messages"),
            Some(&t.ann.access),
            json!({"text": "okapi late reply", "thread_root_id": id(&lasting_root)}),
        )
        .await
        .expect(201)
        .clone();
    let now = a_day_after_between(&lasting_root, &new);
    assert_eq!(found(&app, &t.ann, &t.ws, "quagga").await.len(), 5);

    keep_messages_one_day(&app, &t.admin, &t.ws).await;
    let report = run(&app, &t.admin, &t.ws, &now).await;
    assert_eq!(report["destroyed"], 4, "{report}");
    assert_eq!(report["emptied"], 1, "{report}");
    assert_eq!(report["held"], 0, "{report}");
    assert!(report["batches"].as_u64().unwrap() >= 3, "{report}");

    // What remains: the root kept for its new reply (content gone) and the new message.
    let seen = history(&app, &t.bo, &general).await;
    assert_eq!(
        seen,
        vec![
            (id(&lasting_root), true, String::new()),
            (id(&new), false, "okapi fresh".to_owned()),
        ]
    );
    for gone in [&edited, &plain, &thread, &reply] {
        app.get(
            &format!("/api/v1/messages/{}/versions", id(gone)),
            &t.ann.access,
        )
        .await
        .expect_error(404, "not_found");
    }
    let replies = app
        .get(
            &format!("/api/v1/messages/{}/thread", id(&lasting_root)),
            &t.ann.access,
        )
        .await
        .expect(200)
        .to_string();
    assert!(replies.contains(&id(&late_reply)), "{replies}");
    let pins = app
        .get(&format!("/api/v1/channels/{general}/pins"), &t.ann.access)
        .await
        .expect(200)
        .to_string();
    assert!(!pins.contains(&id(&edited)), "{pins}");
    // The search index followed.
    assert!(found(&app, &t.ann, &t.ws, "quagga").await.is_empty());
    assert_eq!(found(&app, &t.ann, &t.ws, "okapi").await.len(), 2);

    // Audited once, with counts and no content.
    let entries = audit(&app, &t.admin, "retention.run").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["details"]["destroyed"], 4);
    assert_eq!(entries[0]["workspace_id"], t.ws.as_str());
    assert!(!entries[0].to_string().contains("quagga"));

    // A second pass at the same time finds nothing more to do.
    let again = run(&app, &t.admin, &t.ws, &now).await;
    assert_eq!(again["destroyed"], 0, "{again}");
    assert_eq!(again["emptied"], 0, "{again}");
}

async fn holds_keep_what_they_cover_until_released(backend: Backend) {
    let app = spawn(backend).await;
    let t = app.team().await;
    let general = channel(&app, &t.admin, &t.ws, "general", "public").await;
    let legal = channel(&app, &t.admin, &t.ws, "legal", "public").await;
    for who in [&t.ann, &t.bo, &t.cy] {
        for c in [&general, &legal] {
            app.post(
                &format!("/api/v1/channels/{c}/join"),
                Some(&who.access),
                json!({}),
            )
            .await
            .expect(200);
        }
    }
    let unheld = say(&app, &t.cy, &general, "kudu unheld").await;
    let by_custodian = say(&app, &t.ann, &general, "kudu custodian").await;
    let in_channel = say(&app, &t.bo, &legal, "kudu channel").await;
    let in_range = say(&app, &t.cy, &general, "kudu range").await;
    let after = say(&app, &t.cy, &general, "kudu after").await;
    let now = a_day_after_between(&in_range, &after);

    let holds = format!("/api/v1/workspaces/{}/legal-holds", t.ws);
    let custodian_hold = app
        .post(
            &holds,
            Some(&t.admin.access),
            json!({"name": "Ann's matter", "reason": "pending litigation", "custodians": [t.ann.user_id]}),
        )
        .await
        .expect(201)
        .clone();
    assert_eq!(custodian_hold["active"], true);
    assert_eq!(custodian_hold["name"], "Ann's matter");
    app.post(
        &holds,
        Some(&t.admin.access),
        json!({"name": "Legal channel", "channels": [legal]}),
    )
    .await
    .expect(201);
    // Around the one message posted between Bo's in #legal and the last one.
    let from = between(&in_channel, &in_range).to_rfc3339();
    let to = between(&in_range, &after).to_rfc3339();
    app.post(
        &holds,
        Some(&t.admin.access),
        json!({"name": "That moment", "from": from, "to": to}),
    )
    .await
    .expect(201);

    keep_messages_one_day(&app, &t.admin, &t.ws).await;
    let report = run(&app, &t.admin, &t.ws, &now).await;
    assert_eq!(report["destroyed"], 1, "{report}");
    assert_eq!(report["held"], 3, "{report}");
    let general_ids = |seen: Vec<(String, bool, String)>| {
        seen.into_iter().map(|(id, _, _)| id).collect::<Vec<_>>()
    };
    assert_eq!(
        general_ids(history(&app, &t.cy, &general).await),
        vec![id(&by_custodian), id(&in_range), id(&after)]
    );
    assert_eq!(
        general_ids(history(&app, &t.cy, &legal).await),
        vec![id(&in_channel)]
    );
    assert!(!found(&app, &t.cy, &t.ws, "kudu")
        .await
        .contains(&id(&unheld)));

    // Released, the custodian hold stays listed and no longer keeps Ann's message.
    let released = app
        .delete(&format!("{holds}/{}", id(&custodian_hold)), &t.admin.access)
        .await
        .expect(200)
        .clone();
    assert_eq!(released["active"], false);
    assert_eq!(released["released_by"], t.admin.user_id.as_str());
    app.delete(&format!("{holds}/{}", id(&custodian_hold)), &t.admin.access)
        .await
        .expect_error(409, "already_released");
    let listed = app.get(&holds, &t.admin.access).await.expect(200).clone();
    let listed = listed["holds"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0]["id"], custodian_hold["id"]);
    assert_eq!(listed[0]["active"], false);
    assert!(listed[0]["released_at"].is_string());

    let report = run(&app, &t.admin, &t.ws, &now).await;
    assert_eq!(report["destroyed"], 1, "{report}");
    assert_eq!(report["held"], 2, "{report}");
    assert_eq!(
        general_ids(history(&app, &t.cy, &general).await),
        vec![id(&in_range), id(&after)]
    );
    assert!(!found(&app, &t.cy, &t.ws, "kudu")
        .await
        .contains(&id(&by_custodian)));

    assert_eq!(audit(&app, &t.admin, "legal_hold.created").await.len(), 3);
    let releases = audit(&app, &t.admin, "legal_hold.released").await;
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0]["target_id"], custodian_hold["id"]);
    assert_eq!(audit(&app, &t.admin, "retention.run").await.len(), 2);
}

async fn holds_are_checked_and_kept_to_those_who_manage_them(backend: Backend) {
    // The default configuration: a run may not name its time.
    let app = crate::harness::spawn_app(backend).await;
    let t = app.team().await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    let holds = format!("/api/v1/workspaces/{}/legal-holds", t.ws);

    for (body, field) in [
        (json!({"name": "  "}), "name"),
        (json!({"name": "x".repeat(201)}), "name"),
        (
            json!({"name": "Range", "from": "2024-02-01T00:00:00Z", "to": "2024-01-01T00:00:00Z"}),
            "from",
        ),
        (
            json!({"name": "Channel", "channels": [uuid::Uuid::now_v7()]}),
            "channels",
        ),
        (
            json!({"name": "Custodian", "custodians": [uuid::Uuid::now_v7()]}),
            "custodians",
        ),
    ] {
        let r = app.post(&holds, Some(&t.admin.access), body.clone()).await;
        r.expect_error(422, "validation_failed");
        assert_eq!(r.body["error"]["field"], field, "{body}: {}", r.body);
    }
    app.post(
        &holds,
        Some(&t.admin.access),
        json!({"name": "Typo", "custodian": []}),
    )
    .await
    .expect_error(422, "invalid_body");
    app.post(
        &holds,
        Some(&t.admin.access),
        json!({"name": "Bad id", "channels": ["general"]}),
    )
    .await
    .expect_error(422, "invalid_body");
    assert!(app.get(&holds, &t.admin.access).await.expect(200)["holds"]
        .as_array()
        .unwrap()
        .is_empty());

    // A member neither places, lists nor releases holds; someone outside the workspace
    // does not learn it exists.
    let hold = json!({"name": "Matter", "channels": [general]});
    app.post(&holds, Some(&t.ann.access), hold.clone())
        .await
        .expect_error(403, "forbidden");
    app.get(&holds, &t.ann.access)
        .await
        .expect_error(403, "forbidden");
    app.create_user(&t.admin, "out@example.org", "Out").await;
    let outsider = app.login("out@example.org", PASSWORD).await;
    app.post(&holds, Some(&outsider.access), hold.clone())
        .await
        .expect_error(404, "not_found");

    // A workspace admin and a compliance officer (who belongs to no workspace) may.
    app.add_member(&t.admin, &t.ws, &outsider, "admin").await;
    let placed = app
        .post(&holds, Some(&outsider.access), hold.clone())
        .await
        .expect(201)
        .clone();
    app.create_user(&t.admin, "officer@example.org", "Officer")
        .await;
    let officer = app.login("officer@example.org", PASSWORD).await;
    app.put(
        &format!("/api/v1/users/{}/system-role", officer.user_id),
        &t.admin.access,
        json!({"role": "compliance_officer"}),
    )
    .await
    .expect(200);
    app.post(&holds, Some(&officer.access), hold.clone())
        .await
        .expect(201);
    app.delete(&format!("{holds}/{}", id(&placed)), &t.ann.access)
        .await
        .expect_error(403, "forbidden");
    // The workspace's admins may be custodians: releasing is for compliance officers.
    app.delete(&format!("{holds}/{}", id(&placed)), &outsider.access)
        .await
        .expect_error(403, "forbidden");
    app.delete(&format!("{holds}/{}", id(&placed)), &officer.access)
        .await
        .expect(200);
    assert_eq!(
        app.get(&holds, &officer.access).await.expect(200)["holds"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Running retention is for those who set policies; naming the time needs the setting.
    let run = format!("/api/v1/workspaces/{}/retention/run", t.ws);
    app.post(&run, Some(&t.ann.access), json!({}))
        .await
        .expect_error(403, "forbidden");
    app.post(&run, Some(&officer.access), json!({}))
        .await
        .expect_error(404, "not_found");
    app.post(
        &run,
        Some(&t.admin.access),
        json!({"now": "2040-01-01T00:00:00Z"}),
    )
    .await
    .expect_error(422, "explicit_now_disabled");
    let report = app
        .post(&run, Some(&t.admin.access), json!({}))
        .await
        .expect(200)
        .clone();
    // The default policy keeps messages forever: nothing to do, nothing audited.
    assert_eq!(report["messages_days"], Value::Null, "{report}");
    assert_eq!(report["examined"], 0, "{report}");
}

/// A compliance officer (system role), signed in.
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

/// The messages a hold covers, as `who` reads them.
async fn held(app: &TestApp, who: &Session, ws: &str, hold: &str) -> Vec<Value> {
    app.get(
        &format!("/api/v1/workspaces/{ws}/legal-holds/{hold}/messages"),
        &who.access,
    )
    .await
    .expect(200)["messages"]
        .as_array()
        .unwrap()
        .clone()
}

fn a_minute_from_now() -> String {
    (Utc::now() + TimeDelta::minutes(1)).to_rfc3339()
}

async fn a_held_message_its_author_deletes_stays_for_the_compliance_officer(backend: Backend) {
    let app = spawn(backend).await;
    let t = app.team().await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    app.post(
        &format!("/api/v1/channels/{general}/join"),
        Some(&t.bo.access),
        json!({}),
    )
    .await
    .expect(200);
    let officer = officer(&app, &t.admin).await;
    let holds = format!("/api/v1/workspaces/{}/legal-holds", t.ws);
    let hold = app
        .post(
            &holds,
            Some(&officer.access),
            json!({"name": "Ann's matter", "custodians": [t.ann.user_id]}),
        )
        .await
        .expect(201)
        .clone();
    let hold = id(&hold);

    let kept = say(&app, &t.ann, &general, "zebu first draft").await;
    app.call(
        Method::PATCH,
        &format!("/api/v1/messages/{}", id(&kept)),
        Some(&t.ann.access),
        Some(json!({"text": "zebu final words"})),
    )
    .await
    .expect(200);
    let gone = say(&app, &t.bo, &general, "zebu from bo").await;
    // Each author sees their delete succeed, and everyone sees tombstones.
    for (who, m) in [(&t.ann, &kept), (&t.bo, &gone)] {
        app.delete(&format!("/api/v1/messages/{}", id(m)), &who.access)
            .await
            .expect(204);
    }
    assert_eq!(
        history(&app, &t.bo, &general).await,
        vec![
            (id(&kept), true, String::new()),
            (id(&gone), true, String::new())
        ]
    );
    assert!(found(&app, &t.bo, &t.ws, "zebu").await.is_empty());
    // A held file its uploader deletes is gone for everyone, but kept.
    let file = app
        .upload(&t.ann, &general, "held.txt", b"zebu held file")
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.delete(&format!("/api/v1/files/{file}"), &t.ann.access)
        .await
        .expect(204);
    app.get(&format!("/api/v1/files/{file}"), &t.ann.access)
        .await
        .expect_error(404, "not_found");
    app.get(&format!("/api/v1/files/{file}/content"), &t.bo.access)
        .await
        .expect_error(404, "not_found");
    let listed = app
        .get(&format!("/api/v1/channels/{general}/files"), &t.bo.access)
        .await
        .expect(200)
        .clone();
    assert!(!listed.to_string().contains(&file), "{listed}");
    assert_eq!(
        *app.get(
            &format!("/api/v1/messages/{}/versions", id(&kept)),
            &t.ann.access,
        )
        .await
        .expect(200),
        json!([])
    );

    // The compliance officer reads the held message as it was, with its earlier version.
    let seen = held(&app, &officer, &t.ws, &hold).await;
    // Ann's deleted message, and the one her (deleted, hidden) file was posted with.
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0]["id"], kept["id"]);
    assert!(seen[0]["deleted_at"].is_string(), "{}", seen[0]);
    assert_eq!(seen[0]["text"], "zebu final words");
    assert_eq!(seen[0]["versions"][0]["version"], 1);
    assert_eq!(seen[0]["versions"][0]["text"], "zebu first draft");
    assert!(seen[0]["grace_ends_at"].is_string(), "{}", seen[0]);
    // No one else does: not its author, not a workspace administrator.
    let content = format!("{holds}/{hold}/messages");
    app.get(&content, &t.ann.access)
        .await
        .expect_error(403, "forbidden");
    app.create_user(&t.admin, "wsadmin@example.org", "Workspace Admin")
        .await;
    let ws_admin = app.login("wsadmin@example.org", PASSWORD).await;
    app.add_member(&t.admin, &t.ws, &ws_admin, "admin").await;
    app.get(&content, &ws_admin.access)
        .await
        .expect_error(403, "forbidden");
    app.get(&format!("{content}?cursor=nope"), &officer.access)
        .await
        .expect_error(422, "validation_failed");
    app.get(&format!("{content}?limit=0"), &officer.access)
        .await
        .expect_error(422, "validation_failed");
    app.get(
        &format!("{holds}/{}/messages", uuid::Uuid::now_v7()),
        &officer.access,
    )
    .await
    .expect_error(404, "not_found");

    // Retention keeps the text while the hold is in force, and destroys it once released.
    let report = run(&app, &t.admin, &t.ws, &a_minute_from_now()).await;
    assert_eq!(report["purged"], 0, "{report}");
    assert_eq!(report["remnants_held"], 1, "{report}");
    assert_eq!(report["files_held"], 1, "{report}");
    assert_eq!(
        held(&app, &officer, &t.ws, &hold).await[0]["text"],
        "zebu final words"
    );
    app.delete(&format!("{holds}/{hold}"), &officer.access)
        .await
        .expect(200);
    let report = run(&app, &t.admin, &t.ws, &a_minute_from_now()).await;
    assert_eq!(report["purged"], 1, "{report}");
    assert_eq!(report["remnants_held"], 0, "{report}");
    assert_eq!(report["files_purged"], 1, "{report}");
    let seen = held(&app, &officer, &t.ws, &hold).await;
    assert_eq!(seen[0]["text"], Value::Null, "{}", seen[0]);
    assert_eq!(seen[0]["versions"], json!([]));
    assert_eq!(seen[0]["grace_ends_at"], Value::Null);

    let deletions = audit(&app, &t.admin, "message.deleted").await;
    let kept_flag = |m: &Value| {
        deletions
            .iter()
            .find(|e| e["target_id"] == m["id"])
            .map(|e| e["details"]["text_kept"].clone())
    };
    assert_eq!(kept_flag(&kept), Some(json!(true)));
    assert_eq!(kept_flag(&gone), Some(json!(false)));
    let reads = audit(&app, &t.admin, "legal_hold.content_read").await;
    assert_eq!(reads.len(), 3, "{reads:?}");
    assert_eq!(reads[0]["target_id"].as_str(), Some(hold.as_str()));
}

async fn deleted_text_waits_out_the_grace_period_and_any_hold(backend: Backend) {
    let app = spawn(backend).await;
    let t = app.team().await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    let officer = officer(&app, &t.admin).await;
    let policy = format!("/api/v1/workspaces/{}/policy", t.ws);
    app.put(
        &policy,
        &t.admin.access,
        json!({"retention": {"deletion_grace_days": 2}}),
    )
    .await
    .expect(200);
    let m = say(&app, &t.ann, &general, "yak secret plan").await;
    app.delete(&format!("/api/v1/messages/{}", id(&m)), &t.ann.access)
        .await
        .expect(204);
    let days = |n: i64| (Utc::now() + TimeDelta::days(n)).to_rfc3339();
    // Within the grace period nothing is destroyed.
    let report = run(&app, &t.admin, &t.ws, &days(1)).await;
    assert_eq!(report["purged"], 0, "{report}");
    assert_eq!(report["remnants_held"], 0, "{report}");

    // A hold placed during the grace period keeps the text past it.
    let hold = app
        .post(
            &format!("/api/v1/workspaces/{}/legal-holds", t.ws),
            Some(&officer.access),
            json!({"name": "General", "channels": [general]}),
        )
        .await
        .expect(201)
        .clone();
    let hold = id(&hold);
    let seen = held(&app, &officer, &t.ws, &hold).await;
    assert_eq!(seen[0]["text"], "yak secret plan");
    let grace_ends: DateTime<Utc> = seen[0]["grace_ends_at"].as_str().unwrap().parse().unwrap();
    assert!(grace_ends > Utc::now() + TimeDelta::days(1), "{grace_ends}");
    let report = run(&app, &t.admin, &t.ws, &days(3)).await;
    assert_eq!(report["purged"], 0, "{report}");
    assert_eq!(report["remnants_held"], 1, "{report}");
    app.delete(
        &format!("/api/v1/workspaces/{}/legal-holds/{hold}", t.ws),
        &officer.access,
    )
    .await
    .expect(200);
    let report = run(&app, &t.admin, &t.ws, &days(3)).await;
    assert_eq!(report["purged"], 1, "{report}");
    assert_eq!(
        held(&app, &officer, &t.ws, &hold).await[0]["text"],
        Value::Null
    );

    // With no grace period and no hold, a deletion keeps nothing at all.
    app.put(
        &policy,
        &t.admin.access,
        json!({"retention": {"deletion_grace_days": 0}}),
    )
    .await
    .expect(200);
    let m2 = say(&app, &t.ann, &general, "yak second thought").await;
    app.delete(&format!("/api/v1/messages/{}", id(&m2)), &t.ann.access)
        .await
        .expect(204);
    let seen = held(&app, &officer, &t.ws, &hold).await;
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1]["id"], m2["id"]);
    assert_eq!(seen[1]["text"], Value::Null, "{}", seen[1]);

    // Pages follow the cursor, oldest first.
    let content = format!("/api/v1/workspaces/{}/legal-holds/{hold}/messages", t.ws);
    let first = app
        .get(&format!("{content}?limit=1"), &officer.access)
        .await
        .expect(200)
        .clone();
    assert_eq!(first["messages"][0]["id"], m["id"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get(
            &format!("{content}?limit=1&cursor={cursor}"),
            &officer.access,
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(second["messages"][0]["id"], m2["id"]);
    let cursor = second["next_cursor"].as_str().unwrap();
    let third = app
        .get(
            &format!("{content}?limit=1&cursor={cursor}"),
            &officer.access,
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(third["messages"], json!([]));
    assert_eq!(third["next_cursor"], Value::Null);
}

both_backends!(
    retention_destroys_what_is_older_than_the_period,
    holds_keep_what_they_cover_until_released,
    holds_are_checked_and_kept_to_those_who_manage_them,
    a_held_message_its_author_deletes_stays_for_the_compliance_officer,
    deleted_text_waits_out_the_grace_period_and_any_hold,
);
