//! The search syntax people already know from Slack, parsed into a [`ParsedQuery`].
//!
//! `words`, `"exact phrases"`, `-excluded` (words or phrases), `in:#channel`, `in:@user`
//! (the direct conversation with them), `from:@user` (a name with spaces in quotes:
//! `from:@"Ann Lee"`), `before:`/`after:`/`on:` with
//! `YYYY-MM-DD` dates (UTC, years 0001 to 9999), `has:link|file|reaction|pin` and `is:thread`. Anything else with a
//! colon (a URL, `key:value` text) is searched as words. Mistakes are reported with the
//! character position of the offending part.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

/// A malformed query, with where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {at})")]
pub struct QueryError {
    /// Character offset of the problem in the query.
    pub at: usize,
    /// What is wrong.
    pub message: String,
}

/// One text condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextTerm {
    /// The words as typed.
    pub text: String,
    /// Quoted: the words must appear in this order.
    pub phrase: bool,
    /// Prefixed with `-`: results must not contain it.
    pub excluded: bool,
}

/// A message property `has:` can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Has {
    /// Contains a URL.
    Link,
    /// Has an attached file.
    File,
    /// Someone reacted.
    Reaction,
    /// It is pinned.
    Pin,
}

impl Has {
    /// The flag stored in the index.
    pub fn flag(self) -> &'static str {
        match self {
            Has::Link => "link",
            Has::File => "file",
            Has::Reaction => "reaction",
            Has::Pin => "pin",
        }
    }
}

/// Where `in:` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A channel by name (`in:#general` or `in:general`).
    Channel(String),
    /// The direct conversation with a person (`in:@user`).
    Direct(String),
}

/// A parsed query; names still have to be resolved against what the searcher can see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedQuery {
    /// Words and phrases.
    pub terms: Vec<TextTerm>,
    /// `in:` places (any of them).
    pub places: Vec<(usize, Place)>,
    /// `from:` people (any of them), as typed without `@`.
    pub from: Vec<(usize, String)>,
    /// Results strictly before this instant.
    pub before: Option<DateTime<Utc>>,
    /// Results at or after this instant.
    pub after: Option<DateTime<Utc>>,
    /// Required properties.
    pub has: Vec<Has>,
    /// Only messages in threads (roots with replies, and replies).
    pub is_thread: bool,
}

impl ParsedQuery {
    /// Whether the query has any positive text condition.
    pub fn has_text(&self) -> bool {
        self.terms.iter().any(|t| !t.excluded)
    }
}

fn err(at: usize, message: impl Into<String>) -> QueryError {
    QueryError {
        at,
        message: message.into(),
    }
}

/// The start of the day `value` names. Years are 0001 to 9999: chrono reads signed years of
/// any length (`+262142-12-31`), whose next day does not exist.
fn date(at: usize, key: &str, value: &str) -> Result<DateTime<Utc>, QueryError> {
    let day = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
        err(
            at,
            format!("{key}: expects a date like 2024-05-31, got {value:?}"),
        )
    })?;
    if !(1..=9999).contains(&day.year()) {
        return Err(err(
            at,
            format!("{key}: the date {value:?} is out of range; use a year from 0001 to 9999"),
        ));
    }
    Ok(day.and_time(chrono::NaiveTime::MIN).and_utc())
}

/// The start of the day after `day`.
fn next_day(at: usize, key: &str, day: DateTime<Utc>) -> Result<DateTime<Utc>, QueryError> {
    day.checked_add_signed(chrono::Duration::days(1))
        .ok_or_else(|| err(at, format!("{key}: the date is out of range")))
}

/// The text between the quote at `chars[*i]` and its closing quote; leaves `*i` after it.
fn quoted(chars: &[char], i: &mut usize) -> Result<String, QueryError> {
    let open = *i;
    let from = open + 1;
    let Some(len) = chars[from..].iter().position(|&c| c == '"') else {
        return Err(err(open, "unclosed quote: add a closing \""));
    };
    *i = from + len + 1;
    Ok(chars[from..from + len].iter().collect())
}

/// Splits `q` into (character position, excluded, quoted, text) pieces.
fn pieces(q: &str) -> Result<Vec<(usize, bool, bool, String)>, QueryError> {
    let chars: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let excluded = chars[i] == '-' && i + 1 < chars.len() && !chars[i + 1].is_whitespace();
        if excluded {
            i += 1;
        }
        if chars[i] == '"' {
            let open = i;
            let text = quoted(&chars, &mut i)?;
            if text.trim().is_empty() {
                return Err(err(open, "empty phrase"));
            }
            out.push((start, excluded, true, text));
        } else {
            let mut text = String::new();
            while i < chars.len() && !chars[i].is_whitespace() {
                if chars[i] == '"' && names_someone(&text) {
                    // A name with spaces: from:@"Ann Lee".
                    text.push_str(quoted(&chars, &mut i)?.trim());
                    continue;
                }
                text.push(chars[i]);
                i += 1;
            }
            out.push((start, excluded, false, text));
        }
    }
    Ok(out)
}

