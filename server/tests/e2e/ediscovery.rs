//! eDiscovery: a compliance officer, in none of the workspace's channels, finds content by
//! custodian, channel, date and keyword (deleted content a hold keeps included), exports it in
//! every format, each read back by an independent parser (Python's `csv`, `zipfile`,
//! `xml.etree` and `email`), and the daily export writes each day once. Members without
//! `ediscovery.read` are refused; every search and export is audited without content.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{TimeDelta, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::chat::{channel, say};
use crate::docs::create_doc;
use crate::harness::{
    both_backends, spawn_app, spawn_app_with, Backend, Session, TestApp, PASSWORD, WAIT,
};

const SEARCH: &str = "/api/v1/compliance/ediscovery/search";
const EXPORTS: &str = "/api/v1/compliance/ediscovery/exports";

/// Text that needs every kind of escaping: Korean, an emoji, quotes, commas, a line break,
/// markup.
const TRICKY: &str = "회의 😀, \"quoted\", comma, <tag> & more\nsecond line";

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// A compliance officer (system role), signed in.
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

async fn join(app: &TestApp, who: &Session, channel: &str) {
    app.post(
        &format!("/api/v1/channels/{channel}/join"),
        Some(&who.access),
        json!({}),
    )
    .await
    .expect(200);
}

async fn search(app: &TestApp, who: &Session, body: Value) -> Value {
    app.post(SEARCH, Some(&who.access), body)
        .await
        .expect(200)
        .clone()
}

fn result_ids(page: &Value) -> Vec<String> {
    page["results"].as_array().unwrap().iter().map(id).collect()
}

/// Runs a Python script over `bytes` (written to a file passed as its argument) and parses
/// what it prints as JSON.
fn python(script: &str, bytes: &[u8]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python could not read the export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A ZIP's entries, read and CRC-checked by Python's `zipfile`.
fn unzip(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let script = "import zipfile, sys, json, base64\n\
                  z = zipfile.ZipFile(sys.argv[1])\n\
                  assert z.testzip() is None\n\
                  print(json.dumps({n: base64.b64encode(z.read(n)).decode() for n in z.namelist()}))\n";
    use base64::Engine;
    python(script, bytes)
        .as_object()
        .unwrap()
        .iter()
        .map(|(n, b)| {
            (
                n.clone(),
                base64::engine::general_purpose::STANDARD
                    .decode(b.as_str().unwrap())
                    .unwrap(),
            )
        })
        .collect()
}

async fn export(
    app: &TestApp,
    who: &Session,
    body: Value,
) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let resp = app
        .client
        .post(format!("{}{EXPORTS}", app.base))
        .bearer_auth(&who.access)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap().to_vec();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    (headers, bytes)
}

