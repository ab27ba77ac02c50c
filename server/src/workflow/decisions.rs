//! Decision tables: deployed (`workflows.manage`) from DMN XML as dmn-js and Camunda Modeler
//! save it, or from the YAML or CSV forms, in immutable versions under their key, like process
//! models and forms. A deployment is refused with every problem named (rule and column) and when
//! any of the table's own test cases, or those sent with it, fails.
//!
//! A business-rule task naming a table (`concord:decisionRef`, `decision:` in YAML) queues a
//! `decision` job; the runner decides with the table's latest version and feeds the result
//! back, with an explanation (the version, the rules that matched and why) that goes into the
//! instance's history and a `workflow.decision` audit entry. A decision that cannot be made
//! (no such table, two rules under `unique`, an input that does not evaluate) stops the task on
//! an incident; retrying it decides again, with the table as deployed by then.

use std::sync::Arc;

use chrono::Utc;
use concord_workflow::command::Command;
use concord_workflow::decision::{
    self, CompiledTable, DecisionFormat, DecisionTable, Evaluation, TestCase,
};
use concord_workflow::problem::{Problem, Problems};
use concord_workflow::Input;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::{invalid_model, WorkflowService, MAX_SOURCE_BYTES};
use crate::audit::{Event, Outcome};
use crate::domain::WorkspaceId;
use crate::error::Error;
use crate::rbac::{Action, Actor};
use crate::store::workflows::{self as wf, DecisionRecord, JobRecord};
use crate::store::{Conn, Tx};

/// The most test cases one deployment runs (the source's and those sent with it).
const MAX_TESTS: usize = 1000;
/// The most tables one source holds.
const MAX_TABLES: usize = 50;
/// The most rules one table has.
const MAX_RULES: usize = 5000;
/// The most columns (inputs and outputs) one table has.
const MAX_COLUMNS: usize = 100;
/// The most problems one refusal lists.
const MAX_PROBLEMS: usize = 100;

/// A decision table's source format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionSourceFormat {
    /// DMN XML (1.1 to 1.5), as dmn-js and Camunda Modeler save it.
    Dmn,
    /// Concord's YAML form.
    Yaml,
    /// A spreadsheet's CSV export with `in:` and `out:` column headers.
    Csv,
}

impl From<DecisionSourceFormat> for DecisionFormat {
    fn from(f: DecisionSourceFormat) -> DecisionFormat {
        match f {
            DecisionSourceFormat::Dmn => DecisionFormat::Dmn,
            DecisionSourceFormat::Yaml => DecisionFormat::Yaml,
            DecisionSourceFormat::Csv => DecisionFormat::Csv,
        }
    }
}

/// Decision tables to deploy: a source holding one or more (a DMN file may hold several).
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"source": "decision: discount\nhit_policy: first\ninputs: [tier]\noutputs: [discount]\nrules:\n  - ['\"gold\"', '0.1']\n  - ['-', '0']\ntests:\n  - input: {tier: gold}\n    expect: 0.1\n"}))]
pub struct NewDecision {
    /// The source.
    pub source: String,
    /// Its format; guessed from the source when left out (XML is DMN, a comma-separated
    /// header row is CSV, anything else YAML).
    #[serde(default)]
    pub format: Option<DecisionSourceFormat>,
    /// Test cases beside those the source carries (DMN files carry none); each must pass for
    /// the deployment to be accepted.
    #[serde(default)]
    pub tests: Vec<NewDecisionTest>,
}

/// A test case sent with a deployment.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDecisionTest {
    /// The table it tests; may be left out when the source holds one.
    #[serde(default)]
    pub decision: Option<String>,
    /// What it checks.
    #[serde(default)]
    pub name: Option<String>,
    /// The variables to decide on.
    #[schema(value_type = Object)]
    pub input: Map<String, Value>,
    /// The result expected: the output's value for a one-output table (or an object naming
    /// it), an object by output name, a list for multiple-result hit policies, a number for
    /// an aggregation.
    #[schema(value_type = Object)]
    pub expect: Value,
}

/// A deployed decision table version.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionView {
    /// Its key (business-rule tasks name it).
    pub key: String,
    /// Its version (1, 2, …).
    pub version: i64,
    /// Its display name.
    pub name: Option<String>,
    /// The source's format.
    pub format: String,
    /// `unique`, `first`, `priority`, `any`, `collect`, `rule_order` or `output_order`.
    pub hit_policy: String,
    /// `collect`'s aggregation: `sum`, `count`, `min` or `max`.
    pub aggregation: Option<String>,
    /// The input columns' labels.
    pub inputs: Vec<String>,
    /// The outputs' names.
    pub outputs: Vec<String>,
    /// How many rules it has.
    pub rules: usize,
    /// How many test cases it passed at deployment.
    pub tests: usize,
    /// When it was deployed.
    pub deployed_at: chrono::DateTime<Utc>,
}

