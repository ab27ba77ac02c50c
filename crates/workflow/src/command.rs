//! The engine's conversation with the server: [`Input`]s it is told, [`Command`]s it asks for,
//! and the [`HistoryEntry`]s it records.
//!
//! Commands are requests, not facts: the server runs each one (through the outbox, so a crash
//! after the state commits still runs it) and reports outcomes back as inputs naming the id the
//! command carried. Commands of one transition are in the order the engine issued them; a
//! `Cancel…` or `Unsubscribe` may follow the command it cancels in the same transition when
//! an element was left at once, and the server may then skip both.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::{Assignment, PostTarget};
use crate::state::{ExecutionId, Status};

/// Something that happened, for the engine to react to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Input {
    /// A person completed a user task (the server checked they may).
    TaskCompleted {
        task_id: String,
        actor: String,
        variables: Map<String, Value>,
    },
    /// A service call answered; `response` is `{"status": 200, "body": …}`, bound as `response`
    /// in the task's output mappings.
    ServiceCallSucceeded { call_id: String, response: Value },
    /// A service call failed; `error` is matched against error boundary codes, `retryable`
    /// (network errors, 5xx, 429) lets the retry policy apply.
    ServiceCallFailed {
        call_id: String,
        error: String,
        retryable: bool,
    },
    /// A timer is due.
    TimerFired { timer_id: String },
    /// A message for this instance.
    MessageReceived {
        name: String,
        correlation: Option<Value>,
        variables: Map<String, Value>,
    },
    /// A broadcast signal.
    SignalReceived {
        name: String,
        variables: Map<String, Value>,
    },
    /// A child instance started by a call activity completed.
    ChildCompleted {
        child_id: String,
        variables: Map<String, Value>,
    },
    /// A child instance started by a call activity failed (ended by an uncaught error, with its
    /// code, or was cancelled).
    ChildFailed { child_id: String, error: String },
    /// A decision asked for by a business-rule task was evaluated. `explanation` (which
    /// version of the table decided, the rules that matched and why) is recorded in the
    /// history as a `decision_evaluated` step before the task completes.
    DecisionEvaluated {
        request_id: String,
        result: Value,
        #[serde(default)]
        explanation: Option<Value>,
    },
    /// A decision could not be made (no table by that name, two rules matching under the
    /// `unique` hit policy, an input that does not evaluate): the task stops on an incident,
    /// and retrying it asks for the decision again.
    DecisionFailed { request_id: String, error: String },
    /// An operator retries an incident.
    IncidentRetry { incident_id: String },
    /// An operator skips the failed element, setting variables instead of its result.
    IncidentSkip {
        incident_id: String,
        variables: Map<String, Value>,
    },
    /// An operator cancels the instance because of an incident.
    IncidentCancel { incident_id: String },
    /// An operator cancels the instance.
    Cancel { actor: String },
}

/// An HTTP request for the server to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// The method.
    pub method: String,
    /// The rendered URL.
    pub url: String,
    /// The rendered JSON body.
    pub body: Option<Value>,
}

/// Work for the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Open a user task and notify its assignees.
    CreateUserTask {
        task_id: String,
        element: String,
        name: Option<String>,
        assignment: Assignment,
        form_key: Option<String>,
        due: Option<DateTime<Utc>>,
        /// The multi-instance item, under the element variable.
        local: Map<String, Value>,
        /// The task's routing block, as the model wrote it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        routing: Option<Value>,
    },
    /// Close a user task nobody completed (a boundary event or a cancel ended it).
    CancelUserTask { task_id: String },
    /// Send an HTTP request. Every attempt of one execution carries the same idempotency key;
    /// each attempt has its own call id.
    CallService {
        call_id: String,
        idempotency_key: String,
        element: String,
        attempt: u32,
        request: HttpRequest,
    },
    /// Post through the bot API (fire and forget, delivered by the outbox).
    Post {
        post_id: String,
        element: String,
        to: PostTarget,
        text: String,
    },
    /// Fire `TimerFired { timer_id }` at `due` (at once if the time has passed).
    ScheduleTimer {
        timer_id: String,
        element: String,
        due: DateTime<Utc>,
    },
    /// Forget a timer.
    CancelTimer { timer_id: String },
    /// Route messages with this name (and correlation key, when set) to this instance.
    Subscribe {
        subscription_id: String,
        element: String,
        message: String,
        correlation: Option<Value>,
    },
    /// Route signals with this name to this instance.
    SubscribeSignal {
        subscription_id: String,
        element: String,
        signal: String,
    },
    /// Stop routing for a subscription (a consumed subscription is not unsubscribed).
    Unsubscribe { subscription_id: String },
    /// Publish a message (message end event) for other instances.
    PublishMessage {
        message: String,
        variables: Map<String, Value>,
    },
    /// Start an instance of another process; answer with `ChildCompleted`.
    StartChild {
        child_id: String,
        element: String,
        process_id: String,
        variables: Map<String, Value>,
    },
    /// Cancel a child instance no longer waited for.
    CancelChild { child_id: String },
    /// Evaluate a decision; answer with `DecisionEvaluated`.
    EvaluateDecision {
        request_id: String,
        element: String,
        decision_ref: String,
        variables: Map<String, Value>,
    },
    /// An operator must act (retry, skip or cancel).
    RaiseIncident {
        incident_id: String,
        element: String,
        message: String,
    },
    /// The incident is resolved.
    ResolveIncident { incident_id: String },
    /// The instance ended.
    Completed {
        status: Status,
        variables: Map<String, Value>,
    },
}

/// One step of an instance's history, for the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The step number within the instance, from 1, without gaps.
    pub step: u64,
    /// When it happened (the `now` of the transition).
    pub at: DateTime<Utc>,
    /// The element concerned.
    pub element: Option<String>,
    /// The execution concerned.
    pub execution: Option<ExecutionId>,
    /// What happened.
    pub event: HistoryEvent,
    /// Who caused it (a task's completer, an operator), when a person did.
    pub actor: Option<String>,
    /// The variables it set, with their new values.
    pub changed: Map<String, Value>,
}

/// What a history step records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HistoryEvent {
    /// The instance started.
    InstanceStarted,
    /// An execution entered the element.
    Entered,
    /// The element completed and its execution left it.
    Completed,
    /// The element was cancelled (boundary event, terminate, cancel).
    Cancelled,
    /// A user task was completed.
    TaskCompleted { task_id: String },
    /// A business-rule task's decision was made: the table, and how it decided.
    DecisionEvaluated {
        decision_ref: String,
        explanation: Value,
    },
    /// A service call failed.
    CallFailed { call_id: String, error: String },
    /// A timer fired.
    TimerFired { timer_id: String },
    /// A message or signal arrived.
    MessageReceived { name: String },
    /// A boundary event triggered.
    BoundaryTriggered { event: String },
    /// An incident was raised.
    IncidentRaised {
        incident_id: String,
        message: String,
    },
    /// An incident was resolved.
    IncidentResolved { incident_id: String, how: String },
    /// A compensation handler started.
    CompensationStarted { activity: String },
    /// The instance ended.
    InstanceEnded { status: Status },
}
