//! Reading policy layers and resolving them, with errors that name file, line and key.
//!
//! A [`Layer`] is one parsed document. [`Modules`] are the deployment's enabled modules in
//! order, `default` first: the three shipped files are built into the binary, and a file of
//! the same name in `policy.dir` replaces one, or adds a module of a new name.
//! [`Modules::resolve`] lays a workspace's override on top and checks the result; under the
//! `hipaa` module that includes six years of audit retention, which no layer can lower.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

#[cfg(test)]
use super::schema::Days;
use super::schema::{ChannelPolicy, Policy, PolicyDocument};
use crate::config::PolicyConfig;
use crate::domain::ChannelId;

/// The module files shipped with Concord, built into the binary.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("default", include_str!("../../../policies/default.toml")),
    ("gdpr", include_str!("../../../policies/gdpr.toml")),
    ("hipaa", include_str!("../../../policies/hipaa.toml")),
];

/// The module whose presence puts Concord in HIPAA mode.
pub const HIPAA: &str = "hipaa";

/// Six years, the least audit retention HIPAA allows (45 CFR 164.316(b)(2)).
pub const HIPAA_AUDIT_DAYS: u32 = 2190;

/// Every key of the effective policy, dotted; the `default` module must set each.
pub const KEYS: &[&str] = &[
    "retention.messages_days",
    "retention.files_days",
    "retention.document_history_days",
    "retention.sessions_days",
    "retention.audit_days",
    "retention.deletion_grace_days",
    "phi.enabled",
    "phi.idle_logoff_minutes",
    "phi.audit_reads",
    "phi.break_glass_max_minutes",
    "data_subject.request_deadline_days",
    "data_subject.extension_days",
    "data_subject.erasure",
];

/// A policy that cannot be used: where (file or override, line, key) and why, on one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    /// The file (`policies/gdpr.toml`), override or setting at fault.
    pub origin: String,
    /// The line, counting from 1, when known.
    pub line: Option<usize>,
    /// The dotted key, when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl PolicyError {
    /// An error about a whole origin (a setting, a missing file).
    pub fn new(origin: impl Into<String>, message: impl Into<String>) -> PolicyError {
        PolicyError {
            origin: origin.into(),
            line: None,
            key: None,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message.replace('\n', " "))
    }
}

impl std::error::Error for PolicyError {}

/// What a layer is: a module may not name channels, an override may.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// A module file.
    Module,
    /// A workspace's override.
    Override,
}

/// One parsed policy document and where it came from.
#[derive(Clone, Debug)]
pub struct Layer {
    /// The module's name, or `workspace` for an override (what `sources` report).
    pub name: String,
    /// Where it was read from, for errors.
    pub origin: String,
    /// The text as written.
    pub text: String,
    /// The parsed document.
    pub document: PolicyDocument,
    /// Channels named by an override, parsed.
    channels: BTreeMap<ChannelId, super::schema::ChannelLayer>,
}