/// What trying a decision source out found: its problems, and each test case run.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionTestReport {
    /// True when the tables have no problem and every case passed.
    pub ok: bool,
    /// Every problem of the source, named by decision, rule and column (as a deployment would
    /// be refused with).
    pub problems: Vec<DecisionProblem>,
    /// Every test case, in order: the source's own and those sent.
    pub cases: Vec<DecisionCaseResult>,
}

/// A problem of a decision source.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionProblem {
    /// The decision (or rule) at fault.
    pub element: Option<String>,
    /// The source line, when known.
    pub line: Option<u32>,
    /// What is wrong.
    pub message: String,
}

/// One test case run against a table.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionCaseResult {
    /// The table it ran against.
    pub decision: String,
    /// Its position among the table's cases, from 1.
    pub case: usize,
    /// Its name (`test case N` when it has none).
    pub name: String,
    /// Whether the table gave what was expected.
    pub passed: bool,
    /// What was expected.
    #[schema(value_type = Object)]
    pub expected: Value,
    /// What the table gave (the error's text when it could not decide).
    #[schema(value_type = Object)]
    pub actual: Value,
    /// How the table decided, line by line.
    pub explanation: Vec<String>,
}

/// The tables one deployment made.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionDeployment {
    /// One per table in the source.
    pub decisions: Vec<DecisionView>,
}

/// The latest version of each of a workspace's decision tables.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionList {
    /// By key.
    pub decisions: Vec<DecisionView>,
}

/// Variables to decide on with a deployed table.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"variables": {"tier": "gold", "amount": 1200}}))]
pub struct DecideRequest {
    /// The variables, as an instance would have them.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: Map<String, Value>,
    /// The version to decide with (default: the latest).
    #[serde(default)]
    pub version: Option<i64>,
}

/// A rule that matched, and why.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MatchedRule {
    /// Its position in the table, from 1.
    pub index: usize,
    /// Its id.
    pub rule_id: String,
    /// Its annotation.
    pub description: Option<String>,
    /// One line per input it tested, e.g. `Amount = 1200 matches >= 1000`.
    pub why: Vec<String>,
    /// Its outputs, by name.
    #[schema(value_type = Object)]
    pub outputs: Map<String, Value>,
}

/// A decision: the result, and how the table reached it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecisionOutcome {
    /// The table's key.
    pub decision: String,
    /// The version that decided.
    pub version: i64,
    /// The table's hit policy.
    pub hit_policy: String,
    /// The result (see the hit policies: a value, an object by output name, a list, or an
    /// aggregated number; null when no rule matched a single-result table).
    #[schema(value_type = Object)]
    pub result: Value,
    /// The input values, by column label.
    #[schema(value_type = Object)]
    pub inputs: Map<String, Value>,
    /// The rules that matched, in table order.
    pub matched: Vec<MatchedRule>,
    /// Under `first`, `priority` and `any`: the position of the rule whose outputs were taken.
    pub chosen: Option<usize>,
    /// The explanation as lines of text.
    pub explanation: Vec<String>,
}

impl DecisionOutcome {
    fn of(e: Evaluation, version: i64, table: &DecisionTable) -> DecisionOutcome {
        let explanation = e.explain();
        DecisionOutcome {
            decision: e.decision,
            version,
            hit_policy: policy_name(table),
            result: e.result,
            inputs: e.inputs,
            matched: e
                .matched
                .into_iter()
                .map(|m| MatchedRule {
                    index: m.index,
                    rule_id: m.rule_id,
                    description: m.description,
                    why: m.why,
                    outputs: m.outputs,
                })
                .collect(),
            chosen: e.chosen,
            explanation,
        }
    }
}

