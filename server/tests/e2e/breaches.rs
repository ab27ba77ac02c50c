//! The breach register (GDPR Art. 33 and 34): a compliance officer records a breach, is told
//! the 72-hour deadline for the supervisory authority and sees it overdue once past; bad
//! records are refused naming the field; a closed breach no longer changes; members see
//! nothing of it; every write is audited without its free text, which is sealed. The report
//! finds, from the audit log, exactly the people whose data an involved account reached in
//! the breach's window, and no one else.

use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use serde_json::{json, Value};

use crate::chat::channel;
use crate::harness::{both_backends, Backend, Session, TestApp, PASSWORD};

const REGISTER: &str = "/api/v1/breaches";

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

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn patch(app: &TestApp, who: &Session, breach: &str, body: Value) -> crate::harness::Reply {
    app.call(
        Method::PATCH,
        &format!("{REGISTER}/{breach}"),
        Some(&who.access),
        Some(body),
    )
    .await
}

#[track_caller]
fn refused(reply: &crate::harness::Reply, field: &str) {
    reply.expect_error(422, "validation_failed");
    assert_eq!(reply.body["error"]["field"], field, "{}", reply.body);
}

async fn officer_keeps_the_breach_register_with_its_deadline(backend: Backend) {
    let app = crate::harness::spawn_app(backend).await;
    let t = app.team().await;
    let officer = officer(&app, &t.admin).await;
    let secret = "laptop stolen from the okapi car park";

    // Refused, naming the field.
    refused(
        &app.post(REGISTER, Some(&officer.access), json!({"title": "  "}))
            .await,
        "title",
    );
    refused(
        &app.post(
            REGISTER,
            Some(&officer.access),
            json!({"title": "x", "discovered_at": (Utc::now() + Duration::days(1)).to_rfc3339()}),
        )
        .await,
        "discovered_at",
    );
    let now = Utc::now();
    refused(
        &app.post(
            REGISTER,
            Some(&officer.access),
            json!({"title": "x", "discovered_at": (now - Duration::hours(2)).to_rfc3339(),
                   "occurred_from": (now - Duration::hours(1)).to_rfc3339()}),
        )
        .await,
        "occurred_from",
    );
    refused(
        &app.post(
            REGISTER,
            Some(&officer.access),
            json!({"title": "x", "occurred_from": (now - Duration::hours(2)).to_rfc3339(),
                   "occurred_to": (now - Duration::hours(3)).to_rfc3339()}),
        )
        .await,
        "occurred_to",
    );
    refused(
        &app.post(
            REGISTER,
            Some(&officer.access),
            json!({"title": "x", "accounts": [uuid::Uuid::now_v7()]}),
        )
        .await,
        "accounts",
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM breaches").await, 0);

    // Discovered now: due in 72 hours.
    let fresh = app
        .post(
            REGISTER,
            Some(&officer.access),
            json!({"title": "Stolen laptop", "description": secret, "accounts": [t.cy.user_id]}),
        )
        .await;
    let fresh = fresh.expect(201).clone();
    assert_eq!(fresh["status"], "open");
    assert_eq!(fresh["description"], secret);
    assert_eq!(fresh["accounts"], json!([t.cy.user_id]));
    assert_eq!(
        at(&fresh["authority_due_at"]) - at(&fresh["discovered_at"]),
        Duration::hours(72)
    );
    assert_eq!(fresh["hours_left"], 72);
    assert_eq!(fresh["overdue"], false);
    let fresh_id = id(&fresh);

    // Discovered 80 hours ago and not notified: overdue, and the overdue filter finds only it.
    let late = app
        .post(
            REGISTER,
            Some(&officer.access),
            json!({"title": "Misdirected export",
                   "discovered_at": (Utc::now() - Duration::hours(80)).to_rfc3339()}),
        )
        .await;
    let late = late.expect(201).clone();
    assert_eq!(late["overdue"], true);
    assert_eq!(late["hours_left"], -8);
    let late_id = id(&late);
    let overdue = app
        .get(&format!("{REGISTER}?overdue=true"), &officer.access)
        .await;
    let listed: Vec<String> = overdue.expect(200)["breaches"]
        .as_array()
        .unwrap()
        .iter()
        .map(id)
        .collect();
    assert_eq!(listed, vec![late_id.clone()]);
    let all = app.get(REGISTER, &officer.access).await;
    assert_eq!(all.expect(200)["breaches"].as_array().unwrap().len(), 2);

    // Telling the authority late ends the countdown and says it was late.
    refused(
        &patch(
            &app,
            &officer,
            &late_id,
            json!({"authority_notified_at": (Utc::now() - Duration::hours(81)).to_rfc3339()}),
        )
        .await,
        "authority_notified_at",
    );
    let told = patch(
        &app,
        &officer,
        &late_id,
        json!({"authority_notified_at": Utc::now().to_rfc3339(), "status": "contained"}),
    )
    .await;
    let told = told.expect(200).clone();
    assert_eq!(told["overdue"], false);
    assert_eq!(told["hours_left"], Value::Null);
    assert_eq!(told["notified_late"], true);
    assert_eq!(told["status"], "contained");

    // The discovery may move earlier, never later: the deadline runs from the first
    // moment it was known. The change is audited with the value before and after.
    let discovered = at(&fresh["discovered_at"]);
    refused(
        &patch(
            &app,
            &officer,
            &fresh_id,
            json!({"discovered_at": (discovered + Duration::minutes(2)).to_rfc3339()}),
        )
        .await,
        "discovered_at",
    );
    refused(
        &patch(
            &app,
            &officer,
            &fresh_id,
            json!({"discovered_at": "0001-01-01T00:00:00Z"}),
        )
        .await,
        "discovered_at",
    );
    let earlier = patch(
        &app,
        &officer,
        &fresh_id,
        json!({"discovered_at": (discovered - Duration::hours(1)).to_rfc3339()}),
    )
    .await;
    assert_eq!(earlier.expect(200)["hours_left"], 71);

    // Closing needs the authority told or the reason it need not be; closing is final.
    patch(
        &app,
        &officer,
        &fresh_id,
        json!({"status": "closed", "subjects_notified_at": Utc::now().to_rfc3339()}),
    )
    .await
    .expect_error(409, "breach_not_notified");
    let closed = patch(
        &app,
        &officer,
        &fresh_id,
        json!({"status": "closed", "subjects_notified_at": Utc::now().to_rfc3339(),
               "no_notification_reason": "the laptop's disk was encrypted; no risk"}),
    )
    .await;
    let closed = closed.expect(200).clone();
    assert_eq!(closed["status"], "closed");
    assert!(closed["closed_at"].is_string(), "{closed}");
    assert_eq!(closed["overdue"], false);
    assert_eq!(closed["hours_left"], Value::Null);
    assert_eq!(
        closed["no_notification_reason"],
        "the laptop's disk was encrypted; no risk"
    );
    patch(&app, &officer, &fresh_id, json!({"title": "again"}))
        .await
        .expect_error(409, "breach_closed");
    patch(
        &app,
        &officer,
        &uuid::Uuid::now_v7().to_string(),
        json!({"status": "closed"}),
    )
    .await
    .expect_error(404, "not_found");
    let got = app
        .get(&format!("{REGISTER}/{fresh_id}"), &officer.access)
        .await;
    assert_eq!(got.expect(200)["description"], secret);

    // Members see none of it; a system administrator does.
    for who in [&t.ann, &t.cy] {
        app.get(REGISTER, &who.access)
            .await
            .expect_error(403, "forbidden");
        app.get(&format!("{REGISTER}/{fresh_id}"), &who.access)
            .await
            .expect_error(403, "forbidden");
        app.post(REGISTER, Some(&who.access), json!({"title": "mine"}))
            .await
            .expect_error(403, "forbidden");
        // Refused before anything they sent is checked.
        app.post(REGISTER, Some(&who.access), json!({"title": " "}))
            .await
            .expect_error(403, "forbidden");
        patch(
            &app,
            who,
            &late_id,
            json!({"discovered_at": "0001-01-01T00:00:00Z"}),
        )
        .await
        .expect_error(403, "forbidden");
        patch(&app, who, &late_id, json!({"status": "closed"}))
            .await
            .expect_error(403, "forbidden");
    }
    app.get(REGISTER, &t.admin.access).await.expect(200);

    // Every write audited, with ids and dates, never the free text; the text is sealed.
    let events = app.audit_events(&officer.access).await;
    let of = |action: &str| {
        events
            .iter()
            .filter(|e| e["action"] == action)
            .cloned()
            .collect::<Vec<Value>>()
    };
    assert_eq!(of("breach.recorded").len(), 2);
    assert_eq!(of("breach.updated").len(), 3);
    let moved = &of("breach.updated")[1];
    assert_eq!(
        moved["details"]["changed"],
        json!(["discovered_at"]),
        "{moved}"
    );
    assert_eq!(
        at(&moved["details"]["before"]["discovered_at"]),
        discovered,
        "{moved}"
    );
    assert_eq!(
        at(&moved["details"]["after"]["discovered_at"]),
        discovered - Duration::hours(1),
        "{moved}"
    );
    // Reading the register is audited too: each list and each breach opened.
    assert!(of("breach.listed").len() >= 3, "{events:?}");
    assert_eq!(of("breach.viewed").len(), 1);
    for e in of("breach.recorded")
        .iter()
        .chain(of("breach.updated").iter())
    {
        assert_eq!(e["target_type"], "breach");
        assert!(!e.to_string().contains("okapi"), "{e}");
        assert!(!e.to_string().contains("Stolen"), "{e}");
        assert!(!e.to_string().contains("encrypted; no risk"), "{e}");
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM breaches WHERE description IS NOT NULL")
            .await,
        1
    );
    if backend == Backend::Sqlite {
        app.checkpoint_sqlite().await;
        let mut pending = vec![app.data_dir.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let bytes = std::fs::read(&path).unwrap_or_default();
                    assert!(
                        !bytes.windows(5).any(|w| w == b"okapi"),
                        "{} holds the description as typed",
                        path.display()
                    );
                }
            }
        }
    }
}

