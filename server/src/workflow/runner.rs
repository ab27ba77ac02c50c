//! The runner: due jobs, taken under a lease, each finished in one write with the input it
//! produces.
//!
//! A timer is fired by feeding `TimerFired` and deleting its job in the same write; a
//! service call is sent (outside any write: it may take seconds), then its answer is fed
//! and its job deleted together. A runner killed between sending a call and recording its
//! answer leaves the job; the next runner sends it again with the same idempotency key
//! (`Idempotency-Key` header), so a service that honours the key acts once. A job a cancel
//! deleted while it ran is dropped when it finishes, as is an input the engine no longer
//! expects. One runner per database (leases held by a process that died are released when
//! the next one starts).

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use concord_workflow::command::Command;
use concord_workflow::Input;
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::apply::ChildEnded;
use super::WorkflowService;
use crate::audit::{Event, Outcome};
use crate::error::Error;
use crate::rbac::Actor;
use crate::store::workflows::{self as wf, JobRecord};
use crate::store::Tx;

/// The most of a service's answer read, in bytes.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Calls in flight at once.
const CALLS_AT_ONCE: usize = 32;
/// Instances whose other jobs (timers, posts, child starts) run at once.
const JOBS_AT_ONCE: usize = 64;
/// The longest the runner sleeps without looking for due jobs.
const MAX_IDLE: StdDuration = StdDuration::from_secs(5);

