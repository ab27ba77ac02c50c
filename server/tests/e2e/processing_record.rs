//! The record of processing activities (GDPR Art. 30) is generated, not written: it lists
//! every column of the data inventory with whose it is and how it is protected, every
//! processing activity, the controller the operator configured, and the effective retention
//! of each workspace whose policy differs from the deployment's. Compliance officers and
//! system administrators read it (as JSON or Markdown), members do not, and each reading is
//! audited.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::harness::{both_backends, spawn_app_with, Backend, PASSWORD};

const RECORD: &str = "/api/v1/compliance/processing-record";

async fn the_record_lists_the_inventory_and_each_workspaces_retention(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.policy.modules = vec!["default".into(), "gdpr".into()];
        c.processing_record.controller = Some("Okapi Clinic Ltd, 1 Harbour Road".into());
        c.processing_record.dpo = Some("dpo@okapi.example".into());
    })
    .await;
    let t = app.team().await;
    app.create_user(&t.admin, "officer@example.org", "Officer")
        .await;
    let officer = app.login("officer@example.org", PASSWORD).await;
    app.put(
        &format!("/api/v1/users/{}/system-role", officer.user_id),
        &t.admin.access,
        json!({"role": "compliance_officer"}),
    )
    .await
    .expect(200);
    // Clinic keeps messages 30 days; a second workspace follows the modules.
    app.put(
        &format!("/api/v1/workspaces/{}/policy", t.ws),
        &t.admin.access,
        json!({"retention": {"messages_days": 30}}),
    )
    .await
    .expect(200);
    let other = app.create_workspace(&t.admin, "Lab").await;

    let record = app.get(RECORD, &officer.access).await;
    let record = record.expect(200).clone();

    // Every column of the inventory, with whose it is and how it is protected.
    let listed: BTreeSet<(String, String)> = record["personal_data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert!(
                d["protection"].as_str().is_some_and(|p| !p.is_empty()),
                "{d}"
            );
            assert!(
                d["retention_period"]
                    .as_str()
                    .is_some_and(|p| !p.is_empty()),
                "{d}"
            );
            (
                d["table"].as_str().unwrap().to_owned(),
                d["column"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let inventory = concord::startup::inventory();
    for column in inventory.columns() {
        assert!(
            listed.contains(&(column.table.to_owned(), column.column.to_owned())),
            "{}.{} is missing from the record",
            column.table,
            column.column
        );
    }
    assert_eq!(listed.len(), inventory.columns().len());
    let purposes: Vec<&str> = record["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for activity in concord::startup::activities() {
        assert!(purposes.contains(&activity.name), "{}", activity.name);
    }
    let subjects: Vec<&str> = record["data_subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["category"].as_str().unwrap())
        .collect();
    for kind in ["account", "author", "uploader", "session_holder", "actor"] {
        assert!(subjects.contains(&kind), "{kind} in {subjects:?}");
    }
    assert_eq!(
        record["controller"]["name"],
        "Okapi Clinic Ltd, 1 Harbour Road"
    );
    assert_eq!(record["controller"]["dpo"], "dpo@okapi.example");
    assert_eq!(record["transfers"], json!([]));
    assert_eq!(record["retention"]["modules"], json!(["default", "gdpr"]));
    assert_eq!(
        record["retention"]["deployment"]["messages_days"],
        "forever"
    );
    assert_eq!(record["retention"]["deployment"]["sessions_days"], 30);

    // The workspace with an override, with its effective periods; the other is not listed.
    let workspaces = record["retention"]["workspaces"].as_array().unwrap();
    assert_eq!(workspaces.len(), 1, "{workspaces:?}");
    assert_eq!(workspaces[0]["workspace_id"], t.ws.as_str());
    assert_eq!(workspaces[0]["retention"]["messages_days"], 30);
    assert_eq!(workspaces[0]["retention"]["sessions_days"], 30);
    assert!(!record.to_string().contains(&other));
    assert!(record["security_measures"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m.as_str().unwrap().contains("hash-chained")));

    // The same, for people.
    let markdown = app
        .client
        .get(format!("{}{RECORD}?format=markdown", app.base))
        .bearer_auth(&t.admin.access)
        .send()
        .await
        .unwrap();
    assert_eq!(markdown.status().as_u16(), 200);
    assert!(markdown.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/markdown"));
    let text = markdown.text().await.unwrap();
    assert!(
        text.starts_with("# Record of processing activities"),
        "{text}"
    );
    assert!(
        text.contains(&format!("| workspace {} | 30 days |", t.ws)),
        "{text}"
    );
    assert!(
        text.contains("| messages | body | chat | author |"),
        "{text}"
    );
    app.get(&format!("{RECORD}?format=pdf"), &officer.access)
        .await
        .expect_error(422, "validation_failed");

    // Members do not read it.
    for who in [&t.ann, &t.bo] {
        app.get(RECORD, &who.access)
            .await
            .expect_error(403, "forbidden");
    }

    // Each reading is audited.
    let events = app.audit_events(&officer.access).await;
    let generated: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "processing_record.generated" && e["outcome"] == "allowed")
        .collect();
    assert_eq!(generated.len(), 2);
}

both_backends!(the_record_lists_the_inventory_and_each_workspaces_retention);
