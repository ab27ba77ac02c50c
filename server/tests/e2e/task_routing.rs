//! Task routing end to end: people's routing attributes (set by operators; capacity and days
//! out of office by the person), a user task's `routing:` block checked at deploy, and each
//! strategy assigning as it says (skills with capacity and load, round-robin, a shared queue
//! someone claims, presence-aware with a fallback, escalation on time, the learned router
//! above and below its threshold), with the explanation in the API, the notice and the audit
//! log.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{both_backends, Backend, Session, TestApp};

fn base(ws: &str) -> String {
    format!("/api/v1/workspaces/{ws}")
}

async fn deploy(app: &TestApp, who: &Session, ws: &str, source: &str) {
    app.post(
        &format!("{}/workflows", base(ws)),
        Some(&who.access),
        json!({ "source": source }),
    )
    .await
    .expect(201);
}

/// Starts an instance; returns its first task.
async fn start(app: &TestApp, who: &Session, ws: &str, process: &str, vars: Value) -> Value {
    let i = app
        .post(
            &format!("{}/workflows/{process}/instances", base(ws)),
            Some(&who.access),
            json!({ "variables": vars }),
        )
        .await
        .expect(201)
        .clone();
    i["tasks"][0].clone()
}

async fn set_routing(app: &TestApp, who: &Session, ws: &str, person: &Session, body: Value) {
    app.put(
        &format!("{}/people/{}/routing", base(ws), person.user_id),
        &who.access,
        body,
    )
    .await
    .expect(200);
}

