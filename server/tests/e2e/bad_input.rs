//! Bad input gets a clear error with a stable code and changes nothing.

use reqwest::Method;
use serde_json::json;

use crate::harness::{both_backends, reply, TestApp};

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> crate::harness::Reply {
    let mut req = app
        .client
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(token)
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    reply(req.send().await.unwrap()).await
}

both_backends! {
    async fn malformed_requests_are_refused_and_change_nothing(app) {
        let admin = app.bootstrap_admin().await;
        let t = admin.access.as_str();
        let json_ct = Some("application/json");
        let ws = "/api/v1/workspaces";

        raw(&app, Method::POST, ws, t, json_ct, b"{\"name\": ".to_vec()).await.expect_error(400, "invalid_json");
        raw(&app, Method::POST, ws, t, json_ct, b"[1,2]".to_vec()).await.expect_error(422, "invalid_body");
        raw(&app, Method::POST, ws, t, json_ct, br#"{"name": 42}"#.to_vec()).await.expect_error(422, "invalid_body");
        raw(&app, Method::POST, ws, t, json_ct, br#"{}"#.to_vec()).await.expect_error(422, "invalid_body");
        let unknown = raw(&app, Method::POST, ws, t, json_ct, br#"{"name": "X", "owner": "me"}"#.to_vec()).await;
        unknown.expect_error(422, "invalid_body");
        assert!(unknown.body["error"]["message"].as_str().unwrap().contains("owner"));
        raw(&app, Method::POST, ws, t, None, br#"{"name": "X"}"#.to_vec()).await.expect_error(415, "unsupported_media_type");
        raw(&app, Method::POST, ws, t, Some("text/plain"), br#"{"name": "X"}"#.to_vec()).await
            .expect_error(415, "unsupported_media_type");
        // Just over the 1 MiB limit (a far larger body may be cut off mid-send, as it should).
        let huge = format!(r#"{{"name": "{}"}}"#, "x".repeat(1024 * 1024));
        raw(&app, Method::POST, ws, t, json_ct, huge.into_bytes()).await.expect_error(413, "body_too_large");

        // Values that parse as JSON but are not acceptable.
        for (body, field) in [
            (json!({"name": ""}), "name"),
            (json!({"name": "x".repeat(81)}), "name"),
            (json!({"name": "ok", "slug": "Not A Slug"}), "slug"),
            (json!({"name": "bell\u{7}"}), "name"),
        ] {
            let r = app.post(ws, Some(t), body).await;
            r.expect_error(422, "validation_failed");
            assert_eq!(r.body["error"]["field"], field);
        }
        let r = app.post("/api/v1/users", Some(t), json!({"email": "not-an-email", "display_name": "X", "password": "long enough password"})).await;
        r.expect_error(422, "validation_failed");
        assert_eq!(r.body["error"]["field"], "email");
        app.post("/api/v1/auth/login", None, json!({"email": "a@example.org"})).await.expect_error(422, "invalid_body");
        app.post("/api/v1/auth/login", None, json!({"email": "a@example.org", "password": "x".repeat(5000)})).await
            .expect_error(422, "validation_failed");

        // Bad path and query parameters.
        app.get("/api/v1/workspaces/not-a-uuid", t).await.expect_error(400, "invalid_path");
        app.get("/api/v1/users?limit=lots", t).await.expect_error(400, "invalid_query");
        app.get("/api/v1/users?colour=blue", t).await.expect_error(400, "invalid_query");
        app.get(&format!("/api/v1/workspaces/{}", uuid::Uuid::now_v7()), t).await.expect_error(404, "not_found");

        // Nothing was created by any of it.
        assert_eq!(app.get(ws, t).await.expect(200).as_array().unwrap().len(), 0);
        assert_eq!(app.get("/api/v1/users", t).await.expect(200).as_array().unwrap().len(), 1);

        // Duplicates conflict and leave the original alone.
        app.post(ws, Some(t), json!({"name": "Acme"})).await.expect(201);
        app.post(ws, Some(t), json!({"name": "Acme!"})).await.expect_error(409, "slug_taken");
        app.create_user(&admin, "bo@example.org", "Bo").await;
        app.post("/api/v1/users", Some(t), json!({"email": "BO@example.org", "display_name": "Bo 2", "password": "long enough password"})).await
            .expect_error(409, "email_taken");
        assert_eq!(app.get(ws, t).await.expect(200).as_array().unwrap().len(), 1);
        assert_eq!(app.get("/api/v1/users", t).await.expect(200).as_array().unwrap().len(), 2);
    }
}
