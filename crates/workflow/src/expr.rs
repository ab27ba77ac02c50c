//! Expressions: CEL evaluated against an instance's variables, and the `${…}` templates built on it.
//!
//! CEL (the `cel` crate) is side-effect free and always terminates, so a model cannot hang the
//! engine. Every variable is bound under its own name (`amount > 1000`); names that are not CEL
//! identifiers are left out. Values cross as JSON: numbers without a fraction become CEL
//! integers, others doubles; CEL results convert back to JSON (timestamps as RFC 3339 text).
//!
//! Inputs are guarded before conversion: variables nested deeper than [`MAX_DEPTH`] or larger
//! than [`MAX_VARIABLES_BYTES`] and expressions longer than [`MAX_EXPRESSION_LEN`] are refused,
//! since CEL's evaluation cost grows with its input. Errors name the element and the expression.

use serde_json::{Map, Value};
use std::sync::{Arc, OnceLock};

/// CEL's standard library, built once: building it for every evaluation costs more than
/// most evaluations.
fn env() -> Arc<cel::Env> {
    static ENV: OnceLock<Arc<cel::Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(cel::Env::stdlib())).clone()
}

/// Deepest nesting of arrays and objects accepted in variables.
pub const MAX_DEPTH: usize = 32;
/// Largest size of the variables (their JSON text) accepted for evaluation.
pub const MAX_VARIABLES_BYTES: usize = 1 << 20;
/// Longest expression accepted.
pub const MAX_EXPRESSION_LEN: usize = 4096;

/// An expression that failed to parse or evaluate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expression {expression:?} of element {element:?}: {message}")]
pub struct ExprError {
    /// The element whose expression failed.
    pub element: String,
    /// The expression as written.
    pub expression: String,
    /// What went wrong.
    pub message: String,
}

fn fail(element: &str, expression: &str, message: impl Into<String>) -> ExprError {
    ExprError {
        element: element.to_string(),
        expression: expression.to_string(),
        message: message.into(),
    }
}

/// Checks that an expression parses (deploy-time validation).
pub fn check(element: &str, expression: &str) -> Result<(), ExprError> {
    if expression.len() > MAX_EXPRESSION_LEN {
        return Err(fail(element, expression, "expression too long"));
    }
    env()
        .compile(expression)
        .map(|_| ())
        .map_err(|e| fail(element, expression, format!("does not parse: {e}")))
}

/// Parses an expression as [`check`] does, keeping the parser's errors with their positions.
pub(crate) fn parse(expression: &str) -> Result<(), cel::ParseErrors> {
    env().compile(expression).map(|_| ())
}

/// Evaluates an expression with the variables, plus `extra` bindings that shadow them.
pub fn eval(
    element: &str,
    expression: &str,
    variables: &Map<String, Value>,
    extra: &[(&str, &Value)],
) -> Result<Value, ExprError> {
    if expression.len() > MAX_EXPRESSION_LEN {
        return Err(fail(element, expression, "expression too long"));
    }
    let program = env()
        .compile(expression)
        .map_err(|e| fail(element, expression, format!("does not parse: {e}")))?;
    guard(variables.values().chain(extra.iter().map(|(_, v)| *v)))
        .map_err(|m| fail(element, expression, m))?;
    let mut context = cel::Context::with_env(env());
    let bindings = variables
        .iter()
        .filter(|(k, _)| !extra.iter().any(|(n, _)| n == k))
        .map(|(k, v)| (k.as_str(), v))
        .chain(extra.iter().copied());
    for (name, value) in bindings {
        if !is_identifier(name) {
            continue;
        }
        context.add_variable_from_value(name, to_cel(value));
    }
    execute(&program, &context).map_err(|m| fail(element, expression, m))
}

