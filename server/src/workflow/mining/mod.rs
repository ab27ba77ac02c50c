//! Process mining: what really happened in a workspace's processes, read from their history.
//!
//! - The event log ([`WorkflowService::export_log`]): every instance a trace, every activity
//!   an event, written as XES (IEEE 1849), OCEL 2.0 JSON or CSV and streamed a page of
//!   instances at a time ([`log`], [`formats`]), so a log of hundreds of thousands of events
//!   is never held in memory whole. Audited as `workflow.log_exported`.
//! - A process's mining view ([`WorkflowService::mine`]): its variants (the activity
//!   sequences instances actually took), the directly-follows graph discovered from them, and
//!   the instances that left the happy path ([`analysis`]).
//!
//! Activities are the model's activities (tasks, sub-processes, call activities) and
//! intermediate events, named as the deployed model names them (the element id when it has
//! no name); gateways and start, end and boundary events are not. Everything here reads the
//! readable columns of the history (element ids, step kinds, actors as user ids, times); only
//! an OCEL export that asks for objects opens instances' sealed variables.
//!
//! Permissions: `workflows.manage`.

mod analysis;
mod formats;
mod log;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use concord_workflow::model::{BoundaryTrigger, ElementKind};
use concord_workflow::ProcessModel;
use uuid::Uuid;

pub use analysis::{
    ActivityCount, DeviationView, Dfg, DfgEdge, DfgNode, ProcessMining, VariantView,
};
pub use log::LogExport;

use super::WorkflowService;
use crate::domain::WorkspaceId;
use crate::error::Error;
use crate::rbac::{Action, Actor};
use crate::store::mining::LogScope;
use crate::store::workflows as wf;
use crate::store::Conn;

/// The most processes one export names.
pub const MAX_PROCESSES: usize = 100;
/// The most variables one OCEL export turns into objects.
pub const MAX_OBJECT_VARIABLES: usize = 20;

/// An event log's file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// XES, IEEE 1849-2016 XML.
    Xes,
    /// OCEL 2.0 JSON.
    Ocel,
    /// CSV, one row per event.
    Csv,
}

impl LogFormat {
    /// `xes`, `ocel` or `csv`.
    pub fn parse(s: &str) -> Result<LogFormat, LogQueryError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "xes" => Ok(LogFormat::Xes),
            "ocel" | "ocel2" | "jsonocel" => Ok(LogFormat::Ocel),
            "csv" => Ok(LogFormat::Csv),
            _ => Err(LogQueryError::Format(s.chars().take(40).collect())),
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Xes => "xes",
            LogFormat::Ocel => "ocel",
            LogFormat::Csv => "csv",
        }
    }

    /// The media type it is served as.
    pub fn content_type(self) -> &'static str {
        match self {
            LogFormat::Xes => "application/xml; charset=utf-8",
            LogFormat::Ocel => "application/json",
            LogFormat::Csv => "text/csv; charset=utf-8",
        }
    }

    /// The file name extension.
    fn extension(self) -> &'static str {
        match self {
            LogFormat::Xes => "xes",
            LogFormat::Ocel => "jsonocel",
            LogFormat::Csv => "csv",
        }
    }
}

/// An instance variable whose value names an object of an OCEL log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectVariable {
    /// The variable.
    pub variable: String,
    /// The object type its value names an object of.
    pub object_type: String,
}

/// What an event log export covers, parsed.
#[derive(Clone, Debug)]
pub struct LogRequest {
    /// Its format.
    pub format: LogFormat,
    /// The processes; empty for every process of the workspace.
    pub processes: Vec<String>,
    /// Instances started at or after.
    pub from: Option<DateTime<Utc>>,
    /// Instances started before.
    pub to: Option<DateTime<Utc>>,
    /// Variables that name objects (OCEL only).
    pub objects: Vec<ObjectVariable>,
}

