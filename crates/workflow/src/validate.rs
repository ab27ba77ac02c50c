//! Deploy-time validation of a [`ProcessModel`].
//!
//! A model that passes can run: ids are unique, every flow joins two existing elements of one
//! scope, every element can reach an end, every expression, template and timer parses,
//! exclusive and inclusive gateways whose flows carry conditions have a default flow, and every
//! loop waits somewhere (a task, a timer, a message), so no instance can spin without end. Every
//! problem is returned, each naming its element and line.
//!
//! What this crate cannot know — whether the called processes, decisions and forms exist — is
//! returned as [`References`] for the server to check against its deployments.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use crate::expr;
use crate::model::{
    Assignment, BoundaryTrigger, CatchTrigger, ElementKind, EndResult, GatewayKind, PostTarget,
    ProcessModel, StartTrigger, ThrowKind,
};
use crate::problem::{Problem, Problems};
use crate::timer::parse_duration;

/// What a valid model refers to outside itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct References {
    /// Process ids started by call activities.
    pub processes: BTreeSet<String>,
    /// Decision ids evaluated by business-rule tasks.
    pub decisions: BTreeSet<String>,
    /// Form keys of user tasks.
    pub forms: BTreeSet<String>,
}

/// Validates a model; returns what it refers to, or every problem found.
pub fn validate(model: &ProcessModel) -> Result<References, Problems> {
    let mut v = Validator {
        model,
        problems: Vec::new(),
        lines: model
            .elements
            .iter()
            .map(|e| (e.id.as_str(), e.line))
            .chain(model.flows.iter().map(|f| (f.id.as_str(), f.line)))
            .collect(),
    };
    v.unique_ids();
    v.flows();
    v.elements();
    v.reach_end();
    v.loops_wait();
    if v.problems.is_empty() {
        Ok(v.references())
    } else {
        Err(Problems(v.problems))
    }
}

struct Validator<'m> {
    model: &'m ProcessModel,
    problems: Vec<Problem>,
    lines: HashMap<&'m str, Option<u32>>,
}

impl<'m> Validator<'m> {
    fn problem(&mut self, id: &str, message: impl Into<String>) {
        let line = self.lines.get(id).copied().flatten();
        self.problems.push(Problem::at(id, line, message));
    }

    fn expression(&mut self, id: &str, e: &str) {
        if e.trim().is_empty() {
            self.problem(id, "an expression is empty");
        } else if let Err(err) = expr::check(id, e) {
            self.problem(id, format!("expression {e:?} {}", err.message));
        }
    }

    fn template(&mut self, id: &str, t: &str) {
        match expr::template_expressions(t) {
            Ok(found) => found.iter().for_each(|e| self.expression(id, e)),
            Err(m) => self.problem(id, format!("template {t:?}: {m}")),
        }
    }

    fn unique_ids(&mut self) {
        let mut seen = HashSet::new();
        let ids: Vec<&str> = self
            .model
            .elements
            .iter()
            .map(|e| e.id.as_str())
            .chain(self.model.flows.iter().map(|f| f.id.as_str()))
            .collect();
        for id in ids {
            if !seen.insert(id) {
                self.problem(id, "the id is used more than once");
            }
        }
    }

    fn flows(&mut self) {
        for f in &self.model.flows {
            let source = self.model.element(&f.source);
            let target = self.model.element(&f.target);
            if source.is_none() {
                self.problem(
                    &f.id,
                    format!("the flow's source {:?} does not exist", f.source),
                );
            }
            if target.is_none() {
                self.problem(
                    &f.id,
                    format!("the flow's target {:?} does not exist", f.target),
                );
            }
            if let (Some(s), Some(t)) = (source, target) {
                if s.scope != t.scope {
                    self.problem(&f.id, "a flow cannot cross a sub-process boundary");
                }
                if matches!(
                    t.kind,
                    ElementKind::StartEvent { .. } | ElementKind::BoundaryEvent { .. }
                ) {
                    self.problem(&f.id, "a flow cannot enter a start or boundary event");
                }
                if matches!(s.kind, ElementKind::EndEvent { .. }) {
                    self.problem(&f.id, "a flow cannot leave an end event");
                }
                if let Some(c) = &f.condition {
                    let conditional_source = matches!(
                        s.kind,
                        ElementKind::Gateway {
                            kind: GatewayKind::Exclusive | GatewayKind::Inclusive,
                            ..
                        }
                    );
                    if !conditional_source {
                        self.problem(
                            &f.id,
                            "conditions are supported on flows leaving exclusive and inclusive gateways",
                        );
                    }
                    self.expression(&f.id, c);
                }
            }
        }
    }

