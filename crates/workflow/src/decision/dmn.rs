//! Reading DMN XML (1.1 to 1.5) into [`DecisionTable`]s, as dmn-js and Camunda Modeler save it.
//!
//! A `definitions` root holds `decision`s, each with one `decisionTable`: its `input`s
//! (`inputExpression` and its `text`), `output`s (`outputValues` giving a priority order) and
//! `rule`s (`description`, `inputEntry`, `outputEntry`). A decision's `id` is the key processes
//! name it by. The diagram (DMNDI), `inputData`, `knowledgeSource`, `textAnnotation`,
//! `association`, `extensionElements` and other vendors' attributes are ignored.
//!
//! Refused, with the element's id, its line and why: decisions that are not tables
//! (`literalExpression`, …), `businessKnowledgeModel`s, decisions requiring other decisions
//! (`requiredDecision`) or knowledge models, an expression language other than FEEL or CEL,
//! `camunda:inputVariable`, and cells that are neither unary tests nor CEL (the tables are
//! compiled here).

use roxmltree::{Document, Node};
use std::collections::{BTreeSet, HashMap};

use super::{compile, table, unary, DecisionTable, HitPolicy, InputClause, OutputClause, Rule};
use crate::problem::{Problem, Problems};

/// The DMN model namespaces read: 1.1, 1.2, 1.3, 1.4 and 1.5.
pub const DMN_NAMESPACES: &[&str] = &[
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "https://www.omg.org/spec/DMN/20211108/MODEL/",
    "https://www.omg.org/spec/DMN/20230324/MODEL/",
];

/// Parses DMN XML: one table per decision. Every problem is named by element and line.
pub fn parse(xml: &str) -> Result<Vec<DecisionTable>, Problems> {
    let doc = Document::parse(xml).map_err(|e| {
        Problems(vec![Problem {
            element: None,
            line: Some(e.pos().row),
            message: format!("not well-formed XML: {e}"),
        }])
    })?;
    let root = doc.root_element();
    let ns = root.tag_name().namespace().unwrap_or_default();
    if root.tag_name().name() != "definitions" || !DMN_NAMESPACES.contains(&ns) {
        return Err(Problems(vec![Problem {
            element: None,
            line: Some(1),
            message: format!(
                "not DMN: the root must be a definitions element in a DMN 1.1 to 1.5 namespace, not {:?} in {ns:?}",
                root.tag_name().name()
            ),
        }]));
    }
    let mut p = Parser {
        doc: &doc,
        ns,
        problems: Vec::new(),
        lines: HashMap::new(),
    };
    p.language(root);
    let mut tables = Vec::new();
    for child in p.children(root) {
        match child.tag_name().name() {
            "decision" => tables.extend(p.decision(child)),
            "inputData" | "knowledgeSource" | "textAnnotation" | "association" | "extensionElements"
            | "description" | "group" => {}
            "businessKnowledgeModel" => p.refuse(
                child,
                "business knowledge models are not supported; write the logic into the decision table",
            ),
            other => p.refuse(
                child,
                format!("{other} is not supported; a DMN file holds decision tables (with input data, knowledge sources, annotations and the diagram)"),
            ),
        }
    }
    let mut ids = BTreeSet::new();
    for t in &tables {
        if !ids.insert(t.id.clone()) {
            let line = p.lines.get(&t.id).copied();
            p.problems
                .push(Problem::at(&t.id, line, "two decisions have this id"));
        }
    }
    if tables.is_empty() && p.problems.is_empty() {
        p.problems.push(Problem {
            element: None,
            line: Some(1),
            message: "the file has no decision".into(),
        });
    }
    for t in &tables {
        compile::check_parsed(t, &p.lines, &mut p.problems);
    }
    if p.problems.is_empty() {
        Ok(tables)
    } else {
        Err(Problems(p.problems))
    }
}

struct Parser<'a, 'i> {
    doc: &'a Document<'i>,
    /// The file's DMN namespace.
    ns: &'a str,
    problems: Vec<Problem>,
    /// The line of each decision, rule and column, by id.
    lines: HashMap<String, u32>,
}

