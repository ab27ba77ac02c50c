//! Deciding with a compiled table: the input values, the rules that match and why, the hit
//! policy's result, the table's own tests, and the explanation.
//!
//! The CEL context (holding only the variables the table's CEL reads) is built at most once
//! per evaluation, when some expression needs it.

use serde_json::{Map, Number, Value};
use std::cmp::Ordering;
use std::sync::Arc;

use super::compile::{aggregation_name, policy_name, rule_name, Compiled, Expression};
use super::unary::{self, Cell};
use super::{
    Aggregation, DecisionError, DecisionTable, Evaluation, HitPolicy, Match, TestFailure,
    TestOutcome,
};
use crate::expr;

/// A table ready to decide: every expression and cell parsed. Cheap to clone (shared inside).
#[derive(Debug, Clone)]
pub struct CompiledTable {
    inner: Arc<Compiled>,
}

/// One evaluation's access to the variables: the CEL context is built on first need.
struct Scope<'a> {
    variables: &'a Map<String, Value>,
    references: &'a [String],
    cel: Option<cel::Context<'static, 'static>>,
}

impl Scope<'_> {
    fn context(&mut self) -> Result<&mut cel::Context<'static, 'static>, String> {
        if self.cel.is_none() {
            self.cel = Some(expr::context(self.variables, Some(self.references))?);
        }
        self.cel
            .as_mut()
            .ok_or_else(|| "the CEL context is missing".to_string())
    }

    /// Whether `path` names nothing: a variable not set, or a field missing from an object
    /// (not a field asked of a value that is not an object, which CEL reports).
    fn path_is_unset(&self, path: &[String]) -> bool {
        let mut parts = path.iter();
        let Some(mut value) = parts.next().and_then(|p| self.variables.get(p)) else {
            return true;
        };
        for p in parts {
            match value {
                Value::Object(o) => match o.get(p) {
                    Some(v) => value = v,
                    None => return true,
                },
                Value::Null => return true,
                _ => return false,
            }
        }
        false
    }

    fn eval(&mut self, e: &Expression) -> Result<Value, String> {
        match e {
            Expression::Constant(v) => Ok(v.clone()),
            Expression::Path(path, program) => {
                let mut parts = path.iter();
                let found = parts
                    .next()
                    .and_then(|p| self.variables.get(p))
                    .and_then(|first| parts.try_fold(first, |v, p| v.as_object()?.get(p)));
                match found {
                    Some(v) => Ok(v.clone()),
                    // A variable that is not set (or a field a value does not have) is null,
                    // which `-` and `null` match: a process may leave an input out.
                    None if self.path_is_unset(path) => Ok(Value::Null),
                    None => {
                        let context = expr::context(self.variables, Some(&path[..1]))?;
                        expr::execute(program, &context)
                    }
                }
            }
            Expression::Program(program) => expr::execute(program, self.context()?),
        }
    }
}

impl CompiledTable {
    pub(super) fn new(compiled: Compiled) -> CompiledTable {
        CompiledTable {
            inner: Arc::new(compiled),
        }
    }

    /// The table it was compiled from.
    pub fn table(&self) -> &DecisionTable {
        &self.inner.table
    }

    fn error(&self, message: impl Into<String>) -> DecisionError {
        DecisionError {
            decision: self.inner.table.id.clone(),
            message: message.into(),
        }
    }

