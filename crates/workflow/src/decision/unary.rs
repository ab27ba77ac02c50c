//! One input cell: DMN's simple unary tests (S-FEEL) or, failing that, a CEL expression.
//!
//! The unary tests: `-` or nothing (any value); a comma-separated list of positive tests, any
//! one of which must pass: an endpoint (equality), `< <= > >=` an endpoint, an interval
//! (`[1..10]`, `(1..10)`, `]1..10[`, `[1..10)`, …); or `not(<list>)`, passing when none of the
//! list does. An endpoint is a number, a double-quoted string, `true`, `false`, `null`,
//! `date("2024-01-31")`, `date and time("2024-01-31T10:00:00")` (or `@"…"`), or a dotted
//! variable name. Dates and times compare with input strings that parse as such; values of
//! different types never match (no error); numbers compare numerically (`1` = `1.0`).
//!
//! Any other cell is CEL, `?` standing for the input value: a boolean result decides, any other
//! value must equal the input.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use serde_json::{Map, Number, Value};
use std::cmp::Ordering;

/// The name `?` becomes in a CEL cell of the input column at `column` (from 0).
pub(crate) fn input_binding(column: usize) -> String {
    format!("__input{column}")
}

/// A compiled input cell.
#[derive(Debug)]
pub(crate) enum Cell {
    /// `-` or empty: any value.
    Any,
    /// Simple unary tests.
    Unary(UnaryTests),
    /// A CEL expression, `?` replaced by the column's binding.
    Cel(cel::Program),
}

/// A list of positive tests, possibly negated as a whole.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UnaryTests {
    negated: bool,
    tests: Vec<Test>,
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    Equal(Endpoint),
    Compare(Op, Endpoint),
    Interval {
        low: Endpoint,
        low_open: bool,
        high: Endpoint,
        high_open: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
}