/// Parses an expression once, for callers that evaluate it many times (decision tables).
pub(crate) fn compile(element: &str, expression: &str) -> Result<cel::Program, ExprError> {
    if expression.len() > MAX_EXPRESSION_LEN {
        return Err(fail(element, expression, "expression too long"));
    }
    env()
        .compile(expression)
        .map_err(|e| fail(element, expression, format!("does not parse: {e}")))
}

/// The variables a compiled program reads, so a caller binds only those.
pub(crate) fn references(program: &cel::Program) -> Vec<String> {
    program
        .references()
        .variables()
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// A context holding those of `variables` that `names` lists (all of them when `names` is
/// `None`), guarded like [`eval`]'s, for evaluating several compiled programs.
pub(crate) fn context(
    variables: &Map<String, Value>,
    names: Option<&[String]>,
) -> Result<cel::Context<'static, 'static>, String> {
    let chosen: Vec<(&String, &Value)> = match names {
        Some(names) => names
            .iter()
            .filter_map(|n| variables.get_key_value(n.as_str()))
            .collect(),
        None => variables.iter().collect(),
    };
    guard(chosen.iter().map(|(_, v)| *v))?;
    let mut context = cel::Context::with_env(env());
    for (name, value) in chosen {
        if is_identifier(name) {
            context.add_variable_from_value(name.as_str(), to_cel(value));
        }
    }
    Ok(context)
}

/// Binds one more value in a context made by [`context`], guarded the same way.
pub(crate) fn bind(
    context: &mut cel::Context<'static, 'static>,
    name: &str,
    value: &Value,
) -> Result<(), String> {
    guard(std::iter::once(value))?;
    context.add_variable_from_value(name, to_cel(value));
    Ok(())
}

/// Runs a compiled program in a context; the result as JSON, or the error's text.
pub(crate) fn execute(program: &cel::Program, context: &cel::Context) -> Result<Value, String> {
    program
        .execute(context)
        .map_err(|e| e.to_string())?
        .json()
        .map_err(|e| e.to_string())
}

/// Evaluates a condition; anything but a boolean is an error.
pub fn eval_bool(
    element: &str,
    expression: &str,
    variables: &Map<String, Value>,
    extra: &[(&str, &Value)],
) -> Result<bool, ExprError> {
    match eval(element, expression, variables, extra)? {
        Value::Bool(b) => Ok(b),
        other => Err(fail(
            element,
            expression,
            format!("a condition must be true or false, got {other}"),
        )),
    }
}

/// Renders a text template: each `${expr}` is replaced by its value (strings without quotes).
pub fn render_text(
    element: &str,
    template: &str,
    variables: &Map<String, Value>,
) -> Result<String, ExprError> {
    render(element, template, variables, |_, value, out| {
        out.push_str(value)
    })
}

/// Renders `template`, each `${expr}` evaluated and handed to `place` (with whether it opens
/// the template) to append.
fn render(
    element: &str,
    template: &str,
    variables: &Map<String, Value>,
    place: impl Fn(bool, &str, &mut String),
) -> Result<String, ExprError> {
    let mut out = String::new();
    let mut rest = template;
    let mut first = true;
    while let Some(start) = rest.find("${") {
        let leading = first && start == 0;
        first = false;
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end =
            closing_brace(after).ok_or_else(|| fail(element, template, "a ${ has no closing }"))?;
        match eval(element, &after[..end], variables, &[])? {
            Value::String(s) => place(leading, &s, &mut out),
            other => place(leading, &other.to_string(), &mut out),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Renders a chat message's template: like [`render_text`], but a value placed in it cannot
/// mention anyone: an `@` that would start a mention (`@channel`, `@here`, `@name`) gets an
/// invisible word joiner after it. Mentions the template itself writes stay: its author chose
/// them.
pub fn render_message(
    element: &str,
    template: &str,
    variables: &Map<String, Value>,
) -> Result<String, ExprError> {
    fn opens_mention(out: &str) -> bool {
        let mut back = out.chars().rev();
        back.next() == Some('@')
            && !back
                .next()
                .is_some_and(|p| p.is_alphanumeric() || p == '.' || p == '_')
    }
    render(element, template, variables, |_, value, out| {
        // A value right after the template's own `@` would become its handle.
        if opens_mention(out) && !value.is_empty() {
            out.push('\u{2060}');
        }
        for c in value.chars() {
            out.push(c);
            if c == '@' && opens_mention(out) {
                out.push('\u{2060}');
            }
        }
    })
}

/// Renders a service call's URL template: like [`render_text`], but a value placed after the
/// template's start is percent-encoded (all but RFC 3986's unreserved characters), so a
/// variable holding `../admin` or `?x=1` stays one path segment or query value. A template
/// that starts with `${…}` takes that one value as written (a base URL kept in a variable: who
/// sets that variable chooses the host).
pub fn render_url(
    element: &str,
    template: &str,
    variables: &Map<String, Value>,
) -> Result<String, ExprError> {
    render(element, template, variables, |leading, value, out| {
        if leading {
            out.push_str(value);
        } else {
            percent_encode(value, out);
        }
    })
}

/// Appends `text` to `out`, every byte but RFC 3986's unreserved characters percent-encoded.
fn percent_encode(text: &str, out: &mut String) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Renders a JSON template: a string that is exactly `${expr}` becomes the value itself (any
/// JSON type); other strings are text templates; keys are kept as written.
pub fn render_json(
    element: &str,
    template: &Value,
    variables: &Map<String, Value>,
) -> Result<Value, ExprError> {
    Ok(match template {
        Value::String(s) => {
            let t = s.trim();
            match t.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                Some(inner) if closing_brace(inner).is_none() => {
                    eval(element, inner, variables, &[])?
                }
                _ => Value::String(render_text(element, s, variables)?),
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| render_json(element, i, variables))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_json(element, v, variables)?)))
                .collect::<Result<_, ExprError>>()?,
        ),
        other => other.clone(),
    })
}

/// The expressions inside a text template, for validation.
pub fn template_expressions(template: &str) -> Result<Vec<&str>, &'static str> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = closing_brace(after).ok_or("a ${ has no closing }")?;
        found.push(&after[..end]);
        rest = &after[end + 1..];
    }
    Ok(found)
}

