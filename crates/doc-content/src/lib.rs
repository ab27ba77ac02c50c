//! Reading a document's content out of its Yjs state, and writing a version back in.
//!
//! Concord documents follow the conventions of the stock editor bindings: rich text lives in
//! a `Y.XmlFragment` of ProseMirror nodes named `prosemirror` (y-prosemirror's default) or
//! `default` (TipTap's), and plain text in a `Y.Text` named `content`. Exports read those
//! roots; restoring a version rewrites them as a new change. Nothing here does I/O.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use yrs::types::text::YChange;
use yrs::types::Attrs;
use yrs::updates::decoder::Decode;
use yrs::{
    Any, Doc, GetString, Out, ReadTxn, StateVector, Text, Transact, TransactionMut, Update, Xml,
    XmlElementPrelim, XmlFragment, XmlFragmentRef, XmlOut, XmlTextPrelim,
};

/// The plain-text root.
pub const TEXT_ROOT: &str = "content";
/// The rich-text roots, in the order they are looked for.
pub const RICH_ROOTS: &[&str] = &["prosemirror", "default"];

/// Why a stored state could not be read.
#[derive(Debug, thiserror::Error)]
#[error("stored document state is unreadable: {0}")]
pub struct StateError(pub String);

/// A document loaded from a full state (snapshot or version).
pub fn doc_from_state(state: &[u8]) -> Result<Doc, StateError> {
    let doc = Doc::new();
    let update = Update::decode_v1(state).map_err(|e| StateError(e.to_string()))?;
    doc.transact_mut()
        .apply_update(update)
        .map_err(|e| StateError(e.to_string()))?;
    Ok(doc)
}

/// The full state of `doc` as one update.
pub fn full_state(doc: &Doc) -> Vec<u8> {
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Plain text.
    Text,
    /// Markdown (from the rich-text fragment).
    Markdown,
    /// ProseMirror JSON of the rich text plus the plain text.
    Json,
}

impl Format {
    /// The format with this name.
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "text" | "txt" | "plain" => Some(Format::Text),
            "markdown" | "md" => Some(Format::Markdown),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// The media type of an export.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; charset=utf-8",
            Format::Markdown => "text/markdown; charset=utf-8",
            Format::Json => "application/json",
        }
    }

    /// The file name extension of an export.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Text => "txt",
            Format::Markdown => "md",
            Format::Json => "json",
        }
    }
}

/// A node of the rich-text tree, detached from Yjs.
#[derive(Clone, Debug, PartialEq)]
enum Node {
    Element {
        name: String,
        attrs: BTreeMap<String, Value>,
        children: Vec<Node>,
    },
    Text(Vec<Run>),
}

/// A run of text with its marks.
#[derive(Clone, Debug, PartialEq)]
struct Run {
    text: String,
    marks: BTreeMap<String, Value>,
}

fn any_json(any: &Any) -> Value {
    serde_json::to_value(any).unwrap_or(Value::Null)
}

fn read_children<T: ReadTxn, F: XmlFragment>(txn: &T, parent: &F) -> Vec<Node> {
    parent
        .children(txn)
        .map(|child| match child {
            XmlOut::Element(el) => {
                let attrs = el
                    .attributes(txn)
                    .filter_map(|(k, v)| match v {
                        Out::Any(a) => Some((k.to_owned(), any_json(&a))),
                        _ => None,
                    })
                    .collect();
                Node::Element {
                    name: el.tag().to_string(),
                    attrs,
                    children: read_children(txn, &el),
                }
            }
            XmlOut::Text(t) => {
                let runs = t
                    .diff(txn, YChange::identity)
                    .into_iter()
                    .filter_map(|d| match d.insert {
                        Out::Any(Any::String(s)) => Some(Run {
                            text: s.to_string(),
                            marks: d
                                .attributes
                                .map(|a| {
                                    a.iter()
                                        .map(|(k, v)| (k.to_string(), any_json(v)))
                                        .collect()
                                })
                                .unwrap_or_default(),
                        }),
                        _ => None,
                    })
                    .collect();
                Node::Text(runs)
            }
            XmlOut::Fragment(f) => Node::Element {
                name: "fragment".into(),
                attrs: BTreeMap::new(),
                children: read_children(txn, &f),
            },
        })
        .collect()
}