fn id_of(n: Node) -> String {
    n.attribute("id").unwrap_or_default().to_string()
}

/// A name for a node in problems: its id, or its tag when it has none.
fn element_of(n: Node) -> String {
    n.attribute("id")
        .unwrap_or_else(|| n.tag_name().name())
        .to_string()
}

/// Whether an expression language is FEEL or CEL.
fn supported_language(language: &str) -> bool {
    let l = language.trim().to_lowercase();
    l.contains("feel") || l == "cel" || l.contains("cel-spec") || l.ends_with("/cel")
}

impl<'a, 'i> Parser<'a, 'i> {
    fn is_dmn(&self, n: &Node) -> bool {
        n.is_element() && n.tag_name().namespace() == Some(self.ns)
    }

    /// A node's child elements in the DMN namespace (others are extensions or the diagram).
    fn children(&self, n: Node<'a, 'i>) -> Vec<Node<'a, 'i>> {
        n.children().filter(|c| self.is_dmn(c)).collect()
    }

    fn line(&self, n: Node) -> u32 {
        self.doc.text_pos_at(n.range().start).row
    }

    fn refuse(&mut self, n: Node, message: impl Into<String>) {
        let line = self.line(n);
        self.problems
            .push(Problem::at(&element_of(n), Some(line), message));
    }

    /// Refuses an `expressionLanguage` other than FEEL or CEL.
    fn language(&mut self, n: Node) {
        if let Some(l) = n.attribute("expressionLanguage") {
            if !supported_language(l) {
                self.refuse(
                    n,
                    format!("expression language {l:?} is not supported; cells are FEEL unary tests or CEL"),
                );
            }
        }
    }

    /// A child `text`'s content, checking the node's language.
    fn text(&mut self, n: Node) -> String {
        self.language(n);
        self.children(n)
            .into_iter()
            .find(|c| c.tag_name().name() == "text")
            .and_then(|t| t.text())
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    fn decision(&mut self, n: Node<'a, 'i>) -> Option<DecisionTable> {
        let id = id_of(n);
        if id.is_empty() {
            self.refuse(n, "a decision needs an id");
        }
        self.lines.insert(id.clone(), self.line(n));
        let mut table = None;
        let mut refused = false;
        for child in self.children(n) {
            match child.tag_name().name() {
                "decisionTable" if table.is_none() => table = Some(child),
                "informationRequirement" => {
                    for required in self.children(child) {
                        if required.tag_name().name() == "requiredDecision" {
                            let href = required.attribute("href").unwrap_or_default();
                            let line = self.line(required);
                            self.problems.push(Problem::at(
                                &id,
                                Some(line),
                                format!("decision {id} requires decision {}; decisions that require other decisions are not supported", href.trim_start_matches('#')),
                            ));
                            refused = true;
                        }
                    }
                }
                "knowledgeRequirement" => {
                    let line = self.line(child);
                    self.problems.push(Problem::at(
                        &id,
                        Some(line),
                        "decisions that require business knowledge models are not supported",
                    ));
                    refused = true;
                }
                "authorityRequirement"
                | "description"
                | "extensionElements"
                | "variable"
                | "question"
                | "allowedAnswers" => {}
                other => {
                    let line = self.line(child);
                    self.problems.push(Problem::at(
                        &id,
                        Some(line),
                        format!("decision {id} is a {other}; only decision tables are supported"),
                    ));
                    refused = true;
                }
            }
        }
        let Some(t) = table else {
            if !refused {
                self.refuse(n, format!("decision {id} has no decision table"));
            }
            return None;
        };
        let table = self.decision_table(t, id, n.attribute("name"));
        (!refused).then_some(table)
    }

    fn decision_table(&mut self, n: Node<'a, 'i>, id: String, name: Option<&str>) -> DecisionTable {
        self.language(n);
        let hit_policy = match n.attribute("hitPolicy") {
            None => HitPolicy::Unique,
            Some(p) => table::hit_policy(p).unwrap_or_else(|| {
                self.refuse(n, format!("unknown hitPolicy {p:?}"));
                HitPolicy::Unique
            }),
        };
        let aggregation = n.attribute("aggregation").and_then(|a| {
            let found = table::aggregation(a);
            if found.is_none() {
                self.refuse(n, format!("unknown aggregation {a:?}"));
            }
            found
        });
        let mut table = DecisionTable {
            id,
            name: name.map(str::to_string),
            hit_policy,
            aggregation,
            inputs: Vec::new(),
            outputs: Vec::new(),
            rules: Vec::new(),
            tests: Vec::new(),
        };
        for child in self.children(n) {
            match child.tag_name().name() {
                "input" => {
                    let input = self.input(child, table.inputs.len() + 1);
                    table.inputs.push(input);
                }
                "output" => {
                    let output = self.output(child, table.outputs.len() + 1);
                    table.outputs.push(output);
                }
                "rule" => {
                    let rule = self.rule(child, table.rules.len() + 1);
                    table.rules.push(rule);
                }
                "description" | "extensionElements" | "annotation" => {}
                other => self.refuse(
                    child,
                    format!("{other} is not supported in a decision table"),
                ),
            }
        }
        table
    }

    /// The node's id, or `{prefix}{n}` when it has none; its line is noted.
    fn noted_id(&mut self, n: Node, prefix: &str, position: usize) -> String {
        let id = Some(id_of(n))
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| format!("{prefix}{position}"));
        self.lines.insert(id.clone(), self.line(n));
        id
    }

