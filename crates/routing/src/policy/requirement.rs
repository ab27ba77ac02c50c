//! What a task asks of the person who gets it: skills of a kind (any of some values) and
//! levels (at least some number), each required or only preferred.
//!
//! A process model writes them compactly, clauses separated by `;`:
//!
//! ```text
//! languages: ko; products: billing|payments; level.support >= 2; certifications: hipaa?
//! ```
//!
//! `a|b` is any of; `a, b` is both (two requirements); a trailing `?` makes an item preferred
//! (it scores) instead of required (it filters). YAML models may instead write a list whose
//! items are such strings or maps, `{kind: products, any_of: [billing, payments], required:
//! false}` and `{level: support, at_least: 2}` (`required` defaults to true). Both forms are
//! parsed when the model is deployed, so a bad requirement is refused then, not when a task
//! opens. Kinds, level names and values match case-insensitively.

use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::candidate::{normalize, Attributes};

/// Characters that structure the compact form, so they cannot appear in a value.
const RESERVED: &[char] = &[';', ',', '|', '?', ':'];

/// One thing a task asks of the person who gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    need: Need,
    required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Need {
    /// Any of these values of a kind; `keys` are the values normalised, in the same order.
    Skill {
        kind: String,
        any_of: Vec<String>,
        keys: Vec<String>,
    },
    /// A level at least this high.
    Level { name: String, at_least: i64 },
}

impl Requirement {
    /// A required skill: any of `any_of` under `kind` (`skill("languages", ["ko", "ja"])`).
    pub fn skill<I, S>(kind: &str, any_of: I) -> Result<Requirement, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let kind = kind_name(kind)?;
        let mut written = Vec::new();
        let mut keys = Vec::new();
        for value in any_of {
            let value = value.as_ref().trim();
            if value.is_empty() {
                return Err(format!("{kind:?} has an empty value"));
            }
            if let Some(c) = value.chars().find(|c| RESERVED.contains(c)) {
                return Err(format!("the value {value:?} may not contain {c:?}"));
            }
            written.push(value.to_string());
            keys.push(normalize(value));
        }
        if written.is_empty() {
            return Err(format!("{kind:?} needs at least one value"));
        }
        Ok(Requirement {
            need: Need::Skill {
                kind,
                any_of: written,
                keys,
            },
            required: true,
        })
    }

    /// A required level: `level("support", 2)` is support level 2 or higher.
    pub fn level(name: &str, at_least: i64) -> Result<Requirement, String> {
        Ok(Requirement {
            need: Need::Level {
                name: level_name(name)?,
                at_least,
            },
            required: true,
        })
    }

    /// The same requirement, but only preferred: it ranks people instead of filtering them.
    pub fn preferred(mut self) -> Requirement {
        self.required = false;
        self
    }

    /// Whether it filters (required) or only ranks (preferred).
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// What a skip names when someone lacks it: the kind (`languages`) or `level.<name>`.
    pub fn kind(&self) -> String {
        match &self.need {
            Need::Skill { kind, .. } => kind.clone(),
            Need::Level { name, .. } => format!("level.{name}"),
        }
    }

    /// Whether these attributes meet it. Allocates nothing.
    pub fn is_met_by(&self, attributes: &Attributes) -> bool {
        match &self.need {
            Need::Skill { kind, keys, .. } => keys
                .iter()
                .any(|k| attributes.has_normalized_skill(kind, k)),
            Need::Level { name, at_least } => attributes
                .normalized_level(name)
                .is_some_and(|level| level >= *at_least),
        }
    }

    /// How a met requirement reads in an explanation: the first value the person has, as
    /// the model wrote it (`ko`), or the level (`support level 2+`).
    pub(crate) fn describe_met(&self, attributes: &Attributes) -> String {
        match &self.need {
            Need::Skill { kind, any_of, keys } => keys
                .iter()
                .position(|k| attributes.has_normalized_skill(kind, k))
                .and_then(|i| any_of.get(i))
                .or(any_of.first())
                .cloned()
                .unwrap_or_default(),
            Need::Level { name, at_least } => format!("{name} level {at_least}+"),
        }
    }
}

