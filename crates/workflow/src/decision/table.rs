//! The compact forms of a decision table: YAML for people who write tables by hand, CSV for
//! those who keep them in a spreadsheet.
//!
//! ```yaml
//! decision: discount          # id (required; letters, digits, _ - .)
//! name: Customer discount
//! hit_policy: first           # unique (default) | first | priority | any | collect | rule_order | output_order
//! aggregation: sum            # collect only: sum | count | min | max
//! inputs:
//!   - customer.tier                                   # expression (label = expression)
//!   - { label: Amount, expression: amount, type: number }
//! outputs:
//!   - discount                                        # name
//!   - { name: reason, label: Reason, values: ['"big"', '"small"'] }   # priority order
//! rules:                                              # input cells, then output cells
//!   - ['"gold","silver"', '>= 1000', '0.1', '"big"']
//!   - { when: ['"gold"', '-'], then: ['0.05', '"gold"'], description: Gold customers, id: gold_any }
//! tests:
//!   - name: gold big
//!     input: { customer: { tier: gold }, amount: 1200 }
//!     expect: { discount: 0.1, reason: big }
//! ```
//!
//! Instead of `rules:`, `table: |` may hold the rules as CSV text (the CSV form's header and
//! rows); `inputs` and `outputs`, when also given, must list the header's columns in order and
//! add their labels, types and values.
//!
//! The CSV form: optional leading `# key: value` lines (`decision`, `name`, `hit_policy`,
//! `aggregation`, and `values.<output>: "a","b"` for an output's priority list); a header row
//! of `in: <expression>` (or `in: <expression> as <Label>`), `out: <name>`, and optional
//! `description` and `id` columns; then one row per rule.
//!
//! Both forms are compiled once parsed, so a bad cell is reported here, with its line.

use serde_json::{Map, Value};
use serde_yaml_ng::{Mapping, Value as Yaml};
use std::collections::HashMap;

use super::csv;
use super::{
    compile, unary, Aggregation, DecisionFormat, DecisionTable, HitPolicy, InputClause,
    OutputClause, Rule, TestCase,
};
use crate::problem::{Problem, Problems};

const YAML_KEYS: &[&str] = &[
    "decision",
    "name",
    "hit_policy",
    "aggregation",
    "inputs",
    "outputs",
    "rules",
    "table",
    "tests",
];

/// Guesses a source's format (see [`DecisionFormat::guess`]).
pub fn guess(source: &str) -> DecisionFormat {
    let source = source.trim_start_matches('\u{feff}').trim_start();
    if source.starts_with('<') {
        return DecisionFormat::Dmn;
    }
    if source.starts_with(['{', '[']) || source.starts_with("---") {
        return DecisionFormat::Yaml;
    }
    let Some(first) = source
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("\"#"))
    else {
        return DecisionFormat::Yaml;
    };
    let yaml_key = first
        .split_once(':')
        .is_some_and(|(key, _)| YAML_KEYS.contains(&key.trim()));
    if first.contains(',') && !yaml_key {
        DecisionFormat::Csv
    } else {
        DecisionFormat::Yaml
    }
}

/// Reads a hit policy as YAML, CSV or DMN write it (`rule_order`, `RULE ORDER`).
pub(super) fn hit_policy(text: &str) -> Option<HitPolicy> {
    Some(
        match text.trim().to_lowercase().replace([' ', '-'], "_").as_str() {
            "unique" => HitPolicy::Unique,
            "first" => HitPolicy::First,
            "priority" => HitPolicy::Priority,
            "any" => HitPolicy::Any,
            "collect" => HitPolicy::Collect,
            "rule_order" => HitPolicy::RuleOrder,
            "output_order" => HitPolicy::OutputOrder,
            _ => return None,
        },
    )
}

/// Reads an aggregation (`sum`, `SUM`, …).
pub(super) fn aggregation(text: &str) -> Option<Aggregation> {
    Some(match text.trim().to_lowercase().as_str() {
        "sum" => Aggregation::Sum,
        "count" => Aggregation::Count,
        "min" => Aggregation::Min,
        "max" => Aggregation::Max,
        _ => return None,
    })
}

