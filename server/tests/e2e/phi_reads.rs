//! Every read of PHI is audited (`phi.audit_reads`, 45 CFR 164.312(b)): reads of messages,
//! files, documents and search results in a channel flagged `phi` leave a `phi.read` entry
//! naming who read what (ids, never content), live delivery to a socket included, while reads
//! elsewhere leave none, and turning the setting off stops them at once.

use reqwest::Method;
use serde_json::{json, Value};

use crate::bot_events::{events_app, subscribed_bot};
use crate::chat::{channel, say};
use crate::harness::{both_backends, Backend, Session, TestApp};

/// The `phi.read` entries `who` made, oldest first (the log lists in sequence order).
async fn phi_reads(app: &TestApp, reader: &Session, who: &Session) -> Vec<Value> {
    phi_reads_by(app, reader, &who.user_id).await
}

/// The `phi.read` entries the user or bot `who` made, oldest first.
async fn phi_reads_by(app: &TestApp, reader: &Session, who: &str) -> Vec<Value> {
    let mut events = app
        .get(
            "/api/v1/audit/events?action=phi.read&limit=1000",
            &reader.access,
        )
        .await
        .expect(200)["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    events.retain(|e| e["actor_id"] == who);
    events
}

/// The entries of `kind` among `events`.
fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["details"]["kind"] == kind)
        .collect()
}

