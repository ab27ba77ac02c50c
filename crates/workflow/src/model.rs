//! The process model: what a deployed process is made of, independent of the notation it was
//! written in.
//!
//! A [`ProcessModel`] is a flat list of [`Element`]s and [`SequenceFlow`]s. Nesting (an embedded
//! sub-process holding its own start, tasks and end) is expressed by each element's `scope`: the
//! id of the sub-process it sits in, `None` for the process itself. Flat storage keeps lookups
//! simple for the engine; `export` rebuilds the nesting when it writes BPMN.
//!
//! The model is immutable once parsed and validated; an instance runs to its end on the model it
//! started with (the server stores one model per deployment version). Source lines are kept for
//! error messages only and never take part in execution.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::timer::TimerDefinition;

/// One deployable process, as parsed from BPMN XML (or built by hand in tests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessModel {
    /// The BPMN `process` id; call activities name it in `calledElement`.
    pub id: String,
    /// The process name shown to people.
    pub name: Option<String>,
    /// Every flow node (events, tasks, gateways, sub-processes), in document order.
    pub elements: Vec<Element>,
    /// Every sequence flow, in document order.
    pub flows: Vec<SequenceFlow>,
    /// Global message definitions (BPMN `message`): id → name.
    pub messages: BTreeMap<String, String>,
    /// Global error definitions (BPMN `error`): id → error code.
    pub errors: BTreeMap<String, String>,
    /// Global signal definitions (BPMN `signal`): id → name.
    pub signals: BTreeMap<String, String>,
    /// The diagram interchange (shapes and edges), verbatim, so an export reopens with its layout.
    pub diagram: Option<Diagram>,
    /// The `definitions` element's id, written back on export.
    pub definitions_id: Option<String>,
    /// Text annotations (notes drawn in the diagram); they take no part in execution.
    #[serde(default)]
    pub annotations: Vec<Annotation>,
}

/// A text annotation and the associations that link it to elements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotation {
    /// The BPMN id.
    pub id: String,
    /// The sub-process it is drawn in; `None` at the process level.
    pub scope: Option<String>,
    /// The note.
    pub text: String,
    /// `(association id, source, target)` of each association touching it.
    pub links: Vec<(String, String, String)>,
}

/// The `bpmndi:BPMNDiagram` subtrees of a BPMN file as written, and the namespace declarations
/// of the file's root they may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagram {
    /// The XML text of every `BPMNDiagram` element, one after another.
    pub xml: String,
    /// `(prefix, uri)` of each `xmlns:prefix` declared on `definitions`.
    pub namespaces: Vec<(String, String)>,
}

/// One flow node of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Element {
    /// The BPMN id, unique in the model.
    pub id: String,
    /// The label shown in the diagram.
    pub name: Option<String>,
    /// The sub-process this element belongs to; `None` at the process level.
    pub scope: Option<String>,
    /// What the element does.
    pub kind: ElementKind,
    /// The 1-based line of the element in its source, for problems reported to people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// A sequence flow between two flow nodes of the same scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequenceFlow {
    /// The BPMN id.
    pub id: String,
    /// The label shown in the diagram.
    pub name: Option<String>,
    /// The id of the element the flow leaves.
    pub source: String,
    /// The id of the element the flow enters.
    pub target: String,
    /// A CEL condition; the flow is taken only when it is true (gateways and activities).
    pub condition: Option<String>,
    /// The 1-based source line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// What a flow node is and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ElementKind {
    /// A start event; sub-processes have exactly one none start.
    StartEvent { trigger: StartTrigger },
    /// An end event.
    EndEvent { result: EndResult },
    /// An intermediate catch event: the token waits for a message, a timer or a signal.
    IntermediateCatch { trigger: CatchTrigger },
    /// An intermediate throw event: none (a milestone) or compensation.
    IntermediateThrow { throw: ThrowKind },
    /// An event attached to an activity's boundary.
    BoundaryEvent {
        attached_to: String,
        /// Interrupting (`cancelActivity="true"`, the default) or not.
        cancel_activity: bool,
        trigger: BoundaryTrigger,
    },
    /// Work for a person.
    UserTask(UserTask),
    /// An HTTP call.
    ServiceTask(ServiceTask),
    /// A post to a channel or a person through the bot API.
    SendTask(SendTask),
    /// Evaluation of a decision (the decision engine runs it; this engine only asks).
    BusinessRuleTask {
        decision_ref: String,
        result_variable: Option<String>,
    },
    /// Waits for a correlated message.
    ReceiveTask(MessageWait),
    /// A gateway.
    Gateway {
        kind: GatewayKind,
        /// The flow taken when no condition holds (exclusive and inclusive gateways).
        default_flow: Option<String>,
    },
    /// An embedded sub-process; its elements name it as their `scope`.
    SubProcess,
    /// Starts an instance of another process and waits for it to complete.
    CallActivity {
        called_element: String,
        /// Variables the child's variables are passed back into; `None` merges all of them.
        result_variable: Option<String>,
    },
}

