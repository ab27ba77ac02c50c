//! Reading BPMN 2.0 XML into a [`ProcessModel`].
//!
//! Files are read as bpmn-js and Camunda Modeler save them: a `definitions` root holding one
//! `process`, global `message`, `error` and `signal` definitions, and `bpmndi:BPMNDiagram`
//! subtrees. The diagram is kept verbatim (see [`Diagram`]) so `export` writes the layout back.
//!
//! Settings BPMN itself has no place for (who a task is for, the HTTP call, the post) live in
//! Concord's own extension namespace, [`CONCORD_NS`] (`https://concord.dev/bpmn`, prefix
//! `concord:`), rather than borrowing a vendor's: their meaning is Concord's, and a vendor
//! attribute that merely looks alike would run differently. A few Camunda attributes with the
//! same meaning are read as aliases (`camunda:assignee`, `camunda:candidateGroups`,
//! `camunda:formKey`, `camunda:collection`, `camunda:elementVariable`, `camunda:decisionRef`);
//! export always writes the `concord:` form. The extension, by element:
//!
//! - `userTask`: attributes `concord:assignee` (a person), `concord:candidateRole`,
//!   `concord:candidateChannel`, `concord:formKey`, `concord:due` (ISO 8601 duration);
//!   `multiInstanceLoopCharacteristics` takes `concord:collection`, `concord:elementVariable`,
//!   `concord:outputCollection` and a `completionCondition`.
//! - `serviceTask`: `<concord:http method url>` with an optional `<concord:body>` (a JSON
//!   template) and `<concord:output variable expression/>` children, and
//!   `<concord:retry attempts backoff multiplier/>`, inside `extensionElements`.
//! - `sendTask`: `<concord:post channel="…">text</concord:post>` (or `person="…"`).
//! - `businessRuleTask`: `concord:decisionRef`, `concord:resultVariable`.
//! - `receiveTask`, message catch events: `messageRef` / `messageEventDefinition`, and
//!   `concord:correlationKey` (CEL).
//! - `callActivity`: `calledElement`, `concord:resultVariable`.
//!
//! Conditions are CEL; one wrapped in `${…}`, as Camunda models write them, is read without the
//! wrapper.
//!
//! Anything else (pools, lanes, plain tasks, script tasks, event sub-processes, annotations, other
//! vendors' extension elements, …) is refused with its id, line and what is supported.

mod concord;

use roxmltree::{Document, Node};

use concord::ext;
use std::collections::BTreeMap;

use crate::model::{
    Annotation, BoundaryTrigger, CatchTrigger, Diagram, Element, ElementKind, EndResult,
    GatewayKind, MessageWait, ProcessModel, SequenceFlow, StartTrigger, ThrowKind,
};
use crate::problem::{Problem, Problems};
use crate::timer::TimerDefinition;

/// The BPMN 2.0 model namespace.
pub const BPMN_NS: &str = "http://www.omg.org/spec/BPMN/20100524/MODEL";
/// The BPMN diagram interchange namespace.
pub const BPMNDI_NS: &str = "http://www.omg.org/spec/BPMN/20100524/DI";
/// Concord's extension namespace.
pub const CONCORD_NS: &str = "https://concord.dev/bpmn";
/// Camunda 7's extension namespace (a few attributes are read as aliases).
pub const CAMUNDA_NS: &str = "http://camunda.org/schema/1.0/bpmn";
/// The XML Schema instance namespace (`xsi:type` on expressions).
pub const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// The flow nodes this engine runs, listed in refusals.
pub const SUPPORTED_ELEMENTS: &str = "startEvent (none, message, timer, signal), endEvent (none, error, terminate, message), \
intermediateCatchEvent (message, timer, signal), intermediateThrowEvent (none, compensation), \
boundaryEvent (timer, error, compensation), userTask (with multiInstanceLoopCharacteristics), serviceTask, sendTask, \
businessRuleTask, receiveTask, exclusiveGateway, parallelGateway, inclusiveGateway, eventBasedGateway, \
subProcess, callActivity, sequenceFlow, association (compensation, annotations), textAnnotation";

/// The flow node tags read (their event definitions and settings are checked separately).
const SUPPORTED_TAGS: &[&str] = &[
    "startEvent",
    "endEvent",
    "intermediateCatchEvent",
    "intermediateThrowEvent",
    "boundaryEvent",
    "userTask",
    "serviceTask",
    "sendTask",
    "businessRuleTask",
    "receiveTask",
    "exclusiveGateway",
    "parallelGateway",
    "inclusiveGateway",
    "eventBasedGateway",
    "subProcess",
    "callActivity",
];

