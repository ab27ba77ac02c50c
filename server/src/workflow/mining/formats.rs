//! The event log's three file formats, written a trace at a time into a chunk of text:
//!
//! - XES (IEEE 1849-2016): the `concept`, `lifecycle`, `time` and `org` extensions declared,
//!   global trace and event attributes, an activity classifier; a trace per instance
//!   (`concept:name` its id, with its process, version and status), an event per activity
//!   start, completion or abort (`lifecycle:transition` `start`, `complete`, `ate_abort`).
//! - OCEL 2.0 JSON (`objectTypes`, `eventTypes`, `events`, `objects`): an event per completed
//!   activity, related to its instance (an object whose type is the process) and to the
//!   objects its instance's variables name; the objects follow the events, since they are
//!   known only once every instance was read.
//! - CSV (RFC 4180, every field quoted, a field that a spreadsheet would run as a formula
//!   prefixed with `'`): a row per event, as in XES.
//!
//! Times are UTC with microseconds; resources are user ids, never names.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};

use super::log::{Lifecycle, Trace};

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

// ---- XES ----

/// The log's opening: declarations, globals, classifiers and log attributes.
pub(super) fn xes_header() -> String {
    concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<log xes.version=\"1849-2016\" xes.features=\"nested-attributes\" xmlns=\"http://www.xes-standard.org/\">\n",
        "  <extension name=\"Concept\" prefix=\"concept\" uri=\"http://www.xes-standard.org/concept.xesext\"/>\n",
        "  <extension name=\"Lifecycle\" prefix=\"lifecycle\" uri=\"http://www.xes-standard.org/lifecycle.xesext\"/>\n",
        "  <extension name=\"Time\" prefix=\"time\" uri=\"http://www.xes-standard.org/time.xesext\"/>\n",
        "  <extension name=\"Organizational\" prefix=\"org\" uri=\"http://www.xes-standard.org/org.xesext\"/>\n",
        "  <global scope=\"trace\">\n",
        "    <string key=\"concept:name\" value=\"__INVALID__\"/>\n",
        "    <string key=\"process_id\" value=\"__INVALID__\"/>\n",
        "    <int key=\"version\" value=\"0\"/>\n",
        "    <string key=\"status\" value=\"__INVALID__\"/>\n",
        "  </global>\n",
        "  <global scope=\"event\">\n",
        "    <string key=\"concept:name\" value=\"__INVALID__\"/>\n",
        "    <string key=\"lifecycle:transition\" value=\"complete\"/>\n",
        "    <date key=\"time:timestamp\" value=\"1970-01-01T00:00:00.000000Z\"/>\n",
        "    <string key=\"element\" value=\"__INVALID__\"/>\n",
        "  </global>\n",
        "  <classifier name=\"Activity\" keys=\"concept:name\"/>\n",
        "  <classifier name=\"Activity and transition\" keys=\"concept:name lifecycle:transition\"/>\n",
        "  <string key=\"concept:name\" value=\"Concord workflow log\"/>\n",
        "  <string key=\"lifecycle:model\" value=\"standard\"/>\n",
    )
    .to_owned()
}

/// The log's closing.
pub(super) const XES_FOOTER: &str = "</log>\n";

/// Appends one trace.
pub(super) fn xes_trace(out: &mut String, t: &Trace) {
    out.push_str("  <trace>\n    <string key=\"concept:name\" value=\"");
    let _ = write!(out, "{}", t.instance);
    out.push_str("\"/>\n    <string key=\"process_id\" value=\"");
    xml_escape(out, &t.process_id);
    let _ = write!(
        out,
        "\"/>\n    <int key=\"version\" value=\"{}\"/>\n    <string key=\"status\" value=\"",
        t.version
    );
    xml_escape(out, &t.status);
    out.push_str("\"/>\n");
    for e in &t.events {
        out.push_str("    <event>\n      <string key=\"concept:name\" value=\"");
        xml_escape(out, &e.activity);
        let _ = write!(
            out,
            "\"/>\n      <string key=\"lifecycle:transition\" value=\"{}\"/>\n      <date key=\"time:timestamp\" value=\"{}\"/>\n",
            e.lifecycle.as_str(),
            ts(e.at)
        );
        if let Some(r) = e.resource {
            let _ = writeln!(out, "      <string key=\"org:resource\" value=\"{r}\"/>");
        }
        out.push_str("      <string key=\"element\" value=\"");
        xml_escape(out, &e.element);
        let _ = write!(
            out,
            "\"/>\n      <string key=\"element_type\" value=\"{}\"/>\n    </event>\n",
            e.kind
        );
    }
    out.push_str("  </trace>\n");
}

/// Appends `s` escaped for an XML attribute value. Characters XML 1.0 cannot hold become
/// U+FFFD; line breaks and tabs are written as references so they survive attribute
/// normalisation.
fn xml_escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

// ---- OCEL 2.0 JSON ----

