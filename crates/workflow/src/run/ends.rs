//! Ending: end events (none, message, terminate, error), scopes that complete when their last
//! token is gone, cancelling executions and the instance.

use super::*;

impl Run<'_> {
    pub(super) fn end(
        &mut self,
        exec: ExecutionId,
        el: &Element,
        result: &EndResult,
    ) -> Result<(), Error> {
        let scope = self.scope_of(exec)?;
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
                    let sub = self.execution_element(s)?;
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
                        self.drop_execution(exec);
                        self.trigger_boundary(s, b, true);
                        return Ok(());
                    }
                    current = self.scope_of(s)?;
                }
                // Nothing catches it: every other token stops, every completed compensable
                // activity is compensated, latest first, then the instance fails.
                // The end event's execution waits for the handlers at the process level, so
                // cancelling its sub-processes does not cancel it.
                if let Some(e) = self.state.executions.get_mut(&exec) {
                    e.scope = None;
                }
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
                let records = self.take_compensable(|_| true);
                self.compensate(exec, records);
            }
        }
        Ok(())
    }

    /// When the last token of a scope is gone, the scope completes.
    pub(super) fn scope_check(&mut self, scope: Option<ExecutionId>) {
        if self.state.executions.values().any(|e| e.scope == scope) {
            return;
        }
        match scope {
            Some(s) => self.leave(s),
            None => self.end_instance(Status::Completed),
        }
    }

    pub(super) fn end_instance(&mut self, status: Status) {
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
    pub(super) fn cancel_execution(&mut self, exec: ExecutionId) {
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
    pub(super) fn drop_execution(&mut self, exec: ExecutionId) {
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
}
