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

mod step;

use serde_yaml_ng::{Mapping, Value};
use std::collections::BTreeMap;

use crate::model::{Element, ProcessModel, SequenceFlow};
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

    /// A user task's `routing:` block, as JSON for the server to check. It must be a map.
    fn routing(&mut self, map: &Mapping, id: &str) -> Option<serde_json::Value> {
        let v = map.get("routing")?;
        if !v.is_mapping() {
            self.problem(id, "routing must be a map (strategy: …)");
            return None;
        }
        match serde_json::to_value(v) {
            Ok(json) => Some(json),
            Err(e) => {
                self.problem(id, format!("routing cannot be read: {e}"));
                None
            }
        }
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
}
