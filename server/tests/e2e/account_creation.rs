//! Creating an account without being signed in (first-run setup, accepting an invitation):
//! the token is checked before anything costly, and the audit log records who was created
//! and from which address.

use serde_json::{json, Value};

use crate::harness::{Session, TestApp, PASSWORD};

/// The audit events with `action`, read by a system admin.
async fn audit_events(app: &TestApp, admin: &Session, action: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/api/v1/audit/events?action={action}"),
            &admin.access,
        )
        .await;
    r.expect(200)["events"].as_array().expect("events").clone()
}

crate::harness::both_backends! {
    async fn setup_checks_its_token_before_the_password_and_records_the_address(app) {
        let token = app.setup_token.clone().expect("a fresh server offers setup");
        let body = |token: &str, password: &str| json!({
            "token": token, "email": "admin@example.org", "display_name": "Ada Admin", "password": password,
        });
        // A wrong token is the answer whatever else is wrong: the password is never looked at.
        app.post("/api/v1/setup", None, body("not-the-token", "short")).await
            .expect_error(410, "setup_token_invalid");
        app.post("/api/v1/setup", None, body(&"x".repeat(10_000), "short")).await
            .expect_error(410, "setup_token_invalid");
        // With the right token, the weak password is refused, and the token stays good.
        let weak = app.post("/api/v1/setup", None, body(&token, "short")).await;
        weak.expect_error(422, "validation_failed");
        assert_eq!(weak.body["error"]["field"], "password");
        let created = app.post("/api/v1/setup", None, body(&token, PASSWORD)).await;
        let admin_id = created.expect(201)["id"].as_str().unwrap().to_owned();
        app.post("/api/v1/setup", None, body(&token, "short")).await
            .expect_error(410, "setup_token_invalid");

        let admin = app.login("admin@example.org", PASSWORD).await;
        let setup = audit_events(&app, &admin, "setup.complete").await;
        assert_eq!(setup.len(), 1, "{setup:?}");
        assert_eq!(setup[0]["target_id"], admin_id.as_str());
        assert_eq!(setup[0]["ip"], "127.0.0.1", "setup carries the client address: {setup:?}");
    }

    async fn accepting_an_invitation_checks_the_token_first_and_records_the_new_account(app) {
        let admin = app.bootstrap_admin().await;
        let ws = app.create_workspace(&admin, "Team").await;
        let inv = app.post(&format!("/api/v1/workspaces/{ws}/invitations"), Some(&admin.access), json!({})).await;
        let token = inv.expect(201)["token"].as_str().unwrap().to_owned();
        let invitation_id = inv.body["id"].as_str().unwrap().to_owned();
        let app = &app;
        let accept = |token: &str, password: &str| {
            let path = format!("/api/v1/invitations/{token}/accept");
            let body = json!({"email": "ivy@example.org", "display_name": "Ivy", "password": password});
            async move { app.post(&path, None, body).await }
        };

        // A wrong token: not found, whatever the password (which is never looked at).
        accept("not-a-token", "short").await.expect_error(404, "not_found");
        accept("not-a-token", PASSWORD).await.expect_error(404, "not_found");
        // The right token with a weak password: refused, the invitation untouched.
        let weak = accept(&token, "short").await;
        weak.expect_error(422, "validation_failed");
        assert_eq!(weak.body["error"]["field"], "password");
        let list = app.get(&format!("/api/v1/workspaces/{ws}/invitations"), &admin.access).await;
        assert_eq!(list.expect(200)[0]["uses"], 0);

        let joined = accept(&token, PASSWORD).await;
        let ivy = joined.expect(201)["user_id"].as_str().unwrap().to_owned();
        // Used up: the token's answer comes first again.
        accept(&token, "short").await.expect_error(410, "invitation_used");

        // The new account's creation and the acceptance are both recorded, with the address.
        let created = audit_events(app, &admin, "user.create").await;
        let created: Vec<&Value> = created.iter().filter(|e| e["target_id"] == ivy.as_str()).collect();
        assert_eq!(created.len(), 1, "the account's creation is recorded: {created:?}");
        assert_eq!(created[0]["outcome"], "allowed");
        assert_eq!(created[0]["actor_id"], ivy.as_str());
        assert_eq!(created[0]["workspace_id"], ws.as_str());
        assert_eq!(created[0]["ip"], "127.0.0.1", "{created:?}");
        assert_eq!(created[0]["details"]["invitation"], invitation_id.as_str());
        let accepted = audit_events(app, &admin, "invitation.accept").await;
        assert_eq!(accepted.len(), 1, "{accepted:?}");
        assert_eq!(accepted[0]["actor_id"], ivy.as_str());
        assert_eq!(accepted[0]["target_id"], invitation_id.as_str());
        assert_eq!(accepted[0]["ip"], "127.0.0.1", "{accepted:?}");
        assert_eq!(accepted[0]["details"]["new_account"], true);
    }
}
