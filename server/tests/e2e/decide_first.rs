//! Decisions come before effects: a workspace any user may create is decided before it is
//! written, public routes answer HEAD like GET, and only a channel's members (or its
//! moderators) change its topic.

use reqwest::Method;
use serde_json::json;

use crate::harness::{both_backends, spawn_app_with, Backend, PASSWORD};

async fn anyone_creates_workspaces(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.auth.users_can_create_workspaces = true).await;
    let admin = app.bootstrap_admin().await;
    app.create_user(&admin, "uma@example.org", "Uma").await;
    let uma = app.login("uma@example.org", PASSWORD).await;

    let made = app
        .post(
            "/api/v1/workspaces",
            Some(&uma.access),
            json!({"name": "Uma's Lab"}),
        )
        .await;
    let body = made.expect(201).clone();
    assert_eq!(body["name"], "Uma's Lab");
    assert_eq!(body["role"], "owner");
    assert_eq!(made.headers["x-concord-authz"], "allowed");
    // A conflict is an answer, not a half-done write.
    app.post(
        "/api/v1/workspaces",
        Some(&uma.access),
        json!({"name": "Uma's Lab"}),
    )
    .await
    .expect_error(409, "slug_taken");
    let mine = app.get("/api/v1/workspaces", &uma.access).await;
    let mine = mine.expect(200).as_array().unwrap().clone();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["id"], body["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_create_workspaces_sqlite() {
    anyone_creates_workspaces(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_create_workspaces_postgres() {
    anyone_creates_workspaces(Backend::Postgres).await;
}

both_backends! {
    async fn head_requests_are_answered_like_gets(app) {
        let admin = app.bootstrap_admin().await;
        for path in ["/healthz", "/readyz", "/api/v1/openapi.json", "/api/v1/auth/providers"] {
            let r = app.client.head(format!("{}{path}", app.base)).send().await.unwrap();
            assert_eq!(r.status(), 200, "HEAD {path}");
            assert_eq!(r.headers()["x-concord-authz"], "public", "HEAD {path}");
        }
        let url = format!("{}/api/v1/workspaces", app.base);
        let r = app.client.head(&url).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let r = app.client.head(&url).bearer_auth(&admin.access).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-concord-authz"], "allowed");
    }

    async fn only_members_change_a_public_channels_topic(app) {
        let admin = app.bootstrap_admin().await;
        for (email, name) in [("ann@example.org", "Ann"), ("bo@example.org", "Bo")] {
            app.create_user(&admin, email, name).await;
        }
        let ann = app.login("ann@example.org", PASSWORD).await;
        let bo = app.login("bo@example.org", PASSWORD).await;
        let ws = app.create_workspace(&admin, "Clinic").await;
        app.add_member(&admin, &ws, &ann, "member").await;
        app.add_member(&admin, &ws, &bo, "member").await;
        let c = crate::chat::channel(&app, &ann, &ws, "rounds", "public").await;
        let path = format!("/api/v1/channels/{c}");
        app.call(Method::PATCH, &path, Some(&ann.access), Some(json!({"topic": "Morning rounds"}))).await.expect(200);

        // Bo sees the public channel but has not joined it: its topic is not his to set.
        app.call(Method::PATCH, &path, Some(&bo.access), Some(json!({"topic": "Bo was here"}))).await
            .expect_error(403, "forbidden");
        assert_eq!(app.get(&path, &bo.access).await.expect(200)["topic"], "Morning rounds");

        // Once he joins, he may.
        app.call(Method::POST, &format!("{path}/join"), Some(&bo.access), None).await.expect(200);
        let r = app.call(Method::PATCH, &path, Some(&bo.access), Some(json!({"topic": "Afternoon rounds"}))).await;
        assert_eq!(r.expect(200)["topic"], "Afternoon rounds");
        // A workspace admin moderates channels without joining them.
        let r = app.call(Method::PATCH, &path, Some(&admin.access), Some(json!({"topic": "Rounds"}))).await;
        assert_eq!(r.expect(200)["topic"], "Rounds");
    }
}
