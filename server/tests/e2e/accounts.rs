//! First-run setup, sign-in, workspaces and invitations, as a new team would go through them.

use serde_json::json;

use crate::harness::{both_backends, PASSWORD};

both_backends! {
    async fn a_new_team_gets_going(app) {
        // The first administrator comes from the one-time setup link.
        let admin = app.bootstrap_admin().await;
        let me = app.get("/api/v1/users/me", &admin.access).await;
        assert_eq!(me.expect(200)["system_role"], "system_admin");
        assert_eq!(me.body["email"], "admin@example.org");

        // A workspace; its creator owns it.
        let ws = app.post("/api/v1/workspaces", Some(&admin.access), json!({"name": "Acme Health"})).await;
        let ws = ws.expect(201).clone();
        assert_eq!(ws["slug"], "acme-health");
        assert_eq!(ws["role"], "owner");
        let ws_id = ws["id"].as_str().unwrap();

        // An invitation by email is shown, not sent.
        let inv = app
            .post(&format!("/api/v1/workspaces/{ws_id}/invitations"), Some(&admin.access),
                json!({"email": "Bo@Example.org", "role": "member"}))
            .await;
        let inv = inv.expect(201).clone();
        assert_eq!(inv["delivery"], "shown");
        let token = inv["token"].as_str().unwrap();
        assert!(inv["url"].as_str().unwrap().ends_with(&format!("/invite/{token}")));

        // The invitee looks at it, then joins with a new account.
        let preview = app.call(reqwest::Method::GET, &format!("/api/v1/invitations/{token}"), None, None).await;
        assert_eq!(preview.expect(200)["workspace_name"], "Acme Health");
        let joined = app
            .post(&format!("/api/v1/invitations/{token}/accept"), None,
                json!({"email": "bo@example.org", "display_name": "Bo", "password": PASSWORD}))
            .await;
        assert_eq!(joined.expect(201)["workspace"]["role"], "member");

        // The link was for one person only.
        let again = app
            .post(&format!("/api/v1/invitations/{token}/accept"), None,
                json!({"email": "cy@example.org", "display_name": "Cy", "password": PASSWORD}))
            .await;
        again.expect_error(410, "invitation_used");

        // Bo signs in (email matching ignores case) and sees the workspace and its members.
        let bo = app.login("BO@example.org", PASSWORD).await;
        let mine = app.get("/api/v1/workspaces", &bo.access).await;
        assert_eq!(mine.expect(200).as_array().unwrap().len(), 1);
        let members = app.get(&format!("/api/v1/workspaces/{ws_id}/members"), &bo.access).await;
        let names: Vec<_> = members.expect(200).as_array().unwrap().iter()
            .map(|m| (m["display_name"].as_str().unwrap().to_owned(), m["role"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(names, vec![("Ada Admin".into(), "owner".into()), ("Bo".into(), "member".into())]);

        // The admin sees Bo in the account list; Bo cannot list accounts.
        let all = app.get("/api/v1/users", &admin.access).await;
        assert_eq!(all.expect(200).as_array().unwrap().len(), 2);
        app.get("/api/v1/users", &bo.access).await.expect_error(403, "forbidden");
    }

    async fn setup_links_work_once(app) {
        let token = app.setup_token.clone().unwrap();
        let body = |email: &str| json!({"token": token, "email": email, "display_name": "A", "password": PASSWORD});
        app.post("/api/v1/setup", None, json!({"token": "nope", "email": "x@example.org", "display_name": "X", "password": PASSWORD}))
            .await
            .expect_error(410, "setup_token_invalid");
        app.post("/api/v1/setup", None, body("first@example.org")).await.expect(201);
        app.post("/api/v1/setup", None, body("second@example.org")).await.expect_error(410, "setup_token_invalid");
        // Once an account exists, a restart offers no new setup link.
        let app = app.restart().await;
        assert!(app.setup_token.is_none());
        app.login("first@example.org", PASSWORD).await;
    }

    async fn invitations_are_checked(app) {
        let admin = app.bootstrap_admin().await;
        let ws = app.create_workspace(&admin, "Ops").await;
        app.create_user(&admin, "dee@example.org", "Dee").await;
        let dee = app.login("dee@example.org", PASSWORD).await;

        // For another email: refused, and the invitation stays usable.
        let inv = app.post(&format!("/api/v1/workspaces/{ws}/invitations"), Some(&admin.access),
            json!({"email": "someone@example.org"})).await;
        let token = inv.expect(201)["token"].as_str().unwrap().to_owned();
        app.post(&format!("/api/v1/invitations/{token}/accept"), Some(&dee.access), json!({})).await
            .expect_error(422, "invitation_email_mismatch");

        // A multi-use link: Dee joins signed in; joining twice is a conflict.
        let inv = app.post(&format!("/api/v1/workspaces/{ws}/invitations"), Some(&admin.access),
            json!({"max_uses": 5, "role": "guest"})).await;
        let inv = inv.expect(201).clone();
        let token = inv["token"].as_str().unwrap();
        let joined = app.post(&format!("/api/v1/invitations/{token}/accept"), Some(&dee.access), json!({})).await;
        assert_eq!(joined.expect(201)["workspace"]["role"], "guest");
        app.post(&format!("/api/v1/invitations/{token}/accept"), Some(&dee.access), json!({})).await
            .expect_error(409, "already_member");

        // Revoked: gone for everyone.
        let id = inv["id"].as_str().unwrap();
        app.delete(&format!("/api/v1/workspaces/{ws}/invitations/{id}"), &admin.access).await.expect(204);
        app.post(&format!("/api/v1/invitations/{token}/accept"), None,
            json!({"email": "eve@example.org", "display_name": "Eve", "password": PASSWORD})).await
            .expect_error(410, "invitation_revoked");
        let list = app.get(&format!("/api/v1/workspaces/{ws}/invitations"), &admin.access).await;
        let list = list.expect(200).as_array().unwrap().clone();
        assert_eq!(list.len(), 2);
        assert!(list.iter().any(|i| i["revoked"] == true && i["uses"] == 1));

        // Unknown tokens are simply not found; new accounts need a valid password.
        app.call(reqwest::Method::GET, "/api/v1/invitations/unknown-token", None, None).await.expect_error(404, "not_found");
        let inv = app.post(&format!("/api/v1/workspaces/{ws}/invitations"), Some(&admin.access), json!({})).await;
        let token = inv.expect(201)["token"].as_str().unwrap().to_owned();
        let weak = app.post(&format!("/api/v1/invitations/{token}/accept"), None,
            json!({"email": "fay@example.org", "display_name": "Fay", "password": "short"})).await;
        weak.expect_error(422, "validation_failed");
        assert_eq!(weak.body["error"]["field"], "password");
        let taken = app.post(&format!("/api/v1/invitations/{token}/accept"), None,
            json!({"email": "DEE@example.org", "display_name": "Dee 2", "password": PASSWORD})).await;
        taken.expect_error(409, "email_taken");
        // Neither failed attempt used the invitation up.
        let ok = app.post(&format!("/api/v1/invitations/{token}/accept"), None,
            json!({"email": "fay@example.org", "display_name": "Fay", "password": PASSWORD})).await;
        let fay = ok.expect(201)["user_id"].as_str().unwrap().to_owned();
        let members = app.get(&format!("/api/v1/workspaces/{ws}/members"), &admin.access).await;
        assert!(members.expect(200).as_array().unwrap().iter().any(|m| m["user_id"] == fay.as_str()));
    }

    async fn a_deactivated_person_is_signed_out_everywhere_and_cannot_sign_in_until_reactivated(app) {
        let t = app.team().await;
        let bo = t.bo.user_id.clone();
        let status = format!("/api/v1/users/{bo}/status");
        let mut socket = app.socket(&t.bo.access, None).await;

        // Only administrators deactivate, with a status the API knows.
        app.put(&status, &t.ann.access, json!({"status": "disabled"})).await.expect_error(403, "forbidden");
        app.put(&status, &t.admin.access, json!({"status": "gone"})).await.expect_error(422, "unknown_status");
        app.put(&status, &t.admin.access, json!({"status": "disabled", "reason": "x".repeat(501)})).await
            .expect_error(422, "reason_too_long");
        app.put(&format!("/api/v1/users/{}/status", uuid::Uuid::now_v7()), &t.admin.access,
            json!({"status": "disabled"})).await.expect_error(404, "not_found");
        // Nobody locks themselves out, and the last system admin stays.
        app.put(&format!("/api/v1/users/{}/status", t.admin.user_id), &t.admin.access,
            json!({"status": "disabled"})).await.expect_error(422, "cannot_deactivate_self");

        // Bo, a workspace admin, invited someone as an admin before he leaves.
        app.put(&format!("/api/v1/workspaces/{}/members/{bo}", t.ws), &t.admin.access, json!({"role": "admin"})).await
            .expect(200);
        let inv = app.post(&format!("/api/v1/workspaces/{}/invitations", t.ws), Some(&t.bo.access),
            json!({"role": "admin"})).await;
        let invitation = inv.expect(201)["token"].as_str().unwrap().to_owned();

        let r = app.put(&status, &t.admin.access, json!({"status": "disabled", "reason": "left the company"})).await;
        assert_eq!(r.expect(200)["status"], "disabled");
        // Bo's live socket is closed and every token of his stops working at once.
        assert_eq!(socket.closed_with().await, Some(4403));
        assert_eq!(app.get("/api/v1/users/me", &t.bo.access).await.status.as_u16(), 401);
        let refreshed = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": t.bo.refresh})).await;
        assert_eq!(refreshed.status.as_u16(), 401, "{:?}", refreshed.body);
        // He cannot sign in again; the answer does not say whether the password was right.
        let login = app.post("/api/v1/auth/login", None, json!({"email": "bo@example.org", "password": PASSWORD})).await;
        assert_eq!(login.status.as_u16(), 401, "{:?}", login.body);
        let wrong = app.post("/api/v1/auth/login", None, json!({"email": "bo@example.org", "password": "not the password at all"})).await;
        assert_eq!(login.body["error"]["code"], wrong.body["error"]["code"]);
        // What he handed out grants nothing once he holds nothing.
        app.post(&format!("/api/v1/invitations/{invitation}/accept"), None,
            json!({"email": "mole@example.org", "display_name": "Mole", "password": PASSWORD})).await
            .expect_error(410, "invitation_not_grantable");
        // The admin sees him as disabled; deactivating twice changes nothing and is not recorded twice.
        let listed = app.get(&format!("/api/v1/users/{bo}"), &t.admin.access).await;
        assert_eq!(listed.expect(200)["status"], "disabled");
        app.put(&status, &t.admin.access, json!({"status": "disabled"})).await.expect(200);
        // His content and memberships stay.
        let members = app.get(&format!("/api/v1/workspaces/{}/members", t.ws), &t.admin.access).await;
        assert!(members.expect(200).as_array().unwrap().iter().any(|m| m["user_id"] == bo.as_str()));

        // Reactivated, he signs in again.
        let r = app.put(&status, &t.admin.access, json!({"status": "active", "reason": "came back"})).await;
        assert_eq!(r.expect(200)["status"], "active");
        let again = app.login("bo@example.org", PASSWORD).await;
        app.get("/api/v1/users/me", &again.access).await.expect(200);

        // Both changes are audited once each, with the reason and the sessions ended.
        let events = app.audit_events(&t.admin.access).await;
        let of = |action: &str| events.iter().filter(|e| e["action"] == action && e["target_id"] == bo.as_str())
            .cloned().collect::<Vec<_>>();
        let deactivated = of("user.deactivated");
        assert_eq!(deactivated.len(), 1, "{deactivated:?}");
        assert_eq!(deactivated[0]["details"]["reason"], "left the company");
        assert!(deactivated[0]["details"]["sessions_revoked"].as_u64().unwrap() >= 1);
        assert_eq!(of("user.reactivated").len(), 1);
    }

    async fn the_last_active_system_admin_cannot_be_deactivated(app) {
        let admin = app.bootstrap_admin().await;
        let other = app.create_user(&admin, "root2@example.org", "Root Two").await;
        app.put(&format!("/api/v1/users/{other}/system-role"), &admin.access, json!({"role": "system_admin"})).await
            .expect(200);
        let other_s = app.login("root2@example.org", PASSWORD).await;
        // With two admins, one may deactivate the other ...
        app.put(&format!("/api/v1/users/{}/status", admin.user_id), &other_s.access,
            json!({"status": "disabled"})).await.expect(200);
        // ... and a disabled admin no longer counts: the remaining one stays.
        let me = app.get("/api/v1/users/me", &other_s.access).await;
        assert_eq!(me.expect(200)["system_role"], "system_admin");
        app.put(&format!("/api/v1/users/{other}/system-role"), &other_s.access, json!({"role": null})).await
            .expect_error(422, "last_system_admin");
    }
}
