//! A person who may get a task, as the server's snapshot describes them when the task opens:
//! their attributes (skills and levels), their load, their presence and out-of-office period,
//! and their manager.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// One person the task could go to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The person's id as the server knows it; also the stable order round-robin and ties use.
    pub id: String,
    /// Skills and levels, matched against a task's requirements.
    #[serde(default)]
    pub attributes: Attributes,
    /// How many tasks the person has open now.
    #[serde(default)]
    pub open_tasks: u32,
    /// How many open tasks the person takes at most (set by an admin or the person);
    /// `None` is no limit.
    #[serde(default)]
    pub capacity: Option<u32>,
    /// Online, away or offline now.
    #[serde(default)]
    pub presence: Presence,
    /// A period away from work, if one is set.
    #[serde(default)]
    pub out_of_office: Option<OutOfOffice>,
    /// The manager's id, the first step up an escalation chain.
    #[serde(default)]
    pub manager: Option<String>,
}

impl Candidate {
    /// Someone online with no attributes, no open tasks and no capacity limit.
    pub fn new(id: impl Into<String>) -> Candidate {
        Candidate {
            id: id.into(),
            attributes: Attributes::default(),
            open_tasks: 0,
            capacity: None,
            presence: Presence::Online,
            out_of_office: None,
            manager: None,
        }
    }

    /// With these attributes.
    pub fn with_attributes(mut self, attributes: Attributes) -> Candidate {
        self.attributes = attributes;
        self
    }

    /// With this many open tasks and this capacity (`None` is no limit).
    pub fn with_load(mut self, open_tasks: u32, capacity: Option<u32>) -> Candidate {
        self.open_tasks = open_tasks;
        self.capacity = capacity;
        self
    }

    /// With this presence.
    pub fn with_presence(mut self, presence: Presence) -> Candidate {
        self.presence = presence;
        self
    }

    /// Out of office from `from` to `until`, both days included.
    pub fn with_out_of_office(mut self, from: NaiveDate, until: NaiveDate) -> Candidate {
        self.out_of_office = Some(OutOfOffice { from, until });
        self
    }

    /// With this manager.
    pub fn with_manager(mut self, manager: impl Into<String>) -> Candidate {
        self.manager = Some(manager.into());
        self
    }

    /// Whether the person has as many open tasks as their capacity allows, or more.
    pub fn is_at_capacity(&self) -> bool {
        self.capacity.is_some_and(|c| self.open_tasks >= c)
    }

    /// The out-of-office period covering `day`, if any.
    pub fn away_on(&self, day: NaiveDate) -> Option<&OutOfOffice> {
        self.out_of_office.as_ref().filter(|o| o.covers(day))
    }
}

/// Whether a person is at their desk, as the server's presence tracking says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Connected and active.
    #[default]
    Online,
    /// Connected but marked away (by the person or by idling).
    Away,
    /// Not connected.
    Offline,
}

/// A period away from work: the first and the last day, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OutOfOffice {
    /// First day away.
    pub from: NaiveDate,
    /// Last day away (included).
    pub until: NaiveDate,
}

impl OutOfOffice {
    /// Whether `day` falls in the period, ends included.
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.from <= day && day <= self.until
    }
}

/// A person's skills by kind (`languages`, `products`, `certifications`, …) and levels by
/// name (`support: 2`). Kinds, names and values are kept trimmed and lowercased, so matching
/// is case-insensitive; values that are empty after trimming are dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "AttributesSpec")]
pub struct Attributes {
    skills: BTreeMap<String, BTreeSet<String>>,
    levels: BTreeMap<String, i64>,
}

/// The serialised shape; deserialising goes through it so values are normalised.
#[derive(Deserialize)]
struct AttributesSpec {
    #[serde(default)]
    skills: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    levels: BTreeMap<String, i64>,
}

impl From<AttributesSpec> for Attributes {
    fn from(spec: AttributesSpec) -> Attributes {
        let mut attributes = Attributes::default();
        for (kind, values) in spec.skills {
            for value in values {
                attributes.add_skill(&kind, &value);
            }
        }
        for (name, level) in spec.levels {
            attributes.set_level(&name, level);
        }
        attributes
    }
}

impl Attributes {
    /// No skills and no levels.
    pub fn new() -> Attributes {
        Attributes::default()
    }

    /// With one more skill of a kind: `with_skill("languages", "ko")`.
    pub fn with_skill(mut self, kind: &str, value: &str) -> Attributes {
        self.add_skill(kind, value);
        self
    }

    /// With several skills of a kind: `with_skills("products", ["billing", "payments"])`.
    pub fn with_skills<I, S>(mut self, kind: &str, values: I) -> Attributes
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for value in values {
            self.add_skill(kind, value.as_ref());
        }
        self
    }

    /// With a level: `with_level("support", 2)`.
    pub fn with_level(mut self, name: &str, level: i64) -> Attributes {
        self.set_level(name, level);
        self
    }

    /// Adds a skill of a kind.
    pub fn add_skill(&mut self, kind: &str, value: &str) {
        let (kind, value) = (normalize(kind), normalize(value));
        if kind.is_empty() || value.is_empty() {
            return;
        }
        self.skills.entry(kind).or_default().insert(value);
    }

    /// Sets a level.
    pub fn set_level(&mut self, name: &str, level: i64) {
        let name = normalize(name);
        if !name.is_empty() {
            self.levels.insert(name, level);
        }
    }

    /// Whether the person has this skill, compared case-insensitively.
    pub fn has_skill(&self, kind: &str, value: &str) -> bool {
        self.has_normalized_skill(&normalize(kind), &normalize(value))
    }

    /// The person's level by name, if set.
    pub fn level(&self, name: &str) -> Option<i64> {
        self.normalized_level(&normalize(name))
    }

    /// Skills by kind, lowercased.
    pub fn skills(&self) -> &BTreeMap<String, BTreeSet<String>> {
        &self.skills
    }

    /// Levels by name, lowercased.
    pub fn levels(&self) -> &BTreeMap<String, i64> {
        &self.levels
    }

    /// The lookup routing uses: both sides already normalised, so nothing is allocated.
    pub(crate) fn has_normalized_skill(&self, kind: &str, value: &str) -> bool {
        self.skills.get(kind).is_some_and(|set| set.contains(value))
    }

    pub(crate) fn normalized_level(&self, name: &str) -> Option<i64> {
        self.levels.get(name).copied()
    }
}

/// The form names and values are compared in.
pub(crate) fn normalize(text: &str) -> String {
    text.trim().to_lowercase()
}