/// A table id usable everywhere a key is: letters, digits, `_`, `-`, `.`.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// What a table is built from, and its problems so far.
pub(super) struct Builder {
    pub(super) table: DecisionTable,
    pub(super) problems: Vec<Problem>,
    /// The source line of each rule and column, by id.
    pub(super) lines: HashMap<String, u32>,
}

impl Builder {
    pub(super) fn new() -> Builder {
        Builder {
            table: DecisionTable {
                id: String::new(),
                name: None,
                hit_policy: HitPolicy::Unique,
                aggregation: None,
                inputs: Vec::new(),
                outputs: Vec::new(),
                rules: Vec::new(),
                tests: Vec::new(),
            },
            problems: Vec::new(),
            lines: HashMap::new(),
        }
    }

    pub(super) fn problem(&mut self, line: Option<u32>, message: impl Into<String>) {
        let element = (!self.table.id.is_empty()).then(|| self.table.id.clone());
        self.problems.push(Problem {
            element,
            line,
            message: message.into(),
        });
    }

    pub(super) fn problem_at(
        &mut self,
        element: &str,
        line: Option<u32>,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem::at(element, line, message));
    }

    /// A setting shared by both forms: `decision`, `name`, `hit_policy`, `aggregation`.
    pub(super) fn setting(&mut self, key: &str, value: &str, line: Option<u32>) {
        let value = value.trim();
        match key {
            "decision" => {
                if !valid_id(value) {
                    self.problem(
                        line,
                        format!("the decision id {value:?} may hold only letters, digits, _, - and ."),
                    );
                }
                self.table.id = value.to_string();
            }
            "name" => self.table.name = Some(value.to_string()),
            "hit_policy" => match hit_policy(value) {
                Some(p) => self.table.hit_policy = p,
                None => self.problem(
                    line,
                    format!("unknown hit policy {value:?}; one of unique, first, priority, any, collect, rule_order, output_order"),
                ),
            },
            "aggregation" => match aggregation(value) {
                Some(a) => self.table.aggregation = Some(a),
                None => self.problem(
                    line,
                    format!("unknown aggregation {value:?}; one of sum, count, min, max"),
                ),
            },
            _ => {}
        }
    }

    /// Compiles the table, giving each problem its element's line, and returns it when
    /// nothing is wrong.
    pub(super) fn finish(mut self) -> Result<DecisionTable, Problems> {
        compile::check_parsed(&self.table, &self.lines, &mut self.problems);
        if self.problems.is_empty() {
            Ok(self.table)
        } else {
            Err(Problems(self.problems))
        }
    }
}

/// A YAML scalar as cell text: numbers and booleans as written, null as empty.
fn cell_text(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        Yaml::Null => Some(String::new()),
        _ => None,
    }
}

/// The 1-based line of a top-level key.
fn key_line(text: &str, key: &str) -> Option<u32> {
    text.lines()
        .position(|l| {
            l.strip_prefix(key)
                .is_some_and(|r| r.trim_start().starts_with(':'))
        })
        .map(|i| i as u32 + 1)
}

/// The 1-based lines of the items of a top-level key's block sequence (empty when it is
/// written in flow style).
fn item_lines(text: &str, key: &str) -> Vec<u32> {
    let Some(start) = key_line(text, key) else {
        return Vec::new();
    };
    let mut indent = None;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate().skip(start as usize) {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let depth = line.len() - content.len();
        if depth == 0 && !content.starts_with('-') {
            break;
        }
        let item = content == "-" || content.starts_with("- ");
        match indent {
            None if item => indent = Some(depth),
            Some(d) if d == depth && item => {}
            _ => continue,
        }
        lines.push(i as u32 + 1);
    }
    lines
}

