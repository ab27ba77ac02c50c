//! Granting roles: nobody gives (or takes away) a role holding a permission they do not hold,
//! whether through an invitation, a role change or a custom role, and nobody raises themselves.

use serde_json::{json, Value};

use crate::harness::{both_backends, Session, TestApp, PASSWORD};

async fn invite(app: &TestApp, by: &Session, ws: &str, role: &str) -> crate::harness::Reply {
    app.post(
        &format!("/api/v1/workspaces/{ws}/invitations"),
        Some(&by.access),
        json!({ "role": role }),
    )
    .await
}

async fn member_role(app: &TestApp, by: &Session, ws: &str, user: &str) -> Value {
    let members = app
        .get(&format!("/api/v1/workspaces/{ws}/members"), &by.access)
        .await;
    members
        .expect(200)
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == user)
        .map(|m| m["role"].clone())
        .unwrap_or(Value::Null)
}

/// A workspace owned by the administrator with `people` signed in.
async fn team(app: &TestApp, people: &[&str]) -> (Session, String, Vec<Session>) {
    let admin = app.bootstrap_admin().await;
    let ws = app.create_workspace(&admin, "Clinic").await;
    let mut sessions = Vec::new();
    for name in people {
        let email = format!("{name}@example.org");
        app.create_user(&admin, &email, name).await;
        sessions.push(app.login(&email, PASSWORD).await);
    }
    (admin, ws, sessions)
}

