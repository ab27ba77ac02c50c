//! Every action leaves an audit record: posting a message, commenting on a document and
//! searching are recorded with who did what to which object, and never with what was written
//! or searched for.

use serde_json::{json, Value};

use crate::chat::{channel, say};
use crate::docs::create_doc;
use crate::harness::{both_backends, Session, TestApp};

const MESSAGE: &str = "zanzibarquokka merger terms are final";
const COMMENT: &str = "xylophonequasar figures look wrong";
const QUERY: &str = "zanzibarquokka";

async fn audit_events(app: &TestApp, admin: &Session, action: &str) -> Vec<Value> {
    app.get(
        &format!("/api/v1/audit/events?action={action}&limit=1000"),
        &admin.access,
    )
    .await
    .expect(200)["events"]
        .as_array()
        .unwrap()
        .clone()
}

both_backends! {
    async fn posts_comments_and_searches_are_recorded_without_their_content(app) {
        let t = app.team().await;
        let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
        let message = say(&app, &t.ann, &general, MESSAGE).await;
        let message_id = message["id"].as_str().unwrap().to_owned();
        let doc = create_doc(&app, &t.ann, &t.ws, "Plans").await;
        let comment = app
            .post(&format!("/api/v1/documents/{doc}/comments"), Some(&t.ann.access), json!({"text": COMMENT}))
            .await;
        let comment_id = comment.expect(201)["id"].as_str().unwrap().to_owned();
        let found = app
            .get(&format!("/api/v1/workspaces/{}/search?q={QUERY}", t.ws), &t.ann.access)
            .await;
        let found = found.expect(200).clone();
        let results = found["results"].as_array().unwrap().len();
        assert!(results >= 1, "{found}");

        let posted = audit_events(&app, &t.admin, "message.posted").await;
        let posted: Vec<&Value> = posted.iter().filter(|e| e["target_id"] == message_id.as_str()).collect();
        assert_eq!(posted.len(), 1, "{posted:?}");
        let e = posted[0];
        assert_eq!(e["actor_id"], t.ann.user_id.as_str());
        assert_eq!(e["target_type"], "message");
        assert_eq!(e["workspace_id"], t.ws.as_str());
        assert_eq!(e["outcome"], "allowed");
        assert_eq!(e["details"]["channel_id"], general.as_str());

        let commented = audit_events(&app, &t.admin, "document.commented").await;
        assert_eq!(commented.len(), 1, "{commented:?}");
        let e = &commented[0];
        assert_eq!(e["actor_id"], t.ann.user_id.as_str());
        assert_eq!(e["target_type"], "document");
        assert_eq!(e["target_id"], doc.as_str());
        assert_eq!(e["workspace_id"], t.ws.as_str());
        assert_eq!(e["details"]["comment_id"], comment_id.as_str());

        let searched = audit_events(&app, &t.admin, "search.query").await;
        let searched: Vec<&Value> = searched.iter().filter(|e| e["actor_id"] == t.ann.user_id.as_str()).collect();
        assert_eq!(searched.len(), 1, "{searched:?}");
        let e = searched[0];
        assert_eq!(e["workspace_id"], t.ws.as_str());
        assert_eq!(e["details"]["results"], found["total"]);

        // Neither the listing nor the export (decrypted fields included) holds the content.
        let everything = app.get("/api/v1/audit/events?limit=1000", &t.admin.access).await;
        let export = app
            .client
            .get(format!("{}/api/v1/audit/export?format=jsonl", app.base))
            .bearer_auth(&t.admin.access)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(export.contains(&message_id) && export.contains(&comment_id));
        for text in [everything.expect(200).to_string(), export] {
            for secret in [MESSAGE, COMMENT, QUERY, "xylophonequasar"] {
                assert!(!text.contains(secret), "{secret:?} reached the audit log");
            }
        }
    }
}

/// With `audit.record_searches = "off"` a search leaves no record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_are_not_recorded_when_switched_off() {
    let app = crate::harness::spawn_app_with(crate::harness::Backend::Sqlite, |c| {
        c.audit.record_searches = concord::config::SearchRecording::Off;
    })
    .await;
    let t = app.team().await;
    app.get(
        &format!("/api/v1/workspaces/{}/search?q={QUERY}", t.ws),
        &t.ann.access,
    )
    .await
    .expect(200);
    assert!(audit_events(&app, &t.admin, "search.query")
        .await
        .is_empty());
}