    /// Decides on `variables`: the result, the input values, the rules that matched and why.
    pub fn evaluate(&self, variables: &Map<String, Value>) -> Result<Evaluation, DecisionError> {
        let t = &*self.inner;
        let mut scope = Scope {
            variables,
            references: &t.references,
            cel: None,
        };
        let mut values = Vec::with_capacity(t.inputs.len());
        for ((input, expression), label) in t.inputs.iter().zip(&t.table.inputs).zip(&t.labels) {
            let value = scope.eval(input).map_err(|m| {
                self.error(format!(
                    "input {label:?} ({}): {m}",
                    expression.expression.trim()
                ))
            })?;
            values.push(value);
        }
        if !t.cel_columns.is_empty() {
            let context = scope.context().map_err(|m| self.error(m))?;
            for &col in &t.cel_columns {
                if let Some(v) = values.get(col) {
                    expr::bind(context, &unary::input_binding(col), v)
                        .map_err(|m| self.error(format!("input {:?}: {m}", t.labels[col])))?;
                }
            }
        }

        let mut hits = Vec::new();
        'rules: for (r, rule) in t.rules.iter().enumerate() {
            for (col, (cell, input)) in rule.cells.iter().zip(&values).enumerate() {
                let passed = match cell {
                    Cell::Any => Ok(true),
                    Cell::Unary(tests) => tests.matches(input, variables),
                    Cell::Cel(program) => scope
                        .context()
                        .and_then(|c| expr::execute(program, c))
                        .map(|v| match v {
                            Value::Bool(b) => b,
                            other => unary::json_eq(&other, input),
                        }),
                };
                match passed {
                    Ok(true) => {}
                    Ok(false) => continue 'rules,
                    Err(m) => {
                        return Err(self.error(format!(
                            "{}, input {:?}: {:?}: {m}",
                            rule_name(r + 1, &t.table.rules[r].id),
                            t.labels[col],
                            t.table.rules[r].inputs[col].trim()
                        )))
                    }
                }
            }
            hits.push(r);
        }

        let mut matched = Vec::with_capacity(hits.len());
        // Each input value's JSON text, made when a `why` line first needs it.
        let mut texts: Vec<Option<String>> = vec![None; values.len()];
        for &r in &hits {
            let rule = &t.table.rules[r];
            let mut outputs = Map::new();
            for (e, output) in t.rules[r].outputs.iter().zip(&t.table.outputs) {
                let value = scope.eval(e).map_err(|m| {
                    self.error(format!(
                        "{}, output {:?}: {m}",
                        rule_name(r + 1, &rule.id),
                        output.name
                    ))
                })?;
                outputs.insert(output.name.clone(), value);
            }
            let why = t.rules[r]
                .why
                .iter()
                .map(|(col, end)| {
                    let value = texts[*col].get_or_insert_with(|| values[*col].to_string());
                    let label = &t.labels[*col];
                    let mut line = String::with_capacity(label.len() + value.len() + end.len() + 3);
                    line.push_str(label);
                    line.push_str(" = ");
                    line.push_str(value);
                    line.push_str(end);
                    line
                })
                .collect();
            matched.push(Match {
                index: r + 1,
                rule_id: rule.id.clone(),
                description: rule.description.clone(),
                why,
                outputs,
            });
        }