/// Parses the YAML form, and compiles it.
pub fn parse_yaml(text: &str) -> Result<DecisionTable, Problems> {
    let doc: Yaml = serde_yaml_ng::from_str(text).map_err(|e| {
        Problems(vec![Problem {
            element: None,
            line: e.location().map(|l| l.line() as u32),
            message: format!("not valid YAML: {e}"),
        }])
    })?;
    let mut b = Builder::new();
    let Some(root) = doc.as_mapping() else {
        b.problem(
            None,
            "the document must be a map with decision, inputs, outputs and rules",
        );
        return Err(Problems(b.problems));
    };
    match root.get("decision").and_then(cell_text) {
        Some(id) => b.setting("decision", &id, key_line(text, "decision")),
        None => b.problem(
            key_line(text, "decision"),
            "the table needs `decision: <id>`",
        ),
    }
    for k in root.keys() {
        let key = k.as_str().unwrap_or_default();
        if !YAML_KEYS.contains(&key) {
            b.problem(
                key_line(text, key),
                format!(
                    "unknown key {key:?}; a decision table takes {}",
                    YAML_KEYS.join(", ")
                ),
            );
        }
    }
    for key in ["name", "hit_policy", "aggregation"] {
        if let Some(v) = root.get(key) {
            match cell_text(v) {
                Some(value) => b.setting(key, &value, key_line(text, key)),
                None => b.problem(key_line(text, key), format!("{key} must be text")),
            }
        }
    }
    let yaml_inputs = root.get("inputs").map(|v| yaml_inputs(&mut b, text, v));
    let yaml_outputs = root.get("outputs").map(|v| yaml_outputs(&mut b, text, v));
    match (root.get("rules"), root.get("table")) {
        (Some(_), Some(_)) => b.problem(
            key_line(text, "table"),
            "give the rules either as `rules:` or as `table:`, not both",
        ),
        (Some(rules), None) => {
            b.table.inputs = yaml_inputs.unwrap_or_default();
            b.table.outputs = yaml_outputs.unwrap_or_default();
            yaml_rules(&mut b, text, rules);
        }
        (None, Some(table)) => match table.as_str() {
            Some(csv_text) => {
                let offset = key_line(text, "table").unwrap_or(0);
                embedded_table(&mut b, csv_text, offset, yaml_inputs, yaml_outputs);
            }
            None => b.problem(
                key_line(text, "table"),
                "table must be CSV text (`table: |`)",
            ),
        },
        (None, None) => b.problem(None, "the table needs `rules:` (or `table:`)"),
    }
    if let Some(tests) = root.get("tests") {
        yaml_tests(&mut b, text, tests);
    }
    b.finish()
}

fn yaml_list<'a>(
    b: &mut Builder,
    text: &str,
    key: &str,
    v: &'a Yaml,
) -> Vec<(&'a Yaml, Option<u32>)> {
    let Some(items) = v.as_sequence() else {
        b.problem(key_line(text, key), format!("{key} must be a list"));
        return Vec::new();
    };
    let lines = item_lines(text, key);
    let line_of = |i: usize| lines.get(i).copied().or_else(|| key_line(text, key));
    items
        .iter()
        .enumerate()
        .map(|(i, item)| (item, line_of(i)))
        .collect()
}

/// Checks a map item's keys against `allowed`.
fn allowed(b: &mut Builder, map: &Mapping, what: &str, allowed: &[&str], line: Option<u32>) {
    for k in map.keys() {
        let key = k.as_str().unwrap_or_default();
        if !allowed.contains(&key) {
            b.problem(
                line,
                format!(
                    "unknown key {key:?} in {what}; it takes {}",
                    allowed.join(", ")
                ),
            );
        }
    }
}

fn text_of(
    b: &mut Builder,
    map: &Mapping,
    key: &str,
    what: &str,
    line: Option<u32>,
) -> Option<String> {
    let v = map.get(key)?;
    let text = cell_text(v).filter(|_| !v.is_null());
    if text.is_none() {
        b.problem(line, format!("{what}: {key} must be text"));
    }
    text
}

fn yaml_inputs(b: &mut Builder, text: &str, v: &Yaml) -> Vec<InputClause> {
    let mut inputs = Vec::new();
    for (n, (item, line)) in yaml_list(b, text, "inputs", v).into_iter().enumerate() {
        let what = format!("input {}", n + 1);
        let mut input = InputClause {
            id: format!("input{}", n + 1),
            label: None,
            expression: String::new(),
            type_ref: None,
        };
        if let Some(map) = item.as_mapping() {
            allowed(b, map, &what, &["label", "expression", "type", "id"], line);
            input.label = text_of(b, map, "label", &what, line);
            input.type_ref = text_of(b, map, "type", &what, line);
            if let Some(id) = text_of(b, map, "id", &what, line) {
                input.id = id;
            }
            match text_of(b, map, "expression", &what, line) {
                Some(e) => input.expression = e,
                None => b.problem(line, format!("{what} needs an expression")),
            }
        } else if let Some(e) = cell_text(item).filter(|e| !e.is_empty()) {
            input.expression = e;
        } else {
            b.problem(
                line,
                format!("{what} must be an expression or a map with one"),
            );
        }
        if let Some(l) = line {
            b.lines.insert(input.id.clone(), l);
        }
        inputs.push(input);
    }
    inputs
}

