//! How tokens move: one transition's work on an instance's state.
//!
//! A [`Run`] holds the state being changed, the commands and history produced so far, and a
//! queue of executions to enter or leave. Entering an element does what the element does (open
//! a task, send a call, schedule a timer, …) and either waits or leaves at once; leaving takes
//! the element's outgoing flows, creating one execution per flow taken. The queue drains before
//! the transition ends, then inclusive joins are checked, since whether one may fire depends on
//! every other token having moved.
//!
//! Removing an execution always goes through `drop_execution`, which cancels whatever it still
//! waits on (tasks, timers, subscriptions, child instances), so no command for a departed token
//! outlives it.
//!
//! This file holds the loop, entering and leaving; the submodules hold one kind of behaviour
//! each: `tasks` (user tasks, multi-instance, call activities, decisions), `calls` (service
//! calls and retries), `events` (timers, messages, signals, boundary events, event-based
//! gateways), `ends` (end events, scope completion, cancellation), `compensation`, `joins`.

mod calls;
mod compensation;
mod ends;
mod events;
mod joins;
mod tasks;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};
use std::collections::{HashSet, VecDeque};

use crate::command::{Command, HistoryEntry, HistoryEvent, HttpRequest};
use crate::engine::{Error, Transition};
use crate::expr;
use crate::model::{
    Assignment, BoundaryTrigger, CatchTrigger, Element, ElementKind, EndResult, GatewayKind,
    PostTarget, ProcessModel, ServiceTask, ThrowKind, UserTask,
};
use crate::state::{
    Compensable, Execution, ExecutionId, Incident, InstanceState, MultiState, PendingCall, Phase,
    Resume, Status, Subscription, SubscriptionKind, TimerPurpose, TimerWait, UserTaskWait,
};
use crate::timer::{parse_duration, TimerDefinition};

/// How many elements one input may enter or leave: far more than any process takes between two
/// waits (a multi-instance task over a thousand items takes a few thousand), far fewer than
/// would hold the server's writer for long.
pub(crate) const MAX_STEPS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
enum Action {
    Enter(ExecutionId),
    Leave(ExecutionId),
}

/// One transition in progress.
pub(crate) struct Run<'m> {
    model: &'m ProcessModel,
    pub(crate) state: InstanceState,
    now: DateTime<Utc>,
    commands: Vec<Command>,
    history: Vec<HistoryEntry>,
    queue: VecDeque<Action>,
    /// Executions whose completion is already in the history (with the variables it set).
    recorded: HashSet<ExecutionId>,
}

impl<'m> Run<'m> {
    pub(crate) fn new(model: &'m ProcessModel, state: InstanceState, now: DateTime<Utc>) -> Self {
        Run {
            model,
            state,
            now,
            commands: Vec::new(),
            history: Vec::new(),
            queue: VecDeque::new(),
            recorded: HashSet::new(),
        }
    }

    pub(crate) fn finish(self) -> Transition {
        Transition {
            state: self.state,
            commands: self.commands,
            history: self.history,
        }
    }

    fn id(&mut self, kind: &str) -> String {
        self.state.next_id += 1;
        format!("{}:{kind}{}", self.state.instance_id, self.state.next_id)
    }

    pub(crate) fn new_execution(
        &mut self,
        element: &str,
        scope: Option<ExecutionId>,
        via: Option<String>,
    ) -> ExecutionId {
        self.state.next_id += 1;
        let id = self.state.next_id;
        self.state.executions.insert(
            id,
            Execution {
                id,
                element: element.to_string(),
                scope,
                via,
                phase: Phase::Waiting,
                multi: None,
                compensation: None,
                handler_for: None,
            },
        );
        id
    }

    pub(crate) fn record(
        &mut self,
        element: Option<&str>,
        execution: Option<ExecutionId>,
        event: HistoryEvent,
        actor: Option<String>,
        changed: Map<String, Value>,
    ) {
        self.state.step += 1;
        self.history.push(HistoryEntry {
            step: self.state.step,
            at: self.now,
            element: element.map(str::to_string),
            execution,
            event,
            actor,
            changed,
        });
    }