async fn download(app: &TestApp, who: &Session, file: &str) {
    let r = app
        .client
        .get(format!("{}/api/v1/files/{file}/content", app.base))
        .bearer_auth(&who.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

async fn share(app: &TestApp, who: &Session, channel: &str, name: &str) -> String {
    let file = app
        .upload(who, channel, name, format!("{name} contents").as_bytes())
        .await
        .expect(201)
        .clone();
    file["file"]["id"]
        .as_str()
        .or(file["id"].as_str())
        .unwrap()
        .to_owned()
}

fn people(report: &Value) -> Vec<String> {
    let mut out: Vec<String> = report["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user_id"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

async fn the_report_finds_exactly_the_people_an_involved_account_reached(backend: Backend) {
    let app = crate::harness::spawn_app(backend).await;
    let t = app.team().await;
    let officer = officer(&app, &t.admin).await;
    app.create_user(&t.admin, "dee@example.org", "Dee").await;
    let dee = app.login("dee@example.org", PASSWORD).await;
    app.add_member(&t.admin, &t.ws, &dee, "member").await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    for who in [&t.bo, &t.cy, &dee, &t.admin] {
        let r = app
            .post(
                &format!("/api/v1/channels/{general}/join"),
                Some(&who.access),
                json!({}),
            )
            .await;
        assert!(r.status.is_success(), "{}", r.body);
    }
    let anns = share(&app, &t.ann, &general, "ann.txt").await;
    let bos = share(&app, &t.bo, &general, "bo.txt").await;
    let cys = share(&app, &t.cy, &general, "cy.txt").await;
    let dees = share(&app, &dee, &general, "dee.txt").await;
    crate::chat::say(&app, &dee, &general, "minutes of Tuesday's meeting").await;

    // Before the breach began, Cy (whose account is then misused) reads Dee's file.
    download(&app, &t.cy, &dees).await;
    let began = Utc::now();
    // In the window: Cy's account reads Ann's and Bo's files and its own; the administrator,
    // not involved, reads Dee's.
    download(&app, &t.cy, &anns).await;
    download(&app, &t.cy, &bos).await;
    download(&app, &t.cy, &cys).await;
    download(&app, &t.admin, &dees).await;

    let breach = app
        .post(
            REGISTER,
            Some(&officer.access),
            json!({"title": "Cy's session token leaked", "occurred_from": began.to_rfc3339(),
                   "accounts": [t.cy.user_id]}),
        )
        .await;
    let breach = id(breach.expect(201));
    let path = format!("{REGISTER}/{breach}/report");
    let report = app.get(&path, &officer.access).await;
    let report = report.expect(200).clone();

    let mut expected = vec![t.ann.user_id.clone(), t.bo.user_id.clone()];
    expected.sort();
    assert_eq!(people(&report), expected, "{report}");
    for person in report["people"].as_array().unwrap() {
        assert_eq!(person["categories"], json!(["files"]));
        let accesses = person["accesses"].as_array().unwrap();
        assert_eq!(accesses.len(), 1, "{person}");
        assert_eq!(accesses[0]["action"], "file.downloaded");
        assert_eq!(accesses[0]["by"], t.cy.user_id.as_str());
    }
    let downloads = report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "file.downloaded")
        .cloned()
        .unwrap_or_default();
    assert_eq!(downloads["allowed"], 3, "{report}");
    let files = report["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == "files")
        .cloned()
        .unwrap_or_default();
    assert_eq!(files["objects"], 3, "{report}");
    assert!(
        report["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["account"] == t.cy.user_id.as_str()),
        "{report}"
    );
    assert_eq!(report["accounts"], json!([t.cy.user_id]));
    // Non-PHI reads of messages are not audited: whoever Cy's account could read is listed as
    // potentially exposed, Cy's own holder first among the reasons, and the gap is said.
    let exposed = |report: &Value, who: &str| {
        report["potentially_exposed"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["user_id"] == who)
            .cloned()
    };
    let cy_exposed = exposed(&report, &t.cy.user_id).expect("the involved account's holder");
    assert!(cy_exposed["reasons"][0]
        .as_str()
        .unwrap()
        .contains("involved"));
    let dee_exposed = exposed(&report, &dee.user_id).expect("an author Cy could read");
    assert!(
        dee_exposed["messages"].as_u64().unwrap() >= 1,
        "{dee_exposed}"
    );
    assert_eq!(report["potentially_exposed_truncated"], false);
    assert!(
        report["coverage_gaps"][0]
            .as_str()
            .unwrap()
            .contains("not audited"),
        "{report}"
    );
    // A window before 1970 or in the future is refused.
    for bad in ["from=0001-01-01T00:00:00Z", "to=9999-01-01T00:00:00Z"] {
        app.get(&format!("{path}?{bad}"), &officer.access)
            .await
            .expect_error(422, "validation_failed");
    }

    // A wider window reaches back to Dee's file; the administrator's read is never Cy's.
    let wider = format!(
        "{path}?from={}",
        (began - Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let wide = app.get(&wider, &officer.access).await;
    let mut expected = vec![
        t.ann.user_id.clone(),
        t.bo.user_id.clone(),
        dee.user_id.clone(),
    ];
    expected.sort();
    assert_eq!(people(wide.expect(200)), expected);

    // Only the register's keepers read a report, and reading one is audited.
    app.get(&path, &t.cy.access)
        .await
        .expect_error(403, "forbidden");
    let events = app.audit_events(&officer.access).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["action"] == "breach.reported")
            .count(),
        2
    );
}

/// A read of PHI names the messages read: the report traces each to its author.
async fn the_report_traces_reads_of_phi_to_the_people_they_were_about(backend: Backend) {
    let app = crate::harness::spawn_app(backend).await;
    let t = app.team().await;
    let officer = officer(&app, &t.admin).await;
    let ward = channel(&app, &t.ann, &t.ws, "ward-7", "public").await;
    for who in [&t.bo, &t.cy] {
        app.post(
            &format!("/api/v1/channels/{ward}/join"),
            Some(&who.access),
            json!({}),
        )
        .await
        .expect(200);
    }
    app.put(
        &format!("/api/v1/workspaces/{}/policy", t.ws),
        &t.admin.access,
        json!({"channels": {&ward: {"phi": true}}}),
    )
    .await
    .expect(200);
    crate::chat::say(&app, &t.ann, &ward, "bed 4: allergic to penicillin").await;
    crate::chat::say(&app, &t.bo, &ward, "bed 5: discharged").await;
    let began = Utc::now() - Duration::seconds(1);
    app.get(&format!("/api/v1/channels/{ward}/messages"), &t.cy.access)
        .await
        .expect(200);
    let breach = app
        .post(
            REGISTER,
            Some(&officer.access),
            json!({"title": "Cy's password reused", "occurred_from": began.to_rfc3339(),
                   "accounts": [t.cy.user_id]}),
        )
        .await;
    let breach = id(breach.expect(201));
    let report = app
        .get(&format!("{REGISTER}/{breach}/report"), &officer.access)
        .await;
    let report = report.expect(200).clone();
    let mut expected = vec![t.ann.user_id.clone(), t.bo.user_id.clone()];
    expected.sort();
    assert_eq!(people(&report), expected, "{report}");
    for person in report["people"].as_array().unwrap() {
        assert_eq!(person["categories"], json!(["messages"]), "{person}");
        assert_eq!(person["accesses"][0]["action"], "phi.read");
        assert_eq!(person["accesses"][0]["target_type"], "message");
    }
    let messages = report["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == "messages")
        .cloned()
        .unwrap_or_default();
    // The two messages read, and the channel Cy joined.
    assert_eq!(messages["objects"], 3, "{report}");
}

both_backends!(
    officer_keeps_the_breach_register_with_its_deadline,
    the_report_finds_exactly_the_people_an_involved_account_reached,
    the_report_traces_reads_of_phi_to_the_people_they_were_about
);