    fn elements(&mut self) {
        let model = self.model;
        let mut scopes: Vec<Option<&str>> = vec![None];
        scopes.extend(
            model
                .elements
                .iter()
                .filter(|e| matches!(e.kind, ElementKind::SubProcess))
                .map(|e| Some(e.id.as_str())),
        );
        for scope in scopes {
            let starts = model
                .elements
                .iter()
                .filter(|e| e.scope.as_deref() == scope)
                .filter(|e| matches!(e.kind, ElementKind::StartEvent { .. }))
                .count();
            match scope {
                None if starts == 0 => self.problem(&model.id, "the process has no start event"),
                Some(s) if model.none_start(Some(s)).is_none() || starts != 1 => {
                    self.problem(s, "a sub-process needs exactly one none start event")
                }
                _ => {}
            }
        }
        for e in &model.elements {
            let id = e.id.as_str();
            if let Some(s) = &e.scope {
                if !matches!(
                    model.element(s).map(|p| &p.kind),
                    Some(ElementKind::SubProcess)
                ) {
                    self.problem(id, format!("its scope {s:?} is not a sub-process"));
                }
            }
            match &e.kind {
                ElementKind::StartEvent { trigger } => match trigger {
                    StartTrigger::Timer(t) => {
                        if let Err(err) = t.check() {
                            self.problem(id, err.to_string());
                        }
                    }
                    StartTrigger::Message { message } => self.message_ref(id, message),
                    StartTrigger::Signal { signal } => self.signal_ref(id, signal),
                    StartTrigger::None => {}
                },
                ElementKind::EndEvent { result } => match result {
                    EndResult::Error { error } => self.error_ref(id, error),
                    EndResult::Message { message } => self.message_ref(id, message),
                    EndResult::None | EndResult::Terminate => {}
                },
                ElementKind::IntermediateCatch { trigger } => match trigger {
                    CatchTrigger::Message(w) => {
                        self.message_ref(id, &w.message);
                        if let Some(c) = &w.correlation_key {
                            self.expression(id, c);
                        }
                    }
                    CatchTrigger::Timer(t) => {
                        if let Err(err) = t.check() {
                            self.problem(id, err.to_string());
                        }
                    }
                    CatchTrigger::Signal { signal } => self.signal_ref(id, signal),
                },
                ElementKind::IntermediateThrow { throw } => {
                    if let ThrowKind::Compensate { activity: Some(a) } = throw {
                        if model.element(a).is_none() {
                            self.problem(
                                id,
                                format!("the compensated activity {a:?} does not exist"),
                            );
                        }
                    }
                }
                ElementKind::BoundaryEvent {
                    attached_to,
                    trigger,
                    cancel_activity,
                } => {
                    match model.element(attached_to) {
                        Some(a) if a.kind.is_activity() => {
                            if a.scope != e.scope {
                                self.problem(id, "a boundary event sits in the scope of its activity");
                            }
                        }
                        _ => self.problem(
                            id,
                            format!("it is attached to {attached_to:?}, which is not an activity of this model"),
                        ),
                    }
                    match trigger {
                        BoundaryTrigger::Timer(t) => {
                            if let Err(err) = t.check() {
                                self.problem(id, err.to_string());
                            }
                        }
                        BoundaryTrigger::Error { error } => {
                            if !cancel_activity {
                                self.problem(id, "error boundary events are always interrupting");
                            }
                            if let Some(err) = error {
                                self.error_ref(id, err);
                            }
                        }
                        BoundaryTrigger::Compensation { handler, .. } => match handler {
                            Some(h) => match model.element(h) {
                                Some(hd) if matches!(hd.kind, ElementKind::ServiceTask(_) | ElementKind::SendTask(_)) => {
                                    if model.outgoing(h).next().is_some() || model.incoming(h).next().is_some() {
                                        self.problem(h, "a compensation handler has no sequence flows");
                                    }
                                }
                                _ => self.problem(id, format!("the compensation handler {h:?} must be a service or send task")),
                            },
                            None => self.problem(id, "the compensation boundary event has no handler (an association to a task)"),
                        },
                    }
                }
                ElementKind::UserTask(t) => {
                    match &t.assignment {
                        Assignment::Person(x) | Assignment::Role(x) | Assignment::Channel(x) => {
                            self.template(id, x)
                        }
                        Assignment::Unassigned => {}
                    }
                    if let Some(d) = &t.due {
                        if let Err(err) = parse_duration(d) {
                            self.problem(id, format!("due: {err}"));
                        }
                    }
                    if let Some(mi) = &t.multi_instance {
                        self.expression(id, &mi.collection);
                        if let Some(c) = &mi.completion_condition {
                            self.expression(id, c);
                        }
                    }
                }
                ElementKind::ServiceTask(s) => {
                    if !matches!(
                        s.http.method.as_str(),
                        "GET" | "POST" | "PUT" | "PATCH" | "DELETE"
                    ) {
                        self.problem(
                            id,
                            format!("HTTP method {:?} is not supported", s.http.method),
                        );
                    }
                    if s.http.url.trim().is_empty() {
                        self.problem(id, "the HTTP call has no url");
                    }
                    self.template(id, &s.http.url);
                    if let Some(b) = &s.http.body {
                        self.json_template(id, b);
                    }
                    for o in &s.http.outputs {
                        if o.variable.is_empty() {
                            self.problem(id, "a response mapping has no variable");
                        }
                        self.expression(id, &o.expression);
                    }
                    if let Err(err) = parse_duration(&s.retry.backoff) {
                        self.problem(id, format!("retry backoff: {err}"));
                    }
                }
                ElementKind::SendTask(s) => {
                    let (PostTarget::Channel(to) | PostTarget::Person(to)) = &s.to;
                    self.template(id, to);
                    self.template(id, &s.text);
                }
                ElementKind::BusinessRuleTask { decision_ref, .. } => {
                    if decision_ref.is_empty() {
                        self.problem(
                            id,
                            "the business-rule task names no decision (concord:decisionRef)",
                        );
                    }
                }
                ElementKind::ReceiveTask(w) => {
                    self.message_ref(id, &w.message);
                    if let Some(c) = &w.correlation_key {
                        self.expression(id, c);
                    }
                }
                ElementKind::Gateway { kind, default_flow } => {
                    self.gateway(id, *kind, default_flow)
                }
                ElementKind::SubProcess => {}
                ElementKind::CallActivity { called_element, .. } => {
                    if called_element.is_empty() {
                        self.problem(id, "the call activity names no process (calledElement)");
                    }
                }
            }
        }
    }