/// The objects an OCEL log's events relate to, gathered while its events are written.
#[derive(Default)]
pub(super) struct OcelObjects {
    /// One per instance: id, process, status, version, start and end, related objects.
    instances: Vec<InstanceObject>,
    /// The objects variables named, by id, with their type.
    named: BTreeMap<String, Arc<str>>,
}

struct InstanceObject {
    id: uuid::Uuid,
    process_id: String,
    status: String,
    version: i64,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    related: Vec<(Arc<str>, String)>,
}

impl OcelObjects {
    /// Adds a trace's instance and the objects its variables name.
    pub fn add(&mut self, t: &Trace) {
        for (_, object_type, id) in &t.objects {
            self.named
                .entry(id.clone())
                .or_insert_with(|| object_type.clone());
        }
        self.instances.push(InstanceObject {
            id: t.instance,
            process_id: t.process_id.clone(),
            status: t.status.clone(),
            version: t.version,
            started_at: t.started_at,
            ended_at: t.ended_at,
            related: t
                .objects
                .iter()
                .map(|(variable, _, id)| (variable.clone(), id.clone()))
                .collect(),
        });
    }
}

/// The log's opening, through the start of its events: the object types (one per process,
/// one per type `objects` names) and the event types (one per activity name).
pub(super) fn ocel_header(
    processes: &BTreeSet<String>,
    named_types: &BTreeSet<String>,
    activities: &BTreeSet<Arc<str>>,
) -> String {
    let mut out = String::from("{\"objectTypes\":[");
    let mut first = true;
    for p in processes {
        comma(&mut out, &mut first);
        out.push_str("{\"name\":");
        json_str(&mut out, p);
        out.push_str(
            ",\"attributes\":[{\"name\":\"status\",\"type\":\"string\"},\
             {\"name\":\"version\",\"type\":\"integer\"},\
             {\"name\":\"started_at\",\"type\":\"time\"},\
             {\"name\":\"ended_at\",\"type\":\"time\"}]}",
        );
    }
    for t in named_types.iter().filter(|t| !processes.contains(*t)) {
        comma(&mut out, &mut first);
        out.push_str("{\"name\":");
        json_str(&mut out, t);
        out.push_str(",\"attributes\":[]}");
    }
    out.push_str("],\"eventTypes\":[");
    let mut first = true;
    for a in activities {
        comma(&mut out, &mut first);
        out.push_str("{\"name\":");
        json_str(&mut out, a);
        out.push_str(
            ",\"attributes\":[{\"name\":\"element\",\"type\":\"string\"},\
             {\"name\":\"resource\",\"type\":\"string\"},\
             {\"name\":\"started_at\",\"type\":\"time\"}]}",
        );
    }
    out.push_str("],\"events\":[\n");
    out
}

/// Appends a trace's completed activities as events; `first` tells whether one was written.
pub(super) fn ocel_events(out: &mut String, t: &Trace, first: &mut bool) {
    for e in t
        .events
        .iter()
        .filter(|e| e.lifecycle == Lifecycle::Complete)
    {
        if !*first {
            out.push_str(",\n");
        }
        *first = false;
        let _ = write!(out, "{{\"id\":\"{}:{}\",\"type\":", t.instance, e.step);
        json_str(out, &e.activity);
        let _ = write!(out, ",\"time\":\"{}\",\"attributes\":[", ts(e.at));
        out.push_str("{\"name\":\"element\",\"value\":");
        json_str(out, &e.element);
        out.push('}');
        if let Some(r) = e.resource {
            let _ = write!(out, ",{{\"name\":\"resource\",\"value\":\"{r}\"}}");
        }
        if let Some(s) = e.started_at {
            let _ = write!(out, ",{{\"name\":\"started_at\",\"value\":\"{}\"}}", ts(s));
        }
        let _ = write!(
            out,
            "],\"relationships\":[{{\"objectId\":\"{}\",\"qualifier\":\"case\"}}",
            t.instance
        );
        for (variable, _, id) in &t.objects {
            out.push_str(",{\"objectId\":");
            json_str(out, id);
            out.push_str(",\"qualifier\":");
            json_str(out, variable);
            out.push('}');
        }
        out.push_str("]}");
    }
}