async fn searching_narrows_by_custodian_channel_date_and_keyword(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.team().await;
    let officer = officer(&app, &t.admin).await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    join(&app, &t.bo, &general).await;
    let plans = channel(&app, &t.ann, &t.ws, "plans", "private").await;
    let alpha = say(&app, &t.ann, &general, "alpha quarterly numbers").await;
    let beta = say(&app, &t.bo, &general, "beta lunch order").await;
    let gamma = say(&app, &t.ann, &plans, "gamma acquisition plan").await;
    // A hold on Ann's content keeps the message she then deletes.
    app.post(
        &format!("/api/v1/workspaces/{}/legal-holds", t.ws),
        Some(&officer.access),
        json!({"name": "Ann's matter", "custodians": [t.ann.user_id]}),
    )
    .await
    .expect(201);
    app.delete(&format!("/api/v1/messages/{}", id(&alpha)), &t.ann.access)
        .await
        .expect(204);

    let ws = t.ws.as_str();
    let all = search(
        &app,
        &officer,
        json!({"workspace": ws, "kinds": ["messages"]}),
    )
    .await;
    assert_eq!(all["total"], 3, "{all}");
    assert_eq!(result_ids(&all), vec![id(&alpha), id(&beta), id(&gamma)]);
    let held = &all["results"][0];
    assert_eq!(held["deleted"], true, "{held}");
    assert_eq!(held["excerpt"], "alpha quarterly numbers", "{held}");
    assert_eq!(held["author_name"], "Ann");
    assert_eq!(all["results"][2]["channel_name"], "plans");

    let by = |body: Value| {
        let mut b = json!({"workspace": ws, "kinds": ["messages"]});
        b.as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        b
    };
    let bo_only = search(&app, &officer, by(json!({"custodians": [t.bo.user_id]}))).await;
    assert_eq!(result_ids(&bo_only), vec![id(&beta)]);
    let in_plans = search(&app, &officer, by(json!({"channels": [plans]}))).await;
    assert_eq!(result_ids(&in_plans), vec![id(&gamma)]);
    let today = Utc::now().date_naive();
    let tomorrow = (today + TimeDelta::days(1)).to_string();
    let yesterday = (today - TimeDelta::days(1)).to_string();
    let later = search(&app, &officer, by(json!({"from": tomorrow}))).await;
    assert_eq!(later["total"], 0, "{later}");
    let earlier = search(&app, &officer, by(json!({"to": yesterday}))).await;
    assert_eq!(earlier["total"], 0, "{earlier}");
    let on_the_day = search(
        &app,
        &officer,
        by(json!({"from": today.to_string(), "to": today.to_string()})),
    )
    .await;
    assert_eq!(on_the_day["total"], 3, "{on_the_day}");

    // Keywords go through the index, over channels the officer is not in; the deleted
    // message the hold keeps is matched too.
    let found = search(&app, &officer, by(json!({"query": "acquisition"}))).await;
    assert_eq!(result_ids(&found), vec![id(&gamma)], "{found}");
    let kept = search(&app, &officer, by(json!({"query": "quarterly"}))).await;
    assert_eq!(result_ids(&kept), vec![id(&alpha)], "{kept}");
    assert_eq!(kept["results"][0]["deleted"], true);
    let narrowed = search(
        &app,
        &officer,
        by(json!({"query": "lunch", "custodians": [t.ann.user_id]})),
    )
    .await;
    assert_eq!(narrowed["total"], 0, "{narrowed}");

    // Pages follow one another without repeats.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut body = by(json!({"limit": 1}));
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let page = search(&app, &officer, body).await;
        seen.extend(result_ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(seen.len() <= 3, "{seen:?}");
    }
    assert_eq!(seen, vec![id(&alpha), id(&beta), id(&gamma)]);

    // Members, the workspace's own people included, may not.
    for who in [&t.cy, &t.ann] {
        app.post(SEARCH, Some(&who.access), json!({"workspace": ws}))
            .await
            .expect_error(403, "forbidden");
        app.post(
            EXPORTS,
            Some(&who.access),
            json!({"workspace": ws, "format": "jsonl"}),
        )
        .await
        .expect_error(403, "forbidden");
    }

    // Mistakes are named.
    for (body, code) in [
        (
            json!({"workspace": ws, "from": "last tuesday"}),
            "invalid_criteria",
        ),
        (
            json!({"workspace": ws, "from": "2024-02-30"}),
            "invalid_criteria",
        ),
        (
            json!({"workspace": ws, "from": "2024-05-02", "to": "2024-05-01"}),
            "invalid_criteria",
        ),
        (
            json!({"workspace": ws, "kinds": ["emails"]}),
            "invalid_criteria",
        ),
        (json!({"workspace": ws, "limit": 0}), "invalid_criteria"),
        (
            json!({"workspace": ws, "cursor": "nonsense"}),
            "invalid_criteria",
        ),
        (
            json!({"workspace": ws, "channels": [uuid::Uuid::now_v7()]}),
            "invalid_criteria",
        ),
        (
            json!({"workspace": ws, "query": "in:#general plan"}),
            "invalid_criteria",
        ),
    ] {
        app.post(SEARCH, Some(&officer.access), body.clone())
            .await
            .expect_error(422, code);
    }
    app.post(
        EXPORTS,
        Some(&officer.access),
        json!({"workspace": ws, "format": "pdf"}),
    )
    .await
    .expect_error(422, "unknown_format");
    app.post(
        SEARCH,
        Some(&officer.access),
        json!({"workspace": uuid::Uuid::now_v7()}),
    )
    .await
    .expect_error(404, "not_found");

    // Every search is audited with its criteria and counts, never content or keywords.
    let events = app.audit_events(&officer.access).await;
    let searched: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "ediscovery.searched")
        .collect();
    assert!(searched.len() >= 10, "{}", searched.len());
    let first = searched[0];
    assert_eq!(first["actor_id"], officer.user_id.as_str());
    assert_eq!(first["details"]["results"], 3, "{first}");
    assert_eq!(first["details"]["criteria"]["workspace_id"], ws);
    let text = serde_json::to_string(&searched).unwrap();
    for needle in ["alpha", "quarterly", "acquisition", "lunch"] {
        assert!(!text.contains(needle), "{needle} in the audit log: {text}");
    }
    assert!(events
        .iter()
        .any(|e| e["outcome"] == "denied" && e["actor_id"] == t.cy.user_id.as_str()));
}

