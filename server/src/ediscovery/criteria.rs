//! What a search or an export selects, as the API receives it and parsed into [`Criteria`]:
//! dates as RFC 3339 times or `YYYY-MM-DD` days, kinds and formats by name. Every mistake is
//! a 422 with a stable code (`invalid_criteria`, `unknown_format`) naming the field.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::{ChannelId, UserId, WorkspaceId};
use crate::error::Error;

/// The most custodians, and the most channels, one request may name.
pub const MAX_IDS: usize = 1000;
/// The longest keyword query, in characters.
pub const MAX_QUERY_CHARS: usize = 1000;
/// The most results one page of a search holds.
pub const MAX_PAGE: usize = 200;

/// A search, as the API receives it.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "workspace": "0190d6d2-8a4e-7cc1-9d36-5c4a1b2e7f10",
    "custodians": [],
    "channels": [],
    "from": "2024-01-01",
    "to": "2024-12-31",
    "query": "invoice",
    "kinds": ["messages", "files", "document_versions"]
}))]
pub struct SearchRequest {
    /// The workspace searched (its id).
    pub workspace: WorkspaceId,
    /// Whose content: message authors, file uploaders, version makers (none: anyone's).
    #[serde(default)]
    pub custodians: Vec<UserId>,
    /// Which channels (ids of the workspace's channels and conversations; none: all).
    #[serde(default)]
    pub channels: Vec<ChannelId>,
    /// From this time (RFC 3339) or the start of this day (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    pub from: Option<String>,
    /// Before this time (RFC 3339, excluded) or up to the end of this day (`YYYY-MM-DD`).
    #[serde(default)]
    pub to: Option<String>,
    /// Keywords in the search syntax (words, `"phrases"`, `-excluded`), through the search
    /// index; none: everything the other criteria select, from storage.
    #[serde(default)]
    pub query: Option<String>,
    /// `messages`, `files`, `document_versions` (none: all three).
    #[serde(default)]
    pub kinds: Option<Vec<String>>,
    /// `next_cursor` of the previous page (the other criteria unchanged).
    #[serde(default)]
    pub cursor: Option<String>,
    /// Results per page (1 to 200, default 50).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// An export, as the API receives it: a search's criteria and a format.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "workspace": "0190d6d2-8a4e-7cc1-9d36-5c4a1b2e7f10",
    "from": "2024-01-01",
    "to": "2024-01-31",
    "format": "zip"
}))]
pub struct ExportRequest {
    /// The workspace exported (its id).
    pub workspace: WorkspaceId,
    /// Whose content (none: anyone's).
    #[serde(default)]
    pub custodians: Vec<UserId>,
    /// Which channels (none: all).
    #[serde(default)]
    pub channels: Vec<ChannelId>,
    /// From this time (RFC 3339) or the start of this day (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    pub from: Option<String>,
    /// Before this time (RFC 3339, excluded) or up to the end of this day (`YYYY-MM-DD`).
    #[serde(default)]
    pub to: Option<String>,
    /// Keywords, as for a search.
    #[serde(default)]
    pub query: Option<String>,
    /// `messages`, `files`, `document_versions` (none: all three).
    #[serde(default)]
    pub kinds: Option<Vec<String>>,
    /// `jsonl`, `csv`, `zip`, `actiance` or `globalrelay`.
    pub format: String,
}

/// One kind of content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A chat message (deleted but kept ones included).
    Message,
    /// A file shared in a channel.
    File,
    /// A named version of a document.
    DocumentVersion,
}

impl Kind {
    /// Every kind, in the order a storage listing walks them.
    pub const ALL: [Kind; 3] = [Kind::Message, Kind::File, Kind::DocumentVersion];

    /// Its name in results and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Message => "message",
            Kind::File => "file",
            Kind::DocumentVersion => "document_version",
        }
    }

    /// Its position in [`Kind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// An export's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// RFC 4180 CSV, one row per item.
    Csv,
    /// A ZIP: `messages.jsonl`, `files/`, `documents/`, `manifest.json` with SHA-256s.
    Zip,
    /// Actiance XML, as Mattermost's compliance export writes it.
    Actiance,
    /// A ZIP of RFC 5322 messages, one per channel and day (Global Relay).
    GlobalRelay,
}

impl Format {
    /// The format named `name`.
    pub fn parse(name: &str) -> Result<Format, Error> {
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "jsonl" => Format::Jsonl,
            "csv" => Format::Csv,
            "zip" => Format::Zip,
            "actiance" => Format::Actiance,
            "globalrelay" | "global_relay" => Format::GlobalRelay,
            _ => {
                return Err(Error::refused(
                    "unknown_format",
                    format!(
                        "format: `{}` is not one of jsonl, csv, zip, actiance, globalrelay",
                        name.chars().take(40).collect::<String>()
                    ),
                ))
            }
        })
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Zip => "zip",
            Format::Actiance => "actiance",
            Format::GlobalRelay => "globalrelay",
        }
    }

    /// The file name extension of its output.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Zip | Format::GlobalRelay => "zip",
            Format::Actiance => "xml",
        }
    }

    /// The content type of its output.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jsonl => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Zip | Format::GlobalRelay => "application/zip",
            Format::Actiance => "application/xml; charset=utf-8",
        }
    }
}

