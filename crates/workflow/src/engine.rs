//! The engine's entry points: start an instance, handle an input.
//!
//! Both are pure functions of the model, the state, the input and `now`: no clock is read, no
//! randomness used, ids come from a counter in the state. [`Engine::handle`] works on a copy,
//! so a refused input ([`Error`]) leaves the stored state as it was. A failure inside the
//! model's own logic (an expression that fails, a call that keeps failing) is not an error of
//! the input: it becomes an incident in the returned state, for an operator to retry, skip or
//! cancel.
//!
//! How tokens move is in `run`; this module dispatches inputs to it.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::command::{Command, HistoryEntry, HistoryEvent, Input};
use crate::model::{ElementKind, ProcessModel, StartTrigger};
use crate::run::Run;
use crate::state::{InstanceState, Resume, Status, SubscriptionKind, TimerPurpose};

/// The result of a start or an input: the new state, what the server must do, what to audit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Transition {
    /// The state to store (replacing the previous one).
    pub state: InstanceState,
    /// Commands for the server, in order.
    pub commands: Vec<Command>,
    /// History steps, one per step, numbered on from the state's previous step.
    pub history: Vec<HistoryEntry>,
}

/// An input the engine refuses; the state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No open task has this id.
    #[error("no open user task {0:?} in this instance")]
    UnknownTask(String),
    /// The task was completed before.
    #[error("user task {0:?} is already completed")]
    TaskAlreadyCompleted(String),
    /// No call in flight has this id (answered before, or superseded by a retry).
    #[error("no service call {0:?} is in flight in this instance")]
    UnknownCall(String),
    /// No timer has this id (fired before, or cancelled).
    #[error("no timer {0:?} is scheduled in this instance")]
    UnknownTimer(String),
    /// Nothing waits for this message or signal.
    #[error("nothing in this instance waits for {0:?} with that correlation key")]
    NoSubscription(String),
    /// No child instance has this id.
    #[error("no child instance {0:?} is awaited in this instance")]
    UnknownChild(String),
    /// No decision request has this id.
    #[error("no decision {0:?} is awaited in this instance")]
    UnknownDecision(String),
    /// No open incident has this id.
    #[error("no open incident {0:?} in this instance")]
    UnknownIncident(String),
    /// The instance has ended.
    #[error("the instance is not running ({0:?})")]
    NotRunning(Status),
    /// The state belongs to another process.
    #[error("the instance runs process {state:?}, not {model:?}")]
    WrongModel { state: String, model: String },
    /// The state names an element the model lacks (a state run against the wrong version).
    #[error("element {0:?} is not in the model")]
    MissingElement(String),
    /// The state names an execution it does not hold (a damaged state).
    #[error("execution {0} is not in the state")]
    MissingExecution(u64),
    /// The state was stored by an engine with another stored form.
    #[error("the state's format is {0}; this engine reads format {f}", f = crate::state::STATE_FORMAT)]
    StateFormat(u32),
    /// The process cannot be started there.
    #[error("cannot start at {0:?}: {1}")]
    NoStart(String, &'static str),
    /// One input made the instance take more steps than any process should without waiting
    /// (a loop the deploy-time check could not see, such as one through a sub-process); the
    /// input is refused and the state left as it was.
    #[error(
        "the instance took more than {0} steps without waiting, last at {1:?}: the process loops"
    )]
    Runaway(usize, String),
}

/// The workflow engine (stateless; everything lives in [`InstanceState`]).
pub struct Engine;