impl Layer {
    /// Parses `text`; a syntax error, an unknown key, a value of the wrong type or out of
    /// range is an error naming its line and key.
    pub fn parse(
        name: &str,
        origin: &str,
        text: &str,
        kind: LayerKind,
    ) -> Result<Layer, PolicyError> {
        let document: PolicyDocument = toml::from_str(text).map_err(|e| {
            let span = e.span();
            PolicyError {
                origin: origin.to_owned(),
                line: span.as_ref().map(|s| line_at(text, s.start)),
                key: span
                    .as_ref()
                    .and_then(|s| key_at(text, s))
                    .or_else(|| unknown_key_in(e.message())),
                message: e.message().trim().to_owned(),
            }
        })?;
        let mut layer = Layer {
            name: name.to_owned(),
            origin: origin.to_owned(),
            text: text.to_owned(),
            document,
            channels: BTreeMap::new(),
        };
        let named: Vec<(String, super::schema::ChannelLayer)> = layer
            .document
            .channels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if kind == LayerKind::Module && !named.is_empty() {
            return Err(
                layer.error_at(&["channels"], "only a workspace override may name channels")
            );
        }
        if kind == LayerKind::Override
            && layer
                .document
                .retention
                .as_ref()
                .is_some_and(|r| r.audit_days.is_some())
        {
            return Err(layer.error_at(
                &["retention", "audit_days"],
                "audit retention is the deployment's, not a workspace's: the audit log is one \
                 chain for every workspace, so set it in a policy module (policy.modules, \
                 policy.dir) and leave it out of the override",
            ));
        }
        for (id, channel) in named {
            let parsed: ChannelId = id
                .parse()
                .map_err(|_| layer.error_at(&["channels", &id], "is not a channel id (a UUID)"))?;
            // One spelling per channel: two spellings of one id would be two keys of which
            // one silently wins, and what is shown or filtered by id would miss the other.
            let canonical = parsed.to_string();
            if canonical != id {
                return Err(layer.error_at(
                    &["channels", &id],
                    format!("write the channel id in its canonical form, {canonical}"),
                ));
            }
            layer.channels.insert(parsed, channel);
        }
        Ok(layer)
    }

    /// A JSON override document, as its TOML equivalent (what is stored); errors name the
    /// key but no line.
    pub fn parse_json(name: &str, origin: &str, json: &[u8]) -> Result<Layer, PolicyError> {
        let value: Value = serde_json::from_slice(json).map_err(|e| PolicyError {
            origin: origin.to_owned(),
            line: Some(e.line()),
            key: None,
            message: format!("not valid JSON: {e}"),
        })?;
        if !value.is_object() {
            return Err(PolicyError::new(
                origin,
                "the document must be a JSON object",
            ));
        }
        if let Some(key) = null_key(&value, "") {
            return Err(PolicyError {
                origin: origin.to_owned(),
                line: None,
                key: Some(key),
                message: "null is not a policy value: leave the key out instead".into(),
            });
        }
        let text = toml::to_string(&value).map_err(|e| PolicyError::new(origin, e.to_string()))?;
        Layer::parse(name, origin, &text, LayerKind::Override)
            .map_err(|e| PolicyError { line: None, ..e })
    }

    /// The channels an override names (in their canonical spelling, the only one accepted).
    pub fn channel_ids(&self) -> impl Iterator<Item = ChannelId> + '_ {
        self.channels.keys().copied()
    }

    /// An error about `path` in this layer, at the line where it is written.
    pub fn error_at(&self, path: &[&str], message: impl Into<String>) -> PolicyError {
        PolicyError {
            origin: self.origin.clone(),
            line: line_of(&self.text, path),
            key: Some(path.join(".")),
            message: message.into(),
        }
    }

    /// The values this layer sets, by dotted key (channels and the description left out).
    fn values(&self) -> BTreeMap<String, Value> {
        let mut doc = self.document.clone();
        doc.channels.clear();
        doc.description = None;
        let mut out = BTreeMap::new();
        flatten(
            &serde_json::to_value(&doc).unwrap_or(Value::Null),
            "",
            &mut out,
        );
        out
    }
}

/// The resolved policy and which layer each value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// Every key with its value.
    pub policy: Policy,
    /// Dotted key → the module (`default`, `gdpr`, ...) or `workspace` that set it.
    pub sources: BTreeMap<String, String>,
}

/// The deployment's enabled modules, in order, `default` first.
#[derive(Clone, Debug)]
pub struct Modules {
    layers: Vec<Layer>,
    digest: String,
    base: Resolved,
}