fn yaml_outputs(b: &mut Builder, text: &str, v: &Yaml) -> Vec<OutputClause> {
    let mut outputs = Vec::new();
    for (n, (item, line)) in yaml_list(b, text, "outputs", v).into_iter().enumerate() {
        let what = format!("output {}", n + 1);
        let mut output = OutputClause {
            id: format!("output{}", n + 1),
            name: String::new(),
            label: None,
            type_ref: None,
            values: Vec::new(),
        };
        if let Some(map) = item.as_mapping() {
            allowed(
                b,
                map,
                &what,
                &["name", "label", "type", "values", "id"],
                line,
            );
            output.label = text_of(b, map, "label", &what, line);
            output.type_ref = text_of(b, map, "type", &what, line);
            if let Some(id) = text_of(b, map, "id", &what, line) {
                output.id = id;
            }
            match text_of(b, map, "name", &what, line) {
                Some(name) => output.name = name,
                None => b.problem(line, format!("{what} needs a name")),
            }
            if let Some(values) = map.get("values") {
                output.values = yaml_values(b, values, &what, line);
            }
        } else if let Some(name) = cell_text(item).filter(|n| !n.is_empty()) {
            output.name = name;
        } else {
            b.problem(line, format!("{what} must be a name or a map with one"));
        }
        if let Some(l) = line {
            b.lines.insert(output.id.clone(), l);
        }
        outputs.push(output);
    }
    outputs
}

