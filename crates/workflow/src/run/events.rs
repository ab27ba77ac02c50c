//! Waiting for events: timers, message and signal subscriptions, boundary events and
//! event-based gateways.

use super::*;

impl<'m> Run<'m> {
    pub(super) fn correlation(
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

    pub(super) fn subscribe_message(
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

    pub(super) fn subscribe_signal(
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

    pub(super) fn schedule(
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

    pub(super) fn schedule_at(
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

    /// Starts the activity's boundary timers; an activity entered again after an incident keeps
    /// the timers it has.
    pub(super) fn attach_boundaries(&mut self, exec: ExecutionId, activity: &str) {
        for b in self.model.boundaries(activity) {
            let running = self.state.timers.values().any(|t| {
                t.execution == exec
                    && matches!(&t.purpose, TimerPurpose::Boundary { event } if *event == b.id)
            });
            if running {
                continue;
            }
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

    pub(crate) fn boundary_timer_fired(
        &mut self,
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
                if let Ok(Some(next)) = def.next_due(timer.due, timer.fired + 1, self.now) {
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
    pub(super) fn trigger_boundary(
        &mut self,
        activity: ExecutionId,
        boundary: &Element,
        interrupting: bool,
    ) {
        let Some((scope, element)) = self
            .state
            .executions
            .get(&activity)
            .map(|e| (e.scope, e.element.clone()))
        else {
            return;
        };
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

    /// The error boundary event of an activity that catches an error code, if any.
    pub(super) fn error_catcher(&self, activity: &str, code: &str) -> Option<&'m Element> {
        let model = self.model;
        model.boundaries(activity).find(|b| {
            matches!(&b.kind, ElementKind::BoundaryEvent {
                trigger: BoundaryTrigger::Error { error },
                ..
            } if error.as_ref().is_none_or(|e| model.error_code(e) == code))
        })
    }

    pub(super) fn event_gateway(&mut self, exec: ExecutionId, id: &str) -> Result<(), Error> {
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
}