impl Modules {
    /// Reads and checks the modules `policy.modules` enables (from `policy.dir`, else built
    /// in), and resolves them.
    pub fn load(config: &PolicyConfig) -> Result<Modules, PolicyError> {
        let mut names: Vec<&str> = config.modules.iter().map(String::as_str).collect();
        if names.first() != Some(&"default") {
            names.insert(0, "default");
        }
        let mut layers: Vec<Layer> = Vec::new();
        for name in names {
            if layers.iter().any(|l| l.name == name) {
                return Err(PolicyError::new(
                    "policy.modules",
                    format!("{name} is listed twice"),
                ));
            }
            let (origin, text) = read_module(config.dir.as_deref(), name)?;
            layers.push(Layer::parse(name, &origin, &text, LayerKind::Module)?);
        }
        let default = &layers[0];
        let set = default.values();
        if let Some(missing) = KEYS.iter().find(|k| !set.contains_key(**k)) {
            return Err(PolicyError {
                origin: default.origin.clone(),
                line: None,
                key: Some((*missing).to_owned()),
                message: "missing: the default module must set every key".into(),
            });
        }
        let mut hash = Sha256::new();
        for layer in &layers {
            hash.update(layer.name.as_bytes());
            hash.update([0]);
            hash.update(layer.text.as_bytes());
            hash.update([0]);
        }
        let digest = hex::encode(hash.finalize());
        let base = resolve(&layers, None)?;
        Ok(Modules {
            layers,
            digest,
            base,
        })
    }

    /// The enabled modules' names, in order.
    pub fn names(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.name.clone()).collect()
    }

    /// Whether the `hipaa` module is enabled.
    pub fn hipaa(&self) -> bool {
        self.layers.iter().any(|l| l.name == HIPAA)
    }

    /// A digest of the modules' names and texts: a reload that changes nothing keeps the
    /// version.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The deployment's policy, before any workspace override.
    pub fn base(&self) -> &Resolved {
        &self.base
    }

    /// Each module's name, origin and text, as stored with a deployment version.
    pub fn manifest(&self) -> Value {
        Value::Array(
            self.layers
                .iter()
                .map(|l| {
                    serde_json::json!({
                        "name": l.name,
                        "origin": l.origin,
                        "description": l.document.description,
                        "text": l.text,
                    })
                })
                .collect(),
        )
    }

    /// Each module's name, origin and description.
    pub fn described(&self) -> Vec<(String, String, Option<String>)> {
        self.layers
            .iter()
            .map(|l| {
                (
                    l.name.clone(),
                    l.origin.clone(),
                    l.document.description.clone(),
                )
            })
            .collect()
    }

    /// The policy with `workspace` (an override) on top, checked.
    pub fn resolve(&self, workspace: Option<&Layer>) -> Result<Resolved, PolicyError> {
        resolve(&self.layers, workspace)
    }
}

/// The origin and text of module `name`: `<dir>/<name>.toml` if it exists, else built in.
fn read_module(dir: Option<&Path>, name: &str) -> Result<(String, String), PolicyError> {
    if let Some(dir) = dir {
        if !dir.is_dir() {
            return Err(PolicyError::new(
                "policy.dir",
                format!("{} is not a directory", dir.display()),
            ));
        }
        let path: PathBuf = dir.join(format!("{name}.toml"));
        if path.is_file() {
            let origin = path.display().to_string();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| PolicyError::new(origin.clone(), format!("cannot read: {e}")))?;
            return Ok((origin, text));
        }
    }
    match BUILT_IN.iter().find(|(n, _)| *n == name) {
        Some((_, text)) => Ok((format!("policies/{name}.toml (built in)"), (*text).to_owned())),
        None => Err(PolicyError::new(
            "policy.modules",
            match dir {
                Some(dir) => format!(
                    "no policy module named {name}: neither {}/{name}.toml nor a built-in module",
                    dir.display()
                ),
                None => format!(
                    "no policy module named {name} (built in: default, gdpr, hipaa; set policy.dir for others)"
                ),
            },
        )),
    }
}