async fn exports_read_back_in_every_format(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.team().await;
    let officer = officer(&app, &t.admin).await;
    app.create_user(&t.admin, "kim@example.org", "김민지 😀")
        .await;
    let kim = app.login("kim@example.org", PASSWORD).await;
    app.add_member(&t.admin, &t.ws, &kim, "member").await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    join(&app, &kim, &general).await;
    let tricky = say(&app, &t.ann, &general, TRICKY).await;
    let hello = say(&app, &kim, &general, "안녕하세요 from Kim").await;
    let file_bytes = b"file bytes, with \"quotes\"\n".to_vec();
    let up = app
        .upload(&t.ann, &general, "report Q1.txt", &file_bytes)
        .await
        .expect(201)
        .clone();
    let file = up["id"]
        .as_str()
        .or(up["file"]["id"].as_str())
        .unwrap()
        .to_owned();
    let doc = create_doc(&app, &t.ann, &t.ws, "Plan").await;
    let version = app
        .post(
            &format!("/api/v1/documents/{doc}/versions"),
            Some(&t.ann.access),
            json!({"name": "Draft 1"}),
        )
        .await
        .expect(201)
        .clone();
    let ws = t.ws.as_str();
    let body = |format: &str| json!({"workspace": ws, "format": format});

    // JSON lines: each line one item.
    let (headers, bytes) = export(&app, &officer, body("jsonl")).await;
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"ediscovery-")
            && disposition.ends_with(".jsonl\""),
        "{disposition}"
    );
    let lines: Vec<Value> = String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: BTreeSet<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["message", "file", "document_version"])
    );
    // Sharing the file posted a message of its own.
    let message_count = lines.iter().filter(|l| l["kind"] == "message").count();
    assert!(message_count >= 2, "{lines:?}");
    let line = lines.iter().find(|l| l["id"] == tricky["id"]).unwrap();
    assert_eq!(line["text"], TRICKY);
    assert_eq!(line["author_email"], "ann@example.org");
    let v = lines
        .iter()
        .find(|l| l["kind"] == "document_version")
        .unwrap();
    assert_eq!(v["id"], version["id"], "{v}");
    assert_eq!(v["name"], "Draft 1");

    // CSV, as Python's csv module reads it.
    let (headers, bytes) = export(&app, &officer, body("csv")).await;
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let rows = python(
        "import csv, sys, json\n\
         print(json.dumps(list(csv.DictReader(open(sys.argv[1], newline='', encoding='utf-8')))))\n",
        &bytes,
    );
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == tricky["id"])
        .unwrap();
    assert_eq!(row["text"], TRICKY, "{row}");
    assert_eq!(row["channel_name"], "general");
    assert!(rows
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["author_name"] == "김민지 😀"));

    // ZIP: every entry's hash in the manifest.
    let (_, bytes) = export(&app, &officer, body("zip")).await;
    let entries = unzip(&bytes);
    let manifest: Value = serde_json::from_slice(&entries["manifest.json"]).unwrap();
    let listed = manifest["entries"].as_array().unwrap();
    assert_eq!(listed.len(), entries.len() - 1, "{manifest}");
    for e in listed {
        let path = e["path"].as_str().unwrap();
        let data = &entries[path];
        assert_eq!(e["sha256"], hex::encode(Sha256::digest(data)), "{path}");
        assert_eq!(e["bytes"], data.len(), "{path}");
    }
    assert_eq!(entries[&format!("files/{file}/report Q1.txt")], file_bytes);
    assert!(entries.contains_key(&format!("documents/{doc}/{}.txt", id(&version))));
    let messages = String::from_utf8(entries["messages.jsonl"].clone()).unwrap();
    assert_eq!(messages.lines().count(), message_count);
    assert!(messages.contains(&serde_json::to_string(TRICKY).unwrap()));
    assert_eq!(manifest["counts"]["messages"], message_count);

    // Actiance XML, as ElementTree parses it.
    let (_, bytes) = export(&app, &officer, body("actiance")).await;
    let dump = python(
        "import sys, json, xml.etree.ElementTree as ET\n\
         root = ET.parse(sys.argv[1]).getroot()\n\
         out = {'root': root.tag, 'conversations': []}\n\
         for c in root.findall('Conversation'):\n\
         \x20   out['conversations'].append({\n\
         \x20       'room': c.findtext('RoomID'),\n\
         \x20       'entered': [p.findtext('LoginName') for p in c.findall('ParticipantEntered')],\n\
         \x20       'left': [p.findtext('LoginName') for p in c.findall('ParticipantLeft')],\n\
         \x20       'messages': [{'id': m.findtext('MessageId'), 'login': m.findtext('LoginName'), 'content': m.findtext('Content')} for m in c.findall('Message')],\n\
         \x20       'files': [f.findtext('UserFileName') for f in c.findall('FileTransferEnded')],\n\
         \x20       'end': c.findtext('EndTimeUTC')})\n\
         print(json.dumps(out))\n",
        &bytes,
    );
    assert_eq!(dump["root"], "FileDump");
    let conversations = dump["conversations"].as_array().unwrap();
    assert_eq!(conversations.len(), 1, "{dump}");
    let c = &conversations[0];
    assert!(c["room"].as_str().unwrap().contains(&general), "{c}");
    assert_eq!(c["entered"], json!(["ann@example.org", "kim@example.org"]));
    assert_eq!(c["left"], c["entered"]);
    let said: Vec<&Value> = c["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["id"] == tricky["id"] || m["id"] == hello["id"])
        .collect();
    assert_eq!(
        said,
        vec![
            &json!({"id": tricky["id"], "login": "ann@example.org", "content": TRICKY}),
            &json!({"id": hello["id"], "login": "kim@example.org", "content": "안녕하세요 from Kim"}),
        ]
    );
    assert_eq!(c["messages"].as_array().unwrap().len(), message_count);
    assert_eq!(c["files"], json!(["report Q1.txt"]));

    // Global Relay: one message for the conversation's day, its headers 7-bit and encoded.
    let (_, bytes) = export(&app, &officer, body("globalrelay")).await;
    let emls = unzip(&bytes);
    assert_eq!(emls.len(), 1, "{:?}", emls.keys());
    let (name, eml) = emls.iter().next().unwrap();
    assert!(name.ends_with(&format!("-{general}.eml")), "{name}");
    let head_end = eml.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(
        eml[..head_end].is_ascii(),
        "{}",
        String::from_utf8_lossy(eml)
    );
    let mail = python(
        "import sys, json, email, email.policy\n\
         m = email.message_from_bytes(open(sys.argv[1], 'rb').read(), policy=email.policy.default)\n\
         print(json.dumps({'from': str(m['From']), 'to': [str(a) for a in m['To'].addresses],\n\
         \x20   'subject': str(m['Subject']), 'date': str(m['Date']), 'body': m.get_content(),\n\
         \x20   'defects': len(m.defects)}))\n",
        eml,
    );
    assert_eq!(mail["from"], "Ann <ann@example.org>", "{mail}");
    assert_eq!(
        mail["to"],
        json!(["Ann <ann@example.org>", "김민지 😀 <kim@example.org>"]),
        "{mail}"
    );
    assert!(
        mail["subject"].as_str().unwrap().contains("general"),
        "{mail}"
    );
    assert_eq!(mail["defects"], 0);
    let text = mail["body"].as_str().unwrap().replace("\r\n", "\n");
    for line in TRICKY
        .lines()
        .chain(["안녕하세요 from Kim", "report Q1.txt"])
    {
        assert!(text.contains(line), "{line} not in {text}");
    }

    // Each export is audited with its format and counts, never its content.
    let events = app.audit_events(&officer.access).await;
    let exported: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "ediscovery.exported")
        .collect();
    let formats: Vec<&str> = exported
        .iter()
        .map(|e| e["details"]["format"].as_str().unwrap())
        .collect();
    assert_eq!(
        formats,
        vec!["jsonl", "csv", "zip", "actiance", "globalrelay"]
    );
    assert_eq!(exported[0]["details"]["messages"], message_count);
    assert_eq!(exported[0]["details"]["files"], 1);
    assert_eq!(exported[0]["details"]["document_versions"], 1);
    let audited = serde_json::to_string(&exported).unwrap();
    assert!(
        !audited.contains("quoted") && !audited.contains("Kim"),
        "{audited}"
    );
}

