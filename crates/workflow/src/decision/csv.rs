//! The CSV form of a decision table (see [`super::table`]), and the RFC 4180 reader under it:
//! as much of the format as a spreadsheet's export needs (fields separated by commas, records
//! by CRLF or LF; a field in double quotes may hold commas, line breaks and doubled quotes).

use super::table::Builder;
use super::{unary, DecisionTable, InputClause, OutputClause, Rule};
use crate::problem::Problems;

/// One record: its fields, and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub line: u32,
    pub fields: Vec<String>,
}

impl Record {
    /// Whether every field is empty (a blank line, or a row of empty cells).
    pub fn is_blank(&self) -> bool {
        self.fields.iter().all(|f| f.trim().is_empty())
    }
}

/// Reads every record; the error names the line of a quoted field that never closes, or of
/// text after a closing quote.
pub(crate) fn read(text: &str) -> Result<Vec<Record>, (u32, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1u32;
    while chars.peek().is_some() {
        let start = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        'fields: loop {
            if chars.peek() == Some(&'"') {
                chars.next();
                let opened = line;
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            field.push(c);
                        }
                        None => {
                            return Err((opened, "a quoted field is never closed".into()));
                        }
                    }
                }
                if !matches!(chars.peek(), None | Some(',' | '\n' | '\r')) {
                    return Err((line, "text after a quoted field's closing quote".into()));
                }
            }
            loop {
                match chars.next() {
                    Some(',') => {
                        fields.push(std::mem::take(&mut field));
                        continue 'fields;
                    }
                    Some('\r') if chars.peek() == Some(&'\n') => {}
                    Some('\n') | None => {
                        line += 1;
                        fields.push(std::mem::take(&mut field));
                        break 'fields;
                    }
                    Some(c) => field.push(c),
                }
            }
        }
        records.push(Record {
            line: start,
            fields,
        });
    }
    Ok(records)
}

/// What a CSV header column holds.
enum Column {
    Input,
    Output,
    Description,
    Id,
    /// An empty header cell (a spreadsheet's padding), or one already reported.
    Ignored,
}

/// Parses the CSV form, and compiles it.
pub(super) fn parse(text: &str) -> Result<DecisionTable, Problems> {
    let mut b = Builder::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // The leading `#` lines are read as lines, not CSV, so `# values.y: "a","b"` needs no
    // quoting; a spreadsheet's export pads them with commas, or quotes a cell holding one.
    let mut values = Vec::new();
    let mut consumed = 0usize;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let line = raw.trim();
        let comment = if line.starts_with("\"#") {
            read(line)
                .ok()
                .and_then(|r| r.into_iter().next())
                .and_then(|r| r.fields.into_iter().next())
                .unwrap_or_default()
        } else if line.starts_with('#') || line.trim_end_matches(',').is_empty() {
            line.trim_end_matches(',').to_string()
        } else {
            break;
        };
        consumed += raw.len();
        let line_number = Some(i as u32 + 1);
        let Some((key, value)) = comment.trim_start_matches('#').split_once(':') else {
            continue;
        };
        let key = key.trim();
        if key.contains(char::is_whitespace) {
            continue;
        }
        match key {
            "decision" | "name" | "hit_policy" | "aggregation" => b.setting(key, value, line_number),
            _ => match key.strip_prefix("values.") {
                Some(output) => values.push((output.to_string(), value.to_string(), line_number)),
                None => b.problem(
                    line_number,
                    format!("unknown key {key:?}; a # line takes decision, name, hit_policy, aggregation or values.<output>"),
                ),
            },
        }
    }
    let offset = text[..consumed].matches('\n').count() as u32;
    let records = match read(&text[consumed..]) {
        Ok(r) => r,
        Err((line, message)) => {
            b.problem(Some(line + offset), message);
            return Err(Problems(b.problems));
        }
    };
    if b.table.id.is_empty() {
        b.problem(Some(1), "the table needs a `# decision: <id>` line");
    }
    let (inputs, outputs) = rules(&mut b, &records, offset);
    b.table.inputs = inputs;
    b.table.outputs = outputs;
    for (name, list, line) in values {
        match unary::parse_literals(&list) {
            Ok(v) => match b.table.outputs.iter_mut().find(|o| o.name == name) {
                Some(o) => o.values = v,
                None => b.problem(line, format!("values for {name:?}, which is not an output")),
            },
            Err(m) => b.problem(line, format!("values.{name}: {m}")),
        }
    }
    b.finish()
}

