//! Checking what a person writes into a model as they type it: a CEL condition, a `${…}` text
//! template, a JSON template. Only parsing, the same parsing deploy-time validation does
//! ([`crate::expr::check`], [`crate::expr::template_expressions`]); nothing is evaluated.
//!
//! Each problem carries the 1-based line and column in the text checked, so an editor can
//! point at it.

use serde_json::Value;

use crate::expr::MAX_EXPRESSION_LEN;

/// The largest text checked at once (a JSON template may hold many expressions).
pub const MAX_CHECKED_BYTES: usize = 64 * 1024;

/// What kind of text is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// A CEL expression (a flow's condition, a correlation key, an output mapping).
    Condition,
    /// A text template: literal text with `${expression}` parts (a URL, a post's text).
    Template,
    /// A JSON template: JSON whose strings are text templates (a service call's body).
    Json,
}

/// One problem in the text, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxProblem {
    /// What is wrong, for a person.
    pub message: String,
    /// The 1-based line in the text checked.
    pub line: Option<usize>,
    /// The 1-based column (in characters) on that line.
    pub column: Option<usize>,
}

impl SyntaxProblem {
    fn new(message: impl Into<String>, line: Option<usize>, column: Option<usize>) -> Self {
        SyntaxProblem {
            message: message.into(),
            line,
            column,
        }
    }
}

/// Every problem in `text` read as `kind`; empty when it parses.
pub fn check(kind: TextKind, text: &str) -> Vec<SyntaxProblem> {
    if text.len() > MAX_CHECKED_BYTES {
        return vec![SyntaxProblem::new(
            format!("the text is longer than {MAX_CHECKED_BYTES} bytes"),
            None,
            None,
        )];
    }
    match kind {
        TextKind::Condition => condition(text),
        TextKind::Template => template(text),
        TextKind::Json => json(text),
    }
}

/// A CEL expression; positions are within it.
fn condition(expression: &str) -> Vec<SyntaxProblem> {
    if expression.trim().is_empty() {
        return vec![SyntaxProblem::new("the expression is empty", None, None)];
    }
    if expression.len() > MAX_EXPRESSION_LEN {
        return vec![SyntaxProblem::new(
            format!("an expression is at most {MAX_EXPRESSION_LEN} bytes"),
            None,
            None,
        )];
    }
    match crate::expr::parse(expression) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .errors
            .iter()
            .map(|e| {
                let (line, column) = match (usize::try_from(e.pos.0), usize::try_from(e.pos.1)) {
                    (Ok(l), Ok(c)) if l >= 1 => (Some(l), Some(c + 1)),
                    _ => (None, None),
                };
                SyntaxProblem::new(e.msg.clone(), line, column)
            })
            .collect(),
    }
}

/// A text template; positions are within it.
fn template(text: &str) -> Vec<SyntaxProblem> {
    let mut problems = Vec::new();
    let mut rest = text;
    let mut at = 0usize;
    while let Some(start) = rest.find("${") {
        let inner_start = at + start + 2;
        let after = &rest[start + 2..];
        let Some(end) = crate::expr::closing_brace(after) else {
            let (line, column) = line_column(text, at + start);
            problems.push(SyntaxProblem::new(
                "a ${ has no closing }",
                Some(line),
                Some(column),
            ));
            return problems;
        };
        let inner = &after[..end];
        for mut p in condition(inner) {
            // Re-place the expression's own position into the template.
            let (line, column) = match (p.line, p.column) {
                (Some(l), Some(c)) => shift(text, inner_start, l, c),
                _ => line_column(text, inner_start),
            };
            p.line = Some(line);
            p.column = Some(column);
            p.message = format!("in ${{{inner}}}: {}", p.message);
            problems.push(p);
        }
        at = inner_start + end + 1;
        rest = &after[end + 1..];
    }
    problems
}

/// The position in `text` of `line`:`column` of a piece that starts at byte `start` of it.
fn shift(text: &str, start: usize, line: usize, column: usize) -> (usize, usize) {
    let (start_line, start_column) = line_column(text, start);
    if line <= 1 {
        (start_line, start_column + column - 1)
    } else {
        (start_line + line - 1, column)
    }
}

/// The 1-based line and character column of byte `at` in `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A JSON template: JSON first, then every string in it as a text template.
fn json(text: &str) -> Vec<SyntaxProblem> {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let message = e.to_string();
            // serde_json appends " at line L column C"; the position is given apart.
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(m, _)| m)
                .to_owned();
            return vec![SyntaxProblem::new(
                format!("not JSON: {message}"),
                Some(e.line()),
                Some(e.column()),
            )];
        }
    };
    let mut problems = Vec::new();
    strings(&value, &mut |s| {
        for mut p in template(s) {
            // A string's own position is lost once parsed: the message quotes it instead.
            p.line = None;
            p.column = None;
            problems.push(p);
        }
    });
    problems
}

fn strings(value: &Value, each: &mut impl FnMut(&str)) {
    match value {
        Value::String(s) => each(s),
        Value::Array(items) => items.iter().for_each(|i| strings(i, each)),
        Value::Object(map) => map.values().for_each(|v| strings(v, each)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_that_parses_has_no_problem() {
        assert_eq!(
            check(TextKind::Condition, "amount > 1000 && approved"),
            vec![]
        );
    }

    #[test]
    fn a_condition_that_does_not_parse_says_where() {
        let p = check(TextKind::Condition, "amount >> 3");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].line, Some(1));
        assert!(p[0].column.is_some_and(|c| (7..=10).contains(&c)), "{p:?}");
        assert!(!check(TextKind::Condition, "  ").is_empty());
    }

    #[test]
    fn a_template_points_into_the_text() {
        assert_eq!(check(TextKind::Template, "Hello ${name}!"), vec![]);
        let p = check(TextKind::Template, "Order ${id +} is late");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].message.contains("${id +}"), "{p:?}");
        assert!(p[0].column.is_some_and(|c| c >= 9), "{p:?}");
        let unclosed = check(TextKind::Template, "a\nb ${x");
        assert_eq!(
            (unclosed[0].line, unclosed[0].column),
            (Some(2), Some(3)),
            "{unclosed:?}"
        );
    }

    #[test]
    fn a_json_template_is_json_with_templates_inside() {
        assert_eq!(
            check(TextKind::Json, r#"{"id": "${order.id}", "n": 2}"#),
            vec![]
        );
        let p = check(TextKind::Json, "{\"id\": 1,\n \"x\": }");
        assert_eq!(p[0].line, Some(2), "{p:?}");
        assert!(p[0].message.starts_with("not JSON"), "{p:?}");
        let p = check(TextKind::Json, r#"{"id": "${order.}"}"#);
        assert_eq!(p.len(), 1, "{p:?}");
    }
}
