//! Compensation: completed compensable activities are recorded; a compensation throw event or an
//! uncaught error runs their handlers one at a time, latest activity first.

use super::*;

impl Run<'_> {
    pub(super) fn compensation_handler(&self, activity: &str) -> Option<String> {
        self.model.boundaries(activity).find_map(|b| match &b.kind {
            ElementKind::BoundaryEvent {
                trigger: BoundaryTrigger::Compensation { handler, .. },
                ..
            } => handler.clone(),
            _ => None,
        })
    }

    pub(super) fn take_compensable(
        &mut self,
        keep: impl Fn(&Compensable) -> bool,
    ) -> Vec<Compensable> {
        let (mut taken, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.state.compensable)
            .into_iter()
            .partition(|c| keep(c));
        self.state.compensable = rest;
        taken.reverse();
        taken
    }

    /// Runs compensation handlers one after another for `waiter`, then lets it continue.
    pub(super) fn compensate(&mut self, waiter: ExecutionId, records: Vec<Compensable>) {
        if let Some(e) = self.state.executions.get_mut(&waiter) {
            e.compensation = Some(records);
        }
        self.next_compensation(waiter);
    }

    pub(super) fn next_compensation(&mut self, waiter: ExecutionId) {
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
}