    fn json_template(&mut self, id: &str, v: &serde_json::Value) {
        match v {
            serde_json::Value::String(s) => self.template(id, s),
            serde_json::Value::Array(items) => items.iter().for_each(|i| self.json_template(id, i)),
            serde_json::Value::Object(m) => m.values().for_each(|i| self.json_template(id, i)),
            _ => {}
        }
    }

    fn message_ref(&mut self, id: &str, message: &str) {
        if message.is_empty() {
            self.problem(id, "the message event names no message");
        } else if !self.model.messages.contains_key(message) {
            self.problem(id, format!("the message {message:?} is not defined"));
        }
    }

    fn signal_ref(&mut self, id: &str, signal: &str) {
        if !self.model.signals.contains_key(signal) {
            self.problem(id, format!("the signal {signal:?} is not defined"));
        }
    }

    fn error_ref(&mut self, id: &str, error: &str) {
        if !self.model.errors.contains_key(error) {
            self.problem(id, format!("the error {error:?} is not defined"));
        }
    }

    fn gateway(&mut self, id: &str, kind: GatewayKind, default_flow: &Option<String>) {
        let model = self.model;
        let outgoing: Vec<_> = model.outgoing(id).collect();
        if let Some(d) = default_flow {
            match outgoing.iter().find(|f| &f.id == d) {
                None => self.problem(
                    id,
                    format!("the default flow {d:?} does not leave this gateway"),
                ),
                Some(f) if f.condition.is_some() => {
                    self.problem(&f.id, "the default flow carries no condition")
                }
                _ => {}
            }
        }
        match kind {
            GatewayKind::Exclusive | GatewayKind::Inclusive if outgoing.len() > 1 => {
                for f in &outgoing {
                    if f.condition.is_none() && default_flow.as_deref() != Some(f.id.as_str()) {
                        self.problem(
                            &f.id,
                            format!("the flow leaves gateway {id:?} among others with neither a condition nor being the default"),
                        );
                    }
                }
                if default_flow.is_none() {
                    self.problem(
                        id,
                        "a gateway with conditional flows needs a default flow, taken when no condition holds",
                    );
                }
            }
            GatewayKind::EventBased => {
                for f in &outgoing {
                    let ok = matches!(
                        model.element(&f.target).map(|t| &t.kind),
                        Some(ElementKind::IntermediateCatch { .. } | ElementKind::ReceiveTask(_))
                    );
                    if !ok {
                        self.problem(
                            &f.id,
                            "an event-based gateway leads only to message, timer or signal catch events and receive tasks",
                        );
                    }
                }
                if outgoing.len() < 2 {
                    self.problem(
                        id,
                        "an event-based gateway needs at least two outgoing flows",
                    );
                }
            }
            _ => {}
        }
    }

