//! The web client in a real browser: each test spawns the server serving the built client
//! (`client-web/dist`, built by the test command), seeds a small team (or, for `setup`, nothing
//! but the first-run setup link), and runs one
//! `tests/browser/*.spec.mjs` script, which drives Debian's Chromium through `playwright-core`.
//! Screenshots of the main screens land in `target/screenshots/`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::harness::{spawn_app_with, Backend, Session, TestApp, PASSWORD};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Team {
    admin: Session,
    alice: Session,
    bob: Session,
    ws: String,
    general: String,
}

async fn team(app: &TestApp) -> Team {
    let admin = app.bootstrap_admin().await;
    app.create_user(&admin, "alice@example.org", "Alice Archer")
        .await;
    app.create_user(&admin, "bob@example.org", "Bob Baker")
        .await;
    let alice = app.login("alice@example.org", PASSWORD).await;
    let bob = app.login("bob@example.org", PASSWORD).await;
    let ws = app.create_workspace(&admin, "Northwind Clinic").await;
    app.add_member(&admin, &ws, &alice, "member").await;
    app.add_member(&admin, &ws, &bob, "member").await;
    let general = app
        .post(
            &format!("/api/v1/workspaces/{ws}/channels"),
            Some(&admin.access),
            json!({"name": "general", "visibility": "public", "topic": "Everything and nothing"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .expect("channel id")
        .to_owned();
    for who in [&alice, &bob] {
        app.post(
            &format!("/api/v1/channels/{general}/join"),
            Some(&who.access),
            json!({}),
        )
        .await
        .expect(200);
    }
    Team {
        admin,
        alice,
        bob,
        ws,
        general,
    }
}

/// Seeds the team every spec but `setup` starts from; returns the fixture the spec reads.
async fn seeded(app: &TestApp) -> serde_json::Value {
    let t = team(app).await;
    let user = |s: &Session, email: &str, name: &str| json!({"id": s.user_id, "email": email, "password": PASSWORD, "display_name": name});
    json!({
        "url": app.base,
        "workspace_id": t.ws,
        "channel_id": t.general,
        "users": {
            "admin": user(&t.admin, "admin@example.org", "Ada Admin"),
            "alice": user(&t.alice, "alice@example.org", "Alice Archer"),
            "bob": user(&t.bob, "bob@example.org", "Bob Baker"),
        },
    })
}

/// One browser at a time: Chromium with two contexts is heavy next to the rest of the suite.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `tests/browser/{name}.spec.mjs` against a fresh server; panics with its output if it fails.
async fn browser(name: &str) {
    let _one = BROWSER.lock().await;
    let dist = repo().join("client-web/dist");
    assert!(
        dist.join("index.html").is_file(),
        "the web client is not built: run `npm ci && npm run build` in client-web (the test command does)"
    );
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.http.web_root = Some(dist);
        // The bots spec answers slash commands from this machine; the operations spec's
        // process calls a service there.
        c.bots.event_allowed_networks = vec!["127.0.0.1/32".parse().expect("a network")];
        c.workflows.allowed_networks = vec!["127.0.0.1/32".parse().expect("a network")];
    })
    .await;
    let fixture = if name == "setup" {
        // The first run: no accounts at all, only the setup link.
        json!({"url": app.base, "setup_token": app.setup_token, "users": {}})
    } else {
        seeded(&app).await
    };
    let script = repo().join(format!("tests/browser/{name}.spec.mjs"));
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(&script)
        .current_dir(repo().join("tests/browser"))
        .env("CONCORD_URL", &app.base)
        .env("CONCORD_FIXTURE", fixture.to_string())
        .env("CONCORD_SCREENSHOTS", screenshots())
        .kill_on_drop(true);
    let limit = Duration::from_secs(240);
    let output = tokio::time::timeout(limit, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{name}.spec.mjs did not finish in {limit:?}"))
        .unwrap_or_else(|e| {
            panic!(
                "node runs {} (run npm ci in tests/browser): {e}",
                script.display()
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name}.spec.mjs failed:\n{stdout}\n{stderr}"
    );
    eprintln!("{stdout}");
}

/// `target/screenshots` (or under `CARGO_TARGET_DIR`).
fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    target.join("screenshots")
}

macro_rules! specs {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            browser(stringify!($name)).await;
        }
    )*};
}

specs!(setup, signin, chat, docs, search, tasks, bots, compliance, admin, designer, operations);

