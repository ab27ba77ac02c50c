//! Process mining: two processes run a few hundred instances through the API (an approval
//! whose gateway takes two paths, a three-step fulfilment, one instance cancelled, one task
//! completed by an operator after its assignee left); their history exports as XES, OCEL 2.0
//! JSON and CSV, and the mining view finds the paths taken, the directly-follows graph and
//! the deviations. Real PM4Py (`tests/mining/.venv`, installed by `tests/run`) reads the XES
//! and OCEL files and discovers the same graph.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::harness::{both_backends, Backend, Session, TestApp};

const APPROVAL: &str = "process: approval
name: Approval
steps:
  - start: asked
  - user_task: review
    name: Review request
    person: ${approver}
  - exclusive: approved
    name: Approved?
    branches:
      - when: approved == true
        goto: publish
    default: tell_author
  - user_task: publish
    name: Publish
    person: ${approver}
  - end: published
  - user_task: tell_author
    name: Tell the author
    person: ${approver}
  - end: rejected
";

const FULFILMENT: &str = "process: fulfilment
name: Order fulfilment
steps:
  - start: placed
  - user_task: pick
    name: Pick items
    person: ${clerk}
  - user_task: pack
    name: Pack parcel
    person: ${clerk}
  - user_task: ship
    name: Ship parcel
    person: ${clerk}
  - end: shipped
";

const APPROVALS: usize = 100;
const APPROVED: usize = 70;
const ORDERS: usize = 100;

fn base(ws: &str) -> String {
    format!("/api/v1/workspaces/{ws}")
}

/// What the scenario did, to compare what is mined with.
struct Story {
    ws: String,
    admin: Session,
    ann: Session,
    cancelled: String,
    reassigned: String,
}

