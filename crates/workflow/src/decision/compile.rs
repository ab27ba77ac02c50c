//! Compiling a table: checking every column, rule and cell, and preparing them so that an
//! evaluation parses nothing.
//!
//! Input expressions that are plain variable paths (`customer.tier`) are read straight from
//! the variables; constant outputs (`0.1`, `"gold"`) are computed here; the variables the
//! table's CEL reads are listed, so an evaluation binds only those.

use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};

use super::eval::CompiledTable;
use super::unary::{self, Cell};
use super::{Aggregation, DecisionTable, HitPolicy};
use crate::expr;
use crate::problem::{Problem, Problems};

/// A table checked and prepared.
#[derive(Debug)]
pub(super) struct Compiled {
    pub(super) table: DecisionTable,
    /// Each input column's label (or expression).
    pub(super) labels: Vec<String>,
    pub(super) inputs: Vec<Expression>,
    pub(super) rules: Vec<CompiledRule>,
    /// The variables the table's CEL reads: only those are bound in the CEL context.
    pub(super) references: Vec<String>,
    /// The input columns with a CEL cell, whose values are bound for `?`.
    pub(super) cel_columns: Vec<usize>,
}

#[derive(Debug)]
pub(super) struct CompiledRule {
    pub(super) cells: Vec<Cell>,
    pub(super) outputs: Vec<Expression>,
    /// For each cell that tests something, its column and the end of its `why` line
    /// (` matches >= 1000`), made once.
    pub(super) why: Vec<(usize, String)>,
}

/// An input expression or output cell, compiled.
#[derive(Debug)]
pub(super) enum Expression {
    /// Known at compile time.
    Constant(Value),
    /// A dotted variable path, read directly; the program is run only when the path is
    /// missing, for CEL's own error.
    Path(Vec<String>, cel::Program),
    /// Anything else.
    Program(cel::Program),
}

/// CEL's reserved words, which a variable path cannot use.
const RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

fn variable_path(text: &str) -> Option<Vec<String>> {
    text.split('.')
        .map(|part| {
            let mut chars = part.chars();
            let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !RESERVED.contains(&part);
            ok.then(|| part.to_string())
        })
        .collect()
}

/// How a rule is named in problems and errors: `rule 3 (r3)`.
pub(super) fn rule_name(index: usize, id: &str) -> String {
    format!("rule {index} ({id})")
}

/// A hit policy's name, as the YAML form writes it.
pub(super) fn policy_name(policy: HitPolicy) -> &'static str {
    match policy {
        HitPolicy::Unique => "unique",
        HitPolicy::First => "first",
        HitPolicy::Priority => "priority",
        HitPolicy::Any => "any",
        HitPolicy::Collect => "collect",
        HitPolicy::RuleOrder => "rule_order",
        HitPolicy::OutputOrder => "output_order",
    }
}

/// An aggregation's name, as the YAML form writes it.
pub(super) fn aggregation_name(aggregation: Aggregation) -> &'static str {
    match aggregation {
        Aggregation::Sum => "sum",
        Aggregation::Count => "count",
        Aggregation::Min => "min",
        Aggregation::Max => "max",
    }
}

/// Collects a table's problems while compiling it.
struct Checker {
    problems: Vec<Problem>,
    references: BTreeSet<String>,
}

impl Checker {
    fn problem(&mut self, element: &str, message: impl Into<String>) {
        self.problems.push(Problem::at(element, None, message));
    }

    fn note_references(&mut self, program: &cel::Program) {
        self.references.extend(expr::references(program));
    }

    /// An output cell: empty is null, a constant is computed now.
    fn output(&mut self, element: &str, what: &str, text: &str) -> Option<Expression> {
        let t = text.trim();
        if t.is_empty() {
            return Some(Expression::Constant(Value::Null));
        }
        let program = match expr::compile(element, t) {
            Ok(p) => p,
            Err(e) => {
                self.problem(element, format!("{what}: {t:?} {}", e.message));
                return None;
            }
        };
        if !expr::references(&program).is_empty() {
            self.note_references(&program);
            return Some(Expression::Program(program));
        }
        let constant = expr::context(&Map::new(), None).and_then(|c| expr::execute(&program, &c));
        match constant {
            Ok(value) => Some(Expression::Constant(value)),
            Err(m) => {
                self.problem(element, format!("{what}: {t:?} fails: {m}"));
                None
            }
        }
    }
}

