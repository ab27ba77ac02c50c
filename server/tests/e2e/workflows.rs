//! Workflows run inside Concord: a model drawn in bpmn-js deploys unchanged, runs with its
//! tasks completed by the people its assignment names (and no one else), and exports back
//! with its layout; service calls carry one idempotency key across retries, raise an incident
//! an operator retries; SLA boundary timers escalate on time and survive a restart; messages
//! reach the instance waiting for their correlation key; every step is audited once and the
//! chain verifies; the command line drives the same.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{both_backends, Backend, Session, TestApp};

const ONBOARDING: &str = include_str!("../../../bots/workflows/examples/employee-onboarding.bpmn");

fn base(ws: &str) -> String {
    format!("/api/v1/workspaces/{ws}")
}

async fn deploy(app: &TestApp, who: &Session, ws: &str, source: &str) -> Value {
    app.post(
        &format!("{}/workflows", base(ws)),
        Some(&who.access),
        json!({ "source": source }),
    )
    .await
    .expect(201)
    .clone()
}

async fn start(app: &TestApp, who: &Session, ws: &str, process: &str, vars: Value) -> Value {
    app.post(
        &format!("{}/workflows/{process}/instances", base(ws)),
        Some(&who.access),
        json!({ "variables": vars }),
    )
    .await
    .expect(201)
    .clone()
}

async fn show(app: &TestApp, who: &Session, ws: &str, id: &str) -> Value {
    app.get(
        &format!("{}/workflow-instances/{id}", base(ws)),
        &who.access,
    )
    .await
    .expect(200)
    .clone()
}

