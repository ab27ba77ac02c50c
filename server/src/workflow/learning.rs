//! The history the learned router learns from: a process's completed user tasks, each the
//! request (its instance's text and variables) and who finally completed it.
//!
//! A request's text is its instance's first text variables among `subject`, `title`, `text`,
//! `message`, `description`, `body` and `summary` (all of its text variables when it has none of
//! those); its other short text, number and yes/no variables are the request's variables, but
//! not ids (a person's or a channel's: how it was routed, not what it asks). The label is the
//! completer, so a task that was reassigned teaches who actually did it. The variables are the
//! instance's last ones, which may include what later tasks set.

use concord_routing::TaskOutcome;
use serde_json::{Map, Value};

use super::WorkflowService;
use crate::domain::WorkspaceId;
use crate::error::Error;
use crate::rbac::{Action, Actor};
use crate::store::workflows as wf;

/// The variables read as a request's text, in this order.
const TEXT_VARIABLES: &[&str] = &[
    "subject",
    "title",
    "text",
    "message",
    "description",
    "body",
    "summary",
];
/// The longest request text kept, in characters.
const MAX_TEXT: usize = 10_000;
/// The longest text variable kept as a variable, in characters.
const MAX_VARIABLE_TEXT: usize = 200;

/// The request an instance's variables make: its text and its other variables.
pub fn request_of(variables: &Map<String, Value>) -> (String, Map<String, Value>) {
    let mut texts: Vec<&str> = TEXT_VARIABLES
        .iter()
        .filter_map(|k| variables.get(*k).and_then(Value::as_str))
        .collect();
    let named = !texts.is_empty();
    if !named {
        texts = variables.values().filter_map(Value::as_str).collect();
    }
    let text: String = texts.join("\n").chars().take(MAX_TEXT).collect();
    let rest = variables
        .iter()
        .filter(|(k, _)| !(named && TEXT_VARIABLES.contains(&k.as_str())))
        .filter(|(_, v)| match v {
            // An id (the person a task is assigned to, a channel) is how the request was
            // routed, not what it asks: learning from it would learn the answer.
            Value::String(s) if s.parse::<uuid::Uuid>().is_ok() => false,
            Value::String(s) => named && s.chars().count() <= MAX_VARIABLE_TEXT,
            Value::Number(_) | Value::Bool(_) => true,
            _ => false,
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (text, rest)
}

impl WorkflowService {
    /// The completed tasks of `process_id` (at `element`, if given) as the learned router's
    /// history, most recent first, at most `limit` (`workflows.manage`: the requests are the
    /// workspace's content).
    pub async fn task_outcomes(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        process_id: &str,
        element: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TaskOutcome>, Error> {
        {
            let mut conn = self.store().reader().await?;
            self.authorize_read(&mut conn.conn(), actor, Action::ManageWorkflows, workspace)
                .await?;
        }
        self.outcomes_in(workspace, process_id, element, limit)
            .await
    }

    /// [`WorkflowService::task_outcomes`] for a caller that has authorized already (or the
    /// schedule).
    pub(crate) async fn outcomes_in(
        &self,
        workspace: WorkspaceId,
        process_id: &str,
        element: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TaskOutcome>, Error> {
        let mut conn = self.store().reader().await?;
        let tasks =
            wf::completed_tasks(&mut conn.conn(), workspace, process_id, element, limit).await?;
        let mut requests: std::collections::HashMap<uuid::Uuid, (String, Map<String, Value>)> =
            std::collections::HashMap::new();
        let mut out = Vec::with_capacity(tasks.len());
        for task in tasks {
            let Some(completer) = task.closed_by else {
                continue;
            };
            let (text, variables) = match requests.get(&task.instance_id) {
                Some(request) => request.clone(),
                None => {
                    let Some(instance) = wf::instance(&mut conn.conn(), task.instance_id).await?
                    else {
                        continue;
                    };
                    let state = self.state_of(&mut conn.conn(), &instance).await?;
                    let request = request_of(&state.variables);
                    requests.insert(task.instance_id, request.clone());
                    request
                }
            };
            out.push(TaskOutcome {
                text,
                variables,
                first_assigned: task.first_assignee.or(task.assignee).map(|a| a.to_string()),
                completed_by: completer.to_string(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_request_is_its_named_text_and_its_short_variables() {
        let vars = json!({"subject": "Refund", "description": "charged twice", "plan": "pro",
            "amount": 12, "notes": "x".repeat(300), "items": [1],
            "who": "01939e4e-0000-7000-8000-000000000001"});
        let (text, rest) = request_of(vars.as_object().unwrap());
        assert_eq!(text, "Refund\ncharged twice");
        assert_eq!(
            serde_json::to_value(&rest).unwrap(),
            json!({"plan": "pro", "amount": 12})
        );
        let (text, rest) = request_of(json!({"a": "환불 요청", "n": 1}).as_object().unwrap());
        assert_eq!(text, "환불 요청");
        assert_eq!(serde_json::to_value(&rest).unwrap(), json!({"n": 1}));
    }
}