/// What a document holds, read once.
pub struct Content {
    text: Option<String>,
    rich: Option<Vec<Node>>,
}

impl Content {
    /// Reads the conventional roots of `doc`.
    pub fn read(doc: &Doc) -> Content {
        let txn = doc.transact();
        let text = txn.get_text(TEXT_ROOT).map(|t| t.get_string(&txn));
        let rich = RICH_ROOTS.iter().find_map(|name| {
            let frag = txn.get_xml_fragment(*name)?;
            let nodes = read_children(&txn, &frag);
            (!nodes.is_empty()).then_some(nodes)
        });
        Content { text, rich }
    }

    /// The content in `format`.
    pub fn export(&self, format: Format) -> String {
        match format {
            Format::Text => self.plain_text(),
            Format::Markdown => match &self.rich {
                Some(nodes) => {
                    let mut out = String::new();
                    markdown_blocks(nodes, &mut out);
                    out.trim_end().to_owned() + "\n"
                }
                None => self.text.clone().unwrap_or_default(),
            },
            Format::Json => {
                let mut doc = Map::new();
                if let Some(text) = &self.text {
                    doc.insert(TEXT_ROOT.into(), Value::String(text.clone()));
                }
                if let Some(nodes) = &self.rich {
                    doc.insert(
                        "prosemirror".into(),
                        json!({"type": "doc", "content": nodes.iter().map(pm_json).collect::<Vec<_>>()}),
                    );
                }
                Value::Object(doc).to_string()
            }
        }
    }

    /// Plain text: the text root if it has any, else the rich text's blocks one per line.
    pub fn plain_text(&self) -> String {
        match (&self.text, &self.rich) {
            (Some(t), _) if !t.is_empty() => t.clone(),
            (_, Some(nodes)) => {
                let mut lines = Vec::new();
                plain_blocks(nodes, &mut lines);
                lines.join("\n")
            }
            (Some(t), None) => t.clone(),
            (None, None) => String::new(),
        }
    }
}