async fn the_daily_export_writes_each_day_once(backend: Backend) {
    let out = tempfile::tempdir().unwrap();
    let directory = out.path().to_path_buf();
    let app = spawn_app_with(backend, |c| {
        let d = &mut c.ediscovery.daily_export;
        d.enabled = true;
        d.directory = Some(directory.clone());
        d.hour = 0;
        d.check_seconds = 1;
        d.format = "jsonl".into();
    })
    .await;
    let t = app.team().await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    say(&app, &t.ann, &general, "delta daily report").await;
    let today = Utc::now().date_naive();
    let yesterday = today - TimeDelta::days(1);
    let file = |day: chrono::NaiveDate| directory.join(format!("ediscovery-{}-{day}.jsonl", t.ws));

    // The server's task exports yesterday (nothing was written then) once its hour has come.
    let deadline = std::time::Instant::now() + WAIT;
    while !file(yesterday).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no daily export appeared"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(std::fs::read(file(yesterday)).unwrap(), b"");

    // The command line exports a day on demand, once.
    let mut app = app;
    app.stop().await;
    let daily = |day: chrono::NaiveDate| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
            .args(app.cli_args())
            .args(["ediscovery", "daily", "--day", &day.to_string()])
            .env("CONCORD_LOG__FILTER", "warn")
            .env("CONCORD_EDISCOVERY__DAILY_EXPORT__DIRECTORY", &directory)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let first = daily(today);
    assert_eq!(first["written"].as_array().unwrap().len(), 1, "{first}");
    assert_eq!(first["written"][0]["workspace_id"], t.ws.as_str());
    assert_eq!(first["written"][0]["items"], 1);
    let written = std::fs::read_to_string(file(today)).unwrap();
    let line: Value = serde_json::from_str(written.trim()).unwrap();
    assert_eq!(line["text"], "delta daily report");
    let again = daily(today);
    assert_eq!(again["written"], json!([]), "{again}");
    assert_eq!(again["skipped"], json!([t.ws]));
    let before = daily(yesterday);
    assert_eq!(before["written"], json!([]), "{before}");
    let mut names: Vec<String> = std::fs::read_dir(&directory)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            format!("ediscovery-{}-{yesterday}.jsonl", t.ws),
            format!("ediscovery-{}-{today}.jsonl", t.ws),
        ]
    );

    // Both are audited as scheduled exports by the system.
    let app = app.restart().await;
    let admin = app.login("admin@example.org", PASSWORD).await;
    let scheduled: Vec<Value> = app
        .audit_events(&admin.access)
        .await
        .into_iter()
        .filter(|e| {
            e["action"] == "ediscovery.exported"
                && e["details"]["scheduled"] == true
                && e["details"]["criteria"]["workspace_id"] == t.ws.as_str()
        })
        .collect();
    assert_eq!(scheduled.len(), 2, "{scheduled:?}");
}

both_backends!(
    searching_narrows_by_custodian_channel_date_and_keyword,
    exports_read_back_in_every_format,
    the_daily_export_writes_each_day_once,
);