#[derive(Debug, Clone, PartialEq)]
enum Endpoint {
    Literal(Literal),
    /// A dotted variable name, looked up in the variables.
    Variable(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Number(Number),
    String(String),
    Bool(bool),
    Null,
    Date(NaiveDate),
    /// A date and time; one written without an offset is taken as UTC.
    DateTime(DateTime<FixedOffset>, String),
}

/// Compiles an input cell of the column at `column`; the error says why it is neither a unary
/// test nor CEL.
pub(crate) fn parse_cell(text: &str, column: usize) -> Result<Cell, String> {
    let t = text.trim();
    if t.is_empty() || t == "-" {
        return Ok(Cell::Any);
    }
    match parse_unary(t) {
        Ok(tests) => return Ok(Cell::Unary(tests)),
        Err(Refusal::Invalid(message)) => return Err(message),
        Err(Refusal::NotUnary) => {}
    }
    let source = substitute_input(t, &input_binding(column));
    crate::expr::compile("", &source)
        .map(Cell::Cel)
        .map_err(|e| {
            format!(
                "{t:?} is neither a simple unary test nor a CEL expression ({})",
                e.message
            )
        })
}

/// Parses a comma-separated list of literals (an output's priority list): `"a","b"`, `1, 2`.
pub(crate) fn parse_literals(text: &str) -> Result<Vec<Value>, String> {
    let bad = || format!("{text:?} is not a comma-separated list of literals (\"a\",\"b\" or 1,2)");
    let tests = match parse_unary(text.trim()) {
        Ok(t) => t,
        Err(Refusal::Invalid(message)) => return Err(message),
        Err(Refusal::NotUnary) => return Err(bad()),
    };
    if tests.negated {
        return Err(bad());
    }
    tests
        .tests
        .into_iter()
        .map(|t| match t {
            Test::Equal(Endpoint::Literal(l)) => Ok(l.to_json()),
            _ => Err(bad()),
        })
        .collect()
}

/// Replaces each `?` that stands for an operand (outside string literals, not CEL's `a ? b : c`
/// operator, which follows an operand) with `binding`.
pub(crate) fn substitute_input(text: &str, binding: &str) -> String {
    let mut out = String::with_capacity(text.len() + binding.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut after_operand = false;
    for c in text.chars() {
        if let Some(q) = quote {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
                after_operand = true;
            }
            continue;
        }
        match c {
            '"' | '\'' => {
                quote = Some(c);
                out.push(c);
            }
            '?' if !after_operand => {
                out.push_str(binding);
                after_operand = true;
            }
            c if c.is_whitespace() => out.push(c),
            c => {
                out.push(c);
                after_operand = c.is_alphanumeric() || matches!(c, '_' | ')' | ']' | '}');
            }
        }
    }
    out
}

impl UnaryTests {
    /// Whether `input` passes; an error when an endpoint names a variable that is not set.
    pub(crate) fn matches(
        &self,
        input: &Value,
        variables: &Map<String, Value>,
    ) -> Result<bool, String> {
        let mut any = false;
        for test in &self.tests {
            if test.matches(input, variables)? {
                any = true;
                break;
            }
        }
        Ok(any != self.negated)
    }
}

impl Test {
    fn matches(&self, input: &Value, variables: &Map<String, Value>) -> Result<bool, String> {
        Ok(match self {
            Test::Equal(e) => match e.resolve(variables)? {
                Operand::Literal(l) => l.compare(input) == Some(Ordering::Equal),
                Operand::Json(v) => json_eq(input, v),
            },
            Test::Compare(op, e) => {
                let Some(o) = e.resolve(variables)?.compare(input) else {
                    return Ok(false);
                };
                match op {
                    Op::Less => o == Ordering::Less,
                    Op::LessEqual => o != Ordering::Greater,
                    Op::Greater => o == Ordering::Greater,
                    Op::GreaterEqual => o != Ordering::Less,
                }
            }
            Test::Interval {
                low,
                low_open,
                high,
                high_open,
            } => {
                let (Some(l), Some(h)) = (
                    low.resolve(variables)?.compare(input),
                    high.resolve(variables)?.compare(input),
                ) else {
                    return Ok(false);
                };
                let above = if *low_open {
                    l == Ordering::Greater
                } else {
                    l != Ordering::Less
                };
                let below = if *high_open {
                    h == Ordering::Less
                } else {
                    h != Ordering::Greater
                };
                above && below
            }
        })
    }
}

/// An endpoint's value for one evaluation.
enum Operand<'a> {
    Literal(&'a Literal),
    Json(&'a Value),
}

impl Endpoint {
    fn resolve<'a>(&'a self, variables: &'a Map<String, Value>) -> Result<Operand<'a>, String> {
        match self {
            Endpoint::Literal(l) => Ok(Operand::Literal(l)),
            Endpoint::Variable(path) => {
                let mut parts = path.iter();
                let first = parts.next().and_then(|p| variables.get(p));
                parts
                    .try_fold(first, |v, p| Some(v?.as_object()?.get(p)))
                    .flatten()
                    .map(Operand::Json)
                    .ok_or_else(|| {
                        let name = path.join(".");
                        format!(
                            "variable {name} is not set (a string needs double quotes: \"{name}\")"
                        )
                    })
            }
        }
    }
}

impl Operand<'_> {
    /// How `input` compares with this operand (input first); `None` when they do not compare.
    fn compare(&self, input: &Value) -> Option<Ordering> {
        match self {
            Operand::Literal(l) => l.compare(input),
            Operand::Json(v) => compare(input, v),
        }
    }
}

impl Literal {
    fn compare(&self, input: &Value) -> Option<Ordering> {
        match (self, input) {
            (Literal::Number(n), Value::Number(i)) => number_cmp(i, n),
            (Literal::String(s), Value::String(i)) => Some(i.as_str().cmp(s)),
            (Literal::Bool(b), Value::Bool(i)) if b == i => Some(Ordering::Equal),
            (Literal::Null, Value::Null) => Some(Ordering::Equal),
            (Literal::Date(d), Value::String(i)) => Some(parse_date(i)?.cmp(d)),
            (Literal::DateTime(d, _), Value::String(i)) => Some(parse_date_time(i)?.cmp(d)),
            _ => None,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Literal::Number(n) => Value::Number(n.clone()),
            Literal::String(s) => Value::String(s.clone()),
            Literal::Bool(b) => Value::Bool(*b),
            Literal::Null => Value::Null,
            Literal::Date(d) => Value::String(d.format("%Y-%m-%d").to_string()),
            Literal::DateTime(_, text) => Value::String(text.clone()),
        }
    }
}

/// Orders two JSON values of the same kind: numbers numerically, strings by their text,
/// equal booleans, nulls, lists and objects as equal; anything else does not compare.
pub(crate) fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_cmp(x, y),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ if json_eq(a, b) => Some(Ordering::Equal),
        _ => None,
    }
}