fn resolve(modules: &[Layer], workspace: Option<&Layer>) -> Result<Resolved, PolicyError> {
    let layers: Vec<&Layer> = modules.iter().chain(workspace).collect();
    let mut merged: BTreeMap<String, (Value, usize)> = BTreeMap::new();
    for (i, layer) in layers.iter().enumerate() {
        for (key, value) in layer.values() {
            merged.insert(key, (value, i));
        }
    }
    let mut nested = serde_json::Map::new();
    for (key, (value, _)) in &merged {
        let (table, field) = key.split_once('.').unwrap_or(("", key.as_str()));
        let entry = nested
            .entry(table.to_owned())
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Value::Object(map) = entry {
            map.insert(field.to_owned(), value.clone());
        }
    }
    let mut policy: Policy = serde_json::from_value(Value::Object(nested)).map_err(|e| {
        PolicyError::new(
            layers[0].origin.clone(),
            format!("the layers do not resolve to a policy: {e}"),
        )
    })?;
    let mut sources: BTreeMap<String, String> = merged
        .iter()
        .map(|(k, (_, i))| (k.clone(), layers[*i].name.clone()))
        .collect();
    if let Some(layer) = workspace {
        for (id, c) in &layer.channels {
            let prefix = format!("channels.{id}");
            for (key, set) in [
                ("messages_days", c.messages_days.is_some()),
                ("files_days", c.files_days.is_some()),
                ("phi", c.phi.is_some()),
            ] {
                if set {
                    sources.insert(format!("{prefix}.{key}"), layer.name.clone());
                }
            }
            policy.channels.insert(
                *id,
                ChannelPolicy {
                    messages_days: c.messages_days.unwrap_or(policy.retention.messages_days),
                    files_days: c.files_days.unwrap_or(policy.retention.files_days),
                    phi: c.phi.unwrap_or(policy.phi.enabled),
                },
            );
        }
    }
    if modules.iter().any(|l| l.name == HIPAA)
        && !policy.retention.audit_days.at_least(HIPAA_AUDIT_DAYS)
    {
        let at = merged.get("retention.audit_days").map_or(0, |(_, i)| *i);
        return Err(layers[at].error_at(
            &["retention", "audit_days"],
            format!(
                "HIPAA mode needs the audit log kept at least six years ({HIPAA_AUDIT_DAYS} days) or \"forever\", not {}",
                policy.retention.audit_days
            ),
        ));
    }
    // Where PHI is held, HIPAA's safeguards hold for every later layer and override: reads
    // stay audited, and logoff and emergency access are no longer than the module sets.
    if let Some(hipaa) = modules.iter().find(|l| l.name == HIPAA) {
        if policy.phi.enabled || policy.channels.values().any(|c| c.phi) {
            let refuse = |key: &str, message: String| {
                let at = merged.get(&format!("phi.{key}")).map_or(0, |(_, i)| *i);
                layers[at].error_at(&["phi", key], message)
            };
            if !policy.phi.audit_reads {
                return Err(refuse(
                    "audit_reads",
                    "HIPAA mode records every read of PHI; it cannot be turned off where PHI is held"
                        .to_owned(),
                ));
            }
            let ceiling = hipaa.document.phi.as_ref();
            for (key, value, max) in [
                (
                    "idle_logoff_minutes",
                    policy.phi.idle_logoff_minutes,
                    ceiling.and_then(|p| p.idle_logoff_minutes).map(|b| b.0),
                ),
                (
                    "break_glass_max_minutes",
                    policy.phi.break_glass_max_minutes,
                    ceiling.and_then(|p| p.break_glass_max_minutes).map(|b| b.0),
                ),
            ] {
                if let Some(max) = max.filter(|max| value > *max) {
                    return Err(refuse(
                        key,
                        format!("HIPAA mode allows at most {max} minutes (the hipaa module's value), not {value}"),
                    ));
                }
            }
        }
    }
    Ok(Resolved { policy, sources })
}

