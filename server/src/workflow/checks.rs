//! Checking what a person types into a process designer before anything is deployed: a
//! condition in CEL, a `${…}` text template, a JSON template. Parsed with the engine's own
//! parser ([`concord_workflow::syntax`]), the one deploy-time validation uses, so what passes
//! here passes there; nothing is evaluated and nothing is written.

use serde::{Deserialize, Serialize};

use super::WorkflowService;
use crate::domain::WorkspaceId;
use crate::error::Error;
use crate::rbac::{Action, Actor};
use concord_workflow::syntax::{self, TextKind, MAX_CHECKED_BYTES};

/// What kind of text an expression check reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExpressionKind {
    /// A CEL expression: a flow's condition, a correlation key, an output mapping.
    Condition,
    /// Text with `${expression}` parts: a URL, a post's text.
    Template,
    /// JSON whose strings are text templates: a service call's body.
    Json,
}

/// Text to check.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"expression": "amount > 1000 && approved", "kind": "condition"}))]
pub struct ExpressionCheck {
    /// The text as written (up to 64 KiB).
    pub expression: String,
    /// How to read it.
    pub kind: ExpressionKind,
}

/// What a check found.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ExpressionReport {
    /// True when the text parses.
    pub ok: bool,
    /// Every problem, in the order found.
    pub problems: Vec<ExpressionProblem>,
}

/// A problem in checked text.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ExpressionProblem {
    /// What is wrong.
    pub message: String,
    /// The 1-based line, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The 1-based column (in characters) on that line, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl WorkflowService {
    /// Checks an expression or template as it would be checked at deploy
    /// (`workflows.manage`: only those who deploy models design them).
    pub async fn check_expression(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        check: ExpressionCheck,
    ) -> Result<ExpressionReport, Error> {
        {
            let mut conn = self.store().reader().await?;
            self.authorize_read(&mut conn.conn(), actor, Action::ManageWorkflows, workspace)
                .await?;
        }
        if check.expression.len() > MAX_CHECKED_BYTES {
            return Err(Error::TooLarge {
                code: "expression_too_large",
                message: format!("an expression checked is at most {MAX_CHECKED_BYTES} bytes"),
                limit: MAX_CHECKED_BYTES as u64,
            });
        }
        let kind = match check.kind {
            ExpressionKind::Condition => TextKind::Condition,
            ExpressionKind::Template => TextKind::Template,
            ExpressionKind::Json => TextKind::Json,
        };
        let problems: Vec<ExpressionProblem> = syntax::check(kind, &check.expression)
            .into_iter()
            .map(|p| ExpressionProblem {
                message: p.message,
                line: p.line,
                column: p.column,
            })
            .collect();
        Ok(ExpressionReport {
            ok: problems.is_empty(),
            problems,
        })
    }
}