/// JSON equality with numbers compared numerically (`1` equals `1.0`).
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_cmp(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| json_eq(a, b)))
        }
        _ => a == b,
    }
}

/// Compares numbers exactly when both are integers, else as floating point.
pub(crate) fn number_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// A date and time with an offset, or without one taken as UTC.
fn parse_date_time(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text).ok().or_else(|| {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|n| n.and_utc().fixed_offset())
    })
}

/// Why a cell is not read as unary tests.
enum Refusal {
    /// It is not written as unary tests (it may be CEL).
    NotUnary,
    /// It is written as unary tests, wrongly (a date that does not exist, …).
    Invalid(String),
}

fn parse_unary(text: &str) -> Result<UnaryTests, Refusal> {
    let mut p = Parser { text, pos: 0 };
    let negated = p.keyword("not") && p.eat("(");
    if !negated {
        p.pos = 0;
    }
    let mut tests = vec![p.test()?];
    while p.eat(",") {
        tests.push(p.test()?);
    }
    if negated && !p.eat(")") {
        return Err(Refusal::NotUnary);
    }
    p.skip_space();
    if p.pos != text.len() {
        return Err(Refusal::NotUnary);
    }
    Ok(UnaryTests { negated, tests })
}

/// A recursive-descent reader over one cell's text.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    /// Eats `word` when it is a whole word.
    fn keyword(&mut self, word: &str) -> bool {
        self.skip_space();
        let rest = self.rest();
        if rest.starts_with(word) && !rest[word.len()..].starts_with(is_name_char) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn test(&mut self) -> Result<Test, Refusal> {
        for (token, op) in [
            ("<=", Op::LessEqual),
            (">=", Op::GreaterEqual),
            ("<", Op::Less),
            (">", Op::Greater),
        ] {
            if self.eat(token) {
                return Ok(Test::Compare(op, self.endpoint()?));
            }
        }
        let low_open = if self.eat("[") {
            false
        } else if self.eat("(") || self.eat("]") {
            true
        } else {
            return Ok(Test::Equal(self.endpoint()?));
        };
        let low = self.endpoint()?;
        if !self.eat("..") {
            return Err(Refusal::NotUnary);
        }
        let high = self.endpoint()?;
        let high_open = if self.eat("]") {
            false
        } else if self.eat(")") || self.eat("[") {
            true
        } else {
            return Err(Refusal::NotUnary);
        };
        Ok(Test::Interval {
            low,
            low_open,
            high,
            high_open,
        })
    }

    fn endpoint(&mut self) -> Result<Endpoint, Refusal> {
        self.skip_space();
        let Some(c) = self.rest().chars().next() else {
            return Err(Refusal::NotUnary);
        };
        let literal = match c {
            '"' => Literal::String(self.string()?),
            '@' => {
                self.pos += 1;
                if !self.rest().starts_with('"') {
                    return Err(Refusal::NotUnary);
                }
                let s = self.string()?;
                if let Some(d) = parse_date(&s) {
                    Literal::Date(d)
                } else if let Some(d) = parse_date_time(&s) {
                    Literal::DateTime(d, s)
                } else {
                    return Err(Refusal::Invalid(format!(
                        "@{s:?} is neither a date nor a date and time"
                    )));
                }
            }
            '-' | '.' | '0'..='9' => Literal::Number(self.number()?),
            c if c.is_alphabetic() || c == '_' => return self.word(),
            _ => return Err(Refusal::NotUnary),
        };
        Ok(Endpoint::Literal(literal))
    }

    /// `true`, `false`, `null`, `date(…)`, `date and time(…)` or a dotted variable name.
    fn word(&mut self) -> Result<Endpoint, Refusal> {
        let start = self.pos;
        for (word, literal) in [
            ("true", Literal::Bool(true)),
            ("false", Literal::Bool(false)),
            ("null", Literal::Null),
        ] {
            if self.keyword(word) {
                return Ok(Endpoint::Literal(literal));
            }
        }
        if self.keyword("date") {
            let after_date = self.pos;
            if self.keyword("and") && self.keyword("time") && self.eat("(") {
                let s = self.string_argument()?;
                let d = parse_date_time(&s).ok_or_else(|| {
                    Refusal::Invalid(format!("date and time({s:?}) is not a date and time"))
                })?;
                return Ok(Endpoint::Literal(Literal::DateTime(d, s)));
            }
            self.pos = after_date;
            if self.eat("(") {
                let s = self.string_argument()?;
                let d = parse_date(&s).ok_or_else(|| {
                    Refusal::Invalid(format!("date({s:?}) is not a date (YYYY-MM-DD)"))
                })?;
                return Ok(Endpoint::Literal(Literal::Date(d)));
            }
            self.pos = start;
        }
        if self.keyword("not") {
            return Err(Refusal::NotUnary);
        }
        let mut path = vec![self.name()?];
        while self.rest().starts_with('.') && !self.rest().starts_with("..") {
            self.pos += 1;
            path.push(self.name()?);
        }
        Ok(Endpoint::Variable(path))
    }

    fn name(&mut self) -> Result<String, Refusal> {
        let rest = self.rest();
        let len = rest.find(|c| !is_name_char(c)).unwrap_or(rest.len());
        let name = rest[..len].to_string();
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(Refusal::NotUnary);
        }
        self.pos += len;
        Ok(name)
    }

    /// A string literal then `)`.
    fn string_argument(&mut self) -> Result<String, Refusal> {
        self.skip_space();
        let s = self.string()?;
        if self.eat(")") {
            Ok(s)
        } else {
            Err(Refusal::NotUnary)
        }
    }

    /// A double-quoted string with backslash escapes, at the current position.
    fn string(&mut self) -> Result<String, Refusal> {
        let mut chars = self.rest().char_indices();
        if !matches!(chars.next(), Some((_, '"'))) {
            return Err(Refusal::NotUnary);
        }
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('u') => {
                        let hex: String = chars.by_ref().take(4).map(|(_, c)| c).collect();
                        let c = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or(Refusal::NotUnary)?;
                        out.push(c);
                    }
                    Some(c @ ('"' | '\\' | '\'')) => out.push(c),
                    _ => return Err(Refusal::NotUnary),
                },
                c => out.push(c),
            }
        }
        Err(Refusal::NotUnary)
    }

    /// `-`? digits (`.` digits)? (`e` `±`? digits)?, or a fraction alone (`.5`).
    fn number(&mut self) -> Result<Number, Refusal> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let mut i = start;
        let digits = |mut i: usize| {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            i
        };
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_end = digits(i);
        let mut whole = true;
        let mut end = int_end;
        if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
            end = digits(end + 1);
            whole = false;
        } else if int_end == i {
            return Err(Refusal::NotUnary);
        }
        if matches!(bytes.get(end), Some(b'e' | b'E')) {
            let mut j = end + 1;
            if matches!(bytes.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            let exp_end = digits(j);
            if exp_end > j {
                end = exp_end;
                whole = false;
            }
        }
        if self.text[end..].starts_with(is_name_char) {
            return Err(Refusal::NotUnary);
        }
        let text = &self.text[start..end];
        self.pos = end;
        let parsed = if whole {
            text.parse::<i64>()
                .map(Number::from)
                .ok()
                .or_else(|| text.parse::<u64>().ok().map(Number::from))
        } else {
            None
        };
        parsed
            .or_else(|| text.parse::<f64>().ok().and_then(Number::from_f64))
            .ok_or(Refusal::NotUnary)
    }
}