fn norm(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

fn pm_json(node: &Node) -> Value {
    match node {
        Node::Element {
            name,
            attrs,
            children,
        } => {
            let mut v = json!({"type": name});
            if !attrs.is_empty() {
                v["attrs"] = json!(attrs);
            }
            let content: Vec<Value> = children
                .iter()
                .flat_map(|c| match c {
                    Node::Text(runs) => runs.iter().map(run_json).collect::<Vec<_>>(),
                    other => vec![pm_json(other)],
                })
                .collect();
            if !content.is_empty() {
                v["content"] = Value::Array(content);
            }
            v
        }
        Node::Text(runs) => Value::Array(runs.iter().map(run_json).collect()),
    }
}

fn run_json(run: &Run) -> Value {
    let mut v = json!({"type": "text", "text": run.text});
    if !run.marks.is_empty() {
        v["marks"] = Value::Array(
            run.marks
                .iter()
                .map(|(k, a)| match a {
                    Value::Object(attrs) if !attrs.is_empty() => json!({"type": k, "attrs": a}),
                    _ => json!({"type": k}),
                })
                .collect(),
        );
    }
    v
}

fn inline_plain(children: &[Node]) -> String {
    let mut s = String::new();
    for c in children {
        match c {
            Node::Text(runs) => runs.iter().for_each(|r| s.push_str(&r.text)),
            Node::Element { name, children, .. } => {
                if norm(name) == "hardbreak" {
                    s.push('\n');
                } else {
                    s.push_str(&inline_plain(children));
                }
            }
        }
    }
    s
}

fn is_block(children: &[Node]) -> bool {
    children.iter().any(|c| match c {
        Node::Element { name, .. } => !matches!(
            norm(name).as_str(),
            "hardbreak" | "image" | "mention" | "emoji"
        ),
        Node::Text(_) => false,
    })
}

fn plain_blocks(nodes: &[Node], lines: &mut Vec<String>) {
    for n in nodes {
        match n {
            Node::Text(runs) => lines.push(runs.iter().map(|r| r.text.as_str()).collect()),
            Node::Element { children, .. } if is_block(children) => plain_blocks(children, lines),
            Node::Element { children, .. } => lines.push(inline_plain(children)),
        }
    }
}

fn escape_md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '`' | '[' | ']' | '<' | '>' | '#' | '~' | '|'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn mark(marks: &BTreeMap<String, Value>, names: &[&str]) -> bool {
    marks.keys().any(|k| names.contains(&norm(k).as_str()))
}

fn inline_md(children: &[Node]) -> String {
    let mut s = String::new();
    for c in children {
        match c {
            Node::Text(runs) => {
                for r in runs {
                    let m = &r.marks;
                    if mark(m, &["code"]) {
                        s.push('`');
                        s.push_str(&r.text.replace('`', "'"));
                        s.push('`');
                        continue;
                    }
                    let mut t = escape_md(&r.text);
                    if mark(m, &["bold", "strong"]) {
                        t = format!("**{t}**");
                    }
                    if mark(m, &["italic", "em"]) {
                        t = format!("*{t}*");
                    }
                    if mark(m, &["strike", "strikethrough", "s"]) {
                        t = format!("~~{t}~~");
                    }
                    let link = m.iter().find(|(k, _)| norm(k) == "link");
                    if let Some((_, attrs)) = link {
                        let href = attrs.get("href").and_then(Value::as_str).unwrap_or("");
                        if safe_url(href) {
                            t = format!("[{t}]({})", href.replace(' ', "%20").replace(')', "%29"));
                        }
                    }
                    s.push_str(&t);
                }
            }
            Node::Element {
                name,
                attrs,
                children,
            } => match norm(name).as_str() {
                "hardbreak" => s.push_str("  \n"),
                "image" => {
                    let src = attrs.get("src").and_then(Value::as_str).unwrap_or("");
                    let alt = attrs.get("alt").and_then(Value::as_str).unwrap_or("");
                    if safe_url(src) {
                        s.push_str(&format!(
                            "![{}]({})",
                            escape_md(alt),
                            src.replace(' ', "%20")
                        ));
                    }
                }
                _ => s.push_str(&inline_md(children)),
            },
        }
    }
    s
}

/// Links and images keep only web and mail addresses (no `javascript:`).
fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("mailto:")
        || lower.starts_with('/')
        || lower.starts_with('#')
}

