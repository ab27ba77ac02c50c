//! Role-based access: what members, admins, owners and outsiders may do, and custom roles.

use serde_json::json;

use crate::harness::{both_backends, PASSWORD};

both_backends! {
    async fn roles_decide_who_may_do_what(app) {
        let admin = app.bootstrap_admin().await;
        for (email, name) in [("olga@example.org", "Olga"), ("mo@example.org", "Mo"), ("ola@example.org", "Ola")] {
            app.create_user(&admin, email, name).await;
        }
        let owner = app.login("olga@example.org", PASSWORD).await;
        let member = app.login("mo@example.org", PASSWORD).await;
        let outsider = app.login("ola@example.org", PASSWORD).await;

        // Only system admins create workspaces by default.
        app.post("/api/v1/workspaces", Some(&owner.access), json!({"name": "Nope"})).await.expect_error(403, "forbidden");
        let ws = app.create_workspace(&admin, "Clinic").await;
        app.add_member(&admin, &ws, &owner, "owner").await;
        app.add_member(&admin, &ws, &member, "member").await;
        let base = format!("/api/v1/workspaces/{ws}");

        // An outsider cannot even learn the workspace exists.
        for path in [base.clone(), format!("{base}/members"), format!("{base}/roles"), format!("{base}/invitations")] {
            app.get(&path, &outsider.access).await.expect_error(404, "not_found");
        }
        app.post(&format!("{base}/invitations"), Some(&outsider.access), json!({})).await.expect_error(404, "not_found");
        assert_eq!(app.get("/api/v1/workspaces", &outsider.access).await.expect(200).as_array().unwrap().len(), 0);

        // A member reads but does not administer.
        app.get(&format!("{base}/members"), &member.access).await.expect(200);
        app.post(&format!("{base}/invitations"), Some(&member.access), json!({})).await.expect_error(403, "forbidden");
        app.put(&format!("{base}/members/{}", outsider.user_id), &member.access, json!({"role": "admin"})).await
            .expect_error(403, "forbidden");
        app.call(reqwest::Method::PATCH, &base, Some(&member.access), Some(json!({"name": "Mine"}))).await
            .expect_error(403, "forbidden");

        // The owner promotes the member to admin; an admin may invite but not create owners.
        let r = app.put(&format!("{base}/members/{}", member.user_id), &owner.access, json!({"role": "admin"})).await;
        assert_eq!(r.expect(200)["role"], "admin");
        app.post(&format!("{base}/invitations"), Some(&member.access), json!({})).await.expect(201);
        app.post(&format!("{base}/invitations"), Some(&member.access), json!({"role": "owner"})).await
            .expect_error(403, "forbidden");
        app.put(&format!("{base}/members/{}", member.user_id), &member.access, json!({"role": "owner"})).await
            .expect_error(403, "forbidden");
        app.put(&format!("{base}/members/{}", owner.user_id), &member.access, json!({"role": "member"})).await
            .expect_error(403, "forbidden");
        app.put(&format!("{base}/members/{}", member.user_id), &owner.access, json!({"role": "emperor"})).await
            .expect_error(422, "unknown_role");
        let renamed = app.call(reqwest::Method::PATCH, &base, Some(&member.access), Some(json!({"name": "Clinic North"}))).await;
        assert_eq!(renamed.expect(200)["name"], "Clinic North");

        // A workspace keeps at least one owner: the admin who created it owns it too, so
        // after the admin leaves, Olga is the last owner and cannot step down.
        app.delete(&format!("{base}/members/{}", admin.user_id), &admin.access).await.expect(204);
        app.put(&format!("{base}/members/{}", owner.user_id), &owner.access, json!({"role": "member"})).await
            .expect_error(422, "last_owner");
        app.delete(&format!("{base}/members/{}", owner.user_id), &owner.access).await.expect_error(422, "last_owner");

        // Removing a member stops their access at once.
        app.delete(&format!("{base}/members/{}", member.user_id), &owner.access).await.expect(204);
        app.get(&base, &member.access).await.expect_error(404, "not_found");
    }

    async fn custom_roles_grant_exactly_what_they_list(app) {
        let admin = app.bootstrap_admin().await;
        app.create_user(&admin, "ida@example.org", "Ida").await;
        let ida = app.login("ida@example.org", PASSWORD).await;
        let ws = app.create_workspace(&admin, "Lab").await;
        let base = format!("/api/v1/workspaces/{ws}");

        app.post(&format!("{base}/roles"), Some(&admin.access),
            json!({"name": "recruiter", "permissions": ["workspace.read", "members.invite"]})).await.expect(201);
        app.post(&format!("{base}/roles"), Some(&admin.access),
            json!({"name": "bad", "permissions": ["users.manage"]})).await.expect_error(422, "unknown_permission");
        app.post(&format!("{base}/roles"), Some(&admin.access),
            json!({"name": "member", "permissions": []})).await.expect_error(409, "role_exists");
        app.post(&format!("{base}/roles"), Some(&admin.access),
            json!({"name": "recruiter", "permissions": []})).await.expect_error(409, "role_exists");
        let roles = app.get(&format!("{base}/roles"), &admin.access).await;
        let roles = roles.expect(200).as_array().unwrap().clone();
        let recruiter = roles.iter().find(|r| r["name"] == "recruiter").unwrap();
        assert_eq!(recruiter["builtin"], false);
        assert_eq!(recruiter["permissions"], json!(["members.invite", "workspace.read"]));
        assert!(roles.iter().any(|r| r["name"] == "owner" && r["builtin"] == true));

        app.add_member(&admin, &ws, &ida, "recruiter").await;
        // A recruiter invites to roles within their own, so not as a member (who posts).
        app.post(&format!("{base}/invitations"), Some(&ida.access), json!({})).await
            .expect_error(403, "role_not_grantable");
        app.post(&format!("{base}/invitations"), Some(&ida.access), json!({"role": "recruiter"})).await.expect(201);
        app.get(&format!("{base}/members"), &ida.access).await.expect_error(403, "forbidden");
        // A recruiter cannot hand out more than they hold.
        app.post(&format!("{base}/roles"), Some(&ida.access),
            json!({"name": "boss", "permissions": ["members.manage"]})).await.expect_error(403, "forbidden");
    }

    async fn system_roles_are_managed_by_admins(app) {
        let admin = app.bootstrap_admin().await;
        let bo = app.create_user(&admin, "bo@example.org", "Bo").await;
        let bo_s = app.login("bo@example.org", PASSWORD).await;
        app.put(&format!("/api/v1/users/{bo}/system-role"), &bo_s.access, json!({"role": "system_admin"})).await
            .expect_error(403, "forbidden");
        let r = app.put(&format!("/api/v1/users/{bo}/system-role"), &admin.access, json!({"role": "compliance_officer"})).await;
        assert_eq!(r.expect(200)["system_role"], "compliance_officer");
        // A compliance officer reads the account list but manages nothing.
        app.get("/api/v1/users", &bo_s.access).await.expect(200);
        app.post("/api/v1/workspaces", Some(&bo_s.access), json!({"name": "X"})).await.expect_error(403, "forbidden");
        app.put(&format!("/api/v1/users/{bo}/system-role"), &admin.access, json!({"role": "owner"})).await
            .expect_error(422, "unknown_role");
        // The last system admin keeps the role.
        app.put(&format!("/api/v1/users/{}/system-role", admin.user_id), &admin.access, json!({"role": null})).await
            .expect_error(422, "last_system_admin");
        app.get(&format!("/api/v1/users/{}", admin.user_id), &bo_s.access).await.expect(200);
        app.get(&format!("/api/v1/users/{bo}"), &bo_s.access).await.expect(200);
    }
}
