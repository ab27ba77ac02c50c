//! A process's dashboard end to end: instances that complete, fail, are cancelled, stop on
//! an incident or wait, with a queued task claimed or taken straight from the queue and a
//! task due at once; the dashboard counts them by status over time, gives each step's
//! waiting and working time percentiles, its SLA breaches (closed late and open past due),
//! the open incidents and the heat of each step; the people who manage workflows hear of
//! each start, end and incident live, a plain member does not; members are refused, bad
//! ranges are 400s; the same figures reach Prometheus.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{both_backends, Session, Socket, TestApp};

const EXPENSE: &str = "process: expense
name: Expense claim
steps:
  - start: submitted
  - user_task: triage
    name: Triage
    role: member
    routing: {strategy: queue}
    due: P1D
  - user_task: approve
    name: Approve
    person: ${approver}
    due: PT0S
  - exclusive: decide
    branches:
      - when: approved == false
        goto: refused
    default: paid
  - end: paid
  - end: refused
    error: refused
";

fn base(ws: &str) -> String {
    format!("/api/v1/workspaces/{ws}")
}

/// Starts an instance; returns its id.
async fn start(app: &TestApp, who: &Session, ws: &str, vars: Value) -> String {
    app.post(
        &format!("{}/workflows/expense/instances", base(ws)),
        Some(&who.access),
        json!({ "variables": vars }),
    )
    .await
    .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The instance's open task (the one there is).
async fn open_task(app: &TestApp, admin: &Session, ws: &str, id: &str) -> String {
    let i = app
        .get(
            &format!("{}/workflow-instances/{id}", base(ws)),
            &admin.access,
        )
        .await
        .expect(200)
        .clone();
    let open: Vec<&Value> = i["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "open")
        .collect();
    assert_eq!(open.len(), 1, "{i}");
    open[0]["id"].as_str().unwrap().to_owned()
}

async fn claim(app: &TestApp, who: &Session, task: &str) {
    app.post(
        &format!("/api/v1/workflow-tasks/{task}/claim"),
        Some(&who.access),
        json!({}),
    )
    .await
    .expect(200);
}

async fn complete(app: &TestApp, who: &Session, task: &str, vars: Value) {
    app.post(
        &format!("/api/v1/workflow-tasks/{task}/complete"),
        Some(&who.access),
        json!({ "variables": vars }),
    )
    .await
    .expect(200);
}

async fn dashboard(app: &TestApp, who: &Session, ws: &str, query: &str) -> Value {
    app.get(
        &format!("{}/workflows/expense/dashboard{query}", base(ws)),
        &who.access,
    )
    .await
    .expect(200)
    .clone()
}

/// The next `workflow_instance_changed` event about `instance` (other events skipped).
async fn next_change(socket: &mut Socket, instance: &str) -> Value {
    loop {
        let frame = socket
            .next_event()
            .await
            .expect("a workflow_instance_changed event");
        let e = &frame["event"];
        if e["type"] == "workflow_instance_changed" && e["instance_id"] == instance {
            return e.clone();
        }
    }
}

fn step<'a>(d: &'a Value, element: &str) -> &'a Value {
    d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["element"] == element)
        .unwrap_or_else(|| panic!("no step {element} in {d}"))
}

fn ms(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("a duration, not {v}"))
}

/// p50 <= p90 <= p99, all present.
fn ordered(p: &Value) -> (i64, i64, i64) {
    let (a, b, c) = (ms(&p["p50"]), ms(&p["p90"]), ms(&p["p99"]));
    assert!(0 <= a && a <= b && b <= c, "percentiles out of order: {p}");
    (a, b, c)
}

