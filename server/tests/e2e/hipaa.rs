//! HIPAA technical safeguards (45 CFR 164.312) for workspaces holding PHI: automatic logoff
//! ends a member's idle session server-side, its hub and document sockets included, while
//! an active session and people outside PHI workspaces are untouched; emergency access
//! (break-glass) opens one channel to its holder for a limited time, loudly audited and
//! announced to the compliance officers, and ends on time.
//!
//! A policy minute lasts one second here (`phi.test_minute_seconds`), and the logoff sweep
//! runs every second, so periods end within a test.

use std::time::Duration;

use serde_json::{json, Value};

use crate::chat::{channel, say};
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

async fn break_glass_grants_read_audited_and_expires_on_time(backend: Backend) {
    let app = phi_app(backend).await;
    let t = app.team().await;
    // Emergency access lasts at most four (one-second) minutes here; idle logoff is far off.
    set_policy(
        &app,
        &t.admin,
        &t.ws,
        json!({"phi": {"enabled": true, "idle_logoff_minutes": 600, "break_glass_max_minutes": 4}}),
    )
    .await;
    // A compliance officer, connected to the hub.
    let officer_id = app
        .create_user(&t.admin, "officer@example.org", "Officer")
        .await;
    app.put(
        &format!("/api/v1/users/{officer_id}/system-role"),
        &t.admin.access,
        json!({"role": "compliance_officer"}),
    )
    .await
    .expect(200);
    let officer = app.login("officer@example.org", PASSWORD).await;
    let mut officer_socket = app.socket(&officer.access, None).await;

    // Ann's private channel, which the workspace's owner cannot read.
    let ward = channel(&app, &t.ann, &t.ws, "ward-7", "private").await;
    say(&app, &t.ann, &ward, "bed 4: allergic to penicillin").await;
    let hidden = app
        .get(
            &format!("/api/v1/channels/{ward}/messages"),
            &t.admin.access,
        )
        .await;
    assert_eq!(hidden.status.as_u16(), 404, "{:?}", hidden.body);

    let ask = |who: &Session, body: Value| {
        let path = format!("/api/v1/channels/{ward}/break-glass");
        let token = who.access.clone();
        let app = &app;
        async move { app.post(&path, Some(&token), body).await }
    };
    // A plain member may not; a reason is required; no longer than the policy allows; and
    // not where it is not needed.
    let refused = ask(&t.bo, json!({"reason": "curious"})).await;
    assert_eq!(refused.status.as_u16(), 403, "{:?}", refused.body);
    let refused = ask(&t.admin, json!({"reason": "  "})).await;
    assert_eq!(refused.status.as_u16(), 422, "{:?}", refused.body);
    assert_eq!(
        refused.body["error"]["field"], "reason",
        "{:?}",
        refused.body
    );
    let refused = ask(&t.admin, json!({"reason": "code blue", "minutes": 5})).await;
    assert_eq!(refused.status.as_u16(), 422, "{:?}", refused.body);
    let general = channel(&app, &t.admin, &t.ws, "general", "public").await;
    let needless = app
        .post(
            &format!("/api/v1/channels/{general}/break-glass"),
            Some(&t.admin.access),
            json!({"reason": "code blue"}),
        )
        .await;
    assert_eq!(needless.status.as_u16(), 409, "{:?}", needless.body);
    assert_eq!(error_code(&needless), "break_glass_not_needed");

    // The owner breaks the glass for three minutes, saying why.
    let grant = ask(
        &t.admin,
        json!({"reason": "patient in bed 4 unresponsive; need the allergy notes", "minutes": 3}),
    )
    .await
    .expect(201)
    .clone();
    let id = grant["id"].as_str().expect("id").to_owned();
    let started: chrono::DateTime<chrono::Utc> =
        grant["started_at"].as_str().unwrap().parse().unwrap();
    let expires: chrono::DateTime<chrono::Utc> =
        grant["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((expires - started).num_seconds(), 3, "{grant}");
    assert_eq!(grant["user_id"], t.admin.user_id.as_str());

    // The compliance officer is told at once.
    let told = officer_socket
        .next_event()
        .await
        .expect("break_glass_started");
    assert_eq!(told["event"]["type"], "break_glass_started", "{told}");
    assert_eq!(told["event"]["grant_id"], id.as_str());
    assert_eq!(told["event"]["user_id"], t.admin.user_id.as_str());
    assert_eq!(told["event"]["channel_id"], ward.as_str());

    // It opens the channel's history to its holder, and to no one else.
    let read = app
        .get(
            &format!("/api/v1/break-glass/{id}/messages"),
            &t.admin.access,
        )
        .await
        .expect(200)
        .clone();
    assert!(
        read.to_string().contains("allergic to penicillin"),
        "{read}"
    );
    let other = app
        .get(&format!("/api/v1/break-glass/{id}/messages"), &t.bo.access)
        .await;
    assert_eq!(other.status.as_u16(), 403, "{:?}", other.body);
    assert!(!other.body.to_string().contains("penicillin"));
    // Nor to another holder of the permission (the officer): a grant is its holder's alone.
    let other = app
        .get(
            &format!("/api/v1/break-glass/{id}/messages"),
            &officer.access,
        )
        .await;
    assert_eq!(other.status.as_u16(), 404, "{:?}", other.body);
    // Nothing else opens: the channel itself stays hidden.
    let still_hidden = app
        .get(
            &format!("/api/v1/channels/{ward}/messages"),
            &t.admin.access,
        )
        .await;
    assert_eq!(still_hidden.status.as_u16(), 404);

    // It ends on time: the officer is told, not before it was due.
    let ended = officer_socket
        .next_event()
        .await
        .expect("break_glass_ended");
    assert_eq!(ended["event"]["type"], "break_glass_ended", "{ended}");
    assert_eq!(ended["event"]["reason"], "expired");
    assert!(chrono::Utc::now() >= expires, "ended early");
    let late = app
        .get(
            &format!("/api/v1/break-glass/{id}/messages"),
            &t.admin.access,
        )
        .await;
    assert_eq!(late.status.as_u16(), 410, "{:?}", late.body);
    assert_eq!(error_code(&late), "break_glass_ended");
    assert!(!late.body.to_string().contains("penicillin"));

    // Loudly audited: the start with its reason, each read (the late one refused), the end.
    let audit = |action: &'static str| audited(&app, &officer, action);
    let starts = audit("break_glass.started").await;
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(starts[0]["target_id"], id.as_str());
    assert_eq!(starts[0]["actor_id"], t.admin.user_id.as_str());
    assert!(starts[0]["details"]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("unresponsive")));
    assert_eq!(starts[0]["details"]["notified"], json!([officer_id]));
    let reads = audit("break_glass.read").await;
    let outcomes: Vec<&str> = reads
        .iter()
        .filter(|e| e["target_id"] == id.as_str())
        .filter_map(|e| e["outcome"].as_str())
        .collect();
    assert!(
        outcomes.contains(&"allowed") && outcomes.contains(&"denied"),
        "{reads:?}"
    );
    let ends = audit("break_glass.ended").await;
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0]["details"]["reason"], "expired");
}

both_backends!(break_glass_grants_read_audited_and_expires_on_time);