/// Checked criteria: distinct ids, an ordered range, known kinds.
#[derive(Clone, Debug)]
pub struct Criteria {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// Custodians (empty: anyone).
    pub custodians: Vec<UserId>,
    /// Channels (empty: all).
    pub channels: Vec<ChannelId>,
    /// From this time on.
    pub from: Option<DateTime<Utc>>,
    /// Before this time.
    pub to: Option<DateTime<Utc>>,
    /// Keywords, if any (trimmed, not empty).
    pub query: Option<String>,
    /// The kinds selected, in [`Kind::ALL`] order.
    pub kinds: Vec<Kind>,
}

/// A refusal of the criteria, naming the field.
pub fn invalid(field: &str, message: impl std::fmt::Display) -> Error {
    Error::refused("invalid_criteria", format!("{field}: {message}"))
}

/// The earliest time a criterion may name.
fn earliest() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

/// The latest time a criterion may name (the end of year 9999).
fn latest() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .map(|t| t.and_utc())
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Parses a time: RFC 3339, or a `YYYY-MM-DD` day (UTC) meaning its start, or with `end`
/// the start of the next day (so a `to` day is included whole).
pub fn parse_time(field: &str, value: &str, end: bool) -> Result<DateTime<Utc>, Error> {
    let v = value.trim();
    let parsed = if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        t.with_timezone(&Utc)
    } else if let Ok(day) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let start = day
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .ok_or_else(|| invalid(field, "not a day"))?;
        if end {
            start + TimeDelta::days(1)
        } else {
            start
        }
    } else {
        return Err(invalid(
            field,
            format!(
                "`{}` is neither an RFC 3339 time (2024-05-01T09:30:00Z) nor a day (2024-05-01)",
                v.chars().take(40).collect::<String>()
            ),
        ));
    };
    if parsed < earliest() || parsed > latest() + TimeDelta::days(1) {
        return Err(invalid(
            field,
            "must fall between 1970-01-01 and 9999-12-31",
        ));
    }
    Ok(parsed)
}

/// The kinds named (none: all), in [`Kind::ALL`] order.
fn parse_kinds(kinds: Option<&[String]>) -> Result<Vec<Kind>, Error> {
    let Some(names) = kinds else {
        return Ok(Kind::ALL.to_vec());
    };
    let mut out = BTreeSet::new();
    for name in names {
        out.insert(match name.trim() {
            "messages" | "message" => Kind::Message,
            "files" | "file" => Kind::File,
            "document_versions" | "document_version" => Kind::DocumentVersion,
            other => {
                return Err(invalid(
                    "kinds",
                    format!(
                        "`{}` is not one of messages, files, document_versions",
                        other.chars().take(40).collect::<String>()
                    ),
                ))
            }
        });
    }
    if out.is_empty() {
        return Err(invalid(
            "kinds",
            "name at least one kind, or leave it out for all",
        ));
    }
    Ok(out.into_iter().collect())
}

/// The parts every request shares, checked (the workspace's own ids are checked by the
/// service, once the caller is authorized).
#[allow(clippy::too_many_arguments)]
pub fn check(
    workspace: WorkspaceId,
    custodians: Vec<UserId>,
    channels: Vec<ChannelId>,
    from: Option<&str>,
    to: Option<&str>,
    query: Option<&str>,
    kinds: Option<&[String]>,
) -> Result<Criteria, Error> {
    let custodians: Vec<UserId> = custodians
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let channels: Vec<ChannelId> = channels
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if custodians.len() > MAX_IDS {
        return Err(invalid("custodians", format!("at most {MAX_IDS}")));
    }
    if channels.len() > MAX_IDS {
        return Err(invalid("channels", format!("at most {MAX_IDS}")));
    }
    let from = from
        .filter(|s| !s.trim().is_empty())
        .map(|s| parse_time("from", s, false))
        .transpose()?;
    let to = to
        .filter(|s| !s.trim().is_empty())
        .map(|s| parse_time("to", s, true))
        .transpose()?;
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err(invalid(
                "from",
                "the range starts at or after its end (`to`)",
            ));
        }
    }
    let query = query.map(str::trim).filter(|q| !q.is_empty());
    if let Some(q) = query {
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(invalid(
                "query",
                format!("at most {MAX_QUERY_CHARS} characters"),
            ));
        }
    }
    Ok(Criteria {
        workspace,
        custodians,
        channels,
        from,
        to,
        query: query.map(str::to_owned),
        kinds: parse_kinds(kinds)?,
    })
}

impl Criteria {
    /// What the audit log and a manifest say of the criteria: ids, dates and kinds, and
    /// whether keywords were given, never the keywords themselves (they can be content).
    pub fn summary(&self) -> Value {
        json!({
            "workspace_id": self.workspace,
            "custodians": self.custodians,
            "channels": self.channels,
            "from": self.from,
            "to": self.to,
            "keywords": self.query.is_some(),
            "kinds": self.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        })
    }

    /// The storage listing's view of the criteria.
    pub fn storage(&self) -> crate::store::ediscovery::Criteria<'_> {
        crate::store::ediscovery::Criteria {
            workspace: self.workspace,
            custodians: &self.custodians,
            channels: &self.channels,
            from: self.from,
            to: self.to,
        }
    }
}