        let (result, chosen) = self.combine(&matched)?;
        Ok(Evaluation {
            decision: t.table.id.clone(),
            hit_policy: t.table.hit_policy,
            aggregation: t.table.aggregation,
            result,
            inputs: t.labels.iter().cloned().zip(values).collect(),
            matched,
            chosen,
        })
    }

    /// A match's outputs as a result: the value for a one-output table, else the object.
    fn shape(&self, m: &Match) -> Value {
        if self.inner.table.outputs.len() == 1 {
            m.outputs.values().next().cloned().unwrap_or(Value::Null)
        } else {
            Value::Object(m.outputs.clone())
        }
    }

    /// A match's rank under `priority` and `output_order`: per output, in order, its value's
    /// position in the output's value list (not listed: last).
    fn rank(&self, m: &Match) -> Vec<usize> {
        self.inner
            .table
            .outputs
            .iter()
            .filter(|o| !o.values.is_empty())
            .map(|o| {
                let value = m.outputs.get(&o.name).unwrap_or(&Value::Null);
                o.values
                    .iter()
                    .position(|v| unary::json_eq(v, value))
                    .unwrap_or(o.values.len())
            })
            .collect()
    }

    /// Applies the hit policy: the result, and the rule taken when one is.
    fn combine(&self, matched: &[Match]) -> Result<(Value, Option<usize>), DecisionError> {
        let table = &self.inner.table;
        let names = |ms: &[&Match]| {
            let names: Vec<String> = ms.iter().map(|m| rule_name(m.index, &m.rule_id)).collect();
            match names.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
                _ => names.join(""),
            }
        };
        let single = |m: Option<&Match>| match m {
            Some(m) => (self.shape(m), Some(m.index)),
            None => (Value::Null, None),
        };
        Ok(match table.hit_policy {
            HitPolicy::Unique => {
                if matched.len() > 1 {
                    let all: Vec<&Match> = matched.iter().collect();
                    return Err(self.error(format!(
                        "{} all match; hit policy unique allows one",
                        names(&all)
                    )));
                }
                (single(matched.first()).0, None)
            }
            HitPolicy::First => single(matched.first()),
            HitPolicy::Priority => single(matched.iter().min_by_key(|m| self.rank(m))),
            HitPolicy::Any => {
                if let Some(first) = matched.first() {
                    let outputs = Value::Object(first.outputs.clone());
                    if let Some(other) = matched
                        .iter()
                        .find(|m| !unary::json_eq(&Value::Object(m.outputs.clone()), &outputs))
                    {
                        return Err(self.error(format!(
                            "{} match with different outputs ({outputs} and {}); hit policy any needs them equal",
                            names(&[first, other]),
                            Value::Object(other.outputs.clone())
                        )));
                    }
                }
                single(matched.first())
            }
            HitPolicy::Collect if table.aggregation.is_some() => (self.aggregate(matched)?, None),
            HitPolicy::Collect | HitPolicy::RuleOrder => (
                Value::Array(matched.iter().map(|m| self.shape(m)).collect()),
                None,
            ),
            HitPolicy::OutputOrder => {
                let mut ordered: Vec<&Match> = matched.iter().collect();
                ordered.sort_by_cached_key(|m| self.rank(m));
                (
                    Value::Array(ordered.into_iter().map(|m| self.shape(m)).collect()),
                    None,
                )
            }
        })
    }

    /// `collect` with an aggregation, over the single output of every match (all of them, not
    /// distinct values, as Camunda does); null outputs (empty cells) are left out.
    fn aggregate(&self, matched: &[Match]) -> Result<Value, DecisionError> {
        let table = &self.inner.table;
        let Some(output) = table.outputs.first() else {
            return Ok(Value::Null);
        };
        let values: Vec<(&Match, &Value)> = matched
            .iter()
            .filter_map(|m| m.outputs.get(&output.name).map(|v| (m, v)))
            .filter(|(_, v)| !v.is_null())
            .collect();
        let aggregation = table.aggregation.unwrap_or(Aggregation::Count);
        if aggregation == Aggregation::Count {
            return Ok(Value::from(values.len()));
        }
        let mut numbers = Vec::with_capacity(values.len());
        for (m, v) in values {
            match v {
                Value::Number(n) => numbers.push(n),
                other => {
                    return Err(self.error(format!(
                        "{} gives {other} for {:?}; {} needs numbers",
                        rule_name(m.index, &m.rule_id),
                        output.name,
                        aggregation_name(aggregation)
                    )))
                }
            }
        }
        let pick = |wanted: Ordering| {
            numbers
                .iter()
                .copied()
                .reduce(|a, b| {
                    if unary::number_cmp(b, a) == Some(wanted) {
                        b
                    } else {
                        a
                    }
                })
                .map_or(Value::Null, |n| Value::Number(n.clone()))
        };
        Ok(match aggregation {
            Aggregation::Min => pick(Ordering::Less),
            Aggregation::Max => pick(Ordering::Greater),
            _ => sum(&numbers).ok_or_else(|| self.error("the sum is out of range"))?,
        })
    }

    /// Runs the table's own test cases; the ones that failed.
    pub fn run_tests(&self) -> Vec<TestFailure> {
        self.run_cases()
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| TestFailure {
                decision: c.decision,
                case: c.case,
                name: c.name,
                expected: c.expected,
                got: c.got,
            })
            .collect()
    }

    /// Runs every one of the table's test cases, each with what it gave and why.
    pub fn run_cases(&self) -> Vec<TestOutcome> {
        let table = &self.inner.table;
        let single = match table.outputs.as_slice() {
            [only] => Some(only.name.as_str()),
            _ => None,
        };
        let list = matches!(
            (table.hit_policy, table.aggregation),
            (HitPolicy::Collect, None) | (HitPolicy::RuleOrder | HitPolicy::OutputOrder, _)
        );
        table
            .tests
            .iter()
            .enumerate()
            .map(|(n, case)| {
                let (passed, got, explanation) = match self.evaluate(&case.input) {
                    Ok(e) => (
                        expected(&case.expect, &e.result, single, list),
                        e.result.clone(),
                        e.explain(),
                    ),
                    Err(e) => (false, Value::String(e.to_string()), Vec::new()),
                };
                TestOutcome {
                    decision: table.id.clone(),
                    case: n + 1,
                    name: case.name.clone(),
                    passed,
                    expected: case.expect.clone(),
                    got,
                    explanation,
                }
            })
            .collect()
    }
}

