//! Data-subject requests (GDPR Art. 12(3)): a compliance officer records a person's request,
//! due a month later by the deployment's policy; extends it with a reason as far as the
//! policy allows and no further; sees overdue requests flagged; completes or refuses them.
//! A person files their own and follows it; members and workspace administrators see none
//! of the register; every step is audited, and the free text is sealed, not stored as typed.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::harness::{both_backends, spawn_app_with, Backend, Session, TestApp, PASSWORD};

async fn spawn(backend: Backend, modules: &[&str]) -> TestApp {
    let modules: Vec<String> = modules.iter().map(|m| (*m).to_owned()).collect();
    spawn_app_with(backend, |c| c.policy.modules = modules).await
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

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

const REGISTER: &str = "/api/v1/data-subject-requests";

async fn officer_keeps_the_register_with_deadlines_from_policy(backend: Backend) {
    let app = spawn(backend, &["default", "gdpr"]).await;
    let t = app.team().await;
    let officer = officer(&app, &t.admin).await;

    // Recorded now: due in the policy's 30 days, with 30 days left.
    let r = app
        .post(
            REGISTER,
            Some(&officer.access),
            json!({"subject_id": t.ann.user_id, "kind": "access", "note": "letter of 2 March: copy of everything"}),
        )
        .await;
    let req = r.expect(201).clone();
    assert_eq!(req["status"], "open");
    assert_eq!(req["kind"], "access");
    assert_eq!(req["subject_id"], t.ann.user_id.as_str());
    assert_eq!(req["note"], "letter of 2 March: copy of everything");
    assert_eq!(req["overdue"], false);
    assert_eq!(req["days_left"], 30);
    assert_eq!(
        at(&req["due_at"]) - at(&req["received_at"]),
        Duration::days(30)
    );
    let rid = id(&req);

    // The note is sealed, not stored as typed.
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM data_subject_requests WHERE note IS NOT NULL")
            .await,
        1
    );
    let got = app.get(&format!("{REGISTER}/{rid}"), &officer.access).await;
    assert_eq!(got.expect(200)["note"], req["note"]);

    // Extensions: a reason is required; within the gdpr module's 60 days; not beyond.
    let extend = format!("{REGISTER}/{rid}/extend");
    app.post(&extend, Some(&officer.access), json!({"reason": "  "}))
        .await
        .expect_error(422, "reason_required");
    app.post(
        &extend,
        Some(&officer.access),
        json!({"reason": "ten years of records", "days": 61}),
    )
    .await
    .expect_error(422, "extension_too_long");
    let ext = app
        .post(
            &extend,
            Some(&officer.access),
            json!({"reason": "ten years of records", "days": 30}),
        )
        .await;
    let ext = ext.expect(200).clone();
    assert_eq!(ext["status"], "extended");
    assert_eq!(ext["extension_reason"], "ten years of records");
    assert_eq!(
        at(&ext["extended_until"]) - at(&req["due_at"]),
        Duration::days(30)
    );
    assert_eq!(ext["days_left"], 60);
    app.post(
        &extend,
        Some(&officer.access),
        json!({"reason": "still more", "days": 31}),
    )
    .await
    .expect_error(422, "extension_too_long");
    let ext = app
        .post(
            &extend,
            Some(&officer.access),
            json!({"reason": "still more"}),
        )
        .await;
    assert_eq!(
        at(&ext.expect(200)["extended_until"]) - at(&req["due_at"]),
        Duration::days(60)
    );
    app.post(
        &extend,
        Some(&officer.access),
        json!({"reason": "again", "days": 1}),
    )
    .await
    .expect_error(422, "extension_too_long");

    // Received 40 days ago: overdue, and the overdue filter finds only it.
    let late = app
        .post(
            REGISTER,
            Some(&officer.access),
            json!({"subject_id": t.bo.user_id, "kind": "erasure",
                   "received_at": (Utc::now() - Duration::days(40)).to_rfc3339()}),
        )
        .await;
    let late = late.expect(201).clone();
    assert_eq!(late["overdue"], true);
    assert!(late["days_left"].as_i64().unwrap() <= -9, "{late}");
    assert!(late["note"].is_null());
    let overdue = app
        .get(&format!("{REGISTER}?overdue=true"), &officer.access)
        .await;
    let overdue = overdue.expect(200)["requests"].as_array().unwrap().clone();
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0]["id"], late["id"]);

    // Received in the future: refused.
    app.post(
        REGISTER,
        Some(&officer.access),
        json!({"subject_id": t.bo.user_id, "kind": "access",
               "received_at": (Utc::now() + Duration::days(2)).to_rfc3339()}),
    )
    .await
    .expect_error(422, "validation_failed");
    // Unknown kind, unknown person.
    let r = app
        .post(
            REGISTER,
            Some(&officer.access),
            json!({"subject_id": t.bo.user_id, "kind": "forget-me"}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.body);
    app.post(
        REGISTER,
        Some(&officer.access),
        json!({"subject_id": uuid::Uuid::now_v7(), "kind": "access"}),
    )
    .await
    .expect_error(404, "not_found");

    // Complete one, refuse the other (a refusal needs a reason); answered ones stay answered.
    let done = app
        .post(
            &format!("{REGISTER}/{rid}/complete"),
            Some(&officer.access),
            json!({"outcome": "export sent on 4 March"}),
        )
        .await;
    let done = done.expect(200).clone();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["outcome"], "export sent on 4 March");
    assert_eq!(done["overdue"], false);
    assert!(done["days_left"].is_null());
    assert_eq!(done["handled_by"], officer.user_id.as_str());
    assert!(!done["completed_at"].is_null());
    let lid = id(&late);
    app.post(
        &format!("{REGISTER}/{lid}/refuse"),
        Some(&officer.access),
        json!({"reason": ""}),
    )
    .await
    .expect_error(422, "reason_required");
    let refused = app
        .post(
            &format!("{REGISTER}/{lid}/refuse"),
            Some(&officer.access),
            json!({"reason": "manifestly unfounded"}),
        )
        .await;
    let refused = refused.expect(200).clone();
    assert_eq!(refused["status"], "refused");
    assert_eq!(refused["outcome"], "manifestly unfounded");
    assert_eq!(refused["overdue"], false);
    app.post(
        &format!("{REGISTER}/{rid}/refuse"),
        Some(&officer.access),
        json!({"reason": "too late"}),
    )
    .await
    .expect_error(409, "already_answered");
    app.post(&extend, Some(&officer.access), json!({"reason": "x"}))
        .await
        .expect_error(409, "already_answered");

    // Filters and paging.
    let completed = app
        .get(&format!("{REGISTER}?status=completed"), &officer.access)
        .await;
    let completed = completed.expect(200)["requests"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0]["id"], rid.as_str());
    let first = app
        .get(&format!("{REGISTER}?limit=1"), &officer.access)
        .await;
    let first = first.expect(200).clone();
    assert_eq!(first["requests"][0]["id"], rid.as_str());
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get(
            &format!("{REGISTER}?limit=1&cursor={cursor}"),
            &officer.access,
        )
        .await;
    let second = second.expect(200).clone();
    assert_eq!(second["requests"][0]["id"], lid.as_str());
    assert!(second["next_cursor"].is_null());
    app.get(&format!("{REGISTER}?limit=0"), &officer.access)
        .await
        .expect_error(422, "validation_failed");
    app.get(&format!("{REGISTER}?cursor=nonsense"), &officer.access)
        .await
        .expect_error(422, "validation_failed");

    // Every step audited, without the free text.
    let events = app.audit_events(&officer.access).await;
    for action in [
        "data_subject.request_recorded",
        "data_subject.request_extended",
        "data_subject.request_completed",
        "data_subject.request_refused",
    ] {
        let e = events
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{action} is audited"));
        assert_eq!(e["actor_id"], officer.user_id.as_str(), "{e}");
        assert_eq!(e["target_type"], "data_subject_request", "{e}");
        assert_ne!(e["subject"], format!("user:{}", t.ann.user_id), "{e}");
        let text = e.to_string();
        assert!(
            !text.contains("letter of 2 March") && !text.contains("ten years"),
            "{e}"
        );
    }
}

