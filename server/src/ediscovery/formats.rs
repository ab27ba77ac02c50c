//! The export formats: JSON lines, CSV (RFC 4180) and a ZIP archive with a manifest; Actiance
//! XML and Global Relay messages live beside this file. Pure functions of the items, run off
//! the async runtime.
//!
//! CSV is opened in spreadsheets, which run a cell starting with `=`, `+`, `-` or `@` (or a
//! tab or carriage return before one) as a formula: every such cell, whoever wrote it, is
//! written with a leading `'` so it shows as text ([`neutralised`]).
//!
//! The ZIP holds `messages.jsonl` (one message per line, deleted ones with the text kept),
//! each file's bytes under `files/<id>/<name>`, each document version's text under
//! `documents/<document>/<version>.txt` with its details in `document_versions.jsonl`, the
//! files' details in `files.jsonl`, and `manifest.json`: the criteria, the counts, and every
//! other entry with its size and SHA-256.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::criteria::Format;
use super::gather::Item;
use crate::error::Error;
use crate::subjects::zip::{ZipError, ZipWriter};

/// What an export says about itself.
pub struct Header {
    /// The criteria, as audited.
    pub criteria: Value,
    /// When it was made.
    pub generated_at: DateTime<Utc>,
    /// The range's start, if any.
    pub from: Option<DateTime<Utc>>,
    /// The range's end, if any.
    pub to: Option<DateTime<Utc>>,
}

/// The export of `items` in `format`; `files` holds the bytes of the items that are files,
/// in their order (only for [`Format::Zip`]).
pub fn write(
    format: Format,
    header: &Header,
    items: &[Item],
    files: &[Vec<u8>],
) -> Result<Vec<u8>, Error> {
    match format {
        Format::Jsonl => jsonl(items.iter()),
        Format::Csv => Ok(csv(items)),
        Format::Zip => zip(header, items, files),
        Format::Actiance => Ok(super::actiance::write(header, items)),
        Format::GlobalRelay => super::eml::archive(items),
    }
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn jsonl<'a>(items: impl Iterator<Item = &'a Item>) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    for item in items {
        serde_json::to_writer(&mut out, item).map_err(|e| Error::Internal(e.to_string()))?;
        out.push(b'\n');
    }
    Ok(out)
}

/// The columns of a CSV export, in order.
pub const CSV_COLUMNS: [&str; 14] = [
    "kind",
    "id",
    "created_at",
    "channel_id",
    "channel_name",
    "author_id",
    "author_name",
    "author_email",
    "deleted",
    "deleted_at",
    "thread_root_id",
    "name",
    "document_id",
    "text",
];

/// The characters that make a spreadsheet read a cell as a formula (or, for tab and carriage
/// return, hide one behind them) when they lead it.
const FORMULA_LEADS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `value`, neutralised if a spreadsheet would run it as a formula: a cell led by `=`, `+`,
/// `-`, `@`, a tab or a carriage return gets a single quote in front (OWASP's advice against
/// CSV injection), so `=HYPERLINK(...)` written by a user shows as text in Excel or Calc
/// instead of becoming a link or a call.
pub fn neutralised(value: &str) -> std::borrow::Cow<'_, str> {
    // Spreadsheets that trim leading spaces see the formula behind them too.
    if value
        .trim_start_matches([' ', '\u{3000}'])
        .starts_with(FORMULA_LEADS)
        || value
            .trim_start()
            .starts_with(['\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}'])
    {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// One CSV field (RFC 4180), neutralised against formulas ([`neutralised`]), always quoted
/// with quotes doubled: a spreadsheet whose locale splits on `;` or a tab would otherwise start
/// a new cell, and possibly a formula, inside an unquoted one.
fn field(out: &mut String, value: &str) {
    let value = neutralised(value);
    out.push('"');
    out.push_str(&value.replace('"', "\"\""));
    out.push('"');
}

fn row(out: &mut String, values: &[String]) {
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, v);
    }
    out.push_str("\r\n");
}

fn csv(items: &[Item]) -> Vec<u8> {
    let mut out = String::new();
    row(
        &mut out,
        &CSV_COLUMNS
            .iter()
            .map(|c| (*c).to_owned())
            .collect::<Vec<_>>(),
    );
    let opt = |v: Option<String>| v.unwrap_or_default();
    for i in items {
        row(
            &mut out,
            &[
                i.kind.to_owned(),
                i.id.clone(),
                i.created_at.to_rfc3339(),
                opt(i.channel_id.map(|c| c.to_string())),
                opt(i.channel_name.clone()),
                i.author_id.to_string(),
                i.author_name.clone(),
                i.author_email.clone(),
                i.deleted.to_string(),
                opt(i.deleted_at.map(|t| t.to_rfc3339())),
                opt(i.thread_root_id.map(|t| t.to_string())),
                opt(i.name.clone()),
                opt(i.document_id.map(|d| d.to_string())),
                opt(i.text.clone()),
            ],
        );
    }
    out.into_bytes()
}