    pub(crate) fn set_variables(&mut self, variables: &Map<String, Value>) {
        for (k, v) in variables {
            self.state.variables.insert(k.clone(), v.clone());
        }
    }

    fn element(&self, id: &str) -> Result<&'m Element, Error> {
        self.model
            .element(id)
            .ok_or_else(|| Error::MissingElement(id.to_string()))
    }

    pub(crate) fn execution_element(&self, exec: ExecutionId) -> Result<String, Error> {
        self.state
            .executions
            .get(&exec)
            .map(|e| e.element.clone())
            .ok_or(Error::MissingExecution(exec))
    }

    /// The scope an execution runs in; an error if the state lacks the execution.
    fn scope_of(&self, exec: ExecutionId) -> Result<Option<ExecutionId>, Error> {
        self.state
            .executions
            .get(&exec)
            .map(|e| e.scope)
            .ok_or(Error::MissingExecution(exec))
    }

    pub(crate) fn enter(&mut self, exec: ExecutionId) {
        self.queue.push_back(Action::Enter(exec));
    }

    pub(crate) fn leave(&mut self, exec: ExecutionId) {
        self.queue.push_back(Action::Leave(exec));
    }

    /// Drains the queue, then fires inclusive joins that nothing else can reach, until stable.
    /// At most [`MAX_STEPS`] elements are entered or left per input: a process that loops
    /// without waiting is refused ([`Error::Runaway`]) instead of running forever.
    pub(crate) fn run(&mut self) -> Result<(), Error> {
        let mut steps = 0usize;
        loop {
            while let Some(action) = self.queue.pop_front() {
                if !self.state.is_running() {
                    self.queue.clear();
                    break;
                }
                steps += 1;
                if steps > MAX_STEPS {
                    let at = match &action {
                        Action::Enter(e) | Action::Leave(e) => self
                            .state
                            .executions
                            .get(e)
                            .map(|x| x.element.clone())
                            .unwrap_or_default(),
                    };
                    return Err(Error::Runaway(MAX_STEPS, at));
                }
                match action {
                    Action::Enter(e) => self.do_enter(e)?,
                    Action::Leave(e) => self.do_leave(e)?,
                }
            }
            if !self.state.is_running() || !self.inclusive_joins()? {
                return Ok(());
            }
        }
    }

    fn incident(&mut self, exec: ExecutionId, message: String, resume: Resume) {
        let id = self.id("incident");
        let element = match self.state.executions.get_mut(&exec) {
            Some(e) => {
                e.phase = Phase::Incident;
                e.element.clone()
            }
            None => return,
        };
        self.state.incidents.insert(
            id.clone(),
            Incident {
                execution: exec,
                element: element.clone(),
                message: message.clone(),
                resume,
            },
        );
        self.commands.push(Command::RaiseIncident {
            incident_id: id.clone(),
            element: element.clone(),
            message: message.clone(),
        });
        self.record(
            Some(&element),
            Some(exec),
            HistoryEvent::IncidentRaised {
                incident_id: id,
                message,
            },
            None,
            Map::new(),
        );
    }

    pub(crate) fn resolve_incident(
        &mut self,
        id: &str,
        how: &str,
        changed: Map<String, Value>,
    ) -> Result<Incident, Error> {
        let incident = self
            .state
            .incidents
            .remove(id)
            .ok_or_else(|| Error::UnknownIncident(id.to_string()))?;
        if let Some(e) = self.state.executions.get_mut(&incident.execution) {
            e.phase = Phase::Waiting;
        }
        self.commands.push(Command::ResolveIncident {
            incident_id: id.to_string(),
        });
        self.record(
            Some(&incident.element),
            Some(incident.execution),
            HistoryEvent::IncidentResolved {
                incident_id: id.to_string(),
                how: how.to_string(),
            },
            None,
            changed,
        );
        Ok(incident)
    }

    fn do_enter(&mut self, exec: ExecutionId) -> Result<(), Error> {
        let Some(execution) = self.state.executions.get(&exec) else {
            return Ok(());
        };
        let el = self.element(&execution.element)?;
        let id = el.id.as_str();
        if execution.phase != Phase::Incident {
            self.record(
                Some(id),
                Some(exec),
                HistoryEvent::Entered,
                None,
                Map::new(),
            );
        }
        match &el.kind {
            ElementKind::StartEvent { .. } | ElementKind::BoundaryEvent { .. } => self.leave(exec),
            ElementKind::EndEvent { result } => self.end(exec, el, result)?,
            ElementKind::IntermediateCatch { trigger } => match trigger {
                CatchTrigger::Timer(t) => self.schedule(exec, id, t, TimerPurpose::Catch),
                CatchTrigger::Message(w) => {
                    let Some(correlation) = self.correlation(exec, id, &w.correlation_key) else {
                        return Ok(());
                    };
                    self.subscribe_message(exec, id, &w.message, correlation, None);
                }
                CatchTrigger::Signal { signal } => self.subscribe_signal(exec, id, signal, None),
            },
            ElementKind::IntermediateThrow { throw } => match throw {
                ThrowKind::None => self.leave(exec),
                ThrowKind::Compensate { activity } => {
                    let scope = self.scope_of(exec)?;
                    let records = self.take_compensable(|c| {
                        c.scope == scope && activity.as_ref().is_none_or(|a| *a == c.activity)
                    });
                    self.compensate(exec, records);
                }
            },
            ElementKind::UserTask(task) => {
                self.attach_boundaries(exec, id);
                self.enter_user_task(exec, el, task);
            }
            ElementKind::ServiceTask(task) => {
                self.attach_boundaries(exec, id);
                self.enter_service_task(exec, id, task)?;
            }
            ElementKind::SendTask(task) => {
                let vars = &self.state.variables;
                let to = match &task.to {
                    PostTarget::Channel(c) => {
                        expr::render_text(id, c, vars).map(PostTarget::Channel)
                    }
                    PostTarget::Person(p) => expr::render_text(id, p, vars).map(PostTarget::Person),
                };
                match to.and_then(|to| Ok((to, expr::render_message(id, &task.text, vars)?))) {
                    Ok((to, text)) => {
                        let post_id = self.id("post");
                        self.commands.push(Command::Post {
                            post_id,
                            element: id.to_string(),
                            to,
                            text,
                        });
                        self.leave(exec);
                    }
                    Err(e) => self.incident(exec, e.to_string(), Resume::Enter),
                }
            }
            ElementKind::BusinessRuleTask { decision_ref, .. } => {
                self.attach_boundaries(exec, id);
                let request_id = self.id("decision");
                self.state.decisions.insert(request_id.clone(), exec);
                self.commands.push(Command::EvaluateDecision {
                    request_id,
                    element: id.to_string(),
                    decision_ref: decision_ref.clone(),
                    variables: self.state.variables.clone(),
                });
            }
            ElementKind::ReceiveTask(w) => {
                self.attach_boundaries(exec, id);
                let Some(correlation) = self.correlation(exec, id, &w.correlation_key) else {
                    return Ok(());
                };
                self.subscribe_message(exec, id, &w.message, correlation, None);
            }
            ElementKind::Gateway { kind, .. } => {
                let joins = self.model.incoming(id).count() > 1;
                match kind {
                    GatewayKind::Parallel if joins => self.parallel_join(exec, id),
                    GatewayKind::Inclusive if joins => {
                        if let Some(e) = self.state.executions.get_mut(&exec) {
                            e.phase = Phase::Joining;
                        }
                    }
                    GatewayKind::EventBased => self.event_gateway(exec, id)?,
                    _ => self.leave(exec),
                }
            }
            ElementKind::SubProcess => {
                self.attach_boundaries(exec, id);
                let start = self
                    .model
                    .none_start(Some(id))
                    .ok_or_else(|| Error::MissingElement(format!("start event of {id}")))?;
                let inner = self.new_execution(&start.id, Some(exec), None);
                self.enter(inner);
            }
            ElementKind::CallActivity { called_element, .. } => {
                self.attach_boundaries(exec, id);
                let child_id = self.id("child");
                self.state.children.insert(child_id.clone(), exec);
                self.commands.push(Command::StartChild {
                    child_id,
                    element: id.to_string(),
                    process_id: called_element.clone(),
                    variables: self.state.variables.clone(),
                });
            }
        }
        Ok(())
    }

    /// Leaves an element whose completion was already recorded (with the variables it set).
    fn leave_recorded(&mut self, exec: ExecutionId) {
        self.recorded.insert(exec);
        self.leave(exec);
    }

    fn do_leave(&mut self, exec: ExecutionId) -> Result<(), Error> {
        let Some(execution) = self.state.executions.get(&exec).cloned() else {
            return Ok(());
        };
        let el = self.element(&execution.element)?;
        // Which flows to take; a gateway whose conditions fail stops on an incident.
        let flows: Vec<String> = match &el.kind {
            ElementKind::Gateway {
                kind: kind @ (GatewayKind::Exclusive | GatewayKind::Inclusive),
                default_flow,
            } => {
                // A flow without a condition (other than the default) is always true.
                let mut taken = Vec::new();
                for f in self.model.outgoing(&el.id) {
                    if default_flow.as_deref() == Some(f.id.as_str()) {
                        continue;
                    }
                    let holds = match &f.condition {
                        None => Ok(true),
                        Some(c) => expr::eval_bool(&f.id, c, &self.state.variables, &[]),
                    };
                    match holds {
                        Ok(true) => {
                            taken.push(f.id.clone());
                            if *kind == GatewayKind::Exclusive {
                                break;
                            }
                        }
                        Ok(false) => {}
                        Err(e) => {
                            self.incident(exec, e.to_string(), Resume::Leave);
                            return Ok(());
                        }
                    }
                }
                if taken.is_empty() {
                    match default_flow {
                        Some(d) => taken.push(d.clone()),
                        None => {
                            self.incident(
                                exec,
                                "no condition of the gateway's flows holds and it has no default flow".into(),
                                Resume::Leave,
                            );
                            return Ok(());
                        }
                    }
                }
                taken
            }
            _ => self.model.outgoing(&el.id).map(|f| f.id.clone()).collect(),
        };
        if !self.recorded.remove(&exec) {
            self.record(
                Some(&el.id),
                Some(exec),
                HistoryEvent::Completed,
                None,
                Map::new(),
            );
        }
        // A completed sub-process hands its compensable activities to its own scope, so that
        // compensating there undoes them too.
        if matches!(el.kind, ElementKind::SubProcess) {
            for c in self.state.compensable.iter_mut() {
                if c.scope == Some(exec) {
                    c.scope = execution.scope;
                }
            }
        }
        if let Some(handler) = self.compensation_handler(&el.id) {
            self.state.compensable.push(Compensable {
                activity: el.id.clone(),
                handler,
                scope: execution.scope,
            });
        }
        self.drop_execution(exec);
        if let Some(waiter) = execution.handler_for {
            self.next_compensation(waiter);
            return Ok(());
        }
        if flows.is_empty() {
            self.scope_check(execution.scope);
        }
        for f in flows {
            let target = self
                .model
                .flow(&f)
                .map(|f| f.target.clone())
                .ok_or_else(|| Error::MissingElement(f.clone()))?;
            let next = self.new_execution(&target, execution.scope, Some(f));
            self.enter(next);
        }
        Ok(())
    }
}
