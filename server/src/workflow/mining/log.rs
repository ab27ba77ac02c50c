//! The event log export: a stream of text chunks, the format's opening, then one chunk per
//! page of instances (their traces, built from their history steps), then its closing.
//!
//! Each page is read on a reader connection held only while the page is read, so a slow
//! client holds no connection; memory holds one page of steps and, for OCEL, the objects the
//! events relate to (one per instance and one per object a variable names), never the whole
//! log. The model of each deployment is opened once per export (and cached by the service).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::formats::{self, OcelObjects};
use super::{Deployed, LogFormat, LogRequest};
use crate::audit::{Event, Outcome};
use crate::domain::{UserId, WorkspaceId};
use crate::error::Error;
use crate::rbac::{Action, Actor};
use crate::store::mining::{self as sm, LogInstance, LogScope, LogStep};
use crate::store::Tx;
use crate::workflow::WorkflowService;

/// Instances per page.
const PAGE: i64 = 250;

/// An event log on its way out.
pub struct LogExport {
    /// Its format.
    pub format: LogFormat,
    /// A file name for it (`workflow-log-<date>.xes`).
    pub filename: String,
    /// The instances it holds (as counted when it started).
    pub instances: i64,
    /// Its text, chunk by chunk; an error ends it.
    pub chunks: BoxStream<'static, Result<String, Error>>,
}

/// Where an activity's event is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lifecycle {
    /// Entered.
    Start,
    /// Completed.
    Complete,
    /// Cancelled before it completed (a boundary event, a cancel).
    Abort,
}

impl Lifecycle {
    /// The XES standard lifecycle transition.
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Start => "start",
            Lifecycle::Complete => "complete",
            Lifecycle::Abort => "ate_abort",
        }
    }
}

/// One event of a trace.
#[derive(Clone, Debug)]
pub(super) struct LogEvent {
    /// The history step it comes from.
    pub step: i64,
    /// The activity's name.
    pub activity: Arc<str>,
    /// Its element id.
    pub element: Arc<str>,
    /// Its kind of element.
    pub kind: &'static str,
    /// Start, complete or abort.
    pub lifecycle: Lifecycle,
    /// When.
    pub at: DateTime<Utc>,
    /// Who completed it (a user task's completer).
    pub resource: Option<UserId>,
    /// When it was entered (completions only).
    pub started_at: Option<DateTime<Utc>>,
}

/// One instance with its events.
#[derive(Clone, Debug)]
pub(super) struct Trace {
    pub instance: Uuid,
    pub process_id: String,
    pub version: i64,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub events: Vec<LogEvent>,
    /// The objects its variables name: (variable, object type, object id).
    pub objects: Vec<(Arc<str>, Arc<str>, String)>,
}

/// Turns an instance's steps (in order) into its events: an activity's entry starts it, its
/// completion completes it (with the person whose task completion preceded it), a
/// cancellation aborts it. Steps of other elements (gateways, start and end events) are left
/// out.
pub(super) fn events_of(steps: &[LogStep], deployed: &Deployed) -> Vec<LogEvent> {
    let mut events = Vec::with_capacity(steps.len());
    let mut completer: HashMap<&str, UserId> = HashMap::new();
    let mut entered: HashMap<&str, DateTime<Utc>> = HashMap::new();
    for s in steps {
        let Some(element) = s.element.as_deref() else {
            continue;
        };
        let Some(a) = deployed.activities.elements.get(element) else {
            continue;
        };
        let (lifecycle, resource, started_at) = match s.kind.as_str() {
            "entered" => {
                entered.insert(element, s.at);
                (Lifecycle::Start, None, None)
            }
            "task_completed" => {
                if let Some(actor) = s.actor {
                    completer.insert(element, actor);
                }
                continue;
            }
            "completed" => (
                Lifecycle::Complete,
                completer.remove(element),
                entered.remove(element),
            ),
            "cancelled" => {
                entered.remove(element);
                (Lifecycle::Abort, None, None)
            }
            _ => continue,
        };
        events.push(LogEvent {
            step: s.step,
            activity: a.name.clone(),
            element: a.element.clone(),
            kind: a.kind,
            lifecycle,
            at: s.at,
            resource,
            started_at,
        });
    }
    events
}