fn indent(text: &str, first: &str, rest: &str) -> String {
    let mut out = String::new();
    for (i, line) in text.trim_end().lines().enumerate() {
        out.push_str(if i == 0 { first } else { rest });
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn markdown_blocks(nodes: &[Node], out: &mut String) {
    for n in nodes {
        match n {
            Node::Text(_) => {
                out.push_str(&inline_md(std::slice::from_ref(n)));
                out.push_str("\n\n");
            }
            Node::Element {
                name,
                attrs,
                children,
            } => match norm(name).as_str() {
                "heading" => {
                    let level = attrs
                        .get("level")
                        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                        .unwrap_or(1)
                        .clamp(1, 6) as usize;
                    out.push_str(&"#".repeat(level));
                    out.push(' ');
                    out.push_str(&inline_md(children));
                    out.push_str("\n\n");
                }
                "blockquote" => {
                    let mut inner = String::new();
                    markdown_blocks(children, &mut inner);
                    out.push_str(&indent(&inner, "> ", "> "));
                    out.push('\n');
                }
                "bulletlist" | "orderedlist" | "tasklist" => {
                    let ordered = norm(name) == "orderedlist";
                    let mut number = attrs
                        .get("order")
                        .or_else(|| attrs.get("start"))
                        .and_then(Value::as_u64)
                        .unwrap_or(1);
                    for item in children {
                        let mut inner = String::new();
                        match item {
                            Node::Element { children, .. } => {
                                markdown_blocks(children, &mut inner);
                            }
                            text => markdown_blocks(std::slice::from_ref(text), &mut inner),
                        }
                        let inner = inner.replace("\n\n", "\n");
                        if ordered {
                            let marker = format!("{number}. ");
                            let pad = " ".repeat(marker.len());
                            out.push_str(&indent(&inner, &marker, &pad));
                            number += 1;
                        } else {
                            out.push_str(&indent(&inner, "- ", "  "));
                        }
                    }
                    out.push('\n');
                }
                "codeblock" => {
                    let lang = attrs
                        .get("language")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '+')
                        .collect::<String>();
                    out.push_str(&format!("```{lang}\n{}\n```\n\n", inline_plain(children)));
                }
                "horizontalrule" => out.push_str("---\n\n"),
                "paragraph" => {
                    out.push_str(&inline_md(children));
                    out.push_str("\n\n");
                }
                _ if is_block(children) => markdown_blocks(children, out),
                _ => {
                    out.push_str(&inline_md(children));
                    out.push_str("\n\n");
                }
            },
        }
    }
}

/// The roots a restore rewrites, fetched before the restoring transaction starts (getting a
/// root needs a transaction of its own).
pub struct Roots {
    text: yrs::TextRef,
    rich: Vec<(XmlFragmentRef, Option<Vec<Node>>)>,
    version_text: Option<String>,
}

/// Prepares restoring `version` into `live`.
pub fn prepare_restore(live: &Doc, version: &Doc) -> Roots {
    let content = {
        let txn = version.transact();
        let text = txn.get_text(TEXT_ROOT).map(|t| t.get_string(&txn));
        let rich: Vec<Option<Vec<Node>>> = RICH_ROOTS
            .iter()
            .map(|name| txn.get_xml_fragment(*name).map(|f| read_children(&txn, &f)))
            .collect();
        (text, rich)
    };
    let existing: Vec<bool> = {
        let txn = live.transact();
        RICH_ROOTS
            .iter()
            .map(|name| txn.get_xml_fragment(*name).is_some())
            .collect()
    };
    let mut rich = Vec::new();
    for ((name, nodes), exists) in RICH_ROOTS.iter().zip(content.1).zip(existing) {
        if nodes.is_some() || exists {
            rich.push((live.get_or_insert_xml_fragment(*name), nodes));
        }
    }
    Roots {
        text: live.get_or_insert_text(TEXT_ROOT),
        rich,
        version_text: content.0,
    }
}

/// Rewrites the live roots to hold the version's content, as a new change in `txn`.
pub fn restore(txn: &mut TransactionMut, roots: &Roots) {
    let current = roots.text.get_string(txn);
    let wanted = roots.version_text.clone().unwrap_or_default();
    if current != wanted {
        // Replace only the part that differs, so cursors elsewhere stay put.
        let prefix = common_prefix(&current, &wanted);
        let suffix = common_suffix(&current[prefix..], &wanted[prefix..]);
        let remove = current.len() - prefix - suffix;
        if remove > 0 {
            roots.text.remove_range(txn, prefix as u32, remove as u32);
        }
        let insert = &wanted[prefix..wanted.len() - suffix];
        if !insert.is_empty() {
            roots.text.insert(txn, prefix as u32, insert);
        }
    }
    for (frag, nodes) in &roots.rich {
        let len = frag.len(txn);
        if len > 0 {
            frag.remove_range(txn, 0, len);
        }
        if let Some(nodes) = nodes {
            write_children(txn, frag, nodes);
        }
    }
}

fn common_prefix(a: &str, b: &str) -> usize {
    let mut n = 0;
    for ((i, x), y) in a.char_indices().zip(b.chars()) {
        if x != y {
            return i;
        }
        n = i + x.len_utf8();
    }
    n
}

fn common_suffix(a: &str, b: &str) -> usize {
    let mut n = 0;
    for (x, y) in a.chars().rev().zip(b.chars().rev()) {
        if x != y {
            break;
        }
        n += x.len_utf8();
    }
    n
}

fn json_any(v: &Value) -> Any {
    serde_json::from_value(v.clone()).unwrap_or(Any::Null)
}

fn write_children<F: XmlFragment>(txn: &mut TransactionMut, parent: &F, nodes: &[Node]) {
    for node in nodes {
        match node {
            Node::Element {
                name,
                attrs,
                children,
            } => {
                let el = parent.push_back(txn, XmlElementPrelim::empty(name.as_str()));
                for (k, v) in attrs {
                    el.insert_attribute(txn, k.as_str(), json_any(v));
                }
                write_children(txn, &el, children);
            }
            Node::Text(runs) => {
                let text = parent.push_back(txn, XmlTextPrelim::new(""));
                let mut at = 0u32;
                for run in runs {
                    let attrs: Attrs = run
                        .marks
                        .iter()
                        .map(|(k, v)| (Arc::from(k.as_str()), json_any(v)))
                        .collect();
                    if attrs.is_empty() {
                        text.insert(txn, at, &run.text);
                    } else {
                        text.insert_with_attributes(txn, at, &run.text, attrs);
                    }
                    at += run.text.len() as u32;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{GetString, WriteTxn};

    fn rich_doc() -> Doc {
        let doc = Doc::new();
        let frag = doc.get_or_insert_xml_fragment("prosemirror");
        let mut txn = doc.transact_mut();
        let h = frag.push_back(&mut txn, XmlElementPrelim::empty("heading"));
        h.insert_attribute(&mut txn, "level", Any::Number(yrs::Number::Float(2.0)));
        let t = h.push_back(&mut txn, XmlTextPrelim::new(""));
        t.insert(&mut txn, 0, "Plan");
        let p = frag.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
        let t = p.push_back(&mut txn, XmlTextPrelim::new(""));
        t.insert(&mut txn, 0, "ship ");
        let bold: Attrs = [(Arc::from("bold"), Any::Bool(true))].into_iter().collect();
        t.insert_with_attributes(&mut txn, 5, "now", bold);
        let list = frag.push_back(&mut txn, XmlElementPrelim::empty("bullet_list"));
        for word in ["one", "two"] {
            let item = list.push_back(&mut txn, XmlElementPrelim::empty("list_item"));
            let p = item.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
            let t = p.push_back(&mut txn, XmlTextPrelim::new(""));
            t.insert(&mut txn, 0, word);
        }
        drop(txn);
        doc
    }

    #[test]
    fn markdown_from_prosemirror_nodes() {
        let md = Content::read(&rich_doc()).export(Format::Markdown);
        assert_eq!(md, "## Plan\n\nship **now**\n\n- one\n- two\n");
    }

    #[test]
    fn plain_text_and_json() {
        let content = Content::read(&rich_doc());
        assert_eq!(content.export(Format::Text), "Plan\nship now\none\ntwo");
        let json: Value = serde_json::from_str(&content.export(Format::Json)).unwrap();
        assert_eq!(json["prosemirror"]["content"][0]["type"], "heading");
        assert_eq!(
            json["prosemirror"]["content"][1]["content"][1]["marks"][0]["type"],
            "bold"
        );
    }

    #[test]
    fn restore_rewrites_text_and_fragment() {
        let version = rich_doc();
        {
            let text = version.get_or_insert_text(TEXT_ROOT);
            text.insert(&mut version.transact_mut(), 0, "héllo world");
        }
        let live = Doc::new();
        live.transact_mut()
            .apply_update(Update::decode_v1(&full_state(&version)).unwrap())
            .unwrap();
        {
            let text = live.get_or_insert_text(TEXT_ROOT);
            let mut txn = live.transact_mut();
            text.insert(&mut txn, 0, "changed ");
            let frag = txn.get_or_insert_xml_fragment("prosemirror");
            frag.remove_range(&mut txn, 0, 1);
        }
        let roots = prepare_restore(&live, &version);
        restore(&mut live.transact_mut(), &roots);
        let a = Content::read(&live);
        let b = Content::read(&version);
        assert_eq!(a.export(Format::Markdown), b.export(Format::Markdown));
        assert_eq!(
            live.get_or_insert_text(TEXT_ROOT)
                .get_string(&live.transact()),
            "héllo world"
        );
    }
}
