//! Decision tables: a table drawn in dmn-js deploys unchanged and decides the same as its YAML
//! twin; its test cases (and a bad cell) refuse a deployment; a business-rule task decides
//! with the latest version and the explanation (which rules matched, and why) is in the
//! instance's history and the audit log; a decision that cannot be made stops on an incident
//! an operator retries; `concord decide` decides and tests a table file without a server.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{both_backends, Backend, Session, TestApp};

const EXPENSE_DMN: &str =
    include_str!("../../../bots/workflows/examples/decisions/expense-approval.dmn");
const EXPENSE_YAML: &str =
    include_str!("../../../bots/workflows/examples/decisions/expense-approval.yaml");

fn base(ws: &str) -> String {
    format!("/api/v1/workspaces/{ws}")
}

/// A claim process: the table picks the approver; small expenses pass on their own.
const CLAIM: &str = "process: claim\nsteps:\n  - start: s\n  - rule_task: route\n    decision: expense_approval\n    result: approval\n  - exclusive: auto\n    branches:\n      - when: approval.auto_approve == true\n        goto: paid\n    default: review\n  - end: paid\n  - user_task: review\n    person: ${owner}\n  - end: reviewed\n";

async fn decide(
    app: &TestApp,
    who: &Session,
    ws: &str,
    version: Option<i64>,
    vars: Value,
) -> Value {
    app.post(
        &format!("{}/workflow-decisions/expense_approval/evaluate", base(ws)),
        Some(&who.access),
        json!({"variables": vars, "version": version}),
    )
    .await
    .expect(200)
    .clone()
}