/// Checks, audits and starts an export.
pub(super) async fn export(
    svc: &WorkflowService,
    actor: &Actor,
    workspace: WorkspaceId,
    request: LogRequest,
) -> Result<LogExport, Error> {
    let mut conn = svc.store().reader().await?;
    svc.authorize_read(&mut conn.conn(), actor, Action::ManageWorkflows, workspace)
        .await?;
    let deployed = svc
        .deployed(&mut conn.conn(), workspace, &request.processes)
        .await?;
    let scope = LogScope {
        workspace,
        processes: request.processes.clone(),
        from: request.from,
        to: request.to,
    };
    let instances = sm::count_instances(&mut conn.conn(), &scope).await?;
    drop(conn);

    let event = Event::by(actor, "workflow.log_exported", Outcome::Allowed)
        .target("workspace", workspace)
        .workspace(workspace)
        .details(serde_json::json!({
            "format": request.format.as_str(),
            "processes": request.processes,
            "from": request.from,
            "to": request.to,
            "objects": request.objects.iter().map(|o| format!("{}:{}", o.variable, o.object_type)).collect::<Vec<_>>(),
            "instances": instances,
        }));
    let auditor = svc.auditor().clone();
    svc.store()
        .write(move |tx: &mut Tx| {
            Box::pin(async move {
                auditor.record(tx, event).await?;
                Ok::<_, Error>(())
            })
        })
        .await?;

    let header = match request.format {
        LogFormat::Xes => formats::xes_header(),
        LogFormat::Csv => formats::CSV_HEADER.to_owned(),
        LogFormat::Ocel => {
            let processes: BTreeSet<String> =
                deployed.values().map(|d| d.process_id.clone()).collect();
            let named: BTreeSet<String> = request
                .objects
                .iter()
                .map(|o| o.object_type.clone())
                .collect();
            let activities: BTreeSet<Arc<str>> = deployed
                .values()
                .flat_map(|d| d.activities.elements.values().map(|a| a.name.clone()))
                .collect();
            formats::ocel_header(&processes, &named, &activities)
        }
    };
    let filename = format!(
        "workflow-log-{}.{}",
        Utc::now().format("%Y%m%d-%H%M%S"),
        request.format.extension()
    );
    let exporter = Exporter {
        svc: svc.clone(),
        format: request.format,
        scope,
        objects: request
            .objects
            .iter()
            .map(|o| {
                (
                    Arc::<str>::from(o.variable.as_str()),
                    Arc::<str>::from(o.object_type.as_str()),
                )
            })
            .collect(),
        deployed,
        cursor: Uuid::nil(),
        stage: Stage::Header(header),
        ocel: OcelObjects::default(),
        first_event: true,
    };
    let chunks = stream::unfold(exporter, |mut e| async move {
        let chunk = e.next().await.transpose()?;
        Some((chunk, e))
    })
    .boxed();
    Ok(LogExport {
        format: request.format,
        filename,
        instances,
        chunks,
    })
}

enum Stage {
    Header(String),
    Pages,
    Done,
}

struct Exporter {
    svc: WorkflowService,
    format: LogFormat,
    scope: LogScope,
    /// (variable, object type) pairs whose values name objects.
    objects: Vec<(Arc<str>, Arc<str>)>,
    deployed: HashMap<Uuid, Deployed>,
    /// The last instance written (`Uuid::nil()` before the first).
    cursor: Uuid,
    stage: Stage,
    ocel: OcelObjects,
    first_event: bool,
}

impl Exporter {
    /// The next chunk; `None` once the log is closed. An error ends the stream.
    async fn next(&mut self) -> Result<Option<String>, Error> {
        match std::mem::replace(&mut self.stage, Stage::Pages) {
            Stage::Header(h) => Ok(Some(h)),
            Stage::Done => {
                self.stage = Stage::Done;
                Ok(None)
            }
            Stage::Pages => match self.page().await {
                Ok(Some(chunk)) => Ok(Some(chunk)),
                Ok(None) => {
                    self.stage = Stage::Done;
                    Ok(Some(match self.format {
                        LogFormat::Xes => formats::XES_FOOTER.to_owned(),
                        LogFormat::Csv => String::new(),
                        LogFormat::Ocel => formats::ocel_footer(&self.ocel),
                    }))
                }
                Err(e) => {
                    self.stage = Stage::Done;
                    tracing::warn!(error = %e, "workflow log export failed");
                    Err(e)
                }
            },
        }
    }