impl Engine {
    /// Starts an instance at the process's none start event.
    pub fn start(
        model: &ProcessModel,
        instance_id: &str,
        variables: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<Transition, Error> {
        let start = model.none_start(None).ok_or_else(|| {
            Error::NoStart(model.id.clone(), "the process has no none start event")
        })?;
        Self::start_at(model, instance_id, &start.id, variables, now)
    }

    /// Starts an instance at a given start event (message, timer and signal starts: the server
    /// decides when, from the model's start events).
    pub fn start_at(
        model: &ProcessModel,
        instance_id: &str,
        start_event: &str,
        variables: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<Transition, Error> {
        let start = model
            .element(start_event)
            .ok_or_else(|| Error::MissingElement(start_event.to_string()))?;
        let is_start = matches!(
            start.kind,
            ElementKind::StartEvent {
                trigger: StartTrigger::None
                    | StartTrigger::Message { .. }
                    | StartTrigger::Timer(_)
                    | StartTrigger::Signal { .. }
            }
        );
        if !is_start || start.scope.is_some() {
            return Err(Error::NoStart(
                start_event.to_string(),
                "not a start event of the process",
            ));
        }
        let state = InstanceState {
            format: crate::state::STATE_FORMAT,
            instance_id: instance_id.to_string(),
            process_id: model.id.clone(),
            status: Status::Running,
            variables: Map::new(),
            executions: Default::default(),
            next_id: 0,
            step: 0,
            user_tasks: Default::default(),
            completed_tasks: Default::default(),
            timers: Default::default(),
            subscriptions: Default::default(),
            calls: Default::default(),
            children: Default::default(),
            decisions: Default::default(),
            incidents: Default::default(),
            compensable: Vec::new(),
        };
        let mut run = Run::new(model, state, now);
        run.set_variables(&variables);
        run.record(None, None, HistoryEvent::InstanceStarted, None, variables);
        let exec = run.new_execution(&start.id, None, None);
        run.enter(exec);
        run.run()?;
        Ok(run.finish())
    }

    /// Handles one input.
    pub fn handle(
        model: &ProcessModel,
        state: &InstanceState,
        input: Input,
        now: DateTime<Utc>,
    ) -> Result<Transition, Error> {
        if state.format != crate::state::STATE_FORMAT {
            return Err(Error::StateFormat(state.format));
        }
        if state.process_id != model.id {
            return Err(Error::WrongModel {
                state: state.process_id.clone(),
                model: model.id.clone(),
            });
        }
        if !state.is_running() {
            return Err(Error::NotRunning(state.status.clone()));
        }
        let mut run = Run::new(model, state.clone(), now);
        match input {
            Input::TaskCompleted {
                task_id,
                actor,
                variables,
            } => {
                let Some(task) = run.state.user_tasks.remove(&task_id) else {
                    return Err(if run.state.completed_tasks.contains(&task_id) {
                        Error::TaskAlreadyCompleted(task_id)
                    } else {
                        Error::UnknownTask(task_id)
                    });
                };
                run.state.completed_tasks.insert(task_id.clone());
                let changed = if task.index.is_none() {
                    run.set_variables(&variables);
                    variables.clone()
                } else {
                    Map::new()
                };
                run.record(
                    Some(&task.element),
                    Some(task.execution),
                    HistoryEvent::TaskCompleted { task_id },
                    Some(actor),
                    changed,
                );
                match task.index {
                    Some(i) => run.multi_completed(task.execution, i, variables)?,
                    None => run.leave(task.execution),
                }
            }
            Input::ServiceCallSucceeded { call_id, response } => {
                run.call_succeeded(&call_id, response)?
            }
            Input::ServiceCallFailed {
                call_id,
                error,
                retryable,
            } => run.call_failed(&call_id, error, retryable)?,
            Input::TimerFired { timer_id } => {
                let timer = run
                    .state
                    .timers
                    .remove(&timer_id)
                    .ok_or_else(|| Error::UnknownTimer(timer_id.clone()))?;
                // The history names the event that fired, not the activity it is attached to.
                let element = match &timer.purpose {
                    TimerPurpose::Boundary { event } | TimerPurpose::EventGateway { event } => {
                        event.clone()
                    }
                    TimerPurpose::Catch | TimerPurpose::Retry { .. } => {
                        run.execution_element(timer.execution)?
                    }
                };
                run.record(
                    Some(&element),
                    Some(timer.execution),
                    HistoryEvent::TimerFired {
                        timer_id: timer_id.clone(),
                    },
                    None,
                    Map::new(),
                );
                match timer.purpose {
                    TimerPurpose::Catch => run.leave(timer.execution),
                    TimerPurpose::Boundary { ref event } => {
                        run.boundary_timer_fired(&timer, event)?
                    }
                    TimerPurpose::EventGateway { ref event } => {
                        run.event_gateway_fired(timer.execution, event)?
                    }
                    TimerPurpose::Retry { ref call } => run.send_call(call)?,
                }
            }
            Input::MessageReceived {
                name,
                correlation,
                variables,
            } => {
                let found = run.state.subscriptions.iter().find(|(_, s)| {
                    s.kind == SubscriptionKind::Message
                        && s.name == name
                        && (s.correlation.is_none() || s.correlation == correlation)
                });
                let Some((id, _)) = found else {
                    return Err(Error::NoSubscription(name));
                };
                let id = id.clone();
                run.deliver(&id, &name, variables)?;
            }
            Input::SignalReceived { name, variables } => {
                let ids: Vec<String> = run
                    .state
                    .subscriptions
                    .iter()
                    .filter(|(_, s)| s.kind == SubscriptionKind::Signal && s.name == name)
                    .map(|(id, _)| id.clone())
                    .collect();
                if ids.is_empty() {
                    return Err(Error::NoSubscription(name));
                }
                for id in ids {
                    // An earlier delivery may have cancelled a later subscription.
                    if run.state.subscriptions.contains_key(&id) {
                        run.deliver(&id, &name, variables.clone())?;
                    }
                }
            }
            Input::ChildCompleted {
                child_id,
                variables,
            } => {
                let exec = run
                    .state
                    .children
                    .remove(&child_id)
                    .ok_or(Error::UnknownChild(child_id))?;
                run.child_completed(exec, variables)?;
            }
            Input::ChildFailed { child_id, error } => {
                let exec = run
                    .state
                    .children
                    .remove(&child_id)
                    .ok_or(Error::UnknownChild(child_id))?;
                run.child_failed(exec, error)?;
            }
            Input::DecisionEvaluated {
                request_id,
                result,
                explanation,
            } => {
                let exec = run
                    .state
                    .decisions
                    .remove(&request_id)
                    .ok_or(Error::UnknownDecision(request_id))?;
                run.decision_evaluated(exec, result, explanation)?;
            }
            Input::DecisionFailed { request_id, error } => {
                let exec = run
                    .state
                    .decisions
                    .remove(&request_id)
                    .ok_or(Error::UnknownDecision(request_id))?;
                run.decision_failed(exec, error)?;
            }
            Input::IncidentRetry { incident_id } => {
                let incident = run.resolve_incident(&incident_id, "retried", Map::new())?;
                match incident.resume {
                    Resume::Enter => run.enter(incident.execution),
                    Resume::Leave => run.leave(incident.execution),
                    Resume::Call { call } => run.send_call(&call)?,
                }
            }
            Input::IncidentSkip {
                incident_id,
                variables,
            } => {
                let incident = run.resolve_incident(&incident_id, "skipped", variables.clone())?;
                if let Resume::Call { call } = &incident.resume {
                    run.state.calls.remove(call);
                }
                run.set_variables(&variables);
                run.leave(incident.execution);
            }
            Input::IncidentCancel { incident_id } => {
                run.resolve_incident(&incident_id, "cancelled", Map::new())?;
                run.cancel_instance(None);
            }
            Input::Cancel { actor } => run.cancel_instance(Some(actor)),
        }
        run.run()?;
        Ok(run.finish())
    }
}