impl fmt::Display for Requirement {
    /// The compact form, which [`parse_requirements`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.need {
            Need::Skill { kind, any_of, .. } => write!(f, "{kind}: {}", any_of.join("|"))?,
            Need::Level { name, at_least } => write!(f, "level.{name} >= {at_least}")?,
        }
        if !self.required {
            f.write_str("?")?;
        }
        Ok(())
    }
}

/// Parses the compact form: clauses separated by `;`, each `kind: a|b, c?` or
/// `level.name >= n` (optionally ending in `?`). Empty text is no requirements.
pub fn parse_requirements(text: &str) -> Result<Vec<Requirement>, String> {
    let mut out = Vec::new();
    for (index, clause) in text.split(';').enumerate() {
        let clause = clause.trim();
        if clause.is_empty() {
            continue;
        }
        parse_clause(clause, &mut out)
            .map_err(|problem| format!("requirement {} ({clause:?}): {problem}", index + 1))?;
    }
    Ok(out)
}

fn parse_clause(clause: &str, out: &mut Vec<Requirement>) -> Result<(), String> {
    if let Some((head, rest)) = clause.split_at_checked(5) {
        let is_level = head.eq_ignore_ascii_case("level")
            && (rest.starts_with('.') || rest.trim_start().starts_with(':'));
        if is_level {
            out.push(parse_level(rest)?);
            return Ok(());
        }
    }
    let (kind, values) = clause.split_once(':').ok_or(
        "expected \"kind: value\" (e.g. \"languages: ko\") or \"level.name >= n\" \
         (e.g. \"level.support >= 2\")",
    )?;
    let kind = kind_name(kind)?;
    if values.trim().is_empty() {
        return Err(format!("{kind:?} needs a value after the colon"));
    }
    for item in values.split(',') {
        let item = item.trim();
        let (alternatives, preferred) = match item.strip_suffix('?') {
            Some(rest) => (rest, true),
            None => (item, false),
        };
        if alternatives.contains('?') {
            return Err("a '?' marks a whole item as preferred and goes at its end".to_string());
        }
        if alternatives.trim().is_empty() {
            return Err(format!("{kind:?} has an empty value"));
        }
        let alternatives: Vec<&str> = alternatives.split('|').collect();
        if alternatives.iter().any(|a| a.trim().is_empty()) {
            return Err(format!("{item:?} has an empty alternative around '|'"));
        }
        let requirement = Requirement::skill(&kind, alternatives)?;
        out.push(if preferred {
            requirement.preferred()
        } else {
            requirement
        });
    }
    Ok(())
}

/// `rest` is what follows `level`: `.name >= n` with an optional trailing `?`.
fn parse_level(rest: &str) -> Result<Requirement, String> {
    const FORM: &str = "a level is written \"level.name >= n\", e.g. \"level.support >= 2\"";
    let rest = rest.trim();
    let (rest, preferred) = match rest.strip_suffix('?') {
        Some(rest) => (rest.trim_end(), true),
        None => (rest, false),
    };
    let (name, number) = rest
        .strip_prefix('.')
        .and_then(|r| r.split_once(">="))
        .ok_or(FORM)?;
    let name = name.trim();
    if name.is_empty() {
        return Err(FORM.to_string());
    }
    let number = number.trim();
    let at_least: i64 = number
        .parse()
        .map_err(|_| format!("{number:?} is not a whole number; {FORM}"))?;
    let requirement = Requirement::level(name, at_least)?;
    Ok(if preferred {
        requirement.preferred()
    } else {
        requirement
    })
}

fn kind_name(kind: &str) -> Result<String, String> {
    let kind = identifier(kind, "kind")?;
    if kind == "level" {
        return Err(
            "\"level\" is not a kind; a level is written \"level.name >= n\", e.g. \
             \"level.support >= 2\""
                .to_string(),
        );
    }
    Ok(kind)
}