/// Sums integers exactly while they fit, else as floating point.
fn sum(numbers: &[&Number]) -> Option<Value> {
    let exact = numbers
        .iter()
        .try_fold(0i64, |acc, n| acc.checked_add(n.as_i64()?));
    if let Some(total) = exact {
        return Some(Value::from(total));
    }
    let total: f64 = numbers.iter().filter_map(|n| n.as_f64()).sum();
    Number::from_f64(total).map(Value::Number)
}

/// Whether a test's expectation holds: numbers numerically; for a one-output table the value
/// or `{name: value}`; for list results, element by element the same way.
fn expected(expect: &Value, got: &Value, single: Option<&str>, list: bool) -> bool {
    let one = |e: &Value, g: &Value| {
        unary::json_eq(e, g)
            || single.is_some_and(|name| match e {
                Value::Object(m) => {
                    m.len() == 1 && m.get(name).is_some_and(|v| unary::json_eq(v, g))
                }
                _ => false,
            })
    };
    match (list, expect, got) {
        (true, Value::Array(e), Value::Array(g)) => {
            e.len() == g.len() && e.iter().zip(g).all(|(e, g)| one(e, g))
        }
        _ => one(expect, got),
    }
}

/// The explanation of an evaluation (see [`Evaluation::explain`]).
pub(crate) fn explain(e: &Evaluation) -> Vec<String> {
    let mut lines = vec![match e.aggregation {
        Some(a) => format!(
            "hit policy: {} ({})",
            policy_name(e.hit_policy),
            aggregation_name(a)
        ),
        None => format!("hit policy: {}", policy_name(e.hit_policy)),
    }];
    if e.matched.is_empty() {
        lines.push("no rule matched".into());
    }
    for m in &e.matched {
        let mut line = rule_name(m.index, &m.rule_id);
        if let Some(d) = &m.description {
            line.push_str(&format!(" {d:?}"));
        }
        if m.why.is_empty() {
            line.push_str(": matches any input");
        } else {
            line.push_str(": ");
            line.push_str(&m.why.join("; "));
        }
        lines.push(line);
    }
    if let Some(m) = e
        .chosen
        .and_then(|i| e.matched.iter().find(|m| m.index == i))
    {
        lines.push(format!("chosen: {}", rule_name(m.index, &m.rule_id)));
    }
    lines.push(format!("result: {}", e.result));
    lines
}