/// The log's closing: the objects, then the end of the document.
pub(super) fn ocel_footer(objects: &OcelObjects) -> String {
    const STATIC: &str = "1970-01-01T00:00:00Z";
    let mut out = String::from("\n],\"objects\":[\n");
    let mut first = true;
    for o in &objects.instances {
        if !first {
            out.push_str(",\n");
        }
        first = false;
        let _ = write!(out, "{{\"id\":\"{}\",\"type\":", o.id);
        json_str(&mut out, &o.process_id);
        out.push_str(",\"attributes\":[{\"name\":\"status\",\"time\":\"");
        out.push_str(STATIC);
        out.push_str("\",\"value\":");
        json_str(&mut out, &o.status);
        let _ = write!(
            out,
            "}},{{\"name\":\"version\",\"time\":\"{STATIC}\",\"value\":{}}},\
             {{\"name\":\"started_at\",\"time\":\"{STATIC}\",\"value\":\"{}\"}}",
            o.version,
            ts(o.started_at)
        );
        if let Some(e) = o.ended_at {
            let _ = write!(
                out,
                ",{{\"name\":\"ended_at\",\"time\":\"{STATIC}\",\"value\":\"{}\"}}",
                ts(e)
            );
        }
        out.push_str("],\"relationships\":[");
        let mut first_rel = true;
        for (variable, id) in &o.related {
            comma(&mut out, &mut first_rel);
            out.push_str("{\"objectId\":");
            json_str(&mut out, id);
            out.push_str(",\"qualifier\":");
            json_str(&mut out, variable);
            out.push('}');
        }
        out.push_str("]}");
    }
    for (id, object_type) in &objects.named {
        if !first {
            out.push_str(",\n");
        }
        first = false;
        out.push_str("{\"id\":");
        json_str(&mut out, id);
        out.push_str(",\"type\":");
        json_str(&mut out, object_type);
        out.push_str(",\"attributes\":[],\"relationships\":[]}");
    }
    out.push_str("\n]}\n");
    out
}

fn comma(out: &mut String, first: &mut bool) {
    if !*first {
        out.push(',');
    }
    *first = false;
}

/// Appends `s` as a JSON string.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---- CSV ----

/// The header row.
pub(super) const CSV_HEADER: &str =
    "case_id,process_id,version,activity,lifecycle,timestamp,resource,element\r\n";

/// Appends a trace's events, a row each.
pub(super) fn csv_trace(out: &mut String, t: &Trace) {
    for e in &t.events {
        let _ = write!(out, "\"{}\",", t.instance);
        csv_field(out, &t.process_id);
        let _ = write!(out, ",\"{}\",", t.version);
        csv_field(out, &e.activity);
        let _ = write!(out, ",\"{}\",\"{}\",\"", e.lifecycle.as_str(), ts(e.at));
        if let Some(r) = e.resource {
            let _ = write!(out, "{r}");
        }
        out.push_str("\",");
        csv_field(out, &e.element);
        out.push_str("\r\n");
    }
}

/// Appends one quoted field, quotes doubled; a value a spreadsheet would read as a formula
/// (led by `=`, `+`, `-`, `@`, a tab or a carriage return) gets a `'` in front.
fn csv_field(out: &mut String, value: &str) {
    out.push('"');
    if value.trim_start_matches([' ', '\u{3000}']).starts_with([
        '=', '+', '-', '@', '\t', '\r', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
    ]) {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::super::log::LogEvent;
    use super::*;

    fn trace(activity: &str) -> Trace {
        let at = DateTime::parse_from_rfc3339("2026-03-01T10:00:00.5Z")
            .unwrap()
            .with_timezone(&Utc);
        Trace {
            instance: uuid::Uuid::nil(),
            process_id: "p&q".into(),
            version: 2,
            status: "completed".into(),
            started_at: at,
            ended_at: Some(at),
            events: vec![LogEvent {
                step: 3,
                activity: activity.into(),
                element: "review".into(),
                kind: "user_task",
                lifecycle: Lifecycle::Complete,
                at,
                resource: None,
                started_at: Some(at),
            }],
            objects: vec![("order_id".into(), "order".into(), "order:A\"1".into())],
        }
    }

    #[test]
    fn xes_escapes_what_a_model_names() {
        let mut out = xes_header();
        xes_trace(&mut out, &trace("Check <this> & \"that\"\n'now'\u{1}"));
        out.push_str(XES_FOOTER);
        assert!(out.contains(
            "value=\"Check &lt;this&gt; &amp; &quot;that&quot;&#10;&apos;now&apos;\u{FFFD}\""
        ));
        assert!(out.contains("<string key=\"process_id\" value=\"p&amp;q\"/>"));
        assert!(
            out.contains("<date key=\"time:timestamp\" value=\"2026-03-01T10:00:00.500000Z\"/>")
        );
    }

    #[test]
    fn ocel_is_one_json_document() {
        let t = trace("Say \"hi\"\\\n");
        let mut objects = OcelObjects::default();
        let mut out = ocel_header(
            &["p&q".to_owned()].into(),
            &["order".to_owned()].into(),
            &[Arc::<str>::from("Say \"hi\"\\\n")].into(),
        );
        let mut first = true;
        ocel_events(&mut out, &t, &mut first);
        objects.add(&t);
        out.push_str(&ocel_footer(&objects));
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["events"][0]["type"], "Say \"hi\"\\\n");
        assert_eq!(
            doc["events"][0]["relationships"][1]["objectId"],
            "order:A\"1"
        );
        assert_eq!(doc["objects"].as_array().unwrap().len(), 2);
        assert_eq!(doc["objectTypes"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn csv_quotes_every_field_and_neutralises_formulas() {
        let mut out = String::new();
        csv_trace(&mut out, &trace("=HYPERLINK(\"x\")"));
        assert!(out.contains(",\"'=HYPERLINK(\"\"x\"\")\","), "{out}");
        assert!(out.ends_with("\"review\"\r\n"));
    }
}
