//! Restriction of processing (GDPR Art. 18): a compliance officer restricts a person with a
//! reason. Their messages stay where they are for the people in the channel, but the search
//! index drops them and takes nothing new of theirs, bots get no event for what they post and
//! read their messages and profile withheld through the Slack Web API. Lifting it, with a
//! reason, tells the person on the hub and makes their content findable again. Every start and
//! lift is audited with ids only.

use std::time::Duration;

use serde_json::{json, Value};

use crate::bot_events::{events_app, subscribed_bot};
use crate::chat::{channel, say};
use crate::harness::{both_backends, Backend, Session, TestApp, PASSWORD};

async fn officer(app: &TestApp, admin: &Session) -> Session {
    app.create_user(admin, "officer@example.org", "Officer")
        .await;
    let officer = app.login("officer@example.org", PASSWORD).await;
    app.put(
        &format!("/api/v1/users/{}/system-role", officer.user_id),
        &admin.access,
        json!({"role": "compliance_officer"}),
    )
    .await
    .expect(200);
    officer
}

fn restriction(who: &str) -> String {
    format!("/api/v1/users/{who}/restriction")
}

async fn restrict(app: &TestApp, by: &Session, who: &str, reason: &str) -> Value {
    app.post(
        &restriction(who),
        Some(&by.access),
        json!({ "reason": reason }),
    )
    .await
    .expect(201)
    .clone()
}

async fn lift(app: &TestApp, by: &Session, who: &str, reason: &str) -> Value {
    app.post(
        &format!("{}/lift", restriction(who)),
        Some(&by.access),
        json!({ "reason": reason }),
    )
    .await
    .expect(200)
    .clone()
}

