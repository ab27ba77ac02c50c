//! Service calls: sending attempts under one idempotency key, mapping responses, retrying with
//! backoff, and raising an incident or taking an error boundary when retries run out.

use super::*;

impl Run<'_> {
    /// Renders the request and sends its first attempt under the execution's idempotency key.
    pub(super) fn enter_service_task(
        &mut self,
        exec: ExecutionId,
        id: &str,
        task: &ServiceTask,
    ) -> Result<(), Error> {
        let vars = &self.state.variables;
        let rendered = expr::render_url(id, &task.http.url, vars).and_then(|url| {
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
        Ok(())
    }

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

    pub(super) fn in_flight(&self, call_id: &str) -> Result<PendingCall, Error> {
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
        if let Some(b) = self.error_catcher(&el.id, &error) {
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
}