/// Why an export's parameters are refused; each has a stable code ([`LogQueryError::code`]).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LogQueryError {
    /// Not a format this exports.
    #[error("format must be xes, ocel or csv, not {0:?}")]
    Format(String),
    /// Not an RFC 3339 time.
    #[error("{0} must be an RFC 3339 time, such as 2026-05-01T00:00:00Z")]
    Time(&'static str),
    /// An empty range.
    #[error("from must be before to")]
    Range,
    /// A process id that cannot be one.
    #[error("process {0}")]
    Process(String),
    /// A malformed `objects` list.
    #[error("objects {0}")]
    Objects(String),
    /// A parameter the export does not take, or one given twice.
    #[error("{0}")]
    Query(String),
}

impl LogQueryError {
    /// The stable code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            LogQueryError::Format(_) => "invalid_format",
            LogQueryError::Time(_) | LogQueryError::Range => "invalid_time",
            LogQueryError::Process(_) => "invalid_process",
            LogQueryError::Objects(_) => "invalid_objects",
            LogQueryError::Query(_) => "invalid_query",
        }
    }
}

impl LogRequest {
    /// Checks an export's parameters: `format` (by default XES), the processes (each named at
    /// most once), the start-time range, and `objects` (`variable:type,…`, OCEL only).
    pub fn new(
        format: Option<&str>,
        processes: Vec<String>,
        from: Option<&str>,
        to: Option<&str>,
        objects: Option<&str>,
    ) -> Result<LogRequest, LogQueryError> {
        let format = match format {
            Some(f) => LogFormat::parse(f)?,
            None => LogFormat::Xes,
        };
        let mut seen = Vec::with_capacity(processes.len());
        for p in processes {
            let p = p.trim().to_owned();
            if p.is_empty() || p.len() > 200 {
                return Err(LogQueryError::Process("must be 1 to 200 bytes".into()));
            }
            if !seen.contains(&p) {
                seen.push(p);
            }
        }
        if seen.len() > MAX_PROCESSES {
            return Err(LogQueryError::Process(format!(
                "may be given at most {MAX_PROCESSES} times"
            )));
        }
        let from = from.map(|t| time("from", t)).transpose()?;
        let to = to.map(|t| time("to", t)).transpose()?;
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                return Err(LogQueryError::Range);
            }
        }
        let objects = match objects {
            Some(o) => object_variables(o)?,
            None => Vec::new(),
        };
        if !objects.is_empty() && format != LogFormat::Ocel {
            return Err(LogQueryError::Objects(
                "apply to the OCEL format only (format=ocel)".into(),
            ));
        }
        Ok(LogRequest {
            format,
            processes: seen,
            from,
            to,
            objects,
        })
    }

    /// Parses a query string: `process` (repeated), `format`, `from`, `to`, `objects`.
    pub fn from_query(query: &str) -> Result<LogRequest, LogQueryError> {
        let mut processes = Vec::new();
        let (mut format, mut from, mut to, mut objects) = (None, None, None, None);
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match k.as_ref() {
                "process" => {
                    processes.push(v.into_owned());
                    continue;
                }
                "format" => &mut format,
                "from" => &mut from,
                "to" => &mut to,
                "objects" => &mut objects,
                other => {
                    return Err(LogQueryError::Query(format!(
                        "unknown field `{}`, expected one of `process`, `format`, `from`, `to`, `objects`",
                        other.chars().take(40).collect::<String>()
                    )))
                }
            };
            if slot.replace(v.into_owned()).is_some() {
                return Err(LogQueryError::Query(format!("{k} is given more than once")));
            }
        }
        LogRequest::new(
            format.as_deref(),
            processes,
            from.as_deref(),
            to.as_deref(),
            objects.as_deref(),
        )
    }
}

/// Parses an RFC 3339 time.
pub fn time(field: &'static str, value: &str) -> Result<DateTime<Utc>, LogQueryError> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| LogQueryError::Time(field))
}

