//! The durable state of one process instance.
//!
//! Everything the engine needs to continue an instance is here and serializes with serde (the
//! server stores it as JSON next to the instance and loads it after a crash): the variables,
//! the executions (tokens) with their element and enclosing scope, and every point the instance
//! waits on: user tasks, timers, message and signal subscriptions, service calls, child
//! instances, decisions and incidents, each under an id the server was told in a command.
//!
//! Ids are derived from the instance id and a counter in the state (`{instance}:task7`,
//! `{instance}:timer8`), so they are unique across instances and the same on a replay.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// An execution's number within its instance.
pub type ExecutionId = u64;

/// The version of the state's stored form; a change that old stored states cannot be read
/// with raises it, and the server migrates or refuses states of another version.
pub const STATE_FORMAT: u32 = 1;

/// An instance's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceState {
    /// [`STATE_FORMAT`] when the state was written.
    pub format: u32,
    /// The instance id the server gave at start.
    pub instance_id: String,
    /// The process (model) id.
    pub process_id: String,
    /// Running or how it ended.
    pub status: Status,
    /// The instance's variables.
    pub variables: Map<String, Value>,
    /// Live executions by id.
    pub executions: BTreeMap<ExecutionId, Execution>,
    /// The counter ids are made from.
    pub next_id: u64,
    /// The number of the last history step.
    pub step: u64,
    /// Open user tasks by task id.
    pub user_tasks: BTreeMap<String, UserTaskWait>,
    /// Task ids completed, so a second completion is refused clearly.
    pub completed_tasks: BTreeSet<String>,
    /// Scheduled timers by timer id.
    pub timers: BTreeMap<String, TimerWait>,
    /// Message and signal subscriptions by subscription id.
    pub subscriptions: BTreeMap<String, Subscription>,
    /// Service calls in flight (or waiting for a retry) by call id.
    pub calls: BTreeMap<String, PendingCall>,
    /// Child instances started by call activities, by child id.
    pub children: BTreeMap<String, ExecutionId>,
    /// Decisions being evaluated, by request id.
    pub decisions: BTreeMap<String, ExecutionId>,
    /// Open incidents by incident id.
    pub incidents: BTreeMap<String, Incident>,
    /// Completed compensable activities, oldest first.
    pub compensable: Vec<Compensable>,
}

/// Whether an instance runs, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Status {
    /// Still running (possibly waiting or with an incident).
    Running,
    /// Every execution reached an end.
    Completed,
    /// A terminate end event ended it.
    Terminated,
    /// An error end event nothing caught ended it (after compensation).
    Failed { error: String },
    /// An operator cancelled it.
    Cancelled,
}

/// One token: where it is and what it waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// Its id.
    pub id: ExecutionId,
    /// The element it is at.
    pub element: String,
    /// The execution of the sub-process it runs in; `None` at the process level.
    pub scope: Option<ExecutionId>,
    /// The flow it arrived by (joins count arrivals per flow).
    pub via: Option<String>,
    /// What it is doing.
    pub phase: Phase,
    /// Multi-instance bookkeeping, for a multi-instance user task.
    pub multi: Option<MultiState>,
    /// Compensation handlers still to run before it continues, latest activity first.
    pub compensation: Option<Vec<Compensable>>,
    /// For a compensation handler's execution: the execution waiting for it.
    pub handler_for: Option<ExecutionId>,
}

/// What an execution is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for an input (task, call, timer, message, child, decision, its scope's tokens).
    Waiting,
    /// Arrived at a joining gateway, waiting for the other branches.
    Joining,
    /// Stopped by an incident.
    Incident,
}

/// Multi-instance progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiState {
    /// The collection's items.
    pub items: Vec<Value>,
    /// The index of the next item to start.
    pub next: usize,
    /// How many instances completed.
    pub completed: usize,
    /// Each instance's completion variables, by item index (`null` until completed).
    pub outputs: Vec<Value>,
}

/// An open user task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserTaskWait {
    /// The execution at the task.
    pub execution: ExecutionId,
    /// The task element.
    pub element: String,
    /// The multi-instance item index.
    pub index: Option<usize>,
}

/// Why a timer was scheduled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TimerPurpose {
    /// An intermediate timer catch event the execution is at.
    Catch,
    /// A timer boundary event of the activity the execution is at.
    Boundary { event: String },
    /// A timer catch event after an event-based gateway the execution is at.
    EventGateway { event: String },
    /// The wait before retrying a failed service call.
    Retry { call: String },
}

/// A scheduled timer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimerWait {
    /// The execution it belongs to.
    pub execution: ExecutionId,
    /// Why it runs.
    pub purpose: TimerPurpose,
    /// When it is due.
    pub due: DateTime<Utc>,
    /// How many times it fired (cycles).
    pub fired: u32,
}

/// A message or signal subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// The execution waiting.
    pub execution: ExecutionId,
    /// Message or signal.
    pub kind: SubscriptionKind,
    /// The message or signal name.
    pub name: String,
    /// The correlation key a message must carry; `None` accepts any.
    pub correlation: Option<Value>,
    /// The catch event after an event-based gateway, if the execution is at the gateway.
    pub event: Option<String>,
}

/// What a subscription waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionKind {
    /// A message, delivered to one instance.
    Message,
    /// A signal, broadcast.
    Signal,
}

/// A service call in flight or waiting for its retry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingCall {
    /// The execution at the service task.
    pub execution: ExecutionId,
    /// The service task (or compensation handler).
    pub element: String,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The same for every attempt of this execution.
    pub idempotency_key: String,
    /// The request as rendered on the first attempt (retries send it unchanged).
    pub request: crate::command::HttpRequest,
    /// Whether an attempt is in flight (false while waiting for a retry or on an incident).
    pub in_flight: bool,
}

/// A stop that needs an operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// The execution stopped.
    pub execution: ExecutionId,
    /// The element where it stopped.
    pub element: String,
    /// What went wrong.
    pub message: String,
    /// What a retry does.
    pub resume: Resume,
}

/// What retrying an incident does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Resume {
    /// Enter the element again.
    Enter,
    /// Leave the element again (evaluating its outgoing flows).
    Leave,
    /// Send the service call again, with the same idempotency key.
    Call { call: String },
}

/// A completed activity that can be compensated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Compensable {
    /// The activity that completed.
    pub activity: String,
    /// Its compensation handler.
    pub handler: String,
    /// The scope it ran in.
    pub scope: Option<ExecutionId>,
}

impl InstanceState {
    /// Whether the instance still runs.
    pub fn is_running(&self) -> bool {
        self.status == Status::Running
    }

    /// Open user task ids, for an inbox.
    pub fn open_tasks(&self) -> impl Iterator<Item = &str> {
        self.user_tasks.keys().map(String::as_str)
    }
}
