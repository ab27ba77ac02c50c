//! Decision tables: DMN's hit policies over inputs computed by CEL expressions, each rule's
//! cells DMN simple unary tests (`"gold","silver"`, `>= 1000`, `[1..10]`, `not("x")`, `-`) or a
//! CEL condition, each output cell a CEL expression (literals included).
//!
//! A table comes from DMN XML (1.1 to 1.5) as dmn-js and Camunda Modeler save it ([`dmn`]), or
//! from the compact YAML or CSV forms ([`table`]); each parser compiles what it read, so a bad
//! cell is reported with its source line. [`DecisionTable::compile`] checks every cell at
//! deploy time (every problem named by rule and column); [`CompiledTable::evaluate`] decides,
//! and says which rules matched and why; [`CompiledTable::run_tests`] runs the table's own test
//! cases (inputs → expected result), which the server runs before accepting a deployment.
//!
//! Files, one concept each: `unary` (an input cell), `compile` (checking and preparing a
//! table), `eval` (deciding, the hit policies, tests, explanations), `dmn`, `table` (YAML) and
//! `csv` (the CSV form and its reader).
//!
//! Like the rest of the crate, nothing here does I/O.

mod compile;
mod csv;
pub mod dmn;
mod eval;
pub mod table;
mod unary;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use eval::CompiledTable;

use crate::problem::Problems;

/// How a table combines the rules that match (DMN's hit policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HitPolicy {
    /// At most one rule may match; two matching is an error.
    #[default]
    Unique,
    /// The first matching rule, in rule order.
    First,
    /// The matching rule whose outputs come first in the outputs' value lists.
    Priority,
    /// Any matching rule: all that match must give the same outputs.
    Any,
    /// Every matching rule, in rule order, or one value aggregated from them.
    Collect,
    /// Every matching rule, in rule order.
    RuleOrder,
    /// Every matching rule, ordered by the outputs' value lists.
    OutputOrder,
}

/// What `collect` makes of its matches' single output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Their sum.
    Sum,
    /// How many matched (with a non-null output: empty cells are left out, as Camunda does).
    Count,
    /// The smallest.
    Min,
    /// The largest.
    Max,
}

/// One input column: a CEL expression over the variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputClause {
    /// Its id (the DMN element id, or generated).
    pub id: String,
    /// What people call it (shown in explanations); the expression when not given.
    pub label: Option<String>,
    /// The CEL expression computing the input value. A path to a variable the instance does
    /// not have (`customer.tier` without a `customer`) gives null, which only `-` and `null`
    /// cells match.
    pub expression: String,
    /// The declared type (`string`, `number`, `boolean`, `date`, …), informative.
    pub type_ref: Option<String>,
}

/// One output column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputClause {
    /// Its id (the DMN element id, or generated).
    pub id: String,
    /// The name the output takes in the result.
    pub name: String,
    /// What people call it.
    pub label: Option<String>,
    /// The declared type, informative.
    pub type_ref: Option<String>,
    /// Its possible values in priority order (`priority` and `output_order` rank by them).
    pub values: Vec<Value>,
}

/// One rule: a cell per input, a cell per output, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Its id (the DMN element id, or `rule{n}`).
    pub id: String,
    /// Its annotation.
    pub description: Option<String>,
    /// One unary test per input column (`-` or empty: any value).
    pub inputs: Vec<String>,
    /// One expression per output column (empty: null).
    pub outputs: Vec<String>,
}

/// A test case a table carries: inputs and the result expected of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCase {
    /// What it checks.
    #[serde(default)]
    pub name: Option<String>,
    /// The variables to decide on.
    pub input: Map<String, Value>,
    /// The expected result (as [`Evaluation::result`]; for a single output, its value or an
    /// object naming it).
    pub expect: Value,
}

/// A decision table as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionTable {
    /// The key processes name it by (`concord:decisionRef`, `decision:` in YAML).
    pub id: String,
    /// Its display name.
    pub name: Option<String>,
    /// How matching rules combine.
    pub hit_policy: HitPolicy,
    /// `collect` only: the aggregation, if any.
    pub aggregation: Option<Aggregation>,
    /// The input columns.
    pub inputs: Vec<InputClause>,
    /// The output columns (at least one).
    pub outputs: Vec<OutputClause>,
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// Its own test cases.
    pub tests: Vec<TestCase>,
}