/// Parses BPMN XML; refuses unsupported content, listing every problem.
pub fn parse(xml: &str) -> Result<ProcessModel, Problems> {
    let doc = Document::parse(xml).map_err(|e| {
        Problems(vec![Problem {
            element: None,
            line: Some(e.pos().row),
            message: format!("not well-formed XML: {e}"),
        }])
    })?;
    let mut p = Parser {
        doc: &doc,
        problems: Vec::new(),
        elements: Vec::new(),
        flows: Vec::new(),
        associations: Vec::new(),
        annotations: Vec::new(),
    };
    let model = p.definitions(xml);
    if p.problems.is_empty() {
        if let Some(model) = model {
            return Ok(model);
        }
    }
    Err(Problems(p.problems))
}

struct Parser<'a, 'i> {
    doc: &'a Document<'i>,
    problems: Vec<Problem>,
    elements: Vec<Element>,
    flows: Vec<SequenceFlow>,
    /// (source, target) of `association`s, resolved to compensation handlers at the end.
    associations: Vec<(String, String, String, Option<u32>)>,
    annotations: Vec<Annotation>,
}

fn is_bpmn(n: &Node, name: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(BPMN_NS) && n.tag_name().name() == name
}

fn bpmn_children<'a, 'i>(
    n: Node<'a, 'i>,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(move |c| is_bpmn(c, name))
}

fn text(n: Node) -> String {
    n.text().unwrap_or("").trim().to_string()
}

/// An expression's text: CEL, also accepted inside the `${…}` that Camunda models wrap their
/// expressions in (export writes it bare).
fn expression(n: Node) -> String {
    let t = text(n);
    match t.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        Some(inner) if !inner.contains("${") => inner.trim().to_string(),
        _ => t,
    }
}

impl<'a, 'i> Parser<'a, 'i> {
    fn line(&self, n: Node<'a, 'i>) -> u32 {
        self.doc.text_pos_at(n.range().start).row
    }

    fn refuse(&mut self, n: Node<'a, 'i>, message: impl Into<String>) {
        let id = n.attribute("id").unwrap_or(n.tag_name().name()).to_string();
        let line = self.line(n);
        self.problems.push(Problem::at(&id, Some(line), message));
    }

    fn unsupported(&mut self, n: Node<'a, 'i>) {
        let what = n.tag_name().name().to_string();
        self.refuse(
            n,
            format!("{what} is not supported; supported elements: {SUPPORTED_ELEMENTS}"),
        );
    }

    fn definitions(&mut self, xml: &str) -> Option<ProcessModel> {
        let root = self.doc.root_element();
        if !is_bpmn(&root, "definitions") {
            self.refuse(
                root,
                format!("the root element must be definitions in namespace {BPMN_NS}"),
            );
            return None;
        }
        let mut messages = BTreeMap::new();
        let mut errors = BTreeMap::new();
        let mut signals = BTreeMap::new();
        let mut diagram_xml = String::new();
        let mut process: Option<(String, Option<String>)> = None;
        for child in root.children().filter(Node::is_element) {
            let ns = child.tag_name().namespace();
            let name = child.tag_name().name();
            let id = child.attribute("id").unwrap_or_default().to_string();
            match (ns, name) {
                (Some(BPMN_NS), "message") => {
                    messages.insert(
                        id.clone(),
                        child.attribute("name").unwrap_or(&id).to_string(),
                    );
                }
                (Some(BPMN_NS), "error") => {
                    let code = child.attribute("errorCode").or(child.attribute("name"));
                    errors.insert(id.clone(), code.unwrap_or(&id).to_string());
                }
                (Some(BPMN_NS), "signal") => {
                    signals.insert(
                        id.clone(),
                        child.attribute("name").unwrap_or(&id).to_string(),
                    );
                }
                (Some(BPMN_NS), "process") => {
                    if process.is_some() {
                        self.refuse(
                            child,
                            "a file holds one process; deploy each process on its own",
                        );
                        continue;
                    }
                    process = Some((id, child.attribute("name").map(str::to_string)));
                    self.container(child, None);
                }
                (Some(BPMNDI_NS), "BPMNDiagram") => {
                    diagram_xml.push_str(&xml[child.range()]);
                    diagram_xml.push('\n');
                }
                _ => self.unsupported(child),
            }
        }
        let Some((id, name)) = process else {
            self.refuse(root, "the file has no process");
            return None;
        };
        self.resolve_compensation_handlers();
        let diagram = (!diagram_xml.is_empty()).then(|| Diagram {
            xml: diagram_xml.trim_end().to_string(),
            namespaces: root
                .namespaces()
                .filter_map(|ns| ns.name().map(|p| (p.to_string(), ns.uri().to_string())))
                .collect(),
        });
        Some(ProcessModel {
            id,
            name,
            elements: std::mem::take(&mut self.elements),
            flows: std::mem::take(&mut self.flows),
            messages,
            errors,
            signals,
            diagram,
            definitions_id: root.attribute("id").map(str::to_string),
            annotations: std::mem::take(&mut self.annotations),
        })
    }