fn ids(event: &Value) -> Vec<String> {
    event["details"]["ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn every_read_of_phi_is_audited(backend: Backend) {
    let app = crate::harness::spawn_app(backend).await;
    let t = app.team().await;
    let ward = channel(&app, &t.ann, &t.ws, "ward-7", "public").await;
    let lobby = channel(&app, &t.ann, &t.ws, "lobby", "public").await;
    for c in [&ward, &lobby] {
        app.call(
            Method::POST,
            &format!("/api/v1/channels/{c}/join"),
            Some(&t.bo.access),
            None,
        )
        .await
        .expect(200);
    }
    // Only the ward holds PHI; the workspace as a whole does not.
    app.put(
        &format!("/api/v1/workspaces/{}/policy", t.ws),
        &t.admin.access,
        json!({"channels": {&ward: {"phi": true}}}),
    )
    .await
    .expect(200);
    let note = say(&app, &t.ann, &ward, "bed 4: allergic to penicillin").await;
    let note = note["id"].as_str().expect("id").to_owned();
    let lunch = say(&app, &t.ann, &lobby, "lunch at noon").await;
    let lunch = lunch["id"].as_str().expect("id").to_owned();
    assert!(phi_reads(&app, &t.admin, &t.bo).await.is_empty());

    // Messages: a history page, one message, its thread.
    app.get(&format!("/api/v1/channels/{ward}/messages"), &t.bo.access)
        .await
        .expect(200);
    app.get(&format!("/api/v1/messages/{note}/context"), &t.bo.access)
        .await
        .expect(200);
    app.get(&format!("/api/v1/messages/{note}/thread"), &t.bo.access)
        .await
        .expect(200);
    let events = phi_reads(&app, &t.admin, &t.bo).await;
    let messages = of_kind(&events, "messages");
    assert_eq!(messages.len(), 3, "{events:?}");
    for e in &messages {
        assert_eq!(e["target_type"], "channel");
        assert_eq!(e["target_id"], ward.as_str());
        assert_eq!(e["workspace_id"], t.ws.as_str());
        assert_eq!(e["outcome"], "allowed");
        assert!(ids(e).contains(&note), "{e}");
        assert!(
            !e.to_string().contains("penicillin"),
            "content in the audit: {e}"
        );
    }

    // An edit keeps the earlier text: reading it is a read. So is the answer to taking
    // away a reaction one never made (nothing changes, yet the message comes back).
    app.call(
        Method::PATCH,
        &format!("/api/v1/messages/{note}"),
        Some(&t.ann.access),
        Some(json!({"text": "bed 4: allergic to penicillin and latex"})),
    )
    .await
    .expect(200);
    app.get(&format!("/api/v1/messages/{note}/versions"), &t.bo.access)
        .await
        .expect(200);
    app.call(
        Method::DELETE,
        &format!("/api/v1/messages/{note}/reactions/:eyes:"),
        Some(&t.bo.access),
        None,
    )
    .await
    .expect(200);
    let events = phi_reads(&app, &t.admin, &t.bo).await;
    let versions = of_kind(&events, "message_versions");
    assert_eq!(versions.len(), 1, "{events:?}");
    assert_eq!(versions[0]["target_id"], note.as_str());
    assert_eq!(ids(versions[0]), vec![format!("{note}:1")]);
    assert_eq!(of_kind(&events, "messages").len(), 4, "{events:?}");
    assert!(!events.iter().any(|e| e.to_string().contains("latex")));
    let seen = events.len();

    // Reads outside the ward are not PHI.
    app.get(&format!("/api/v1/channels/{lobby}/messages"), &t.bo.access)
        .await
        .expect(200);
    app.get(&format!("/api/v1/messages/{lunch}/context"), &t.bo.access)
        .await
        .expect(200);
    assert_eq!(phi_reads(&app, &t.admin, &t.bo).await.len(), seen);

    // A file shared in the ward: its details, the channel's list and (audited for every
    // file) its download.
    let file = app
        .upload(&t.ann, &ward, "chart.txt", b"penicillin chart")
        .await
        .expect(201)["id"]
        .as_str()
        .expect("file id")
        .to_owned();
    app.get(&format!("/api/v1/files/{file}"), &t.bo.access)
        .await
        .expect(200);
    app.get(&format!("/api/v1/channels/{ward}/files"), &t.bo.access)
        .await
        .expect(200);
    let events = phi_reads(&app, &t.admin, &t.bo).await;
    let details = of_kind(&events, "file");
    assert_eq!(details.len(), 1, "{events:?}");
    assert_eq!(details[0]["target_id"], file.as_str());
    let list = of_kind(&events, "files");
    assert_eq!(list.len(), 1, "{events:?}");
    assert_eq!(ids(list[0]), vec![file.clone()]);

    // A document linked to the ward, and one linked to no channel (not PHI here).
    let doc = app
        .post(
            &format!("/api/v1/workspaces/{}/documents", t.ws),
            Some(&t.ann.access),
            json!({"title": "Care plan", "channel_id": &ward}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .expect("doc id")
        .to_owned();
    let plain = app
        .post(
            &format!("/api/v1/workspaces/{}/documents", t.ws),
            Some(&t.ann.access),
            json!({"title": "Rota"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .expect("doc id")
        .to_owned();
    app.get(&format!("/api/v1/documents/{doc}"), &t.ann.access)
        .await
        .expect(200);
    app.get(&format!("/api/v1/documents/{plain}"), &t.ann.access)
        .await
        .expect(200);
    app.get(&format!("/api/v1/documents/{doc}/comments"), &t.ann.access)
        .await
        .expect(200);
    let events = phi_reads(&app, &t.admin, &t.ann).await;
    let docs = of_kind(&events, "document");
    assert_eq!(docs.len(), 1, "{events:?}");
    assert_eq!(docs[0]["target_id"], doc.as_str());
    // No comments yet: a read of nothing is not an entry.
    assert!(
        of_kind(&events, "document_comments").is_empty(),
        "{events:?}"
    );
    let comment = app
        .post(
            &format!("/api/v1/documents/{doc}/comments"),
            Some(&t.ann.access),
            json!({"text": "check penicillin dose"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .expect("comment id")
        .to_owned();
    app.get(&format!("/api/v1/documents/{doc}/comments"), &t.ann.access)
        .await
        .expect(200);
    let events = phi_reads(&app, &t.admin, &t.ann).await;
    let comments = of_kind(&events, "document_comments");
    assert_eq!(comments.len(), 1, "{events:?}");
    assert_eq!(ids(comments[0]), vec![comment]);
    app.get(
        &format!("/api/v1/workspaces/{}/documents", t.ws),
        &t.ann.access,
    )
    .await
    .expect(200);
    let events = phi_reads(&app, &t.admin, &t.ann).await;
    let listed = of_kind(&events, "documents");
    assert_eq!(listed.len(), 1, "{events:?}");
    assert_eq!(ids(listed[0]), vec![doc.clone()]);

    // Search: the PHI results on the page are named, the others are not.
    let reply = app
        .get(
            &format!("/api/v1/workspaces/{}/search?q=penicillin", t.ws),
            &t.bo.access,
        )
        .await;
    let found = reply.expect(200);
    assert!(
        found["results"]
            .as_array()
            .is_some_and(|r| r.iter().any(|h| h["id"] == note.as_str())),
        "{found}"
    );
    app.get(
        &format!("/api/v1/workspaces/{}/search?q=lunch", t.ws),
        &t.bo.access,
    )
    .await
    .expect(200);
    let events = phi_reads(&app, &t.admin, &t.bo).await;
    let searches = of_kind(&events, "search_results");
    assert_eq!(searches.len(), 1, "{events:?}");
    assert!(
        ids(searches[0]).contains(&format!("message:{note}")),
        "{:?}",
        searches[0]
    );
    assert!(!searches[0].to_string().contains("penicillin"));

    // A live connection receives the ward's posts as they come: audited when it opens.
    let socket = app.socket(&t.bo.access, None).await;
    let events = phi_reads(&app, &t.admin, &t.bo).await;
    let live = of_kind(&events, "live_channels");
    assert_eq!(live.len(), 1, "{events:?}");
    assert_eq!(ids(live[0]), vec![ward.clone()]);
    drop(socket);

    // Turning `phi.audit_reads` off stops the entries at once.
    let before = phi_reads(&app, &t.admin, &t.bo).await.len();
    app.put(
        &format!("/api/v1/workspaces/{}/policy", t.ws),
        &t.admin.access,
        json!({"phi": {"audit_reads": false}, "channels": {&ward: {"phi": true}}}),
    )
    .await
    .expect(200);
    app.get(&format!("/api/v1/channels/{ward}/messages"), &t.bo.access)
        .await
        .expect(200);
    assert_eq!(phi_reads(&app, &t.admin, &t.bo).await.len(), before);
    // And on again.
    app.put(
        &format!("/api/v1/workspaces/{}/policy", t.ws),
        &t.admin.access,
        json!({"phi": {"enabled": true}}),
    )
    .await
    .expect(200);
    app.get(&format!("/api/v1/channels/{lobby}/messages"), &t.bo.access)
        .await
        .expect(200);
    let events = phi_reads(&app, &t.admin, &t.bo).await;
    assert_eq!(events.len(), before + 1, "{events:?}");
    assert_eq!(events[before]["target_id"], lobby.as_str());
    // With the whole workspace holding PHI, a document of no channel is PHI too.
    app.get(&format!("/api/v1/documents/{plain}"), &t.ann.access)
        .await
        .expect(200);
    let events = phi_reads(&app, &t.admin, &t.ann).await;
    let docs = of_kind(&events, "document");
    assert_eq!(docs.len(), 2, "{events:?}");
    assert_eq!(docs[1]["target_id"], plain.as_str());
}

/// A message of a PHI channel delivered to a bot's request URL is a read by the bot; one of
/// another channel is not.
async fn messages_delivered_to_bots_are_audited(backend: Backend) {
    let app = events_app(backend).await;
    let t = app.team().await;
    let ward = channel(&app, &t.admin, &t.ws, "ward-7", "public").await;
    let lobby = channel(&app, &t.admin, &t.ws, "lobby", "public").await;
    app.put(
        &format!("/api/v1/workspaces/{}/policy", t.ws),
        &t.admin.access,
        json!({"channels": {&ward: {"phi": true}}}),
    )
    .await
    .expect(200);
    let (bot, mut ward_rx) = subscribed_bot(&app, &t, &ward, "Pager").await;
    let (other, mut lobby_rx) = subscribed_bot(&app, &t, &lobby, "Lunch bot").await;
    let note = say(&app, &t.admin, &ward, "bed 4: allergic to penicillin").await;
    let note = note["id"].as_str().expect("id").to_owned();
    say(&app, &t.admin, &lobby, "lunch at noon").await;
    let got = ward_rx.next_event().await;
    assert_eq!(
        got["body"]["event"]["text"],
        "bed 4: allergic to penicillin"
    );
    lobby_rx.next_event().await;
    let events = phi_reads_by(&app, &t.admin, &bot).await;
    let delivered = of_kind(&events, "bot_event");
    assert_eq!(delivered.len(), 1, "{events:?}");
    assert_eq!(delivered[0]["actor_type"], "bot");
    assert_eq!(delivered[0]["session_id"], "events");
    assert_eq!(delivered[0]["target_id"], ward.as_str());
    assert_eq!(ids(delivered[0]), vec![note]);
    assert!(!delivered[0].to_string().contains("penicillin"));
    assert!(phi_reads_by(&app, &t.admin, &other).await.is_empty());
}

both_backends!(
    every_read_of_phi_is_audited,
    messages_delivered_to_bots_are_audited
);
