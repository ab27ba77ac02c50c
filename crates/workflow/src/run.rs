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

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};
use std::collections::{HashSet, VecDeque};

use crate::command::{Command, HistoryEntry, HistoryEvent, HttpRequest};
use crate::engine::{Error, Transition};
use crate::expr;
use crate::model::{
    Assignment, BoundaryTrigger, CatchTrigger, Element, ElementKind, EndResult, GatewayKind,
    PostTarget, ProcessModel, ThrowKind,
};
use crate::state::{
    Compensable, Execution, ExecutionId, Incident, InstanceState, MultiState, PendingCall, Phase,
    Resume, Status, Subscription, SubscriptionKind, TimerPurpose, TimerWait, UserTaskWait,
};
use crate::timer::{parse_duration, TimerDefinition};

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

    // ----- bookkeeping -------------------------------------------------------------------

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
            .ok_or_else(|| Error::MissingElement(format!("execution {exec}")))
    }

    pub(crate) fn enter(&mut self, exec: ExecutionId) {
        self.queue.push_back(Action::Enter(exec));
    }

    pub(crate) fn leave(&mut self, exec: ExecutionId) {
        self.queue.push_back(Action::Leave(exec));
    }

    /// Drains the queue, then fires inclusive joins that nothing else can reach, until stable.
    pub(crate) fn run(&mut self) -> Result<(), Error> {
        loop {
            while let Some(action) = self.queue.pop_front() {
                if !self.state.is_running() {
                    self.queue.clear();
                    break;
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

    // ----- entering ----------------------------------------------------------------------

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
                    let scope = self.state.executions[&exec].scope;
                    let records = self.take_compensable(|c| {
                        c.scope == scope && activity.as_ref().is_none_or(|a| *a == c.activity)
                    });
                    self.compensate(exec, records);
                }
            },
            ElementKind::UserTask(task) => {
                self.attach_boundaries(exec, id);
                match &task.multi_instance {
                    None => self.create_task(exec, el, None, Map::new()),
                    Some(mi) => {
                        let items = match expr::eval(id, &mi.collection, &self.state.variables, &[])
                        {
                            Ok(Value::Array(items)) => items,
                            Ok(other) => {
                                self.incident(
                                    exec,
                                    format!(
                                        "the collection {:?} is not a list: {other}",
                                        mi.collection
                                    ),
                                    Resume::Enter,
                                );
                                return Ok(());
                            }
                            Err(e) => {
                                self.incident(exec, e.to_string(), Resume::Enter);
                                return Ok(());
                            }
                        };
                        let n = items.len();
                        if n == 0 {
                            if let Some(out) = &mi.output_collection {
                                self.state
                                    .variables
                                    .insert(out.clone(), Value::Array(vec![]));
                            }
                            self.leave(exec);
                            return Ok(());
                        }
                        let start = if mi.sequential { 1 } else { n };
                        if let Some(e) = self.state.executions.get_mut(&exec) {
                            e.multi = Some(MultiState {
                                items,
                                next: start,
                                completed: 0,
                                outputs: vec![Value::Null; n],
                            });
                        }
                        for i in 0..start {
                            self.create_multi_task(exec, el, i);
                        }
                    }
                }
            }
            ElementKind::ServiceTask(task) => {
                self.attach_boundaries(exec, id);
                let vars = &self.state.variables;
                let rendered = expr::render_text(id, &task.http.url, vars).and_then(|url| {
                    let body = match &task.http.body {
                        Some(b) => Some(expr::render_json(id, b, vars)?),
                        None => None,
                    };
                    Ok(HttpRequest {
                        method: task.http.method.clone(),
                        url,
                        body,
                    })
                });
                match rendered {
                    Ok(request) => {
                        let call = self.id("call");
                        let key = format!("{}:{}:{}", self.state.instance_id, id, exec);
                        self.state.calls.insert(
                            call.clone(),
                            PendingCall {
                                execution: exec,
                                element: id.to_string(),
                                attempt: 0,
                                idempotency_key: key,
                                request,
                                in_flight: false,
                            },
                        );
                        self.send_call(&call)?;
                    }
                    Err(e) => self.incident(exec, e.to_string(), Resume::Enter),
                }
            }
            ElementKind::SendTask(task) => {
                let vars = &self.state.variables;
                let to = match &task.to {
                    PostTarget::Channel(c) => {
                        expr::render_text(id, c, vars).map(PostTarget::Channel)
                    }
                    PostTarget::Person(p) => expr::render_text(id, p, vars).map(PostTarget::Person),
                };
                match to.and_then(|to| Ok((to, expr::render_text(id, &task.text, vars)?))) {
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

    fn correlation(
        &mut self,
        exec: ExecutionId,
        element: &str,
        key: &Option<String>,
    ) -> Option<Option<Value>> {
        match key {
            None => Some(None),
            Some(k) => match expr::eval(element, k, &self.state.variables, &[]) {
                Ok(v) => Some(Some(v)),
                Err(e) => {
                    self.incident(exec, e.to_string(), Resume::Enter);
                    None
                }
            },
        }
    }

    fn subscribe_message(
        &mut self,
        exec: ExecutionId,
        element: &str,
        message: &str,
        correlation: Option<Value>,
        event: Option<String>,
    ) {
        let id = self.id("sub");
        let name = self.model.message_name(message).to_string();
        self.state.subscriptions.insert(
            id.clone(),
            Subscription {
                execution: exec,
                kind: SubscriptionKind::Message,
                name: name.clone(),
                correlation: correlation.clone(),
                event,
            },
        );
        self.commands.push(Command::Subscribe {
            subscription_id: id,
            element: element.to_string(),
            message: name,
            correlation,
        });
    }

    fn subscribe_signal(
        &mut self,
        exec: ExecutionId,
        element: &str,
        signal: &str,
        event: Option<String>,
    ) {
        let id = self.id("sub");
        let name = self.model.signal_name(signal).to_string();
        self.state.subscriptions.insert(
            id.clone(),
            Subscription {
                execution: exec,
                kind: SubscriptionKind::Signal,
                name: name.clone(),
                correlation: None,
                event,
            },
        );
        self.commands.push(Command::SubscribeSignal {
            subscription_id: id,
            element: element.to_string(),
            signal: name,
        });
    }

    fn schedule(
        &mut self,
        exec: ExecutionId,
        element: &str,
        timer: &TimerDefinition,
        purpose: TimerPurpose,
    ) {
        match timer.first_due(self.now) {
            Ok(due) => self.schedule_at(exec, element, due, purpose, 0),
            Err(e) => self.incident(exec, format!("{element}: {e}"), Resume::Enter),
        }
    }

    fn schedule_at(
        &mut self,
        exec: ExecutionId,
        element: &str,
        due: DateTime<Utc>,
        purpose: TimerPurpose,
        fired: u32,
    ) {
        let id = self.id("timer");
        self.state.timers.insert(
            id.clone(),
            TimerWait {
                execution: exec,
                purpose,
                due,
                fired,
            },
        );
        self.commands.push(Command::ScheduleTimer {
            timer_id: id,
            element: element.to_string(),
            due,
        });
    }

    fn attach_boundaries(&mut self, exec: ExecutionId, activity: &str) {
        for b in self.model.boundaries(activity) {
            if let ElementKind::BoundaryEvent {
                trigger: BoundaryTrigger::Timer(t),
                ..
            } = &b.kind
            {
                self.schedule(
                    exec,
                    &b.id,
                    t,
                    TimerPurpose::Boundary {
                        event: b.id.clone(),
                    },
                );
            }
        }
    }

    fn create_task(
        &mut self,
        exec: ExecutionId,
        el: &Element,
        index: Option<usize>,
        local: Map<String, Value>,
    ) {
        let ElementKind::UserTask(task) = &el.kind else {
            return;
        };
        let mut scope_vars = self.state.variables.clone();
        scope_vars.extend(local.clone());
        let assignment = match &task.assignment {
            Assignment::Person(p) => {
                expr::render_text(&el.id, p, &scope_vars).map(Assignment::Person)
            }
            Assignment::Role(r) => expr::render_text(&el.id, r, &scope_vars).map(Assignment::Role),
            Assignment::Channel(c) => {
                expr::render_text(&el.id, c, &scope_vars).map(Assignment::Channel)
            }
            Assignment::Unassigned => Ok(Assignment::Unassigned),
        };
        let assignment = match assignment {
            Ok(a) => a,
            Err(e) => {
                self.incident(exec, e.to_string(), Resume::Enter);
                return;
            }
        };
        let due = task
            .due
            .as_deref()
            .and_then(|d| parse_duration(d).ok())
            .map(|d| self.now + d);
        let task_id = self.id("task");
        self.state.user_tasks.insert(
            task_id.clone(),
            UserTaskWait {
                execution: exec,
                element: el.id.clone(),
                index,
            },
        );
        self.commands.push(Command::CreateUserTask {
            task_id,
            element: el.id.clone(),
            name: el.name.clone(),
            assignment,
            form_key: task.form_key.clone(),
            due,
            local,
        });
    }

    fn create_multi_task(&mut self, exec: ExecutionId, el: &Element, index: usize) {
        let ElementKind::UserTask(task) = &el.kind else {
            return;
        };
        let Some(mi) = &task.multi_instance else {
            return;
        };
        let item = self
            .state
            .executions
            .get(&exec)
            .and_then(|e| e.multi.as_ref())
            .and_then(|m| m.items.get(index).cloned())
            .unwrap_or(Value::Null);
        let mut local = Map::new();
        local.insert("loopCounter".into(), Value::from(index as u64));
        if let Some(var) = &mi.element_variable {
            local.insert(var.clone(), item);
        }
        self.create_task(exec, el, Some(index), local);
    }

    pub(crate) fn multi_completed(
        &mut self,
        exec: ExecutionId,
        index: usize,
        variables: Map<String, Value>,
    ) -> Result<(), Error> {
        let el = self.element(&self.execution_element(exec)?)?;
        let ElementKind::UserTask(task) = &el.kind else {
            return Ok(());
        };
        let Some(mi) = &task.multi_instance else {
            return Ok(());
        };
        let active = self
            .state
            .user_tasks
            .values()
            .filter(|t| t.execution == exec)
            .count();
        let Some(multi) = self
            .state
            .executions
            .get_mut(&exec)
            .and_then(|e| e.multi.as_mut())
        else {
            return Ok(());
        };
        if let Some(slot) = multi.outputs.get_mut(index) {
            *slot = Value::Object(variables);
        }
        multi.completed += 1;
        let (n, completed, next) = (multi.items.len(), multi.completed, multi.next);
        let outputs = Value::Array(multi.outputs.clone());
        if let Some(out) = &mi.output_collection {
            self.state.variables.insert(out.clone(), outputs);
        }
        let counters = [
            Value::from(n as u64),
            Value::from(completed as u64),
            Value::from(active as u64),
        ];
        let done = match &mi.completion_condition {
            Some(c) => {
                let extra = [
                    ("nrOfInstances", &counters[0]),
                    ("nrOfCompletedInstances", &counters[1]),
                    ("nrOfActiveInstances", &counters[2]),
                ];
                match expr::eval_bool(&el.id, c, &self.state.variables, &extra) {
                    Ok(b) => b,
                    Err(e) => {
                        self.incident(exec, e.to_string(), Resume::Leave);
                        return Ok(());
                    }
                }
            }
            None => false,
        } || completed >= n;
        if done {
            self.leave(exec);
        } else if mi.sequential && next < n {
            if let Some(m) = self
                .state
                .executions
                .get_mut(&exec)
                .and_then(|e| e.multi.as_mut())
            {
                m.next += 1;
            }
            self.create_multi_task(exec, el, next);
        }
        Ok(())
    }

    // ----- service calls -----------------------------------------------------------------

    /// Sends (or re-sends) a call: a new call id and attempt, the same idempotency key.
    pub(crate) fn send_call(&mut self, call: &str) -> Result<(), Error> {
        let mut pending = self
            .state
            .calls
            .remove(call)
            .ok_or_else(|| Error::UnknownCall(call.to_string()))?;
        pending.attempt += 1;
        pending.in_flight = true;
        let call_id = self.id("call");
        self.commands.push(Command::CallService {
            call_id: call_id.clone(),
            idempotency_key: pending.idempotency_key.clone(),
            element: pending.element.clone(),
            attempt: pending.attempt,
            request: pending.request.clone(),
        });
        self.state.calls.insert(call_id, pending);
        Ok(())
    }

    fn in_flight(&self, call_id: &str) -> Result<PendingCall, Error> {
        match self.state.calls.get(call_id) {
            Some(p) if p.in_flight => Ok(p.clone()),
            _ => Err(Error::UnknownCall(call_id.to_string())),
        }
    }

    pub(crate) fn call_succeeded(&mut self, call_id: &str, response: Value) -> Result<(), Error> {
        let pending = self.in_flight(call_id)?;
        let el = self.element(&pending.element)?;
        let ElementKind::ServiceTask(task) = &el.kind else {
            return Err(Error::MissingElement(pending.element));
        };
        let mut changed = Map::new();
        for o in &task.http.outputs {
            match expr::eval(
                &el.id,
                &o.expression,
                &self.state.variables,
                &[("response", &response)],
            ) {
                Ok(v) => {
                    changed.insert(o.variable.clone(), v);
                }
                Err(e) => {
                    if let Some(p) = self.state.calls.get_mut(call_id) {
                        p.in_flight = false;
                    }
                    self.incident(
                        pending.execution,
                        format!("mapping the response: {e}"),
                        Resume::Call {
                            call: call_id.to_string(),
                        },
                    );
                    return Ok(());
                }
            }
        }
        self.state.calls.remove(call_id);
        self.set_variables(&changed);
        self.record(
            Some(&el.id),
            Some(pending.execution),
            HistoryEvent::Completed,
            None,
            changed,
        );
        self.leave_recorded(pending.execution);
        Ok(())
    }

    pub(crate) fn call_failed(
        &mut self,
        call_id: &str,
        error: String,
        retryable: bool,
    ) -> Result<(), Error> {
        let pending = self.in_flight(call_id)?;
        let el = self.element(&pending.element)?;
        let ElementKind::ServiceTask(task) = &el.kind else {
            return Err(Error::MissingElement(pending.element));
        };
        if let Some(p) = self.state.calls.get_mut(call_id) {
            p.in_flight = false;
        }
        self.record(
            Some(&el.id),
            Some(pending.execution),
            HistoryEvent::CallFailed {
                call_id: call_id.to_string(),
                error: error.clone(),
            },
            None,
            Map::new(),
        );
        if retryable && pending.attempt < task.retry.attempts {
            let backoff = parse_duration(&task.retry.backoff).unwrap_or(Duration::seconds(10));
            let factor = task.retry.multiplier.powi(pending.attempt as i32 - 1);
            let wait_ms = (backoff.num_milliseconds() as f64 * factor).min(1.0e12) as i64;
            let due = self.now + Duration::milliseconds(wait_ms);
            self.schedule_at(
                pending.execution,
                &el.id,
                due,
                TimerPurpose::Retry {
                    call: call_id.to_string(),
                },
                0,
            );
            return Ok(());
        }
        let catcher = self.model.boundaries(&el.id).find(|b| {
            matches!(&b.kind, ElementKind::BoundaryEvent {
                trigger: BoundaryTrigger::Error { error: code },
                ..
            } if code.as_ref().is_none_or(|c| self.model.error_code(c) == error))
        });
        if let Some(b) = catcher {
            self.state.calls.remove(call_id);
            self.trigger_boundary(pending.execution, b, true);
            return Ok(());
        }
        self.incident(
            pending.execution,
            format!(
                "the service call failed after {} attempt(s): {error}",
                pending.attempt
            ),
            Resume::Call {
                call: call_id.to_string(),
            },
        );
        Ok(())
    }

    // ----- other waits -------------------------------------------------------------------

    pub(crate) fn boundary_timer_fired(
        &mut self,
        timer_id: &str,
        timer: &TimerWait,
        event: &str,
    ) -> Result<(), Error> {
        let b = self.element(event)?;
        let ElementKind::BoundaryEvent {
            cancel_activity,
            trigger,
            ..
        } = &b.kind
        else {
            return Err(Error::MissingElement(event.to_string()));
        };
        if !cancel_activity {
            if let BoundaryTrigger::Timer(def) = trigger {
                if let Ok(Some(next)) = def.next_due(timer.due, timer.fired + 1) {
                    let _ = timer_id;
                    self.schedule_at(
                        timer.execution,
                        event,
                        next,
                        timer.purpose.clone(),
                        timer.fired + 1,
                    );
                }
            }
        }
        self.trigger_boundary(timer.execution, b, *cancel_activity);
        Ok(())
    }

    /// A boundary event fires: the activity is cancelled if it interrupts, and a new token
    /// leaves through the boundary event.
    fn trigger_boundary(&mut self, activity: ExecutionId, boundary: &Element, interrupting: bool) {
        let Some(scope) = self.state.executions.get(&activity).map(|e| e.scope) else {
            return;
        };
        let element = self.state.executions[&activity].element.clone();
        self.record(
            Some(&element),
            Some(activity),
            HistoryEvent::BoundaryTriggered {
                event: boundary.id.clone(),
            },
            None,
            Map::new(),
        );
        if interrupting {
            self.cancel_execution(activity);
        }
        let exec = self.new_execution(&boundary.id, scope, None);
        self.enter(exec);
    }

    fn event_gateway(&mut self, exec: ExecutionId, id: &str) -> Result<(), Error> {
        for f in self.model.outgoing(id) {
            let target = self.element(&f.target)?;
            let event = Some(target.id.clone());
            match &target.kind {
                ElementKind::IntermediateCatch {
                    trigger: CatchTrigger::Timer(t),
                } => self.schedule(
                    exec,
                    &target.id,
                    t,
                    TimerPurpose::EventGateway {
                        event: target.id.clone(),
                    },
                ),
                ElementKind::IntermediateCatch {
                    trigger: CatchTrigger::Message(w),
                }
                | ElementKind::ReceiveTask(w) => {
                    let Some(c) = self.correlation(exec, &target.id, &w.correlation_key) else {
                        return Ok(());
                    };
                    self.subscribe_message(exec, &target.id, &w.message, c, event);
                }
                ElementKind::IntermediateCatch {
                    trigger: CatchTrigger::Signal { signal },
                } => self.subscribe_signal(exec, &target.id, signal, event),
                _ => {}
            }
        }
        Ok(())
    }

    /// One event after an event-based gateway happened: the gateway's other waits are
    /// cancelled and the token continues from that event.
    pub(crate) fn event_gateway_fired(
        &mut self,
        gateway: ExecutionId,
        event: &str,
    ) -> Result<(), Error> {
        let Some(g) = self.state.executions.get(&gateway).cloned() else {
            return Ok(());
        };
        let flow = self
            .model
            .outgoing(&g.element)
            .find(|f| f.target == event)
            .map(|f| f.id.clone());
        self.record(
            Some(&g.element),
            Some(gateway),
            HistoryEvent::Completed,
            None,
            Map::new(),
        );
        self.drop_execution(gateway);
        let exec = self.new_execution(event, g.scope, flow);
        self.record(
            Some(event),
            Some(exec),
            HistoryEvent::Entered,
            None,
            Map::new(),
        );
        self.leave(exec);
        Ok(())
    }

    /// Delivers a message or signal to a subscription.
    pub(crate) fn deliver(
        &mut self,
        subscription: &str,
        name: &str,
        variables: Map<String, Value>,
    ) -> Result<(), Error> {
        let Some(sub) = self.state.subscriptions.remove(subscription) else {
            return Ok(());
        };
        let element = self.execution_element(sub.execution)?;
        self.set_variables(&variables);
        self.record(
            Some(&element),
            Some(sub.execution),
            HistoryEvent::MessageReceived {
                name: name.to_string(),
            },
            None,
            variables,
        );
        match &sub.event {
            Some(event) => self.event_gateway_fired(sub.execution, event)?,
            None => self.leave(sub.execution),
        }
        Ok(())
    }

    pub(crate) fn child_completed(
        &mut self,
        exec: ExecutionId,
        variables: Map<String, Value>,
    ) -> Result<(), Error> {
        let el = self.element(&self.execution_element(exec)?)?;
        let changed = match &el.kind {
            ElementKind::CallActivity {
                result_variable: Some(v),
                ..
            } => Map::from_iter([(v.clone(), Value::Object(variables))]),
            _ => variables,
        };
        self.set_variables(&changed);
        self.record(
            Some(&el.id),
            Some(exec),
            HistoryEvent::Completed,
            None,
            changed,
        );
        self.leave_recorded(exec);
        Ok(())
    }

    pub(crate) fn decision_evaluated(
        &mut self,
        exec: ExecutionId,
        result: Value,
    ) -> Result<(), Error> {
        let el = self.element(&self.execution_element(exec)?)?;
        let changed = match (&el.kind, result) {
            (
                ElementKind::BusinessRuleTask {
                    result_variable: Some(v),
                    ..
                },
                r,
            ) => Map::from_iter([(v.clone(), r)]),
            (_, Value::Object(m)) => m,
            (_, r) => Map::from_iter([(el.id.clone(), r)]),
        };
        self.set_variables(&changed);
        self.record(
            Some(&el.id),
            Some(exec),
            HistoryEvent::Completed,
            None,
            changed,
        );
        self.leave_recorded(exec);
        Ok(())
    }

    // ----- leaving -----------------------------------------------------------------------

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
            } if self.model.outgoing(&el.id).count() > 1 => {
                let mut taken = Vec::new();
                for f in self.model.outgoing(&el.id) {
                    let Some(c) = &f.condition else { continue };
                    match expr::eval_bool(&f.id, c, &self.state.variables, &[]) {
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

    fn compensation_handler(&self, activity: &str) -> Option<String> {
        self.model.boundaries(activity).find_map(|b| match &b.kind {
            ElementKind::BoundaryEvent {
                trigger: BoundaryTrigger::Compensation { handler, .. },
                ..
            } => handler.clone(),
            _ => None,
        })
    }

    /// When the last token of a scope is gone, the scope completes.
    fn scope_check(&mut self, scope: Option<ExecutionId>) {
        if self.state.executions.values().any(|e| e.scope == scope) {
            return;
        }
        match scope {
            Some(s) => self.leave(s),
            None => self.end_instance(Status::Completed),
        }
    }

    fn end_instance(&mut self, status: Status) {
        let ids: Vec<ExecutionId> = self
            .state
            .executions
            .values()
            .filter(|e| e.scope.is_none())
            .map(|e| e.id)
            .collect();
        for id in ids {
            self.cancel_execution(id);
        }
        self.state.status = status.clone();
        self.record(
            None,
            None,
            HistoryEvent::InstanceEnded {
                status: status.clone(),
            },
            None,
            Map::new(),
        );
        self.commands.push(Command::Completed {
            status,
            variables: self.state.variables.clone(),
        });
    }

    pub(crate) fn cancel_instance(&mut self, actor: Option<String>) {
        if let Some(a) = actor {
            self.record(None, None, HistoryEvent::Cancelled, Some(a), Map::new());
        }
        self.end_instance(Status::Cancelled);
    }

    /// Cancels an execution and everything inside it, recording each.
    fn cancel_execution(&mut self, exec: ExecutionId) {
        let inner: Vec<ExecutionId> = self
            .state
            .executions
            .values()
            .filter(|e| e.scope == Some(exec))
            .map(|e| e.id)
            .collect();
        for i in inner {
            self.cancel_execution(i);
        }
        if let Some(e) = self.state.executions.get(&exec) {
            let element = e.element.clone();
            self.record(
                Some(&element),
                Some(exec),
                HistoryEvent::Cancelled,
                None,
                Map::new(),
            );
        }
        self.drop_execution(exec);
    }

    /// Removes an execution, cancelling everything it waits on.
    fn drop_execution(&mut self, exec: ExecutionId) {
        self.state.executions.remove(&exec);
        let tasks: Vec<String> = self
            .state
            .user_tasks
            .iter()
            .filter(|(_, t)| t.execution == exec)
            .map(|(id, _)| id.clone())
            .collect();
        for task_id in tasks {
            self.state.user_tasks.remove(&task_id);
            self.commands.push(Command::CancelUserTask { task_id });
        }
        let timers: Vec<String> = self
            .state
            .timers
            .iter()
            .filter(|(_, t)| t.execution == exec)
            .map(|(id, _)| id.clone())
            .collect();
        for timer_id in timers {
            self.state.timers.remove(&timer_id);
            self.commands.push(Command::CancelTimer { timer_id });
        }
        let subs: Vec<String> = self
            .state
            .subscriptions
            .iter()
            .filter(|(_, s)| s.execution == exec)
            .map(|(id, _)| id.clone())
            .collect();
        for subscription_id in subs {
            self.state.subscriptions.remove(&subscription_id);
            self.commands.push(Command::Unsubscribe { subscription_id });
        }
        self.state.calls.retain(|_, c| c.execution != exec);
        self.state.decisions.retain(|_, e| *e != exec);
        let children: Vec<String> = self
            .state
            .children
            .iter()
            .filter(|(_, e)| **e == exec)
            .map(|(id, _)| id.clone())
            .collect();
        for child_id in children {
            self.state.children.remove(&child_id);
            self.commands.push(Command::CancelChild { child_id });
        }
        let incidents: Vec<String> = self
            .state
            .incidents
            .iter()
            .filter(|(_, i)| i.execution == exec)
            .map(|(id, _)| id.clone())
            .collect();
        for incident_id in incidents {
            self.state.incidents.remove(&incident_id);
            self.commands.push(Command::ResolveIncident { incident_id });
        }
    }

    // ----- end events --------------------------------------------------------------------

    fn end(&mut self, exec: ExecutionId, el: &Element, result: &EndResult) -> Result<(), Error> {
        let scope = self.state.executions[&exec].scope;
        match result {
            EndResult::None | EndResult::Message { .. } => {
                if let EndResult::Message { message } = result {
                    self.commands.push(Command::PublishMessage {
                        message: self.model.message_name(message).to_string(),
                        variables: self.state.variables.clone(),
                    });
                }
                self.record(
                    Some(&el.id),
                    Some(exec),
                    HistoryEvent::Completed,
                    None,
                    Map::new(),
                );
                self.drop_execution(exec);
                self.scope_check(scope);
            }
            EndResult::Terminate => {
                self.record(
                    Some(&el.id),
                    Some(exec),
                    HistoryEvent::Completed,
                    None,
                    Map::new(),
                );
                match scope {
                    None => self.end_instance(Status::Terminated),
                    Some(s) => {
                        let inner: Vec<ExecutionId> = self
                            .state
                            .executions
                            .values()
                            .filter(|e| e.scope == Some(s))
                            .map(|e| e.id)
                            .collect();
                        for i in inner {
                            self.cancel_execution(i);
                        }
                        self.leave(s);
                    }
                }
            }
            EndResult::Error { error } => {
                let code = self.model.error_code(error).to_string();
                // The innermost enclosing sub-process with a matching error boundary catches it.
                let mut current = scope;
                while let Some(s) = current {
                    let sub = self.state.executions[&s].element.clone();
                    let catcher = self.model.boundaries(&sub).find(|b| {
                        matches!(&b.kind, ElementKind::BoundaryEvent {
                            trigger: BoundaryTrigger::Error { error: c },
                            ..
                        } if c.as_ref().is_none_or(|c| self.model.error_code(c) == code))
                    });
                    if let Some(b) = catcher {
                        self.record(
                            Some(&el.id),
                            Some(exec),
                            HistoryEvent::Completed,
                            None,
                            Map::new(),
                        );
                        self.trigger_boundary(s, b, true);
                        return Ok(());
                    }
                    current = self.state.executions[&s].scope;
                }
                // Nothing catches it: every other token stops, every completed compensable
                // activity is compensated, latest first, then the instance fails.
                let others: Vec<ExecutionId> = self
                    .state
                    .executions
                    .values()
                    .filter(|e| e.scope.is_none() && e.id != exec)
                    .map(|e| e.id)
                    .collect();
                for o in others {
                    self.cancel_execution(o);
                }
                if let Some(e) = self.state.executions.get_mut(&exec) {
                    e.scope = None;
                }
                let records = self.take_compensable(|_| true);
                self.compensate(exec, records);
            }
        }
        Ok(())
    }

    // ----- compensation ------------------------------------------------------------------

    fn take_compensable(&mut self, keep: impl Fn(&Compensable) -> bool) -> Vec<Compensable> {
        let (mut taken, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.state.compensable)
            .into_iter()
            .partition(|c| keep(c));
        self.state.compensable = rest;
        taken.reverse();
        taken
    }

    /// Runs compensation handlers one after another for `waiter`, then lets it continue.
    fn compensate(&mut self, waiter: ExecutionId, records: Vec<Compensable>) {
        if let Some(e) = self.state.executions.get_mut(&waiter) {
            e.compensation = Some(records);
        }
        self.next_compensation(waiter);
    }

    fn next_compensation(&mut self, waiter: ExecutionId) {
        let Some(w) = self.state.executions.get_mut(&waiter) else {
            return;
        };
        let scope = w.scope;
        let next = w.compensation.as_mut().and_then(|c| {
            if c.is_empty() {
                None
            } else {
                Some(c.remove(0))
            }
        });
        match next {
            Some(record) => {
                let element = w.element.clone();
                self.record(
                    Some(&element),
                    Some(waiter),
                    HistoryEvent::CompensationStarted {
                        activity: record.activity.clone(),
                    },
                    None,
                    Map::new(),
                );
                let h = self.new_execution(&record.handler, scope, None);
                if let Some(e) = self.state.executions.get_mut(&h) {
                    e.handler_for = Some(waiter);
                }
                self.enter(h);
            }
            None => {
                w.compensation = None;
                let element = w.element.clone();
                match self.model.element(&element).map(|e| &e.kind) {
                    Some(ElementKind::EndEvent {
                        result: EndResult::Error { error },
                    }) => {
                        let code = self.model.error_code(error).to_string();
                        self.record(
                            Some(&element),
                            Some(waiter),
                            HistoryEvent::Completed,
                            None,
                            Map::new(),
                        );
                        self.drop_execution(waiter);
                        self.end_instance(Status::Failed { error: code });
                    }
                    _ => self.leave(waiter),
                }
            }
        }
    }

    // ----- joins -------------------------------------------------------------------------

    fn parallel_join(&mut self, exec: ExecutionId, gateway: &str) {
        let Some(scope) = self.state.executions.get_mut(&exec).map(|e| {
            e.phase = Phase::Joining;
            e.scope
        }) else {
            return;
        };
        let mut chosen = Vec::new();
        for f in self.model.incoming(gateway) {
            let arrived = self.state.executions.values().find(|e| {
                e.phase == Phase::Joining
                    && e.element == gateway
                    && e.scope == scope
                    && e.via.as_deref() == Some(f.id.as_str())
            });
            match arrived {
                Some(e) => chosen.push(e.id),
                None => return,
            }
        }
        for c in chosen {
            self.state.executions.remove(&c);
        }
        let merged = self.new_execution(gateway, scope, None);
        self.leave(merged);
    }

    /// Fires every inclusive join that no other token of its scope can still reach.
    fn inclusive_joins(&mut self) -> Result<bool, Error> {
        let mut waiting: Vec<(String, Option<ExecutionId>)> = self
            .state
            .executions
            .values()
            .filter(|e| e.phase == Phase::Joining)
            .filter(|e| {
                matches!(
                    self.model.element(&e.element).map(|el| &el.kind),
                    Some(ElementKind::Gateway {
                        kind: GatewayKind::Inclusive,
                        ..
                    })
                )
            })
            .map(|e| (e.element.clone(), e.scope))
            .collect();
        waiting.dedup();
        let mut fired = false;
        for (gateway, scope) in waiting {
            let blocked = self.state.executions.values().any(|e| {
                e.scope == scope
                    && !(e.phase == Phase::Joining && e.element == gateway)
                    && self.reaches(&e.element, &gateway)
            });
            if blocked {
                continue;
            }
            let arrived: Vec<ExecutionId> = self
                .state
                .executions
                .values()
                .filter(|e| e.phase == Phase::Joining && e.element == gateway && e.scope == scope)
                .map(|e| e.id)
                .collect();
            if arrived.is_empty() {
                continue;
            }
            for a in arrived {
                self.state.executions.remove(&a);
            }
            let merged = self.new_execution(&gateway, scope, None);
            self.leave(merged);
            fired = true;
        }
        Ok(fired)
    }

    /// Whether a token at `from` can still arrive at `to` (through flows and boundary events).
    fn reaches(&self, from: &str, to: &str) -> bool {
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([from.to_string()]);
        while let Some(at) = queue.pop_front() {
            if !seen.insert(at.clone()) {
                continue;
            }
            for f in self.model.outgoing(&at) {
                if f.target == to {
                    return true;
                }
                queue.push_back(f.target.clone());
            }
            for b in self.model.boundaries(&at) {
                queue.push_back(b.id.clone());
            }
        }
        false
    }
}
