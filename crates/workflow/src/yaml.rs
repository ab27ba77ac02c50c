//! The compact YAML form, for people who write processes by hand; it converts to the same
//! [`ProcessModel`] as BPMN (and `export` writes that model as BPMN XML).
//!
//! A process is a list of steps. Each step is a map whose first key names its kind and its id
//! (`user_task: review`); the other keys are its settings. A step flows into the next step of
//! its list unless it is an end, names where it goes (`goto: publish` or a list), or is a gateway
//! with `branches`. Flow ids are made from their ends (`review_to_decide`).
//!
//! ```yaml
//! process: document_approval
//! name: Document approval
//! steps:
//!   - start: submitted
//!   - user_task: review
//!     role: approvers            # or person: / channel: (text templates)
//!     form: approval
//!     due: P2D
//!     on:                        # boundary events
//!       - timer: PT24H           # P… duration, R…/… cycle, or an RFC 3339 date
//!         interrupting: false
//!         goto: escalate
//!   - exclusive: approved
//!     branches:
//!       - when: approved == true
//!         goto: publish
//!     default: tell_author
//!   - service_task: publish
//!     method: POST
//!     url: https://docs.example/publish/${docId}
//!     body: {document: "${docId}"}
//!     outputs: {publishedUrl: response.body.url}
//!     retry: {attempts: 3, backoff: PT5S, multiplier: 2}
//!     compensate: {service_task: unpublish, method: DELETE, url: "…"}
//!   - end: published
//! ```
//!
//! Kinds: `start` (`message`, `timer`, `signal`), `end` (`error`, `terminate: true`,
//! `message`), `user_task` (`person`/`role`/`channel`, `form`, `due`, `multi`: `collection`,
//! `element`, `sequential`, `complete_when`, `output`), `service_task` (`method`, `url`, `body`,
//! `outputs`, `retry`, `compensate`), `send_task` (`channel`/`person`, `text`), `rule_task`
//! (`decision`, `result`), `receive` (`message`, `correlation`), `wait` (`timer`, or `message`
//! and `correlation`, or `signal`), `throw` (`compensate: true` or an activity id), `exclusive`,
//! `inclusive` (`branches`: `when`/`goto`, `default`), `parallel`, `event_gateway`,
//! `sub_process` (`steps`), `call` (`process`, `result`). Activities take `on:` boundary events:
//! `timer` (with `interrupting`) or `error` (a code, or `"*"` for any), each with `goto`.
//! Every step takes `name`. Unknown kinds and settings are refused, naming the step.

use serde_json::Value as Json;
use serde_yaml_ng::{Mapping, Value};
use std::collections::BTreeMap;

use crate::model::{
    Assignment, BoundaryTrigger, CatchTrigger, Element, ElementKind, EndResult, GatewayKind,
    HttpCall, MessageWait, MultiInstance, OutputMapping, PostTarget, ProcessModel, RetryPolicy,
    SendTask, SequenceFlow, ServiceTask, StartTrigger, ThrowKind, UserTask,
};
use crate::problem::{Problem, Problems};
use crate::timer::TimerDefinition;

/// Parses the compact YAML form.
pub fn parse(text: &str) -> Result<ProcessModel, Problems> {
    let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        Problems(vec![Problem {
            element: None,
            line: e.location().map(|l| l.line() as u32),
            message: format!("not valid YAML: {e}"),
        }])
    })?;
    let mut c = Converter::default();
    let Some(root) = doc.as_mapping() else {
        return Err(Problems(vec![Problem {
            element: None,
            line: None,
            message: "the document must be a map with process, name and steps".into(),
        }]));
    };
    c.allowed(root, "process", &["process", "name", "steps"]);
    let id = c.text(root, "process", "process").unwrap_or_default();
    let name = c.text(root, "process", "name");
    match root.get("steps").and_then(Value::as_sequence) {
        Some(steps) => c.steps(steps, None),
        None => c.problem(&id, "the process needs a list of steps"),
    }
    if !c.problems.is_empty() {
        return Err(Problems(c.problems));
    }
    Ok(ProcessModel {
        id,
        name,
        elements: c.elements,
        flows: c.flows,
        messages: c.messages,
        errors: c.errors,
        signals: c.signals,
        diagram: None,
        definitions_id: None,
        annotations: Vec::new(),
    })
}