    /// The next page of traces as text; `None` after the last.
    async fn page(&mut self) -> Result<Option<String>, Error> {
        let mut conn = self.svc.store().reader().await?;
        let with_state = !self.objects.is_empty();
        let instances =
            sm::log_instances(&mut conn.conn(), &self.scope, self.cursor, PAGE, with_state).await?;
        let Some(last) = instances.last().map(|i| i.id) else {
            return Ok(None);
        };
        let steps = sm::log_steps(&mut conn.conn(), &self.scope, self.cursor, last).await?;
        let mut by_instance: HashMap<Uuid, std::ops::Range<usize>> = HashMap::new();
        let mut start = 0;
        for k in 1..=steps.len() {
            if k == steps.len() || steps[k].instance_id != steps[start].instance_id {
                by_instance.insert(steps[start].instance_id, start..k);
                start = k;
            }
        }
        let mut out = String::with_capacity(steps.len() * 160 + 256);
        for instance in &instances {
            let deployed = match self.deployed.get(&instance.deployment_id) {
                Some(d) => d.clone(),
                None => self.deployment(&mut conn.conn(), instance).await?,
            };
            let range = by_instance.get(&instance.id).cloned().unwrap_or(0..0);
            let objects = if with_state {
                self.objects_of(&mut conn.conn(), instance).await?
            } else {
                Vec::new()
            };
            let trace = Trace {
                instance: instance.id,
                process_id: instance.process_id.clone(),
                version: deployed.version,
                status: instance.status.clone(),
                started_at: instance.started_at,
                ended_at: instance.ended_at,
                events: events_of(&steps[range], &deployed),
                objects,
            };
            match self.format {
                LogFormat::Xes => formats::xes_trace(&mut out, &trace),
                LogFormat::Csv => formats::csv_trace(&mut out, &trace),
                LogFormat::Ocel => {
                    formats::ocel_events(&mut out, &trace, &mut self.first_event);
                    self.ocel.add(&trace);
                }
            }
        }
        self.cursor = last;
        Ok(Some(out))
    }

    /// A deployment made after the export started (an instance of it started meanwhile).
    async fn deployment(
        &mut self,
        conn: &mut crate::store::Conn<'_>,
        instance: &LogInstance,
    ) -> Result<Deployed, Error> {
        let record = crate::store::workflows::deployment(conn, instance.deployment_id)
            .await?
            .ok_or_else(|| Error::Internal("an instance's deployment is missing".into()))?;
        let model = self.svc.model_of(conn, &record).await?;
        let d = Deployed {
            process_id: record.process_id.clone(),
            version: record.version,
            activities: Arc::new(super::Activities::of(&model)),
        };
        self.deployed.insert(record.id, d.clone());
        Ok(d)
    }

    /// The objects an instance's variables name: a string or a number names one, a list of
    /// them several; other values (and missing variables) name none.
    async fn objects_of(
        &self,
        conn: &mut crate::store::Conn<'_>,
        instance: &LogInstance,
    ) -> Result<Vec<(Arc<str>, Arc<str>, String)>, Error> {
        #[derive(serde::Deserialize)]
        struct Variables {
            #[serde(default)]
            variables: Map<String, Value>,
        }
        let Some(sealed) = &instance.state else {
            return Ok(Vec::new());
        };
        let state: Variables = self
            .svc
            .open_json(
                conn,
                self.scope.workspace,
                "workflow_instances",
                &instance.id.to_string(),
                "state",
                sealed,
            )
            .await?;
        let mut out = Vec::new();
        for (variable, object_type) in &self.objects {
            let values = match state.variables.get(variable.as_ref()) {
                Some(Value::Array(items)) => items.iter().collect(),
                Some(v) => vec![v],
                None => Vec::new(),
            };
            for v in values {
                let key = match v {
                    Value::String(s) if !s.is_empty() => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => continue,
                };
                let id = format!("{object_type}:{key}");
                if !out.iter().any(|(_, _, o)| o == &id) {
                    out.push((variable.clone(), object_type.clone(), id));
                }
            }
        }
        Ok(out)
    }
}
