//! Data-subject access (GDPR Art. 15 and 20): a person downloads everything Concord holds
//! about them as a ZIP archive, read here by Python's `zipfile` (as any unzip tool would),
//! complete against the data inventory and holding nobody else's data.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::chat::{channel, say};
use crate::harness::{both_backends, spawn_app, Backend, Session, TestApp, PASSWORD};

/// The archive's entries by name, read and checked (CRCs included) by Python's `zipfile`.
pub(crate) fn unzip(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.zip");
    std::fs::write(&path, bytes).unwrap();
    let script = "import zipfile, sys, json, base64\n\
                  z = zipfile.ZipFile(sys.argv[1])\n\
                  bad = z.testzip()\n\
                  assert bad is None, bad\n\
                  print(json.dumps({n: base64.b64encode(z.read(n)).decode() for n in z.namelist()}))\n";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "zipfile could not read the export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).unwrap();
    use base64::Engine;
    names
        .into_iter()
        .map(|(n, b)| {
            (
                n,
                base64::engine::general_purpose::STANDARD.decode(b).unwrap(),
            )
        })
        .collect()
}

async fn export(app: &TestApp, who: &Session, subject: &str) -> (u16, Vec<u8>, String) {
    export_for(app, who, subject, "").await
}

async fn export_for(
    app: &TestApp,
    who: &Session,
    subject: &str,
    query: &str,
) -> (u16, Vec<u8>, String) {
    let resp = app
        .client
        .get(format!(
            "{}/api/v1/users/{subject}/data-export{query}",
            app.base
        ))
        .bearer_auth(&who.access)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, resp.bytes().await.unwrap().to_vec(), kind)
}

fn json_of(entries: &BTreeMap<String, Vec<u8>>, name: &str) -> Value {
    serde_json::from_slice(entries.get(name).unwrap_or_else(|| panic!("no {name}"))).unwrap()
}

async fn a_person_exports_everything_the_inventory_lists_about_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.team().await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    app.post(
        &format!("/api/v1/channels/{general}/join"),
        Some(&t.bo.access),
        json!({}),
    )
    .await
    .expect(200);
    let m = say(&app, &t.ann, &general, "okapi original words").await;
    app.call(
        Method::PATCH,
        &format!("/api/v1/messages/{}", m["id"].as_str().unwrap()),
        Some(&t.ann.access),
        Some(json!({"text": "okapi edited words"})),
    )
    .await
    .expect(200);
    say(&app, &t.bo, &general, "gnu words of someone else").await;
    let contents = b"okapi notes, in a file".to_vec();
    let file = app
        .upload(&t.ann, &general, "notes.txt", &contents)
        .await
        .expect(201)
        .clone();
    let file_id = file["file"]["id"]
        .as_str()
        .or(file["id"].as_str())
        .unwrap()
        .to_owned();

    let (status, bytes, kind) = export(&app, &t.ann, &t.ann.user_id).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(kind, "application/zip");
    let entries = unzip(&bytes);
    let manifest = json_of(&entries, "manifest.json");
    assert_eq!(manifest["subject_id"], t.ann.user_id.as_str());

    // Every table the inventory says holds a person's data is walked, and only those.
    let listed: Vec<String> = manifest["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["table"].as_str().unwrap().to_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let expected: Vec<String> = concord::subjects::exported_tables(&concord::startup::inventory())
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(listed, expected);
    for table in ["users", "messages", "message_versions", "files", "sessions"] {
        assert!(expected.iter().any(|t| t == table), "{table} not walked");
    }

    let messages = json_of(&entries, "data/messages.json");
    assert!(
        messages
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == m["id"] && r["body"] == "okapi edited words"),
        "{messages}"
    );
    let versions = json_of(&entries, "data/message_versions.json");
    assert!(
        versions.to_string().contains("okapi original words"),
        "{versions}"
    );
    let users = json_of(&entries, "data/users.json");
    assert_eq!(users.as_array().unwrap().len(), 1, "{users}");
    assert_eq!(users[0]["id"], t.ann.user_id.as_str());
    assert!(users.to_string().contains("ann@example.org"), "{users}");
    let sessions = json_of(&entries, "data/sessions.json");
    assert!(!sessions.as_array().unwrap().is_empty(), "{sessions}");

    // The file, whole, with its hash in the manifest.
    let path = format!("files/{file_id}/notes.txt");
    assert_eq!(entries.get(&path), Some(&contents), "{:?}", entries.keys());
    let listed_file = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == file_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        listed_file["sha256"],
        hex::encode(Sha256::digest(&contents))
    );

    // Audit entries about Ann, decrypted.
    let audit = json_of(&entries, "audit.json");
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "message.edited" && e["actor_id"] == t.ann.user_id.as_str()),
        "{audit}"
    );

    // Nobody else's data, and no secrets: no one's password hash, no keys.
    let everything: Vec<u8> = entries.values().flatten().copied().collect();
    let text = String::from_utf8_lossy(&everything);
    assert!(
        !text.contains("gnu words"),
        "another person's message is in the export"
    );
    assert!(!text.contains("bo@example.org"));
    assert!(
        !text.contains("$argon2"),
        "a password hash is in the export"
    );
    let omitted = manifest["omitted_columns"].to_string();
    assert!(omitted.contains("password_hash"), "{omitted}");
    assert!(omitted.contains("content_key"), "{omitted}");
    assert!(omitted.contains("sso_id_token"), "{omitted}");

    // Someone else may not export Ann; a compliance officer may; each export is audited.
    let (status, _, _) = export(&app, &t.bo, &t.ann.user_id).await;
    assert_eq!(status, 404);
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
    // Someone else's data needs a reason, which the audit log keeps.
    let (status, body, _) = export(&app, &officer, &t.ann.user_id).await;
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("reason_required"));
    let (status, bytes, _) = export_for(
        &app,
        &officer,
        &t.ann.user_id,
        "?reason=DSR-42%20from%20Ann",
    )
    .await;
    assert_eq!(status, 200);
    assert!(unzip(&bytes).contains_key("data/messages.json"));
    let (status, _, _) = export_for(
        &app,
        &officer,
        &uuid::Uuid::now_v7().to_string(),
        "?reason=x",
    )
    .await;
    assert_eq!(status, 404);
    // Ann's next export shows the officer's export of her data, without the officer's
    // address, session or details.
    let (_, bytes, _) = export(&app, &t.ann, &t.ann.user_id).await;
    let audit = json_of(&unzip(&bytes), "audit.json");
    let by_officer = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["action"] == "data_subject.exported" && e["actor_id"] == officer.user_id.as_str()
        })
        .unwrap_or_else(|| panic!("{audit}"))
        .clone();
    assert_eq!(by_officer["ip"], Value::Null, "{by_officer}");
    assert_eq!(by_officer["session_id"], Value::Null, "{by_officer}");
    assert_eq!(by_officer["details"], Value::Null, "{by_officer}");
    let exports = app
        .get(
            "/api/v1/audit/events?action=data_subject.exported&limit=100",
            &t.admin.access,
        )
        .await
        .expect(200)["events"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(exports.len(), 3, "{exports:?}");
    assert!(exports
        .iter()
        .any(|e| e["details"]["reason"] == "DSR-42 from Ann"));
    assert!(exports
        .iter()
        .all(|e| e["target_id"] == t.ann.user_id.as_str()));
}

both_backends!(a_person_exports_everything_the_inventory_lists_about_them);