    /// Every element other than a compensation handler can reach an end event of its scope
    /// (a sub-process counts as reaching an end when it has an outgoing path).
    /// Refuses loops made only of elements that never wait (gateways, throw events, send
    /// tasks): an instance entering one would run, and post, without end. A loop through a
    /// user, service, receive or business-rule task, a catch event, a call activity or a
    /// sub-process waits there at least once per turn.
    fn loops_wait(&mut self) {
        let model = self.model;
        let instant = |id: &str| {
            model.element(id).is_some_and(|e| {
                matches!(
                    e.kind,
                    ElementKind::Gateway { .. }
                        | ElementKind::IntermediateThrow { .. }
                        | ElementKind::SendTask(_)
                )
            })
        };
        let mut next: HashMap<&str, Vec<&str>> = HashMap::new();
        for f in &model.flows {
            if instant(&f.source) && instant(&f.target) {
                next.entry(f.source.as_str())
                    .or_default()
                    .push(f.target.as_str());
            }
        }
        // Depth-first search for a back edge; each loop is reported once, at the element
        // where it closes.
        let mut state: HashMap<&str, u8> = HashMap::new(); // 1: on the path, 2: done
        let mut reported: HashSet<&str> = HashSet::new();
        let mut starts: Vec<&str> = next.keys().copied().collect();
        starts.sort_unstable();
        for start in starts {
            if state.contains_key(start) {
                continue;
            }
            let mut path: Vec<(&str, usize)> = vec![(start, 0)];
            state.insert(start, 1);
            while let Some((node, i)) = path.last().copied() {
                let children = next.get(node).map(Vec::as_slice).unwrap_or(&[]);
                if let Some(&child) = children.get(i) {
                    if let Some(top) = path.last_mut() {
                        top.1 += 1;
                    }
                    match state.get(child) {
                        None => {
                            state.insert(child, 1);
                            path.push((child, 0));
                        }
                        Some(1) if reported.insert(child) => {
                            let from = path.iter().position(|(n, _)| *n == child).unwrap_or(0);
                            let ring: Vec<&str> = path[from..].iter().map(|(n, _)| *n).collect();
                            self.problem(
                                child,
                                format!(
                                    "a loop through {} never waits (no task, timer or message on it), so an instance would run it without end",
                                    ring.join(" → ")
                                ),
                            );
                        }
                        _ => {}
                    }
                } else {
                    state.insert(node, 2);
                    path.pop();
                }
            }
        }
    }

    fn reach_end(&mut self) {
        let model = self.model;
        let mut reaches: HashSet<&str> = HashSet::new();
        let mut queue: VecDeque<&str> = model
            .elements
            .iter()
            .filter(|e| matches!(e.kind, ElementKind::EndEvent { .. }))
            .map(|e| e.id.as_str())
            .collect();
        while let Some(id) = queue.pop_front() {
            if !reaches.insert(id) {
                continue;
            }
            for f in model.incoming(id) {
                queue.push_back(&f.source);
            }
            // An activity reaches an end through a boundary event too.
            if let Some(ElementKind::BoundaryEvent { attached_to, .. }) =
                model.element(id).map(|e| &e.kind)
            {
                queue.push_back(attached_to);
            }
        }
        let problems: Vec<&str> = model
            .elements
            .iter()
            .filter(|e| !reaches.contains(e.id.as_str()))
            .filter(|e| !model.is_compensation_handler(&e.id))
            .filter(|e| {
                !matches!(
                    e.kind,
                    ElementKind::BoundaryEvent {
                        trigger: BoundaryTrigger::Compensation { .. },
                        ..
                    }
                )
            })
            .map(|e| e.id.as_str())
            .collect();
        for id in problems {
            self.problem(id, "no path leads from this element to an end event");
        }
    }

    fn references(&self) -> References {
        let mut r = References::default();
        for e in &self.model.elements {
            match &e.kind {
                ElementKind::CallActivity { called_element, .. } => {
                    r.processes.insert(called_element.clone());
                }
                ElementKind::BusinessRuleTask { decision_ref, .. } => {
                    r.decisions.insert(decision_ref.clone());
                }
                ElementKind::UserTask(t) => {
                    if let Some(f) = &t.form_key {
                        r.forms.insert(f.clone());
                    }
                }
                _ => {}
            }
        }
        r
    }
}