/// Checks and prepares a table (see [`DecisionTable::compile`]).
pub(crate) fn compile(table: &DecisionTable) -> Result<CompiledTable, Problems> {
    let mut c = Checker {
        problems: Vec::new(),
        references: BTreeSet::new(),
    };
    let tid = table.id.as_str();
    if tid.trim().is_empty() {
        c.problems.push(Problem {
            element: None,
            line: None,
            message: "a decision table needs an id".into(),
        });
    }
    let policy = policy_name(table.hit_policy);
    if let Some(a) = table.aggregation {
        if table.hit_policy != HitPolicy::Collect {
            c.problem(
                tid,
                format!(
                    "aggregation {} needs hit policy collect, not {policy}",
                    aggregation_name(a)
                ),
            );
        } else if table.outputs.len() != 1 {
            c.problem(
                tid,
                format!(
                    "collect with aggregation {} needs exactly one output; the table has {}",
                    aggregation_name(a),
                    table.outputs.len()
                ),
            );
        }
    }
    if table.outputs.is_empty() {
        c.problem(tid, "a decision table needs at least one output");
    }
    if matches!(
        table.hit_policy,
        HitPolicy::Priority | HitPolicy::OutputOrder
    ) && !table.outputs.is_empty()
        && table.outputs.iter().all(|o| o.values.is_empty())
    {
        c.problem(
            tid,
            format!(
                "hit policy {policy} ranks rules by the outputs' value lists; give at least one output its values"
            ),
        );
    }

    let mut ids = BTreeSet::new();
    let labels: Vec<String> = table
        .inputs
        .iter()
        .map(|i| i.label.clone().unwrap_or_else(|| i.expression.clone()))
        .collect();
    let mut inputs = Vec::new();
    for (n, (input, label)) in table.inputs.iter().zip(&labels).enumerate() {
        let what = format!("input {} {label:?}", n + 1);
        if !ids.insert(input.id.as_str()) {
            c.problem(
                &input.id,
                format!("{what}: the id {:?} is used twice", input.id),
            );
        }
        let text = input.expression.trim();
        if text.is_empty() {
            c.problem(&input.id, format!("{what}: the input expression is empty"));
            continue;
        }
        match expr::compile(&input.id, text) {
            // A path is read without CEL: only a missing one runs its program (for CEL's
            // error), in a context of its own.
            Ok(program) => inputs.push(match variable_path(text) {
                Some(path) => Expression::Path(path, program),
                None => {
                    c.note_references(&program);
                    Expression::Program(program)
                }
            }),
            Err(e) => c.problem(&input.id, format!("{what}: {text:?} {}", e.message)),
        }
    }
    let mut names = BTreeSet::new();
    for (n, output) in table.outputs.iter().enumerate() {
        let what = format!("output {} {:?}", n + 1, output.name);
        if !ids.insert(output.id.as_str()) {
            c.problem(
                &output.id,
                format!("{what}: the id {:?} is used twice", output.id),
            );
        }
        if output.name.trim().is_empty() {
            c.problem(&output.id, format!("output {} needs a name", n + 1));
        } else if !names.insert(output.name.as_str()) {
            c.problem(&output.id, format!("{what}: two outputs have that name"));
        }
    }

    let mut rule_ids = BTreeSet::new();
    let mut rules = Vec::new();
    let mut cel_columns = BTreeSet::new();
    for (r, rule) in table.rules.iter().enumerate() {
        let name = rule_name(r + 1, &rule.id);
        if !rule_ids.insert(rule.id.as_str()) {
            c.problem(
                &rule.id,
                format!("{name}: the id {:?} is used twice", rule.id),
            );
        }
        if rule.inputs.len() != table.inputs.len() {
            c.problem(
                &rule.id,
                format!(
                    "{name} has {} input cell(s); the table has {} input(s)",
                    rule.inputs.len(),
                    table.inputs.len()
                ),
            );
        }
        if rule.outputs.len() != table.outputs.len() {
            c.problem(
                &rule.id,
                format!(
                    "{name} has {} output cell(s); the table has {} output(s)",
                    rule.outputs.len(),
                    table.outputs.len()
                ),
            );
        }
        let mut cells = Vec::new();
        for (col, (text, label)) in rule.inputs.iter().zip(&labels).enumerate() {
            match unary::parse_cell(text, col) {
                Ok(cell) => {
                    if let Cell::Cel(program) = &cell {
                        c.note_references(program);
                        cel_columns.insert(col);
                    }
                    cells.push(cell);
                }
                Err(m) => c.problem(&rule.id, format!("{name}, input {label:?}: {m}")),
            }
        }
        let mut outputs = Vec::new();
        for (text, output) in rule.outputs.iter().zip(&table.outputs) {
            let what = format!("{name}, output {:?}", output.name);
            let Some(e) = c.output(&rule.id, &what, text) else {
                continue;
            };
            if let Expression::Constant(v) = &e {
                if !v.is_null()
                    && !output.values.is_empty()
                    && !output.values.iter().any(|x| unary::json_eq(x, v))
                {
                    c.problem(
                        &rule.id,
                        format!("{what}: {v} is not one of the output's values"),
                    );
                }
            }
            outputs.push(e);
        }
        let why = rule
            .inputs
            .iter()
            .enumerate()
            .filter(|(_, text)| !matches!(text.trim(), "" | "-"))
            .map(|(col, text)| (col, format!(" matches {}", text.trim())))
            .collect();
        rules.push(CompiledRule {
            cells,
            outputs,
            why,
        });
    }

    if !c.problems.is_empty() {
        return Err(Problems(c.problems));
    }
    Ok(CompiledTable::new(Compiled {
        table: table.clone(),
        labels,
        inputs,
        rules,
        references: c.references.into_iter().collect(),
        cel_columns: cel_columns.into_iter().collect(),
    }))
}

/// Compiles a table just parsed and adds its problems to the parser's, each given the source
/// line of its element. A problem without an element (the table's id) is left out when the
/// parser already found one: it has said so.
pub(super) fn check_parsed(
    table: &DecisionTable,
    lines: &HashMap<String, u32>,
    problems: &mut Vec<Problem>,
) {
    let parsed_badly = !problems.is_empty();
    if let Err(Problems(found)) = compile(table) {
        for mut p in found {
            if p.element.is_none() && parsed_badly {
                continue;
            }
            if p.line.is_none() {
                p.line = p.element.as_ref().and_then(|e| lines.get(e)).copied();
            }
            problems.push(p);
        }
    }
}
