//! Concord's BPMN extension (`concord:` attributes and elements, and the Camunda aliases): who a
//! user task is for and its form, the HTTP call of a service task, the post of a send task.

use roxmltree::Node;

use super::{bpmn_children, expression, text, Parser, CAMUNDA_NS, CONCORD_NS};
use crate::model::{
    Assignment, HttpCall, MultiInstance, OutputMapping, PostTarget, RetryPolicy, SendTask,
    ServiceTask, UserTask,
};

/// An attribute in the Concord namespace, or its Camunda alias.
pub(super) fn ext(n: Node, name: &str, camunda_alias: Option<&str>) -> Option<String> {
    n.attribute((CONCORD_NS, name))
        .or_else(|| camunda_alias.and_then(|a| n.attribute((CAMUNDA_NS, a))))
        .map(str::to_string)
}

impl<'a, 'i> Parser<'a, 'i> {
    pub(super) fn user_task(&mut self, n: Node<'a, 'i>) -> UserTask {
        let assignment = if let Some(p) = ext(n, "assignee", Some("assignee")) {
            Assignment::Person(p)
        } else if let Some(r) = ext(n, "candidateRole", Some("candidateGroups")) {
            Assignment::Role(r)
        } else if let Some(c) = ext(n, "candidateChannel", None) {
            Assignment::Channel(c)
        } else {
            Assignment::Unassigned
        };
        let multi_instance = bpmn_children(n, "multiInstanceLoopCharacteristics")
            .next()
            .map(|mi| MultiInstance {
                sequential: mi.attribute("isSequential") == Some("true"),
                collection: ext(mi, "collection", Some("collection")).unwrap_or_default(),
                element_variable: ext(mi, "elementVariable", Some("elementVariable")),
                completion_condition: bpmn_children(mi, "completionCondition")
                    .next()
                    .map(expression)
                    .filter(|c| !c.is_empty()),
                output_collection: ext(mi, "outputCollection", None),
            });
        let routing = self.extension(n, "routing").and_then(|r| {
            let text = r.text().unwrap_or_default();
            match serde_yaml_ng::from_str::<serde_json::Value>(text) {
                Ok(v @ serde_json::Value::Object(_)) => Some(v),
                Ok(_) => {
                    self.refuse(
                        r,
                        "<concord:routing> holds a YAML or JSON map (strategy: …)",
                    );
                    None
                }
                Err(e) => {
                    self.refuse(r, format!("<concord:routing> cannot be read: {e}"));
                    None
                }
            }
        });
        UserTask {
            assignment,
            form_key: ext(n, "formKey", Some("formKey")),
            due: ext(n, "due", None),
            multi_instance,
            routing,
        }
    }

    pub(super) fn extension(&self, n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
        bpmn_children(n, "extensionElements")
            .flat_map(|e| e.children())
            .find(|c| c.is_element() && c.has_tag_name((CONCORD_NS, name)))
    }

    pub(super) fn service_task(&mut self, n: Node<'a, 'i>) -> Option<ServiceTask> {
        let Some(http) = self.extension(n, "http") else {
            self.refuse(
                n,
                format!("a service task needs <concord:http method=\"…\" url=\"…\"> in its extensionElements ({CONCORD_NS})"),
            );
            return None;
        };
        let body = match http
            .children()
            .find(|c| c.has_tag_name((CONCORD_NS, "body")))
        {
            Some(b) => match serde_json::from_str(&text(b)) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.refuse(n, format!("the concord:body is not JSON: {e}"));
                    return None;
                }
            },
            None => None,
        };
        let outputs = http
            .children()
            .filter(|c| c.has_tag_name((CONCORD_NS, "output")))
            .map(|o| OutputMapping {
                variable: o.attribute("variable").unwrap_or_default().to_string(),
                expression: o.attribute("expression").unwrap_or_default().to_string(),
            })
            .collect();
        let mut retry = RetryPolicy::default();
        if let Some(r) = self.extension(n, "retry") {
            if let Some(a) = r.attribute("attempts") {
                match a.parse() {
                    Ok(a) if a >= 1 => retry.attempts = a,
                    _ => self.refuse(
                        n,
                        "concord:retry attempts must be a whole number of at least 1",
                    ),
                }
            }
            if let Some(b) = r.attribute("backoff") {
                retry.backoff = b.to_string();
            }
            if let Some(m) = r.attribute("multiplier") {
                match m.parse() {
                    Ok(m) if m >= 1.0 => retry.multiplier = m,
                    _ => self.refuse(n, "concord:retry multiplier must be a number of at least 1"),
                }
            }
        }
        Some(ServiceTask {
            http: HttpCall {
                method: http
                    .attribute("method")
                    .unwrap_or("POST")
                    .to_ascii_uppercase(),
                url: http.attribute("url").unwrap_or_default().to_string(),
                body,
                outputs,
            },
            retry,
        })
    }

    pub(super) fn send_task(&mut self, n: Node<'a, 'i>) -> Option<SendTask> {
        let post = self.extension(n, "post");
        let to = post.and_then(|p| {
            p.attribute("channel")
                .map(|c| PostTarget::Channel(c.to_string()))
                .or_else(|| {
                    p.attribute("person")
                        .map(|c| PostTarget::Person(c.to_string()))
                })
        });
        match (post, to) {
            (Some(p), Some(to)) => Some(SendTask { to, text: text(p) }),
            _ => {
                self.refuse(
                    n,
                    format!("a send task needs <concord:post channel=\"…\"> or <concord:post person=\"…\"> with the text ({CONCORD_NS})"),
                );
                None
            }
        }
    }
}