    /// Reads the flow nodes and flows of a process or sub-process.
    fn container(&mut self, node: Node<'a, 'i>, scope: Option<&str>) {
        for child in node.children().filter(Node::is_element) {
            if child.tag_name().namespace() != Some(BPMN_NS) {
                self.unsupported(child);
                continue;
            }
            let name = child.tag_name().name();
            match name {
                "documentation" | "extensionElements" | "incoming" | "outgoing" => continue,
                "sequenceFlow" => {
                    let flow = self.flow(child);
                    self.flows.push(flow);
                    continue;
                }
                "textAnnotation" => {
                    self.annotations.push(Annotation {
                        id: child.attribute("id").unwrap_or_default().to_string(),
                        scope: scope.map(str::to_string),
                        text: bpmn_children(child, "text")
                            .next()
                            .map(text)
                            .unwrap_or_default(),
                        links: Vec::new(),
                    });
                    continue;
                }
                "association" => {
                    let line = self.line(child);
                    self.associations.push((
                        child.attribute("id").unwrap_or_default().to_string(),
                        child.attribute("sourceRef").unwrap_or_default().to_string(),
                        child.attribute("targetRef").unwrap_or_default().to_string(),
                        Some(line),
                    ));
                    continue;
                }
                _ => {}
            }
            let Some(id) = child.attribute("id") else {
                self.refuse(child, "the element has no id");
                continue;
            };
            if SUPPORTED_TAGS.contains(&name) {
                self.check_children(child);
            }
            if let Some(kind) = self.kind(child) {
                self.elements.push(Element {
                    id: id.to_string(),
                    name: child.attribute("name").map(str::to_string),
                    scope: scope.map(str::to_string),
                    kind,
                    line: Some(self.line(child)),
                });
            }
            if name == "subProcess" {
                self.container(child, Some(id));
            }
        }
    }

    /// Refuses child elements no supported element may have (loops on anything but user tasks,
    /// data associations, …).
    fn check_children(&mut self, n: Node<'a, 'i>) {
        const KNOWN: &[&str] = &[
            "incoming",
            "outgoing",
            "documentation",
            "extensionElements",
            "messageEventDefinition",
            "timerEventDefinition",
            "signalEventDefinition",
            "errorEventDefinition",
            "terminateEventDefinition",
            "compensateEventDefinition",
        ];
        let is_sub = n.tag_name().name() == "subProcess";
        let is_user = n.tag_name().name() == "userTask";
        for c in n.children().filter(Node::is_element) {
            let name = c.tag_name().name();
            let ok = c.tag_name().namespace() == Some(BPMN_NS)
                && (KNOWN.contains(&name)
                    || (is_user && name == "multiInstanceLoopCharacteristics")
                    || is_sub);
            if !ok {
                self.refuse(
                    c,
                    format!(
                        "{name} inside {} is not supported (multi-instance is supported on user tasks)",
                        n.tag_name().name()
                    ),
                );
            }
        }
        if let Some(ext) = n.children().find(|c| is_bpmn(c, "extensionElements")) {
            for c in ext.children().filter(Node::is_element) {
                let known = c.tag_name().namespace() == Some(CONCORD_NS)
                    && matches!(c.tag_name().name(), "http" | "retry" | "post" | "routing");
                if !known {
                    let name = c.tag_name().name().to_string();
                    let id = n.attribute("id").unwrap_or_default().to_string();
                    let line = self.line(c);
                    self.problems.push(Problem::at(
                        &id,
                        Some(line),
                        format!(
                            "extension element {name} is not supported; Concord reads concord:http, concord:retry, concord:post and concord:routing ({CONCORD_NS})"
                        ),
                    ));
                }
            }
        }
    }