both_backends! {
    async fn an_inviter_cannot_invite_above_their_own_role(app) {
        let (owner, ws, people) = team(&app, &["rita", "mallory"]).await;
        let (rita, mallory) = (&people[0], &people[1]);
        let base = format!("/api/v1/workspaces/{ws}");
        app.post(&format!("{base}/roles"), Some(&owner.access),
            json!({"name": "recruiter", "permissions": ["workspace.read", "members.invite"]})).await.expect(201);
        app.add_member(&owner, &ws, rita, "recruiter").await;

        // The attack: an invitation for an admin, accepted by a second account.
        let refused = invite(&app, rita, &ws, "admin").await;
        refused.expect_error(403, "role_not_grantable");
        let message = refused.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("members.manage"), "{message}");
        // A member holds permissions a recruiter lacks, too.
        invite(&app, rita, &ws, "member").await.expect_error(403, "role_not_grantable");
        // What the recruiter holds, they may hand out.
        let inv = invite(&app, rita, &ws, "recruiter").await;
        let token = inv.expect(201)["token"].as_str().unwrap().to_owned();
        let joined = app.post(&format!("/api/v1/invitations/{token}/accept"), Some(&mallory.access), json!({})).await;
        assert_eq!(joined.expect(201)["workspace"]["role"], "recruiter");
        assert_eq!(member_role(&app, &owner, &ws, &mallory.user_id).await, "recruiter");
        // The refusals are in the audit log.
        let denied = app.get("/api/v1/audit/events?action=permission.denied", &owner.access).await;
        let denied = denied.expect(200)["events"].as_array().cloned().unwrap_or_default();
        assert!(denied.iter().any(|e| e["actor_id"] == rita.user_id.as_str()), "{denied:?}");
    }

    async fn an_invitation_grants_only_what_its_sender_still_holds(app) {
        let (owner, ws, people) = team(&app, &["ann", "ben"]).await;
        let (ann, ben) = (&people[0], &people[1]);
        app.add_member(&owner, &ws, ann, "admin").await;
        let inv = invite(&app, ann, &ws, "admin").await;
        let token = inv.expect(201)["token"].as_str().unwrap().to_owned();
        // Ann is demoted before Ben accepts: the invitation can no longer make an admin.
        app.put(&format!("/api/v1/workspaces/{ws}/members/{}", ann.user_id), &owner.access, json!({"role": "member"})).await
            .expect(200);
        app.post(&format!("/api/v1/invitations/{token}/accept"), Some(&ben.access), json!({})).await
            .expect_error(410, "invitation_not_grantable");
        assert_eq!(member_role(&app, &owner, &ws, &ben.user_id).await, Value::Null);
        // An invitation whose sender still holds its role works.
        let inv = invite(&app, &owner, &ws, "admin").await;
        let token = inv.expect(201)["token"].as_str().unwrap().to_owned();
        let joined = app.post(&format!("/api/v1/invitations/{token}/accept"), Some(&ben.access), json!({})).await;
        assert_eq!(joined.expect(201)["workspace"]["role"], "admin");
    }

    async fn a_member_manager_cannot_raise_themselves_or_others_above_their_role(app) {
        let (owner, ws, people) = team(&app, &["max", "nia"]).await;
        let (max, nia) = (&people[0], &people[1]);
        let base = format!("/api/v1/workspaces/{ws}");
        app.post(&format!("{base}/roles"), Some(&owner.access),
            json!({"name": "people", "permissions": ["workspace.read", "members.read", "members.manage", "members.invite"]}))
            .await.expect(201);
        app.post(&format!("{base}/roles"), Some(&owner.access),
            json!({"name": "viewer", "permissions": ["workspace.read"]})).await.expect(201);
        app.add_member(&owner, &ws, max, "people").await;
        app.add_member(&owner, &ws, nia, "viewer").await;

        // Max makes himself admin: refused, and he is still what he was.
        let me = format!("{base}/members/{}", max.user_id);
        app.put(&me, &max.access, json!({"role": "admin"})).await.expect_error(403, "role_not_grantable");
        assert_eq!(member_role(&app, &owner, &ws, &max.user_id).await, "people");
        // Nor may he make Nia admin.
        let nia_path = format!("{base}/members/{}", nia.user_id);
        app.put(&nia_path, &max.access, json!({"role": "admin"})).await.expect_error(403, "role_not_grantable");
        assert_eq!(member_role(&app, &owner, &ws, &nia.user_id).await, "viewer");
        // A role within his own he may grant, and take back.
        let r = app.put(&nia_path, &max.access, json!({"role": "people"})).await;
        assert_eq!(r.expect(200)["role"], "people");
        let r = app.put(&nia_path, &max.access, json!({"role": "viewer"})).await;
        assert_eq!(r.expect(200)["role"], "viewer");
        // He may step down himself.
        let r = app.put(&me, &max.access, json!({"role": "viewer"})).await;
        assert_eq!(r.expect(200)["role"], "viewer");
    }

    async fn an_admin_cannot_take_or_remove_a_role_that_manages_owners(app) {
        let (owner, ws, people) = team(&app, &["ada", "cy"]).await;
        let (ada, cy) = (&people[0], &people[1]);
        let base = format!("/api/v1/workspaces/{ws}");
        app.post(&format!("{base}/roles"), Some(&owner.access),
            json!({"name": "co_owner", "permissions": ["workspace.read", "members.read", "members.manage", "owners.manage"]}))
            .await.expect(201);
        app.add_member(&owner, &ws, ada, "admin").await;

        // The attack: the admin takes the owner-made role.
        app.put(&format!("{base}/members/{}", ada.user_id), &ada.access, json!({"role": "co_owner"})).await
            .expect_error(403, "role_not_grantable");
        assert_eq!(member_role(&app, &owner, &ws, &ada.user_id).await, "admin");
        invite(&app, ada, &ws, "co_owner").await.expect_error(403, "role_not_grantable");
        // Nor may an admin define such a role.
        app.post(&format!("{base}/roles"), Some(&ada.access),
            json!({"name": "keys", "permissions": ["workspace.read", "owners.manage"]})).await
            .expect_error(403, "role_not_grantable");

        // The owner grants it; then the admin can neither demote nor remove its holder.
        app.add_member(&owner, &ws, cy, "member").await;
        let cy_path = format!("{base}/members/{}", cy.user_id);
        let r = app.put(&cy_path, &owner.access, json!({"role": "co_owner"})).await;
        assert_eq!(r.expect(200)["role"], "co_owner");
        app.put(&cy_path, &ada.access, json!({"role": "guest"})).await.expect_error(403, "role_not_grantable");
        app.delete(&cy_path, &ada.access).await.expect_error(403, "role_not_grantable");
        assert_eq!(member_role(&app, &owner, &ws, &cy.user_id).await, "co_owner");

        // What an admin holds, an admin still hands out: invitations, promotions, demotions.
        let inv = invite(&app, ada, &ws, "admin").await;
        inv.expect(201);
        let r = app.put(&cy_path, &owner.access, json!({"role": "member"})).await;
        assert_eq!(r.expect(200)["role"], "member");
        let r = app.put(&cy_path, &ada.access, json!({"role": "admin"})).await;
        assert_eq!(r.expect(200)["role"], "admin");
        let r = app.put(&cy_path, &ada.access, json!({"role": "guest"})).await;
        assert_eq!(r.expect(200)["role"], "guest");
        app.delete(&cy_path, &ada.access).await.expect(204);
    }

    async fn a_custom_role_is_edited_within_what_its_editor_holds(app) {
        let (owner, ws, people) = team(&app, &["rae", "sam"]).await;
        let (rae, sam) = (&people[0], &people[1]);
        let base = format!("/api/v1/workspaces/{ws}");
        let created = app.post(&format!("{base}/roles"), Some(&owner.access),
            json!({"name": "viewer", "description": "Reads", "permissions": ["workspace.read"]})).await;
        let viewer = created.expect(201)["id"].as_str().unwrap().to_owned();
        let created = app.post(&format!("{base}/roles"), Some(&owner.access),
            json!({"name": "role_admin", "permissions": ["workspace.read", "roles.manage", "members.read"]})).await;
        created.expect(201);
        app.add_member(&owner, &ws, sam, "viewer").await;
        app.add_member(&owner, &ws, rae, "role_admin").await;
        let path = format!("{base}/roles/{viewer}");
        let patch = |who: &crate::harness::Session, body: Value| {
            let path = path.clone();
            let token = who.access.clone();
            let app = &app;
            async move { app.call(reqwest::Method::PATCH, &path, Some(&token), Some(body)).await }
        };

        // Sam cannot list members yet; the owner grants it by editing his role.
        app.get(&format!("{base}/members"), &sam.access).await.expect_error(403, "forbidden");
        let r = patch(&owner, json!({"permissions": ["workspace.read", "members.read"], "description": "Reads people"})).await;
        let r = r.expect(200).clone();
        assert_eq!(r["permissions"], json!(["members.read", "workspace.read"]));
        assert_eq!(r["name"], "viewer");
        assert_eq!(r["description"], "Reads people");
        // It takes effect at Sam's next request.
        app.get(&format!("{base}/members"), &sam.access).await.expect(200);

        // Rae manages roles but cannot hand out what she lacks, even by editing.
        patch(rae, json!({"permissions": ["workspace.read", "members.manage"]})).await
            .expect_error(403, "role_not_grantable");
        // She may take permissions away and rename it.
        let r = patch(rae, json!({"name": "reader", "permissions": ["workspace.read"]})).await;
        assert_eq!(r.expect(200)["name"], "reader");
        app.get(&format!("{base}/members"), &sam.access).await.expect_error(403, "forbidden");
        // Nor take away what she does not hold: a role granting more than she has is not hers to cut.
        let people = app.post(&format!("{base}/roles"), Some(&owner.access),
            json!({"name": "people", "permissions": ["workspace.read", "members.read", "members.manage"]})).await;
        let people = people.expect(201)["id"].as_str().unwrap().to_owned();
        app.call(reqwest::Method::PATCH, &format!("{base}/roles/{people}"), Some(&rae.access),
            Some(json!({"permissions": ["workspace.read"]}))).await.expect_error(403, "role_not_grantable");
        // An edit that changes nothing is refused as such.
        patch(&owner, json!({})).await.expect_error(422, "nothing_to_change");
        // Sam cannot edit roles at all.
        patch(sam, json!({"permissions": []})).await.expect_error(403, "forbidden");

        // Bad edits are refused with what is wrong.
        patch(&owner, json!({"permissions": ["users.manage"]})).await.expect_error(422, "unknown_permission");
        patch(&owner, json!({"name": "owner"})).await.expect_error(409, "role_exists");
        patch(&owner, json!({"name": "role_admin"})).await.expect_error(409, "role_exists");
        patch(&owner, json!({"description": "d".repeat(201)})).await.expect_error(422, "description_too_long");
        let roles = app.get(&format!("{base}/roles"), &owner.access).await;
        let roles = roles.expect(200).as_array().unwrap().clone();
        let builtin_member = roles.iter().find(|r| r["name"] == "member").unwrap()["id"].as_str().unwrap().to_owned();
        app.call(reqwest::Method::PATCH, &format!("{base}/roles/{builtin_member}"), Some(&owner.access),
            Some(json!({"permissions": []}))).await.expect_error(422, "builtin_role");
        // A role of another workspace is not found through this one.
        let other = app.create_workspace(&owner, "Elsewhere").await;
        app.call(reqwest::Method::PATCH, &format!("/api/v1/workspaces/{other}/roles/{viewer}"), Some(&owner.access),
            Some(json!({"permissions": []}))).await.expect_error(404, "not_found");

        // Each edit is audited with the permissions before and after.
        let events = app.get("/api/v1/audit/events?action=role.update&limit=1000", &owner.access).await;
        let events = events.expect(200)["events"].as_array().cloned().unwrap_or_default();
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0]["details"]["permissions"]["before"], json!(["workspace.read"]));
        assert_eq!(events[0]["details"]["permissions"]["after"], json!(["members.read", "workspace.read"]));
        assert_eq!(events[1]["details"]["name"]["after"], "reader");
    }
}