    fn input(&mut self, n: Node<'a, 'i>, position: usize) -> InputClause {
        let id = self.noted_id(n, "input", position);
        if let Some(v) = n.attributes().find(|a| a.name() == "inputVariable") {
            self.refuse(
                n,
                format!("inputVariable {:?} is not supported; write `?` in CEL cells for the input value", v.value()),
            );
        }
        let mut input = InputClause {
            id,
            label: n.attribute("label").map(str::to_string),
            expression: String::new(),
            type_ref: None,
        };
        for child in self.children(n) {
            match child.tag_name().name() {
                "inputExpression" => {
                    input.type_ref = child.attribute("typeRef").map(str::to_string);
                    input.expression = self.text(child);
                }
                "inputValues" | "description" | "extensionElements" => {}
                other => self.refuse(child, format!("{other} is not supported in an input")),
            }
        }
        input
    }

    fn output(&mut self, n: Node<'a, 'i>, position: usize) -> OutputClause {
        let id = self.noted_id(n, "output", position);
        let label = n.attribute("label").map(str::to_string);
        // dmn-js lets a table's only output go unnamed; its result is the bare value.
        let name = n
            .attribute("name")
            .map(str::to_string)
            .or_else(|| label.clone())
            .unwrap_or_else(|| id.clone());
        let mut output = OutputClause {
            id,
            name,
            label,
            type_ref: n.attribute("typeRef").map(str::to_string),
            values: Vec::new(),
        };
        for child in self.children(n) {
            match child.tag_name().name() {
                "outputValues" => {
                    let text = self.text(child);
                    if !text.is_empty() {
                        match unary::parse_literals(&text) {
                            Ok(v) => output.values = v,
                            Err(m) => self.refuse(child, format!("outputValues: {m}")),
                        }
                    }
                }
                "description" | "extensionElements" => {}
                "defaultOutputEntry" => self.refuse(
                    child,
                    "default output entries are not supported; add a last rule matching anything",
                ),
                other => self.refuse(child, format!("{other} is not supported in an output")),
            }
        }
        output
    }

    fn rule(&mut self, n: Node<'a, 'i>, position: usize) -> Rule {
        let id = self.noted_id(n, "rule", position);
        let mut rule = Rule {
            id,
            description: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
        };
        for child in self.children(n) {
            match child.tag_name().name() {
                "description" => {
                    rule.description = child
                        .text()
                        .map(|t| t.trim().to_string())
                        .filter(|t| !t.is_empty())
                }
                "inputEntry" => {
                    let text = self.text(child);
                    rule.inputs.push(text);
                }
                "outputEntry" => {
                    let text = self.text(child);
                    rule.outputs.push(text);
                }
                "annotationEntry" | "extensionElements" => {}
                other => self.refuse(child, format!("{other} is not supported in a rule")),
            }
        }
        rule
    }
}