/// The task as its instance shows it now.
async fn task_of(app: &TestApp, admin: &Session, ws: &str, task: &Value) -> Value {
    let i = app
        .get(
            &format!(
                "{}/workflow-instances/{}",
                base(ws),
                task["instance_id"].as_str().unwrap()
            ),
            &admin.access,
        )
        .await
        .expect(200)
        .clone();
    i["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == task["id"])
        .cloned()
        .unwrap()
}

/// Waits (up to `secs`) until the task satisfies `done`.
async fn until_task(
    app: &TestApp,
    admin: &Session,
    ws: &str,
    task: &Value,
    secs: u64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let t = task_of(app, admin, ws, task).await;
        if done(&t) {
            return t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {t}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assignee(t: &Value) -> &str {
    t["assignee"].as_str().unwrap_or("")
}

async fn skills_capacity_load_and_who_may_set_what(backend: Backend) {
    let app = crate::harness::spawn_app(backend).await;
    let t = app.team().await;
    // Operators set skills; a person sets their own capacity, not their skills.
    set_routing(
        &app,
        &t.admin,
        &t.ws,
        &t.ann,
        json!({"skills": {"languages": ["KO"], "products": ["billing"]}}),
    )
    .await;
    set_routing(
        &app,
        &t.admin,
        &t.ws,
        &t.bo,
        json!({"skills": {"languages": ["ko", "en"], "products": ["billing", "payments"]}}),
    )
    .await;
    set_routing(
        &app,
        &t.admin,
        &t.ws,
        &t.cy,
        json!({"skills": {"languages": ["en"]}}),
    )
    .await;
    let own = format!("{}/people/{}/routing", base(&t.ws), t.ann.user_id);
    let mine = app.get(&own, &t.ann.access).await.expect(200).clone();
    assert_eq!(mine["skills"]["languages"], json!(["KO"]));
    app.put(
        &own,
        &t.ann.access,
        json!({"skills": {"languages": ["KO"], "products": ["billing"]}, "capacity": 1}),
    )
    .await
    .expect(200);
    app.put(
        &own,
        &t.ann.access,
        json!({"skills": {"languages": ["ja"]}, "capacity": 1}),
    )
    .await
    .expect_error(403, "routing_admin_only");
    app.get(
        &format!("{}/people/{}/routing", base(&t.ws), t.bo.user_id),
        &t.ann.access,
    )
    .await
    .expect_error(403, "forbidden");
    app.put(
        &own,
        &t.admin.access,
        json!({"out_of_office": {"from": "2026-12-10", "until": "2026-12-01"}}),
    )
    .await
    .expect_error(422, "validation_failed");
    app.put(&own, &t.admin.access, json!({"capacity": 1, "skills": {"languages": ["KO"], "products": ["billing"]}, "shoe_size": 9}))
        .await
        .expect(422);

    // A manager is an active person of the workspace, and the chain does not loop.
    let bos = format!("{}/people/{}/routing", base(&t.ws), t.bo.user_id);
    app.put(&bos, &t.admin.access, json!({"skills": {"languages": ["ko", "en"], "products": ["billing", "payments"]}, "manager": t.ann.user_id}))
        .await
        .expect(200);
    app.put(&own, &t.admin.access, json!({"capacity": 1, "skills": {"languages": ["KO"], "products": ["billing"]}, "manager": t.bo.user_id}))
        .await
        .expect_error(422, "validation_failed");
    app.put(&own, &t.admin.access, json!({"capacity": 1, "skills": {"languages": ["KO"], "products": ["billing"]}, "manager": t.ann.user_id}))
        .await
        .expect_error(422, "validation_failed");
    app.put(&own, &t.admin.access, json!({"capacity": 1, "skills": {"languages": ["KO"], "products": ["billing"]}, "manager": uuid::Uuid::now_v7()}))
        .await
        .expect_error(422, "validation_failed");
    app.put(
        &bos,
        &t.admin.access,
        json!({"skills": {"languages": ["ko", "en"], "products": ["billing", "payments"]}}),
    )
    .await
    .expect(200);

    // A routing block with a mistake is refused at deploy, naming the task.
    for bad in [
        "  - user_task: answer\n    role: member\n    routing: {strategy: fastest}\n",
        "  - user_task: answer\n    role: member\n    routing: {strategy: skills}\n",
        "  - user_task: answer\n    routing: {strategy: round_robin}\n",
        "  - user_task: answer\n    role: member\n    routing: {strategy: queue, learned: {threshold: 2}}\n",
    ] {
        let source = format!("process: bad\nsteps:\n  - start: s\n{bad}  - end: e\n");
        let r = app
            .post(&format!("{}/workflows", base(&t.ws)), Some(&t.admin.access), json!({"source": source}))
            .await;
        r.expect_error(422, "invalid_model");
        assert_eq!(r.body["error"]["problems"][0]["element"], "answer", "{}", r.body);
    }

    deploy(
        &app,
        &t.admin,
        &t.ws,
        "process: support\nsteps:\n  - start: s\n  - user_task: answer\n    role: member\n    \
         routing:\n      strategy: skills\n      requirements: \"languages: ko; products: billing\"\n  - end: e\n",
    )
    .await;
    // Two match, both without an open task: the tie goes to the one with more room (Ann's
    // capacity is 1, Bo has no limit).
    let first = start(&app, &t.admin, &t.ws, "support", json!({})).await;
    assert_eq!(assignee(&first), t.bo.user_id, "{first}");
    let why = first["routing"]["explanation"].as_str().unwrap();
    assert!(why.starts_with("skills: ko, billing"), "{why}");
    assert_eq!(first["routing"]["strategy"], "skills");
    assert_eq!(first["routing"]["outcome"], "assigned");
    // Then the least loaded: Ann.
    let second = start(&app, &t.admin, &t.ws, "support", json!({})).await;
    assert_eq!(assignee(&second), t.ann.user_id, "{second}");
    // Ann (capacity 1) has one open task: the third goes to Bo whatever the load.
    let third = start(&app, &t.admin, &t.ws, "support", json!({})).await;
    assert_eq!(assignee(&third), t.bo.user_id, "{third}");
    let why = third["routing"]["explanation"].as_str().unwrap();
    assert!(why.contains("at capacity"), "{why}");

    // A task someone holds is theirs: not in the others' inboxes, not theirs to complete.
    let ann_inbox = app
        .get("/api/v1/workflow-tasks", &t.ann.access)
        .await
        .expect(200)
        .clone();
    let ann_tasks: Vec<&Value> = ann_inbox["tasks"].as_array().unwrap().iter().collect();
    assert_eq!(ann_tasks.len(), 1, "{ann_inbox}");
    assert_eq!(ann_tasks[0]["assignee"], t.ann.user_id.as_str());
    app.post(
        &format!(
            "/api/v1/workflow-tasks/{}/complete",
            third["id"].as_str().unwrap()
        ),
        Some(&t.cy.access),
        json!({"variables": {}}),
    )
    .await
    .expect_error(403, "not_assignee");
    app.post(
        &format!(
            "/api/v1/workflow-tasks/{}/complete",
            third["id"].as_str().unwrap()
        ),
        Some(&t.bo.access),
        json!({"variables": {}}),
    )
    .await
    .expect(200);

    // Each decision is audited, with counts and ids, and each attribute change by field.
    let events = app.audit_events(&t.admin.access).await;
    let routed: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "workflow.task_routed")
        .collect();
    assert_eq!(routed.len(), 3, "{routed:?}");
    assert_eq!(routed[2]["details"]["strategy"], "skills");
    assert_eq!(routed[2]["details"]["assignee"], t.bo.user_id.as_str());
    assert!(events
        .iter()
        .any(|e| e["action"] == "person.routing_updated"
            && e["details"]["fields"] == json!(["capacity"])));
    // The assignee's notice says why.
    let bots = app
        .get(
            &format!("/api/v1/workspaces/{}/bots", t.ws),
            &t.admin.access,
        )
        .await
        .expect(200)
        .clone();
    let bot = bots
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "Workflows")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dms = crate::workflows::dm_from(&app, &t.bo, &t.ws, &bot).await;
    assert!(
        dms.iter().any(|m| m["text"]
            .as_str()
            .unwrap_or("")
            .contains("Why you: skills: ko, billing")),
        "{dms:?}"
    );

    // Leaving the workspace takes what routing knew there along.
    let cys = format!("{}/people/{}/routing", base(&t.ws), t.cy.user_id);
    assert_eq!(
        app.get(&cys, &t.admin.access).await.expect(200)["skills"]["languages"],
        json!(["en"])
    );
    app.delete(
        &format!("{}/members/{}", base(&t.ws), t.cy.user_id),
        &t.admin.access,
    )
    .await
    .expect(204);
    app.get(&cys, &t.admin.access)
        .await
        .expect_error(404, "not_found");
    app.add_member(&t.admin, &t.ws, &t.cy, "member").await;
    let again = app.get(&cys, &t.admin.access).await.expect(200).clone();
    assert_eq!(again["skills"], json!({}), "{again}");
    assert!(again["updated_at"].is_null(), "{again}");
}

async fn round_robin_and_a_shared_queue_someone_claims(backend: Backend) {
    let app = crate::harness::spawn_app(backend).await;
    let t = app.team().await;
    deploy(
        &app,
        &t.admin,
        &t.ws,
        "process: rota\nsteps:\n  - start: s\n  - user_task: shift\n    role: member\n    routing: {strategy: round_robin}\n  - end: e\n",
    )
    .await;
    let mut people = [
        t.ann.user_id.clone(),
        t.bo.user_id.clone(),
        t.cy.user_id.clone(),
    ];
    people.sort();
    let mut got = Vec::new();
    for _ in 0..4 {
        let task = start(&app, &t.admin, &t.ws, "rota", json!({})).await;
        got.push(assignee(&task).to_owned());
    }
    assert_eq!(
        got,
        vec![
            people[0].clone(),
            people[1].clone(),
            people[2].clone(),
            people[0].clone()
        ]
    );

    deploy(
        &app,
        &t.admin,
        &t.ws,
        "process: pool\nsteps:\n  - start: s\n  - user_task: pick\n    role: member\n    routing: {strategy: queue}\n  - end: e\n",
    )
    .await;
    let task = start(&app, &t.admin, &t.ws, "pool", json!({})).await;
    assert!(task["assignee"].is_null(), "{task}");
    assert_eq!(task["routing"]["outcome"], "queued");
    let id = task["id"].as_str().unwrap();
    for who in [&t.ann, &t.bo, &t.cy] {
        let inbox = app
            .get("/api/v1/workflow-tasks", &who.access)
            .await
            .expect(200)
            .clone();
        assert!(inbox["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == id));
    }
    // The admin is not in the group.
    app.post(
        &format!("/api/v1/workflow-tasks/{id}/claim"),
        Some(&t.admin.access),
        json!({}),
    )
    .await
    .expect_error(403, "not_assignee");
    let claimed = app
        .post(
            &format!("/api/v1/workflow-tasks/{id}/claim"),
            Some(&t.bo.access),
            json!({}),
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(claimed["assignee"], t.bo.user_id.as_str());
    assert!(claimed["routing"]["claimed_at"].is_string());
    app.post(
        &format!("/api/v1/workflow-tasks/{id}/claim"),
        Some(&t.ann.access),
        json!({}),
    )
    .await
    .expect_error(403, "not_assignee");
    app.post(
        &format!("/api/v1/workflow-tasks/{id}/claim"),
        Some(&t.bo.access),
        json!({}),
    )
    .await
    .expect_error(409, "task_claimed");
    let inbox = app
        .get("/api/v1/workflow-tasks", &t.ann.access)
        .await
        .expect(200)
        .clone();
    assert!(!inbox["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["id"] == id));
    app.post(
        &format!("/api/v1/workflow-tasks/{}/claim", "no-such-task"),
        Some(&t.bo.access),
        json!({}),
    )
    .await
    .expect_error(404, "not_found");
    // A task shared with a role without routing is claimed too: it becomes the claimer's
    // alone.
    deploy(
        &app,
        &t.admin,
        &t.ws,
        "process: plain\nsteps:\n  - start: s\n  - user_task: any\n    role: member\n  - end: e\n",
    )
    .await;
    let plain = start(&app, &t.admin, &t.ws, "plain", json!({})).await;
    assert_eq!(plain["queue"]["kind"], "role", "{plain}");
    let taken = app
        .post(
            &format!(
                "/api/v1/workflow-tasks/{}/claim",
                plain["id"].as_str().unwrap()
            ),
            Some(&t.ann.access),
            json!({}),
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(taken["assignee"], t.ann.user_id.as_str(), "{taken}");
    assert!(taken["queue"].is_null(), "{taken}");
    let inbox = app
        .get("/api/v1/workflow-tasks", &t.bo.access)
        .await
        .expect(200)
        .clone();
    assert!(!inbox["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["id"] == plain["id"]));
    assert!(plain["routing"].is_null(), "{plain}");
    let events = app.audit_events(&t.admin.access).await;
    assert!(events
        .iter()
        .any(|e| e["action"] == "workflow.task_claimed" && e["outcome"] == "denied"));
    assert!(events
        .iter()
        .any(|e| e["action"] == "workflow.task_claimed" && e["outcome"] == "allowed"));
}

async fn presence_out_of_office_and_the_fallback(backend: Backend) {
    let app = crate::harness::spawn_app_with(backend, |c| c.workflows.routing_retry_ms = 200).await;
    let t = app.team().await;
    deploy(
        &app,
        &t.admin,
        &t.ws,
        "process: desk\nsteps:\n  - start: s\n  - user_task: help\n    role: member\n    \
         routing: {strategy: least_loaded, presence_aware: true, fallback_after: PT3S}\n  - end: e\n",
    )
    .await;
    // Nobody is connected: the task waits.
    let waiting = start(&app, &t.admin, &t.ws, "desk", json!({})).await;
    assert!(waiting["assignee"].is_null(), "{waiting}");
    assert_eq!(waiting["routing"]["outcome"], "waiting");
    assert!(
        waiting["routing"]["explanation"]
            .as_str()
            .unwrap()
            .contains("3 offline"),
        "{waiting}"
    );
    // Bo comes online: the next retry gives it to Bo.
    let bo_socket = app.socket(&t.bo.access, None).await;
    let routed = until_task(&app, &t.admin, &t.ws, &waiting, 10, |x| {
        !x["assignee"].is_null()
    })
    .await;
    assert_eq!(assignee(&routed), t.bo.user_id, "{routed}");
    drop(bo_socket);

    // Ann is online but out of office today; Cy is online: Cy gets it.
    let today = chrono::Utc::now().date_naive();
    set_routing(&app, &t.admin, &t.ws, &t.ann, json!({"out_of_office": {"from": today - chrono::Days::new(1), "until": today + chrono::Days::new(1)}})).await;
    let _ann_socket = app.socket(&t.ann.access, None).await;
    let _cy_socket = app.socket(&t.cy.access, None).await;
    let task = start(&app, &t.admin, &t.ws, "desk", json!({})).await;
    assert_eq!(assignee(&task), t.cy.user_id, "{task}");
    assert!(
        task["routing"]["explanation"]
            .as_str()
            .unwrap()
            .contains("1 out of office"),
        "{task}"
    );
    drop(_cy_socket);
    drop(_ann_socket);

    // Nobody available at all: after the fallback time presence is ignored.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stuck = start(&app, &t.admin, &t.ws, "desk", json!({})).await;
    assert_eq!(stuck["routing"]["outcome"], "waiting", "{stuck}");
    let fell_back = until_task(&app, &t.admin, &t.ws, &stuck, 15, |x| {
        !x["assignee"].is_null()
    })
    .await;
    let why = fell_back["routing"]["explanation"].as_str().unwrap();
    assert!(why.contains("presence ignored"), "{why}");
    // Least loaded with presence ignored, Ann still out of office: whoever has fewer tasks.
    assert_ne!(assignee(&fell_back), "", "{fell_back}");
}

async fn escalation_up_the_chain_on_time(backend: Backend) {
    let app = crate::harness::spawn_app(backend).await;
    let t = app.team().await;
    set_routing(
        &app,
        &t.admin,
        &t.ws,
        &t.ann,
        json!({"manager": t.cy.user_id}),
    )
    .await;
    deploy(
        &app,
        &t.admin,
        &t.ws,
        &format!(
            "process: urgent\nsteps:\n  - start: s\n  - user_task: fix\n    role: member\n    routing:\n      \
             strategy: person\n      id: \"{}\"\n      escalation:\n        - {{to: manager, after: PT1S, on: not_claimed}}\n        \
             - {{to: {{role: admin}}, after: PT3S, on: not_done}}\n  - end: e\n",
            t.ann.user_id
        ),
    )
    .await;
    let task = start(&app, &t.admin, &t.ws, "urgent", json!({})).await;
    assert_eq!(assignee(&task), t.ann.user_id, "{task}");
    // Not claimed within a second: Ann's manager has it.
    let up = until_task(&app, &t.admin, &t.ws, &task, 10, |x| {
        assignee(x) == t.cy.user_id
    })
    .await;
    assert_eq!(up["routing"]["outcome"], "escalated");
    assert_eq!(up["routing"]["escalation_level"], 1);
    assert!(
        up["routing"]["explanation"]
            .as_str()
            .unwrap()
            .contains("manager"),
        "{up}"
    );
    // Not done within three: the admins' queue.
    let queue = until_task(&app, &t.admin, &t.ws, &task, 10, |x| {
        x["routing"]["escalation_level"] == 2
    })
    .await;
    assert!(queue["assignee"].is_null(), "{queue}");
    assert!(queue["candidate_role"].is_string(), "{queue}");

    // Claimed in time, the first step passes it by.
    let kept = start(&app, &t.admin, &t.ws, "urgent", json!({})).await;
    app.post(
        &format!(
            "/api/v1/workflow-tasks/{}/claim",
            kept["id"].as_str().unwrap()
        ),
        Some(&t.ann.access),
        json!({}),
    )
    .await
    .expect(200);
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let still = task_of(&app, &t.admin, &t.ws, &kept).await;
    assert_eq!(assignee(&still), t.ann.user_id, "{still}");
    let events = app.audit_events(&t.admin.access).await;
    assert!(events
        .iter()
        .any(|e| e["action"] == "workflow.task_escalated"));
}

async fn the_learned_router_routes_when_confident_and_falls_back_below(backend: Backend) {
    let app = crate::harness::spawn_app(backend).await;
    let t = app.team().await;
    // A history: billing requests done by Ann, sign-in troubles by Bo.
    deploy(&app, &t.admin, &t.ws, "process: helpdesk\nsteps:\n  - start: s\n  - user_task: answer\n    person: ${who}\n  - end: e\n").await;
    let billing = [
        "refund for a double charge",
        "invoice shows the wrong amount",
        "card was charged twice",
        "cancel my subscription and refund",
        "billing address on the invoice",
        "환불 요청 결제 오류",
    ];
    let access = [
        "cannot sign in after password reset",
        "locked out of my account",
        "two-factor code never arrives",
        "reset my password please",
        "login page keeps failing",
        "비밀번호 재설정 로그인 불가",
    ];
    for n in 0..36 {
        let (subject, who) = if n % 2 == 0 {
            (billing[n / 2 % 6], &t.ann)
        } else {
            (access[n / 2 % 6], &t.bo)
        };
        let task = start(
            &app,
            &t.admin,
            &t.ws,
            "helpdesk",
            json!({"subject": format!("{subject} #{n}"), "who": who.user_id}),
        )
        .await;
        app.post(
            &format!(
                "/api/v1/workflow-tasks/{}/complete",
                task["id"].as_str().unwrap()
            ),
            Some(&who.access),
            json!({"variables": {}}),
        )
        .await
        .expect(200);
    }
    let router = format!("{}/workflows/helpdesk/router", base(&t.ws));
    app.get(&router, &t.admin.access)
        .await
        .expect_error(404, "not_found");
    app.post(&router, Some(&t.ann.access), json!({}))
        .await
        .expect_error(403, "forbidden");
    app.post(
        &format!("{}/workflows/nothing/router", base(&t.ws)),
        Some(&t.admin.access),
        json!({}),
    )
    .await
    .expect_error(404, "not_found");

    // Before a model exists, the rules route and say so.
    deploy(&app, &t.admin, &t.ws, "process: helpdesk\nsteps:\n  - start: s\n  - user_task: answer\n    role: member\n    routing: {strategy: round_robin, learned: {threshold: 0.5}}\n  - end: e\n").await;
    let early = start(
        &app,
        &t.admin,
        &t.ws,
        "helpdesk",
        json!({"subject": "refund my invoice"}),
    )
    .await;
    assert!(
        early["routing"]["explanation"]
            .as_str()
            .unwrap()
            .contains("no learned model yet"),
        "{early}"
    );
    app.post(
        &format!(
            "/api/v1/workflow-tasks/{}/claim",
            early["id"].as_str().unwrap()
        ),
        Some(&t.ann.access),
        json!({}),
    )
    .await;

    let model = app
        .post(&router, Some(&t.admin.access), json!({}))
        .await
        .expect(201)
        .clone();
    assert_eq!(model["version"], 1);
    assert_eq!(model["labels"], 2);
    assert_eq!(
        app.get(&router, &t.admin.access).await.expect(200)["version"],
        1
    );

    let routed = start(
        &app,
        &t.admin,
        &t.ws,
        "helpdesk",
        json!({"subject": "the invoice charged my card twice, refund please"}),
    )
    .await;
    assert_eq!(assignee(&routed), t.ann.user_id, "{routed}");
    assert_eq!(routed["routing"]["by_model"], true, "{routed}");
    assert_eq!(routed["routing"]["model_version"], 1);
    let confidence = routed["routing"]["confidence"].as_f64().unwrap();
    assert!(confidence >= 0.5, "{routed}");
    assert!(
        routed["routing"]["explanation"]
            .as_str()
            .unwrap()
            .starts_with("learned model v1"),
        "{routed}"
    );
    let other = start(
        &app,
        &t.admin,
        &t.ws,
        "helpdesk",
        json!({"subject": "비밀번호 재설정 로그인 불가, locked out"}),
    )
    .await;
    assert_eq!(assignee(&other), t.bo.user_id, "{other}");

    // No prediction clears a threshold of 1: the rules decide, and the task says why.
    deploy(&app, &t.admin, &t.ws, "process: helpdesk\nsteps:\n  - start: s\n  - user_task: answer\n    role: member\n    routing: {strategy: queue, learned: {threshold: 1.0}}\n  - end: e\n").await;
    let fallback = start(
        &app,
        &t.admin,
        &t.ws,
        "helpdesk",
        json!({"subject": "the invoice charged my card twice, refund please"}),
    )
    .await;
    assert!(fallback["assignee"].is_null(), "{fallback}");
    assert_eq!(fallback["routing"]["by_model"], false);
    assert_eq!(fallback["routing"]["model_version"], 1);
    assert!(fallback["routing"]["confidence"].is_number());
    assert!(
        fallback["routing"]["explanation"]
            .as_str()
            .unwrap()
            .contains("below 100%"),
        "{fallback}"
    );
    // An operator retrains from the command line; a process without one is one line on stderr.
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
            .args(app.cli_args())
            .args(["routing", "train", "--workspace", &t.ws])
            .args(args)
            .output()
            .unwrap()
    };
    let out = cli(&["--process", "helpdesk"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Trained router v2"),
        "{out:?}"
    );
    let out = cli(&["--process", "nothing"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim().lines().count(),
        1,
        "{out:?}"
    );
    assert_eq!(
        app.get(&router, &t.admin.access).await.expect(200)["version"],
        2
    );
    let events = app.audit_events(&t.admin.access).await;
    assert!(events
        .iter()
        .any(|e| e["action"] == "workflow.router_trained" && e["details"]["version"] == 1));
}

both_backends!(
    skills_capacity_load_and_who_may_set_what,
    round_robin_and_a_shared_queue_someone_claims,
    presence_out_of_office_and_the_fallback,
    escalation_up_the_chain_on_time,
    the_learned_router_routes_when_confident_and_falls_back_below,
);