/// Deploys both processes and runs every instance to its end: approvals (the first
/// `APPROVED` approved, the rest rejected; one of the approved reviewed by Bo, who then leaves
/// the workspace, so the owner completes his tasks), and orders (one cancelled while it is
/// being packed).
async fn run_scenario(app: &TestApp) -> Story {
    let t = app.team().await;
    let ws = t.ws.clone();
    for source in [APPROVAL, FULFILMENT] {
        app.post(
            &format!("{}/workflows", base(&ws)),
            Some(&t.admin.access),
            json!({ "source": source }),
        )
        .await
        .expect(201);
    }
    // Starts, a few at a time.
    let mut starts = Vec::new();
    for k in 0..APPROVALS {
        let approver = if k == 0 {
            &t.bo.user_id
        } else {
            &t.ann.user_id
        };
        starts.push((
            "approval",
            json!({"approver": approver, "order_id": format!("O-{}", k % 50)}),
        ));
    }
    for k in 0..ORDERS {
        starts.push((
            "fulfilment",
            json!({"clerk": t.ann.user_id, "order_id": format!("O-{k}"), "invoice_id": format!("I-{k}")}),
        ));
    }
    let started: Vec<(String, String)> = futures::stream::iter(starts)
        .map(|(process, vars)| {
            let admin = t.admin.access.clone();
            let ws = ws.clone();
            async move {
                let i = app
                    .post(
                        &format!("{}/workflows/{process}/instances", base(&ws)),
                        Some(&admin),
                        json!({ "variables": vars }),
                    )
                    .await
                    .expect(201)
                    .clone();
                (process.to_owned(), i["id"].as_str().unwrap().to_owned())
            }
        })
        .buffered(8)
        .collect()
        .await;
    let approvals: Vec<&String> = started
        .iter()
        .filter(|(p, _)| p == "approval")
        .map(|(_, id)| id)
        .collect();
    let approved: BTreeSet<String> = approvals
        .iter()
        .take(APPROVED)
        .map(|s| (*s).clone())
        .collect();
    let reassigned = approvals[0].clone();
    let cancelled = started
        .iter()
        .rfind(|(p, _)| p == "fulfilment")
        .map(|(_, id)| id.clone())
        .unwrap();

    // Ann empties her inbox until only the order to cancel waits on her.
    loop {
        let tasks = app
            .get("/api/v1/workflow-tasks?limit=500", &t.ann.access)
            .await
            .expect(200)["tasks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let todo: Vec<Value> = tasks
            .into_iter()
            .filter(|task| {
                !(task["instance_id"] == cancelled.as_str() && task["element"] == "pack")
            })
            .collect();
        if todo.is_empty() {
            break;
        }
        futures::stream::iter(todo)
            .map(|task| {
                let ann = t.ann.access.clone();
                let vars = if task["element"] == "review" {
                    json!({"approved": approved.contains(task["instance_id"].as_str().unwrap())})
                } else {
                    json!({})
                };
                async move {
                    app.post(
                        &format!(
                            "/api/v1/workflow-tasks/{}/complete",
                            task["id"].as_str().unwrap()
                        ),
                        Some(&ann),
                        json!({ "variables": vars }),
                    )
                    .await
                    .expect(200);
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<()>>()
            .await;
    }
    app.post(
        &format!("{}/workflow-instances/{cancelled}/cancel", base(&ws)),
        Some(&t.admin.access),
        json!({}),
    )
    .await
    .expect(200);

    // Bo leaves before reviewing; the owner completes what nobody else can.
    app.delete(
        &format!("{}/members/{}", base(&ws), t.bo.user_id),
        &t.admin.access,
    )
    .await
    .expect(204);
    for _ in 0..2 {
        let i = app
            .get(
                &format!("{}/workflow-instances/{reassigned}", base(&ws)),
                &t.admin.access,
            )
            .await
            .expect(200)
            .clone();
        let open = i["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|task| task["status"] == "open")
            .cloned()
            .unwrap_or_else(|| panic!("an open task: {i}"));
        app.post(
            &format!(
                "/api/v1/workflow-tasks/{}/complete",
                open["id"].as_str().unwrap()
            ),
            Some(&t.admin.access),
            json!({"variables": {"approved": true}}),
        )
        .await
        .expect(200);
    }
    let done = app
        .get(
            &format!(
                "{}/workflow-instances?status=completed&limit=500",
                base(&ws)
            ),
            &t.admin.access,
        )
        .await
        .expect(200)["instances"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        done,
        APPROVALS + ORDERS - 1,
        "every instance but the cancelled one completed"
    );
    Story {
        ws,
        admin: t.admin,
        ann: t.ann,
        cancelled,
        reassigned,
    }
}

/// A log download: status, content type, disposition and body.
async fn download(app: &TestApp, token: &str, path: &str) -> (u16, String, String, String) {
    let resp = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let header = |h: &str| {
        resp.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (ct, cd) = (header("content-type"), header("content-disposition"));
    (status, ct, cd, resp.text().await.unwrap())
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// The mining view of a process, checked against what the scenario did.
async fn check_mining(app: &TestApp, s: &Story) {
    let m = app
        .get(
            &format!("{}/workflows/approval/mining", base(&s.ws)),
            &s.admin.access,
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(m["process_id"], "approval");
    assert_eq!(m["instances"], APPROVALS as u64, "{m}");
    let variants = m["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 2, "{m}");
    assert_eq!(
        names(&variants[0]["activities"]),
        ["Review request", "Publish"]
    );
    assert_eq!(variants[0]["count"], APPROVED as u64);
    assert!((variants[0]["share"].as_f64().unwrap() - 0.7).abs() < 1e-9);
    assert!(variants[0]["median_duration_ms"].as_i64().unwrap() >= 0);
    assert!(
        variants[0]["p90_duration_ms"].as_i64().unwrap()
            >= variants[0]["median_duration_ms"].as_i64().unwrap()
    );
    assert_eq!(variants[0]["instance_ids"].as_array().unwrap().len(), 20);
    assert_eq!(
        names(&variants[1]["activities"]),
        ["Review request", "Tell the author"]
    );
    assert_eq!(variants[1]["count"], (APPROVALS - APPROVED) as u64);
    let edges: BTreeMap<(String, String), u64> = m["dfg"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(e["median_ms"].as_i64().unwrap() >= 0, "{e}");
            (
                (
                    e["from"].as_str().unwrap().to_owned(),
                    e["to"].as_str().unwrap().to_owned(),
                ),
                e["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let edge = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        edges,
        BTreeMap::from([
            (edge("Review request", "Publish"), APPROVED as u64),
            (
                edge("Review request", "Tell the author"),
                (APPROVALS - APPROVED) as u64
            ),
        ])
    );
    let nodes: BTreeMap<String, (String, u64)> = m["dfg"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["activity"].as_str().unwrap().to_owned(),
                (
                    n["element"].as_str().unwrap().to_owned(),
                    n["count"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(
        nodes["Review request"],
        ("review".to_owned(), APPROVALS as u64)
    );
    assert_eq!(nodes["Tell the author"].1, (APPROVALS - APPROVED) as u64);
    assert_eq!(
        m["dfg"]["starts"],
        json!([{"activity": "Review request", "count": APPROVALS}])
    );
    assert_eq!(
        m["dfg"]["ends"][0],
        json!({"activity": "Publish", "count": APPROVED})
    );
    // The review completed by the owner after Bo left is the approval's one deviation.
    assert_eq!(m["deviations_total"], 1, "{m}");
    let d = &m["deviations"][0];
    assert_eq!(d["instance_id"], s.reassigned.as_str());
    assert_eq!(d["kinds"], json!(["reassigned"]));
    assert!(
        d["detail"].as_str().unwrap().contains("Review request"),
        "{d}"
    );

    let m = app
        .get(
            &format!("{}/workflows/fulfilment/mining", base(&s.ws)),
            &s.admin.access,
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(m["instances"], ORDERS as u64);
    let variants = m["variants"].as_array().unwrap();
    assert_eq!(
        names(&variants[0]["activities"]),
        ["Pick items", "Pack parcel", "Ship parcel"]
    );
    assert_eq!(variants[0]["count"], (ORDERS - 1) as u64);
    assert_eq!(names(&variants[1]["activities"]), ["Pick items"]);
    assert_eq!(variants[1]["count"], 1);
    assert_eq!(variants[1]["instance_ids"], json!([s.cancelled]));
    let edges: Vec<(String, String, u64)> = m["dfg"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap().into(),
                e["to"].as_str().unwrap().into(),
                e["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        edges,
        [
            (
                "Pack parcel".into(),
                "Ship parcel".into(),
                (ORDERS - 1) as u64
            ),
            (
                "Pick items".into(),
                "Pack parcel".into(),
                (ORDERS - 1) as u64
            ),
        ]
    );
    assert_eq!(m["deviations_total"], 1, "{m}");
    assert_eq!(m["deviations"][0]["instance_id"], s.cancelled.as_str());
    assert_eq!(m["deviations"][0]["kinds"], json!(["cancelled"]));
    assert_eq!(m["deviations"][0]["status"], "cancelled");

    // A range: nothing started in the future, everything since an hour ago.
    let later = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let earlier = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let m = app
        .get(
            &format!("{}/workflows/fulfilment/mining?from={later}", base(&s.ws)),
            &s.admin.access,
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(
        (
            m["instances"].as_u64(),
            m["variants"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0)),
        "{m}"
    );
    let m = app
        .get(
            &format!(
                "{}/workflows/fulfilment/mining?from={earlier}&to={later}",
                base(&s.ws)
            ),
            &s.admin.access,
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(m["instances"], ORDERS as u64);

    // Refusals.
    app.get(
        &format!("{}/workflows/fulfilment/mining", base(&s.ws)),
        &s.ann.access,
    )
    .await
    .expect_error(403, "forbidden");
    app.get(
        &format!("{}/workflows/nope/mining", base(&s.ws)),
        &s.admin.access,
    )
    .await
    .expect_error(404, "not_found");
    app.get(
        &format!("{}/workflows/fulfilment/mining?from=yesterday", base(&s.ws)),
        &s.admin.access,
    )
    .await
    .expect_error(400, "invalid_time");
    app.get(
        &format!(
            "{}/workflows/fulfilment/mining?from={later}&to={earlier}",
            base(&s.ws)
        ),
        &s.admin.access,
    )
    .await
    .expect_error(400, "invalid_time");
}

/// The CSV log: a row per event, the completer as the resource; refusals.
async fn check_csv_and_refusals(app: &TestApp, s: &Story) -> String {
    let path = format!("{}/workflow-log?format=csv", base(&s.ws));
    let (status, ct, cd, csv) = download(app, &s.admin.access, &path).await;
    assert_eq!(status, 200, "{csv}");
    assert_eq!(ct, "text/csv; charset=utf-8");
    assert!(
        cd.starts_with("attachment; filename=\"workflow-log-") && cd.ends_with(".csv\""),
        "{cd}"
    );
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("case_id,process_id,version,activity,lifecycle,timestamp,resource,element")
    );
    let rows: Vec<Vec<String>> = lines
        .map(|l| {
            l.split("\",\"")
                .map(|f| f.trim_matches('"').to_owned())
                .collect()
        })
        .collect();
    // Each activity starts and completes, but the cancelled order's packing, which aborts.
    let activities = APPROVALS * 2 + (ORDERS - 1) * 3 + 2;
    assert_eq!(rows.len(), activities * 2, "{csv}");
    let aborted: Vec<&Vec<String>> = rows.iter().filter(|r| r[4] == "ate_abort").collect();
    assert_eq!(aborted.len(), 1);
    assert_eq!(
        (aborted[0][0].as_str(), aborted[0][3].as_str()),
        (s.cancelled.as_str(), "Pack parcel")
    );
    for r in &rows {
        assert_eq!(r.len(), 8, "{r:?}");
        assert_eq!(r[2], "1");
        match (r[4].as_str(), r[0] == s.reassigned) {
            ("complete", false) => assert_eq!(r[6], s.ann.user_id, "{r:?}"),
            ("complete", true) => assert_eq!(r[6], s.admin.user_id, "{r:?}"),
            _ => assert_eq!(r[6], "", "{r:?}"),
        }
        assert!(chrono::DateTime::parse_from_rfc3339(&r[5]).is_ok(), "{r:?}");
    }

    // A member may not export; bad parameters are refused with their codes.
    let log = |q: &str| format!("{}/workflow-log?{q}", base(&s.ws));
    app.get(&log("format=csv"), &s.ann.access)
        .await
        .expect_error(403, "forbidden");
    app.get(&log("format=pdf"), &s.admin.access)
        .await
        .expect_error(400, "invalid_format");
    app.get(&log("from=last-week"), &s.admin.access)
        .await
        .expect_error(400, "invalid_time");
    app.get(&log("process=approval&process=nope"), &s.admin.access)
        .await
        .expect_error(404, "not_found");
    app.get(&log("format=xes&objects=order_id:order"), &s.admin.access)
        .await
        .expect_error(400, "invalid_objects");
    app.get(&log("format=ocel&objects=order_id"), &s.admin.access)
        .await
        .expect_error(400, "invalid_objects");
    app.get(&log("limit=5"), &s.admin.access)
        .await
        .expect_error(400, "invalid_query");

    // Each export is audited with its format and counts.
    let audited: Vec<Value> = app
        .audit_events(&s.admin.access)
        .await
        .into_iter()
        .filter(|e| e["action"] == "workflow.log_exported")
        .collect();
    assert_eq!(audited.len(), 1, "refusals export nothing");
    assert_eq!(audited[0]["details"]["format"], "csv");
    assert_eq!(
        audited[0]["details"]["instances"],
        (APPROVALS + ORDERS) as u64
    );
    assert_eq!(audited[0]["workspace_id"], s.ws.as_str());
    csv
}

both_backends! {
    async fn process_mining_finds_the_paths_taken_and_exports_the_log(app) {
        let s = run_scenario(&app).await;
        check_mining(&app, &s).await;
        check_csv_and_refusals(&app, &s).await;
        // XES names the same traces on either backend.
        let (status, ct, _, xes) = download(&app, &s.admin.access, &format!("{}/workflow-log?process=fulfilment", base(&s.ws))).await;
        assert_eq!((status, ct.as_str()), (200, "application/xml; charset=utf-8"));
        assert_eq!(xes.matches("<trace>").count(), ORDERS);
        assert_eq!(xes.matches("<event>").count(), ((ORDERS - 1) * 3 + 2) * 2);
        assert!(xes.ends_with("</log>\n"));
    }
}

/// The PM4Py in `tests/mining/.venv`, running `check.py` on the given files.
fn pm4py(args: &[(&str, &Path)]) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/mining");
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "PM4Py is not installed: run ./tests/run (its ensure_pm4py makes tests/mining/.venv)"
    );
    let mut cmd = std::process::Command::new(python);
    cmd.arg(root.join("check.py"));
    for (flag, file) in args {
        cmd.arg(flag).arg(file);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "check.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check.py printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// PM4Py reads the XES export and discovers the models' steps in their order, and reads the
/// OCEL export with the objects its variables name; the command line writes the same log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pm4py_reads_the_xes_and_ocel_exports() {
    let app = crate::harness::spawn_app(Backend::Sqlite).await;
    let s = run_scenario(&app).await;
    let dir = tempfile::tempdir().unwrap();

    let (status, _, cd, xes) = download(
        &app,
        &s.admin.access,
        &format!("{}/workflow-log?format=xes", base(&s.ws)),
    )
    .await;
    assert_eq!(status, 200, "{xes}");
    assert!(cd.ends_with(".xes\""), "{cd}");
    let xes_file = dir.path().join("log.xes");
    std::fs::write(&xes_file, &xes).unwrap();
    let objects = "order_id:order,invoice_id:invoice";
    let (status, ct, cd, ocel) = download(
        &app,
        &s.admin.access,
        &format!("{}/workflow-log?format=ocel&objects={objects}", base(&s.ws)),
    )
    .await;
    assert_eq!((status, ct.as_str()), (200, "application/json"), "{ocel}");
    assert!(cd.ends_with(".jsonocel\""), "{cd}");
    let ocel_file = dir.path().join("log.jsonocel");
    std::fs::write(&ocel_file, &ocel).unwrap();

    let found = pm4py(&[("--xes", &xes_file), ("--ocel", &ocel_file)]);
    let x = &found["xes"];
    assert_eq!(found["pm4py"], "2.7.23.11");
    assert_eq!(x["traces"], (APPROVALS + ORDERS) as u64, "{x}");
    assert_eq!(x["transitions"], json!(["ate_abort", "complete", "start"]));
    assert_eq!(
        names(&x["activities"]),
        [
            "Pack parcel",
            "Pick items",
            "Publish",
            "Review request",
            "Ship parcel",
            "Tell the author"
        ]
    );
    let edges: HashMap<(String, String), u64> = x["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                (
                    e["from"].as_str().unwrap().into(),
                    e["to"].as_str().unwrap().into(),
                ),
                e["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let edge = |a: &str, b: &str| edges.get(&(a.to_owned(), b.to_owned())).copied();
    // The models' steps in their order...
    assert_eq!(
        edge("Review request", "Publish"),
        Some(APPROVED as u64),
        "{x}"
    );
    assert_eq!(
        edge("Review request", "Tell the author"),
        Some((APPROVALS - APPROVED) as u64)
    );
    assert_eq!(edge("Pick items", "Pack parcel"), Some((ORDERS - 1) as u64));
    assert_eq!(
        edge("Pack parcel", "Ship parcel"),
        Some((ORDERS - 1) as u64)
    );
    // ...and nothing the models do not allow.
    assert_eq!(edges.len(), 4, "{x}");
    for (a, b) in [
        ("Publish", "Tell the author"),
        ("Tell the author", "Publish"),
        ("Pick items", "Ship parcel"),
        ("Ship parcel", "Pick items"),
        ("Publish", "Pick items"),
    ] {
        assert_eq!(edge(a, b), None, "{a} -> {b} in {x}");
    }
    assert_eq!(
        x["starts"],
        json!({"Pick items": ORDERS, "Review request": APPROVALS})
    );
    assert_eq!(
        x["ends"],
        json!({"Pick items": 1, "Publish": APPROVED, "Ship parcel": ORDERS - 1, "Tell the author": APPROVALS - APPROVED})
    );
    assert_eq!(
        x["trace_attributes"],
        json!([
            "case:concept:name",
            "case:process_id",
            "case:status",
            "case:version"
        ])
    );
    let completions = APPROVALS * 2 + (ORDERS - 1) * 3 + 1;
    assert_eq!(
        x["resources"], completions as u64,
        "every completion names its completer"
    );

    // OCEL: every instance an object of its process's type, orders shared across processes.
    let o = &found["ocel"];
    assert_eq!(o["events"], completions as u64, "{o}");
    assert_eq!(
        o["object_types"],
        json!(["approval", "fulfilment", "invoice", "order"])
    );
    assert_eq!(
        o["objects_per_type"],
        json!({"approval": APPROVALS, "fulfilment": ORDERS, "invoice": ORDERS, "order": ORDERS})
    );
    assert_eq!(
        o["relations_per_qualifier"],
        json!({"case": completions, "invoice_id": (ORDERS - 1) * 3 + 1, "order_id": completions})
    );
    assert_eq!(o["o2o"], (APPROVALS + ORDERS * 2) as u64);
    // An order both an approval and a fulfilment touched links their events.
    let doc: Value = serde_json::from_str(&ocel).unwrap();
    let mut kinds_of_o3: BTreeSet<String> = BTreeSet::new();
    let types: HashMap<String, String> = doc["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap().to_owned(),
                o["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for e in doc["events"].as_array().unwrap() {
        let rel = e["relationships"].as_array().unwrap();
        if rel.iter().any(|r| r["objectId"] == "order:O-3") {
            let case = rel.iter().find(|r| r["qualifier"] == "case").unwrap()["objectId"]
                .as_str()
                .unwrap();
            kinds_of_o3.insert(types[case].clone());
        }
    }
    assert_eq!(
        kinds_of_o3,
        BTreeSet::from(["approval".to_owned(), "fulfilment".to_owned()])
    );

    // The command line writes the same log; a bad format is one line on stderr.
    let out_file = dir.path().join("cli.csv");
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
            .args(app.cli_args())
            .args(["workflows", "log", "--workspace", &s.ws])
            .args(args)
            .output()
            .unwrap()
    };
    let out = cli(&[
        "--format",
        "csv",
        "--process",
        "approval",
        "--process",
        "fulfilment",
        "--output",
        out_file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, _, _, csv) = download(
        &app,
        &s.admin.access,
        &format!("{}/workflow-log?format=csv", base(&s.ws)),
    )
    .await;
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), csv);
    let out = cli(&["--format", "xes"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), xes);
    let out = cli(&["--format", "pdf"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("format") && stderr.trim().lines().count() == 1,
        "{stderr}"
    );
    let out = cli(&["--process", "nope"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim().lines().count(),
        1
    );
}