async fn until(
    app: &TestApp,
    who: &Session,
    ws: &str,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let i = app
            .get(
                &format!("{}/workflow-instances/{id}", base(ws)),
                &who.access,
            )
            .await
            .expect(200)
            .clone();
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

async fn start(app: &TestApp, who: &Session, ws: &str, vars: Value) -> String {
    app.post(
        &format!("{}/workflows/claim/instances", base(ws)),
        Some(&who.access),
        json!({ "variables": vars }),
    )
    .await
    .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

both_backends! {
    async fn a_decision_table_routes_a_process_and_explains_why(app) {
        let t = app.team().await;
        let decisions = format!("{}/workflow-decisions", base(&t.ws));
        // A process naming a table nobody deployed is refused, naming it.
        let r = app.post(&format!("{}/workflows", base(&t.ws)), Some(&t.admin.access), json!({"source": CLAIM})).await;
        r.expect_error(422, "invalid_model");
        assert!(r.body["error"]["message"].as_str().unwrap().contains("expense_approval"), "{}", r.body);
        // Operators deploy tables; members do not.
        app.post(&decisions, Some(&t.ann.access), json!({"source": EXPENSE_DMN})).await.expect_error(403, "forbidden");
        // A member's source is not even read: no parsing or test runs for those who cannot deploy.
        app.post(&decisions, Some(&t.ann.access), json!({"source": "decision: [not a table"})).await.expect_error(403, "forbidden");
        // A failing test case refuses the deployment, naming the case; nothing is deployed.
        let wrong = app.post(&decisions, Some(&t.admin.access), json!({"source": EXPENSE_DMN, "tests": [
            {"name": "small is automatic", "input": {"amount": 20, "category": "meals"}, "expect": {"approver": "none", "auto_approve": true}},
            {"name": "travel goes to finance", "input": {"amount": 300, "category": "travel"}, "expect": {"approver": "finance", "auto_approve": false}}
        ]})).await;
        wrong.expect_error(422, "decision_tests_failed");
        let problems = wrong.body["error"]["problems"].as_array().unwrap().clone();
        assert_eq!(problems.len(), 1, "{}", wrong.body);
        assert!(problems[0]["message"].as_str().unwrap().contains("travel goes to finance"), "{}", wrong.body);
        assert_eq!(app.get(&decisions, &t.ann.access).await.expect(200)["decisions"], json!([]));
        // A cell that is neither a unary test nor an expression is named by rule and column.
        let bad = EXPENSE_YAML.replacen("'< 100'", "'<< 100'", 1);
        assert_ne!(bad, EXPENSE_YAML, "the twin's first cell is < 100");
        let r = app.post(&decisions, Some(&t.admin.access), json!({"source": bad})).await;
        r.expect_error(422, "invalid_decision");
        assert!(r.body["error"]["message"].as_str().unwrap().contains("<< 100"), "{}", r.body);

        // The table as dmn-js saved it deploys, with its test cases passing.
        let made = app.post(&decisions, Some(&t.admin.access), json!({"source": EXPENSE_DMN, "tests": [
            {"name": "travel goes to the manager", "input": {"amount": 300, "category": "travel"}, "expect": {"approver": "manager", "auto_approve": false}}
        ]})).await.expect(201).clone();
        assert_eq!(made["decisions"][0]["key"], "expense_approval", "{made}");
        assert_eq!((&made["decisions"][0]["version"], &made["decisions"][0]["hit_policy"], &made["decisions"][0]["format"]), (&json!(1), &json!("first"), &json!("dmn")), "{made}");
        assert_eq!(made["decisions"][0]["rules"], 5, "{made}");
        // Its YAML twin becomes version 2 and decides the same on every case.
        let twin = app.post(&decisions, Some(&t.admin.access), json!({"source": EXPENSE_YAML})).await.expect(201).clone();
        assert_eq!((&twin["decisions"][0]["version"], &twin["decisions"][0]["format"]), (&json!(2), &json!("yaml")), "{twin}");
        for (amount, category, approver) in [(20, "meals", "none"), (100, "travel", "manager"), (1000, "software", "finance"),
            (1001, "software", "director"), (5000, "equipment", "cfo")] {
            let vars = json!({"amount": amount, "category": category});
            let dmn = decide(&app, &t.admin, &t.ws, Some(1), vars.clone()).await;
            let yaml = decide(&app, &t.admin, &t.ws, Some(2), vars).await;
            assert_eq!(dmn["result"]["approver"], approver, "{dmn}");
            assert_eq!((&dmn["result"], &dmn["matched"].as_array().unwrap().len()), (&yaml["result"], &yaml["matched"].as_array().unwrap().len()), "{dmn} {yaml}");
            assert_eq!(yaml["version"], 2);
        }
        let why = decide(&app, &t.admin, &t.ws, None, json!({"amount": 300, "category": "travel"})).await;
        assert_eq!(why["chosen"], 2, "{why}");
        let chosen = why["matched"].as_array().unwrap().iter().find(|m| m["index"] == 2).unwrap().clone();
        assert!(chosen["why"].to_string().contains("[100..1000]"), "{why}");
        assert!(why["explanation"].to_string().contains("travel"), "{why}");
        app.post(&format!("{}/workflow-decisions/expense_approval/evaluate", base(&t.ws)), Some(&t.ann.access), json!({"variables": {}}))
            .await.expect_error(403, "forbidden");
        app.post(&format!("{}/workflow-decisions/nothing/evaluate", base(&t.ws)), Some(&t.admin.access), json!({"variables": {}}))
            .await.expect_error(404, "not_found");
        // Members see the tables their processes use; the source is for operators.
        let listed = app.get(&decisions, &t.ann.access).await.expect(200).clone();
        assert_eq!((listed["decisions"].as_array().unwrap().len(), &listed["decisions"][0]["version"]), (1, &json!(2)), "{listed}");
        let source = app.get(&format!("{decisions}/expense_approval/source?version=1"), &t.admin.access).await;
        assert_eq!(source.status, 200);
        assert_eq!(source.body.as_str(), Some(EXPENSE_DMN));
        app.get(&format!("{decisions}/expense_approval/source"), &t.ann.access).await.expect_error(403, "forbidden");

        // A process decides with the latest version, and says why.
        app.post(&format!("{}/workflows", base(&t.ws)), Some(&t.admin.access), json!({"source": CLAIM})).await.expect(201);
        let small = start(&app, &t.ann, &t.ws, json!({"amount": 40, "category": "meals", "owner": t.bo.user_id})).await;
        let done = until(&app, &t.admin, &t.ws, &small, |i| i["status"] == "completed").await;
        assert_eq!(done["variables"]["approval"], json!({"approver": "none", "auto_approve": true}), "{done}");
        let history = done["history"].as_array().unwrap();
        let decided = history.iter().find(|s| s["event"]["type"] == "decision_evaluated").expect("a decision step").clone();
        assert_eq!(decided["element"], "route", "{decided}");
        assert_eq!(decided["event"]["decision_ref"], "expense_approval", "{decided}");
        assert_eq!(decided["event"]["explanation"]["version"], 2, "{decided}");
        assert_eq!(decided["event"]["explanation"]["chosen"], 1, "{decided}");
        assert_eq!(decided["event"]["explanation"]["matched"][0]["description"], "Small expenses", "{decided}");
        assert!(decided["event"]["explanation"]["explanation"].to_string().contains("< 100"), "{decided}");
        let big = start(&app, &t.ann, &t.ws, json!({"amount": 5000, "category": "equipment", "owner": t.bo.user_id})).await;
        let waiting = until(&app, &t.admin, &t.ws, &big, |i| i["tasks"].as_array().is_some_and(|a| !a.is_empty())).await;
        assert_eq!(waiting["variables"]["approval"]["approver"], "cfo", "{waiting}");
        // The audit log holds each decision: the table's version and the rules that matched.
        let audited: Vec<Value> = app.audit_events(&t.admin.access).await.into_iter()
            .filter(|e| e["action"] == "workflow.decision").collect();
        assert_eq!(audited.len(), 2, "{audited:?}");
        let for_big = audited.iter().find(|e| e["target_id"] == big.as_str()).unwrap();
        assert_eq!((&for_big["details"]["decision"], &for_big["details"]["version"]), (&json!("expense_approval"), &json!(2)), "{for_big}");
        assert_eq!(for_big["details"]["chosen"], 5, "{for_big}");
        assert_eq!(for_big["details"]["matched"][0]["index"], 5, "{for_big}");
        // The values a decision tested stay in the sealed history, not in the audit entry.
        assert!(!for_big["details"].to_string().contains("5000"), "{for_big}");
        // A member who started an instance sees that a table decided, not its rules.
        let as_starter = app.get(&format!("{}/workflow-instances/{big}", base(&t.ws)), &t.ann.access).await.expect(200).clone();
        let step = as_starter["history"].as_array().unwrap().iter().find(|s| s["event"]["type"] == "decision_evaluated").unwrap().clone();
        assert_eq!(step["event"]["explanation"], json!({"version": 2, "matched": 1}), "{step}");
        assert!(!as_starter["history"].to_string().contains("not(\"equipment\")"), "{as_starter}");

        // A table that cannot decide (two rules match under `unique`) stops the task on an
        // incident; an operator deploys a fixed version and retries.
        let clash = "decision: expense_approval\nhit_policy: unique\ninputs: [amount]\noutputs: [approver, auto_approve]\nrules:\n  - ['>= 0', '\"finance\"', 'false']\n  - ['>= 500', '\"director\"', 'false']\n";
        app.post(&decisions, Some(&t.admin.access), json!({"source": clash})).await.expect(201);
        let stuck = start(&app, &t.ann, &t.ws, json!({"amount": 900, "owner": t.bo.user_id})).await;
        let i = until(&app, &t.admin, &t.ws, &stuck, |i| i["incidents"].as_array().is_some_and(|a| !a.is_empty())).await;
        let incident = i["incidents"][0].clone();
        assert_eq!(incident["element"], "route", "{i}");
        assert!(incident["message"].as_str().unwrap().contains("decision"), "{incident}");
        let failed = app.audit_events(&t.admin.access).await.into_iter()
            .find(|e| e["action"] == "workflow.decision" && e["target_id"] == stuck.as_str()).unwrap();
        assert_eq!(failed["outcome"], "failed", "{failed}");
        app.post(&decisions, Some(&t.admin.access), json!({"source": EXPENSE_YAML})).await.expect(201);
        app.post(&format!("{}/workflow-incidents/{}/resolve", base(&t.ws), incident["id"].as_str().unwrap()),
            Some(&t.admin.access), json!({"action": "retry"})).await.expect(200);
        let fixed = until(&app, &t.admin, &t.ws, &stuck, |i| i["variables"]["approval"].is_object()).await;
        assert_eq!(fixed["variables"]["approval"]["approver"], "finance", "{fixed}");
        let verified = app.post("/api/v1/audit/verify", Some(&t.admin.access), json!({})).await.expect(200).clone();
        assert_eq!(verified["ok"], true, "{verified}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_decides_and_tests_a_table_file() {
    use std::process::Command;
    let examples = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../bots/workflows/examples/decisions"
    );
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_concord"))
            .arg("--data-dir")
            .arg(dir.path())
            .arg("decide")
            .args(args)
            .output()
            .unwrap()
    };
    let vars = dir.path().join("vars.json");
    std::fs::write(&vars, r#"{"amount": 300, "category": "travel"}"#).unwrap();
    let dmn = format!("{examples}/expense-approval.dmn");
    let out = run(&[&dmn, "--input", vars.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("hit policy: first"), "{text}");
    assert!(
        text.contains("[100..1000]") && text.contains("\"manager\""),
        "{text}"
    );
    let out = run(&[&dmn, "--input", vars.to_str().unwrap(), "--json"]);
    let evaluation: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(evaluation["result"]["approver"], "manager", "{evaluation}");
    // Every twin's own test cases pass.
    for twin in ["expense-approval", "ticket-priority", "leave-days"] {
        let out = run(&[&format!("{examples}/{twin}.yaml"), "--test"]);
        assert!(
            out.status.success(),
            "{twin}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A failing case fails the command with one line on stderr, after naming the case.
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        std::fs::read_to_string(format!("{examples}/expense-approval.yaml"))
            .unwrap()
            .replace("\"manager\"", "\"board\""),
    )
    .unwrap();
    let out = run(&[broken.to_str().unwrap(), "--test"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL"));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    // Bad input: a clear line, a non-zero exit.
    std::fs::write(&vars, "[1, 2]").unwrap();
    let out = run(&[&dmn, "--input", vars.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not a JSON object") && stderr.lines().count() == 1,
        "{stderr}"
    );
    let out = run(&[dir.path().join("missing.dmn").to_str().unwrap(), "--test"]);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}

async fn the_command_line_deploys_a_table_a_process_uses(backend: Backend) {
    use std::process::Command;
    let app = crate::harness::spawn_app(backend).await;
    let t = app.team().await;
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../bots/workflows/examples");
    let dir = tempfile::tempdir().unwrap();
    let claim = dir.path().join("claim.yaml");
    std::fs::write(&claim, CLAIM).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(app.cli_args())
        .args(["workflow", "deploy", "--workspace", &t.ws])
        .arg(format!("{examples}/decisions/expense-approval.dmn"))
        .arg(&claim)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let both: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(both[0]["decisions"][0]["key"], "expense_approval", "{both}");
    assert_eq!(both[1]["process_id"], "claim", "{both}");
    let id = start(
        &app,
        &t.ann,
        &t.ws,
        json!({"amount": 10, "category": "meals", "owner": t.bo.user_id}),
    )
    .await;
    until(&app, &t.admin, &t.ws, &id, |i| i["status"] == "completed").await;
}

both_backends!(the_command_line_deploys_a_table_a_process_uses);

both_backends! {
    async fn an_editor_runs_a_tables_test_cases_without_deploying_it(app) {
        let t = app.team().await;
        let test = format!("{}/workflow-decisions/test", base(&t.ws));
        // The YAML twin's own cases all pass, each with how the table decided.
        let twin = app.post(&test, Some(&t.admin.access), json!({"source": EXPENSE_YAML})).await.expect(200).clone();
        assert_eq!((&twin["ok"], &twin["problems"]), (&json!(true), &json!([])), "{twin}");
        let cases = twin["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 5, "{twin}");
        assert!(cases.iter().all(|c| c["passed"] == true && c["decision"] == "expense_approval"), "{twin}");
        assert_eq!(cases[0]["name"], "small expenses need nobody", "{twin}");
        assert_eq!(cases[0]["actual"], json!({"approver": "none", "auto_approve": true}), "{twin}");
        assert!(cases[0]["explanation"].to_string().contains("< 100"), "{twin}");
        // A DMN file carries no cases: those sent run, a wrong one fails with what it gave.
        let dmn = app.post(&test, Some(&t.admin.access), json!({"source": EXPENSE_DMN, "format": "dmn", "tests": [
            {"input": {"amount": 300, "category": "travel"}, "expect": {"approver": "manager", "auto_approve": false}},
            {"name": "equipment to finance", "input": {"amount": 5000, "category": "equipment"}, "expect": {"approver": "finance", "auto_approve": false}}
        ]})).await.expect(200).clone();
        assert_eq!(dmn["ok"], false, "{dmn}");
        let names: Vec<(&str, bool)> = dmn["cases"].as_array().unwrap().iter()
            .map(|c| (c["name"].as_str().unwrap(), c["passed"].as_bool().unwrap())).collect();
        assert_eq!(names, vec![("test case 1", true), ("equipment to finance", false)], "{dmn}");
        assert_eq!(dmn["cases"][1]["actual"]["approver"], "cfo", "{dmn}");
        // A bad cell is a problem named by rule and column, not an error.
        let bad = app.post(&test, Some(&t.admin.access), json!({"source": EXPENSE_YAML.replacen("'< 100'", "'<< 100'", 1)})).await.expect(200).clone();
        assert_eq!((&bad["ok"], &bad["cases"]), (&json!(false), &json!([])), "{bad}");
        assert!(bad["problems"][0]["message"].as_str().unwrap().contains("<< 100"), "{bad}");
        let broken = app.post(&test, Some(&t.admin.access), json!({"source": "<definitions", "format": "dmn"})).await.expect(200).clone();
        assert_eq!(broken["ok"], false, "{broken}");
        assert!(!broken["problems"].as_array().unwrap().is_empty(), "{broken}");
        // Nothing was deployed, nothing audited; members cannot run it.
        assert_eq!(app.get(&format!("{}/workflow-decisions", base(&t.ws)), &t.admin.access).await.expect(200)["decisions"], json!([]));
        assert!(!app.audit_events(&t.admin.access).await.iter().any(|e| e["action"] == "workflow.decision_deployed"));
        app.post(&test, Some(&t.ann.access), json!({"source": EXPENSE_YAML})).await.expect_error(403, "forbidden");
    }
}