fn level_name(name: &str) -> Result<String, String> {
    identifier(name, "level name")
}

/// Letters, digits, `_` and `-`, lowercased.
fn identifier(text: &str, what: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("a {what} is missing"));
    }
    if !text
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "{text:?} is not a {what} (use letters, digits, '_' and '-')"
        ));
    }
    Ok(normalize(text))
}

// Serde: a requirement serialises as a map and deserialises from a map or a one-clause
// string; a list of requirements deserialises from the compact string or a list of either.

impl Serialize for Requirement {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            kind: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            any_of: Option<&'a [String]>,
            #[serde(skip_serializing_if = "Option::is_none")]
            level: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            at_least: Option<i64>,
            required: bool,
        }
        let out = match &self.need {
            Need::Skill { kind, any_of, .. } => Out {
                kind: Some(kind),
                any_of: Some(any_of),
                level: None,
                at_least: None,
                required: self.required,
            },
            Need::Level { name, at_least } => Out {
                kind: None,
                any_of: None,
                level: Some(name),
                at_least: Some(*at_least),
                required: self.required,
            },
        };
        out.serialize(serializer)
    }
}

/// Zero or more requirements from one item: a string of clauses or one structured map.
struct Clauses(Vec<Requirement>);

impl<'de> Deserialize<'de> for Clauses {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ClausesVisitor)
    }
}

struct ClausesVisitor;

impl<'de> Visitor<'de> for ClausesVisitor {
    type Value = Clauses;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            "a requirement: \"kind: value\", \"level.name >= n\", {kind, any_of, required} \
             or {level, at_least, required}",
        )
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Clauses, E> {
        parse_requirements(text).map(Clauses).map_err(E::custom)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Clauses, A::Error> {
        let (mut kind, mut any_of, mut level, mut at_least, mut required) = (
            None::<String>,
            None::<Vec<String>>,
            None::<String>,
            None::<i64>,
            None::<bool>,
        );
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "kind" => kind = Some(map.next_value()?),
                "any_of" => any_of = Some(map.next_value()?),
                "level" => level = Some(map.next_value()?),
                "at_least" => at_least = Some(map.next_value()?),
                "required" => required = Some(map.next_value()?),
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown requirement field {other:?} (expected kind, any_of, level, \
                         at_least, required)"
                    )))
                }
            }
        }
        let requirement = match (kind, any_of, level, at_least) {
            (Some(kind), Some(any_of), None, None) => Requirement::skill(&kind, any_of),
            (None, None, Some(level), Some(at_least)) => Requirement::level(&level, at_least),
            _ => Err("a requirement is {kind, any_of} or {level, at_least}, \
                      each with an optional `required` (default true)"
                .to_string()),
        }
        .map_err(de::Error::custom)?;
        Ok(Clauses(vec![if required.unwrap_or(true) {
            requirement
        } else {
            requirement.preferred()
        }]))
    }
}

impl<'de> Deserialize<'de> for Requirement {
    /// One requirement: a map, or a string holding exactly one clause.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Clauses(mut list) = Clauses::deserialize(deserializer)?;
        match (list.pop(), list.is_empty()) {
            (Some(requirement), true) => Ok(requirement),
            _ => Err(de::Error::custom(
                "expected exactly one requirement here; use a list for several",
            )),
        }
    }
}

/// Deserialises a list of requirements from the compact string or a list whose items are
/// strings (of one or more clauses) or maps. For `#[serde(deserialize_with)]`.
pub(crate) fn deserialize_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Requirement>, D::Error> {
    struct ListVisitor;

    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<Requirement>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(
                "requirements: a string such as \"languages: ko; level.support >= 2\" or a list",
            )
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            parse_requirements(text).map_err(E::custom)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(Clauses(list)) = seq.next_element()? {
                out.extend(list);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_any(ListVisitor)
}