impl WorkflowService {
    /// Runs due jobs until `stop`: at start (what came due while the server was down), when
    /// a write queues work, and when the next job is due.
    pub fn spawn(self, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            if let Err(err) = self.release_leases().await {
                tracing::warn!(error = %err, "workflow runner: releasing leases failed");
            }
            loop {
                let ran = tokio::select! {
                    () = stop.cancelled() => break,
                    ran = self.run_due() => ran,
                };
                match ran {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "workflow runner pass failed"),
                }
                let next = match self.store().reader().await {
                    Ok(mut conn) => wf::next_due(&mut conn.conn()).await.ok().flatten(),
                    Err(_) => None,
                };
                let wait = next
                    .map(|at| (at - Utc::now()).to_std().unwrap_or(StdDuration::ZERO))
                    .map_or(MAX_IDLE, |d| d.min(MAX_IDLE));
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = self.inner.wake.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                }
            }
        })
    }

    async fn release_leases(&self) -> Result<(), Error> {
        self.store()
            .write(|tx: &mut Tx| {
                Box::pin(async move { Ok::<_, Error>(wf::release_all(&mut tx.conn()).await?) })
            })
            .await
    }

    /// Runs the jobs due now (at most one batch); how many ran.
    pub async fn run_due(&self) -> Result<usize, Error> {
        let now = Utc::now();
        let lease = now
            + Duration::seconds(60)
            + Duration::milliseconds(i64::try_from(self.call_timeout_ms()).unwrap_or(0));
        let batch = self.inner.batch;
        let jobs = self
            .store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    Ok::<_, Error>(wf::lease_due(&mut tx.conn(), now, lease, batch).await?)
                })
            })
            .await?;
        let n = jobs.len();
        let (calls, rest): (Vec<_>, Vec<_>) = jobs.into_iter().partition(|j| j.kind == "call");
        let calls = futures::stream::iter(calls)
            .map(|job| async move {
                if let Err(err) = self.run_call(&job).await {
                    tracing::warn!(job = %job.id, error = %err, "workflow call failed to record");
                }
            })
            .buffer_unordered(CALLS_AT_ONCE)
            .collect::<Vec<()>>();
        // One instance's jobs run in the order they came due (a post before the next one);
        // different instances' jobs run side by side, so their writes commit together.
        let mut groups: Vec<Vec<JobRecord>> = Vec::new();
        let mut by_instance: std::collections::HashMap<uuid::Uuid, usize> =
            std::collections::HashMap::new();
        for job in rest {
            match job.instance_id {
                Some(i) => match by_instance.get(&i) {
                    Some(&g) => groups[g].push(job),
                    None => {
                        by_instance.insert(i, groups.len());
                        groups.push(vec![job]);
                    }
                },
                None => groups.push(vec![job]),
            }
        }
        let others = futures::stream::iter(groups)
            .map(|group| async move {
                for job in &group {
                    if let Err(err) = self.run_job(job).await {
                        tracing::warn!(job = %job.id, kind = %job.kind, error = %err, "workflow job failed");
                    }
                }
            })
            .buffer_unordered(JOBS_AT_ONCE)
            .collect::<Vec<()>>();
        tokio::join!(calls, others);
        Ok(n)
    }

    fn call_timeout_ms(&self) -> u64 {
        self.inner.call_timeout_ms
    }

    pub(super) async fn payload<T: serde::de::DeserializeOwned>(
        &self,
        job: &JobRecord,
    ) -> Result<T, Error> {
        let mut conn = self.store().reader().await?;
        self.open_json(
            &mut conn.conn(),
            job.workspace_id,
            "workflow_jobs",
            &job.id,
            "payload",
            &job.payload,
        )
        .await
    }

    /// Finishes a job: deletes it and feeds `input` to its instance, in one write; nothing if
    /// the job was cancelled meanwhile.
    pub(super) async fn finish(&self, job: &JobRecord, input: Option<Input>) -> Result<(), Error> {
        let this = self.clone();
        let id = job.id.clone();
        let instance = job.instance_id;
        self.store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    if !wf::delete_job(&mut tx.conn(), &id).await? {
                        return Ok(());
                    }
                    let (Some(input), Some(instance)) = (input, instance) else {
                        return Ok(());
                    };
                    let Some(record) = wf::instance(&mut tx.conn(), instance).await? else {
                        return Ok(());
                    };
                    this.try_handle_in(tx, &Actor::system(), &record, input)
                        .await
                        .map(|_| ())
                })
            })
            .await?;
        self.wake();
        Ok(())
    }

    async fn run_job(&self, job: &JobRecord) -> Result<(), Error> {
        match job.kind.as_str() {
            "timer" => {
                let input = Input::TimerFired {
                    timer_id: job.id.clone(),
                };
                self.finish(job, Some(input)).await
            }
            "post" => {
                let command: Command = self.payload(job).await?;
                self.run_post(job, command).await
            }
            "notice" => {
                let notice: super::apply::TaskNotice = self.payload(job).await?;
                self.run_notice(job, notice).await
            }
            "child" => {
                let command: Command = self.payload(job).await?;
                self.run_child(job, command).await
            }
            "cancel_child" => {
                let command: Command = self.payload(job).await?;
                self.run_cancel_child(job, command).await
            }
            "child_ended" => {
                let ended: ChildEnded = self.payload(job).await?;
                let input = match ended.failed {
                    None => Input::ChildCompleted {
                        child_id: ended.child_id,
                        variables: ended.variables,
                    },
                    Some(error) => Input::ChildFailed {
                        child_id: ended.child_id,
                        error,
                    },
                };
                self.finish(job, Some(input)).await
            }
            "publish" => {
                let command: Command = self.payload(job).await?;
                self.run_publish(job, command).await
            }
            "decision" => {
                let command: Command = self.payload(job).await?;
                self.run_decision(job, command).await
            }
            "schedule" => {
                let schedule: Schedule = self.payload(job).await?;
                self.run_schedule(job, schedule).await
            }
            "notices" => self.run_notices(job).await,
            "route" => self.run_route(job).await,
            "escalate" => self.run_escalate(job).await,
            "retrain" => self.run_retrain(job).await,
            other => {
                tracing::warn!(job = %job.id, kind = other, "unknown workflow job dropped");
                self.finish(job, None).await
            }
        }
    }

    async fn run_call(&self, job: &JobRecord) -> Result<(), Error> {
        let Command::CallService {
            call_id,
            idempotency_key,
            request,
            ..
        } = self.payload::<Command>(job).await?
        else {
            return self.finish(job, None).await;
        };
        let method =
            reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&idempotency_key) {
            headers.insert(HeaderName::from_static("idempotency-key"), v);
        }
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        let body = match &request.body {
            Some(b) => {
                headers.insert(
                    reqwest::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                Some(serde_json::to_vec(b).unwrap_or_default())
            }
            None => None,
        };
        let answer = self
            .inner
            .egress
            .send(method, &request.url, headers, body, MAX_ANSWER_BYTES)
            .await;
        let input = match answer {
            Ok(a) if (200..300).contains(&a.status) => {
                let body = if a.body.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&a.body)
                        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&a.body).into()))
                };
                Input::ServiceCallSucceeded {
                    call_id,
                    response: serde_json::json!({ "status": a.status, "body": body }),
                }
            }
            Ok(a) => Input::ServiceCallFailed {
                call_id,
                error: error_code(a.status, &a.body),
                retryable: a.status >= 500 || a.status == 429,
            },
            Err(e) => Input::ServiceCallFailed {
                call_id,
                error: e.to_string(),
                retryable: true,
            },
        };
        self.finish(job, Some(input)).await
    }

    async fn run_child(&self, job: &JobRecord, command: Command) -> Result<(), Error> {
        let Command::StartChild {
            child_id,
            process_id,
            variables,
            ..
        } = command
        else {
            return self.finish(job, None).await;
        };
        let this = self.clone();
        let id = job.id.clone();
        let ws = job.workspace_id;
        let Some(parent) = job.instance_id else {
            return self.finish(job, None).await;
        };
        self.store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    if !wf::delete_job(&mut tx.conn(), &id).await? {
                        return Ok(());
                    }
                    let actor = Actor::system();
                    match wf::deployment_of(&mut tx.conn(), ws, &process_id, None).await? {
                        Some(record) => {
                            let model = this.model_of(&mut tx.conn(), &record).await?;
                            let event = Event::by(&actor, "workflow.started", Outcome::Allowed)
                                .workspace(ws);
                            this.start_in(
                                tx,
                                &actor,
                                &record,
                                &model,
                                None,
                                variables,
                                Some((parent, child_id)),
                                None,
                                event,
                            )
                            .await?;
                        }
                        None => {
                            let Some(record) = wf::instance(&mut tx.conn(), parent).await? else {
                                return Ok(());
                            };
                            let input = Input::ChildFailed {
                                child_id,
                                error: format!("process {process_id:?} is not deployed"),
                            };
                            this.try_handle_in(tx, &actor, &record, input).await?;
                        }
                    }
                    Ok::<_, Error>(())
                })
            })
            .await?;
        self.wake();
        Ok(())
    }

    async fn run_cancel_child(&self, job: &JobRecord, command: Command) -> Result<(), Error> {
        let Command::CancelChild { child_id } = command else {
            return self.finish(job, None).await;
        };
        let this = self.clone();
        let id = job.id.clone();
        let Some(parent) = job.instance_id else {
            return self.finish(job, None).await;
        };
        self.store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    if !wf::delete_job(&mut tx.conn(), &id).await? {
                        return Ok(());
                    }
                    // The child may not have started yet: then its start job goes.
                    wf::delete_job(&mut tx.conn(), &child_id).await?;
                    if let Some(child) = wf::child_of(&mut tx.conn(), parent, &child_id).await? {
                        let actor = Actor::system();
                        let input = Input::Cancel {
                            actor: "system".into(),
                        };
                        this.try_handle_in(tx, &actor, &child, input).await?;
                        // The parent no longer waits: its ended child tells nobody.
                        wf::delete_job(&mut tx.conn(), &format!("{child_id}:ended")).await?;
                    }
                    Ok::<_, Error>(())
                })
            })
            .await?;
        Ok(())
    }

    async fn run_publish(&self, job: &JobRecord, command: Command) -> Result<(), Error> {
        let Command::PublishMessage { message, variables } = command else {
            return self.finish(job, None).await;
        };
        let this = self.clone();
        let id = job.id.clone();
        let ws = job.workspace_id;
        self.store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    if !wf::delete_job(&mut tx.conn(), &id).await? {
                        return Ok(());
                    }
                    this.deliver_in(tx, &Actor::system(), ws, &message, None, variables, None)
                        .await
                        .map(|_| ())
                })
            })
            .await?;
        self.wake();
        Ok(())
    }
}