    fn flow(&mut self, n: Node<'a, 'i>) -> SequenceFlow {
        let line = self.line(n);
        let id = n.attribute("id").unwrap_or_default().to_string();
        if id.is_empty() {
            self.refuse(n, "the sequence flow has no id");
        }
        let condition = bpmn_children(n, "conditionExpression")
            .next()
            .map(expression)
            .filter(|c| !c.is_empty());
        SequenceFlow {
            id,
            name: n.attribute("name").map(str::to_string),
            source: n.attribute("sourceRef").unwrap_or_default().to_string(),
            target: n.attribute("targetRef").unwrap_or_default().to_string(),
            condition,
            line: Some(line),
        }
    }

    /// The single event definition of an event, if any; refuses more than one.
    fn event_definition(&mut self, n: Node<'a, 'i>) -> Option<Node<'a, 'i>> {
        let defs: Vec<Node> = n
            .children()
            .filter(|c| c.is_element() && c.tag_name().name().ends_with("EventDefinition"))
            .collect();
        if defs.len() > 1 {
            self.refuse(n, "events with several event definitions are not supported");
        }
        defs.into_iter().next()
    }

    fn timer(&mut self, def: Node<'a, 'i>) -> Option<TimerDefinition> {
        for c in def.children().filter(Node::is_element) {
            let value = text(c);
            match c.tag_name().name() {
                "timeDate" => return Some(TimerDefinition::Date(value)),
                "timeDuration" => return Some(TimerDefinition::Duration(value)),
                "timeCycle" => return Some(TimerDefinition::Cycle(value)),
                _ => {}
            }
        }
        self.refuse(def, "the timer needs a timeDate, timeDuration or timeCycle");
        None
    }

    fn message_wait(&self, n: Node<'a, 'i>, message: Option<&str>) -> MessageWait {
        MessageWait {
            message: message.unwrap_or_default().to_string(),
            correlation_key: ext(n, "correlationKey", None),
        }
    }