#[derive(Default)]
struct Converter {
    elements: Vec<Element>,
    flows: Vec<SequenceFlow>,
    messages: BTreeMap<String, String>,
    errors: BTreeMap<String, String>,
    signals: BTreeMap<String, String>,
    problems: Vec<Problem>,
}

const KINDS: &[&str] = &[
    "start",
    "end",
    "user_task",
    "service_task",
    "send_task",
    "rule_task",
    "receive",
    "wait",
    "throw",
    "exclusive",
    "inclusive",
    "parallel",
    "event_gateway",
    "sub_process",
    "call",
];

/// An id usable in XML (an NCName): letters, digits, `_`, `-`, `.`, not starting with a digit.
fn xml_id(prefix: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}_{clean}")
}

fn timer(text: &str) -> TimerDefinition {
    let t = text.trim();
    if t.starts_with('R') {
        TimerDefinition::Cycle(t.to_string())
    } else if t.starts_with('P') {
        TimerDefinition::Duration(t.to_string())
    } else {
        TimerDefinition::Date(t.to_string())
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Converter {
    fn problem(&mut self, id: &str, message: impl Into<String>) {
        self.problems.push(Problem::at(id, None, message));
    }

    fn allowed(&mut self, map: &Mapping, id: &str, keys: &[&str]) {
        for k in map.keys() {
            let key = k.as_str().unwrap_or_default();
            if !keys.contains(&key) {
                self.problem(
                    id,
                    format!(
                        "unknown setting {key:?}; this step takes {}",
                        keys.join(", ")
                    ),
                );
            }
        }
    }

    fn text(&mut self, map: &Mapping, id: &str, key: &str) -> Option<String> {
        let v = map.get(key)?;
        let s = scalar(v);
        if s.is_none() {
            self.problem(id, format!("{key} must be text"));
        }
        s
    }

    fn message(&mut self, name: &str) -> String {
        let id = xml_id("Message", name);
        self.messages.insert(id.clone(), name.to_string());
        id
    }

    fn error(&mut self, code: &str) -> String {
        let id = xml_id("Error", code);
        self.errors.insert(id.clone(), code.to_string());
        id
    }

    fn signal(&mut self, name: &str) -> String {
        let id = xml_id("Signal", name);
        self.signals.insert(id.clone(), name.to_string());
        id
    }

    fn flow(&mut self, source: &str, target: &str, condition: Option<String>) -> String {
        let base = format!("{source}_to_{target}");
        let mut id = base.clone();
        let mut n = 1;
        while self.flows.iter().any(|f| f.id == id) {
            n += 1;
            id = format!("{base}_{n}");
        }
        self.flows.push(SequenceFlow {
            id: id.clone(),
            name: None,
            source: source.to_string(),
            target: target.to_string(),
            condition,
            line: None,
        });
        id
    }

    fn targets(&mut self, id: &str, v: Option<&Value>) -> Vec<String> {
        match v {
            None => Vec::new(),
            Some(Value::Sequence(items)) => items.iter().filter_map(scalar).collect(),
            Some(other) => match scalar(other) {
                Some(s) => vec![s],
                None => {
                    self.problem(id, "goto must be a step id or a list of them");
                    Vec::new()
                }
            },
        }
    }

    fn steps(&mut self, steps: &[Value], scope: Option<&str>) {
        // (id, explicit targets, falls through to the next step)
        let mut links: Vec<(String, Vec<String>, bool)> = Vec::new();
        for step in steps {
            let Some(map) = step.as_mapping() else {
                self.problem(
                    scope.unwrap_or("steps"),
                    "each step is a map such as {user_task: review}",
                );
                continue;
            };
            let Some((kind, id)) = map
                .iter()
                .next()
                .and_then(|(k, v)| Some((k.as_str()?, scalar(v)?)))
            else {
                self.problem(
                    scope.unwrap_or("steps"),
                    "a step starts with its kind and id, e.g. user_task: review",
                );
                continue;
            };
            if !KINDS.contains(&kind) {
                self.problem(
                    &id,
                    format!("unknown kind {kind:?}; kinds: {}", KINDS.join(", ")),
                );
                continue;
            }
            let (targets, falls_through) = self.step(kind, &id, map, scope);
            links.push((id, targets, falls_through));
        }
        for (i, (id, targets, falls)) in links.iter().enumerate() {
            for t in targets {
                self.flow(id, t, None);
            }
            if *falls {
                match links.get(i + 1) {
                    Some((next, _, _)) => {
                        self.flow(id, next, None);
                    }
                    None => self.problem(
                        id,
                        "the last step of a list must be an end or name where it goes (goto)",
                    ),
                }
            }
        }
    }

    /// Adds one step; returns its explicit targets and whether it falls through.
    fn step(
        &mut self,
        kind: &str,
        id: &str,
        map: &Mapping,
        scope: Option<&str>,
    ) -> (Vec<String>, bool) {
        const COMMON: &[&str] = &["name", "goto"];
        let with = |extra: &[&'static str]| -> Vec<&'static str> {
            let mut k: Vec<&'static str> = vec![];
            k.extend_from_slice(COMMON);
            k.extend_from_slice(extra);
            k
        };
        let mut keys = vec![kind];
        let goto = self.targets(id, map.get("goto"));
        let mut falls = goto.is_empty();
        let kind_value = match kind {
            "start" => {
                keys.extend(with(&["message", "timer", "signal"]));
                let trigger = if let Some(m) = self.text(map, id, "message") {
                    StartTrigger::Message {
                        message: self.message(&m),
                    }
                } else if let Some(t) = self.text(map, id, "timer") {
                    StartTrigger::Timer(timer(&t))
                } else if let Some(s) = self.text(map, id, "signal") {
                    StartTrigger::Signal {
                        signal: self.signal(&s),
                    }
                } else {
                    StartTrigger::None
                };
                ElementKind::StartEvent { trigger }
            }
            "end" => {
                keys.extend(["name", "error", "terminate", "message"]);
                falls = false;
                let result = if let Some(e) = self.text(map, id, "error") {
                    EndResult::Error {
                        error: self.error(&e),
                    }
                } else if map.get("terminate").and_then(Value::as_bool) == Some(true) {
                    EndResult::Terminate
                } else if let Some(m) = self.text(map, id, "message") {
                    EndResult::Message {
                        message: self.message(&m),
                    }
                } else {
                    EndResult::None
                };
                ElementKind::EndEvent { result }
            }
            "user_task" => {
                keys.extend(with(&[
                    "person", "role", "channel", "form", "due", "multi", "on",
                ]));
                let assignment = if let Some(p) = self.text(map, id, "person") {
                    Assignment::Person(p)
                } else if let Some(r) = self.text(map, id, "role") {
                    Assignment::Role(r)
                } else if let Some(c) = self.text(map, id, "channel") {
                    Assignment::Channel(c)
                } else {
                    Assignment::Unassigned
                };
                let multi_instance = map.get("multi").and_then(Value::as_mapping).map(|m| {
                    self.allowed(
                        m,
                        id,
                        &[
                            "collection",
                            "element",
                            "sequential",
                            "complete_when",
                            "output",
                        ],
                    );
                    MultiInstance {
                        sequential: m
                            .get("sequential")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                        collection: self.text(m, id, "collection").unwrap_or_default(),
                        element_variable: self.text(m, id, "element"),
                        completion_condition: self.text(m, id, "complete_when"),
                        output_collection: self.text(m, id, "output"),
                    }
                });
                ElementKind::UserTask(UserTask {
                    assignment,
                    form_key: self.text(map, id, "form"),
                    due: self.text(map, id, "due"),
                    multi_instance,
                })
            }
            "service_task" => {
                keys.extend(with(&[
                    "method",
                    "url",
                    "body",
                    "outputs",
                    "retry",
                    "on",
                    "compensate",
                ]));
                let mut retry = RetryPolicy::default();
                if let Some(r) = map.get("retry").and_then(Value::as_mapping) {
                    self.allowed(r, id, &["attempts", "backoff", "multiplier"]);
                    if let Some(a) = r.get("attempts").and_then(Value::as_u64) {
                        retry.attempts = a.max(1) as u32;
                    }
                    if let Some(b) = self.text(r, id, "backoff") {
                        retry.backoff = b;
                    }
                    if let Some(m) = r.get("multiplier").and_then(Value::as_f64) {
                        retry.multiplier = m;
                    }
                }
                let outputs = map
                    .get("outputs")
                    .and_then(Value::as_mapping)
                    .map(|o| {
                        o.iter()
                            .filter_map(|(k, v)| {
                                Some(OutputMapping {
                                    variable: scalar(k)?,
                                    expression: scalar(v)?,
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let body = map
                    .get("body")
                    .map(|b| serde_json::to_value(b).unwrap_or(Json::Null));
                if let Some(handler) = map.get("compensate") {
                    self.compensation(id, handler, scope);
                }
                ElementKind::ServiceTask(ServiceTask {
                    http: HttpCall {
                        method: self
                            .text(map, id, "method")
                            .unwrap_or_else(|| "POST".into())
                            .to_ascii_uppercase(),
                        url: self.text(map, id, "url").unwrap_or_default(),
                        body,
                        outputs,
                    },
                    retry,
                })
            }
            "send_task" => {
                keys.extend(with(&["channel", "person", "text"]));
                let to = match (self.text(map, id, "channel"), self.text(map, id, "person")) {
                    (Some(c), _) => PostTarget::Channel(c),
                    (None, Some(p)) => PostTarget::Person(p),
                    (None, None) => {
                        self.problem(id, "a send task needs channel or person");
                        PostTarget::Channel(String::new())
                    }
                };
                ElementKind::SendTask(SendTask {
                    to,
                    text: self.text(map, id, "text").unwrap_or_default(),
                })
            }
            "rule_task" => {
                keys.extend(with(&["decision", "result", "on"]));
                ElementKind::BusinessRuleTask {
                    decision_ref: self.text(map, id, "decision").unwrap_or_default(),
                    result_variable: self.text(map, id, "result"),
                }
            }
            "receive" => {
                keys.extend(with(&["message", "correlation", "on"]));
                let m = self.text(map, id, "message").unwrap_or_default();
                ElementKind::ReceiveTask(MessageWait {
                    message: self.message(&m),
                    correlation_key: self.text(map, id, "correlation"),
                })
            }
            "wait" => {
                keys.extend(with(&["timer", "message", "correlation", "signal"]));
                let trigger = if let Some(t) = self.text(map, id, "timer") {
                    CatchTrigger::Timer(timer(&t))
                } else if let Some(s) = self.text(map, id, "signal") {
                    CatchTrigger::Signal {
                        signal: self.signal(&s),
                    }
                } else {
                    let m = self.text(map, id, "message").unwrap_or_default();
                    CatchTrigger::Message(MessageWait {
                        message: self.message(&m),
                        correlation_key: self.text(map, id, "correlation"),
                    })
                };
                ElementKind::IntermediateCatch { trigger }
            }
            "throw" => {
                keys.extend(with(&["compensate"]));
                let throw = match map.get("compensate") {
                    Some(Value::Bool(true)) => ThrowKind::Compensate { activity: None },
                    Some(v) => ThrowKind::Compensate {
                        activity: scalar(v),
                    },
                    None => ThrowKind::None,
                };
                ElementKind::IntermediateThrow { throw }
            }
            "exclusive" | "inclusive" => {
                keys.extend(with(&["branches", "default"]));
                let mut default_flow = None;
                if let Some(branches) = map.get("branches").and_then(Value::as_sequence) {
                    falls = false;
                    for b in branches {
                        let Some(b) = b.as_mapping() else { continue };
                        self.allowed(b, id, &["when", "goto"]);
                        let when = self.text(b, id, "when");
                        for t in self.targets(id, b.get("goto")) {
                            self.flow(id, &t, when.clone());
                        }
                    }
                    if let Some(d) = self.text(map, id, "default") {
                        default_flow = Some(self.flow(id, &d, None));
                    }
                }
                let kind = if kind == "exclusive" {
                    GatewayKind::Exclusive
                } else {
                    GatewayKind::Inclusive
                };
                ElementKind::Gateway { kind, default_flow }
            }
            "parallel" | "event_gateway" => {
                keys.extend(with(&[]));
                let kind = if kind == "parallel" {
                    GatewayKind::Parallel
                } else {
                    GatewayKind::EventBased
                };
                ElementKind::Gateway {
                    kind,
                    default_flow: None,
                }
            }
            "sub_process" => {
                keys.extend(with(&["steps", "on"]));
                ElementKind::SubProcess
            }
            "call" => {
                keys.extend(with(&["process", "result", "on"]));
                ElementKind::CallActivity {
                    called_element: self.text(map, id, "process").unwrap_or_default(),
                    result_variable: self.text(map, id, "result"),
                }
            }
            other => {
                self.problem(id, format!("unknown kind {other:?}"));
                return (goto, false);
            }
        };
        self.allowed(map, id, &keys);
        let name = self.text(map, id, "name");
        self.elements.push(Element {
            id: id.to_string(),
            name,
            scope: scope.map(str::to_string),
            kind: kind_value,
            line: None,
        });
        if kind == "sub_process" {
            match map.get("steps").and_then(Value::as_sequence) {
                Some(inner) => self.steps(inner, Some(id)),
                None => self.problem(id, "a sub-process needs steps"),
            }
        }
        if let Some(on) = map.get("on").and_then(Value::as_sequence) {
            self.boundaries(id, on, scope);
        }
        (goto, falls)
    }

    fn boundaries(&mut self, activity: &str, on: &[Value], scope: Option<&str>) {
        for (n, b) in on.iter().enumerate() {
            let Some(b) = b.as_mapping() else { continue };
            self.allowed(
                b,
                activity,
                &["id", "name", "timer", "error", "interrupting", "goto"],
            );
            let id = self
                .text(b, activity, "id")
                .unwrap_or_else(|| format!("{activity}_on_{}", n + 1));
            let interrupting = b
                .get("interrupting")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let trigger = if let Some(t) = self.text(b, &id, "timer") {
                BoundaryTrigger::Timer(timer(&t))
            } else if let Some(e) = self.text(b, &id, "error") {
                BoundaryTrigger::Error {
                    error: (e != "*").then(|| self.error(&e)),
                }
            } else {
                self.problem(&id, "a boundary event needs timer or error");
                continue;
            };
            let name = self.text(b, &id, "name");
            self.elements.push(Element {
                id: id.clone(),
                name,
                scope: scope.map(str::to_string),
                kind: ElementKind::BoundaryEvent {
                    attached_to: activity.to_string(),
                    cancel_activity: interrupting,
                    trigger,
                },
                line: None,
            });
            for t in self.targets(&id, b.get("goto")) {
                self.flow(&id, &t, None);
            }
        }
    }

    /// `compensate: {service_task: undo, …}`: the handler, a compensation boundary event and
    /// the association between them.
    fn compensation(&mut self, activity: &str, handler: &Value, scope: Option<&str>) {
        let Some(map) = handler.as_mapping() else {
            self.problem(
                activity,
                "compensate takes a step such as {service_task: undo, url: …}",
            );
            return;
        };
        let Some((kind, id)) = map
            .iter()
            .next()
            .and_then(|(k, v)| Some((k.as_str()?, scalar(v)?)))
        else {
            self.problem(
                activity,
                "compensate takes a step such as {service_task: undo, url: …}",
            );
            return;
        };
        if !matches!(kind, "service_task" | "send_task") {
            self.problem(
                &id,
                "a compensation handler is a service_task or a send_task",
            );
            return;
        }
        self.step(kind, &id, map, scope);
        let boundary = format!("{activity}_compensation");
        self.elements.push(Element {
            id: boundary.clone(),
            name: None,
            scope: scope.map(str::to_string),
            kind: ElementKind::BoundaryEvent {
                attached_to: activity.to_string(),
                cancel_activity: true,
                trigger: BoundaryTrigger::Compensation {
                    handler: Some(id),
                    association: Some(format!("{boundary}_association")),
                },
            },
            line: None,
        });
    }
}