/// Parses `order_id:order,invoice_id:invoice`.
fn object_variables(list: &str) -> Result<Vec<ObjectVariable>, LogQueryError> {
    let mut out: Vec<ObjectVariable> = Vec::new();
    for pair in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((variable, object_type)) = pair.split_once(':') else {
            return Err(LogQueryError::Objects(format!(
                "must be variable:type pairs separated by commas (order_id:order), not {:?}",
                pair.chars().take(80).collect::<String>()
            )));
        };
        let (variable, object_type) = (variable.trim(), object_type.trim());
        let plain = |s: &str| {
            !s.is_empty()
                && s.len() <= 100
                && s.chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        if !plain(variable) || !plain(object_type) {
            return Err(LogQueryError::Objects(format!(
                "names must be 1 to 100 letters, digits, _, - or . ({pair:?})"
            )));
        }
        if out.iter().any(|o| o.variable == variable) {
            return Err(LogQueryError::Objects(format!(
                "names the variable {variable} twice"
            )));
        }
        out.push(ObjectVariable {
            variable: variable.to_owned(),
            object_type: object_type.to_owned(),
        });
    }
    if out.is_empty() {
        return Err(LogQueryError::Objects(
            "must name at least one variable:type pair".into(),
        ));
    }
    if out.len() > MAX_OBJECT_VARIABLES {
        return Err(LogQueryError::Objects(format!(
            "may name at most {MAX_OBJECT_VARIABLES} variables"
        )));
    }
    Ok(out)
}

/// What a mining log calls an element of a deployed model.
#[derive(Clone, Debug)]
pub(crate) struct Activity {
    /// Its name in the model (whitespace collapsed), or its id.
    pub name: Arc<str>,
    /// Its id.
    pub element: Arc<str>,
    /// `user_task`, `service_task`, …, `intermediate_event`.
    pub kind: &'static str,
}

/// A boundary event of a deployed model.
#[derive(Clone, Debug)]
pub(crate) struct Boundary {
    /// `timer`, `error` or `compensation`.
    pub trigger: &'static str,
    /// Its name, or its id.
    pub name: Arc<str>,
    /// The activity it is attached to.
    pub attached_to: String,
}

/// The activities and boundary events of one deployed model, by element id.
#[derive(Debug, Default)]
pub(crate) struct Activities {
    pub elements: HashMap<String, Activity>,
    pub boundaries: HashMap<String, Boundary>,
}

impl Activities {
    /// Reads them off a model.
    pub fn of(model: &ProcessModel) -> Activities {
        let mut out = Activities::default();
        for el in &model.elements {
            let name: Arc<str> = match el.name.as_deref().map(collapse) {
                Some(n) if !n.is_empty() => n.into(),
                _ => el.id.as_str().into(),
            };
            let kind = match &el.kind {
                ElementKind::UserTask(_) => "user_task",
                ElementKind::ServiceTask(_) => "service_task",
                ElementKind::SendTask(_) => "send_task",
                ElementKind::BusinessRuleTask { .. } => "business_rule_task",
                ElementKind::ReceiveTask(_) => "receive_task",
                ElementKind::SubProcess => "sub_process",
                ElementKind::CallActivity { .. } => "call_activity",
                ElementKind::IntermediateCatch { .. } | ElementKind::IntermediateThrow { .. } => {
                    "intermediate_event"
                }
                ElementKind::BoundaryEvent {
                    attached_to,
                    trigger,
                    ..
                } => {
                    let trigger = match trigger {
                        BoundaryTrigger::Timer(_) => "timer",
                        BoundaryTrigger::Error { .. } => "error",
                        BoundaryTrigger::Compensation { .. } => "compensation",
                    };
                    out.boundaries.insert(
                        el.id.clone(),
                        Boundary {
                            trigger,
                            name,
                            attached_to: attached_to.clone(),
                        },
                    );
                    continue;
                }
                ElementKind::StartEvent { .. }
                | ElementKind::EndEvent { .. }
                | ElementKind::Gateway { .. } => continue,
            };
            out.elements.insert(
                el.id.clone(),
                Activity {
                    name,
                    element: el.id.as_str().into(),
                    kind,
                },
            );
        }
        out
    }

    /// The name of element `id` (an activity's or a boundary event's), or the id.
    pub fn name_of(&self, id: &str) -> String {
        self.elements
            .get(id)
            .map(|a| a.name.to_string())
            .or_else(|| self.boundaries.get(id).map(|b| b.name.to_string()))
            .unwrap_or_else(|| id.to_owned())
    }
}

