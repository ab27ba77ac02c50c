//! The workflow engine, element by element: BPMN in, inputs in, commands and state out.
//!
//! Each test parses a model (a fixture saved the way bpmn-js saves it, or a small process
//! written inline), validates it, starts an instance and plays the server's part: it answers
//! the commands with inputs and checks what the engine asks for next.

use chrono::{DateTime, Duration, TimeZone, Utc};
use concord_workflow::command::{HistoryEntry, HistoryEvent, HttpRequest};
use concord_workflow::engine::Error;
use concord_workflow::model::{Assignment, PostTarget};
use concord_workflow::state::Status;
use concord_workflow::{
    bpmn, export, validate, yaml, Command, Engine, Input, InstanceState, ProcessModel,
};
use serde_json::{json, Map, Value};

mod decisions;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 4, 9, 0, 0).unwrap()
}

fn vars(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A process written inline, with a few messages, errors and signals declared.
fn process(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:concord="https://concord.dev/bpmn" id="D" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:message id="Msg_Go" name="go" />
  <bpmn:message id="Msg_Pay" name="payment" />
  <bpmn:error id="Err_A" errorCode="A" />
  <bpmn:signal id="Sig_Stop" name="stop" />
  <bpmn:process id="p" isExecutable="true">
{body}
  </bpmn:process>
</bpmn:definitions>"#
    )
}

