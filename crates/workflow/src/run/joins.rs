//! Joining gateways: a parallel join waits for a token on every incoming flow; an inclusive
//! join waits until no other token of its scope can still reach it.

use super::*;

impl Run<'_> {
    pub(super) fn parallel_join(&mut self, exec: ExecutionId, gateway: &str) {
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
    pub(super) fn inclusive_joins(&mut self) -> Result<bool, Error> {
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
        waiting.sort();
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
    pub(super) fn reaches(&self, from: &str, to: &str) -> bool {
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