/// `s` with every run of whitespace (line breaks a modeler keeps in a label) one space.
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A deployment as a log needs it: its process, version and activities.
#[derive(Clone, Debug)]
pub(crate) struct Deployed {
    pub process_id: String,
    pub version: i64,
    pub activities: Arc<Activities>,
}

impl WorkflowService {
    /// The workspace's event log (`workflows.manage`) as XES, OCEL 2.0 JSON or CSV: the
    /// instances of `request.processes` (every process when empty) started in its range,
    /// each a trace (XES, CSV) or an object (OCEL) whose events are its activities. Every
    /// process named must be deployed in the workspace. Audited as `workflow.log_exported`
    /// (format, processes, range, instances) before the first byte; the log then streams a
    /// page of instances at a time.
    #[tracing::instrument(skip(self, actor, request), fields(actor = ?actor.user_id(), format = request.format.as_str()))]
    pub async fn export_log(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        request: LogRequest,
    ) -> Result<LogExport, Error> {
        log::export(self, actor, workspace, request).await
    }

    /// A process's variants, directly-follows graph and deviations (`workflows.manage`) over
    /// its instances started in `[from, to)`.
    #[tracing::instrument(skip(self, actor), fields(actor = ?actor.user_id()))]
    pub async fn mine(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        process_id: &str,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<ProcessMining, Error> {
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                return Err(crate::domain::ParseError::new("from", "must be before to").into());
            }
        }
        let mut conn = self.store().reader().await?;
        self.authorize_read(&mut conn.conn(), actor, Action::ManageWorkflows, workspace)
            .await?;
        let deployed = self
            .deployed(&mut conn.conn(), workspace, &[process_id.to_owned()])
            .await?;
        let scope = LogScope {
            workspace,
            processes: vec![process_id.to_owned()],
            from,
            to,
        };
        analysis::mine(&mut conn.conn(), &scope, &deployed, process_id).await
    }

    /// The deployments of `processes` (every process when empty) in the workspace with
    /// their activities; a process named but never deployed is not found.
    pub(crate) async fn deployed(
        &self,
        conn: &mut Conn<'_>,
        workspace: WorkspaceId,
        processes: &[String],
    ) -> Result<HashMap<Uuid, Deployed>, Error> {
        let records = wf::deployments(conn, workspace).await?;
        for p in processes {
            if !records.iter().any(|r| &r.process_id == p) {
                return Err(Error::NotFound("workflow"));
            }
        }
        let mut out = HashMap::new();
        for r in records
            .iter()
            .filter(|r| processes.is_empty() || processes.contains(&r.process_id))
        {
            let model = self.model_of(conn, r).await?;
            out.insert(
                r.id,
                Deployed {
                    process_id: r.process_id.clone(),
                    version: r.version,
                    activities: Arc::new(Activities::of(&model)),
                },
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_query_parses_with_repeated_processes_and_defaults_to_xes() {
        let r = LogRequest::from_query("process=a&process=b&process=a&from=2026-01-01T00:00:00Z")
            .unwrap();
        assert_eq!(r.format, LogFormat::Xes);
        assert_eq!(r.processes, ["a", "b"]);
        assert!(r.from.is_some() && r.to.is_none());
        let r = LogRequest::from_query("format=ocel&objects=order_id:order,%20invoice_id:invoice")
            .unwrap();
        assert_eq!(r.objects.len(), 2);
        assert_eq!(r.objects[1].object_type, "invoice");
    }

    #[test]
    fn bad_export_queries_are_refused_with_stable_codes() {
        let code = |q: &str| LogRequest::from_query(q).unwrap_err().code();
        assert_eq!(code("format=pdf"), "invalid_format");
        assert_eq!(code("from=yesterday"), "invalid_time");
        assert_eq!(
            code("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"),
            "invalid_time"
        );
        assert_eq!(code("process="), "invalid_process");
        assert_eq!(code("format=ocel&objects=order_id"), "invalid_objects");
        assert_eq!(code("format=ocel&objects=a:b,a:c"), "invalid_objects");
        assert_eq!(code("format=xes&objects=a:b"), "invalid_objects");
        assert_eq!(code("format=csv&format=xes"), "invalid_query");
        assert_eq!(code("limit=3"), "invalid_query");
    }
}