/// A timer start event's next firing (a `schedule` job's payload).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Schedule {
    /// The timer start event.
    pub start_event: String,
    /// How many times it fired.
    pub fired: u32,
}

impl WorkflowService {
    /// Queues the first firing of each timer start event of a new deployment, and drops the
    /// schedules of the process's earlier versions: a schedule runs the latest version.
    pub(crate) async fn schedule_starts(
        &self,
        tx: &mut Tx,
        record: &crate::store::workflows::DeploymentRecord,
        model: &concord_workflow::ProcessModel,
    ) -> Result<(), Error> {
        wf::delete_schedules(
            &mut tx.conn(),
            record.workspace_id,
            &record.process_id,
            record.id,
        )
        .await?;
        let now = Utc::now();
        for (element, trigger) in model.start_events() {
            let concord_workflow::model::StartTrigger::Timer(timer) = trigger else {
                continue;
            };
            let Ok(due) = timer.first_due(now) else {
                continue;
            };
            let schedule = Schedule {
                start_event: element.id.clone(),
                fired: 0,
            };
            self.queue_schedule(tx, record, &schedule, due).await?;
        }
        Ok(())
    }

    async fn queue_schedule(
        &self,
        tx: &mut Tx,
        record: &crate::store::workflows::DeploymentRecord,
        schedule: &Schedule,
        due: chrono::DateTime<Utc>,
    ) -> Result<(), Error> {
        let id = format!("{}:{}", record.id, schedule.start_event);
        let payload = serde_json::to_vec(schedule)
            .map_err(|e| Error::Internal(format!("schedule to JSON: {e}")))?;
        let sealed = self
            .seal(
                tx,
                record.workspace_id,
                "workflow_jobs",
                &id,
                "payload",
                &payload,
            )
            .await?;
        wf::insert_job(
            &mut tx.conn(),
            &JobRecord {
                id,
                instance_id: None,
                deployment_id: Some(record.id),
                workspace_id: record.workspace_id,
                kind: "schedule".into(),
                due_at: due,
                payload: sealed,
                leased_until: None,
            },
        )
        .await?;
        Ok(())
    }