/// A source's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionFormat {
    /// DMN XML (1.1 to 1.5 namespaces).
    Dmn,
    /// The YAML form.
    Yaml,
    /// The CSV form.
    Csv,
}

impl DecisionFormat {
    /// Its name (`dmn`, `yaml`, `csv`).
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionFormat::Dmn => "dmn",
            DecisionFormat::Yaml => "yaml",
            DecisionFormat::Csv => "csv",
        }
    }

    /// Guesses a source's format: XML starts with `<`; CSV's first line that is not a
    /// `#` comment has a comma and no `:`-ended YAML key; anything else is YAML.
    pub fn guess(source: &str) -> DecisionFormat {
        table::guess(source)
    }
}

/// Parses a source holding one or more tables (a DMN file may hold several decisions; the
/// YAML and CSV forms hold one). Every problem is named.
pub fn parse(source: &str, format: DecisionFormat) -> Result<Vec<DecisionTable>, Problems> {
    match format {
        DecisionFormat::Dmn => dmn::parse(source),
        DecisionFormat::Yaml => table::parse_yaml(source).map(|t| vec![t]),
        DecisionFormat::Csv => table::parse_csv(source).map(|t| vec![t]),
    }
}

/// A rule that matched, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Match {
    /// Its position, from 1.
    pub index: usize,
    /// Its id.
    pub rule_id: String,
    /// Its annotation.
    pub description: Option<String>,
    /// One line per input column that tested something (`-` cells are left out), e.g.
    /// `Amount = 1200 matches >= 1000`.
    pub why: Vec<String>,
    /// Its outputs, by name.
    pub outputs: Map<String, Value>,
}

/// A decision: the result and how it was reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The table's id.
    pub decision: String,
    /// The table's hit policy (the explanation names it).
    pub hit_policy: HitPolicy,
    /// The table's aggregation, under `collect`.
    pub aggregation: Option<Aggregation>,
    /// The result: for `unique`, `first`, `priority` and `any`, null when nothing matched, the
    /// output's value for a one-output table, else an object by output name; for `collect`
    /// without aggregation, `rule_order` and `output_order`, a list of those (empty when nothing
    /// matched); for `collect` with an aggregation, a number (`sum` and `count` of nothing are
    /// 0, `min` and `max` of nothing null).
    pub result: Value,
    /// The input values, by column label.
    pub inputs: Map<String, Value>,
    /// The rules that matched, in rule order (all of them, also under `first`'s and
    /// `priority`'s single result, with `chosen` naming the one taken).
    pub matched: Vec<Match>,
    /// Under `first`, `priority` and `any`: the index of the rule whose outputs were taken.
    pub chosen: Option<usize>,
}

impl Evaluation {
    /// The explanation as lines of text for a person: the hit policy, each matched rule and
    /// why, and the result.
    pub fn explain(&self) -> Vec<String> {
        eval::explain(self)
    }
}

/// A decision that could not be made: an input expression that failed, two rules matching
/// under `unique`, differing outputs under `any`, a non-number under `sum`, …
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("decision {decision:?}: {message}")]
pub struct DecisionError {
    /// The table's id.
    pub decision: String,
    /// What went wrong, naming the rules or the column at fault.
    pub message: String,
}

/// A test case that failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestFailure {
    /// The table's id.
    pub decision: String,
    /// The case's position, from 1.
    pub case: usize,
    /// Its name.
    pub name: Option<String>,
    /// What was expected.
    pub expected: Value,
    /// What the table gave, or the error text.
    pub got: Value,
}

/// A test case run: what it expected, what the table gave, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestOutcome {
    /// The table's id.
    pub decision: String,
    /// The case's position, from 1.
    pub case: usize,
    /// Its name.
    pub name: Option<String>,
    /// Whether the table gave what was expected.
    pub passed: bool,
    /// What was expected.
    pub expected: Value,
    /// What the table gave, or the error text.
    pub got: Value,
    /// How the table decided, as lines of text (none when it could not decide).
    pub explanation: Vec<String>,
}

impl DecisionTable {
    /// Checks and prepares the table: every input expression, unary test and output
    /// expression must parse, every rule must have one cell per column, `aggregation` only
    /// with `collect`, at least one output, output names unique, `priority`/`output_order`
    /// need value lists, and so on. Every problem is named by rule (id and position) and
    /// column.
    pub fn compile(&self) -> Result<CompiledTable, Problems> {
        compile::compile(self)
    }
}