/// Whether `text` is an operator about to name a person or channel (`from:@`, `in:#`...).
fn names_someone(text: &str) -> bool {
    matches!(
        text.to_lowercase().as_str(),
        "from:" | "from:@" | "in:" | "in:@" | "in:#"
    )
}

/// Parses a query string.
pub fn parse(q: &str) -> Result<ParsedQuery, QueryError> {
    if q.chars().count() > 1000 {
        return Err(err(1000, "query is longer than 1000 characters"));
    }
    let mut out = ParsedQuery::default();
    for (at, excluded, quoted, text) in pieces(q)? {
        if !quoted {
            if let Some((key, value)) = text.split_once(':') {
                let key_l = key.to_lowercase();
                let known = matches!(
                    key_l.as_str(),
                    "in" | "from" | "before" | "after" | "on" | "has" | "is"
                );
                if known {
                    if excluded {
                        return Err(err(at, format!("{key}: cannot be excluded with -")));
                    }
                    if value.is_empty() {
                        return Err(err(at, format!("{key}: needs a value")));
                    }
                    operator(&mut out, at, &key_l, value)?;
                    continue;
                }
            }
        }
        out.terms.push(TextTerm {
            text,
            phrase: quoted,
            excluded,
        });
    }
    if let (Some(after), Some(before)) = (out.after, out.before) {
        if after >= before {
            return Err(err(0, "the after:/on: date is not before the before: date"));
        }
    }
    Ok(out)
}

fn operator(out: &mut ParsedQuery, at: usize, key: &str, value: &str) -> Result<(), QueryError> {
    match key {
        "in" => {
            let place = if let Some(user) = value.strip_prefix('@') {
                Place::Direct(user.to_owned())
            } else {
                Place::Channel(value.trim_start_matches('#').to_lowercase())
            };
            out.places.push((at, place));
        }
        "from" => out
            .from
            .push((at, value.trim_start_matches('@').to_owned())),
        "before" => out.before = Some(date(at, key, value)?),
        "after" => {
            // Slack's after: is exclusive of the day named.
            out.after = Some(next_day(at, key, date(at, key, value)?)?);
        }
        "on" => {
            let day = date(at, key, value)?;
            out.after = Some(day);
            out.before = Some(next_day(at, key, day)?);
        }
        "has" => out.has.push(match value.to_lowercase().as_str() {
            "link" => Has::Link,
            "file" => Has::File,
            "reaction" | "reactions" => Has::Reaction,
            "pin" | "pins" => Has::Pin,
            other => {
                return Err(err(
                    at,
                    format!(
                        "has:{other} is unknown; use has:link, has:file, has:reaction or has:pin"
                    ),
                ))
            }
        }),
        _ => match value.to_lowercase().as_str() {
            "thread" => out.is_thread = true,
            other => return Err(err(at, format!("is:{other} is unknown; use is:thread"))),
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_and_text() {
        let q = parse(r#"deploy "release train" -friday in:#general from:@ana has:link is:thread on:2024-05-01 http://x"#)
            .unwrap();
        assert_eq!(q.terms.len(), 4);
        assert!(q.terms[1].phrase && !q.terms[1].excluded);
        assert!(q.terms[2].excluded);
        assert_eq!(q.terms[3].text, "http://x");
        assert_eq!(q.places, vec![(31, Place::Channel("general".into()))]);
        assert_eq!(q.from[0].1, "ana");
        assert_eq!(q.has, vec![Has::Link]);
        assert!(q.is_thread);
        assert!(q.after.unwrap() < q.before.unwrap());
    }

    #[test]
    fn names_with_spaces_are_quoted() {
        let q = parse(r#"from:@"Ann Lee" in:@"Bo  Park" budget"#).unwrap();
        assert_eq!(q.from, vec![(0, "Ann Lee".into())]);
        assert_eq!(q.places, vec![(16, Place::Direct("Bo  Park".into()))]);
        assert_eq!(q.terms.len(), 1);
        assert_eq!(parse(r#"from:@"Ann"#).unwrap_err().at, 6);
    }

    #[test]
    fn dates_beyond_four_digit_years_are_mistakes_not_panics() {
        for q in [
            "on:+262142-12-31",
            "on:+262143-01-01",
            "before:+262142-12-31",
            "after:+262142-12-31",
            "after:9999-12-31 before:+100000-01-01",
            "on:-0001-01-01",
            "before:-262143-01-01",
            "after:0000-01-01",
            "on:10000-01-01",
        ] {
            let e = parse(q).unwrap_err();
            assert!(e.message.contains("date"), "{q}: {e}");
        }
        assert!(parse("on:9999-12-31").is_ok());
        assert!(parse("after:0001-01-01").is_ok());
    }

    #[test]
    fn mistakes_point_at_the_problem() {
        assert_eq!(parse(r#"a "open"#).unwrap_err().at, 2);
        assert_eq!(parse("x before:yesterdayish").unwrap_err().at, 2);
        assert!(parse("has:magic")
            .unwrap_err()
            .message
            .contains("has:magic"));
        assert!(parse("in:").is_err());
    }
}