    /// Starts an instance at a timer start event and queues its next firing (cycles), in one
    /// write: a crash before it commits fires it again, never twice.
    async fn run_schedule(&self, job: &JobRecord, schedule: Schedule) -> Result<(), Error> {
        let Some(deployment) = job.deployment_id else {
            return self.finish(job, None).await;
        };
        let this = self.clone();
        let id = job.id.clone();
        let due = job.due_at;
        self.store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    if !wf::delete_job(&mut tx.conn(), &id).await? {
                        return Ok(());
                    }
                    let Some(record) = wf::deployment(&mut tx.conn(), deployment).await? else {
                        return Ok(());
                    };
                    let model = this.model_of(&mut tx.conn(), &record).await?;
                    let actor = Actor::system();
                    let event = Event::by(&actor, "workflow.started", Outcome::Allowed)
                        .workspace(record.workspace_id);
                    this.start_in(
                        tx,
                        &actor,
                        &record,
                        &model,
                        Some(&schedule.start_event),
                        serde_json::Map::new(),
                        None,
                        None,
                        event,
                    )
                    .await?;
                    let timer = model.start_events().find_map(|(e, t)| match t {
                        concord_workflow::model::StartTrigger::Timer(timer)
                            if e.id == schedule.start_event =>
                        {
                            Some(timer.clone())
                        }
                        _ => None,
                    });
                    let fired = schedule.fired.saturating_add(1);
                    if let Some(Ok(Some(next))) = timer.map(|t| t.next_due(due, fired, Utc::now()))
                    {
                        let next_schedule = Schedule {
                            start_event: schedule.start_event.clone(),
                            fired,
                        };
                        this.queue_schedule(tx, &record, &next_schedule, next)
                            .await?;
                    }
                    Ok::<_, Error>(())
                })
            })
            .await?;
        self.wake();
        Ok(())
    }
}

/// The error code of a failed call, matched against error boundary events: the `error`
/// string (or `error.code`) of a JSON answer, else the HTTP status (`"500"`).
fn error_code(status: u16, body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let code = parsed.as_ref().and_then(|v| {
        let e = v.get("error")?;
        e.as_str()
            .or_else(|| e.get("code").and_then(Value::as_str))
            .map(str::to_owned)
    });
    match code {
        Some(c) if !c.is_empty() && c.len() <= 200 => c,
        _ => status.to_string(),
    }
}