    fn kind(&mut self, n: Node<'a, 'i>) -> Option<ElementKind> {
        let name = n.tag_name().name();
        let def = self.event_definition(n);
        let def_name = def.map(|d| d.tag_name().name());
        let kind = match (name, def_name) {
            ("startEvent", None) => ElementKind::StartEvent {
                trigger: StartTrigger::None,
            },
            ("startEvent", Some("messageEventDefinition")) => ElementKind::StartEvent {
                trigger: StartTrigger::Message {
                    message: def?.attribute("messageRef").unwrap_or_default().to_string(),
                },
            },
            ("startEvent", Some("timerEventDefinition")) => ElementKind::StartEvent {
                trigger: StartTrigger::Timer(self.timer(def?)?),
            },
            ("startEvent", Some("signalEventDefinition")) => ElementKind::StartEvent {
                trigger: StartTrigger::Signal {
                    signal: def?.attribute("signalRef").unwrap_or_default().to_string(),
                },
            },
            ("endEvent", None) => ElementKind::EndEvent {
                result: EndResult::None,
            },
            ("endEvent", Some("errorEventDefinition")) => ElementKind::EndEvent {
                result: EndResult::Error {
                    error: def?.attribute("errorRef").unwrap_or_default().to_string(),
                },
            },
            ("endEvent", Some("terminateEventDefinition")) => ElementKind::EndEvent {
                result: EndResult::Terminate,
            },
            ("endEvent", Some("messageEventDefinition")) => ElementKind::EndEvent {
                result: EndResult::Message {
                    message: def?.attribute("messageRef").unwrap_or_default().to_string(),
                },
            },
            ("intermediateCatchEvent", Some("messageEventDefinition")) => {
                ElementKind::IntermediateCatch {
                    trigger: CatchTrigger::Message(
                        self.message_wait(n, def?.attribute("messageRef")),
                    ),
                }
            }
            ("intermediateCatchEvent", Some("timerEventDefinition")) => {
                ElementKind::IntermediateCatch {
                    trigger: CatchTrigger::Timer(self.timer(def?)?),
                }
            }
            ("intermediateCatchEvent", Some("signalEventDefinition")) => {
                ElementKind::IntermediateCatch {
                    trigger: CatchTrigger::Signal {
                        signal: def?.attribute("signalRef").unwrap_or_default().to_string(),
                    },
                }
            }
            ("intermediateThrowEvent", None) => ElementKind::IntermediateThrow {
                throw: ThrowKind::None,
            },
            ("intermediateThrowEvent", Some("compensateEventDefinition")) => {
                ElementKind::IntermediateThrow {
                    throw: ThrowKind::Compensate {
                        activity: def?.attribute("activityRef").map(str::to_string),
                    },
                }
            }
            ("boundaryEvent", Some(d)) => {
                let attached_to = n.attribute("attachedToRef").unwrap_or_default().to_string();
                let cancel_activity = n.attribute("cancelActivity") != Some("false");
                let trigger = match d {
                    "timerEventDefinition" => BoundaryTrigger::Timer(self.timer(def?)?),
                    "errorEventDefinition" => BoundaryTrigger::Error {
                        error: def?.attribute("errorRef").map(str::to_string),
                    },
                    "compensateEventDefinition" => BoundaryTrigger::Compensation {
                        handler: None,
                        association: None,
                    },
                    _ => {
                        self.refuse(
                            n,
                            format!("boundary events with {d} are not supported; supported: timer, error, compensation"),
                        );
                        return None;
                    }
                };
                ElementKind::BoundaryEvent {
                    attached_to,
                    cancel_activity,
                    trigger,
                }
            }
            ("userTask", None) => ElementKind::UserTask(self.user_task(n)),
            ("serviceTask", None) => ElementKind::ServiceTask(self.service_task(n)?),
            ("sendTask", None) => ElementKind::SendTask(self.send_task(n)?),
            ("businessRuleTask", None) => ElementKind::BusinessRuleTask {
                decision_ref: ext(n, "decisionRef", Some("decisionRef")).unwrap_or_default(),
                result_variable: ext(n, "resultVariable", Some("resultVariable")),
            },
            ("receiveTask", None) => {
                ElementKind::ReceiveTask(self.message_wait(n, n.attribute("messageRef")))
            }
            ("exclusiveGateway", None) => self.gateway(n, GatewayKind::Exclusive),
            ("parallelGateway", None) => self.gateway(n, GatewayKind::Parallel),
            ("inclusiveGateway", None) => self.gateway(n, GatewayKind::Inclusive),
            ("eventBasedGateway", None) => self.gateway(n, GatewayKind::EventBased),
            ("subProcess", None) => {
                if n.attribute("triggeredByEvent") == Some("true") {
                    self.refuse(
                        n,
                        "event sub-processes are not supported; use boundary events",
                    );
                    return None;
                }
                ElementKind::SubProcess
            }
            ("callActivity", None) => ElementKind::CallActivity {
                called_element: n.attribute("calledElement").unwrap_or_default().to_string(),
                result_variable: ext(n, "resultVariable", None),
            },
            (_, Some(d))
                if matches!(
                    name,
                    "startEvent" | "endEvent" | "intermediateCatchEvent" | "intermediateThrowEvent"
                ) =>
            {
                self.refuse(
                    n,
                    format!("{name} with {d} is not supported; supported elements: {SUPPORTED_ELEMENTS}"),
                );
                return None;
            }
            _ => {
                self.unsupported(n);
                return None;
            }
        };
        Some(kind)
    }

    fn gateway(&self, n: Node<'a, 'i>, kind: GatewayKind) -> ElementKind {
        ElementKind::Gateway {
            kind,
            default_flow: n.attribute("default").map(str::to_string),
        }
    }

    /// Links compensation boundary events to their handlers through `association`s.
    fn resolve_compensation_handlers(&mut self) {
        let associations = std::mem::take(&mut self.associations);
        for (id, source, target, line) in associations {
            if let Some(a) = self
                .annotations
                .iter_mut()
                .find(|a| a.id == source || a.id == target)
            {
                a.links.push((id, source, target));
                continue;
            }
            let element = self.elements.iter_mut().find(|e| e.id == source);
            match element {
                Some(Element {
                    kind:
                        ElementKind::BoundaryEvent {
                            trigger:
                                BoundaryTrigger::Compensation {
                                    handler,
                                    association,
                                },
                            ..
                        },
                    ..
                }) => {
                    *handler = Some(target);
                    *association = Some(id);
                }
                _ => self.problems.push(Problem::at(
                    &source,
                    line,
                    "associations are supported from a compensation boundary event to its handler and to or from a text annotation",
                )),
            }
        }
    }
}