impl Resolved {
    /// The effective values as dotted keys with their sources, in `KEYS` order, then channels.
    pub fn lines(&self) -> Vec<(String, Value, String)> {
        let mut values = BTreeMap::new();
        flatten(
            &serde_json::to_value(&self.policy).unwrap_or(Value::Null),
            "",
            &mut values,
        );
        let source = |k: &str| self.sources.get(k).cloned().unwrap_or_default();
        let mut out: Vec<(String, Value, String)> = KEYS
            .iter()
            .filter_map(|&k| values.get(k).map(|v| (k.to_owned(), v.clone(), source(k))))
            .collect();
        for (k, v) in values {
            if k.starts_with("channels.") {
                let s = self
                    .sources
                    .get(&k)
                    .cloned()
                    .unwrap_or_else(|| "workspace value".into());
                out.push((k, v, s));
            }
        }
        out
    }
}

/// Dotted keys of every leaf value (nulls left out).
fn flatten(value: &Value, prefix: &str, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(v, &key, out);
            }
        }
        Value::Null => {}
        leaf => {
            out.insert(prefix.to_owned(), leaf.clone());
        }
    }
}

/// The dotted key of the first null in a JSON document.
fn null_key(value: &Value, prefix: &str) -> Option<String> {
    match value {
        Value::Null => Some(prefix.to_owned()),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            null_key(v, &key)
        }),
        _ => None,
    }
}

/// The line (from 1) holding byte `offset`.
fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The dotted key whose name or value `span` falls in (the deepest one).
fn key_at(text: &str, span: &Range<usize>) -> Option<String> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut found = None;
    descend(doc.as_table(), "", span.start, &mut found);
    found
}

fn descend(
    table: &dyn toml_edit::TableLike,
    prefix: &str,
    offset: usize,
    found: &mut Option<String>,
) {
    for (name, item) in table.iter() {
        let path = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        };
        let hit = |span: Option<Range<usize>>| {
            span.is_some_and(|s| s.contains(&offset) || s.start == offset)
        };
        let key_span = table.get_key_value(name).and_then(|(k, _)| k.span());
        if hit(key_span) || hit(item.span()) {
            *found = Some(path.clone());
        }
        if let Some(inner) = item.as_table_like() {
            descend(inner, &path, offset, found);
        }
    }
}

/// The line where dotted `path` is written (its key, else its table's header).
fn line_of(text: &str, path: &[&str]) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut table: &dyn toml_edit::TableLike = doc.as_table();
    let mut line = None;
    for name in path {
        let (key, item) = table.get_key_value(name)?;
        if let Some(span) = key.span().or_else(|| item.span()) {
            line = Some(line_at(text, span.start));
        }
        match item.as_table_like() {
            Some(inner) => table = inner,
            None => break,
        }
    }
    line
}

