//! People change their own profile (display name, out-of-office period, password), and a
//! compliance officer corrects someone's name or email on their request (GDPR Art. 16).

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{both_backends, Backend, Reply, Session, TestApp, PASSWORD};

async fn patch(app: &TestApp, path: &str, who: &Session, body: Value) -> Reply {
    app.call(Method::PATCH, path, Some(&who.access), Some(body))
        .await
}

fn member_name(members: &Value, user: &str) -> String {
    members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == user)
        .unwrap_or_else(|| panic!("{user} not in {members}"))["display_name"]
        .as_str()
        .unwrap()
        .to_owned()
}

const MARKER: &str = "Quillhaven sabbatical at Wrenbury";
const NAME_MARKER: &str = "Ann Thistledown";

/// Fails if any of `needles` is stored in plaintext: in any file of the (stopped) server's
/// data folder, or on PostgreSQL in any row of `users` or `audit_events`.
async fn assert_stored_sealed(app: &TestApp, needles: &[&str]) {
    fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                files_under(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    files_under(&app.data_dir, &mut files);
    for file in &files {
        let text = String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned();
        for needle in needles {
            assert!(!text.contains(needle), "{needle:?} in {}", file.display());
        }
    }
    if app.backend == Backend::Postgres {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&app.database_url)
            .await
            .unwrap();
        for table in ["users", "audit_events"] {
            let rows: Vec<(String,)> = sqlx::query_as(&format!("SELECT t::text FROM {table} t"))
                .fetch_all(&mut conn)
                .await
                .unwrap();
            let dump = rows.into_iter().map(|r| r.0).collect::<Vec<_>>().join("\n");
            for needle in needles {
                assert!(!dump.contains(needle), "{needle:?} in {table}");
                assert!(
                    !dump.contains(&hex::encode(needle)),
                    "{needle:?} in {table}"
                );
            }
        }
    }
}

async fn officer(app: &TestApp, admin: &Session) -> Session {
    let id = app
        .create_user(admin, "officer@example.org", "Officer")
        .await;
    app.put(
        &format!("/api/v1/users/{id}/system-role"),
        &admin.access,
        json!({"role": "compliance_officer"}),
    )
    .await
    .expect(200);
    app.login("officer@example.org", PASSWORD).await
}