/// An output's values: cell literals (`'"big"'`), or YAML numbers and booleans.
fn yaml_values(b: &mut Builder, v: &Yaml, what: &str, line: Option<u32>) -> Vec<Value> {
    let items: Vec<&Yaml> = match v {
        Yaml::Sequence(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut values = Vec::new();
    for item in items {
        let parsed = match item {
            Yaml::String(s) => unary::parse_literals(s),
            Yaml::Number(_) | Yaml::Bool(_) => serde_json::to_value(item)
                .map(|v| vec![v])
                .map_err(|e| e.to_string()),
            _ => Err("values must be literals such as '\"big\"' or 3".to_string()),
        };
        match parsed {
            Ok(v) => values.extend(v),
            Err(m) => b.problem(line, format!("{what}: {m}")),
        }
    }
    values
}

fn yaml_rules(b: &mut Builder, text: &str, v: &Yaml) {
    let (n_in, n_out) = (b.table.inputs.len(), b.table.outputs.len());
    for (n, (item, line)) in yaml_list(b, text, "rules", v).into_iter().enumerate() {
        let mut rule = Rule {
            id: format!("rule{}", n + 1),
            description: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
        };
        let what = format!("rule {}", n + 1);
        let cells = |b: &mut Builder, v: Option<&Yaml>, part: &str| -> Vec<String> {
            let Some(items) = v.and_then(Yaml::as_sequence) else {
                b.problem(line, format!("{what}: {part} must be a list of cells"));
                return Vec::new();
            };
            items
                .iter()
                .filter_map(|c| {
                    let t = cell_text(c);
                    if t.is_none() {
                        b.problem(
                            line,
                            format!("{what}: a cell must be text, a number or a boolean"),
                        );
                    }
                    t
                })
                .collect()
        };
        if let Some(map) = item.as_mapping() {
            allowed(b, map, &what, &["when", "then", "description", "id"], line);
            rule.inputs = cells(b, map.get("when"), "when");
            rule.outputs = cells(b, map.get("then"), "then");
            rule.description = text_of(b, map, "description", &what, line);
            if let Some(id) = text_of(b, map, "id", &what, line) {
                rule.id = id;
            }
        } else {
            let mut row = cells(b, Some(item), "a rule");
            if row.len() != n_in + n_out {
                b.problem_at(
                    &rule.id,
                    line,
                    format!(
                        "{what} has {} cells; the table has {n_in} input(s) and {n_out} output(s)",
                        row.len()
                    ),
                );
                continue;
            }
            rule.outputs = row.split_off(n_in);
            rule.inputs = row;
        }
        if let Some(l) = line {
            b.lines.insert(rule.id.clone(), l);
        }
        b.table.rules.push(rule);
    }
}

fn yaml_tests(b: &mut Builder, text: &str, v: &Yaml) {
    for (n, (item, line)) in yaml_list(b, text, "tests", v).into_iter().enumerate() {
        let what = format!("test {}", n + 1);
        let Some(map) = item.as_mapping() else {
            b.problem(line, format!("{what} must be a map with input and expect"));
            continue;
        };
        allowed(b, map, &what, &["name", "input", "expect"], line);
        let name = text_of(b, map, "name", &what, line);
        let input = match map.get("input").map(serde_json::to_value) {
            Some(Ok(Value::Object(m))) => m,
            Some(Ok(Value::Null)) | None => Map::new(),
            Some(Ok(_)) => {
                b.problem(line, format!("{what}: input must be a map of variables"));
                continue;
            }
            Some(Err(e)) => {
                b.problem(line, format!("{what}: input is not JSON-like: {e}"));
                continue;
            }
        };
        let expect = match map.get("expect").map(serde_json::to_value) {
            Some(Ok(v)) => v,
            None => {
                b.problem(line, format!("{what} needs expect"));
                continue;
            }
            Some(Err(e)) => {
                b.problem(line, format!("{what}: expect is not JSON-like: {e}"));
                continue;
            }
        };
        b.table.tests.push(TestCase {
            name,
            input,
            expect,
        });
    }
}

/// Parses the CSV form, and compiles it.
pub fn parse_csv(text: &str) -> Result<DecisionTable, Problems> {
    csv::parse(text)
}

/// A YAML table's `table: |` CSV rules; the YAML's `inputs` and `outputs`, when given, must
/// match the header and add to it.
fn embedded_table(
    b: &mut Builder,
    text: &str,
    offset: u32,
    yaml_inputs: Option<Vec<InputClause>>,
    yaml_outputs: Option<Vec<OutputClause>>,
) {
    let records = match csv::read(text) {
        Ok(r) => r,
        Err((line, message)) => return b.problem(Some(line + offset), message),
    };
    if let Some(r) = records
        .iter()
        .find(|r| r.fields.first().is_some_and(|f| f.trim().starts_with('#')))
    {
        b.problem(
            Some(r.line + offset),
            "a YAML table's settings belong in the YAML, not in # lines of its table",
        );
        return;
    }
    let (inputs, outputs) = csv::rules(b, &records, offset);
    b.table.inputs = match yaml_inputs {
        Some(given) if given.len() != inputs.len() => {
            b.problem(
                None,
                format!(
                    "inputs lists {} column(s); the table's header has {}",
                    given.len(),
                    inputs.len()
                ),
            );
            given
        }
        Some(given) => {
            for (g, h) in given.iter().zip(&inputs) {
                if g.expression.trim() != h.expression.trim() {
                    b.problem_at(
                        &g.id,
                        None,
                        format!(
                            "input {:?} does not match the header's {:?}",
                            g.expression, h.expression
                        ),
                    );
                }
            }
            given
        }
        None => inputs,
    };
    b.table.outputs = match yaml_outputs {
        Some(given) if given.len() != outputs.len() => {
            b.problem(
                None,
                format!(
                    "outputs lists {} column(s); the table's header has {}",
                    given.len(),
                    outputs.len()
                ),
            );
            given
        }
        Some(given) => {
            for (g, h) in given.iter().zip(&outputs) {
                if g.name.trim() != h.name.trim() {
                    b.problem_at(
                        &g.id,
                        None,
                        format!(
                            "output {:?} does not match the header's {:?}",
                            g.name, h.name
                        ),
                    );
                }
            }
            given
        }
        None => outputs,
    };
}
