//! User tasks (single and multi-instance), and the activities answered by the server: call
//! activities and business-rule tasks.

use super::*;

impl Run<'_> {
    /// Opens the task, or one task per item of a multi-instance task's collection.
    pub(super) fn enter_user_task(&mut self, exec: ExecutionId, el: &Element, task: &UserTask) {
        let id = el.id.as_str();
        match &task.multi_instance {
            None => self.create_task(exec, el, None, Map::new()),
            Some(mi) => {
                let items = match expr::eval(id, &mi.collection, &self.state.variables, &[]) {
                    Ok(Value::Array(items)) => items,
                    Ok(other) => {
                        self.incident(
                            exec,
                            format!("the collection {:?} is not a list: {other}", mi.collection),
                            Resume::Enter,
                        );
                        return;
                    }
                    Err(e) => {
                        self.incident(exec, e.to_string(), Resume::Enter);
                        return;
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
                    return;
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

    pub(super) fn create_task(
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
            routing: task.routing.clone(),
        });
    }

    pub(super) fn create_multi_task(&mut self, exec: ExecutionId, el: &Element, index: usize) {
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

    /// A child instance failed: its error boundary event catches it, or an incident waits for
    /// an operator (a retry starts a new child).
    pub(crate) fn child_failed(&mut self, exec: ExecutionId, error: String) -> Result<(), Error> {
        let element = self.execution_element(exec)?;
        if let Some(b) = self.error_catcher(&element, &error) {
            self.trigger_boundary(exec, b, true);
        } else {
            self.incident(
                exec,
                format!("the child instance failed: {error}"),
                Resume::Enter,
            );
        }
        Ok(())
    }

    pub(crate) fn decision_failed(
        &mut self,
        exec: ExecutionId,
        error: String,
    ) -> Result<(), Error> {
        self.execution_element(exec)?;
        self.incident(exec, format!("the decision failed: {error}"), Resume::Enter);
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
        explanation: Option<Value>,
    ) -> Result<(), Error> {
        let el = self.element(&self.execution_element(exec)?)?;
        if let (ElementKind::BusinessRuleTask { decision_ref, .. }, Some(explanation)) =
            (&el.kind, explanation)
        {
            self.record(
                Some(&el.id),
                Some(exec),
                HistoryEvent::DecisionEvaluated {
                    decision_ref: decision_ref.clone(),
                    explanation,
                },
                None,
                Map::new(),
            );
        }
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
}