/// How a process instance starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Tagged `on`, not `type`: the timer variant holds a [`TimerDefinition`], itself tagged `type`.
#[serde(tag = "on", rename_all = "snake_case")]
pub enum StartTrigger {
    /// Started explicitly (REST, CLI, call activity, sub-process entry).
    None,
    /// Started by a message with this message id.
    Message { message: String },
    /// Started by the server's scheduler.
    Timer(TimerDefinition),
    /// Started by a broadcast signal with this signal id.
    Signal { signal: String },
}

/// What an end event does when a token reaches it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EndResult {
    /// Consumes the token.
    None,
    /// Throws the error with this error id to the enclosing scope.
    Error { error: String },
    /// Ends every token of the scope.
    Terminate,
    /// Publishes a message (the server delivers it) and consumes the token.
    Message { message: String },
}

/// What an intermediate catch event waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Tagged `on`, not `type`: the timer variant holds a [`TimerDefinition`], itself tagged `type`.
#[serde(tag = "on", rename_all = "snake_case")]
pub enum CatchTrigger {
    /// A correlated message.
    Message(MessageWait),
    /// A timer.
    Timer(TimerDefinition),
    /// A broadcast signal with this signal id.
    Signal { signal: String },
}

/// What an intermediate throw event does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ThrowKind {
    /// Nothing: a milestone recorded in the history.
    None,
    /// Compensates the completed activities of its scope (or only `activity`), latest first,
    /// and continues when every handler has completed.
    Compensate { activity: Option<String> },
}

/// What a boundary event reacts to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Tagged `on`, not `type`: the timer variant holds a [`TimerDefinition`], itself tagged `type`.
#[serde(tag = "on", rename_all = "snake_case")]
pub enum BoundaryTrigger {
    /// A timer started when the activity is entered.
    Timer(TimerDefinition),
    /// An error thrown by the activity: a failed service call whose error equals the code, or an
    /// error end event inside a sub-process. `None` catches every error.
    Error { error: Option<String> },
    /// Marks the activity compensable; `handler` is the task that undoes it, linked by the
    /// BPMN `association` with id `association`.
    Compensation {
        handler: Option<String>,
        association: Option<String>,
    },
}

/// The kinds of gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayKind {
    /// Takes the first outgoing flow whose condition holds (or the default); joins pass through.
    Exclusive,
    /// Takes every outgoing flow; joins wait for a token on every incoming flow.
    Parallel,
    /// Takes every outgoing flow whose condition holds (or the default); joins wait for every
    /// token that can still reach them.
    Inclusive,
    /// Waits for the first of the events that follow it.
    EventBased,
}

/// A message wait: which message, and the CEL expression whose value must equal the message's
/// correlation key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageWait {
    /// The message id (see [`ProcessModel::messages`]).
    pub message: String,
    /// CEL evaluated when the wait begins; `None` accepts any message with the name.
    pub correlation_key: Option<String>,
}

/// Who may work on a user task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Assignment {
    /// A named person (a CEL expression or a literal handle, see `expr::render_text`).
    Person(String),
    /// Everyone holding a role.
    Role(String),
    /// The members of a channel.
    Channel(String),
    /// Nobody in particular: operators assign it.
    Unassigned,
}

/// A user task's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserTask {
    /// Who may complete it.
    pub assignment: Assignment,
    /// The form (a key the server resolves to a JSON schema).
    pub form_key: Option<String>,
    /// How long after creation it is due (ISO 8601 duration).
    pub due: Option<String>,
    /// Runs the task once per item of a collection.
    pub multi_instance: Option<MultiInstance>,
    /// How the task picks among the people its assignment names (the `routing:` block: a
    /// strategy, its modifiers, a presence fallback and an escalation chain). The engine
    /// carries it to the server untouched; the server checks it when the model is deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<serde_json::Value>,
}

/// Multi-instance settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiInstance {
    /// One instance at a time (`true`) or all at once.
    pub sequential: bool,
    /// CEL giving the list of items.
    pub collection: String,
    /// The name each instance sees its item under.
    pub element_variable: Option<String>,
    /// CEL evaluated after each completed instance; true ends the activity early.
    pub completion_condition: Option<String>,
    /// A variable that receives the list of every instance's completion variables, in item order.
    pub output_collection: Option<String>,
}

/// A service task: one HTTP call with retries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceTask {
    /// The request.
    pub http: HttpCall,
    /// How failures are retried before an incident is raised.
    pub retry: RetryPolicy,
}

