//! Sessions: refresh-token rotation and reuse detection, sign-out, listing and revoking.

use serde_json::json;

use crate::harness::{both_backends, session, PASSWORD};

both_backends! {
    async fn refresh_tokens_rotate_and_reuse_revokes_the_family(app) {
        let admin = app.bootstrap_admin().await;
        let first = admin.refresh.clone();

        let r = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": first})).await;
        let second = session(r.expect(200));
        assert_eq!(second.session_id, admin.session_id, "a refresh stays in its session");
        assert_ne!(second.refresh, first);
        app.get("/api/v1/users/me", &second.access).await.expect(200);

        // The old token comes back (stolen and replayed): the whole session dies.
        app.post("/api/v1/auth/refresh", None, json!({"refresh_token": first})).await
            .expect_error(401, "refresh_token_reused");
        app.post("/api/v1/auth/refresh", None, json!({"refresh_token": second.refresh})).await
            .expect_error(401, "session_revoked");
        app.get("/api/v1/users/me", &second.access).await.expect_error(401, "session_revoked");

        // Garbage and unknown tokens are refused plainly.
        app.post("/api/v1/auth/refresh", None, json!({"refresh_token": "not-a-token"})).await
            .expect_error(401, "invalid_refresh_token");
        app.post("/api/v1/auth/refresh", None, json!({"refresh_token": ""})).await
            .expect_error(401, "invalid_refresh_token");

        // Signing in again works.
        app.login("admin@example.org", PASSWORD).await;
    }

    async fn sign_out_and_session_management(app) {
        let admin = app.bootstrap_admin().await;
        app.create_user(&admin, "bo@example.org", "Bo").await;
        let laptop = app.login("bo@example.org", PASSWORD).await;
        let phone = app.login("bo@example.org", PASSWORD).await;

        // Bo sees both sessions, the current one marked.
        let list = app.get("/api/v1/users/me/sessions", &laptop.access).await;
        let list = list.expect(200).as_array().unwrap().clone();
        assert_eq!(list.len(), 2);
        let current: Vec<_> = list.iter().filter(|s| s["current"] == true).collect();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0]["id"], laptop.session_id.as_str());
        assert_eq!(current[0]["auth_method"], "password");

        // Revoking the phone's session cuts it off at once, access and refresh alike.
        app.delete(&format!("/api/v1/users/{}/sessions/{}", laptop.user_id, phone.session_id), &laptop.access).await
            .expect(204);
        app.get("/api/v1/users/me", &phone.access).await.expect_error(401, "session_revoked");
        app.post("/api/v1/auth/refresh", None, json!({"refresh_token": phone.refresh})).await
            .expect_error(401, "session_revoked");
        app.delete(&format!("/api/v1/users/{}/sessions/{}", laptop.user_id, phone.session_id), &laptop.access).await
            .expect_error(404, "not_found");

        // Bo cannot see or touch the admin's sessions (not even that they exist).
        app.get(&format!("/api/v1/users/{}/sessions", admin.user_id), &laptop.access).await
            .expect_error(404, "not_found");
        app.delete(&format!("/api/v1/users/{}/sessions/{}", admin.user_id, admin.session_id), &laptop.access).await
            .expect_error(404, "not_found");
        app.get("/api/v1/users/me", &admin.access).await.expect(200);

        // The admin revokes all of Bo's sessions.
        let again = app.login("bo@example.org", PASSWORD).await;
        let r = app.delete(&format!("/api/v1/users/{}/sessions", laptop.user_id), &admin.access).await;
        assert_eq!(r.expect(200)["revoked"], 2);
        app.get("/api/v1/users/me", &laptop.access).await.expect_error(401, "session_revoked");
        app.get("/api/v1/users/me", &again.access).await.expect_error(401, "session_revoked");

        // Logout ends the current session only.
        let a = app.login("bo@example.org", PASSWORD).await;
        let b = app.login("bo@example.org", PASSWORD).await;
        app.call(reqwest::Method::POST, "/api/v1/auth/logout", Some(&a.access), None).await.expect(204);
        app.get("/api/v1/users/me", &a.access).await.expect_error(401, "session_revoked");
        app.get("/api/v1/users/me", &b.access).await.expect(200);
    }

    async fn repeated_failures_lock_the_account(app) {
        let admin = app.bootstrap_admin().await;
        app.create_user(&admin, "bo@example.org", "Bo").await;
        let wrong = json!({"email": "bo@example.org", "password": "wrong password!!"});
        let unknown = json!({"email": "nobody@example.org", "password": "wrong password!!"});

        // Unknown account and wrong password look the same.
        let a = app.post("/api/v1/auth/login", None, wrong.clone()).await;
        let b = app.post("/api/v1/auth/login", None, unknown.clone()).await;
        a.expect_error(401, "invalid_credentials");
        b.expect_error(401, "invalid_credentials");
        assert_eq!(a.body, b.body);

        // Ten failures lock the account, even against the right password afterwards;
        // an unknown email locks the same way.
        for _ in 1..10 {
            app.post("/api/v1/auth/login", None, wrong.clone()).await.expect_error(401, "invalid_credentials");
            app.post("/api/v1/auth/login", None, unknown.clone()).await.expect_error(401, "invalid_credentials");
        }
        let locked = app.post("/api/v1/auth/login", None, json!({"email": "bo@example.org", "password": PASSWORD})).await;
        locked.expect_error(429, "too_many_attempts");
        let retry: u64 = locked.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry > 0 && retry <= 15 * 60);
        app.post("/api/v1/auth/login", None, unknown).await.expect_error(429, "too_many_attempts");

        // Other accounts are unaffected.
        app.login("admin@example.org", PASSWORD).await;
    }
}