async fn inbox(app: &TestApp, who: &Session) -> Vec<Value> {
    app.get("/api/v1/workflow-tasks", &who.access)
        .await
        .expect(200)["tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn complete(app: &TestApp, who: &Session, task: &str, vars: Value) -> crate::harness::Reply {
    app.post(
        &format!("/api/v1/workflow-tasks/{task}/complete"),
        Some(&who.access),
        json!({ "variables": vars }),
    )
    .await
}

/// The next task change a socket hears of (other events skipped).
async fn next_task(socket: &mut crate::harness::Socket) -> Value {
    loop {
        let frame = socket
            .next_event()
            .await
            .expect("a workflow_task_changed event");
        if frame["event"]["type"] == "workflow_task_changed" {
            return frame["event"].clone();
        }
    }
}

/// Waits (up to `secs`) until the instance satisfies `done`; returns it.
async fn until(
    app: &TestApp,
    who: &Session,
    ws: &str,
    id: &str,
    secs: u64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let i = show(app, who, ws, id).await;
        if done(&i) {
            return i;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {i}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn open_tasks(instance: &Value) -> Vec<Value> {
    instance["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "open")
        .cloned()
        .collect()
}

/// Every `workflow.step` audit entry of an instance, by step number.
async fn audited_steps(app: &TestApp, admin: &Session, id: &str) -> BTreeMap<i64, usize> {
    let mut steps = BTreeMap::new();
    for e in app.audit_events(&admin.access).await {
        if e["action"] == "workflow.step" && e["target_id"] == id {
            *steps
                .entry(e["details"]["step"].as_i64().unwrap())
                .or_insert(0) += 1;
        }
    }
    steps
}

async fn verify_audit(app: &TestApp, admin: &Session) {
    let result = app
        .post("/api/v1/audit/verify", Some(&admin.access), json!({}))
        .await
        .expect(200)
        .clone();
    assert_eq!(result["ok"], true, "{result}");
}

both_backends! {
    async fn a_model_drawn_in_bpmn_js_deploys_runs_for_the_people_it_names_and_exports_with_its_layout(app) {
        let t = app.team().await;
        let ws = t.ws.clone();
        for role in ["it", "hr"] {
            app.post(&format!("{}/roles", base(&ws)), Some(&t.admin.access),
                json!({"name": role, "permissions": ["workspace.read", "workflows.start"]}))
                .await.expect(201);
        }
        for (who, role) in [(&t.ann, "it"), (&t.bo, "hr")] {
            app.put(&format!("{}/members/{}", base(&ws), who.user_id), &t.admin.access,
                json!({"role": role})).await.expect(200);
        }
        // Members may not deploy.
        app.post(&format!("{}/workflows", base(&ws)), Some(&t.cy.access), json!({"source": ONBOARDING}))
            .await.expect_error(403, "forbidden");
        let d = deploy(&app, &t.admin, &ws, ONBOARDING).await;
        assert_eq!(d["version"], 1, "{d}");
        assert_eq!(d["format"], "bpmn");
        let process = d["process_id"].as_str().unwrap().to_owned();
        assert_eq!(deploy(&app, &t.admin, &ws, ONBOARDING).await["version"], 2);

        // Cy starts it, naming himself the new employee's manager.
        let i = start(&app, &t.cy, &ws, &process, json!({"manager": t.cy.user_id, "employee": "Dee"})).await;
        let id = i["id"].as_str().unwrap().to_owned();
        assert_eq!(i["status"], "running", "{i}");
        let tasks = open_tasks(&i);
        assert_eq!(tasks.len(), 3, "IT, HR and the manager work in parallel: {i}");

        // Each sees exactly their own task; a member with none sees nothing.
        let mine = |v: Vec<Value>| v.iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
        let ann_tasks = mine(inbox(&app, &t.ann).await);
        let bo_tasks = mine(inbox(&app, &t.bo).await);
        let cy_tasks = mine(inbox(&app, &t.cy).await);
        assert_eq!((ann_tasks.len(), bo_tasks.len(), cy_tasks.len()), (1, 1, 1));
        assert!(inbox(&app, &t.admin).await.is_empty());

        // Bo (HR) cannot complete IT's task, nor can the workspace owner; Ann can, once.
        complete(&app, &t.bo, &ann_tasks[0], json!({})).await.expect_error(403, "not_assignee");
        complete(&app, &t.admin, &ann_tasks[0], json!({})).await.expect_error(403, "not_assignee");
        complete(&app, &t.ann, &ann_tasks[0], json!({"laptop": "L-42"})).await.expect(200);
        complete(&app, &t.ann, &ann_tasks[0], json!({})).await.expect_error(409, "task_closed");
        // Someone outside the workspace is not told the task exists.
        app.create_user(&t.admin, "out@example.org", "Out").await;
        let out = app.login("out@example.org", crate::harness::PASSWORD).await;
        complete(&app, &out, &bo_tasks[0], json!({})).await.expect_error(404, "not_found");

        complete(&app, &t.bo, &bo_tasks[0], json!({"contract": true})).await.expect(200);
        let i = show(&app, &t.cy, &ws, &id).await;
        assert_eq!(i["status"], "running", "joined only when all three are done: {i}");
        complete(&app, &t.cy, &cy_tasks[0], json!({"buddy": "Ann"})).await.expect(200);
        let i = until(&app, &t.cy, &ws, &id, 10, |i| i["status"] == "completed").await;
        assert_eq!(i["variables"]["laptop"], "L-42", "{i}");
        assert_eq!(i["variables"]["contract"], true);

        // Ann, who did not start it and cannot manage workflows, does not see it.
        app.get(&format!("{}/workflow-instances/{id}", base(&ws)), &t.ann.access).await
            .expect_error(404, "not_found");
        let listed = app.get(&format!("{}/workflow-instances", base(&ws)), &t.ann.access).await.expect(200).clone();
        assert_eq!(listed["instances"].as_array().unwrap().len(), 0, "{listed}");
        let listed = app.get(&format!("{}/workflow-instances?status=completed", base(&ws)), &t.admin.access).await.expect(200).clone();
        assert_eq!(listed["instances"].as_array().unwrap().len(), 1, "{listed}");

        // Every step is audited exactly once, numbered without gaps, and the chain verifies.
        let history = i["history"].as_array().unwrap();
        let audited = audited_steps(&app, &t.admin, &id).await;
        assert_eq!(audited.len(), history.len(), "{audited:?}");
        for (n, step) in history.iter().enumerate() {
            assert_eq!(step["step"], n as i64 + 1);
            assert_eq!(audited.get(&(n as i64 + 1)), Some(&1), "step {} audited once", n + 1);
        }
        assert!(history.iter().any(|s| s["event"]["type"] == "task_completed" && s["actor"] == t.ann.user_id.as_str()));
        verify_audit(&app, &t.admin).await;

        // The export is the modeler's file: the same shapes with the same bounds. It names
        // the services a process calls: operators only.
        let export = format!("{}/workflows/{process}/bpmn?version=1", base(&ws));
        app.get(&export, &t.cy.access).await.expect_error(403, "forbidden");
        let r = app.client.get(format!("{}{export}", app.base))
            .bearer_auth(&t.admin.access).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/xml"));
        let xml = r.text().await.unwrap();
        let bounds = |s: &str| s.lines().filter(|l| l.contains("<dc:Bounds")).map(str::trim).map(str::to_owned).collect::<Vec<_>>();
        assert!(!bounds(ONBOARDING).is_empty());
        assert_eq!(bounds(&xml), bounds(ONBOARDING));
    }

    async fn models_with_problems_are_refused_naming_each_element_and_line(app) {
        let t = app.team().await;
        let bad = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">
  <bpmn:process id="broken" isExecutable="true">
    <bpmn:startEvent id="go" />
    <bpmn:sequenceFlow id="f1" sourceRef="go" targetRef="nowhere" />
    <bpmn:exclusiveGateway id="choose" />
    <bpmn:sequenceFlow id="f2" sourceRef="choose" targetRef="done">
      <bpmn:conditionExpression>amount &gt;</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:endEvent id="done" />
  </bpmn:process>
</bpmn:definitions>"#;
        let r = app.post(&format!("{}/workflows", base(&t.ws)), Some(&t.admin.access), json!({"source": bad})).await;
        r.expect_error(422, "invalid_model");
        let problems = r.body["error"]["problems"].as_array().unwrap().clone();
        assert!(problems.len() >= 2, "{}", r.body);
        assert!(problems.iter().all(|p| p["line"].as_u64().is_some()), "{}", r.body);
        let named: Vec<&str> = problems.iter().filter_map(|p| p["element"].as_str()).collect();
        assert!(named.contains(&"f1"), "{named:?}");
        // YAML too; and a task naming a decision that is not deployed.
        let yaml = "process: rules\nsteps:\n  - start: s\n  - rule_task: decide\n    decision: pricing\n  - end: e\n";
        let r = app.post(&format!("{}/workflows", base(&t.ws)), Some(&t.admin.access), json!({"source": yaml})).await;
        r.expect_error(422, "invalid_model");
        assert!(r.body["error"]["message"].as_str().unwrap().contains("pricing"), "{}", r.body);
        // Nothing was deployed.
        let list = app.get(&format!("{}/workflows", base(&t.ws)), &t.admin.access).await.expect(200).clone();
        assert_eq!(list["deployments"].as_array().unwrap().len(), 0);
        // Bad input elsewhere: an unknown process, a bad status filter.
        app.post(&format!("{}/workflows/nope/instances", base(&t.ws)), Some(&t.admin.access), json!({}))
            .await.expect_error(404, "not_found");
        app.get(&format!("{}/workflow-instances?status=sleeping", base(&t.ws)), &t.admin.access).await
            .expect_error(422, "validation_failed");
    }

    async fn a_designer_checks_what_is_typed_and_deploys_versions_with_their_notes(app) {
        let t = app.team().await;
        let check = format!("{}/workflow-expressions/check", base(&t.ws));
        let ask = |expression: &str, kind: &str| json!({"expression": expression, "kind": kind});
        // A condition that parses; one that does not, with where.
        let ok = app.post(&check, Some(&t.admin.access), ask("amount > 1000 && approved", "condition")).await.expect(200).clone();
        assert_eq!(ok, json!({"ok": true, "problems": []}));
        let bad = app.post(&check, Some(&t.admin.access), ask("amount >", "condition")).await.expect(200).clone();
        assert_eq!(bad["ok"], false, "{bad}");
        assert_eq!(bad["problems"][0]["line"], 1, "{bad}");
        assert!(bad["problems"][0]["column"].as_u64().is_some_and(|c| c >= 7), "{bad}");
        // The same condition is what deploying refuses, on its flow.
        let model = |condition: &str| format!("process: checked\nsteps:\n  - start: s\n  - exclusive: big\n    branches:\n      - when: {condition}\n        goto: done\n    default: other\n  - end: done\n  - end: other\n");
        app.post(&format!("{}/workflows", base(&t.ws)), Some(&t.admin.access), json!({"source": model("amount >")}))
            .await.expect_error(422, "invalid_model");
        // Templates point into the text; a JSON body must be JSON first.
        let template = app.post(&check, Some(&t.admin.access), ask("Order ${id +} is late", "template")).await.expect(200).clone();
        assert_eq!(template["ok"], false, "{template}");
        assert!(template["problems"][0]["message"].as_str().unwrap().contains("${id +}"), "{template}");
        assert_eq!(app.post(&check, Some(&t.admin.access), ask("Order ${order.id} is late", "template")).await.expect(200)["ok"], true);
        let json_bad = app.post(&check, Some(&t.admin.access), ask("{\"id\": 1,\n \"x\": }", "json")).await.expect(200).clone();
        assert_eq!((&json_bad["ok"], &json_bad["problems"][0]["line"]), (&json!(false), &json!(2)), "{json_bad}");
        assert_eq!(app.post(&check, Some(&t.admin.access), ask("{\"id\": \"${order.id}\"}", "json")).await.expect(200)["ok"], true);
        // Only those who deploy models check them; a huge text is refused unread.
        app.post(&check, Some(&t.ann.access), ask("true", "condition")).await.expect_error(403, "forbidden");
        app.post(&check, Some(&t.admin.access), ask(&"x".repeat(70 * 1024), "condition")).await.expect_error(413, "expression_too_large");
        app.post(&check, Some(&t.admin.access), ask("true", "python")).await.expect_error(422, "invalid_body");

        // A version carries the deployer's note; the list shows each version's.
        let v1 = app.post(&format!("{}/workflows", base(&t.ws)), Some(&t.admin.access),
            json!({"source": model("amount > 1000"), "note": "  First cut: big orders branch  "})).await.expect(201).clone();
        assert_eq!((&v1["version"], &v1["note"]), (&json!(1), &json!("First cut: big orders branch")), "{v1}");
        let v2 = app.post(&format!("{}/workflows", base(&t.ws)), Some(&t.admin.access),
            json!({"source": model("amount > 5000")})).await.expect(201).clone();
        assert_eq!((&v2["version"], &v2["note"]), (&json!(2), &Value::Null), "{v2}");
        let long = app.post(&format!("{}/workflows", base(&t.ws)), Some(&t.admin.access),
            json!({"source": model("amount > 1"), "note": "é".repeat(501)})).await;
        long.expect_error(422, "validation_failed");
        assert_eq!(long.body["error"]["field"], "note", "{}", long.body);
        let listed = app.get(&format!("{}/workflows", base(&t.ws)), &t.ann.access).await.expect(200).clone();
        let notes: Vec<(i64, Value)> = listed["deployments"].as_array().unwrap().iter()
            .map(|d| (d["version"].as_i64().unwrap(), d["note"].clone())).collect();
        assert_eq!(notes, vec![(2, Value::Null), (1, json!("First cut: big orders branch"))], "{listed}");
        // The audit entry says a note was written, not what it says.
        let audited: Vec<Value> = app.audit_events(&t.admin.access).await.into_iter()
            .filter(|e| e["action"] == "workflow.deployed").collect();
        assert_eq!(audited.len(), 2, "{audited:?}");
        assert!(audited.iter().any(|e| e["details"]["noted"] == true), "{audited:?}");
        assert!(!format!("{audited:?}").contains("First cut"), "{audited:?}");
    }

    async fn a_message_reaches_the_instance_waiting_for_its_correlation_key(app) {
        let t = app.team().await;
        let yaml = "process: orders\nsteps:\n  - start: placed\n  - receive: paid\n    message: payment.received\n    correlation: order\n  - end: done\n";
        deploy(&app, &t.admin, &t.ws, yaml).await;
        let a = start(&app, &t.ann, &t.ws, "orders", json!({"order": "A-1"})).await;
        let b = start(&app, &t.ann, &t.ws, "orders", json!({"order": "B-2"})).await;
        let path = format!("{}/workflow-messages", base(&t.ws));
        let send = |corr: &str| app.post(&path, Some(&t.ann.access),
            json!({"name": "payment.received", "correlation": corr, "variables": {"amount": 12}}));
        let r = send("B-2").await.expect(200).clone();
        assert_eq!(r["delivered"], json!([b["id"]]), "{r}");
        let b = show(&app, &t.ann, &t.ws, b["id"].as_str().unwrap()).await;
        assert_eq!(b["status"], "completed", "{b}");
        assert_eq!(b["variables"]["amount"], 12);
        let a = show(&app, &t.ann, &t.ws, a["id"].as_str().unwrap()).await;
        assert_eq!(a["status"], "running");
        let r = send("C-3").await.expect(200).clone();
        assert_eq!(r["delivered"], json!([]), "{r}");
    }
}

/// A tiny HTTP service the processes call: it records each request's idempotency key and
/// answers as told (`fail` answers 503; `ok` answers 200 with a JSON body).
#[derive(Clone, Default)]
struct Service {
    seen: Arc<Mutex<Vec<(String, Value)>>>,
    failing: Arc<Mutex<bool>>,
}

impl Service {
    async fn start(self) -> String {
        use axum::routing::post;
        let state = self.clone();
        let app = axum::Router::new().route(
            "/reserve",
            post(
                move |headers: axum::http::HeaderMap, body: axum::Json<Value>| {
                    let state = state.clone();
                    async move {
                        let key = headers
                            .get("idempotency-key")
                            .map(|v| v.to_str().unwrap_or("").to_owned())
                            .unwrap_or_default();
                        state
                            .seen
                            .lock()
                            .unwrap()
                            .push((key.clone(), body.0.clone()));
                        if *state.failing.lock().unwrap() {
                            (
                                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                                axum::Json(json!({"error": "down"})),
                            )
                        } else {
                            (
                                axum::http::StatusCode::OK,
                                axum::Json(json!({"reservation": format!("R-{key}")})),
                            )
                        }
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    fn keys(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(k, _)| k.clone())
            .collect()
    }
}

fn reserve_model(url: &str) -> String {
    format!(
        "process: reserve\nsteps:\n  - start: s\n  - service_task: reserve\n    method: POST\n    url: {url}/reserve\n    body: {{item: \"${{item}}\"}}\n    outputs: {{reservation: response.body.reservation}}\n    retry: {{attempts: 2, backoff: PT0.2S, multiplier: 1}}\n  - end: e\n"
    )
}

async fn service_calls_keep_one_idempotency_key_and_an_incident_is_retried(backend: Backend) {
    let service = Service::default();
    let url = service.clone().start().await;
    *service.failing.lock().unwrap() = true;
    let app = crate::harness::spawn_app_with(backend, |c| {
        c.workflows.allowed_networks = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let t = app.team().await;
    deploy(&app, &t.admin, &t.ws, &reserve_model(&url)).await;
    let i = start(&app, &t.ann, &t.ws, "reserve", json!({"item": "chair"})).await;
    let id = i["id"].as_str().unwrap().to_owned();
    // Two attempts fail, then an incident waits for an operator.
    let i = until(&app, &t.admin, &t.ws, &id, 20, |i| {
        i["incidents"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let incident = i["incidents"][0].clone();
    assert_eq!(incident["element"], "reserve", "{i}");
    assert!(
        incident["message"].as_str().unwrap().contains("2 attempt"),
        "{incident}"
    );
    assert_eq!(service.keys().len(), 2);
    let listed = app
        .get(
            &format!("{}/workflow-incidents", base(&t.ws)),
            &t.admin.access,
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(listed["incidents"].as_array().unwrap().len(), 1, "{listed}");
    // Members do not handle incidents.
    let resolve = format!(
        "{}/workflow-incidents/{}/resolve",
        base(&t.ws),
        incident["id"].as_str().unwrap()
    );
    app.post(&resolve, Some(&t.ann.access), json!({"action": "retry"}))
        .await
        .expect_error(403, "forbidden");
    *service.failing.lock().unwrap() = false;
    app.post(&resolve, Some(&t.admin.access), json!({"action": "retry"}))
        .await
        .expect(200);
    let i = until(&app, &t.admin, &t.ws, &id, 20, |i| {
        i["status"] == "completed"
    })
    .await;
    let keys = service.keys();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(
        keys.iter().all(|k| k == &keys[0] && !k.is_empty()),
        "{keys:?}"
    );
    assert_eq!(
        i["variables"]["reservation"],
        format!("R-{}", keys[0]),
        "{i}"
    );
    assert_eq!(service.seen.lock().unwrap()[0].1, json!({"item": "chair"}));
    app.post(&resolve, Some(&t.admin.access), json!({"action": "retry"}))
        .await
        .expect_error(409, "incident_resolved");
    verify_audit(&app, &t.admin).await;
}

async fn service_calls_to_private_addresses_are_refused_by_default(backend: Backend) {
    let service = Service::default();
    let url = service.clone().start().await;
    let app = crate::harness::spawn_app(backend).await;
    let t = app.team().await;
    deploy(&app, &t.admin, &t.ws, &reserve_model(&url)).await;
    let i = start(&app, &t.ann, &t.ws, "reserve", json!({"item": "desk"})).await;
    let id = i["id"].as_str().unwrap().to_owned();
    let i = until(&app, &t.admin, &t.ws, &id, 20, |i| {
        i["incidents"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    assert!(
        i["incidents"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not a public address"),
        "{i}"
    );
    assert!(service.keys().is_empty(), "the service was reached");
}

const SLA: &str = "process: sla\nsteps:\n  - start: s\n  - user_task: review\n    person: ${reviewer}\n    on:\n      - timer: PT1S\n        interrupting: false\n        goto: chase\n  - end: reviewed\n  - user_task: chase\n    person: ${manager}\n  - end: chased\n";

async fn an_sla_timer_escalates_on_time_and_timers_survive_a_restart(backend: Backend) {
    let app = crate::harness::spawn_app(backend).await;
    let t = app.team().await;
    deploy(&app, &t.admin, &t.ws, SLA).await;
    let vars = json!({"reviewer": "ann@example.org", "manager": t.bo.user_id});
    let i = start(&app, &t.cy, &t.ws, "sla", vars.clone()).await;
    let id = i["id"].as_str().unwrap().to_owned();
    let started = tokio::time::Instant::now();
    assert_eq!(open_tasks(&i).len(), 1);
    assert_eq!(
        open_tasks(&i)[0]["assignee"],
        t.ann.user_id.as_str(),
        "by email: {i}"
    );
    let i = until(&app, &t.cy, &t.ws, &id, 10, |i| open_tasks(i).len() == 2).await;
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "early: {waited:?}");
    let chase = open_tasks(&i)
        .into_iter()
        .find(|t| t["element"] == "chase")
        .unwrap();
    assert_eq!(chase["assignee"], t.bo.user_id.as_str());

    // A second instance's timer comes due while the server is down: it fires at start.
    let j = start(&app, &t.cy, &t.ws, "sla", vars).await;
    let jid = j["id"].as_str().unwrap().to_owned();
    let app = app.restart().await;
    let cy = app.login("cy@example.org", crate::harness::PASSWORD).await;
    until(&app, &cy, &t.ws, &jid, 10, |i| open_tasks(i).len() == 2).await;
    let history = show(&app, &cy, &t.ws, &jid).await["history"].clone();
    let fired = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["event"]["type"] == "timer_fired")
        .count();
    assert_eq!(fired, 1, "{history}");
}

async fn the_command_line_deploys_starts_and_shows(backend: Backend) {
    use std::process::Command;
    let app = crate::harness::spawn_app(backend).await;
    let t = app.team().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orders.yaml");
    std::fs::write(&file, "process: cli\nsteps:\n  - start: s\n  - user_task: check\n    person: ${who}\n  - end: e\n").unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_concord"))
            .args(app.cli_args())
            .args(["workflow"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["deploy", "--workspace", &t.ws, file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["process_id"], "cli");
    // An example and its form deploy with one command; without its form a model is refused.
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../bots/workflows/examples");
    let out = run(&[
        "deploy",
        "--workspace",
        &t.ws,
        &format!("{examples}/support-ticket.bpmn"),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ticket_response") && stderr.lines().count() == 1,
        "{stderr}"
    );
    let out = run(&[
        "deploy",
        "--workspace",
        &t.ws,
        &format!("{examples}/forms/approval.json"),
        &format!("{examples}/document-approval.bpmn"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let both: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&both[0]["key"], &both[1]["version"]),
        (&json!("approval"), &json!(1)),
        "{both}"
    );
    let vars = json!({"who": t.ann.user_id}).to_string();
    let out = run(&["start", "--workspace", &t.ws, "cli", "--variables", &vars]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let i: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = i["id"].as_str().unwrap();
    let out = run(&["show", "--workspace", &t.ws, id]);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        shown["tasks"][0]["assignee"],
        t.ann.user_id.as_str(),
        "{shown}"
    );
    assert!(!shown["history"].as_array().unwrap().is_empty());
    // The server sees the instance the command line started, and Ann completes her task.
    let task = inbox(&app, &t.ann).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    complete(&app, &t.ann, &task, json!({})).await.expect(200);
    let out = run(&["instances", "--workspace", &t.ws, "--status", "completed"]);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["instances"].as_array().unwrap().len(), 1, "{listed}");
    // Bad input: one line on stderr, a non-zero exit.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "process: bad\nsteps:\n  - start: s\n  - frobnicate: x\n",
    )
    .unwrap();
    let out = run(&["deploy", "--workspace", &t.ws, bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("frobnicate"), "{stderr}");
    let out = run(&["show", "--workspace", "nope", id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workspace"));
}

both_backends!(
    service_calls_keep_one_idempotency_key_and_an_incident_is_retried,
    service_calls_to_private_addresses_are_refused_by_default,
    an_sla_timer_escalates_on_time_and_timers_survive_a_restart,
    the_command_line_deploys_starts_and_shows,
);

/// The messages of `who`'s direct conversation with `bot`, once there is one.
pub(crate) async fn dm_from(app: &TestApp, who: &Session, ws: &str, bot: &str) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let mine = app
            .get(&format!("/api/v1/workspaces/{ws}/channels"), &who.access)
            .await
            .expect(200)
            .clone();
        for c in mine.as_array().cloned().unwrap_or_default() {
            if c["kind"] != "direct" {
                continue;
            }
            let id = c["id"].as_str().unwrap();
            let messages = app
                .get(&format!("/api/v1/channels/{id}/messages"), &who.access)
                .await
                .expect(200)
                .clone();
            let messages = messages.as_array().cloned().unwrap_or_default();
            if !messages.is_empty() && messages.iter().all(|m| m["author_id"] == bot) {
                return messages;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no message from the bot: {mine}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The message of `channel` with this text, once posted.
async fn wait_for_post(app: &TestApp, who: &Session, channel: &str, text: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let messages = app
            .get(&format!("/api/v1/channels/{channel}/messages"), &who.access)
            .await
            .expect(200)
            .clone();
        if let Some(m) = messages
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["text"] == text))
        {
            return m.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{text:?} not posted: {messages}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn instances_of(app: &TestApp, who: &Session, ws: &str, process: &str) -> Vec<Value> {
    app.get(
        &format!(
            "{}/workflow-instances?process_id={process}&limit=500",
            base(ws)
        ),
        &who.access,
    )
    .await
    .expect(200)["instances"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn wait_for_instances(
    app: &TestApp,
    who: &Session,
    ws: &str,
    process: &str,
    n: usize,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let found = instances_of(app, who, ws, process).await;
        if found.len() >= n {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {n} instances: {found:?}",
            found.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both_backends! {
    async fn a_webhook_starts_a_process_with_its_secret_or_signature_only(app) {
        let t = app.team().await;
        deploy(&app, &t.admin, &t.ws, "process: intake\nsteps:\n  - start: s\n  - user_task: triage\n    person: ${owner}\n  - end: e\n").await;
        let made = app.post(&format!("{}/workflows/intake/triggers", base(&t.ws)), Some(&t.admin.access),
            json!({"kind": "webhook"})).await.expect(201).clone();
        let url = format!("{}{}", app.base, made["url"].as_str().unwrap());
        let secret = made["secret"].as_str().unwrap().to_owned();
        // Members do not make triggers; the list never shows a secret.
        app.post(&format!("{}/workflows/intake/triggers", base(&t.ws)), Some(&t.ann.access),
            json!({"kind": "webhook"})).await.expect_error(403, "forbidden");
        let listed = app.get(&format!("{}/workflow-triggers", base(&t.ws)), &t.admin.access).await.expect(200).clone();
        assert_eq!(listed["triggers"][0]["secret"], Value::Null, "{listed}");
        assert!(!listed.to_string().contains(&secret));

        let body = json!({"owner": t.ann.user_id, "ticket": {"id": 7, "subject": "VPN down"}}).to_string();
        let send = |auth: Option<String>, sig: Option<(String, String)>, body: String| {
            let mut r = app.client.post(&url).header("content-type", "application/json").body(body);
            if let Some(a) = auth { r = r.header("authorization", a); }
            if let Some((s, ts)) = sig { r = r.header("x-concord-signature", s).header("x-concord-request-timestamp", ts); }
            async move { crate::harness::reply(r.send().await.unwrap()).await }
        };
        let r = send(Some(format!("Bearer {secret}")), None, body.clone()).await;
        assert_eq!(r.status, 202, "{}", r.body);
        let id = r.body["instance_id"].as_str().unwrap().to_owned();
        let i = show(&app, &t.admin, &t.ws, &id).await;
        assert_eq!(i["variables"]["ticket"]["subject"], "VPN down", "{i}");
        assert_eq!(open_tasks(&i)[0]["assignee"], t.ann.user_id.as_str());

        // Signed as Slack signs.
        let ts = chrono::Utc::now().timestamp();
        let sig = {
            use hmac::Mac;
            let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            m.update(format!("v0:{ts}:{body}").as_bytes());
            format!("v0={}", hex::encode(m.finalize().into_bytes()))
        };
        let r = send(None, Some((sig.clone(), ts.to_string())), body.clone()).await;
        assert_eq!(r.status, 202, "{}", r.body);
        let signed_id = r.body["instance_id"].clone();
        // The same signed call again (a replay) starts nothing new.
        let r = send(None, Some((sig.clone(), ts.to_string())), body.clone()).await;
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(r.body["instance_id"], signed_id);
        // A sender's retries with one Idempotency-Key start one instance.
        let keyed = || app.client.post(&url).header("content-type", "application/json")
            .header("authorization", format!("Bearer {secret}")).header("idempotency-key", "crm-delivery-81")
            .body(body.clone()).send();
        let first = crate::harness::reply(keyed().await.unwrap()).await;
        let again = crate::harness::reply(keyed().await.unwrap()).await;
        assert_eq!(first.status, 202, "{}", first.body);
        assert_eq!(first.body["instance_id"], again.body["instance_id"]);
        assert_ne!(first.body["instance_id"], signed_id);
        // A changed body, an old timestamp, a wrong secret, none: all refused alike.
        let r = send(None, Some((sig.clone(), ts.to_string())), body.replace("VPN", "WiFi")).await;
        r.expect_error(401, "invalid_signature");
        let r = send(None, Some((sig, (ts - 3600).to_string())), body.clone()).await;
        r.expect_error(401, "invalid_signature");
        send(Some("Bearer wrong".into()), None, body.clone()).await.expect_error(401, "invalid_signature");
        send(None, None, body.clone()).await.expect_error(401, "invalid_signature");
        send(Some(format!("Bearer {secret}")), None, "[1, 2]".into()).await.expect_error(422, "invalid_payload");
        send(Some(format!("Bearer {secret}")), None, "{not json".into()).await.expect_error(422, "invalid_payload");
        // Revoked: the URL stops working.
        app.call(reqwest::Method::DELETE, &format!("{}/workflow-triggers/{}", base(&t.ws), made["id"].as_str().unwrap()),
            Some(&t.admin.access), None).await.expect(200);
        send(Some(format!("Bearer {secret}")), None, body).await.expect_error(401, "invalid_signature");
        assert_eq!(instances_of(&app, &t.admin, &t.ws, "intake").await.len(), 3);
    }

    async fn a_message_and_a_reaction_in_a_channel_start_processes(app) {
        let t = app.team().await;
        let support = crate::chat::channel(&app, &t.admin, &t.ws, "support", "public").await;
        for who in [&t.ann, &t.bo] {
            app.post(&format!("/api/v1/channels/{support}/members"), Some(&t.admin.access),
                json!({"user_id": who.user_id})).await.expect(200);
        }
        deploy(&app, &t.admin, &t.ws, "process: helpdesk\nsteps:\n  - start: s\n  - user_task: look\n    person: ${message.author_id}\n  - end: e\n").await;
        deploy(&app, &t.admin, &t.ws, "process: incident\nsteps:\n  - start: s\n  - user_task: page\n    person: ${reaction.user_id}\n  - end: e\n").await;
        app.post(&format!("{}/workflows/helpdesk/triggers", base(&t.ws)), Some(&t.admin.access),
            json!({"kind": "message", "channel_id": support, "pattern": "vpn"})).await.expect(201);
        app.post(&format!("{}/workflows/incident/triggers", base(&t.ws)), Some(&t.admin.access),
            json!({"kind": "reaction", "emoji": ":rotating_light:"})).await.expect(201);

        crate::chat::say(&app, &t.ann, &support, "lunch at noon?").await;
        let posted = crate::chat::say(&app, &t.ann, &support, "The VPN is down again").await;
        let started = wait_for_instances(&app, &t.admin, &t.ws, "helpdesk", 1).await;
        let i = show(&app, &t.admin, &t.ws, started[0]["id"].as_str().unwrap()).await;
        assert_eq!(i["variables"]["message"]["text"], "The VPN is down again", "{i}");
        assert_eq!(open_tasks(&i)[0]["assignee"], t.ann.user_id.as_str(), "{i}");

        app.call(reqwest::Method::PUT,
            &format!("/api/v1/messages/{}/reactions/:rotating_light:", posted["id"].as_str().unwrap()),
            Some(&t.bo.access), None).await.expect(200);
        app.call(reqwest::Method::PUT,
            &format!("/api/v1/messages/{}/reactions/:eyes:", posted["id"].as_str().unwrap()),
            Some(&t.bo.access), None).await.expect(200);
        let paged = wait_for_instances(&app, &t.admin, &t.ws, "incident", 1).await;
        let i = show(&app, &t.admin, &t.ws, paged[0]["id"].as_str().unwrap()).await;
        assert_eq!(open_tasks(&i)[0]["assignee"], t.bo.user_id.as_str(), "{i}");
        // A process whose task goes to the channel it watches: the workflow bot's notice
        // there names the process, which the pattern matches, and starts nothing.
        deploy(&app, &t.admin, &t.ws, "process: triage\nsteps:\n  - start: s\n  - user_task: sort\n    name: Sort the triage call\n    channel: support\n  - end: e\n").await;
        app.post(&format!("{}/workflows/triage/triggers", base(&t.ws)), Some(&t.admin.access),
            json!({"kind": "message", "channel_id": support, "pattern": "triage"})).await.expect(201);
        crate::chat::say(&app, &t.ann, &support, "triage please").await;
        let triaged = wait_for_instances(&app, &t.admin, &t.ws, "triage", 1).await;
        let i = show(&app, &t.admin, &t.ws, triaged[0]["id"].as_str().unwrap()).await;
        let sort = open_tasks(&i)[0]["id"].as_str().unwrap().to_owned();
        channel_notice(&app, &t.ann, &support, &sort, |m| m["text"].as_str().unwrap_or("").contains("Sort the triage call")).await;
        // Events start processes in the order they were posted: once a later message has
        // started its instance, the notice before it was looked at, and started nothing.
        crate::chat::say(&app, &t.bo, &support, "another triage").await;
        wait_for_instances(&app, &t.admin, &t.ws, "triage", 2).await;
        // Neither the other message, the other emoji nor the notice started anything.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(instances_of(&app, &t.admin, &t.ws, "helpdesk").await.len(), 1);
        assert_eq!(instances_of(&app, &t.admin, &t.ws, "incident").await.len(), 1);
        assert_eq!(instances_of(&app, &t.admin, &t.ws, "triage").await.len(), 2);
    }

    async fn the_workflow_bot_tells_assignees_and_posts_send_tasks(app) {
        let t = app.team().await;
        let approvals = crate::chat::channel(&app, &t.admin, &t.ws, "approvals", "public").await;
        crate::chat::channel(&app, &t.admin, &t.ws, "vault", "private").await;
        deploy(&app, &t.admin, &t.ws, "process: expense\nsteps:\n  - start: s\n  - user_task: approve\n    name: Approve the expense\n    person: ${approver}\n  - send_task: announce\n    channel: approvals\n    text: Expense of ${amount} approved\n  - send_task: thank\n    person: ${requester}\n    text: Your expense of ${amount} was approved\n  - send_task: leak\n    channel: vault\n    text: not for the bot\n  - end: e\n").await;
        // Deploying made the workspace's workflow bot, listed with its bots.
        let bots = app.get(&format!("/api/v1/workspaces/{}/bots", t.ws), &t.admin.access).await.expect(200).clone();
        let bot = bots.as_array().unwrap().iter().find(|b| b["name"] == "Workflows").cloned()
            .unwrap_or_else(|| panic!("no workflow bot: {bots}"));
        let bot_id = bot["id"].as_str().unwrap().to_owned();

        let started = start(&app, &t.admin, &t.ws, "expense",
            json!({"approver": t.ann.user_id, "requester": t.bo.user_id, "amount": 42})).await;
        let id = started["id"].as_str().unwrap().to_owned();
        // Ann is told in a direct message from the bot.
        let told = dm_from(&app, &t.ann, &t.ws, &bot_id).await;
        assert!(told[0]["text"].as_str().unwrap().contains("Approve the expense"), "{told:?}");
        let task = open_tasks(&show(&app, &t.admin, &t.ws, &id).await)[0]["id"].as_str().unwrap().to_owned();
        complete(&app, &t.ann, &task, json!({})).await.expect(200);
        let done = until(&app, &t.admin, &t.ws, &id, 15, |i| i["status"] == "completed").await;
        assert_eq!(done["status"], "completed");
        // The send tasks: a post in the public channel, a direct message to Bo.
        let posted = wait_for_post(&app, &t.admin, &approvals, "Expense of 42 approved").await;
        assert_eq!(posted["author_id"], bot_id.as_str(), "{posted}");
        let thanked = dm_from(&app, &t.bo, &t.ws, &bot_id).await;
        assert_eq!(thanked[0]["text"], "Your expense of 42 was approved", "{thanked:?}");
        // A private channel the bot was not added to stays closed to it: the post fails,
        // audited without its text.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let failed = loop {
            let events = app.audit_events(&t.admin.access).await;
            let posts: Vec<Value> = events.into_iter().filter(|e| e["action"] == "workflow.post").collect();
            if posts.len() >= 4 {
                break posts;
            }
            assert!(tokio::time::Instant::now() < deadline, "{posts:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let refused: Vec<&Value> = failed.iter().filter(|e| e["outcome"] != "allowed").collect();
        assert_eq!(refused.len(), 1, "{failed:?}");
        assert_eq!(refused[0]["details"]["element"], "leak", "{failed:?}");
        assert_eq!(refused[0]["details"]["reason"], "channel_unavailable", "{failed:?}");
        assert!(!serde_json::to_string(&failed).unwrap().contains("not for the bot"));
        verify_audit(&app, &t.admin).await;
    }

    async fn a_task_form_decides_what_a_completion_may_set(app) {
        let t = app.team().await;
        let forms = format!("{}/workflow-forms", base(&t.ws));
        let approval: Value = serde_json::from_str(include_str!("../../../bots/workflows/examples/forms/approval.json")).unwrap();
        // A model naming a form nobody deployed is refused, naming it.
        let model = "process: expense\nsteps:\n  - start: s\n  - user_task: review\n    person: ${approver}\n    form: approval\n  - user_task: pay\n    person: ${approver}\n  - end: e\n";
        let r = app.post(&format!("{}/workflows", base(&t.ws)), Some(&t.admin.access), json!({"source": model})).await;
        r.expect_error(422, "invalid_model");
        assert!(r.body["error"]["message"].as_str().unwrap().contains("\"approval\""), "{}", r.body);
        // Forms: operators deploy, with every problem named; members read them.
        app.post(&forms, Some(&t.ann.access), approval.clone()).await.expect_error(403, "forbidden");
        let bad = app.post(&forms, Some(&t.admin.access), json!({"key": "approval", "schema": {
            "type": "object", "properties": {"x y": {"type": "string"}, "n": {"type": "money"}}, "required": ["z"]}})).await;
        bad.expect_error(422, "invalid_form");
        assert_eq!(bad.body["error"]["problems"].as_array().unwrap().len(), 3, "{}", bad.body);
        let made = app.post(&forms, Some(&t.admin.access), approval.clone()).await.expect(201).clone();
        assert_eq!(made["version"], 1);
        let listed = app.get(&forms, &t.ann.access).await.expect(200).clone();
        assert_eq!(listed["forms"][0]["schema"], approval["schema"], "{listed}");
        deploy(&app, &t.admin, &t.ws, model).await;

        let started = start(&app, &t.admin, &t.ws, "expense", json!({"approver": t.ann.user_id, "amount": 90})).await;
        let id = started["id"].as_str().unwrap().to_owned();
        let task = inbox(&app, &t.ann).await.into_iter().find(|t| t["element"] == "review").unwrap();
        assert_eq!(task["form"], approval["schema"], "{task}");
        let task = task["id"].as_str().unwrap().to_owned();
        // Version 2 requires a comment; the open task keeps version 1.
        let mut v2 = approval.clone();
        v2["schema"]["required"] = json!(["approved", "comment"]);
        assert_eq!(app.post(&forms, Some(&t.admin.access), v2).await.expect(201)["version"], 2);
        let again = inbox(&app, &t.ann).await.into_iter().find(|t| t["element"] == "review").unwrap();
        assert_eq!(again["form"], approval["schema"], "{again}");
        // Values the form does not take are refused, each named; nothing changes.
        let r = complete(&app, &t.ann, &task, json!({"approved": "yes", "approver": t.ann.user_id})).await;
        r.expect_error(422, "invalid_completion");
        let problems = r.body["error"]["problems"].to_string();
        assert!(problems.contains("approved must be true or false") && problems.contains("approver is not a field"), "{problems}");
        complete(&app, &t.ann, &task, json!({"comment": "fine"})).await.expect_error(422, "invalid_completion");
        complete(&app, &t.ann, &task, json!({"approved": true})).await.expect(200);
        let i = until(&app, &t.admin, &t.ws, &id, 15, |i| !open_tasks(i).is_empty()).await;
        let pay = open_tasks(&i)[0]["id"].as_str().unwrap().to_owned();
        assert_eq!(open_tasks(&i)[0]["form"], Value::Null);
        // A task without a form takes what its completer sets.
        complete(&app, &t.ann, &pay, json!({"paid_on": "2027-01-04"})).await.expect(200);
        let done = until(&app, &t.admin, &t.ws, &id, 15, |i| i["status"] == "completed").await;
        assert_eq!(done["variables"]["amount"], 90, "{done}");
        assert_eq!(done["variables"]["approved"], true, "{done}");
        assert_eq!(done["variables"]["paid_on"], "2027-01-04", "{done}");
    }

    async fn nobody_steers_the_workflow_bot_into_a_private_channel_they_are_not_in(app) {
        let t = app.team().await;
        let vault = crate::chat::channel(&app, &t.admin, &t.ws, "vault", "private").await;
        deploy(&app, &t.admin, &t.ws, "process: relay\nsteps:\n  - start: s\n  - send_task: say\n    channel: ${ch}\n    text: note from a process\n  - end: e\n").await;
        let bots = app.get(&format!("/api/v1/workspaces/{}/bots", t.ws), &t.admin.access).await.expect(200).clone();
        let bot = bots[0]["id"].as_str().unwrap().to_owned();
        // The bot was added to the private channel; Bo is not in it.
        app.post(&format!("/api/v1/channels/{vault}/members"), Some(&t.admin.access), json!({"user_id": bot})).await.expect(200);
        let by_bo = start(&app, &t.bo, &t.ws, "relay", json!({"ch": "vault"})).await;
        let by_bo = by_bo["id"].as_str().unwrap().to_owned();
        until(&app, &t.admin, &t.ws, &by_bo, 15, |i| i["status"] == "completed").await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let refused = loop {
            let found = app.audit_events(&t.admin.access).await.into_iter()
                .find(|e| e["action"] == "workflow.post" && e["target_id"] == by_bo.as_str());
            if let Some(e) = found {
                break e;
            }
            assert!(tokio::time::Instant::now() < deadline, "no post audited for Bo's instance");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!((&refused["outcome"], &refused["details"]["reason"]), (&json!("failed"), &json!("starter_not_in_channel")), "{refused}");
        // Its administrator, a member of the channel, may.
        start(&app, &t.admin, &t.ws, "relay", json!({"ch": vault})).await;
        let posted = wait_for_post(&app, &t.admin, &vault, "note from a process").await;
        assert_eq!(posted["author_id"], bot.as_str());
        let messages = app.get(&format!("/api/v1/channels/{vault}/messages"), &t.admin.access).await.expect(200).clone();
        assert_eq!(messages.as_array().unwrap().iter().filter(|m| m["text"] == "note from a process").count(), 1, "{messages}");
    }

    async fn a_task_notice_answers_its_task_from_chat_for_its_assignee_only(app) {
        let t = app.team().await;
        let approval: Value = serde_json::from_str(include_str!("../../../bots/workflows/examples/forms/approval.json")).unwrap();
        let ticket: Value = serde_json::from_str(include_str!("../../../bots/workflows/examples/forms/ticket_response.json")).unwrap();
        for form in [&approval, &ticket] {
            app.post(&format!("{}/workflow-forms", base(&t.ws)), Some(&t.admin.access), form.clone()).await.expect(201);
        }
        deploy(&app, &t.admin, &t.ws, "process: expense\nsteps:\n  - start: s\n  - user_task: review\n    name: Review the expense\n    person: ${approver}\n    form: approval\n  - exclusive: decided\n    branches:\n      - when: approved == true\n        goto: paid\n    default: file\n  - end: paid\n  - user_task: file\n    person: ${approver}\n  - user_task: answer\n    person: ${approver}\n    form: ticket_response\n  - end: refused\n").await;
        let bots = app.get(&format!("/api/v1/workspaces/{}/bots", t.ws), &t.admin.access).await.expect(200).clone();
        let bot = bots.as_array().unwrap().iter().find(|b| b["name"] == "Workflows").unwrap()["id"].as_str().unwrap().to_owned();
        let started = start(&app, &t.admin, &t.ws, "expense", json!({"approver": t.bo.user_id})).await;
        let id = started["id"].as_str().unwrap().to_owned();

        // Bo's notice carries Approve and Reject: the form asks only for a yes or no.
        let notice = dm_from(&app, &t.bo, &t.ws, &bot).await[0].clone();
        let message = notice["id"].as_str().unwrap().to_owned();
        assert!(notice["text"].as_str().unwrap().contains("Review the expense"), "{notice}");
        let buttons: Vec<Value> = notice["blocks"].as_array().unwrap().iter()
            .filter(|b| b["type"] == "actions").flat_map(|b| b["elements"].as_array().unwrap().clone()).collect();
        let ids: Vec<&str> = buttons.iter().map(|b| b["action_id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["approve", "reject"], "{notice}");
        let press = |who: &Session, action: &str| {
            let (who, action, message) = (who.access.clone(), action.to_owned(), message.clone());
            let app = &app;
            async move {
                app.post(&format!("/api/v1/messages/{message}/actions"), Some(&who),
                    json!({"block_id": "workflow_task", "action_id": action})).await
            }
        };
        // Nobody else can press it (they cannot read Bo's conversation), and a button the
        // message never had is refused.
        press(&t.ann, "approve").await.expect_error(404, "not_found");
        press(&t.bo, "done").await.expect_error(409, "no_such_action");
        // Bo rejects from chat: the task completes with approved = false, once.
        assert_eq!(press(&t.bo, "reject").await.status, 204);
        let after = until(&app, &t.admin, &t.ws, &id, 15, |i| !open_tasks(i).is_empty()).await;
        assert_eq!(after["variables"]["approved"], false, "{after}");
        assert_eq!(open_tasks(&after)[0]["element"], "file", "{after}");
        // The notice now says who answered and has no buttons left to press.
        let shown = dm_from(&app, &t.bo, &t.ws, &bot).await.into_iter().find(|m| m["id"] == message.as_str()).unwrap();
        assert!(shown["text"].as_str().unwrap().contains(&format!("Rejected by <@{}>", t.bo.user_id)), "{shown}");
        assert!(shown["blocks"].as_array().unwrap().iter().all(|b| b["type"] != "actions"), "{shown}");
        press(&t.bo, "approve").await.expect_error(409, "no_such_action");
        let completions: Vec<Value> = app.audit_events(&t.admin.access).await.into_iter()
            .filter(|e| e["action"] == "workflow.task_completed" && e["outcome"] == "allowed").collect();
        assert_eq!(completions.len(), 1, "{completions:?}");
        assert_eq!(completions[0]["actor_id"], t.bo.user_id.as_str(), "{completions:?}");

        // A task without a form is marked done from chat; one whose form asks more is not
        // answerable there.
        let file_notice = loop {
            let notices = dm_from(&app, &t.bo, &t.ws, &bot).await;
            if let Some(n) = notices.iter().find(|n| n["id"] != message.as_str()) {
                break n.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let file_message = file_notice["id"].as_str().unwrap().to_owned();
        assert!(file_notice["blocks"].to_string().contains("\"done\""), "{file_notice}");
        let r = app.post(&format!("/api/v1/messages/{file_message}/actions"), Some(&t.bo.access),
            json!({"block_id": "workflow_task", "action_id": "done"})).await;
        assert_eq!(r.status, 204, "{}", r.body);
        let answer = until(&app, &t.admin, &t.ws, &id, 15, |i| open_tasks(i).first().is_some_and(|t| t["element"] == "answer")).await;
        assert_eq!(answer["status"], "running");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let form_notice = loop {
            let notices = dm_from(&app, &t.bo, &t.ws, &bot).await;
            if notices.len() >= 3 {
                break notices.into_iter().find(|n| n["text"].as_str().unwrap_or("").contains("fill in its form")).unwrap();
            }
            assert!(tokio::time::Instant::now() < deadline, "{notices:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(form_notice["blocks"].as_array().unwrap().iter().all(|b| b["type"] != "actions"), "{form_notice}");
        verify_audit(&app, &t.admin).await;
    }

    async fn an_assignee_is_reminded_before_the_due_date_of_an_open_task_only(app) {
        let t = app.team().await;
        deploy(&app, &t.admin, &t.ws, "process: chase\nsteps:\n  - start: s\n  - user_task: sign\n    name: Sign the contract\n    person: ${who}\n    due: PT4S\n  - end: e\n").await;
        let bots = app.get(&format!("/api/v1/workspaces/{}/bots", t.ws), &t.admin.access).await.expect(200).clone();
        let bot = bots.as_array().unwrap().iter().find(|b| b["name"] == "Workflows").unwrap()["id"].as_str().unwrap().to_owned();
        // Ann answers at once: she is not reminded. Bo does not: he is, a second before.
        let answered = start(&app, &t.admin, &t.ws, "chase", json!({"who": t.ann.user_id})).await;
        let task = open_tasks(&answered)[0]["id"].as_str().unwrap().to_owned();
        complete(&app, &t.ann, &task, json!({})).await.expect(200);
        start(&app, &t.admin, &t.ws, "chase", json!({"who": t.bo.user_id})).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let told = loop {
            let told = dm_from(&app, &t.bo, &t.ws, &bot).await;
            if told.len() >= 2 {
                break told;
            }
            assert!(tokio::time::Instant::now() < deadline, "{told:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let reminder = told.iter().find(|m| m["text"].as_str().unwrap().starts_with("Reminder: *Sign the contract*"))
            .unwrap_or_else(|| panic!("{told:?}"));
        assert!(reminder["blocks"].to_string().contains("\"done\""), "{reminder}");
        // By the time Bo's reminder came, Ann's would have come too. (Her task may have closed
        // before its notice went out: then she has no message at all, and needs none.)
        tokio::time::sleep(Duration::from_millis(500)).await;
        let channels = app.get(&format!("/api/v1/workspaces/{}/channels", t.ws), &t.ann.access).await.expect(200).clone();
        for c in channels.as_array().unwrap().iter().filter(|c| c["kind"] == "direct") {
            let messages = app.get(&format!("/api/v1/channels/{}/messages", c["id"].as_str().unwrap()), &t.ann.access).await.expect(200).clone();
            let messages = messages.as_array().unwrap();
            assert!(messages.len() <= 1, "{messages:?}");
            assert!(messages.iter().all(|m| !m["text"].as_str().unwrap().starts_with("Reminder:")), "{messages:?}");
        }
    }

    async fn task_inboxes_are_live_over_the_hub_for_the_people_a_task_names(app) {
        let t = app.team().await;
        let desk = crate::chat::channel(&app, &t.admin, &t.ws, "desk", "public").await;
        app.post(&format!("/api/v1/channels/{desk}/join"), Some(&t.bo.access), json!({})).await.expect(200);
        deploy(&app, &t.admin, &t.ws, "process: intake\nsteps:\n  - start: s\n  - user_task: triage\n    channel: ${desk}\n  - user_task: answer\n    person: ${who}\n  - end: e\n").await;
        let mut bo = app.socket(&t.bo.access, None).await;
        let mut cy = app.socket(&t.cy.access, None).await;
        let started = start(&app, &t.admin, &t.ws, "intake", json!({"desk": desk, "who": t.cy.user_id})).await;
        let id = started["id"].as_str().unwrap().to_owned();
        // The channel's members hear of the task opening (Cy is not one).
        let opened = next_task(&mut bo).await;
        assert_eq!(opened["status"], "open", "{opened}");
        assert_eq!(opened["instance_id"], id.as_str(), "{opened}");
        let triage = opened["task_id"].as_str().unwrap().to_owned();
        complete(&app, &t.bo, &triage, json!({})).await.expect(200);
        let closed = next_task(&mut bo).await;
        assert_eq!((closed["task_id"].as_str(), closed["status"].as_str()), (Some(triage.as_str()), Some("completed")));
        // The next task is Cy's alone: she hears of it, and of its cancellation.
        let answer = next_task(&mut cy).await;
        assert_eq!(answer["status"], "open", "{answer}");
        app.post(&format!("{}/workflow-instances/{id}/cancel", base(&t.ws)), Some(&t.admin.access), json!({})).await.expect(200);
        let cancelled = next_task(&mut cy).await;
        assert_eq!((cancelled["task_id"].clone(), cancelled["status"].as_str()), (answer["task_id"].clone(), Some("cancelled")));
    }

    async fn an_operator_completes_a_task_whose_assignee_left_and_only_then(app) {
        let t = app.team().await;
        deploy(&app, &t.admin, &t.ws, "process: handover\nsteps:\n  - start: s\n  - user_task: finish\n    person: ${who}\n  - end: e\n").await;
        let started = start(&app, &t.admin, &t.ws, "handover", json!({"who": t.cy.user_id})).await;
        let id = started["id"].as_str().unwrap().to_owned();
        let task = open_tasks(&started)[0]["id"].as_str().unwrap().to_owned();
        // While Cy is a member, the task is hers alone.
        complete(&app, &t.admin, &task, json!({})).await.expect_error(403, "not_assignee");
        app.delete(&format!("/api/v1/workspaces/{}/members/{}", t.ws, t.cy.user_id), &t.admin.access).await.expect(204);
        // Once she left, an operator may finish it; a member still may not.
        complete(&app, &t.ann, &task, json!({})).await.expect_error(403, "not_assignee");
        complete(&app, &t.admin, &task, json!({"note": "Cy left"})).await.expect(200);
        let done = until(&app, &t.admin, &t.ws, &id, 15, |i| i["status"] == "completed").await;
        assert_eq!(done["tasks"][0]["closed_by"], t.admin.user_id.as_str(), "{done}");
    }

    async fn a_signal_reaches_every_waiting_instance_and_starts_the_processes_it_names(app) {
        let t = app.team().await;
        deploy(&app, &t.admin, &t.ws, "process: close_books\nsteps:\n  - start: s\n  - wait: closed\n    signal: quarter.closed\n  - end: e\n").await;
        deploy(&app, &t.admin, &t.ws, "process: report\nsteps:\n  - start: on_close\n    signal: quarter.closed\n  - end: e\n").await;
        let a = start(&app, &t.ann, &t.ws, "close_books", json!({})).await["id"].as_str().unwrap().to_owned();
        let b = start(&app, &t.bo, &t.ws, "close_books", json!({})).await["id"].as_str().unwrap().to_owned();
        let signals = format!("{}/workflow-signals", base(&t.ws));
        // A broadcast is an operator's: a member may not send one.
        app.post(&signals, Some(&t.ann.access), json!({"name": "quarter.closed"})).await.expect_error(403, "forbidden");
        app.post(&signals, Some(&t.admin.access), json!({"name": ""})).await.expect_error(422, "validation_failed");
        // Another signal reaches nobody.
        let none = app.post(&signals, Some(&t.admin.access), json!({"name": "year.closed"})).await.expect(200).clone();
        assert_eq!(none, json!({"delivered": [], "started": []}));
        let sent = app.post(&signals, Some(&t.admin.access), json!({"name": "quarter.closed", "variables": {"quarter": "Q4 closing"}})).await.expect(200).clone();
        let mut delivered: Vec<String> = sent["delivered"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
        delivered.sort();
        let mut expected = vec![a.clone(), b.clone()];
        expected.sort();
        assert_eq!(delivered, expected, "{sent}");
        assert_eq!(sent["started"].as_array().unwrap().len(), 1, "{sent}");
        for id in [&a, &b] {
            let done = until(&app, &t.admin, &t.ws, id, 15, |i| i["status"] == "completed").await;
            assert_eq!(done["variables"]["quarter"], "Q4 closing", "{done}");
        }
        let report = sent["started"][0].as_str().unwrap();
        let started = until(&app, &t.admin, &t.ws, report, 15, |i| i["status"] == "completed").await;
        assert_eq!(started["process_id"], "report");
        let audited: Vec<Value> = app.audit_events(&t.admin.access).await.into_iter().filter(|e| e["action"] == "workflow.signal").collect();
        assert_eq!(audited.len(), 2, "{audited:?}");
        assert!(!serde_json::to_string(&audited).unwrap().contains("Q4 closing"));
        verify_audit(&app, &t.admin).await;
    }

    async fn a_schedule_starts_the_latest_version_until_it_is_replaced(app) {
        let t = app.team().await;
        deploy(&app, &t.admin, &t.ws, "process: report\nsteps:\n  - start: tick\n    timer: R/PT1S\n  - end: e\n").await;
        let started = wait_for_instances(&app, &t.admin, &t.ws, "report", 2).await;
        assert!(started.iter().all(|i| i["status"] == "completed" && i["started_by"].is_null()), "{started:?}");
        // A new version without a timer start event ends the schedule.
        deploy(&app, &t.admin, &t.ws, "process: report\nsteps:\n  - start: s\n  - end: e\n").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = instances_of(&app, &t.admin, &t.ws, "report").await.len();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(instances_of(&app, &t.admin, &t.ws, "report").await.len(), before);
    }
}

/// The server binary, killed with SIGKILL while instances call a service, resumes every
/// instance after restart: none is lost, no step completes twice, and the service, which
/// deduplicates by idempotency key, acts once per instance.
async fn a_sigkill_during_a_load_of_instances_loses_none_and_repeats_no_step(backend: Backend) {
    use crate::durability::{json_post, start_with_env};
    let service = Service::default();
    let url = service.clone().start().await;
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _guard) = crate::durability::database(backend, dir.path()).await;
    let env = [("CONCORD_WORKFLOWS__ALLOWED_NETWORKS", "[\"127.0.0.1/32\"]")];
    let mut server = start_with_env(dir.path(), &database_url, &env);
    let client = reqwest::Client::new();
    let (access, ch) = server
        .admin_with_channel(&client, "admin@example.org", "Admin")
        .await;
    let ws = client
        .get(format!("{}/api/v1/channels/{ch}", server.base))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["workspace_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = client
        .get(format!("{}/api/v1/users/me", server.base))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let model = format!(
        "process: po\nsteps:\n  - start: s\n  - service_task: reserve\n    method: POST\n    url: {url}/reserve\n    body: {{item: \"${{item}}\"}}\n    outputs: {{reservation: response.body.reservation}}\n  - user_task: approve\n    person: ${{who}}\n  - end: e\n"
    );
    let (s, d) = json_post(
        &client,
        format!("{}/api/v1/workspaces/{ws}/workflows", server.base),
        Some(&access),
        json!({ "source": model }),
    )
    .await;
    assert_eq!(s, 201, "{d}");
    const N: usize = 60;
    let mut ids = Vec::new();
    for n in 0..N {
        let (s, i) = json_post(
            &client,
            format!(
                "{}/api/v1/workspaces/{ws}/workflows/po/instances",
                server.base
            ),
            Some(&access),
            json!({"variables": {"item": format!("item-{n}"), "who": me}}),
        )
        .await;
        assert_eq!(s, 201, "{i}");
        ids.push(i["id"].as_str().unwrap().to_owned());
        if n == N / 2 {
            // Mid-load, with calls in flight.
            server.child.kill().unwrap(); // SIGKILL
            server.child.wait().unwrap();
            server = start_with_env(dir.path(), &database_url, &env);
        }
    }
    // Every instance reaches its user task, whatever the kill interrupted.
    let get = |id: String| {
        let (client, access, base) = (client.clone(), access.clone(), server.base.clone());
        let ws = ws.clone();
        async move {
            client
                .get(format!(
                    "{base}/api/v1/workspaces/{ws}/workflow-instances/{id}"
                ))
                .bearer_auth(access)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for id in &ids {
        loop {
            let i = get(id.clone()).await;
            if open_tasks(&i).len() == 1 {
                let history = i["history"].as_array().unwrap();
                let reserved = history
                    .iter()
                    .filter(|s| s["element"] == "reserve" && s["event"]["type"] == "completed")
                    .count();
                assert_eq!(reserved, 1, "the call's step completed once: {i}");
                let steps: Vec<i64> = history
                    .iter()
                    .map(|s| s["step"].as_i64().unwrap())
                    .collect();
                assert_eq!(steps, (1..=steps.len() as i64).collect::<Vec<_>>());
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "instance {id} stuck: {i}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let keys: std::collections::HashSet<String> = service.keys().into_iter().collect();
    assert_eq!(keys.len(), N, "one idempotency key per instance");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

both_backends!(a_sigkill_during_a_load_of_instances_loses_none_and_repeats_no_step);

/// The workflow bot's post in `channel` about task `task`, once it satisfies `done`.
async fn channel_notice(
    app: &TestApp,
    who: &Session,
    channel: &str,
    task: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let messages = app
            .get(&format!("/api/v1/channels/{channel}/messages"), &who.access)
            .await
            .expect(200)
            .clone();
        let found = messages.as_array().and_then(|ms| {
            ms.iter()
                .find(|m| {
                    m["blocks"].to_string().contains(task)
                        || m["text"]
                            .as_str()
                            .is_some_and(|t| t.contains("New task for this channel"))
                })
                .cloned()
        });
        if let Some(m) = found.filter(|m| done(m)) {
            return m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no such notice of {task}: {messages}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The action ids of a message's buttons, in order.
fn buttons(message: &Value) -> Vec<String> {
    message["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .map(|e| e["action_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn press(
    app: &TestApp,
    who: &Session,
    message: &Value,
    action: &str,
) -> crate::harness::Reply {
    app.post(
        &format!(
            "/api/v1/messages/{}/actions",
            message["id"].as_str().unwrap()
        ),
        Some(&who.access),
        json!({"block_id": "workflow_task", "action_id": action}),
    )
    .await
}

async fn inbox_of(app: &TestApp, who: &Session, scope: &str) -> Vec<Value> {
    app.get(
        &format!("/api/v1/workflow-tasks?scope={scope}"),
        &who.access,
    )
    .await
    .expect(200)["tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn reassign(app: &TestApp, who: &Session, task: &str, body: Value) -> crate::harness::Reply {
    app.post(
        &format!("/api/v1/workflow-tasks/{task}/reassign"),
        Some(&who.access),
        body,
    )
    .await
}

/// Whether a sealed column holds `text` in the clear (it must not).
async fn stored_in_clear(app: &TestApp, table: &str, column: &str, text: &str) -> bool {
    let sql = match app.backend {
        Backend::Sqlite => format!("SELECT COUNT(*) FROM {table} WHERE instr({column}, '{text}') > 0"),
        Backend::Postgres => format!(
            "SELECT COUNT(*) FROM {table} WHERE position(convert_to('{text}', 'UTF8') in {column}) > 0"
        ),
    };
    app.scalar(&sql).await > 0
}

both_backends! {
    async fn a_channels_task_is_claimed_from_chat_handed_on_and_talked_about(app) {
        let t = app.team().await;
        let desk = crate::chat::channel(&app, &t.admin, &t.ws, "desk", "public").await;
        for who in [&t.ann, &t.bo] {
            app.post(&format!("/api/v1/channels/{desk}/join"), Some(&who.access), json!({})).await.expect(200);
        }
        let approval: Value = serde_json::from_str(include_str!("../../../bots/workflows/examples/forms/approval.json")).unwrap();
        app.post(&format!("{}/workflow-forms", base(&t.ws)), Some(&t.admin.access), approval).await.expect(201);
        deploy(&app, &t.admin, &t.ws, "process: refund\nname: Refunds\nsteps:\n  - start: s\n  - user_task: review\n    name: Review the refund\n    channel: desk\n    form: approval\n    due: PT1H\n  - end: e\n").await;
        let bots = app.get(&format!("/api/v1/workspaces/{}/bots", t.ws), &t.admin.access).await.expect(200).clone();
        let bot = bots.as_array().unwrap().iter().find(|b| b["name"] == "Workflows").unwrap()["id"].as_str().unwrap().to_owned();
        let mut ann_hears = app.socket(&t.ann.access, None).await;
        let started = start(&app, &t.admin, &t.ws, "refund", json!({})).await;
        let id = started["id"].as_str().unwrap().to_owned();
        assert_eq!((started["version"].as_i64(), started["name"].as_str()), (Some(1), Some("Refunds")), "{started}");
        let task = open_tasks(&started)[0].clone();
        let tid = task["id"].as_str().unwrap().to_owned();
        // Nobody holds it: it waits in the channel's queue, well before its due date.
        assert_eq!(task["queue"], json!({"kind": "channel", "id": desk}), "{task}");
        assert_eq!(task["sla"], "on_time", "{task}");
        assert!(inbox_of(&app, &t.ann, "queues").await.iter().any(|x| x["id"] == tid.as_str()));
        assert!(inbox_of(&app, &t.ann, "mine").await.is_empty());
        app.get("/api/v1/workflow-tasks?scope=everything", &t.ann.access).await.expect_error(400, "invalid_query");

        // The channel's notice offers Claim beside the answers; Ann claims it from chat.
        let notice = channel_notice(&app, &t.ann, &desk, &tid, |_| true).await;
        assert_eq!(notice["author_id"], bot.as_str());
        assert_eq!(buttons(&notice), ["claim", "approve", "reject"], "{notice}");
        assert_eq!(press(&app, &t.ann, &notice, "claim").await.status, 204);
        let mine = inbox_of(&app, &t.ann, "mine").await;
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_eq!((mine[0]["assignee"].as_str(), &mine[0]["queue"]), (Some(t.ann.user_id.as_str()), &Value::Null));
        assert!(inbox_of(&app, &t.bo, "queues").await.is_empty());
        let claimed_line = format!("Claimed by <@{}>.", t.ann.user_id);
        let notice = channel_notice(&app, &t.ann, &desk, &tid, |m| m["text"].as_str().unwrap().ends_with(&claimed_line)).await;
        assert_eq!(buttons(&notice), ["approve", "reject"], "{notice}");
        // Bo, in the channel, can no longer take it, answer it or hand it on.
        press(&app, &t.bo, &notice, "approve").await.expect_error(403, "not_assignee");
        reassign(&app, &t.bo, &tid, json!({"to": t.bo.user_id})).await.expect_error(403, "not_assignee");

        // Ann hands it on: not to Cy (not in the channel), to Bo, with a note.
        let candidates = app.get(&format!("/api/v1/workflow-tasks/{tid}/candidates"), &t.ann.access).await.expect(200).clone();
        // (The administrator made the channel, so is in it too.)
        let mut expected = vec![t.admin.user_id.clone(), t.bo.user_id.clone()];
        expected.sort();
        assert_eq!(candidates["people"], json!(expected), "{candidates}");
        reassign(&app, &t.ann, &tid, json!({"to": t.cy.user_id})).await.expect_error(422, "validation_failed");
        reassign(&app, &t.ann, &tid, json!({"to": t.ann.user_id})).await.expect_error(409, "already_assigned");
        reassign(&app, &t.ann, &tid, json!({"to": t.bo.user_id, "note": "x".repeat(4001)})).await.expect_error(422, "validation_failed");
        let handed = reassign(&app, &t.ann, &tid, json!({"to": t.bo.user_id, "note": "Bo knows this customer"})).await.expect(200).clone();
        assert_eq!(handed["assignee"], t.bo.user_id.as_str(), "{handed}");
        // Ann hears it left her; Bo is told by the workflow bot, with the note.
        loop {
            let changed = next_task(&mut ann_hears).await;
            if changed["status"] == "reassigned" {
                assert_eq!(changed["task_id"], tid.as_str());
                break;
            }
        }
        let told = dm_from(&app, &t.bo, &t.ws, &bot).await;
        assert!(told.iter().any(|m| m["text"].as_str().unwrap().contains("handed it to you: Bo knows this customer")), "{told:?}");
        // The channel's notice says so and no longer answers anything.
        let moved_line = format!("Reassigned to <@{}> by <@{}>.", t.bo.user_id, t.ann.user_id);
        let notice = channel_notice(&app, &t.ann, &desk, &tid, |m| m["text"].as_str().unwrap().ends_with(&moved_line)).await;
        assert!(buttons(&notice).is_empty(), "{notice}");
        press(&app, &t.ann, &notice, "approve").await.expect_error(409, "no_such_action");

        // The note is the first comment; those the task names read and add, others do not.
        let comments = format!("/api/v1/workflow-tasks/{tid}/comments");
        let read = app.get(&comments, &t.bo.access).await.expect(200).clone();
        assert_eq!(read["comments"].as_array().unwrap().len(), 1, "{read}");
        assert_eq!((read["comments"][0]["text"].as_str(), read["comments"][0]["author_id"].as_str()),
            (Some("Bo knows this customer"), Some(t.ann.user_id.as_str())));
        let mut bo_hears = app.socket(&t.bo.access, None).await;
        let added = app.post(&comments, Some(&t.ann.access), json!({"text": "  Finance agreed to the okapi refund  "})).await.expect(201).clone();
        assert_eq!(added["text"], "Finance agreed to the okapi refund");
        loop {
            let changed = next_task(&mut bo_hears).await;
            if changed["status"] == "commented" {
                break;
            }
        }
        app.post(&comments, Some(&t.bo.access), json!({"text": "   "})).await.expect_error(422, "validation_failed");
        app.post(&comments, Some(&t.bo.access), json!({"text": "y".repeat(4001)})).await.expect_error(422, "validation_failed");
        app.get(&comments, &t.cy.access).await.expect_error(403, "not_a_participant");
        app.post(&comments, Some(&t.cy.access), json!({"text": "let me in"})).await.expect_error(403, "not_a_participant");
        let all = app.get(&comments, &t.admin.access).await.expect(200).clone();
        assert_eq!(all["comments"].as_array().unwrap().len(), 2, "{all}");
        assert!(!stored_in_clear(&app, "workflow_task_comments", "body", "okapi refund").await);

        // An operator hands it to anyone active in the workspace; Cy approves from her notice.
        let anyone = app.get(&format!("/api/v1/workflow-tasks/{tid}/candidates"), &t.admin.access).await.expect(200).clone();
        let anyone: Vec<&str> = anyone["people"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
        assert!(anyone.contains(&t.cy.user_id.as_str()) && anyone.contains(&t.ann.user_id.as_str()) && !anyone.contains(&bot.as_str()), "{anyone:?}");
        reassign(&app, &t.admin, &tid, json!({"to": t.cy.user_id})).await.expect(200);
        let cy_notice = dm_from(&app, &t.cy, &t.ws, &bot).await[0].clone();
        assert_eq!(buttons(&cy_notice), ["approve", "reject"], "{cy_notice}");
        assert_eq!(press(&app, &t.cy, &cy_notice, "approve").await.status, 204);
        let done = until(&app, &t.admin, &t.ws, &id, 15, |i| i["status"] == "completed").await;
        assert_eq!(done["variables"]["approved"], true, "{done}");
        // Bo's notice from when it was his says it moved on.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let bos = dm_from(&app, &t.bo, &t.ws, &bot).await;
            if bos.iter().all(|m| buttons(m).is_empty()) {
                assert!(bos[0]["text"].as_str().unwrap().contains("Reassigned to"), "{bos:?}");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{bos:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // What the router learns from counts the task as a correction: Ann first, Cy finished.
        assert_eq!(app.scalar("SELECT COUNT(*) FROM workflow_tasks WHERE first_assignee IS NOT NULL AND first_assignee <> closed_by").await, 1);
        let events = app.audit_events(&t.admin.access).await;
        let of = |action: &str, outcome: &str| events.iter().filter(|e| e["action"] == action && e["outcome"] == outcome).count();
        assert_eq!((of("workflow.task_reassigned", "allowed"), of("workflow.task_reassigned", "denied")), (2, 1));
        assert_eq!((of("workflow.task_commented", "allowed"), of("workflow.task_commented", "denied")), (1, 1));
        assert_eq!(of("workflow.task_claimed", "allowed"), 1);
        assert!(!serde_json::to_string(&events).unwrap().contains("okapi refund"));
        verify_audit(&app, &t.admin).await;
    }

    async fn a_task_closed_elsewhere_updates_its_notice_and_shows_its_sla_state(app) {
        let t = app.team().await;
        deploy(&app, &t.admin, &t.ws, "process: chores\nsteps:\n  - start: s\n  - user_task: sweep\n    name: Sweep the floor\n    person: ${who}\n    due: PT1S\n  - user_task: mop\n    person: ${who}\n  - end: e\n").await;
        let bots = app.get(&format!("/api/v1/workspaces/{}/bots", t.ws), &t.admin.access).await.expect(200).clone();
        let bot = bots.as_array().unwrap().iter().find(|b| b["name"] == "Workflows").unwrap()["id"].as_str().unwrap().to_owned();
        let started = start(&app, &t.admin, &t.ws, "chores", json!({"who": t.bo.user_id})).await;
        let id = started["id"].as_str().unwrap().to_owned();
        let sweep = open_tasks(&started)[0]["id"].as_str().unwrap().to_owned();
        // A task given to one person without routing has nothing to claim.
        app.post(&format!("/api/v1/workflow-tasks/{sweep}/claim"), Some(&t.bo.access), json!({})).await.expect_error(409, "not_claimable");
        // Given to Bo alone, it is his to hand to anyone active in the workspace.
        let anyone = app.get(&format!("/api/v1/workflow-tasks/{sweep}/candidates"), &t.bo.access).await.expect(200).clone();
        let anyone: Vec<&str> = anyone["people"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
        assert!(anyone.contains(&t.cy.user_id.as_str()) && anyone.contains(&t.ann.user_id.as_str()) && !anyone.contains(&t.bo.user_id.as_str()), "{anyone:?}");
        app.get(&format!("/api/v1/workflow-tasks/{sweep}/candidates"), &t.cy.access).await.expect_error(403, "not_a_participant");
        let notice = dm_from(&app, &t.bo, &t.ws, &bot).await[0].clone();
        assert_eq!(buttons(&notice), ["done"], "{notice}");
        // Past its due date it is overdue; completed from the inbox, its notice says so.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mine = inbox_of(&app, &t.bo, "mine").await;
            if mine.iter().any(|x| x["id"] == sweep.as_str() && x["sla"] == "overdue") {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{mine:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        complete(&app, &t.bo, &sweep, json!({})).await.expect(200);
        let line = format!("Marked done by <@{}>.", t.bo.user_id);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let shown = dm_from(&app, &t.bo, &t.ws, &bot).await;
            let first = shown.iter().find(|m| m["id"] == notice["id"]).unwrap().clone();
            if first["text"].as_str().unwrap().ends_with(&line) {
                assert!(buttons(&first).is_empty(), "{first}");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{first}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        press(&app, &t.bo, &notice, "done").await.expect_error(409, "no_such_action");
        let shown = until(&app, &t.admin, &t.ws, &id, 15, |i| !open_tasks(i).is_empty()).await;
        let closed = shown["tasks"].as_array().unwrap().iter().find(|x| x["id"] == sweep.as_str()).unwrap().clone();
        assert_eq!(closed["sla"], "overdue", "{closed}");
        assert_eq!(open_tasks(&shown)[0]["sla"], Value::Null);
        // A cancelled instance's task notice says it was cancelled.
        let mop = open_tasks(&shown)[0]["id"].as_str().unwrap().to_owned();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let mop_notice = loop {
            let shown = dm_from(&app, &t.bo, &t.ws, &bot).await;
            if let Some(m) = shown.iter().find(|m| m["blocks"].to_string().contains(&mop)) {
                break m.clone();
            }
            assert!(tokio::time::Instant::now() < deadline, "{shown:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        app.post(&format!("{}/workflow-instances/{id}/cancel", base(&t.ws)), Some(&t.admin.access), json!({})).await.expect(200);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let shown = dm_from(&app, &t.bo, &t.ws, &bot).await;
            let m = shown.iter().find(|m| m["id"] == mop_notice["id"]).unwrap().clone();
            if m["text"].as_str().unwrap().ends_with("This task was cancelled.") {
                assert!(buttons(&m).is_empty(), "{m}");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{m}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn a_persons_task_comments_are_exported_with_their_data_and_erased_with_their_content(app) {
        let t = app.team().await;
        app.put(&format!("/api/v1/workspaces/{}/policy", t.ws), &t.admin.access,
            json!({"data_subject": {"erasure": "delete"}})).await.expect(200);
        deploy(&app, &t.admin, &t.ws, "process: ask\nsteps:\n  - start: s\n  - user_task: answer\n    person: ${who}\n  - end: e\n").await;
        let started = start(&app, &t.admin, &t.ws, "ask", json!({"who": t.bo.user_id})).await;
        let task = open_tasks(&started)[0]["id"].as_str().unwrap().to_owned();
        let comments = format!("/api/v1/workflow-tasks/{task}/comments");
        app.post(&comments, Some(&t.bo.access), json!({"text": "quokka says hello"})).await.expect(201);
        app.post(&comments, Some(&t.admin.access), json!({"text": "the admin answers"})).await.expect(201);
        // Bo's export holds his comment and not the administrator's.
        let r = app.client.get(format!("{}/api/v1/users/{}/data-export", app.base, t.bo.user_id))
            .bearer_auth(&t.bo.access).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let entries = crate::subject_access::unzip(&r.bytes().await.unwrap());
        let exported = String::from_utf8_lossy(entries.get("data/workflow_task_comments.json").expect("the comments are exported")).into_owned();
        assert!(exported.contains("quokka says hello") && !exported.contains("the admin answers"), "{exported}");
        // Erased where the workspace deletes a person's content: his comment goes, the other stays.
        app.create_user(&t.admin, "officer@example.org", "Officer").await;
        let officer = app.login("officer@example.org", crate::harness::PASSWORD).await;
        app.put(&format!("/api/v1/users/{}/system-role", officer.user_id), &t.admin.access,
            json!({"role": "compliance_officer"})).await.expect(200);
        let path = format!("/api/v1/users/{}/erasure", t.bo.user_id);
        app.post(&path, Some(&officer.access), json!({"reason": "Art. 17 request"})).await.expect(202);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let now = app.get(&path, &officer.access).await.expect(200).clone();
            if now["status"] != "running" {
                let destroyed: i64 = now["report"]["workspaces"].as_array().unwrap().iter()
                    .map(|w| w["comments_destroyed"].as_i64().unwrap_or(0)).sum();
                assert_eq!(destroyed, 1, "{now}");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{now}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let left = app.get(&comments, &t.admin.access).await.expect(200).clone();
        assert_eq!(left["comments"].as_array().unwrap().len(), 1, "{left}");
        assert_eq!(left["comments"][0]["text"], "the admin answers");
    }
}