/// An HTTP request template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpCall {
    /// GET, POST, PUT, PATCH or DELETE.
    pub method: String,
    /// A text template (`${expr}` placeholders).
    pub url: String,
    /// A JSON template: a string that is exactly `${expr}` becomes the expression's value, other
    /// strings interpolate.
    pub body: Option<serde_json::Value>,
    /// Variables set from the response: variable name → CEL over `response` (`status`, `body`).
    pub outputs: Vec<OutputMapping>,
}

/// One response mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputMapping {
    /// The variable set.
    pub variable: String,
    /// CEL evaluated with `response` bound.
    pub expression: String,
}

/// Retries of a failed call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = no retry).
    pub attempts: u32,
    /// The wait before the first retry (ISO 8601 duration).
    pub backoff: String,
    /// The factor applied to the wait after each retry.
    pub multiplier: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: "PT10S".into(),
            multiplier: 2.0,
        }
    }
}

/// A send task: a post through the bot API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendTask {
    /// Where the post goes.
    pub to: PostTarget,
    /// A text template.
    pub text: String,
}

/// The recipient of a post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum PostTarget {
    /// A channel (name or id, a text template).
    Channel(String),
    /// A person (handle, a text template), as a direct message.
    Person(String),
}

impl ProcessModel {
    /// The element with this id.
    pub fn element(&self, id: &str) -> Option<&Element> {
        self.elements.iter().find(|e| e.id == id)
    }

    /// The flow with this id.
    pub fn flow(&self, id: &str) -> Option<&SequenceFlow> {
        self.flows.iter().find(|f| f.id == id)
    }

    /// Flows leaving an element, in document order.
    pub fn outgoing(&self, id: &str) -> impl Iterator<Item = &SequenceFlow> {
        let id = id.to_string();
        self.flows.iter().filter(move |f| f.source == id)
    }

    /// Flows entering an element, in document order.
    pub fn incoming(&self, id: &str) -> impl Iterator<Item = &SequenceFlow> {
        let id = id.to_string();
        self.flows.iter().filter(move |f| f.target == id)
    }

    /// Boundary events attached to an activity.
    pub fn boundaries(&self, activity: &str) -> impl Iterator<Item = &Element> {
        let activity = activity.to_string();
        self.elements.iter().filter(move |e| {
            matches!(&e.kind, ElementKind::BoundaryEvent { attached_to, .. } if *attached_to == activity)
        })
    }

    /// The none start event of a scope (`None` = the process).
    pub fn none_start(&self, scope: Option<&str>) -> Option<&Element> {
        self.elements.iter().find(|e| {
            e.scope.as_deref() == scope
                && matches!(
                    e.kind,
                    ElementKind::StartEvent {
                        trigger: StartTrigger::None
                    }
                )
        })
    }

    /// The process's own start events with what starts each: the server subscribes the message
    /// and signal starts, schedules the timer starts, and calls `Engine::start_at` when one fires.
    pub fn start_events(&self) -> impl Iterator<Item = (&Element, &StartTrigger)> {
        self.elements.iter().filter_map(|e| match &e.kind {
            ElementKind::StartEvent { trigger } if e.scope.is_none() => Some((e, trigger)),
            _ => None,
        })
    }

    /// The name of a message id (the id itself when it is not declared).
    pub fn message_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.messages.get(id).map(String::as_str).unwrap_or(id)
    }

    /// The code of an error id (the id itself when it is not declared).
    pub fn error_code<'a>(&'a self, id: &'a str) -> &'a str {
        self.errors.get(id).map(String::as_str).unwrap_or(id)
    }

    /// The name of a signal id (the id itself when it is not declared).
    pub fn signal_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.signals.get(id).map(String::as_str).unwrap_or(id)
    }

    /// Whether an element is the handler of a compensation boundary event (it runs only when
    /// compensation is thrown, and has no sequence flows).
    pub fn is_compensation_handler(&self, id: &str) -> bool {
        self.elements.iter().any(|e| {
            matches!(&e.kind, ElementKind::BoundaryEvent {
                trigger: BoundaryTrigger::Compensation { handler: Some(h), .. },
                ..
            } if h == id)
        })
    }

    /// The same model without source lines, to compare models parsed from different texts.
    pub fn without_lines(&self) -> ProcessModel {
        let mut m = self.clone();
        m.elements.iter_mut().for_each(|e| e.line = None);
        m.flows.iter_mut().for_each(|f| f.line = None);
        m
    }
}

impl ElementKind {
    /// Whether tokens wait in the element for work to be done (boundary events attach to these).
    pub fn is_activity(&self) -> bool {
        matches!(
            self,
            ElementKind::UserTask(_)
                | ElementKind::ServiceTask(_)
                | ElementKind::SendTask(_)
                | ElementKind::BusinessRuleTask { .. }
                | ElementKind::ReceiveTask(_)
                | ElementKind::SubProcess
                | ElementKind::CallActivity { .. }
        )
    }
}