/// The server's side of the client, without a browser: routes fall back to `index.html` under
/// a strict policy, hashed assets are cached, and API misses stay JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_serves_the_client_and_keeps_api_errors_json() {
    let dist = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dist.path().join("index.html"),
        "<!doctype html><title>Concord</title>",
    )
    .unwrap();
    std::fs::create_dir(dist.path().join("assets")).unwrap();
    std::fs::write(dist.path().join("assets/index-abc123.js"), "console.log(1)").unwrap();
    let root = dist.path().to_owned();
    let app = spawn_app_with(Backend::Sqlite, |c| c.http.web_root = Some(root)).await;
    let get = |path: &str| app.client.get(format!("{}{path}", app.base)).send();

    for path in ["/", "/login", "/w/123/c/456/m/789", "/setup?token=abc"] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("object-src 'none'"),
            "{csp}"
        );
        assert_eq!(r.headers()["cache-control"], "no-cache");
        assert!(
            r.text().await.unwrap().contains("<title>Concord</title>"),
            "{path}"
        );
    }
    let asset = get("/assets/index-abc123.js").await.unwrap();
    assert_eq!(asset.status().as_u16(), 200);
    assert!(asset.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert!(asset.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    // A missing asset is a 404, not the page (a stale tab must not parse HTML as script).
    let missing = get("/assets/gone-000.js").await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    // Paths outside the folder are never served.
    let escape = get("/assets/..%2f..%2fetc%2fpasswd").await.unwrap();
    assert_eq!(escape.status().as_u16(), 404);
    // API misses and non-GET methods keep the JSON error shape.
    let api = app.get("/api/v1/nothing-here", "").await;
    api.expect_error(404, "route_not_found");
    let post = app.post("/w/123", None, json!({})).await;
    post.expect_error(404, "route_not_found");
}

/// A process with Concord's settings the shipped examples leave out (a decision, several
/// approvers at once, a routing block, a message correlated by key, a call with its result),
/// written without a diagram: Concord lays it out when it exports it.
const EXTRAS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:concord="https://concord.dev/bpmn" id="extras_definitions" targetNamespace="https://concord.dev/examples">
  <bpmn:message id="Msg_Pay" name="payment" />
  <bpmn:process id="settings_tour" name="Every setting" isExecutable="true">
    <bpmn:startEvent id="asked" />
    <bpmn:businessRuleTask id="route" name="Who approves" concord:decisionRef="expense_approval" concord:resultVariable="approval" />
    <bpmn:userTask id="votes" name="Vote" concord:assignee="${voter}">
      <bpmn:multiInstanceLoopCharacteristics concord:collection="voters" concord:elementVariable="voter" concord:outputCollection="ballots">
        <bpmn:completionCondition xsi:type="bpmn:tFormalExpression">nrOfCompletedInstances &gt;= 2</bpmn:completionCondition>
      </bpmn:multiInstanceLoopCharacteristics>
    </bpmn:userTask>
    <bpmn:userTask id="triage" name="Triage" concord:candidateRole="admin" concord:due="PT4H">
      <bpmn:extensionElements>
        <concord:routing>strategy: round_robin
presence_aware: true</concord:routing>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:intermediateCatchEvent id="paid" name="Paid" concord:correlationKey="order_id">
      <bpmn:messageEventDefinition messageRef="Msg_Pay" />
    </bpmn:intermediateCatchEvent>
    <bpmn:callActivity id="file_it" name="File the document" calledElement="document_approval" concord:resultVariable="filed" />
    <bpmn:endEvent id="done" />
    <bpmn:sequenceFlow id="f1" sourceRef="asked" targetRef="route" />
    <bpmn:sequenceFlow id="f2" sourceRef="route" targetRef="votes" />
    <bpmn:sequenceFlow id="f3" sourceRef="votes" targetRef="triage" />
    <bpmn:sequenceFlow id="f4" sourceRef="triage" targetRef="paid" />
    <bpmn:sequenceFlow id="f5" sourceRef="paid" targetRef="file_it" />
    <bpmn:sequenceFlow id="f6" sourceRef="file_it" targetRef="done" />
  </bpmn:process>
</bpmn:definitions>
"#;

/// A model exported from Concord opens in Camunda Modeler (bpmn-js with Camunda 7's or
/// Camunda 8's moddle extension, in Chromium, `tests/browser/camunda-roundtrip.mjs`) without a
/// warning, is saved there with the modeler's stamp, deploys back, and Concord reads it as it
/// was: the new version's export is the same model (elements, flows, every Concord setting)
/// drawn in the same places. The shipped examples (drawn in bpmn-js), a model written without
/// a diagram and a YAML model all go through, and so do the shipped decision tables (dmn-js,
/// Camunda Modeler's DMN editor): the same tables, rule for rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_models_open_in_camunda_modeler_and_come_back_unchanged() {
    let _one = BROWSER.lock().await;
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let t = team(&app).await;
    let api = |path: &str| format!("/api/v1/workspaces/{}/{path}", t.ws);
    let examples = repo().join("bots/workflows/examples");
    for form in ["approval", "ticket_response"] {
        let body: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(examples.join(format!("forms/{form}.json"))).unwrap(),
        )
        .unwrap();
        app.post(&api("workflow-forms"), Some(&t.admin.access), body)
            .await
            .expect(201);
    }
    // The shipped decision tables (drawn in dmn-js), the first of them named by a process.
    let mut decisions = Vec::new();
    for file in ["expense-approval", "leave-days", "ticket-priority"] {
        let dmn = std::fs::read_to_string(examples.join(format!("decisions/{file}.dmn"))).unwrap();
        let made = app
            .post(
                &api("workflow-decisions"),
                Some(&t.admin.access),
                json!({ "source": dmn }),
            )
            .await;
        let made = made.expect(201);
        decisions.push(made["decisions"][0]["key"].as_str().unwrap().to_owned());
    }
    let mut sources: Vec<String> = [
        "document-approval",
        "employee-onboarding",
        "purchase-order",
        "support-ticket",
    ]
    .iter()
    .map(|f| std::fs::read_to_string(examples.join(format!("{f}.bpmn"))).unwrap())
    .collect();
    sources.push(EXTRAS.to_owned());
    sources.push(
        "process: yaml_claim\nname: A claim written in YAML\nsteps:\n  - start: s\n  - rule_task: route\n    decision: expense_approval\n    result: approval\n  - exclusive: auto\n    branches:\n      - when: approval.auto_approve == true\n        goto: paid\n    default: review\n  - end: paid\n  - user_task: review\n    person: ${owner}\n    form: approval\n  - end: reviewed\n"
            .to_owned(),
    );
    let mut processes = Vec::new();
    for source in &sources {
        let deployed = app
            .post(
                &api("workflows"),
                Some(&t.admin.access),
                json!({ "source": source }),
            )
            .await;
        processes.push(
            deployed.expect(201)["process_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let export_path = |path: String| {
        let url = format!("{}{}", app.base, api(&path));
        let request = app.client.get(url).bearer_auth(&t.admin.access);
        async move {
            let r = request.send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200, "{path} exports");
            r.text().await.unwrap()
        }
    };
    let export = |process: String, version: i64| {
        export_path(format!("workflows/{process}/bpmn?version={version}"))
    };
    let exported = tempfile::tempdir().unwrap();
    let mut first_tables = std::collections::BTreeMap::new();
    for key in &decisions {
        let xml = export_path(format!("workflow-decisions/{key}/source?version=1")).await;
        std::fs::write(exported.path().join(format!("{key}.dmn")), &xml).unwrap();
        first_tables.insert(key.clone(), xml);
    }
    let mut first = std::collections::BTreeMap::new();
    for process in &processes {
        let xml = export(process.clone(), 1).await;
        std::fs::write(exported.path().join(format!("{process}.bpmn")), &xml).unwrap();
        first.insert(process.clone(), xml);
    }

    for (flavour, version) in [("camunda7", 2), ("camunda8", 3)] {
        let saved = tempfile::tempdir().unwrap();
        let output = tokio::process::Command::new("node")
            .arg(repo().join("tests/browser/camunda-roundtrip.mjs"))
            .arg(flavour)
            .arg(exported.path())
            .arg(saved.path())
            .current_dir(repo().join("tests/browser"))
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(120), output)
            .await
            .expect("the modeler finished")
            .expect("node runs (run npm ci in tests/browser)");
        assert!(
            output.status.success(),
            "{flavour}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        for key in &decisions {
            let file = format!("{key}.dmn");
            let opened = &report[&file];
            assert_eq!(
                opened["warnings"],
                json!([]),
                "{flavour} opens {file}: {opened}"
            );
            assert!(
                opened["shapes"].as_u64().unwrap() >= 2,
                "{flavour} shows {file}: {opened}"
            );
            let xml = std::fs::read_to_string(saved.path().join(&file)).unwrap();
            assert!(
                xml.contains(r#"exporter="Camunda Modeler""#),
                "{flavour} saved {file}"
            );
            let deployed = app
                .post(
                    &api("workflow-decisions"),
                    Some(&t.admin.access),
                    json!({ "source": xml }),
                )
                .await;
            assert_eq!(
                deployed.expect(201)["decisions"][0]["version"],
                version,
                "{flavour}: {file}"
            );
            let back =
                export_path(format!("workflow-decisions/{key}/source?version={version}")).await;
            let tables = |s: &str| {
                concord_workflow::decision::dmn::parse(s).unwrap_or_else(|p| panic!("{p:?}"))
            };
            assert_eq!(
                tables(&back),
                tables(&first_tables[key]),
                "{flavour}: {file} comes back as the same tables"
            );
        }
        for process in &processes {
            let file = format!("{process}.bpmn");
            let opened = &report[&file];
            assert!(
                opened.get("error").is_none(),
                "{flavour} opens {file}: {opened}\n{}",
                first[process]
            );
            assert_eq!(
                opened["warnings"],
                json!([]),
                "{flavour} opens {file} without a warning"
            );
            assert!(
                opened["shapes"].as_u64().unwrap() >= 3,
                "{flavour} draws {file}: {opened}"
            );
            let xml = std::fs::read_to_string(saved.path().join(&file)).unwrap();
            assert!(
                xml.contains(r#"exporter="Camunda Modeler""#),
                "{flavour} saved {file}"
            );
            let settings = |s: &str| s.matches("concord:").count();
            assert_eq!(
                settings(&xml),
                settings(&first[process]),
                "{flavour} keeps every Concord setting of {file}"
            );
            let deployed = app
                .post(
                    &api("workflows"),
                    Some(&t.admin.access),
                    json!({ "source": xml }),
                )
                .await;
            assert_eq!(
                deployed.expect(201)["version"],
                version,
                "{flavour}: {file}"
            );
            // What Concord reads back is what it exported: the same model (elements, flows,
            // settings) drawn in the same places. Only the file's stamp differs.
            let back = export(process.clone(), version).await;
            assert_eq!(
                model(&back),
                model(&first[process]),
                "{flavour}: {file} comes back as the same model"
            );
            assert_eq!(
                layout(&back),
                layout(&first[process]),
                "{flavour}: {file} comes back drawn the same"
            );
            assert!(!layout(&back).is_empty(), "{file} has its diagram");
        }
    }
}

/// A BPMN file's process model as Concord reads it, without its source lines and its raw
/// diagram (compared by [`layout`]).
fn model(xml: &str) -> concord_workflow::model::ProcessModel {
    let mut m = concord_workflow::bpmn::parse(xml)
        .unwrap_or_else(|p| panic!("{p:?}"))
        .without_lines();
    m.diagram = None;
    m
}

/// A BPMN file's diagram: each shape's bounds and each edge's waypoints (labels left out:
/// a modeler places those itself), by the element they draw.
fn layout(xml: &str) -> std::collections::BTreeMap<String, Vec<i64>> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        let len = tag[start..].find('"')?;
        Some(tag[start..start + len].to_owned())
    };
    let mut out = std::collections::BTreeMap::new();
    let (mut element, mut in_label) = (None::<String>, false);
    for tag in xml.split('<').skip(1) {
        if tag.starts_with("bpmndi:BPMNShape") || tag.starts_with("bpmndi:BPMNEdge") {
            element = attr(tag, "bpmnElement");
        } else if tag.starts_with("bpmndi:BPMNLabel") {
            in_label = !tag.trim_end().ends_with("/>");
        } else if tag.starts_with("/bpmndi:BPMNLabel") {
            in_label = false;
        } else if (tag.starts_with("dc:Bounds") || tag.starts_with("di:waypoint")) && !in_label {
            if let Some(e) = &element {
                let points: &mut Vec<i64> = out.entry(e.clone()).or_default();
                for name in ["x", "y", "width", "height"] {
                    if let Some(v) = attr(tag, name).and_then(|v| v.parse::<f64>().ok()) {
                        points.push(v.round() as i64);
                    }
                }
            }
        }
    }
    out
}
