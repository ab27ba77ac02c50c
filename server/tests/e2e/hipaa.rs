//! HIPAA technical safeguards (45 CFR 164.312) for workspaces holding PHI: automatic logoff
//! ends a member's idle session server-side, its hub and document sockets included, while
//! an active session and people outside PHI workspaces are untouched.
//!
//! A policy minute lasts one second here (`phi.test_minute_seconds`), and the logoff sweep
//! runs every second, so periods end within a test.

use std::time::Duration;

use serde_json::{json, Value};

use crate::docs::{create_doc, YClient};
use crate::harness::{both_backends, spawn_app_with, Backend, Session, TestApp, PASSWORD};

/// A server whose policy minutes last a second, sweeping every second.
async fn phi_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |c| {
        c.phi.test_minute_seconds = 1;
        c.phi.sweep_seconds = 1;
    })
    .await
}

async fn set_policy(app: &TestApp, admin: &Session, ws: &str, policy: Value) {
    app.put(
        &format!("/api/v1/workspaces/{ws}/policy"),
        &admin.access,
        policy,
    )
    .await
    .expect(200);
}

fn error_code(reply: &crate::harness::Reply) -> String {
    reply.body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn audited(app: &TestApp, reader: &Session, action: &str) -> Vec<Value> {
    app.get(
        &format!("/api/v1/audit/events?action={action}"),
        &reader.access,
    )
    .await
    .expect(200)["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn idle_logoff_ends_idle_sessions_and_their_sockets(backend: Backend) {
    let app = phi_app(backend).await;
    let t = app.team().await;
    // Someone in no PHI workspace: never subject to automatic logoff.
    app.create_user(&t.admin, "dee@example.org", "Dee").await;
    let dee = app.login("dee@example.org", PASSWORD).await;
    let doc = create_doc(&app, &t.ann, &t.ws, "Chart").await;
    // The clinic holds PHI: idle sessions end after three (one-second) minutes.
    set_policy(
        &app,
        &t.admin,
        &t.ws,
        json!({"phi": {"enabled": true, "idle_logoff_minutes": 3}}),
    )
    .await;

    // Ann opens the live sockets, then does nothing (pings and presence are not activity).
    let mut hub = app.socket(&t.ann.access, None).await;
    let mut editor = YClient::connect(&app, &doc, &t.ann.access).await;
    hub.send(json!({"type": "presence", "status": "away"}))
        .await;
    // Bo keeps working over HTTP, with a socket open too.
    let mut bo_socket = app.socket(&t.bo.access, None).await;
    let started = tokio::time::Instant::now();
    let closed = tokio::select! {
        code = hub.closed_with() => code,
        () = async {
            loop {
                app.get(&format!("/api/v1/workspaces/{}", t.ws), &t.bo.access)
                    .await
                    .expect(200);
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
        } => None,
    };
    assert_eq!(
        closed,
        Some(4440),
        "Ann's hub socket is closed for inactivity"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "not before the idle period: {:?}",
        started.elapsed()
    );
    assert_eq!(
        editor.closed_with().await,
        Some(4440),
        "Ann's document socket too"
    );

    // Her access token and her refresh token are refused, saying why.
    let refused = app
        .get(&format!("/api/v1/workspaces/{}", t.ws), &t.ann.access)
        .await;
    assert_eq!(refused.status.as_u16(), 401, "{:?}", refused.body);
    assert_eq!(error_code(&refused), "session_idle_timeout");
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": t.ann.refresh}),
        )
        .await;
    assert_eq!(refresh.status.as_u16(), 401, "{:?}", refresh.body);
    assert_eq!(error_code(&refresh), "session_idle_timeout");
    // A socket opened with the old token is refused.
    let port = app.base.rsplit(':').next().unwrap_or_default().to_owned();
    let (stream, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/v1/ws"))
        .await
        .expect("connects");
    let mut late = crate::harness::Socket::from_stream(stream);
    late.send(json!({"type": "auth", "token": t.ann.access}))
        .await;
    assert_eq!(late.closed_with().await, Some(4401));

    // Bo's active session and socket live on; so does Dee's, idle but outside PHI.
    app.get(&format!("/api/v1/workspaces/{}", t.ws), &t.bo.access)
        .await
        .expect(200);
    bo_socket.send(json!({"type": "ping"})).await;
    loop {
        // Presence notices (Ann went offline) may come first.
        let frame = bo_socket.next().await.expect("Bo's socket is open");
        if frame["type"] == "pong" {
            break;
        }
    }
    app.get("/api/v1/workspaces", &dee.access).await.expect(200);

    // Ann signs in again and carries on.
    let ann = app.login("ann@example.org", PASSWORD).await;
    app.get(&format!("/api/v1/workspaces/{}", t.ws), &ann.access)
        .await
        .expect(200);

    // Each logoff is audited with the session it ended (the administrator, idle too, signs
    // in again to read the log).
    let admin = app.login("admin@example.org", PASSWORD).await;
    let logoffs = audited(&app, &admin, "session.idle_logoff").await;
    let ann_logoff = logoffs
        .iter()
        .find(|e| e["target_id"] == t.ann.session_id.as_str())
        .unwrap_or_else(|| panic!("Ann's logoff audited: {logoffs:?}"));
    assert_eq!(
        ann_logoff["details"]["user"],
        t.ann.user_id.as_str(),
        "{ann_logoff}"
    );
    assert!(
        logoffs
            .iter()
            .all(|e| e["target_id"] != t.bo.session_id.as_str()
                && e["target_id"] != dee.session_id.as_str()),
        "{logoffs:?}"
    );
}

both_backends!(idle_logoff_ends_idle_sessions_and_their_sockets);