/// The index of the `}` closing a `${`, skipping nested braces and quoted strings.
pub(crate) fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// JSON to CEL. Whole numbers become CEL `int` (not `uint`, which serde would give for positive
/// numbers), so `amount * 2 > limit` works without conversions; only integers beyond `i64`
/// stay `uint`.
fn to_cel(value: &Value) -> cel::Value {
    match value {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(map) => {
            let entries: std::collections::HashMap<String, cel::Value> =
                map.iter().map(|(k, v)| (k.clone(), to_cel(v))).collect();
            cel::Value::Map(cel::objects::Map::from(entries))
        }
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Refuses values nested too deep or too large, without recursion on the input.
fn guard<'a>(values: impl Iterator<Item = &'a Value>) -> Result<(), String> {
    let mut stack: Vec<(&Value, usize)> = values.map(|v| (v, 1)).collect();
    let mut bytes = 0usize;
    while let Some((value, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(format!("variables nested deeper than {MAX_DEPTH} levels"));
        }
        bytes += match value {
            Value::String(s) => s.len() + 2,
            Value::Array(items) => {
                stack.extend(items.iter().map(|i| (i, depth + 1)));
                2 + items.len()
            }
            Value::Object(map) => {
                stack.extend(map.values().map(|v| (v, depth + 1)));
                2 + map.keys().map(|k| k.len() + 3).sum::<usize>()
            }
            _ => 8,
        };
        if bytes > MAX_VARIABLES_BYTES {
            return Err(format!("variables larger than {MAX_VARIABLES_BYTES} bytes"));
        }
    }
    Ok(())
}