/// The key an "unknown field `x`" message names, when the span found none.
fn unknown_key_in(message: &str) -> Option<String> {
    let rest = message.split_once("unknown field `")?.1;
    Some(rest.split_once('`')?.0.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modules(names: &[&str]) -> Result<Modules, PolicyError> {
        Modules::load(&PolicyConfig {
            modules: names.iter().map(|n| (*n).to_owned()).collect(),
            dir: None,
        })
    }

    fn override_layer(text: &str) -> Result<Layer, PolicyError> {
        Layer::parse("workspace", "override", text, LayerKind::Override)
    }

    #[test]
    fn the_shipped_modules_load_and_layer_in_order() {
        let m = modules(&["default"]).unwrap();
        assert_eq!(m.names(), ["default"]);
        assert_eq!(m.base().policy.retention.messages_days, Days::Forever);
        assert_eq!(m.base().sources["retention.sessions_days"], "default");
        let m = modules(&["default", "gdpr", "hipaa"]).unwrap();
        let p = &m.base().policy;
        assert!(m.hipaa());
        assert_eq!(p.retention.audit_days, Days::Limited(2190));
        assert_eq!(p.retention.sessions_days, Days::Limited(30));
        assert_eq!(p.phi.idle_logoff_minutes, 15);
        assert!(p.phi.enabled);
        assert_eq!(p.data_subject.request_deadline_days, 30);
        assert_eq!(m.base().sources["retention.audit_days"], "hipaa");
        assert_eq!(m.base().sources["retention.sessions_days"], "gdpr");
        assert_eq!(m.base().sources["phi.audit_reads"], "hipaa");
        assert_eq!(m.base().sources["retention.messages_days"], "default");
        // `default` comes first even when not listed.
        assert_eq!(modules(&["gdpr"]).unwrap().names(), ["default", "gdpr"]);
    }

    #[test]
    fn every_key_is_set_by_the_default_module_and_listed() {
        let m = modules(&["default"]).unwrap();
        let lines: Vec<String> = m.base().lines().into_iter().map(|l| l.0).collect();
        assert_eq!(lines, KEYS);
    }

    #[test]
    fn an_override_replaces_only_what_it_sets_and_names_channels() {
        let m = modules(&["default", "gdpr"]).unwrap();
        let channel = ChannelId::generate();
        let layer = override_layer(&format!(
            "[retention]\nmessages_days = 365\n\n[channels.\"{channel}\"]\nphi = true\nfiles_days = 7\n"
        ))
        .unwrap();
        let r = m.resolve(Some(&layer)).unwrap();
        assert_eq!(r.policy.retention.messages_days, Days::Limited(365));
        assert_eq!(r.sources["retention.messages_days"], "workspace");
        assert_eq!(r.sources["retention.sessions_days"], "gdpr");
        let c = &r.policy.channels[&channel];
        assert!(c.phi && r.policy.channel_phi(channel));
        assert_eq!(c.files_days, Days::Limited(7));
        assert_eq!(c.messages_days, Days::Limited(365));
        assert_eq!(r.sources[&format!("channels.{channel}.phi")], "workspace");
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let e = override_layer("# retention\n[retention]\nmessages_days = -1\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert_eq!(e.key.as_deref(), Some("retention.messages_days"), "{e}");
        assert!(e.message.contains("out of range"), "{e}");
        assert!(
            e.to_string()
                .starts_with("override:3: retention.messages_days: "),
            "{e}"
        );

        let e = override_layer("[phi]\nenabled = true\nidle_logof_minutes = 10\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert_eq!(e.key.as_deref(), Some("phi.idle_logof_minutes"), "{e}");
        assert!(e.message.contains("unknown field"), "{e}");

        let e = override_layer("[phi]\nenabled = \"yes\"\n").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(2), Some("phi.enabled")),
            "{e}"
        );

        let e = override_layer("[phi]\nidle_logoff_minutes = 0\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("phi.idle_logoff_minutes"), "{e}");
        assert!(e.message.contains("between 1 and 1440"), "{e}");

        let e = override_layer("[retention]\nfiles_days = \"always\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("retention.files_days"), "{e}");

        let e = override_layer("[nonsense]\nx = 1\n").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
        assert_eq!(e.key.as_deref(), Some("nonsense"), "{e}");

        let e = override_layer("[channels.general]\nphi = true\n").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(1), Some("channels.general")),
            "{e}"
        );

        let e = override_layer("[retention\n").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");

        let e = Layer::parse(
            "gdpr",
            "gdpr.toml",
            &format!("[channels.\"{}\"]\nphi = true\n", ChannelId::generate()),
            LayerKind::Module,
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("channels"), "{e}");
    }

    #[test]
    fn json_overrides_are_checked_the_same_way_by_key() {
        let layer = Layer::parse_json(
            "workspace",
            "override",
            br#"{"retention":{"files_days":30}}"#,
        )
        .unwrap();
        assert_eq!(layer.text.trim(), "[retention]\nfiles_days = 30");
        let e = Layer::parse_json(
            "workspace",
            "override",
            br#"{"retention":{"files_days":-3}}"#,
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("retention.files_days"), "{e}");
        let e =
            Layer::parse_json("workspace", "override", br#"{"phi":{"enabled":null}}"#).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("phi.enabled"), "{e}");
        let e = Layer::parse_json("workspace", "override", b"{\n\"phi\": ").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn audit_retention_is_the_deployments_not_a_workspaces() {
        for modules_on in [&["default", "hipaa"][..], &["default", "gdpr"][..]] {
            assert!(modules(modules_on).is_ok());
            for value in ["365", "\"forever\"", "3000"] {
                let e =
                    override_layer(&format!("[retention]\n\naudit_days = {value}\n")).unwrap_err();
                assert_eq!(e.line, Some(3), "{e}");
                assert_eq!(e.key.as_deref(), Some("retention.audit_days"), "{e}");
                assert!(e.message.contains("not a workspace's"), "{e}");
            }
        }
        let e = Layer::parse_json(
            "workspace",
            "override",
            br#"{"retention":{"audit_days":"forever"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("retention.audit_days"), "{e}");
        // A module still may, and under hipaa no later module lowers it below six years.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("short.toml"),
            "[retention]\naudit_days = 365\n",
        )
        .unwrap();
        let e = Modules::load(&PolicyConfig {
            modules: vec!["default".into(), "hipaa".into(), "short".into()],
            dir: Some(dir.path().to_owned()),
        })
        .unwrap_err();
        assert!(e.origin.ends_with("short.toml"), "{e}");
        assert!(e.message.contains("six years"), "{e}");
    }

    #[test]
    fn an_override_names_each_channel_in_one_spelling() {
        let channel = ChannelId::generate();
        let canonical = channel.to_string();
        for spelling in [
            canonical.to_uppercase(),
            canonical.replace('-', ""),
            format!("{{{canonical}}}"),
            format!("urn:uuid:{canonical}"),
        ] {
            let e =
                override_layer(&format!("[channels.\"{spelling}\"]\nphi = true\n")).unwrap_err();
            assert_eq!(e.line, Some(1), "{e}");
            assert_eq!(e.key, Some(format!("channels.{spelling}")), "{e}");
            assert!(e.message.contains(&canonical), "{e}");
        }
        let layer = override_layer(&format!("[channels.\"{canonical}\"]\nphi = true\n")).unwrap();
        assert!(layer.channels.contains_key(&channel));
    }

    #[test]
    fn a_policy_dir_replaces_and_adds_modules() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("hipaa.toml"),
            "[retention]\naudit_days = 3000\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("finance.toml"),
            "description = \"SEC 17a-4\"\n[retention]\nmessages_days = 2555\n",
        )
        .unwrap();
        let config = PolicyConfig {
            modules: vec!["default".into(), "hipaa".into(), "finance".into()],
            dir: Some(dir.path().to_owned()),
        };
        let m = Modules::load(&config).unwrap();
        assert_eq!(m.base().policy.retention.audit_days, Days::Limited(3000));
        assert_eq!(m.base().policy.retention.messages_days, Days::Limited(2555));
        assert_eq!(m.base().sources["retention.messages_days"], "finance");

        std::fs::write(
            dir.path().join("hipaa.toml"),
            "[retention]\naudit_days = 2000\n",
        )
        .unwrap();
        let e = Modules::load(&config).unwrap_err();
        assert!(e.origin.ends_with("hipaa.toml"), "{e}");
        assert_eq!(e.line, Some(2), "{e}");

        let e = Modules::load(&PolicyConfig {
            modules: vec!["sox".into()],
            dir: Some(dir.path().to_owned()),
        })
        .unwrap_err();
        assert_eq!(e.origin, "policy.modules", "{e}");

        std::fs::write(dir.path().join("default.toml"), "[phi]\nenabled = false\n").unwrap();
        let e = Modules::load(&PolicyConfig {
            modules: vec!["default".into()],
            dir: Some(dir.path().to_owned()),
        })
        .unwrap_err();
        assert!(e.message.contains("must set every key"), "{e}");
    }
}