/// Reads a CSV header and its rows into the builder's rules; the header's columns. Lines are
/// shifted by `offset` (the CSV's place in a YAML file).
pub(super) fn rules(
    b: &mut Builder,
    records: &[Record],
    offset: u32,
) -> (Vec<InputClause>, Vec<OutputClause>) {
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    let mut rows = records.iter().filter(|r| !r.is_blank());
    let Some(header) = rows.next() else {
        b.problem(
            None,
            "the table needs a header row (in: …, out: …) and rules",
        );
        return (inputs, outputs);
    };
    let header_line = header.line + offset;
    let mut columns = Vec::new();
    for cell in &header.fields {
        let cell = cell.trim();
        let (kind, rest) = cell.split_once(':').unwrap_or((cell, ""));
        let (body, label) = match rest.rsplit_once(" as ") {
            Some((body, label)) => (body.trim(), Some(label.trim().to_string())),
            None => (rest.trim(), None),
        };
        match kind.trim().to_lowercase().as_str() {
            "in" if !body.is_empty() => {
                let id = format!("input{}", inputs.len() + 1);
                b.lines.insert(id.clone(), header_line);
                inputs.push(InputClause {
                    id,
                    label,
                    expression: body.to_string(),
                    type_ref: None,
                });
                columns.push(Column::Input);
            }
            "out" if !body.is_empty() => {
                let id = format!("output{}", outputs.len() + 1);
                b.lines.insert(id.clone(), header_line);
                outputs.push(OutputClause {
                    id,
                    name: body.to_string(),
                    label,
                    type_ref: None,
                    values: Vec::new(),
                });
                columns.push(Column::Output);
            }
            "description" if rest.is_empty() => columns.push(Column::Description),
            "id" if rest.is_empty() => columns.push(Column::Id),
            "" => columns.push(Column::Ignored),
            _ => {
                b.problem(
                    Some(header_line),
                    format!("header cell {cell:?} is not `in: <expression>`, `out: <name>`, `description` or `id`"),
                );
                columns.push(Column::Ignored);
            }
        }
    }
    for (n, record) in rows.enumerate() {
        let n = n + 1;
        let line = record.line + offset;
        // Empty cells past the header's last column are a spreadsheet's padding.
        let mut fields = record.fields.as_slice();
        while fields.len() > columns.len() && fields.last().is_some_and(|f| f.trim().is_empty()) {
            fields = &fields[..fields.len() - 1];
        }
        if fields.len() != columns.len() {
            b.problem_at(
                &format!("rule{n}"),
                Some(line),
                format!(
                    "rule {n} has {} cells; the header has {} columns",
                    fields.len(),
                    columns.len()
                ),
            );
            continue;
        }
        let mut rule = Rule {
            id: format!("rule{n}"),
            description: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
        };
        for (column, field) in columns.iter().zip(fields) {
            match column {
                Column::Input => rule.inputs.push(field.clone()),
                Column::Output => rule.outputs.push(field.clone()),
                Column::Description => {
                    rule.description = Some(field.trim().to_string()).filter(|d| !d.is_empty())
                }
                Column::Id if !field.trim().is_empty() => rule.id = field.trim().to_string(),
                Column::Id | Column::Ignored => {}
            }
        }
        b.lines.insert(rule.id.clone(), line);
        b.table.rules.push(rule);
    }
    (inputs, outputs)
}