fn flow(id: &str, from: &str, to: &str) -> String {
    format!(r#"<bpmn:sequenceFlow id="{id}" sourceRef="{from}" targetRef="{to}" />"#)
}

fn cond_flow(id: &str, from: &str, to: &str, condition: &str) -> String {
    format!(
        r#"<bpmn:sequenceFlow id="{id}" sourceRef="{from}" targetRef="{to}"><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}</bpmn:conditionExpression></bpmn:sequenceFlow>"#
    )
}

fn user_task(id: &str) -> String {
    format!(r#"<bpmn:userTask id="{id}" concord:assignee="alice" />"#)
}

fn service_task(id: &str, attempts: u32) -> String {
    format!(
        r#"<bpmn:serviceTask id="{id}"><bpmn:extensionElements>
  <concord:http method="POST" url="https://svc.example/{id}"><concord:output variable="{id}_out" expression="response.body" /></concord:http>
  <concord:retry attempts="{attempts}" backoff="PT5S" multiplier="2" />
</bpmn:extensionElements></bpmn:serviceTask>"#
    )
}

fn parse_valid(xml: &str) -> ProcessModel {
    let model = bpmn::parse(xml).unwrap_or_else(|p| panic!("parse: {p}"));
    validate::validate(&model).unwrap_or_else(|p| panic!("validate: {p}"));
    model
}

/// Plays the server: holds the state, collects commands and history.
struct Instance {
    model: ProcessModel,
    state: InstanceState,
    commands: Vec<Command>,
    history: Vec<HistoryEntry>,
    now: DateTime<Utc>,
}

impl Instance {
    fn start(xml: &str, v: Value) -> Instance {
        let model = parse_valid(xml);
        let t = Engine::start(&model, "i1", vars(v), t0()).unwrap();
        let mut i = Instance {
            model,
            state: t.state.clone(),
            commands: Vec::new(),
            history: Vec::new(),
            now: t0(),
        };
        i.absorb(t.commands, t.history);
        i
    }

    fn absorb(&mut self, commands: Vec<Command>, history: Vec<HistoryEntry>) {
        for h in &history {
            assert_eq!(
                h.step,
                self.history.len() as u64 + 1,
                "history steps have no gaps"
            );
            self.history.push(h.clone());
        }
        self.commands.extend(commands);
    }

    fn try_send(&mut self, input: Input) -> Result<Vec<Command>, Error> {
        // The state survives being stored as JSON between inputs.
        let stored = serde_json::to_string(&self.state).unwrap();
        let loaded: InstanceState = serde_json::from_str(&stored).unwrap();
        assert_eq!(loaded, self.state);
        let t = Engine::handle(&self.model, &loaded, input, self.now)?;
        self.state = t.state;
        let new = t.commands.clone();
        self.absorb(t.commands, t.history);
        Ok(new)
    }

    fn send(&mut self, input: Input) -> Vec<Command> {
        self.try_send(input).unwrap()
    }

    fn tasks(&self, element: &str) -> Vec<String> {
        self.state
            .user_tasks
            .iter()
            .filter(|(_, t)| t.element == element)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn task(&self, element: &str) -> String {
        let t = self.tasks(element);
        assert_eq!(
            t.len(),
            1,
            "one open task at {element}: {:?}",
            self.state.user_tasks
        );
        t[0].clone()
    }

    fn complete(&mut self, element: &str, v: Value) -> Vec<Command> {
        let task_id = self.task(element);
        self.send(Input::TaskCompleted {
            task_id,
            actor: "alice".into(),
            variables: vars(v),
        })
    }

    /// The call in flight for an element, from the commands: (call id, key, attempt, request).
    fn call(&self, element: &str) -> (String, String, u32, HttpRequest) {
        self.commands
            .iter()
            .rev()
            .find_map(|c| match c {
                Command::CallService {
                    call_id,
                    idempotency_key,
                    element: e,
                    attempt,
                    request,
                } if e == element && self.state.calls.get(call_id).is_some_and(|p| p.in_flight) => {
                    Some((
                        call_id.clone(),
                        idempotency_key.clone(),
                        *attempt,
                        request.clone(),
                    ))
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no call in flight at {element}"))
    }

    fn ok(&mut self, element: &str, body: Value) -> Vec<Command> {
        let call_id = self.call(element).0;
        self.send(Input::ServiceCallSucceeded {
            call_id,
            response: json!({"status": 200, "body": body}),
        })
    }

    fn fail(&mut self, element: &str, error: &str, retryable: bool) -> Vec<Command> {
        let call_id = self.call(element).0;
        self.send(Input::ServiceCallFailed {
            call_id,
            error: error.into(),
            retryable,
        })
    }

    /// The scheduled timer for an element: (timer id, due).
    fn timer(&self, element: &str) -> (String, DateTime<Utc>) {
        self.commands
            .iter()
            .rev()
            .find_map(|c| match c {
                Command::ScheduleTimer {
                    timer_id,
                    element: e,
                    due,
                } if e == element && self.state.timers.contains_key(timer_id) => {
                    Some((timer_id.clone(), *due))
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no timer scheduled at {element}"))
    }

    fn fire(&mut self, element: &str) -> Vec<Command> {
        let (timer_id, due) = self.timer(element);
        self.now = due;
        self.send(Input::TimerFired { timer_id })
    }

    fn message(
        &mut self,
        name: &str,
        correlation: Option<Value>,
        v: Value,
    ) -> Result<Vec<Command>, Error> {
        self.try_send(Input::MessageReceived {
            name: name.into(),
            correlation,
            variables: vars(v),
        })
    }

    fn status(&self) -> Status {
        self.state.status.clone()
    }

    fn var(&self, name: &str) -> Value {
        self.state
            .variables
            .get(name)
            .cloned()
            .unwrap_or(Value::Null)
    }

    fn entered(&self, element: &str) -> bool {
        self.history.iter().any(|h| {
            h.element.as_deref() == Some(element)
                && h.event == concord_workflow::command::HistoryEvent::Entered
        })
    }

    fn posts(&self) -> Vec<(PostTarget, String)> {
        self.commands
            .iter()
            .filter_map(|c| match c {
                Command::Post { to, text, .. } => Some((to.clone(), text.clone())),
                _ => None,
            })
            .collect()
    }

    fn incident(&self) -> String {
        assert_eq!(
            self.state.incidents.len(),
            1,
            "one incident: {:?}",
            self.state.incidents
        );
        self.state.incidents.keys().next().unwrap().clone()
    }
}

// ----- BPMN: parse, refuse, export -------------------------------------------------------

#[test]
fn bpmn_js_fixture_parses_validates_and_lists_references() {
    let model = parse_valid(&fixture("document_approval.bpmn"));
    assert_eq!(model.id, "document_approval");
    assert_eq!(model.elements.len(), 11);
    assert_eq!(model.flows.len(), 9);
    let review = model.element("Task_Review").unwrap();
    assert_eq!(review.line, Some(7));
    let refs = validate::validate(&model).unwrap();
    assert_eq!(refs.forms.iter().collect::<Vec<_>>(), vec!["approval"]);
    assert_eq!(
        model.annotations[0].text,
        "Escalates to the manager after 24 hours"
    );
    assert!(model
        .diagram
        .as_ref()
        .unwrap()
        .xml
        .contains("Activity_0review_di"));
}

#[test]
fn export_round_trips_the_model_and_keeps_the_layout() {
    for name in ["document_approval.bpmn", "purchase_order.bpmn"] {
        let original = parse_valid(&fixture(name));
        let xml = export::to_bpmn(&original);
        let again = parse_valid(&xml);
        assert_eq!(again.without_lines(), original.without_lines(), "{name}");
        let di = &original.diagram.as_ref().unwrap().xml;
        assert!(
            xml.contains(di.as_str()),
            "{name}: the diagram is written back verbatim"
        );
        let third = export::to_bpmn(&again);
        assert_eq!(third, xml, "{name}: export is stable");
    }
}

#[test]
fn a_file_written_again_by_bpmn_js_reads_as_the_same_model() {
    let ours = parse_valid(&fixture("purchase_order.bpmn"));
    let resaved = parse_valid(&fixture("purchase_order_resaved.bpmn"));
    let bare = |m: ProcessModel| ProcessModel {
        diagram: None,
        ..m.without_lines()
    };
    assert_eq!(bare(resaved.clone()), bare(ours));
    // The resaved diagram still has a shape or edge for every element and flow.
    let di = resaved.diagram.unwrap().xml;
    for id in resaved
        .elements
        .iter()
        .map(|e| &e.id)
        .chain(resaved.flows.iter().map(|f| &f.id))
    {
        assert!(di.contains(&format!("bpmnElement=\"{id}\"")), "{id}");
    }
}

#[test]
fn unsupported_elements_are_refused_with_id_line_and_what_is_supported() {
    let problems = bpmn::parse(&fixture("unsupported.bpmn")).unwrap_err().0;
    let find = |id: &str| {
        problems
            .iter()
            .find(|p| p.element.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("no problem for {id}: {problems:?}"))
    };
    let script = find("Script_1");
    assert_eq!(script.line, Some(7));
    assert!(script.message.contains("scriptTask is not supported"));
    assert!(
        script.message.contains("userTask"),
        "lists what is supported"
    );
    assert!(problems
        .iter()
        .any(|p| p.element.as_deref() == Some("Zeebe_Task")
            && p.line == Some(14)
            && p.message.contains("taskDefinition")));
    assert!(find("Escalate_1")
        .message
        .contains("escalationEventDefinition"));
    assert!(problems.len() >= 3);
}

#[test]
fn camunda_attributes_are_read_as_aliases() {
    let xml = process(&format!(
        r#"<bpmn:startEvent id="S" /><bpmn:userTask id="T" camunda:candidateGroups="finance" camunda:formKey="po" /><bpmn:endEvent id="E" />{}{}"#,
        flow("F1", "S", "T"),
        flow("F2", "T", "E")
    ))
    .replace("xmlns:concord=", "xmlns:camunda=\"http://camunda.org/schema/1.0/bpmn\" xmlns:concord=");
    let mut i = Instance::start(&xml, json!({}));
    assert!(i.commands.iter().any(|c| matches!(c, Command::CreateUserTask { assignment: Assignment::Role(r), form_key: Some(f), .. } if r == "finance" && f == "po")));
    i.complete("T", json!({}));
    assert_eq!(i.status(), Status::Completed);
}

#[test]
fn malformed_xml_is_refused_with_its_line() {
    let problems = bpmn::parse("<bpmn:definitions>\n<oops").unwrap_err().0;
    assert_eq!(problems.len(), 1);
    assert!(problems[0].line.is_some());
}

#[test]
fn validation_reports_every_problem_by_element() {
    let s = r#"<bpmn:startEvent id="S" />"#;
    let e = r#"<bpmn:endEvent id="E" />"#;
    // (case, process body, element named, words in the message)
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "dangling flow",
            format!(
                "{s}{e}{}{}",
                flow("F1", "S", "E"),
                flow("F2", "S", "Nowhere")
            ),
            "F2",
            "does not exist",
        ),
        (
            "dead end",
            format!("{s}{e}{}{}", user_task("T"), flow("F1", "S", "T")),
            "T",
            "no path",
        ),
        (
            "condition does not parse",
            format!(
                r#"{s}{e}<bpmn:exclusiveGateway id="G" default="F3" />{}{}{}"#,
                flow("F1", "S", "G"),
                cond_flow("F2", "G", "E", "amount &gt;"),
                flow("F3", "G", "E")
            ),
            "F2",
            "does not parse",
        ),
        (
            "no default flow",
            format!(
                r#"{s}{e}<bpmn:exclusiveGateway id="G" />{}{}{}"#,
                flow("F1", "S", "G"),
                cond_flow("F2", "G", "E", "amount &gt; 1"),
                cond_flow("F3", "G", "E", "amount &lt;= 1")
            ),
            "G",
            "default flow",
        ),
        (
            "bad timer",
            format!(
                r#"{s}{e}<bpmn:intermediateCatchEvent id="W"><bpmn:timerEventDefinition><bpmn:timeDuration>1 hour</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>{}{}"#,
                flow("F1", "S", "W"),
                flow("F2", "W", "E")
            ),
            "W",
            "starts with P",
        ),
        (
            "undefined message",
            format!(
                r#"{s}{e}<bpmn:receiveTask id="R" messageRef="Msg_Nope" />{}{}"#,
                flow("F1", "S", "R"),
                flow("F2", "R", "E")
            ),
            "R",
            "not defined",
        ),
        (
            "condition on a plain flow",
            format!("{s}{e}{}", cond_flow("F1", "S", "E", "true")),
            "F1",
            "conditions are supported",
        ),
    ];
    for (case, body, element, words) in cases {
        let model = bpmn::parse(&process(&body)).unwrap_or_else(|p| panic!("{case}: {p}"));
        let problems = validate::validate(&model).expect_err(case).0;
        assert!(
            problems
                .iter()
                .any(|p| p.element.as_deref() == Some(element)
                    && p.message.contains(words)
                    && p.line.is_some()),
            "{case}: {problems:?}"
        );
    }
    // All problems at once, not the first only.
    let body = format!(
        "{s}{e}{}{}{}",
        user_task("T"),
        flow("F1", "S", "T"),
        flow("F2", "S", "Gone")
    );
    let problems = validate::validate(&bpmn::parse(&process(&body)).unwrap())
        .unwrap_err()
        .0;
    assert!(problems.len() >= 2, "{problems:?}");
}

#[test]
fn the_yaml_form_gives_the_same_process_as_bpmn() {
    let from_yaml = concord_workflow::yaml::parse(&fixture("document_approval.yaml"))
        .unwrap_or_else(|p| panic!("{p}"));
    validate::validate(&from_yaml).unwrap_or_else(|p| panic!("{p}"));
    let from_bpmn = parse_valid(&fixture("document_approval.bpmn"));
    // The same elements; flow ids are generated from their ends.
    let mut a = from_yaml.without_lines().elements;
    let mut b = from_bpmn.without_lines().elements;
    a.sort_by(|x, y| x.id.cmp(&y.id));
    b.sort_by(|x, y| x.id.cmp(&y.id));
    let strip = |els: &mut Vec<concord_workflow::model::Element>| {
        for e in els.iter_mut() {
            if let concord_workflow::model::ElementKind::Gateway { default_flow, .. } = &mut e.kind
            {
                *default_flow = None;
            }
        }
    };
    strip(&mut a);
    strip(&mut b);
    assert_eq!(a, b);
    let ends = |m: &ProcessModel| {
        let mut f: Vec<(String, String, Option<String>)> = m
            .flows
            .iter()
            .map(|f| (f.source.clone(), f.target.clone(), f.condition.clone()))
            .collect();
        f.sort();
        f
    };
    assert_eq!(ends(&from_yaml), ends(&from_bpmn));
    // It exports as BPMN that reads back as the same model.
    let xml = export::to_bpmn(&from_yaml);
    let back = parse_valid(&xml);
    assert_eq!(
        ProcessModel {
            diagram: None,
            ..back.without_lines()
        },
        from_yaml
    );
    // with a generated diagram: a shape for every element, an edge for every flow.
    let di = back.diagram.unwrap().xml;
    for e in &from_yaml.elements {
        assert!(
            di.contains(&format!("bpmnElement=\"{}\"", e.id)),
            "{} has a shape",
            e.id
        );
    }
    for f in &from_yaml.flows {
        assert!(
            di.contains(&format!("bpmnElement=\"{}\"", f.id)),
            "{} has an edge",
            f.id
        );
    }
}

#[test]
fn the_yaml_form_refuses_unknown_kinds_and_settings_by_step() {
    let problems = concord_workflow::yaml::parse(
        "process: p\nsteps:\n  - start: s\n  - script_task: x\n  - user_task: t\n    assignee: bob\n  - end: e\n",
    )
    .unwrap_err()
    .0;
    assert!(problems
        .iter()
        .any(|p| p.element.as_deref() == Some("x") && p.message.contains("unknown kind")));
    assert!(problems
        .iter()
        .any(|p| p.element.as_deref() == Some("t") && p.message.contains("\"assignee\"")));
}

#[test]
fn a_yaml_process_runs_parallel_work_a_sub_process_and_compensation() {
    let model = concord_workflow::yaml::parse(&fixture("onboarding.yaml"))
        .unwrap_or_else(|p| panic!("{p}"));
    validate::validate(&model).unwrap_or_else(|p| panic!("{p}"));
    let xml = export::to_bpmn(&model);
    let start = |xml: &str| Instance::start(xml, json!({"login": "dana", "manager": "erin"}));
    let mut i = start(&xml);
    i.ok("create_account", json!({"id": "acc-1"}));
    i.complete("it", json!({}));
    i.complete("hr", json!({}));
    assert!(i.commands.iter().any(|c| matches!(c, Command::CreateUserTask { assignment: Assignment::Person(p), .. } if p == "erin")));
    i.complete("pick_buddy", json!({"buddy": "finn"}));
    assert_eq!(
        i.posts(),
        vec![(
            PostTarget::Channel("general".into()),
            "Welcome dana!".into()
        )]
    );
    assert_eq!(i.status(), Status::Completed);

    // No buddy: the sub-process's error ends it, the other branches are terminated after the
    // account is deleted again.
    let mut j = start(&xml);
    j.ok("create_account", json!({"id": "acc-1"}));
    j.complete("pick_buddy", json!({"buddy": ""}));
    assert_eq!(
        j.call("delete_account").3.url,
        "https://it.example/accounts/acc-1"
    );
    j.ok("delete_account", json!({}));
    assert_eq!(j.status(), Status::Terminated);
    assert!(j.state.user_tasks.is_empty());
}

// ----- events, tasks and gateways ---------------------------------------------------------

#[test]
fn document_approval_runs_user_task_gateway_service_and_send_tasks() {
    let mut i = Instance::start(
        &fixture("document_approval.bpmn"),
        json!({"docId": "D-1", "title": "Q3 report", "author": "bob", "manager": "carol"}),
    );
    let created = i.commands.iter().find_map(|c| match c {
        Command::CreateUserTask {
            assignment,
            form_key,
            due,
            ..
        } => Some((assignment.clone(), form_key.clone(), *due)),
        _ => None,
    });
    assert_eq!(
        created,
        Some((
            Assignment::Role("approvers".into()),
            Some("approval".into()),
            Some(t0() + Duration::days(2))
        ))
    );
    i.complete(
        "Task_Review",
        json!({"approved": true, "approver": "alice"}),
    );
    // The SLA timer of the completed task is cancelled.
    assert!(i
        .commands
        .iter()
        .any(|c| matches!(c, Command::CancelTimer { .. })));
    let (_, key, attempt, request) = i.call("Task_Publish");
    assert_eq!(attempt, 1);
    assert_eq!(
        key,
        "i1:Task_Publish:".to_string() + key.rsplit(':').next().unwrap()
    );
    assert_eq!(request.url, "https://docs.example/api/publish/D-1");
    assert_eq!(
        request.body,
        Some(json!({"document": "D-1", "approver": "alice", "note": "approved by alice"}))
    );
    i.ok("Task_Publish", json!({"url": "https://docs.example/d/1"}));
    assert_eq!(i.var("publishedUrl"), json!("https://docs.example/d/1"));
    assert_eq!(
        i.posts(),
        vec![(
            PostTarget::Channel("documents".into()),
            "Q3 report is approved: https://docs.example/d/1".into()
        )]
    );
    assert_eq!(i.status(), Status::Completed);
    assert!(matches!(
        i.commands.last(),
        Some(Command::Completed {
            status: Status::Completed,
            ..
        })
    ));
    assert!(
        i.try_send(Input::Cancel { actor: "op".into() }).is_err(),
        "an ended instance takes no input"
    );
}

#[test]
fn non_interrupting_sla_timer_escalates_and_the_task_stays_open() {
    let mut i = Instance::start(
        &fixture("document_approval.bpmn"),
        json!({"docId": "D-1", "title": "Q3 report", "author": "bob", "manager": "carol"}),
    );
    let (_, due) = i.timer("Boundary_Sla");
    assert_eq!(due, t0() + Duration::hours(24));
    i.fire("Boundary_Sla");
    assert_eq!(
        i.posts(),
        vec![(
            PostTarget::Person("carol".into()),
            "The review of Q3 report is late".into()
        )]
    );
    i.task("Task_Review");
    assert_eq!(i.status(), Status::Running);
    i.complete("Task_Review", json!({"approved": false}));
    assert_eq!(
        i.posts()[1],
        (
            PostTarget::Person("bob".into()),
            "Q3 report was not approved".into()
        )
    );
    assert_eq!(i.status(), Status::Completed);
}

#[test]
fn interrupting_timer_boundary_cancels_the_task() {
    let body = format!(
        r#"<bpmn:startEvent id="S" />{}<bpmn:boundaryEvent id="B" attachedToRef="T"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>
<bpmn:endEvent id="E" /><bpmn:endEvent id="Late" />{}{}{}"#,
        user_task("T"),
        flow("F1", "S", "T"),
        flow("F2", "T", "E"),
        flow("F3", "B", "Late")
    );
    let mut i = Instance::start(&process(&body), json!({}));
    let task = i.task("T");
    let cmds = i.fire("B");
    assert!(cmds.contains(&Command::CancelUserTask {
        task_id: task.clone()
    }));
    assert!(i.entered("Late"));
    assert_eq!(i.status(), Status::Completed);
    let err = i.try_send(Input::TaskCompleted {
        task_id: task,
        actor: "alice".into(),
        variables: Map::new(),
    });
    assert!(matches!(err, Err(Error::NotRunning(_))));
}

#[test]
fn a_timer_on_a_sub_process_cancels_everything_inside() {
    let body = format!(
        r#"<bpmn:startEvent id="S" /><bpmn:subProcess id="Sub"><bpmn:startEvent id="In" />{}{}<bpmn:endEvent id="InEnd" />{}{}{}</bpmn:subProcess>
<bpmn:boundaryEvent id="B" attachedToRef="Sub"><bpmn:timerEventDefinition><bpmn:timeDuration>P3D</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>
<bpmn:endEvent id="E" /><bpmn:endEvent id="Late" />{}{}{}"#,
        user_task("T"),
        service_task("C", 1),
        flow("f1", "In", "T"),
        flow("f2", "T", "C"),
        flow("f3", "C", "InEnd"),
        flow("F1", "S", "Sub"),
        flow("F2", "Sub", "E"),
        flow("F3", "B", "Late")
    );
    let mut i = Instance::start(&process(&body), json!({}));
    let task = i.task("T");
    let cmds = i.fire("B");
    assert!(cmds.contains(&Command::CancelUserTask { task_id: task }));
    assert!(i.entered("Late") && !i.entered("E"));
    assert!(i.state.executions.is_empty());
    assert_eq!(i.status(), Status::Completed);
}

#[test]
fn an_incident_retried_at_an_activity_keeps_its_boundary_timer() {
    let body = format!(
        r#"<bpmn:startEvent id="S" /><bpmn:serviceTask id="C"><bpmn:extensionElements><concord:http method="GET" url="https://svc.example/${{missing}}" /></bpmn:extensionElements></bpmn:serviceTask>
<bpmn:boundaryEvent id="B" cancelActivity="false" attachedToRef="C"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>
<bpmn:endEvent id="E" /><bpmn:endEvent id="Nudge" />{}{}{}"#,
        flow("F1", "S", "C"),
        flow("F2", "C", "E"),
        flow("F3", "B", "Nudge")
    );
    let mut i = Instance::start(&process(&body), json!({}));
    let incident = i.incident();
    assert!(
        i.state.incidents[&incident].message.contains("${missing}")
            || i.state.incidents[&incident].message.contains("missing")
    );
    i.state.variables.insert("missing".into(), json!("x"));
    i.send(Input::IncidentRetry {
        incident_id: incident,
    });
    assert_eq!(
        i.state.timers.len(),
        1,
        "one boundary timer, not one per entry"
    );
    assert_eq!(i.call("C").3.url, "https://svc.example/x");
}

#[test]
fn cycle_timer_boundary_repeats_as_often_as_written() {
    let body = format!(
        r#"<bpmn:startEvent id="S" />{}<bpmn:boundaryEvent id="B" cancelActivity="false" attachedToRef="T"><bpmn:timerEventDefinition><bpmn:timeCycle>R2/PT1H</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:boundaryEvent>
<bpmn:endEvent id="E" /><bpmn:endEvent id="Nudged" />{}{}{}"#,
        user_task("T"),
        flow("F1", "S", "T"),
        flow("F2", "T", "E"),
        flow("F3", "B", "Nudged")
    );
    let mut i = Instance::start(&process(&body), json!({}));
    assert_eq!(i.timer("B").1, t0() + Duration::hours(1));
    i.fire("B");
    assert_eq!(i.timer("B").1, t0() + Duration::hours(2));
    i.fire("B");
    assert!(i.state.timers.is_empty(), "R2 fires twice");
    i.task("T");
}

#[test]
fn cron_timers_fire_on_their_schedule() {
    use concord_workflow::timer::TimerDefinition;
    // Weekdays at 09:30 UTC; t0 is Monday 2027-01-04 09:00.
    let cron = TimerDefinition::Cycle("0 30 9 * * Mon-Fri".into());
    let first = cron.first_due(t0()).unwrap();
    assert_eq!(first, Utc.with_ymd_and_hms(2027, 1, 4, 9, 30, 0).unwrap());
    assert_eq!(
        cron.next_due(first, 1, first).unwrap(),
        Some(Utc.with_ymd_and_hms(2027, 1, 5, 9, 30, 0).unwrap())
    );
    let friday = Utc.with_ymd_and_hms(2027, 1, 8, 9, 30, 0).unwrap();
    assert_eq!(
        cron.next_due(friday, 5, friday).unwrap(),
        Some(Utc.with_ymd_and_hms(2027, 1, 11, 9, 30, 0).unwrap())
    );
    assert!(TimerDefinition::Cycle("every monday".into())
        .check()
        .is_err());
    assert_eq!(
        TimerDefinition::Cycle("R/2027-01-01T00:00:00Z/P1D".into())
            .first_due(t0())
            .unwrap(),
        Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
    );
}

#[test]
fn user_task_completed_twice_or_unknown_is_refused() {
    let body = format!(
        r#"<bpmn:startEvent id="S" />{}{}<bpmn:endEvent id="E" />{}{}{}"#,
        user_task("T"),
        user_task("T2"),
        flow("F1", "S", "T"),
        flow("F2", "T", "T2"),
        flow("F3", "T2", "E")
    );
    let mut i = Instance::start(&process(&body), json!({}));
    let task = i.task("T");
    let before = i.state.clone();
    assert_eq!(
        i.try_send(Input::TaskCompleted {
            task_id: "nope".into(),
            actor: "a".into(),
            variables: Map::new()
        }),
        Err(Error::UnknownTask("nope".into()))
    );
    assert_eq!(i.state, before, "a refused input changes nothing");
    i.complete("T", json!({"x": 1}));
    assert_eq!(i.var("x"), json!(1));
    let history = i
        .history
        .iter()
        .find(|h| h.actor.as_deref() == Some("alice"))
        .unwrap();
    assert_eq!(
        history.changed,
        vars(json!({"x": 1})),
        "the history names who changed what"
    );
    assert_eq!(
        i.try_send(Input::TaskCompleted {
            task_id: task.clone(),
            actor: "a".into(),
            variables: Map::new()
        }),
        Err(Error::TaskAlreadyCompleted(task))
    );
}

#[test]
fn service_task_retries_with_backoff_and_one_idempotency_key_then_raises_an_incident() {
    let body = format!(
        r#"<bpmn:startEvent id="S" />{}<bpmn:endEvent id="E" />{}{}"#,
        service_task("C", 3),
        flow("F1", "S", "C"),
        flow("F2", "C", "E")
    );
    let mut i = Instance::start(&process(&body), json!({}));
    let (first_call, key, attempt, _) = i.call("C");
    assert_eq!(attempt, 1);
    i.fail("C", "503", true);
    assert_eq!(i.timer("C").1, t0() + Duration::seconds(5));
    i.fire("C");
    let (second_call, key2, attempt, _) = i.call("C");
    assert_eq!((key2.as_str(), attempt), (key.as_str(), 2));
    assert_ne!(second_call, first_call);
    // A late answer to a superseded attempt is refused.
    assert_eq!(
        i.try_send(Input::ServiceCallSucceeded {
            call_id: first_call.clone(),
            response: json!({})
        }),
        Err(Error::UnknownCall(first_call))
    );
    let before = i.now;
    i.fail("C", "503", true);
    assert_eq!(
        i.timer("C").1,
        before + Duration::seconds(10),
        "backoff doubles"
    );
    i.fire("C");
    i.fail("C", "503", true);
    let incident = i.incident();
    assert!(i.commands.iter().any(|c| matches!(c, Command::RaiseIncident { element, message, .. } if element == "C" && message.contains("3 attempt"))));
    i.send(Input::IncidentRetry {
        incident_id: incident,
    });
    let (_, key4, attempt, _) = i.call("C");
    assert_eq!(
        (key4.as_str(), attempt),
        (key.as_str(), 4),
        "a retried incident keeps the key"
    );
    i.ok("C", json!({"done": true}));
    assert_eq!(i.var("C_out"), json!({"done": true}));
    assert_eq!(i.status(), Status::Completed);
}

#[test]
fn incident_skip_sets_variables_and_continues_and_cancel_ends_the_instance() {
    let body = format!(
        r#"<bpmn:startEvent id="S" />{}<bpmn:endEvent id="E" />{}{}"#,
        service_task("C", 1),
        flow("F1", "S", "C"),
        flow("F2", "C", "E")
    );
    let mut i = Instance::start(&process(&body), json!({}));
    i.fail("C", "400 bad request", false);
    let incident = i.incident();
    i.send(Input::IncidentSkip {
        incident_id: incident,
        variables: vars(json!({"C_out": "manual"})),
    });
    assert_eq!(i.var("C_out"), json!("manual"));
    assert_eq!(i.status(), Status::Completed);

    let mut j = Instance::start(&process(&body), json!({}));
    j.fail("C", "400", false);
    let incident = j.incident();
    j.send(Input::IncidentCancel {
        incident_id: incident,
    });
    assert_eq!(j.status(), Status::Cancelled);
}

#[test]
fn exclusive_gateway_takes_the_first_true_condition_or_the_default() {
    let body = format!(
        r#"<bpmn:startEvent id="S" /><bpmn:exclusiveGateway id="G" default="Fd" />
<bpmn:endEvent id="Big" /><bpmn:endEvent id="Medium" /><bpmn:endEvent id="Small" />{}{}{}{}"#,
        flow("F1", "S", "G"),
        cond_flow("Fb", "G", "Big", "amount &gt; 1000"),
        cond_flow("Fm", "G", "Medium", "${amount &gt; 100}"),
        flow("Fd", "G", "Small")
    );
    let xml = process(&body);
    for (amount, end) in [(5000, "Big"), (500, "Medium"), (5, "Small")] {
        let i = Instance::start(&xml, json!({ "amount": amount }));
        assert!(i.entered(end), "amount {amount} ends at {end}");
        assert_eq!(
            ["Big", "Medium", "Small"]
                .iter()
                .filter(|e| i.entered(e))
                .count(),
            1
        );
    }
    // A condition that fails to evaluate stops on an incident naming the expression.
    let i = Instance::start(&xml, json!({ "amount": "a lot" }));
    assert_eq!(i.status(), Status::Running);
    assert!(i
        .state
        .incidents
        .values()
        .next()
        .unwrap()
        .message
        .contains("amount > 1000"));
}

#[test]
fn parallel_gateway_forks_and_joins() {
    let body = format!(
        r#"<bpmn:startEvent id="S" /><bpmn:parallelGateway id="Fork" />{}{}<bpmn:parallelGateway id="Join" /><bpmn:endEvent id="E" />
{}{}{}{}{}{}"#,
        user_task("IT"),
        user_task("HR"),
        flow("F1", "S", "Fork"),
        flow("F2", "Fork", "IT"),
        flow("F3", "Fork", "HR"),
        flow("F4", "IT", "Join"),
        flow("F5", "HR", "Join"),
        flow("F6", "Join", "E")
    );
    let mut i = Instance::start(&process(&body), json!({}));
    i.complete("HR", json!({}));
    assert!(!i.entered("E"), "the join waits for every branch");
    i.complete("IT", json!({}));
    assert!(i.entered("E"));
    assert_eq!(i.status(), Status::Completed);
}

#[test]
fn inclusive_gateway_joins_only_the_branches_taken() {
    let body = format!(
        r#"<bpmn:startEvent id="S" /><bpmn:inclusiveGateway id="Fork" default="Fc" />{}{}{}<bpmn:inclusiveGateway id="Join" /><bpmn:endEvent id="E" />
{}{}{}{}{}{}{}{}"#,
        user_task("A"),
        user_task("B"),
        user_task("C"),
        flow("F1", "S", "Fork"),
        cond_flow("Fa", "Fork", "A", "a"),
        cond_flow("Fb", "Fork", "B", "b"),
        flow("Fc", "Fork", "C"),
        flow("F4", "A", "Join"),
        flow("F5", "B", "Join"),
        flow("F6", "C", "Join"),
        flow("F7", "Join", "E")
    );
    let mut i = Instance::start(&process(&body), json!({"a": true, "b": true}));
    assert!(i.tasks("C").is_empty());
    i.complete("A", json!({}));
    assert!(!i.entered("E"));
    i.complete("B", json!({}));
    assert!(i.entered("E"));
    let mut j = Instance::start(&process(&body), json!({"a": false, "b": false}));
    j.complete("C", json!({}));
    assert_eq!(j.status(), Status::Completed);
}

#[test]
fn intermediate_timer_waits_for_its_time() {
    let body = format!(
        r#"<bpmn:startEvent id="S" /><bpmn:intermediateCatchEvent id="W"><bpmn:timerEventDefinition><bpmn:timeDate>2027-02-01T00:00:00Z</bpmn:timeDate></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent><bpmn:endEvent id="E" />{}{}"#,
        flow("F1", "S", "W"),
        flow("F2", "W", "E")
    );
    let mut i = Instance::start(&process(&body), json!({}));
    assert_eq!(
        i.timer("W").1,
        Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).unwrap()
    );
    assert_eq!(
        i.try_send(Input::TimerFired {
            timer_id: "i1:timer999".into()
        }),
        Err(Error::UnknownTimer("i1:timer999".into()))
    );
    i.fire("W");
    assert_eq!(i.status(), Status::Completed);
}

#[test]
fn message_catch_and_receive_task_correlate_by_key() {
    let body = format!(
        r#"<bpmn:startEvent id="S" /><bpmn:intermediateCatchEvent id="W" concord:correlationKey="orderId"><bpmn:messageEventDefinition messageRef="Msg_Pay" /></bpmn:intermediateCatchEvent>
<bpmn:receiveTask id="R" messageRef="Msg_Go" /><bpmn:endEvent id="E" />{}{}{}"#,
        flow("F1", "S", "W"),
        flow("F2", "W", "R"),
        flow("F3", "R", "E")
    );
    let mut i = Instance::start(&process(&body), json!({"orderId": "o-7"}));
    assert!(i.commands.iter().any(|c| matches!(c, Command::Subscribe { message, correlation: Some(k), .. } if message == "payment" && *k == json!("o-7"))));
    assert_eq!(
        i.message("payment", Some(json!("o-8")), json!({})),
        Err(Error::NoSubscription("payment".into()))
    );
    i.message("payment", Some(json!("o-7")), json!({"paid": 12.5}))
        .unwrap();
    assert_eq!(i.var("paid"), json!(12.5));
    assert!(i.entered("R"));
    i.message("go", None, json!({})).unwrap();
    assert_eq!(i.status(), Status::Completed);
}

#[test]
fn event_based_gateway_takes_the_first_event_and_cancels_the_rest() {
    let body = format!(
        r#"<bpmn:startEvent id="S" /><bpmn:eventBasedGateway id="G" />
<bpmn:intermediateCatchEvent id="Go"><bpmn:messageEventDefinition messageRef="Msg_Go" /></bpmn:intermediateCatchEvent>
<bpmn:intermediateCatchEvent id="Timeout"><bpmn:timerEventDefinition><bpmn:timeDuration>P1D</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
<bpmn:endEvent id="Went" /><bpmn:endEvent id="TimedOut" />{}{}{}{}{}"#,
        flow("F1", "S", "G"),
        flow("F2", "G", "Go"),
        flow("F3", "G", "Timeout"),
        flow("F4", "Go", "Went"),
        flow("F5", "Timeout", "TimedOut")
    );
    let mut i = Instance::start(&process(&body), json!({}));
    let (timer_id, _) = i.timer("Timeout");
    let cmds = i.message("go", None, json!({})).unwrap();
    assert!(cmds.contains(&Command::CancelTimer { timer_id }));
    assert!(i.entered("Went") && !i.entered("TimedOut"));
    assert_eq!(i.status(), Status::Completed);

    let mut j = Instance::start(&process(&body), json!({}));
    let cmds = j.fire("Timeout");
    assert!(cmds
        .iter()
        .any(|c| matches!(c, Command::Unsubscribe { .. })));
    assert!(j.entered("TimedOut"));
}

#[test]
fn signal_catch_waits_for_the_broadcast() {
    let body = format!(
        r#"<bpmn:startEvent id="S" /><bpmn:intermediateCatchEvent id="W"><bpmn:signalEventDefinition signalRef="Sig_Stop" /></bpmn:intermediateCatchEvent><bpmn:endEvent id="E" />{}{}"#,
        flow("F1", "S", "W"),
        flow("F2", "W", "E")
    );
    let mut i = Instance::start(&process(&body), json!({}));
    i.send(Input::SignalReceived {
        name: "stop".into(),
        variables: Map::new(),
    });
    assert_eq!(i.status(), Status::Completed);
}

#[test]
fn error_boundary_catches_a_service_error_by_code() {
    let body = format!(
        r#"<bpmn:startEvent id="S" />{}<bpmn:boundaryEvent id="B" attachedToRef="C"><bpmn:errorEventDefinition errorRef="Err_A" /></bpmn:boundaryEvent>
<bpmn:endEvent id="E" /><bpmn:endEvent id="Handled" />{}{}{}"#,
        service_task("C", 3),
        flow("F1", "S", "C"),
        flow("F2", "C", "E"),
        flow("F3", "B", "Handled")
    );
    let mut i = Instance::start(&process(&body), json!({}));
    i.fail("C", "A", false);
    assert!(i.entered("Handled"));
    assert_eq!(i.status(), Status::Completed);
    // Another error is not caught: it becomes an incident.
    let mut j = Instance::start(&process(&body), json!({}));
    j.fail("C", "B", false);
    j.incident();
}

#[test]
fn terminate_end_stops_every_other_branch() {
    let body = format!(
        r#"<bpmn:startEvent id="S" /><bpmn:parallelGateway id="Fork" />{}<bpmn:endEvent id="T"><bpmn:terminateEventDefinition /></bpmn:endEvent><bpmn:endEvent id="E" />{}{}{}{}"#,
        user_task("Slow"),
        flow("F1", "S", "Fork"),
        flow("F2", "Fork", "Slow"),
        flow("F3", "Fork", "T"),
        flow("F4", "Slow", "E")
    );
    let i = Instance::start(&process(&body), json!({}));
    assert_eq!(i.status(), Status::Terminated);
    assert!(i
        .commands
        .iter()
        .any(|c| matches!(c, Command::CancelUserTask { .. })));
    assert!(i.state.user_tasks.is_empty());
}

#[test]
fn message_end_publishes_the_message() {
    let body = format!(
        r#"<bpmn:startEvent id="S" /><bpmn:endEvent id="E"><bpmn:messageEventDefinition messageRef="Msg_Go" /></bpmn:endEvent>{}"#,
        flow("F1", "S", "E")
    );
    let i = Instance::start(&process(&body), json!({"k": 1}));
    assert!(i.commands.iter().any(|c| matches!(c, Command::PublishMessage { message, variables } if message == "go" && variables["k"] == json!(1))));
    assert_eq!(i.status(), Status::Completed);
}

#[test]
fn sub_process_runs_inside_and_its_error_end_is_caught_by_its_boundary() {
    let body = format!(
        r#"<bpmn:startEvent id="S" />
<bpmn:subProcess id="Sub"><bpmn:startEvent id="SubStart" /><bpmn:exclusiveGateway id="G" default="Fok" />{}<bpmn:endEvent id="SubEnd" /><bpmn:endEvent id="SubErr"><bpmn:errorEventDefinition errorRef="Err_A" /></bpmn:endEvent>
{}{}{}{}</bpmn:subProcess>
<bpmn:boundaryEvent id="B" attachedToRef="Sub"><bpmn:errorEventDefinition errorRef="Err_A" /></bpmn:boundaryEvent>
<bpmn:endEvent id="E" /><bpmn:endEvent id="Caught" />{}{}{}"#,
        user_task("Inner"),
        flow("f1", "SubStart", "Inner"),
        flow("f2", "Inner", "G"),
        cond_flow("Fbad", "G", "SubErr", "bad"),
        flow("Fok", "G", "SubEnd"),
        flow("F1", "S", "Sub"),
        flow("F2", "Sub", "E"),
        flow("F3", "B", "Caught")
    );
    let xml = process(&body);
    let mut i = Instance::start(&xml, json!({}));
    i.complete("Inner", json!({"bad": false}));
    assert!(i.entered("E") && !i.entered("Caught"));
    assert_eq!(i.status(), Status::Completed);
    let mut j = Instance::start(&xml, json!({}));
    j.complete("Inner", json!({"bad": true}));
    assert!(j.entered("Caught") && !j.entered("E"));
    assert_eq!(j.status(), Status::Completed);
    // Round trip keeps the nesting.
    let model = parse_valid(&xml);
    let back = parse_valid(&export::to_bpmn(&model));
    assert_eq!(
        ProcessModel {
            diagram: None,
            ..back.without_lines()
        },
        model.without_lines()
    );
}

#[test]
fn multi_instance_parallel_stops_at_its_completion_condition() {
    let body = format!(
        r#"<bpmn:startEvent id="S" />
<bpmn:userTask id="Approve" concord:assignee="${{approver}}"><bpmn:multiInstanceLoopCharacteristics concord:collection="approvers" concord:elementVariable="approver" concord:outputCollection="votes"><bpmn:completionCondition xsi:type="bpmn:tFormalExpression">nrOfCompletedInstances &gt;= 2</bpmn:completionCondition></bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>
<bpmn:endEvent id="E" />{}{}"#,
        flow("F1", "S", "Approve"),
        flow("F2", "Approve", "E")
    );
    let mut i = Instance::start(&process(&body), json!({"approvers": ["ann", "ben", "cy"]}));
    let assignees: Vec<Assignment> = i
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::CreateUserTask { assignment, .. } => Some(assignment.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        assignees,
        ["ann", "ben", "cy"]
            .map(|p| Assignment::Person(p.into()))
            .to_vec()
    );
    let tasks = i.tasks("Approve");
    for (n, t) in tasks.iter().take(2).enumerate() {
        i.send(Input::TaskCompleted {
            task_id: t.clone(),
            actor: "x".into(),
            variables: vars(json!({"ok": n == 0})),
        });
    }
    assert!(i.commands.contains(&Command::CancelUserTask {
        task_id: tasks[2].clone()
    }));
    assert_eq!(i.var("votes"), json!([{"ok": true}, {"ok": false}, null]));
    assert_eq!(i.status(), Status::Completed);
}

#[test]
fn multi_instance_sequential_runs_one_after_another() {
    let body = format!(
        r#"<bpmn:startEvent id="S" />
<bpmn:userTask id="Sign" concord:assignee="${{signer}}"><bpmn:multiInstanceLoopCharacteristics isSequential="true" concord:collection="signers" concord:elementVariable="signer" /></bpmn:userTask>
<bpmn:endEvent id="E" />{}{}"#,
        flow("F1", "S", "Sign"),
        flow("F2", "Sign", "E")
    );
    let mut i = Instance::start(&process(&body), json!({"signers": ["ann", "ben"]}));
    assert_eq!(i.tasks("Sign").len(), 1);
    i.complete("Sign", json!({}));
    assert!(i.commands.iter().any(|c| matches!(c, Command::CreateUserTask { assignment: Assignment::Person(p), local, .. } if p == "ben" && local["loopCounter"] == json!(1))));
    i.complete("Sign", json!({}));
    assert_eq!(i.status(), Status::Completed);
}

#[test]
fn call_activity_starts_a_child_and_resumes_when_it_completes() {
    let body = format!(
        r#"<bpmn:startEvent id="S" /><bpmn:callActivity id="Call" calledElement="onboarding" concord:resultVariable="child" /><bpmn:endEvent id="E" />{}{}"#,
        flow("F1", "S", "Call"),
        flow("F2", "Call", "E")
    );
    let xml = process(&body);
    let refs = validate::validate(&bpmn::parse(&xml).unwrap()).unwrap();
    assert!(refs.processes.contains("onboarding"));
    let mut i = Instance::start(&xml, json!({"who": "dana"}));
    let child_id = i
        .commands
        .iter()
        .find_map(|c| match c {
            Command::StartChild {
                child_id,
                process_id,
                variables,
                ..
            } if process_id == "onboarding" && variables["who"] == json!("dana") => {
                Some(child_id.clone())
            }
            _ => None,
        })
        .unwrap();
    i.send(Input::ChildCompleted {
        child_id,
        variables: vars(json!({"laptop": "ok"})),
    });
    assert_eq!(i.var("child"), json!({"laptop": "ok"}));
    assert_eq!(i.status(), Status::Completed);

    // A failed child raises an incident; a retry starts a new child.
    let mut j = Instance::start(&xml, json!({"who": "dana"}));
    let child_id = j.state.children.keys().next().unwrap().clone();
    j.send(Input::ChildFailed {
        child_id: child_id.clone(),
        error: "NO_DESK".into(),
    });
    let incident = j.incident();
    j.send(Input::IncidentRetry {
        incident_id: incident,
    });
    let again = j.state.children.keys().next().unwrap().clone();
    assert_ne!(again, child_id);
    let started = j
        .commands
        .iter()
        .filter(|c| matches!(c, Command::StartChild { .. }))
        .count();
    assert_eq!(started, 2);
}

#[test]
fn business_rule_task_asks_for_a_decision() {
    let body = format!(
        r#"<bpmn:startEvent id="S" /><bpmn:businessRuleTask id="Rule" concord:decisionRef="discount" concord:resultVariable="discount" /><bpmn:endEvent id="E" />{}{}"#,
        flow("F1", "S", "Rule"),
        flow("F2", "Rule", "E")
    );
    let mut i = Instance::start(&process(&body), json!({}));
    let request_id = i
        .commands
        .iter()
        .find_map(|c| match c {
            Command::EvaluateDecision {
                request_id,
                decision_ref,
                ..
            } if decision_ref == "discount" => Some(request_id.clone()),
            _ => None,
        })
        .unwrap();
    // A failed decision stops on an incident; retrying asks again.
    i.send(Input::DecisionFailed {
        request_id,
        error: "two rules match".into(),
    });
    let incident = i.state.incidents.keys().next().unwrap().clone();
    assert!(i.state.incidents[&incident]
        .message
        .contains("two rules match"));
    i.send(Input::IncidentRetry {
        incident_id: incident,
    });
    let asked: Vec<String> = i
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::EvaluateDecision { request_id, .. } => Some(request_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 2, "asked again after the retry");
    let explanation = json!({"version": 3, "matched": ["gold"]});
    i.send(Input::DecisionEvaluated {
        request_id: asked[1].clone(),
        result: json!(0.1),
        explanation: Some(explanation.clone()),
    });
    assert_eq!(i.var("discount"), json!(0.1));
    assert_eq!(i.status(), Status::Completed);
    let decided = i
        .history
        .iter()
        .position(|h| {
            h.event
                == HistoryEvent::DecisionEvaluated {
                    decision_ref: "discount".into(),
                    explanation: explanation.clone(),
                }
        })
        .expect("the explanation is in the history");
    assert_eq!(i.history[decided + 1].event, HistoryEvent::Completed);
    assert_eq!(
        i.history[decided + 1].changed.get("discount"),
        Some(&json!(0.1))
    );
}

#[test]
fn purchase_order_runs_parallel_branches_to_the_end() {
    let mut i = Instance::start(
        &fixture("purchase_order.bpmn"),
        json!({"orderId": "o-1", "sku": "pen", "quantity": 3}),
    );
    assert_eq!(
        i.call("Task_Reserve").3.body,
        Some(json!({"sku": "pen", "quantity": 3}))
    );
    i.ok("Task_Reserve", json!({"id": "r-9"}));
    i.ok("Task_Invoice", json!({}));
    assert_eq!(
        i.posts(),
        vec![(
            PostTarget::Channel("orders".into()),
            "Order o-1 is invoiced".into()
        )]
    );
    i.message("payment-received", Some(json!("o-1")), json!({}))
        .unwrap();
    assert_eq!(i.status(), Status::Completed);
    assert!(!i.entered("Task_Release"));
}

#[test]
fn an_uncaught_error_compensates_completed_service_tasks_then_fails_the_instance() {
    let mut i = Instance::start(
        &fixture("purchase_order.bpmn"),
        json!({"orderId": "o-1", "sku": "pen", "quantity": 3}),
    );
    i.ok("Task_Reserve", json!({"id": "r-9"}));
    i.fail("Task_Invoice", "INVOICE_FAILED", false);
    let (_, key, _, request) = i.call("Task_Release");
    assert_eq!(
        (request.method.as_str(), request.url.as_str()),
        ("DELETE", "http://stock.local/reservations/r-9")
    );
    assert!(key.starts_with("i1:Task_Release:"));
    assert_eq!(
        i.status(),
        Status::Running,
        "the instance waits for its compensation"
    );
    i.ok("Task_Release", json!({}));
    assert_eq!(
        i.status(),
        Status::Failed {
            error: "ORDER_FAILED".into()
        }
    );
}

#[test]
fn an_uncaught_error_inside_a_sub_process_compensates_and_fails_the_instance() {
    let body = format!(
        r#"<bpmn:startEvent id="S" />{}
<bpmn:boundaryEvent id="BA" attachedToRef="A"><bpmn:compensateEventDefinition /></bpmn:boundaryEvent>
<bpmn:serviceTask id="UndoA" isForCompensation="true"><bpmn:extensionElements><concord:http method="DELETE" url="https://svc.example/a" /></bpmn:extensionElements></bpmn:serviceTask>
<bpmn:association id="AsA" sourceRef="BA" targetRef="UndoA" />
<bpmn:subProcess id="Sub"><bpmn:startEvent id="SubStart" /><bpmn:endEvent id="Boom"><bpmn:errorEventDefinition errorRef="Err_A" /></bpmn:endEvent>{}</bpmn:subProcess>
<bpmn:endEvent id="E" />{}{}{}"#,
        service_task("A", 1),
        flow("f1", "SubStart", "Boom"),
        flow("F1", "S", "A"),
        flow("F2", "A", "Sub"),
        flow("F3", "Sub", "E")
    );
    let mut i = Instance::start(&process(&body), json!({}));
    i.ok("A", json!({}));
    assert_eq!(i.status(), Status::Running);
    i.ok("UndoA", json!({}));
    assert_eq!(i.status(), Status::Failed { error: "A".into() });
    assert!(!i.entered("E"));
}

#[test]
fn compensation_throw_event_runs_handlers_latest_first_and_continues() {
    let handler = |id: &str| {
        format!(
            r#"<bpmn:serviceTask id="{id}" isForCompensation="true"><bpmn:extensionElements><concord:http method="DELETE" url="https://svc.example/{id}" /></bpmn:extensionElements></bpmn:serviceTask>"#
        )
    };
    let body = format!(
        r#"<bpmn:startEvent id="S" />{}{}
<bpmn:boundaryEvent id="BA" attachedToRef="A"><bpmn:compensateEventDefinition /></bpmn:boundaryEvent>
<bpmn:boundaryEvent id="BB" attachedToRef="B"><bpmn:compensateEventDefinition /></bpmn:boundaryEvent>
{}{}<bpmn:association id="AsA" sourceRef="BA" targetRef="UndoA" /><bpmn:association id="AsB" sourceRef="BB" targetRef="UndoB" />
<bpmn:intermediateThrowEvent id="Undo"><bpmn:compensateEventDefinition /></bpmn:intermediateThrowEvent><bpmn:endEvent id="E" />{}{}{}{}"#,
        service_task("A", 1),
        service_task("B", 1),
        handler("UndoA"),
        handler("UndoB"),
        flow("F1", "S", "A"),
        flow("F2", "A", "B"),
        flow("F3", "B", "Undo"),
        flow("F4", "Undo", "E")
    );
    let mut i = Instance::start(&process(&body), json!({}));
    i.ok("A", json!(1));
    i.ok("B", json!(2));
    assert!(
        i.state.calls.values().all(|c| c.element == "UndoB"),
        "B is undone first"
    );
    i.ok("UndoB", json!({}));
    i.ok("UndoA", json!({}));
    assert!(i.entered("E"));
    assert_eq!(i.status(), Status::Completed);
}

#[test]
fn compensation_reaches_into_a_completed_sub_process() {
    let body = format!(
        r#"<bpmn:startEvent id="S" /><bpmn:subProcess id="Sub"><bpmn:startEvent id="In" />{}<bpmn:endEvent id="InEnd" />{}{}
<bpmn:boundaryEvent id="BA" attachedToRef="A"><bpmn:compensateEventDefinition /></bpmn:boundaryEvent>
<bpmn:serviceTask id="UndoA" isForCompensation="true"><bpmn:extensionElements><concord:http method="DELETE" url="https://svc.example/a" /></bpmn:extensionElements></bpmn:serviceTask>
<bpmn:association id="AsA" sourceRef="BA" targetRef="UndoA" /></bpmn:subProcess>
<bpmn:intermediateThrowEvent id="Undo"><bpmn:compensateEventDefinition /></bpmn:intermediateThrowEvent><bpmn:endEvent id="E" />{}{}{}"#,
        service_task("A", 1),
        flow("f1", "In", "A"),
        flow("f2", "A", "InEnd"),
        flow("F1", "S", "Sub"),
        flow("F2", "Sub", "Undo"),
        flow("F3", "Undo", "E")
    );
    let mut i = Instance::start(&process(&body), json!({}));
    i.ok("A", json!({}));
    i.ok("UndoA", json!({}));
    assert!(i.entered("E"));
    assert_eq!(i.status(), Status::Completed);
}

#[test]
fn cancel_closes_every_wait() {
    let body = format!(
        r#"<bpmn:startEvent id="S" />{}<bpmn:endEvent id="E" />{}{}"#,
        user_task("T"),
        flow("F1", "S", "T"),
        flow("F2", "T", "E")
    );
    let mut i = Instance::start(&process(&body), json!({}));
    let task_id = i.task("T");
    let cmds = i.send(Input::Cancel {
        actor: "operator".into(),
    });
    assert!(cmds.contains(&Command::CancelUserTask { task_id }));
    assert!(matches!(
        cmds.last(),
        Some(Command::Completed {
            status: Status::Cancelled,
            ..
        })
    ));
    assert!(i
        .history
        .iter()
        .any(|h| h.actor.as_deref() == Some("operator")));
}

#[test]
fn the_server_learns_the_start_events_and_refuses_states_of_another_format() {
    let body = format!(
        r#"<bpmn:startEvent id="S" /><bpmn:startEvent id="Daily"><bpmn:timerEventDefinition><bpmn:timeCycle>0 0 6 * * *</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:startEvent>
<bpmn:startEvent id="OnGo"><bpmn:messageEventDefinition messageRef="Msg_Go" /></bpmn:startEvent>{}<bpmn:endEvent id="E" />{}{}{}{}"#,
        user_task("T"),
        flow("F1", "S", "T"),
        flow("F2", "Daily", "T"),
        flow("F3", "OnGo", "T"),
        flow("F4", "T", "E")
    );
    let model = parse_valid(&process(&body));
    let starts: Vec<&str> = model.start_events().map(|(e, _)| e.id.as_str()).collect();
    assert_eq!(starts, ["S", "Daily", "OnGo"]);
    let t = Engine::start_at(&model, "i9", "OnGo", vars(json!({"from": "message"})), t0()).unwrap();
    assert_eq!(t.state.user_tasks.len(), 1);
    assert!(Engine::start_at(&model, "i9", "T", Map::new(), t0()).is_err());
    let mut old = t.state.clone();
    old.format = 0;
    assert_eq!(
        Engine::handle(&model, &old, Input::Cancel { actor: "op".into() }, t0()),
        Err(Error::StateFormat(0))
    );
}

#[test]
fn the_same_inputs_give_the_same_transitions() {
    let run = || {
        let mut i = Instance::start(
            &fixture("purchase_order.bpmn"),
            json!({"orderId": "o-1", "sku": "pen", "quantity": 3}),
        );
        i.ok("Task_Reserve", json!({"id": "r-9"}));
        i.fail("Task_Invoice", "INVOICE_FAILED", false);
        (i.state, i.commands, i.history)
    };
    assert_eq!(run(), run());
}

#[test]
fn expressions_are_guarded_and_name_element_and_expression() {
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!([deep]);
    }
    let err =
        concord_workflow::expr::eval("G", "x == 1", &vars(json!({"x": deep})), &[]).unwrap_err();
    assert!(err.message.contains("deeper"));
    let err = concord_workflow::expr::eval("G", "missing + 1", &Map::new(), &[]).unwrap_err();
    assert_eq!(
        (err.element.as_str(), err.expression.as_str()),
        ("G", "missing + 1")
    );
    assert_eq!(
        concord_workflow::expr::eval(
            "G",
            "items.filter(i, i > 1).size()",
            &vars(json!({"items": [1, 2, 3]})),
            &[]
        )
        .unwrap(),
        json!(2)
    );
    // Whole numbers are CEL ints, so arithmetic with literals needs no conversion.
    assert_eq!(
        concord_workflow::expr::eval(
            "G",
            "amount * 2 > limit",
            &vars(json!({"amount": 600, "limit": 1000})),
            &[]
        )
        .unwrap(),
        json!(true)
    );
}

// ----- The examples in bots/workflows/examples, drawn in bpmn-js -------------------------

fn example(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../bots/workflows/examples/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

const EXAMPLES: [&str; 4] = [
    "document-approval.bpmn",
    "employee-onboarding.bpmn",
    "purchase-order.bpmn",
    "support-ticket.bpmn",
];

#[test]
fn the_examples_drawn_in_bpmn_js_deploy_and_export_with_their_layout() {
    for name in EXAMPLES {
        let xml = example(name);
        let model = parse_valid(&xml);
        // Every element and flow has its shape or edge in the diagram the modeler saved.
        let di = model.diagram.as_ref().expect("a diagram").xml.clone();
        for id in model
            .elements
            .iter()
            .map(|e| &e.id)
            .chain(model.flows.iter().map(|f| &f.id))
        {
            assert!(
                di.contains(&format!("bpmnElement=\"{id}\"")),
                "{name}: {id}"
            );
        }
        let exported = export::to_bpmn(&model);
        assert!(
            exported.contains(di.as_str()),
            "{name}: the layout is written back"
        );
        // The same model comes back; namespace declarations may be written in another order.
        let sorted = |m: &ProcessModel| {
            let mut m = m.without_lines();
            if let Some(d) = m.diagram.as_mut() {
                d.namespaces.sort();
            }
            m
        };
        let again = parse_valid(&exported);
        assert_eq!(sorted(&again), sorted(&model), "{name}");
    }
}

#[test]
fn the_document_approval_example_signs_off_twice_and_escalates_a_late_review() {
    let start = || {
        Instance::start(
            &example("document-approval.bpmn"),
            json!({"document": "Q3 report"}),
        )
    };
    let mut i = start();
    let created = i.commands.iter().find_map(|c| match c {
        Command::CreateUserTask {
            assignment, due, ..
        } => Some((assignment.clone(), *due)),
        _ => None,
    });
    assert_eq!(
        created,
        Some((
            Assignment::Role("approver".into()),
            Some(t0() + Duration::hours(48))
        ))
    );
    // The review is late: the manager is asked to chase it; the review stays open.
    let (_, due) = i.timer("review_sla");
    assert_eq!(due, t0() + Duration::hours(24));
    i.fire("review_sla");
    i.task("escalate");
    i.complete("escalate", json!({}));
    i.complete("review", json!({"approved": true}));
    i.complete("sign_off", json!({"approved": true}));
    assert_eq!(
        i.posts(),
        vec![(
            PostTarget::Channel("approvals".into()),
            "Approved: Q3 report".into()
        )]
    );
    assert_eq!(i.status(), Status::Completed);

    // Rejected at the second level: the rejection is posted.
    let mut i = start();
    i.complete("review", json!({"approved": true}));
    i.complete("sign_off", json!({"approved": false}));
    assert_eq!(
        i.posts(),
        vec![(
            PostTarget::Channel("approvals".into()),
            "Rejected: Q3 report".into()
        )]
    );
    assert!(i.entered("rejected"));
    assert_eq!(i.status(), Status::Completed);
}

#[test]
fn the_onboarding_example_welcomes_only_after_it_hr_and_the_manager() {
    let mut i = Instance::start(
        &example("employee-onboarding.bpmn"),
        json!({"employee": "Dana", "manager": "carol"}),
    );
    let assigned: Vec<Assignment> = i
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::CreateUserTask { assignment, .. } => Some(assignment.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(assigned.len(), 3, "{assigned:?}");
    assert!(assigned.contains(&Assignment::Role("it".into())));
    assert!(assigned.contains(&Assignment::Role("hr".into())));
    i.complete("it_setup", json!({}));
    i.complete("manager_plan", json!({}));
    assert!(i.posts().is_empty(), "the welcome waits for HR");
    i.complete("hr_paperwork", json!({}));
    assert_eq!(
        i.posts(),
        vec![(PostTarget::Channel("team".into()), "Welcome Dana!".into())]
    );
    assert_eq!(i.status(), Status::Completed);
}

#[test]
fn the_purchase_order_example_releases_the_stock_when_invoicing_fails() {
    let v = json!({"services": "http://127.0.0.1:9", "sku": "A-1", "quantity": 2, "order": "PO-7"});
    // Invoiced: both calls succeed and the buyer is told.
    let mut i = Instance::start(&example("purchase-order.bpmn"), v.clone());
    let (_, _, _, request) = i.call("reserve_stock");
    assert_eq!(request.url, "http://127.0.0.1:9/stock/reservations");
    // A value that is a whole template keeps its type.
    assert_eq!(request.body, Some(json!({"sku": "A-1", "quantity": 2})));
    i.ok("reserve_stock", json!({"id": "R-1"}));
    i.ok("create_invoice", json!({"id": "INV-1"}));
    assert_eq!(i.var("invoice"), json!("INV-1"));
    assert_eq!(
        i.posts(),
        vec![(
            PostTarget::Channel("orders".into()),
            "Order PO-7 is invoiced".into()
        )]
    );
    assert_eq!(i.status(), Status::Completed);

    // Invoicing fails: the reservation is released, then the order ends cancelled.
    let mut i = Instance::start(&example("purchase-order.bpmn"), v);
    i.ok("reserve_stock", json!({"id": "R-1"}));
    i.fail("create_invoice", "INVOICE_FAILED", false);
    let (_, _, _, release) = i.call("release_stock");
    assert_eq!(release.method, "DELETE");
    assert_eq!(release.url, "http://127.0.0.1:9/stock/reservations/R-1");
    i.ok("release_stock", json!({}));
    assert!(i.entered("cancelled"));
    assert!(i.posts().is_empty());
    assert_eq!(i.status(), Status::Completed);
}

#[test]
fn the_support_ticket_example_starts_on_its_message_and_escalates_after_an_hour() {
    let model = parse_valid(&example("support-ticket.bpmn"));
    let t = Engine::start_at(
        &model,
        "i1",
        "ticket_opened",
        vars(json!({"ticket": "T-42"})),
        t0(),
    )
    .unwrap();
    let mut i = Instance {
        model,
        state: t.state.clone(),
        commands: Vec::new(),
        history: Vec::new(),
        now: t0(),
    };
    i.absorb(t.commands, t.history);
    let queued = i.commands.iter().find_map(|c| match c {
        Command::CreateUserTask { assignment, .. } => Some(assignment.clone()),
        _ => None,
    });
    assert_eq!(queued, Some(Assignment::Channel("support".into())));
    // Nobody answered within the hour: the task is withdrawn and the lead is asked.
    i.fire("response_sla");
    assert!(i.tasks("first_response").is_empty());
    assert_eq!(
        i.posts(),
        vec![(
            PostTarget::Channel("support".into()),
            "Ticket T-42 has waited an hour for a first response".into()
        )]
    );
    i.complete("lead_response", json!({"answer": "On it"}));
    assert!(i.entered("answered_by_lead"));
    assert_eq!(i.status(), Status::Completed);
}

// ----- Loops that never wait ---------------------------------------------------------------

#[test]
fn a_loop_that_never_waits_is_refused_at_deploy() {
    let xml = process(&format!(
        r#"<bpmn:startEvent id="S" /><bpmn:exclusiveGateway id="G1" default="Fout" /><bpmn:exclusiveGateway id="G2" />
<bpmn:sendTask id="Nag"><bpmn:extensionElements><concord:post channel="c">again</concord:post></bpmn:extensionElements></bpmn:sendTask>
<bpmn:endEvent id="E" />{}{}{}{}{}"#,
        flow("F1", "S", "G1"),
        cond_flow("Fin", "G1", "G2", "true"),
        flow("Fout", "G1", "E"),
        flow("F3", "G2", "Nag"),
        flow("F4", "Nag", "G1"),
    ));
    let model = bpmn::parse(&xml).unwrap();
    let problems = validate::validate(&model).unwrap_err();
    let text = problems.to_string();
    assert!(
        text.contains("never waits") && text.contains("G1") && text.contains("Nag"),
        "{text}"
    );
    // The same loop through a user task is fine: it waits there each turn.
    let waits = xml.replace(
        r#"<bpmn:sendTask id="Nag"><bpmn:extensionElements><concord:post channel="c">again</concord:post></bpmn:extensionElements></bpmn:sendTask>"#,
        &user_task("Nag"),
    );
    parse_valid(&waits);
}

#[test]
fn a_loop_the_deploy_check_cannot_see_is_stopped_at_run_time() {
    // The loop passes through a sub-process that itself never waits.
    let xml = process(&format!(
        r#"<bpmn:startEvent id="S" /><bpmn:subProcess id="Sub"><bpmn:startEvent id="In" /><bpmn:endEvent id="InEnd" />{}</bpmn:subProcess>
<bpmn:exclusiveGateway id="G" default="Fout" /><bpmn:endEvent id="E" />{}{}{}{}"#,
        flow("Fi", "In", "InEnd"),
        flow("F1", "S", "Sub"),
        flow("F2", "Sub", "G"),
        cond_flow("Fback", "G", "Sub", "true"),
        flow("Fout", "G", "E"),
    ));
    let model = parse_valid(&xml);
    match Engine::start(&model, "i1", Map::new(), t0()) {
        Err(Error::Runaway(_, at)) => assert!(!at.is_empty()),
        other => panic!(
            "expected a runaway refusal, got {:?}",
            other.map(|t| t.state.status)
        ),
    }
}

// ----- Stored forms ------------------------------------------------------------------------

#[test]
fn every_model_survives_being_stored_as_json() {
    // The server stores each deployed model as JSON and reads it back for every step.
    let mut sources: Vec<(String, String)> = EXAMPLES
        .iter()
        .map(|n| (n.to_string(), example(n)))
        .collect();
    for name in [
        "document_approval.bpmn",
        "purchase_order.bpmn",
        "purchase_order_resaved.bpmn",
    ] {
        sources.push((name.to_string(), fixture(name)));
    }
    let timers = process(&format!(
        r#"<bpmn:startEvent id="S"><bpmn:timerEventDefinition><bpmn:timeCycle>R/PT1H</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:startEvent>
<bpmn:intermediateCatchEvent id="W"><bpmn:timerEventDefinition><bpmn:timeDate>2030-01-01T00:00:00Z</bpmn:timeDate></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
<bpmn:endEvent id="E" />{}{}"#,
        flow("F1", "S", "W"),
        flow("F2", "W", "E"),
    ));
    sources.push(("timers".into(), timers));
    for (name, xml) in sources {
        let model = parse_valid(&xml);
        let stored = serde_json::to_string(&model).unwrap();
        let loaded: ProcessModel = serde_json::from_str(&stored)
            .unwrap_or_else(|e| panic!("{name}: the stored model does not read back: {e}"));
        assert_eq!(loaded, model, "{name}");
    }
}

#[test]
fn a_service_url_keeps_each_value_in_its_place() {
    use concord_workflow::expr::render_url;
    let v = vars(json!({
        "base": "https://erp.example/api",
        "order": "../admin?drop=1#x",
        "name": "Ünïcode & co",
        "n": 7,
    }));
    assert_eq!(
        render_url("T", "https://erp.example/orders/${order}/lines/${n}", &v).unwrap(),
        "https://erp.example/orders/..%2Fadmin%3Fdrop%3D1%23x/lines/7"
    );
    assert_eq!(
        render_url("T", "https://erp.example/find?q=${name}", &v).unwrap(),
        "https://erp.example/find?q=%C3%9Cn%C3%AFcode%20%26%20co"
    );
    // A URL that starts from a variable takes that one as written.
    assert_eq!(
        render_url("T", "${base}/orders/${n}", &v).unwrap(),
        "https://erp.example/api/orders/7"
    );
    let v = vars(json!({"empty": "", "order": "../x"}));
    assert_eq!(render_url("T", "${empty}${order}", &v).unwrap(), "..%2Fx");
}

#[test]
fn a_value_placed_in_a_chat_message_mentions_nobody() {
    use concord_workflow::expr::render_message;
    let v = vars(json!({"who": "@channel and @here, cc @ann", "mail": "bo@example.org", "n": 3}));
    let text = render_message("T", "@ops: ${who} (${mail}, ${n})", &v).unwrap();
    // The template's own mention stays; every `@` a value brings is followed by a word joiner,
    // so no handle follows it; an email address is left as it is.
    assert_eq!(
        text,
        "@ops: @\u{2060}channel and @\u{2060}here, cc @\u{2060}ann (bo@example.org, 3)"
    );
    let v = vars(json!({"who": "@here"}));
    assert_eq!(render_message("T", "x${who}", &v).unwrap(), "x@here");
    assert_eq!(
        render_message("T", "x ${who}", &v).unwrap(),
        "x @\u{2060}here"
    );
    // A value cannot complete a mention the template opens.
    let v = vars(json!({"who": "channel"}));
    assert_eq!(
        render_message("T", "cc @${who}", &v).unwrap(),
        "cc @\u{2060}channel"
    );
}

#[test]
fn a_user_tasks_routing_block_reads_from_bpmn_and_yaml_and_reaches_the_server() {
    let body = format!(
        r#"<bpmn:startEvent id="s" />
{}
<bpmn:userTask id="t" concord:candidateRole="support"><bpmn:extensionElements>
  <concord:routing>strategy: skills
requirements: "languages: ko"
escalation:
  - {{to: manager, after: PT4H, on: not_claimed}}</concord:routing>
</bpmn:extensionElements></bpmn:userTask>
{}
<bpmn:endEvent id="e" />"#,
        flow("f1", "s", "t"),
        flow("f2", "t", "e")
    );
    let xml = process(&body);
    let model = parse_valid(&xml);
    let Some(concord_workflow::model::ElementKind::UserTask(task)) =
        model.element("t").map(|e| &e.kind)
    else {
        panic!("no user task");
    };
    let routing = task.routing.clone().expect("routing read");
    assert_eq!(routing["strategy"], "skills");
    assert_eq!(routing["escalation"][0]["after"], "PT4H");
    // Written again as BPMN, it reads back the same.
    let again = bpmn::parse(&export::to_bpmn(&model)).expect("exported model parses");
    assert_eq!(
        again.element("t").map(|e| &e.kind),
        model.element("t").map(|e| &e.kind)
    );
    // The engine hands it to the server with the task.
    let i = Instance::start(&xml, json!({}));
    assert!(i.commands.iter().any(|c| matches!(c,
        Command::CreateUserTask { routing: Some(r), .. } if r["requirements"] == "languages: ko")));

    let yaml = "process: y\nsteps:\n  - start: s\n  - user_task: t\n    role: support\n    routing:\n      strategy: round_robin\n      presence_aware: true\n  - end: e\n";
    let from_yaml = yaml::parse(yaml).expect("yaml parses");
    let Some(concord_workflow::model::ElementKind::UserTask(task)) =
        from_yaml.element("t").map(|e| &e.kind)
    else {
        panic!("no user task");
    };
    assert_eq!(
        task.routing,
        Some(json!({"strategy": "round_robin", "presence_aware": true}))
    );
    // A routing block that is not a map is refused where it is written.
    let bad = yaml::parse("process: y\nsteps:\n  - start: s\n  - user_task: t\n    role: support\n    routing: queue\n  - end: e\n")
        .unwrap_err();
    assert!(bad.to_string().contains("routing must be a map"), "{bad}");
    let bad =
        bpmn::parse(&process(&body.replace("strategy: skills", "- [unbalanced"))).unwrap_err();
    assert!(bad.to_string().contains("concord:routing"), "{bad}");
}