/// The value of the first sample of `name` with exactly `labels` in a Prometheus text page.
fn sample(page: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{labels} ");
    page.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

both_backends! {
    async fn a_process_dashboard_counts_instances_steps_sla_and_incidents_live(app) {
        let t = app.team().await;
        let ws = t.ws.clone();
        app.post(&format!("{}/workflows", base(&ws)), Some(&t.admin.access), json!({"source": EXPENSE}))
            .await.expect(201);
        let mut admin_socket = app.socket(&t.admin.access, None).await;
        let mut ann_socket = app.socket(&t.ann.access, None).await;
        let approver = json!({"approver": t.bo.user_id});

        // A: triage claimed by Ann, then done; Bo approves (late: it was due at once).
        let a = start(&app, &t.admin, &ws, approver.clone()).await;
        let started = next_change(&mut admin_socket, &a).await;
        assert_eq!(
            (started["change"].as_str(), started["status"].as_str(), started["process_id"].as_str()),
            (Some("started"), Some("running"), Some("expense")),
            "{started}"
        );
        let triage = open_task(&app, &t.admin, &ws, &a).await;
        claim(&app, &t.ann, &triage).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        complete(&app, &t.ann, &triage, json!({})).await;
        // Ann, a plain member, heard of her task but of no instance: the task's closing
        // comes after the instance's start in commit order.
        loop {
            let frame = ann_socket.next_event().await.expect("Ann's task events");
            let e = &frame["event"];
            assert_ne!(e["type"], "workflow_instance_changed", "a member is not told: {e}");
            if e["type"] == "workflow_task_changed" && e["task_id"] == triage.as_str()
                && e["status"] == "completed" {
                break;
            }
        }
        let approve = open_task(&app, &t.admin, &ws, &a).await;
        complete(&app, &t.bo, &approve, json!({"approved": true})).await;
        let ended = next_change(&mut admin_socket, &a).await;
        assert_eq!((ended["change"].as_str(), ended["status"].as_str()), (Some("ended"), Some("completed")), "{ended}");

        // B: triage taken straight from the queue (no claim), approved.
        let b = start(&app, &t.admin, &ws, approver.clone()).await;
        let triage = open_task(&app, &t.admin, &ws, &b).await;
        complete(&app, &t.cy, &triage, json!({})).await;
        let approve = open_task(&app, &t.admin, &ws, &b).await;
        complete(&app, &t.bo, &approve, json!({"approved": true})).await;

        // C: claimed, then refused: the error end fails the instance.
        let c = start(&app, &t.admin, &ws, approver.clone()).await;
        let triage = open_task(&app, &t.admin, &ws, &c).await;
        claim(&app, &t.ann, &triage).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        complete(&app, &t.ann, &triage, json!({})).await;
        let approve = open_task(&app, &t.admin, &ws, &c).await;
        complete(&app, &t.bo, &approve, json!({"approved": false})).await;
        next_change(&mut admin_socket, &c).await;
        let failed = next_change(&mut admin_socket, &c).await;
        assert_eq!((failed["change"].as_str(), failed["status"].as_str()), (Some("ended"), Some("failed")), "{failed}");

        // D: cancelled while in triage.
        let d = start(&app, &t.admin, &ws, approver.clone()).await;
        app.post(&format!("{}/workflow-instances/{d}/cancel", base(&ws)), Some(&t.admin.access), json!({}))
            .await.expect(200);
        next_change(&mut admin_socket, &d).await;
        let cancelled = next_change(&mut admin_socket, &d).await;
        assert_eq!((cancelled["change"].as_str(), cancelled["status"].as_str()), (Some("ended"), Some("cancelled")));

        // E: nobody to approve: an incident at `approve`.
        let e = start(&app, &t.admin, &ws, json!({})).await;
        let triage = open_task(&app, &t.admin, &ws, &e).await;
        complete(&app, &t.ann, &triage, json!({})).await;
        next_change(&mut admin_socket, &e).await;
        let incident = next_change(&mut admin_socket, &e).await;
        assert_eq!((incident["change"].as_str(), incident["status"].as_str()), (Some("incident_raised"), Some("running")));

        // F: waiting for Bo, already past due.
        let f = start(&app, &t.admin, &ws, approver.clone()).await;
        let triage = open_task(&app, &t.admin, &ws, &f).await;
        complete(&app, &t.ann, &triage, json!({})).await;

        let dash = dashboard(&app, &t.admin, &ws, "").await;
        assert_eq!(dash["process_id"], "expense");
        assert_eq!(dash["name"], "Expense claim");
        assert_eq!(dash["bucket"], "hour", "seven days are drawn by the hour: {dash}");
        assert_eq!(
            dash["totals"],
            json!({"started": 6, "running": 2, "completed": 2, "failed": 1, "cancelled": 1, "incidents_open": 1}),
            "{dash}"
        );
        let series = dash["series"].as_array().unwrap();
        assert!((168..=169).contains(&series.len()), "one point per hour: {}", series.len());
        let sum = |k: &str| series.iter().map(|p| p[k].as_i64().unwrap()).sum::<i64>();
        assert_eq!((sum("started"), sum("completed"), sum("failed"), sum("cancelled")), (6, 2, 1, 1));
        let at = |i: usize| series[i]["at"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        assert_eq!(at(1) - at(0), chrono::Duration::hours(1));
        assert_eq!(dash["from"].as_str().map(|s| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap()), Some(at(0)));

        let names: Vec<&str> = dash["steps"].as_array().unwrap().iter().map(|s| s["element"].as_str().unwrap()).collect();
        assert_eq!(names, ["triage", "approve"], "the activities, in model order: {dash}");
        let triage = step(&dash, "triage");
        assert_eq!((triage["name"].as_str(), triage["kind"].as_str()), (Some("Triage"), Some("user_task")));
        assert_eq!(
            (triage["count"].as_i64(), triage["cancelled"].as_i64(), triage["open"].as_i64(), triage["sla_breaches"].as_i64()),
            (Some(5), Some(1), Some(0), Some(0)),
            "{triage}"
        );
        // Taken from the queue, a task only waits; claimed, it waits until the claim and
        // works after: three of five never worked, two did.
        let (_, _, waited) = ordered(&triage["waiting_ms"]);
        let (worked_p50, _, worked_p99) = ordered(&triage["working_ms"]);
        assert!(waited > 0, "{triage}");
        assert_eq!(worked_p50, 0, "{triage}");
        assert!(worked_p99 >= 25, "a claimed task works from its claim: {triage}");

        let approve = step(&dash, "approve");
        assert_eq!(
            (approve["count"].as_i64(), approve["open"].as_i64(), approve["sla_breaches"].as_i64(), approve["open_breached"].as_i64()),
            (Some(3), Some(1), Some(3), Some(1)),
            "due at once, every one is late: {approve}"
        );
        // Assigned at once: no waiting, only work.
        assert_eq!(ordered(&approve["waiting_ms"]), (0, 0, 0), "{approve}");
        assert!(approve["working_ms"]["p50"].is_i64(), "measured: {approve}");

        assert_eq!(dash["sla"], json!({"tasks_with_due": 9, "breached": 3, "open_breached": 1}), "{dash}");
        assert_eq!(dash["incidents"], json!([{"element": "approve", "name": "Approve", "open": 1}]));

        let heat = dash["heat"].as_array().unwrap();
        assert_eq!(heat.len(), 2, "{dash}");
        assert_eq!(heat[0]["share"], 1.0, "the slowest first: {dash}");
        for h in heat {
            let share = h["share"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&share) && h["p90_total_ms"].as_i64().unwrap() > 0, "{h}");
        }
        assert!(heat[0]["p90_total_ms"].as_i64() >= heat[1]["p90_total_ms"].as_i64());

        // By day, the same totals; a range in the past holds nothing, but still the open.
        let daily = dashboard(&app, &t.admin, &ws, "?bucket=day").await;
        assert_eq!(daily["totals"], dash["totals"]);
        assert!((7..=8).contains(&daily["series"].as_array().unwrap().len()), "{daily}");
        let old = dashboard(&app, &t.admin, &ws, "?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z").await;
        assert_eq!(old["totals"]["started"], 0);
        assert_eq!(old["totals"]["running"], 2);
        assert_eq!(old["series"].as_array().unwrap().len(), 24);
        assert!(step(&old, "approve")["working_ms"]["p50"].is_null(), "{old}");
        assert_eq!(step(&old, "approve")["open"], 1);

        // The same figures reach Prometheus (the counters are this test process's, shared
        // by both backends' runs: at least what this run added).
        let page = app.metrics().await;
        let at_least = |name: &str, labels: &str, n: f64| {
            let v = sample(&page, name, labels).unwrap_or_else(|| panic!("no {name}{labels} in\n{page}"));
            assert!(v >= n, "{name}{labels} = {v}, expected at least {n}");
        };
        let expense = "{process=\"expense\"}";
        at_least("concord_workflow_instances_started_total", expense, 6.0);
        at_least("concord_workflow_instances_completed_total", expense, 2.0);
        at_least("concord_workflow_instances_failed_total", expense, 1.0);
        at_least("concord_workflow_instances_cancelled_total", expense, 1.0);
        at_least("concord_workflow_tasks_completed_total", expense, 8.0);
        at_least("concord_workflow_sla_breaches_total", expense, 3.0);
        // A gauge of the whole process, set by whichever server was scraped last: present.
        assert!(sample(&page, "concord_workflow_incidents_open", "").is_some(), "{page}");
        at_least("concord_workflow_task_working_seconds_count", "", 8.0);
        assert!(page.contains("concord_workflow_task_working_seconds_bucket{le=\"3600\"}"), "{page}");
    }

    async fn a_dashboard_needs_workflows_manage_and_a_range_it_can_draw(app) {
        let t = app.team().await;
        let ws = t.ws.clone();
        app.post(&format!("{}/workflows", base(&ws)), Some(&t.admin.access), json!({"source": EXPENSE}))
            .await.expect(201);
        let path = format!("{}/workflows/expense/dashboard", base(&ws));
        app.get(&path, &t.ann.access).await.expect_error(403, "forbidden");
        app.get(&format!("{}/workflows/nothing/dashboard", base(&ws)), &t.admin.access)
            .await.expect_error(404, "not_found");
        for bad in ["?bucket=week", "?from=yesterday", "?to=2026-13-01T00:00:00Z"] {
            app.get(&format!("{path}{bad}"), &t.admin.access).await.expect_error(400, "invalid_query");
        }
        for bad in [
            "?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            "?from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "?from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&bucket=hour",
            "?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            // Times chrono reads but no dashboard can reach: refused, not a panic.
            "?to=%2B262142-12-31T23:30:00Z",
            "?from=-262143-01-01T00:00:00Z&bucket=day",
        ] {
            app.get(&format!("{path}{bad}"), &t.admin.access).await.expect_error(400, "invalid_range");
        }
        // A range is widened to whole buckets.
        let d = app.get(&format!("{path}?from=2026-01-01T10:20:00Z&to=2026-01-01T12:10:00Z"), &t.admin.access)
            .await.expect(200).clone();
        assert_eq!((d["from"].as_str(), d["to"].as_str()), (Some("2026-01-01T10:00:00Z"), Some("2026-01-01T13:00:00Z")), "{d}");
        assert_eq!(d["series"].as_array().unwrap().len(), 3);
    }
}