/// A file name safe inside an archive: no folders, no control characters, at most 100
/// characters (the id beside it keeps names apart).
pub fn safe_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .take(100)
        .collect();
    let trimmed = cleaned.trim().trim_matches('.');
    if trimmed.is_empty() {
        "file".to_owned()
    } else {
        trimmed.to_owned()
    }
}

fn zip_error(e: ZipError) -> Error {
    match e {
        ZipError::TooLarge(what) => Error::refused(
            "export_too_large",
            format!("the archive would exceed {what}; narrow the criteria"),
        ),
        ZipError::Io(e) => Error::Internal(e.to_string()),
    }
}

fn zip(header: &Header, items: &[Item], files: &[Vec<u8>]) -> Result<Vec<u8>, Error> {
    let mut archive = ZipWriter::new();
    let mut entries = Vec::new();
    let mut add = |archive: &mut ZipWriter, path: String, data: &[u8], extra: Value| {
        archive.add(&path, data).map_err(zip_error)?;
        let mut entry = json!({
            "path": path,
            "bytes": data.len(),
            "sha256": sha256_hex(data),
        });
        if let (Some(e), Some(x)) = (entry.as_object_mut(), extra.as_object()) {
            e.extend(x.clone());
        }
        entries.push(entry);
        Ok::<_, Error>(())
    };
    let messages = jsonl(items.iter().filter(|i| i.kind == "message"))?;
    add(&mut archive, "messages.jsonl".into(), &messages, json!({}))?;
    let file_items: Vec<&Item> = items.iter().filter(|i| i.file.is_some()).collect();
    add(
        &mut archive,
        "files.jsonl".into(),
        &jsonl(file_items.iter().copied())?,
        json!({}),
    )?;
    let versions: Vec<&Item> = items
        .iter()
        .filter(|i| i.kind == "document_version")
        .collect();
    add(
        &mut archive,
        "document_versions.jsonl".into(),
        &jsonl(versions.iter().copied())?,
        json!({}),
    )?;
    for (item, bytes) in file_items.iter().zip(files) {
        let name = safe_name(item.name.as_deref().unwrap_or("file"));
        add(
            &mut archive,
            format!("files/{}/{name}", item.id),
            bytes,
            json!({"kind": "file", "id": item.id, "deleted": item.deleted}),
        )?;
    }
    for item in versions {
        let document = item.document_id.map(|d| d.to_string()).unwrap_or_default();
        add(
            &mut archive,
            format!("documents/{document}/{}.txt", item.id),
            item.text.as_deref().unwrap_or_default().as_bytes(),
            json!({"kind": "document_version", "id": item.id, "document_id": document}),
        )?;
    }
    let count = |kind: &str| items.iter().filter(|i| i.kind == kind).count();
    let manifest = json!({
        "format": "concord-ediscovery",
        "version": 1,
        "generated_at": header.generated_at,
        "criteria": header.criteria,
        "counts": {
            "messages": count("message"),
            "files": count("file"),
            "document_versions": count("document_version"),
        },
        "entries": entries,
    });
    let manifest =
        serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
    archive.add("manifest.json", &manifest).map_err(zip_error)?;
    archive.finish().map_err(zip_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_always_quoted_with_quotes_doubled() {
        let mut out = String::new();
        field(&mut out, "plain");
        field(&mut out, "a, \"b\"\nc");
        assert_eq!(out, "\"plain\"\"a, \"\"b\"\"\nc\"");
    }

    #[test]
    fn csv_cells_that_would_be_formulas_are_neutralised() {
        for (value, expected) in [
            (
                "=HYPERLINK(\"http://x.example\",\"y\")",
                "\"'=HYPERLINK(\"\"http://x.example\"\",\"\"y\"\")\"",
            ),
            ("+1+2", "\"'+1+2\""),
            ("-2+3", "\"'-2+3\""),
            ("@SUM(A1)", "\"'@SUM(A1)\""),
            ("\t=1", "\"'\t=1\""),
            ("\r=1", "\"'\r=1\""),
            (" =1", "\"' =1\""),
            ("\u{FF1D}1+1", "\"'\u{FF1D}1+1\""),
            // Quoted, a `;` or a tab stays inside its cell in every locale.
            ("x;=1+1", "\"x;=1+1\""),
            ("x\t=1", "\"x\t=1\""),
            ("a=1", "\"a=1\""),
        ] {
            let mut out = String::new();
            field(&mut out, value);
            assert_eq!(out, expected, "{value:?}");
        }
        let mut out = String::new();
        row(&mut out, &["=1".to_owned(), "ok".to_owned()]);
        assert_eq!(out, "\"'=1\",\"ok\"\r\n");
    }

    #[test]
    fn archive_names_hold_no_folders() {
        assert_eq!(safe_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_name("보고서 ✅.txt"), "보고서 ✅.txt");
        assert_eq!(safe_name(".."), "file");
    }
}
