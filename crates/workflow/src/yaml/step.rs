//! One YAML step (and its boundary events and compensation handler) into model elements.

use serde_json::Value as Json;
use serde_yaml_ng::{Mapping, Value};

use super::{scalar, timer, Converter};
use crate::model::{
    Assignment, BoundaryTrigger, CatchTrigger, Element, ElementKind, EndResult, GatewayKind,
    HttpCall, MessageWait, MultiInstance, OutputMapping, PostTarget, RetryPolicy, SendTask,
    ServiceTask, StartTrigger, ThrowKind, UserTask,
};

impl Converter {
    /// Adds one step; returns its explicit targets and whether it falls through.
    pub(super) fn step(
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
                    "person", "role", "channel", "form", "due", "multi", "on", "routing",
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
                    routing: self.routing(map, id),
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

    pub(super) fn boundaries(&mut self, activity: &str, on: &[Value], scope: Option<&str>) {
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
    pub(super) fn compensation(&mut self, activity: &str, handler: &Value, scope: Option<&str>) {
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