async fn the_default_policy_allows_no_extension(backend: Backend) {
    let app = spawn(backend, &["default"]).await;
    let t = app.team().await;
    let officer = officer(&app, &t.admin).await;
    let req = app
        .post(
            REGISTER,
            Some(&officer.access),
            json!({"subject_id": t.cy.user_id, "kind": "objection"}),
        )
        .await;
    let rid = id(req.expect(201));
    app.post(
        &format!("{REGISTER}/{rid}/extend"),
        Some(&officer.access),
        json!({"reason": "busy", "days": 5}),
    )
    .await
    .expect_error(422, "extension_not_allowed");
    // Completing without a note is fine.
    let done = app
        .post(
            &format!("{REGISTER}/{rid}/complete"),
            Some(&officer.access),
            json!({}),
        )
        .await;
    assert_eq!(done.expect(200)["status"], "completed");
}

async fn a_person_files_their_own_and_only_officers_see_the_register(backend: Backend) {
    let app = spawn(backend, &["default"]).await;
    let t = app.team().await;
    let officer = officer(&app, &t.admin).await;
    let wsadmin = app.login("bo@example.org", PASSWORD).await;
    let elsewhere = app.create_workspace(&t.admin, "Elsewhere").await;
    app.add_member(&t.admin, &elsewhere, &wsadmin, "admin")
        .await;

    let mine = "/api/v1/users/me/data-subject-requests";
    let filed = app
        .post(
            mine,
            Some(&t.ann.access),
            json!({"kind": "portability", "note": "my messages as JSON please"}),
        )
        .await;
    let filed = filed.expect(201).clone();
    assert_eq!(filed["subject_id"], t.ann.user_id.as_str());
    assert_eq!(filed["created_by"], t.ann.user_id.as_str());
    assert_eq!(filed["days_left"], 30);
    let fid = id(&filed);
    // Nobody files for someone else this way.
    let r = app
        .post(
            mine,
            Some(&t.ann.access),
            json!({"kind": "access", "subject_id": t.cy.user_id}),
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.body);
    assert_eq!(r.code(), "invalid_body");

    // She sees hers; Cy sees none of hers.
    let hers = app.get(mine, &t.ann.access).await;
    let hers = hers.expect(200)["requests"].as_array().unwrap().clone();
    assert_eq!(hers.len(), 1);
    assert_eq!(hers[0]["note"], "my messages as JSON please");
    let his = app.get(mine, &t.cy.access).await;
    assert!(his.expect(200)["requests"].as_array().unwrap().is_empty());

    // The officer sees it in the register and answers it; she sees the answer.
    let register = app.get(REGISTER, &officer.access).await;
    let register = register.expect(200)["requests"].as_array().unwrap().clone();
    assert!(register.iter().any(|r| r["id"] == fid.as_str()));
    app.post(
        &format!("{REGISTER}/{fid}/complete"),
        Some(&officer.access),
        json!({"outcome": "sent"}),
    )
    .await
    .expect(200);
    let hers = app.get(mine, &t.ann.access).await;
    assert_eq!(hers.expect(200)["requests"][0]["status"], "completed");

    // Members and workspace administrators reach nothing of the register.
    for who in [&t.ann, &t.cy, &wsadmin, &t.admin] {
        let is_admin = who.user_id == t.admin.user_id;
        for (path, body) in [
            (format!("{REGISTER}/{fid}/extend"), json!({"reason": "x"})),
            (format!("{REGISTER}/{fid}/refuse"), json!({"reason": "x"})),
            (format!("{REGISTER}/{fid}/complete"), json!({})),
            (
                REGISTER.to_owned(),
                json!({"subject_id": t.cy.user_id, "kind": "access"}),
            ),
        ] {
            let r = app.post(&path, Some(&who.access), body).await;
            if is_admin {
                // A system administrator holds every action.
                assert!(r.status.as_u16() != 403, "{path}: {}", r.body);
            } else {
                r.expect_error(403, "forbidden");
            }
        }
        if !is_admin {
            app.get(REGISTER, &who.access)
                .await
                .expect_error(403, "forbidden");
            app.get(&format!("{REGISTER}/{fid}"), &who.access)
                .await
                .expect_error(403, "forbidden");
        }
    }

    // Her own filing is audited with her as its subject.
    let events = app.audit_events(&officer.access).await;
    let recorded = events
        .iter()
        .find(|e| e["action"] == "data_subject.request_recorded" && e["target_id"] == fid.as_str())
        .expect("the filing is audited");
    assert_eq!(recorded["actor_id"], t.ann.user_id.as_str());
    assert_eq!(recorded["subject"], format!("user:{}", t.ann.user_id));
    assert!(events
        .iter()
        .any(|e| e["action"] == "permission.denied" && e["actor_id"] == t.cy.user_id.as_str()));
}

both_backends!(
    officer_keeps_the_register_with_deadlines_from_policy,
    the_default_policy_allows_no_extension,
    a_person_files_their_own_and_only_officers_see_the_register,
);