fn policy_name(t: &DecisionTable) -> String {
    serde_json::to_value(t.hit_policy)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn view(record: &DecisionRecord, table: &DecisionTable) -> DecisionView {
    DecisionView {
        key: record.decision_key.clone(),
        version: record.version,
        name: table.name.clone(),
        format: record.format.clone(),
        hit_policy: policy_name(table),
        aggregation: table.aggregation.and_then(|a| {
            serde_json::to_value(a)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
        }),
        inputs: table
            .inputs
            .iter()
            .map(|i| i.label.clone().unwrap_or_else(|| i.expression.clone()))
            .collect(),
        outputs: table.outputs.iter().map(|o| o.name.clone()).collect(),
        rules: table.rules.len(),
        tests: table.tests.len(),
        deployed_at: record.deployed_at,
    }
}

fn is_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 100
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A source's tables with their format, or every problem found in them.
type Checked = Result<(DecisionFormat, Vec<DecisionTable>), Problems>;

/// A source's tables, parsed and checked against the limits, with the test cases sent beside
/// it added to them; or every problem found. Refused outright (the outer error) when the
/// source or its test cases are too many to read at all.
fn parse_checked(new: &NewDecision) -> Result<Checked, Error> {
    if new.source.len() > MAX_SOURCE_BYTES {
        return Err(Error::TooLarge {
            code: "decision_too_large",
            message: format!("a decision source may be at most {MAX_SOURCE_BYTES} bytes"),
            limit: MAX_SOURCE_BYTES as u64,
        });
    }
    if new.tests.len() > MAX_TESTS {
        return Err(crate::domain::ParseError::new(
            "tests",
            format!("at most {MAX_TESTS} test cases per deployment"),
        )
        .into());
    }
    let format = new
        .format
        .map(DecisionFormat::from)
        .unwrap_or_else(|| DecisionFormat::guess(&new.source));
    let mut tables = match decision::parse(&new.source, format) {
        Ok(t) => t,
        Err(p) => return Ok(Err(p)),
    };
    let mut problems = Vec::new();
    if tables.len() > MAX_TABLES {
        problems.push(Problem {
            element: None,
            line: None,
            message: format!("a source holds at most {MAX_TABLES} decisions"),
        });
    }
    let mut seen = std::collections::HashSet::new();
    for t in &tables {
        if t.rules.len() > MAX_RULES {
            problems.push(Problem::at(
                &t.id,
                None,
                format!("a table has at most {MAX_RULES} rules"),
            ));
        }
        if t.inputs.len() + t.outputs.len() > MAX_COLUMNS {
            problems.push(Problem::at(
                &t.id,
                None,
                format!("a table has at most {MAX_COLUMNS} columns"),
            ));
        }
        if !is_key(&t.id) {
            problems.push(Problem::at(
                &t.id,
                None,
                "a decision's id is 1 to 100 letters, digits, _, - or .",
            ));
        }
        if !seen.insert(t.id.clone()) {
            problems.push(Problem::at(&t.id, None, "two decisions have this id"));
        }
    }
    for (n, test) in new.tests.iter().enumerate() {
        let target = match &test.decision {
            Some(d) => tables.iter_mut().find(|t| &t.id == d),
            None if tables.len() == 1 => tables.first_mut(),
            None => None,
        };
        match target {
            Some(t) => t.tests.push(TestCase {
                name: test.name.clone(),
                input: test.input.clone(),
                expect: test.expect.clone(),
            }),
            None => problems.push(Problem {
                element: test.decision.clone(),
                line: None,
                message: format!(
                    "test case {}: {}",
                    n + 1,
                    match &test.decision {
                        Some(d) => format!("the source has no decision {d:?}"),
                        None => "name the decision it tests (the source holds several)".into(),
                    }
                ),
            }),
        }
    }
    let total_tests: usize = tables.iter().map(|t| t.tests.len()).sum();
    if total_tests > MAX_TESTS {
        problems.push(Problem {
            element: None,
            line: None,
            message: format!("a deployment runs at most {MAX_TESTS} test cases"),
        });
    }
    if !problems.is_empty() {
        return Ok(Err(Problems(problems)));
    }
    Ok(Ok((format, tables)))
}

/// Parses, checks and tests a deployment's tables, before anything is written. Every problem
/// of every table is named.
fn prepare(new: &NewDecision) -> Result<(DecisionFormat, Vec<DecisionTable>), Error> {
    let (format, tables) = parse_checked(new)?.map_err(|p| invalid("invalid_decision", p))?;
    let mut problems = Vec::new();
    let mut failures = Vec::new();
    for t in &tables {
        let compiled = match t.compile() {
            Ok(c) => c,
            Err(p) => {
                problems.extend(p.0);
                continue;
            }
        };
        for f in compiled.run_tests() {
            failures.push(Problem::at(
                &f.decision,
                None,
                format!(
                    "test case {}{}: expected {}, got {}",
                    f.case,
                    f.name.map(|n| format!(" ({n})")).unwrap_or_default(),
                    f.expected,
                    f.got
                ),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(invalid("invalid_decision", Problems(problems)));
    }
    if !failures.is_empty() {
        return Err(invalid("decision_tests_failed", Problems(failures)));
    }
    Ok((format, tables))
}

/// Checks a source's tables and runs every test case (the source's and those sent), without
/// deploying anything: each case with what it gave and why.
fn try_out(new: &NewDecision) -> Result<DecisionTestReport, Error> {
    let mut problems = Vec::new();
    let mut cases = Vec::new();
    match parse_checked(new)? {
        Err(p) => problems = p.0,
        Ok((_, tables)) => {
            for t in &tables {
                match t.compile() {
                    Ok(compiled) => {
                        cases.extend(
                            compiled
                                .run_cases()
                                .into_iter()
                                .map(|c| DecisionCaseResult {
                                    name: c.name.unwrap_or_else(|| format!("test case {}", c.case)),
                                    decision: c.decision,
                                    case: c.case,
                                    passed: c.passed,
                                    expected: c.expected,
                                    actual: c.got,
                                    explanation: c.explanation,
                                }),
                        )
                    }
                    Err(p) => problems.extend(p.0),
                }
            }
        }
    }
    let problems: Vec<DecisionProblem> = truncated(Problems(problems))
        .0
        .into_iter()
        .map(|p| DecisionProblem {
            element: p.element,
            line: p.line,
            message: p.message,
        })
        .collect();
    Ok(DecisionTestReport {
        ok: problems.is_empty() && cases.iter().all(|c| c.passed),
        problems,
        cases,
    })
}

/// At most [`MAX_PROBLEMS`] problems, and a last one saying how many more there were.
fn truncated(mut problems: Problems) -> Problems {
    if problems.0.len() > MAX_PROBLEMS {
        let more = problems.0.len() - MAX_PROBLEMS;
        problems.0.truncate(MAX_PROBLEMS);
        problems.0.push(Problem {
            element: None,
            line: None,
            message: format!("and {more} more"),
        });
    }
    problems
}

fn invalid(code: &'static str, problems: Problems) -> Error {
    match invalid_model(truncated(problems)) {
        Error::InvalidModel {
            message, problems, ..
        } => Error::InvalidModel {
            code,
            message: message.replacen("the model has", "the decision has", 1),
            problems,
        },
        other => other,
    }
}

impl WorkflowService {
    /// Deploys decision tables (`workflows.manage`), each as the next version of its key,
    /// after checking every cell and running every test case. Audited as
    /// `workflow.decision_deployed`, one entry per table.
    #[tracing::instrument(skip(self, actor, new), fields(actor = ?actor.user_id()))]
    pub async fn deploy_decision(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        new: NewDecision,
    ) -> Result<DecisionDeployment, Error> {
        // Only operators get their sources parsed and their test cases run, off the async
        // workers: a table's cells and tests may cost real time.
        {
            let mut conn = self.store().reader().await?;
            self.authorize_read(&mut conn.conn(), actor, Action::ManageWorkflows, workspace)
                .await?;
        }
        let checked = new.clone();
        let (format, tables) = tokio::task::spawn_blocking(move || prepare(&checked))
            .await
            .map_err(|e| Error::Internal(format!("checking a decision: {e}")))??;
        let this = self.clone();
        let actor = actor.clone();
        self.store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.authorize_in(tx, &actor, Action::ManageWorkflows, workspace)
                        .await?;
                    let mut out = Vec::with_capacity(tables.len());
                    for table in &tables {
                        let version = wf::decision_of(&mut tx.conn(), workspace, &table.id, None)
                            .await?
                            .map_or(1, |d| d.version + 1);
                        let id = Uuid::now_v7();
                        let row = id.to_string();
                        let definition = serde_json::to_vec(table)
                            .map_err(|e| Error::Internal(format!("decision to JSON: {e}")))?;
                        let source = this
                            .seal(
                                tx,
                                workspace,
                                "workflow_decisions",
                                &row,
                                "source",
                                new.source.as_bytes(),
                            )
                            .await?;
                        let definition = this
                            .seal(
                                tx,
                                workspace,
                                "workflow_decisions",
                                &row,
                                "definition",
                                &definition,
                            )
                            .await?;
                        let record = DecisionRecord {
                            id,
                            workspace_id: workspace,
                            decision_key: table.id.clone(),
                            version,
                            format: format.as_str().to_owned(),
                            source,
                            definition,
                            deployed_by: actor.user_id(),
                            deployed_at: Utc::now(),
                        };
                        wf::insert_decision(&mut tx.conn(), &record).await?;
                        let event =
                            Event::by(&actor, "workflow.decision_deployed", Outcome::Allowed)
                                .target("workflow_decision", id)
                                .workspace(workspace)
                                .details(json!({
                                    "key": table.id,
                                    "version": version,
                                    "format": format.as_str(),
                                    "rules": table.rules.len(),
                                    "tests": table.tests.len(),
                                }));
                        this.auditor().record(tx, event).await?;
                        out.push(view(&record, table));
                    }
                    Ok(DecisionDeployment { decisions: out })
                })
            })
            .await
    }

    /// Checks decision tables and runs their test cases without deploying them
    /// (`workflows.manage`), for an editor's "run tests". Nothing is written.
    #[tracing::instrument(skip(self, actor, new), fields(actor = ?actor.user_id()))]
    pub async fn test_decision(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        new: NewDecision,
    ) -> Result<DecisionTestReport, Error> {
        {
            let mut conn = self.store().reader().await?;
            self.authorize_read(&mut conn.conn(), actor, Action::ManageWorkflows, workspace)
                .await?;
        }
        tokio::task::spawn_blocking(move || try_out(&new))
            .await
            .map_err(|e| Error::Internal(format!("testing a decision: {e}")))?
    }

    /// The latest version of each of the workspace's decision tables (`workflows.start`).
    pub async fn decisions(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
    ) -> Result<DecisionList, Error> {
        let mut conn = self.store().reader().await?;
        self.authorize_read(&mut conn.conn(), actor, Action::StartWorkflows, workspace)
            .await?;
        let mut decisions = Vec::new();
        for r in wf::decisions(&mut conn.conn(), workspace).await? {
            let table = self.compiled(&mut conn.conn(), &r).await?;
            decisions.push(view(&r, table.table()));
        }
        Ok(DecisionList { decisions })
    }

    /// A decision table's source as deployed (`workflows.manage`: tables hold business
    /// rules), with its format.
    pub async fn decision_source(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        key: &str,
        version: Option<i64>,
    ) -> Result<(String, String), Error> {
        let mut conn = self.store().reader().await?;
        self.authorize_read(&mut conn.conn(), actor, Action::ManageWorkflows, workspace)
            .await?;
        let record = wf::decision_of(&mut conn.conn(), workspace, key, version)
            .await?
            .ok_or(Error::NotFound("decision"))?;
        let source = self
            .open(
                &mut conn.conn(),
                workspace,
                "workflow_decisions",
                &record.id.to_string(),
                "source",
                &record.source,
            )
            .await?;
        let source = String::from_utf8(source)
            .map_err(|_| Error::Internal("a deployed decision source is not UTF-8".into()))?;
        Ok((record.format, source))
    }

    /// Decides with a deployed table (`workflows.manage`), without an instance: the result
    /// and the rules that matched, as a business-rule task would get them. Not audited (it
    /// changes nothing); a decision that cannot be made is refused with the reason.
    pub async fn decide(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        key: &str,
        request: DecideRequest,
    ) -> Result<DecisionOutcome, Error> {
        let variables = super::variables("variables", Some(request.variables))?;
        let mut conn = self.store().reader().await?;
        self.authorize_read(&mut conn.conn(), actor, Action::ManageWorkflows, workspace)
            .await?;
        let record = wf::decision_of(&mut conn.conn(), workspace, key, request.version)
            .await?
            .ok_or(Error::NotFound("decision"))?;
        let table = self.compiled(&mut conn.conn(), &record).await?;
        let evaluation = table.evaluate(&variables).map_err(|e| {
            Error::refused(
                "decision_failed",
                format!("the decision failed: {}", e.message),
            )
        })?;
        Ok(DecisionOutcome::of(
            evaluation,
            record.version,
            table.table(),
        ))
    }

    /// The compiled table of a deployed version (cached: versions never change).
    async fn compiled(
        &self,
        conn: &mut Conn<'_>,
        record: &DecisionRecord,
    ) -> Result<Arc<CompiledTable>, Error> {
        if let Some(t) = self.cached_decision(record.id) {
            return Ok(t);
        }
        let table: DecisionTable = self
            .open_json(
                conn,
                record.workspace_id,
                "workflow_decisions",
                &record.id.to_string(),
                "definition",
                &record.definition,
            )
            .await?;
        let compiled = Arc::new(table.compile().map_err(|p| {
            Error::Internal(format!("a deployed decision no longer compiles: {p}"))
        })?);
        self.cache_decision(record.id, compiled.clone());
        Ok(compiled)
    }

    /// Runs a `decision` job: decides with the latest version of the table (outside the
    /// write, on a reader), then, in one write, feeds the result (or the failure) to the
    /// instance with a `workflow.decision` audit entry, if the instance still waits for it.
    pub(super) async fn run_decision(
        &self,
        job: &JobRecord,
        command: Command,
    ) -> Result<(), Error> {
        let Command::EvaluateDecision {
            request_id,
            element,
            decision_ref,
            variables,
        } = command
        else {
            return self.finish(job, None).await;
        };
        let Some(instance) = job.instance_id else {
            return self.finish(job, None).await;
        };
        let ws = job.workspace_id;
        let table = {
            let mut conn = self.store().reader().await?;
            match wf::decision_of(&mut conn.conn(), ws, &decision_ref, None).await? {
                Some(d) => Some((self.compiled(&mut conn.conn(), &d).await?, d.version)),
                None => None,
            }
        };
        let decided = match table {
            None => Err((None, format!("decision {decision_ref:?} is not deployed"))),
            Some((table, version)) => tokio::task::spawn_blocking(move || {
                table
                    .evaluate(&variables)
                    .map(|e| DecisionOutcome::of(e, version, table.table()))
                    .map_err(|e| (Some(version), e.message))
            })
            .await
            .map_err(|e| Error::Internal(format!("deciding: {e}")))?,
        };
        let this = self.clone();
        let id = job.id.clone();
        self.store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    if !wf::delete_job(&mut tx.conn(), &id).await? {
                        return Ok(());
                    }
                    let Some(record) = wf::instance(&mut tx.conn(), instance).await? else {
                        return Ok(());
                    };
                    if record.status != "running" {
                        return Ok(());
                    }
                    let actor = Actor::system();
                    // The audit entry names the table, its version and the rules that matched;
                    // the values they matched on stay in the instance's sealed history.
                    let (input, outcome, details) = match decided {
                        Ok(outcome) => {
                            let details = json!({
                                "decision": decision_ref,
                                "version": outcome.version,
                                "element": element,
                                "process_id": record.process_id,
                                "matched": outcome.matched.iter().map(|m| json!({
                                    "index": m.index,
                                    "rule_id": m.rule_id,
                                })).collect::<Vec<_>>(),
                                "chosen": outcome.chosen,
                            });
                            let explanation = json!({
                                "version": outcome.version,
                                "hit_policy": outcome.hit_policy,
                                "matched": outcome.matched,
                                "chosen": outcome.chosen,
                                "inputs": outcome.inputs,
                                "explanation": outcome.explanation,
                            });
                            (
                                Input::DecisionEvaluated {
                                    request_id,
                                    result: outcome.result,
                                    explanation: Some(explanation),
                                },
                                Outcome::Allowed,
                                details,
                            )
                        }
                        Err((version, error)) => (
                            Input::DecisionFailed { request_id, error },
                            Outcome::Failed,
                            json!({"decision": decision_ref, "version": version,
                                   "element": element, "process_id": record.process_id}),
                        ),
                    };
                    if this.try_handle_in(tx, &actor, &record, input).await? {
                        let event = Event::by(&actor, "workflow.decision", outcome)
                            .target("workflow_instance", instance)
                            .workspace(ws)
                            .details(details);
                        this.auditor().record(tx, event).await?;
                    }
                    Ok::<_, Error>(())
                })
            })
            .await?;
        self.wake();
        Ok(())
    }
}

/// What a member who is not an operator sees of a decision in an instance's history: the
/// table's version and how many rules matched, not the rules' text or the values they tested
/// (tables are operators' to read).
pub(super) fn redact_explanations(view: &mut super::InstanceView) {
    for step in &mut view.history {
        if step.event.get("type").and_then(Value::as_str) != Some("decision_evaluated") {
            continue;
        }
        if let Some(event) = step.event.as_object_mut() {
            let summary = event.get("explanation").map(|e| {
                json!({
                    "version": e.get("version"),
                    "matched": e.get("matched").and_then(Value::as_array).map_or(0, Vec::len),
                })
            });
            if let Some(summary) = summary {
                event.insert("explanation".into(), summary);
            }
        }
    }
}