both_backends! {
    async fn a_rename_reaches_the_people_sharing_a_workspace(app) {
        let t = app.team().await;
        let mut bo_socket = app.socket(&t.bo.access, None).await;

        let me = patch(&app, "/api/v1/users/me", &t.ann, json!({"display_name": "  Ann Example  "}))
            .await;
        assert_eq!(me.expect(200)["display_name"], "Ann Example");

        // Bo is told, and reads the new name wherever names are listed.
        let frame = bo_socket.next_event().await.expect("an event for Bo");
        assert_eq!(frame["event"]["type"], "user_updated", "{frame}");
        assert_eq!(frame["event"]["user_id"], t.ann.user_id.as_str());
        let members = app
            .get(&format!("/api/v1/workspaces/{}/members", t.ws), &t.bo.access)
            .await;
        assert_eq!(member_name(members.expect(200), &t.ann.user_id), "Ann Example");
        let seen = app.get(&format!("/api/v1/users/{}", t.ann.user_id), &t.bo.access).await;
        assert_eq!(seen.expect(200)["display_name"], "Ann Example");

        // Someone sharing no workspace with Ann does not see her.
        app.create_user(&t.admin, "dee@example.org", "Dee").await;
        let dee = app.login("dee@example.org", PASSWORD).await;
        app.get(&format!("/api/v1/users/{}", t.ann.user_id), &dee.access)
            .await
            .expect_error(404, "not_found");

        // Bad names are refused and change nothing.
        for bad in [json!(""), json!("   "), json!("x".repeat(101)), json!("bell\u{7}")] {
            patch(&app, "/api/v1/users/me", &t.ann, json!({"display_name": bad}))
                .await
                .expect_error(422, "validation_failed");
        }
        let r = patch(&app, "/api/v1/users/me", &t.ann, json!({"display_name": 42})).await;
        assert_eq!(r.status.as_u16(), 422, "{}", r.body);
        assert!(!r.code().is_empty(), "{}", r.body);
        let r = patch(&app, "/api/v1/users/me", &t.ann, json!({"email": "x@example.org"})).await;
        assert_eq!(r.status.as_u16(), 422, "{}", r.body);
        assert_eq!(
            app.get("/api/v1/users/me", &t.ann.access).await.expect(200)["display_name"],
            "Ann Example"
        );

        // Audited, naming the field, not the name.
        let events = app
            .get("/api/v1/audit/events?action=user.profile_updated&limit=10", &t.admin.access)
            .await
            .expect(200)["events"]
            .clone();
        let events = events.as_array().unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["actor_id"], t.ann.user_id.as_str());
        assert_eq!(events[0]["details"]["fields"], json!(["display_name"]));
        assert!(!events[0].to_string().contains("Ann Example"), "{}", events[0]);
    }

    async fn out_of_office_is_checked_and_shown_to_members(app) {
        let t = app.team().await;
        let period = json!({"from": "2027-08-01", "until": "2027-08-15", "message": "Back on the 16th"});
        let me = patch(&app, "/api/v1/users/me", &t.ann, json!({"out_of_office": period})).await;
        assert_eq!(me.expect(200)["out_of_office"], period);
        let seen = app.get(&format!("/api/v1/users/{}", t.ann.user_id), &t.bo.access).await;
        assert_eq!(seen.expect(200)["out_of_office"], period);
        // Changing the name leaves the period as it is.
        let me = patch(&app, "/api/v1/users/me", &t.ann, json!({"display_name": "Ann"})).await;
        assert_eq!(me.expect(200)["out_of_office"], period);

        for (bad, field) in [
            (json!({"from": "2027-08-15", "until": "2027-08-01"}), "out_of_office.until"),
            (json!({"from": "2027-08-01", "until": "2028-08-02"}), "out_of_office.until"),
            (
                json!({"from": "2027-08-01", "until": "2027-08-02", "message": "x".repeat(501)}),
                "out_of_office.message",
            ),
        ] {
            let r = patch(&app, "/api/v1/users/me", &t.ann, json!({"out_of_office": bad})).await;
            r.expect_error(422, "validation_failed");
            assert_eq!(r.body["error"]["field"], field, "{}", r.body);
        }
        for bad in [
            json!({"from": "2027-02-30", "until": "2027-03-02"}),
            json!({"from": "2027-03-01"}),
            json!({"from": "2027-03-01", "until": "2027-03-02", "mood": "sunny"}),
        ] {
            let r = patch(&app, "/api/v1/users/me", &t.ann, json!({"out_of_office": bad})).await;
            assert_eq!(r.status.as_u16(), 422, "{}", r.body);
            assert_eq!(r.code(), "invalid_body", "{}", r.body);
        }
        // A year to the day is allowed; the message is optional.
        let year = json!({"from": "2027-08-01", "until": "2028-08-01", "message": null});
        let me = patch(&app, "/api/v1/users/me", &t.ann, json!({"out_of_office": year})).await;
        assert_eq!(me.expect(200)["out_of_office"]["until"], "2028-08-01");

        let me = patch(&app, "/api/v1/users/me", &t.ann, json!({"out_of_office": null})).await;
        assert_eq!(me.expect(200)["out_of_office"], Value::Null);
        let seen = app.get(&format!("/api/v1/users/{}", t.ann.user_id), &t.bo.access).await;
        assert_eq!(seen.expect(200)["out_of_office"], Value::Null);

        // The message and the new name reach storage only sealed.
        let marked = json!({"from": "2027-09-01", "until": "2027-09-03", "message": MARKER});
        patch(
            &app,
            "/api/v1/users/me",
            &t.ann,
            json!({"display_name": NAME_MARKER, "out_of_office": marked}),
        )
        .await
        .expect(200);
        let mut app = app;
        app.stop().await;
        assert_stored_sealed(&app, &[MARKER, NAME_MARKER]).await;
    }

    async fn a_password_change_ends_the_other_sessions(app) {
        let t = app.team().await;
        let laptop = app.login("ann@example.org", PASSWORD).await;
        let new = "a brand new passphrase for Ann";

        // A wrong current password, or a new one the policy refuses, changes nothing.
        app.post(
            "/api/v1/users/me/password",
            Some(&t.ann.access),
            json!({"current_password": "not the password at all", "new_password": new}),
        )
        .await
        .expect_error(422, "current_password_incorrect");
        app.post(
            "/api/v1/users/me/password",
            Some(&t.ann.access),
            json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await
        .expect_error(422, "validation_failed");
        app.get("/api/v1/users/me", &laptop.access).await.expect(200);

        let changed = app
            .post(
                "/api/v1/users/me/password",
                Some(&t.ann.access),
                json!({"current_password": PASSWORD, "new_password": new}),
            )
            .await;
        assert_eq!(changed.expect(200)["sessions_revoked"], 1);
        // This session stays; the laptop's ends, its refresh token too.
        app.get("/api/v1/users/me", &t.ann.access).await.expect(200);
        assert_eq!(app.get("/api/v1/users/me", &laptop.access).await.status.as_u16(), 401);
        let refreshed = app
            .post("/api/v1/auth/refresh", None, json!({"refresh_token": laptop.refresh}))
            .await;
        assert_eq!(refreshed.status.as_u16(), 401, "{}", refreshed.body);
        // The old password no longer signs in; the new one does.
        app.post(
            "/api/v1/auth/login",
            None,
            json!({"email": "ann@example.org", "password": PASSWORD}),
        )
        .await
        .expect_error(401, "invalid_credentials");
        app.login("ann@example.org", new).await;

        let events = app.audit_events(&t.admin.access).await;
        let changed: Vec<&Value> = events
            .iter()
            .filter(|e| e["action"] == "user.password_changed")
            .collect();
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert_eq!(changed[0]["actor_id"], t.ann.user_id.as_str());
        assert!(events
            .iter()
            .any(|e| e["action"] == "user.password_change" && e["outcome"] == "failed"));
        assert!(!events.iter().any(|e| e.to_string().contains(new)));
    }

    async fn an_account_without_a_password_cannot_change_one(app) {
        let t = app.team().await;
        let id = uuid::Uuid::parse_str(&t.cy.user_id).unwrap();
        let sql = match app.backend {
            Backend::Sqlite => format!(
                "UPDATE users SET password_hash = NULL WHERE id = X'{}'",
                hex::encode(id.as_bytes())
            ),
            Backend::Postgres => format!("UPDATE users SET password_hash = NULL WHERE id = '{id}'"),
        };
        app.raw_sql(&sql).await.unwrap();
        app.post(
            "/api/v1/users/me/password",
            Some(&t.cy.access),
            json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
        )
        .await
        .expect_error(422, "password_not_set");
    }

    async fn an_officer_rectifies_a_name_and_email_with_a_reason(app) {
        let t = app.team().await;
        let officer = officer(&app, &t.admin).await;
        let ann = format!("/api/v1/users/{}", t.ann.user_id);
        let correction = json!({
            "display_name": "Ann Corrected",
            "email": "ann.corrected@example.org",
            "reason": "DSR-7: surname misspelt",
        });

        // Not for members or a workspace's administrators.
        app.create_user(&t.admin, "wsadmin@example.org", "Wes").await;
        let wsadmin = app.login("wsadmin@example.org", PASSWORD).await;
        app.add_member(&t.admin, &t.ws, &wsadmin, "admin").await;
        for who in [&t.bo, &wsadmin, &t.ann] {
            patch(&app, &ann, who, correction.clone())
                .await
                .expect_error(403, "forbidden");
        }

        // A reason, something to correct and a free email are required.
        patch(&app, &ann, &officer, json!({"display_name": "Ann Corrected"}))
            .await
            .expect_error(422, "reason_required");
        patch(&app, &ann, &officer, json!({"display_name": "Ann Corrected", "reason": "  "}))
            .await
            .expect_error(422, "reason_required");
        patch(&app, &ann, &officer, json!({"reason": "DSR-7"}))
            .await
            .expect_error(422, "nothing_to_rectify");
        patch(&app, &ann, &officer, json!({"email": "not an email", "reason": "DSR-7"}))
            .await
            .expect_error(422, "validation_failed");
        for taken in ["bo@example.org", "BO@Example.org"] {
            patch(&app, &ann, &officer, json!({"email": taken, "reason": "DSR-7"}))
                .await
                .expect_error(409, "email_taken");
        }
        patch(
            &app,
            &format!("/api/v1/users/{}", uuid::Uuid::now_v7()),
            &officer,
            correction.clone(),
        )
        .await
        .expect_error(404, "not_found");
        assert_eq!(
            app.get("/api/v1/users/me", &t.ann.access).await.expect(200)["email"],
            "ann@example.org"
        );

        let fixed = patch(&app, &ann, &officer, correction.clone()).await;
        let fixed = fixed.expect(200);
        assert_eq!(fixed["display_name"], "Ann Corrected");
        assert_eq!(fixed["email"], "ann.corrected@example.org");
        let members = app
            .get(&format!("/api/v1/workspaces/{}/members", t.ws), &t.bo.access)
            .await;
        assert_eq!(member_name(members.expect(200), &t.ann.user_id), "Ann Corrected");
        // The account is found by its new email only.
        app.post(
            "/api/v1/auth/login",
            None,
            json!({"email": "ann@example.org", "password": PASSWORD}),
        )
        .await
        .expect_error(401, "invalid_credentials");
        app.login("Ann.Corrected@example.org", PASSWORD).await;
        // Her old email is free again.
        app.create_user(&t.admin, "ann@example.org", "Another Ann").await;

        // Audited with the reason and the values before and after, under Ann's key.
        let events = app
            .get("/api/v1/audit/events?action=data_subject.rectified&limit=10", &t.admin.access)
            .await
            .expect(200)["events"]
            .clone();
        let events = events.as_array().unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        let e = &events[0];
        assert_eq!(e["actor_id"], officer.user_id.as_str());
        assert_eq!(e["target_id"], t.ann.user_id.as_str());
        assert_eq!(e["details"]["reason"], "DSR-7: surname misspelt");
        assert_eq!(e["details"]["changes"]["email"]["before"], "ann@example.org");
        assert_eq!(e["details"]["changes"]["email"]["after"], "ann.corrected@example.org");
        assert_eq!(e["details"]["changes"]["display_name"]["before"], "Ann");
        assert_eq!(e["details"]["changes"]["display_name"]["after"], "Ann Corrected");
        // The refusals were recorded too.
        let denied = app
            .get("/api/v1/audit/events?action=permission.denied&limit=100", &t.admin.access)
            .await
            .expect(200)["events"]
            .clone();
        assert!(denied
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["actor_id"] == t.bo.user_id.as_str()
                && d["details"]["permission"] == "data_subjects.rectify"));
    }
}