/// The ids of the messages `query` finds for `who` in `ws`.
async fn found(app: &TestApp, who: &Session, ws: &str, query: &str) -> Vec<String> {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/v1/workspaces/{ws}/search", app.base),
        &[("q", query), ("limit", "100")],
    )
    .unwrap();
    let path = &url.as_str()[app.base.len()..];
    let body = app.get(path, &who.access).await.expect(200).clone();
    let mut ids: Vec<String> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Searches until `query` finds exactly `want` (the index follows committed events, and a
/// lifted restriction's rebuild runs in the background).
async fn finds(app: &TestApp, who: &Session, ws: &str, query: &str, want: &[String]) {
    let mut now = Vec::new();
    for _ in 0..100 {
        now = found(app, who, ws, query).await;
        if now == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(now, want, "{query}");
}

fn sorted(ids: &[&Value]) -> Vec<String> {
    let mut out: Vec<String> = ids
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

async fn an_officer_restricts_and_lifts_with_reasons_and_audit(backend: Backend) {
    let app = crate::harness::spawn_app(backend).await;
    let t = app.team().await;
    let officer = officer(&app, &t.admin).await;
    let ann = t.ann.user_id.clone();

    // Members may not restrict anyone, nor see a restriction; a reason is required.
    app.post(
        &restriction(&ann),
        Some(&t.bo.access),
        json!({"reason": "no"}),
    )
    .await
    .expect(403);
    app.get(&restriction(&ann), &t.bo.access).await.expect(403);
    app.post(&restriction(&ann), Some(&officer.access), json!({}))
        .await
        .expect_error(422, "reason_required");
    app.post(
        &restriction(&ann),
        Some(&officer.access),
        json!({"reason": "  "}),
    )
    .await
    .expect_error(422, "reason_required");
    app.post(
        &restriction("01900000-0000-7000-8000-000000000099"),
        Some(&officer.access),
        json!({"reason": "DSR-121"}),
    )
    .await
    .expect(404);
    let bot = app
        .post(
            &format!("/api/v1/workspaces/{}/bots", t.ws),
            Some(&t.admin.access),
            json!({"name": "CI"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &restriction(&bot),
        Some(&officer.access),
        json!({"reason": "DSR-121"}),
    )
    .await
    .expect_error(422, "not_a_person");

    // Ann is not restricted, and sees so.
    let mine = app.get("/api/v1/users/me/restriction", &t.ann.access).await;
    assert_eq!(mine.expect(200)["restricted"], false);

    let started = restrict(
        &app,
        &officer,
        &ann,
        "Art. 18(1)(a): accuracy contested, DSR-121",
    )
    .await;
    assert_eq!(started["restricted"], true, "{started}");
    assert_eq!(
        started["current"]["reason"],
        "Art. 18(1)(a): accuracy contested, DSR-121"
    );
    assert_eq!(started["current"]["started_by"], officer.user_id.as_str());
    let id = started["current"]["id"].as_str().unwrap().to_owned();
    app.post(
        &restriction(&ann),
        Some(&officer.access),
        json!({"reason": "again"}),
    )
    .await
    .expect_error(409, "already_restricted");
    let seen = app.get(&restriction(&ann), &officer.access).await;
    assert_eq!(seen.expect(200)["current"]["id"], id.as_str());
    let mine = app.get("/api/v1/users/me/restriction", &t.ann.access).await;
    let mine = mine.expect(200);
    assert_eq!(mine["restricted"], true, "{mine}");
    assert_eq!(
        mine["current"]["reason"],
        "Art. 18(1)(a): accuracy contested, DSR-121"
    );
    // The reason is stored sealed.
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM processing_restrictions WHERE lifted_at IS NULL")
            .await,
        1
    );

    // Lifting needs a reason, tells Ann on the hub, and happens once.
    let mut socket = app.socket(&t.ann.access, None).await;
    app.post(
        &format!("{}/lift", restriction(&ann)),
        Some(&officer.access),
        json!({}),
    )
    .await
    .expect_error(422, "reason_required");
    app.post(
        &format!("{}/lift", restriction(&ann)),
        Some(&t.bo.access),
        json!({"reason": "x"}),
    )
    .await
    .expect(403);
    let lifted = lift(&app, &officer, &ann, "accuracy verified").await;
    assert_eq!(lifted["restricted"], false, "{lifted}");
    assert!(lifted["current"].is_null());
    let history = lifted["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["lift_reason"], "accuracy verified");
    assert_eq!(history[0]["lifted_by"], officer.user_id.as_str());
    let frame = socket.next_event().await.expect("Ann is told");
    assert_eq!(frame["event"]["type"], "restriction_lifted", "{frame}");
    assert_eq!(frame["event"]["user_id"], ann.as_str());
    app.post(
        &format!("{}/lift", restriction(&ann)),
        Some(&officer.access),
        json!({"reason": "x"}),
    )
    .await
    .expect_error(409, "not_restricted");

    // A second restriction starts a second period in the history.
    restrict(&app, &officer, &ann, "objection pending").await;
    let again = app.get(&restriction(&ann), &officer.access).await;
    assert_eq!(again.expect(200)["history"].as_array().unwrap().len(), 2);

    // An erased person can be neither restricted nor lifted.
    app.post(
        &format!("/api/v1/users/{}/erasure", t.cy.user_id),
        Some(&officer.access),
        json!({"reason": "Art. 17"}),
    )
    .await
    .expect(202);
    app.post(
        &restriction(&t.cy.user_id),
        Some(&officer.access),
        json!({"reason": "DSR"}),
    )
    .await
    .expect_error(410, "erased");

    // Audited with ids only: no reason in the entries.
    let events = app.audit_events(&officer.access).await;
    let of = |action: &str| -> Vec<Value> {
        events
            .iter()
            .filter(|e| e["action"] == action)
            .cloned()
            .collect()
    };
    let starts = of("data_subject.restricted");
    let lifts = of("data_subject.restriction_lifted");
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert_eq!(lifts.len(), 1, "{lifts:?}");
    for e in starts.iter().chain(&lifts) {
        assert_eq!(e["actor_id"], officer.user_id.as_str(), "{e}");
        assert_eq!(e["target_id"], ann.as_str(), "{e}");
        let text = e.to_string();
        assert!(
            !text.contains("accuracy") && !text.contains("objection"),
            "{e}"
        );
    }
    assert_eq!(lifts[0]["details"]["restriction_id"], id.as_str());
}

async fn search_and_bots_leave_a_restricted_persons_content_alone(backend: Backend) {
    let app = events_app(backend).await;
    let t = app.team().await;
    let officer = officer(&app, &t.admin).await;
    let room = channel(&app, &t.admin, &t.ws, "general", "public").await;
    for who in [&t.ann, &t.bo] {
        app.post(
            &format!("/api/v1/channels/{room}/members"),
            Some(&t.admin.access),
            json!({ "user_id": who.user_id }),
        )
        .await
        .expect(200);
    }
    let (bot, mut rx) = subscribed_bot(&app, &t, &room, "Listener").await;
    let token = app
        .post(
            &format!("/api/v1/workspaces/{}/bots/{bot}/tokens", t.ws),
            Some(&t.admin.access),
            json!({ "scopes": ["channels:history", "users:read"] }),
        )
        .await
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let alpha = say(&app, &t.ann, &room, "zebra alpha").await;
    let bravo = say(&app, &t.bo, &room, "zebra bravo").await;
    for _ in 0..2 {
        rx.next_event().await;
    }
    finds(&app, &t.bo, &t.ws, "zebra", &sorted(&[&alpha, &bravo])).await;

    restrict(&app, &officer, &t.ann.user_id, "DSR-121").await;
    // Her entries left the index, and what she posts now is not indexed.
    finds(&app, &t.bo, &t.ws, "zebra", &sorted(&[&bravo])).await;
    let charlie = say(&app, &t.ann, &room, "zebra charlie").await;
    let delta = say(&app, &t.bo, &room, "zebra delta").await;
    finds(&app, &t.bo, &t.ws, "zebra", &sorted(&[&bravo, &delta])).await;
    assert!(found(&app, &t.bo, &t.ws, "charlie").await.is_empty());
    // The bot hears Bo's message and not hers.
    let event = rx.next_event().await;
    assert_eq!(event["body"]["event"]["text"], "zebra delta", "{event}");
    assert_eq!(event["body"]["event"]["user"], t.bo.user_id.as_str());
    // People still read her messages in the channel.
    let history = app
        .get(&format!("/api/v1/channels/{room}/messages"), &t.bo.access)
        .await
        .expect(200)
        .clone();
    assert!(history.to_string().contains("zebra charlie"), "{history}");
    // Through the Web API a bot reads her messages and profile withheld.
    let read = app
        .post(
            "/api/slack/conversations.history",
            Some(&token),
            json!({ "channel": room }),
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(read["ok"], true, "{read}");
    let messages = read["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4, "{read}");
    assert!(
        !read.to_string().contains("alpha") && !read.to_string().contains("charlie"),
        "{read}"
    );
    let withheld: Vec<&Value> = messages
        .iter()
        .filter(|m| m["subtype"] == "tombstone")
        .collect();
    assert_eq!(withheld.len(), 2, "{read}");
    for m in &withheld {
        assert_eq!(m["text"], "", "{m}");
        assert_eq!(m["hidden"], true, "{m}");
        assert!(m.get("user").is_none(), "{m}");
    }
    assert!(read.to_string().contains("zebra delta"));
    let info = app
        .post(
            "/api/slack/users.info",
            Some(&token),
            json!({ "user": t.ann.user_id }),
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(info["user"]["id"], t.ann.user_id.as_str(), "{info}");
    assert_eq!(info["user"]["real_name"], "", "{info}");
    assert!(!info.to_string().contains("Ann"), "{info}");
    let listed = app
        .post("/api/slack/users.list", Some(&token), json!({}))
        .await
        .expect(200)
        .clone();
    assert!(!listed.to_string().contains("\"Ann\""), "{listed}");
    assert!(listed.to_string().contains("\"Bo\""), "{listed}");

    // Lifted: her messages are found again (the index is rebuilt in the background) and the
    // bot hears her again.
    lift(&app, &officer, &t.ann.user_id, "accuracy verified").await;
    let all = sorted(&[&alpha, &bravo, &charlie, &delta]);
    finds(&app, &t.bo, &t.ws, "zebra", &all).await;
    let echo = say(&app, &t.ann, &room, "zebra echo").await;
    let event = rx.next_event().await;
    assert_eq!(event["body"]["event"]["text"], "zebra echo", "{event}");
    assert_eq!(event["body"]["event"]["user"], t.ann.user_id.as_str());
    // The rebuild records that she is back in the index.
    let reindexed = "SELECT COUNT(*) FROM processing_restrictions WHERE reindexed_at IS NOT NULL";
    for _ in 0..100 {
        if app.scalar(reindexed).await == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(app.scalar(reindexed).await, 1);

    // A lift whose rebuild never ran (the server stopped first) is finished when the server
    // starts again.
    restrict(&app, &officer, &t.ann.user_id, "DSR-122").await;
    let all = sorted(&[&alpha, &bravo, &charlie, &delta, &echo]);
    finds(&app, &t.bo, &t.ws, "zebra", &sorted(&[&bravo, &delta])).await;
    drop(rx);
    let mut app = app;
    app.stop().await;
    app.raw_sql(
        "UPDATE processing_restrictions SET lifted_at = started_at, lifted_by = started_by, \
         lift_reason = reason WHERE lifted_at IS NULL",
    )
    .await
    .expect("lifted behind the server's back");
    let app = app.restart().await;
    finds(&app, &t.bo, &t.ws, "zebra", &all).await;
    for _ in 0..100 {
        if app.scalar(reindexed).await == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(app.scalar(reindexed).await, 2);
}

both_backends!(
    an_officer_restricts_and_lifts_with_reasons_and_audit,
    search_and_bots_leave_a_restricted_persons_content_alone,
);
