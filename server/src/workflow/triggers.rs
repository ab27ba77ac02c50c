//! What starts a process besides the API and the command line: an inbound webhook, and the
//! workspace's own activity (a message matching a pattern, a reaction, someone joining a
//! channel, a file shared), read from the outbox by a durable consumer.
//!
//! A webhook is authenticated by its secret, shown once when it is made: either as a bearer
//! token, or as an HMAC signature of the body (Slack's scheme: `X-Concord-Signature` is `v0=`
//! and the hex HMAC-SHA256 of `v0:{timestamp}:{body}`, `X-Concord-Request-Timestamp` at most
//! five minutes off). Its JSON object becomes the instance's variables. Chat triggers start
//! an instance with what happened as variables (`message`, `reaction`, `member`, `file`);
//! each instance a trigger starts is keyed by the trigger and the event (a unique index), so
//! events read again after a crash start nothing twice, and the consumer acknowledges only
//! what it has started.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::Digest;
use subtle::ConstantTimeEq;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::WorkflowService;
use crate::audit::{Event, Outcome};
use crate::bots::delivery::signing;
use crate::domain::{ChannelId, WorkspaceId};
use crate::error::Error;
use crate::events::{DomainEvent, MessageChange};
use crate::outbox::{Consumer, Start};
use crate::rbac::{Action, Actor};
use crate::store::workflows::{self as wf, TriggerRecord};
use crate::store::Tx;

/// The outbox consumer that starts processes on chat activity.
pub const CONSUMER: &str = "workflow-triggers";
/// How far a signed webhook's timestamp may be from now, in seconds.
const SIGNATURE_WINDOW: i64 = 300;
/// The longest pattern, in characters.
const MAX_PATTERN_CHARS: usize = 500;

/// What starts the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// A POST to the trigger's URL with its secret.
    Webhook,
    /// A message posted (in `channel_id`, or anywhere) whose text matches `pattern`.
    Message,
    /// A reaction added (with `emoji`, or any).
    Reaction,
    /// Someone joined or was added to a channel.
    MemberJoined,
    /// A file shared in a channel.
    FileShared,
}

impl TriggerKind {
    fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Webhook => "webhook",
            TriggerKind::Message => "message",
            TriggerKind::Reaction => "reaction",
            TriggerKind::MemberJoined => "member_joined",
            TriggerKind::FileShared => "file_shared",
        }
    }

    fn parse(s: &str) -> Option<TriggerKind> {
        [
            TriggerKind::Webhook,
            TriggerKind::Message,
            TriggerKind::Reaction,
            TriggerKind::MemberJoined,
            TriggerKind::FileShared,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A trigger to make.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "webhook"}))]
pub struct NewTrigger {
    /// What starts the process.
    pub kind: TriggerKind,
    /// The channel watched (chat triggers; none: every channel of the workspace).
    #[serde(default)]
    pub channel_id: Option<ChannelId>,
    /// For `message`: the text to match, case-insensitive; `*` matches anything, and a
    /// pattern without `*` matches messages containing it.
    #[serde(default)]
    pub pattern: Option<String>,
    /// For `reaction`: the emoji (`:white_check_mark:` or the character); none: any.
    #[serde(default)]
    pub emoji: Option<String>,
}

/// A trigger's sealed settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct TriggerConfig {
    pattern: Option<String>,
    emoji: Option<String>,
    secret: Option<String>,
}

/// A trigger.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TriggerView {
    /// Its id.
    pub id: Uuid,
    /// The process it starts (its latest version).
    pub process_id: String,
    /// What starts it.
    pub kind: TriggerKind,
    /// The channel watched.
    pub channel_id: Option<ChannelId>,
    /// The message pattern.
    pub pattern: Option<String>,
    /// The reaction's emoji.
    pub emoji: Option<String>,
    /// For a webhook: the path to POST to.
    pub url: Option<String>,
    /// For a webhook, when it is made (and only then): its secret.
    pub secret: Option<String>,
    /// When it was made.
    pub created_at: chrono::DateTime<Utc>,
    /// When it was revoked.
    pub revoked_at: Option<chrono::DateTime<Utc>>,
}

/// A workspace's triggers.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TriggerList {
    /// Oldest first, revoked ones included.
    pub triggers: Vec<TriggerView>,
}

/// What a webhook started.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct HookOutcome {
    /// The instance started.
    pub instance_id: Uuid,
}

/// A webhook call's credentials, as received.
#[derive(Clone, Debug, Default)]
pub struct HookCredentials {
    /// The bearer token of `Authorization`.
    pub bearer: Option<String>,
    /// `X-Concord-Signature`.
    pub signature: Option<String>,
    /// `X-Concord-Request-Timestamp`.
    pub timestamp: Option<String>,
    /// `Idempotency-Key`: a sender's retries of one delivery carry the same.
    pub idempotency_key: Option<String>,
}

impl HookCredentials {
    /// What names one delivery: the sender's idempotency key (its retries carry the same,
    /// signed afresh or not), else a signed call's signature (a replay carries the same);
    /// hashed, so neither is stored as sent.
    fn delivery(&self) -> Option<String> {
        let (kind, raw) = match (&self.idempotency_key, &self.signature, &self.timestamp) {
            (Some(key), _, _) if !key.trim().is_empty() => ("key", key.trim().to_owned()),
            (_, Some(sig), Some(ts)) if self.bearer.is_none() => ("sig", format!("{ts}:{sig}")),
            _ => return None,
        };
        let digest = sha2::Sha256::digest(raw.as_bytes());
        Some(format!("{kind}:{}", hex::encode(&digest[..16])))
    }
}

fn path_of(id: Uuid) -> String {
    format!("/api/v1/workflow-hooks/{id}")
}

/// Whether `text` matches `pattern` (case-insensitive; `*` matches anything; a pattern
/// without `*` matches text containing it).
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let pattern = pattern.to_lowercase();
    let text = text.to_lowercase();
    if !pattern.contains('*') {
        return text.contains(&pattern);
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = text.as_str();
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

impl WorkflowService {
    /// Makes a trigger for a deployed process (`workflows.manage`); a webhook's secret is in
    /// the answer, and only there. Audited as `workflow.trigger_created`.
    pub async fn create_trigger(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        process_id: String,
        new: NewTrigger,
    ) -> Result<TriggerView, Error> {
        let pattern = match (&new.kind, new.pattern) {
            (TriggerKind::Message, Some(p)) if !p.trim().is_empty() => {
                if p.chars().count() > MAX_PATTERN_CHARS {
                    return Err(crate::domain::ParseError::new(
                        "pattern",
                        "must be at most 500 characters",
                    )
                    .into());
                }
                Some(p)
            }
            (TriggerKind::Message, _) => {
                return Err(crate::domain::ParseError::new(
                    "pattern",
                    "a message trigger needs the text to match",
                )
                .into())
            }
            (_, Some(_)) => {
                return Err(crate::domain::ParseError::new(
                    "pattern",
                    "only a message trigger matches a pattern",
                )
                .into())
            }
            (_, None) => None,
        };
        if new.emoji.is_some() && new.kind != TriggerKind::Reaction {
            return Err(crate::domain::ParseError::new(
                "emoji",
                "only a reaction trigger names an emoji",
            )
            .into());
        }
        if new.channel_id.is_some() && new.kind == TriggerKind::Webhook {
            return Err(crate::domain::ParseError::new(
                "channel_id",
                "a webhook watches no channel",
            )
            .into());
        }
        let secret = (new.kind == TriggerKind::Webhook).then(|| signing::new_secret().to_string());
        let config = TriggerConfig {
            pattern,
            emoji: new.emoji,
            secret: secret.clone(),
        };
        let this = self.clone();
        let actor = actor.clone();
        self.store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.authorize_in(tx, &actor, Action::ManageWorkflows, workspace)
                        .await?;
                    if wf::latest_version(&mut tx.conn(), workspace, &process_id).await? == 0 {
                        return Err(Error::NotFound("workflow"));
                    }
                    if let Some(channel) = new.channel_id {
                        let found = crate::store::channels::by_id(&mut tx.conn(), channel).await?;
                        let readable = match &found {
                            Some(c) if c.workspace_id == workspace && watchable(&c.kind) => this
                                .auditor()
                                .authorize_channel(tx, &actor, Action::ReadChannels, channel)
                                .await
                                .is_ok(),
                            _ => false,
                        };
                        if !readable {
                            return Err(crate::domain::ParseError::new(
                                "channel_id",
                                "no such channel in this workspace that you can read \
                                 (conversations cannot be watched)",
                            )
                            .into());
                        }
                    }
                    let id = Uuid::new_v4();
                    let json = serde_json::to_vec(&config)
                        .map_err(|e| Error::Internal(format!("trigger to JSON: {e}")))?;
                    let sealed = this
                        .seal(
                            tx,
                            workspace,
                            "workflow_triggers",
                            &id.to_string(),
                            "config",
                            &json,
                        )
                        .await?;
                    let record = TriggerRecord {
                        id,
                        workspace_id: workspace,
                        process_id: process_id.clone(),
                        kind: new.kind.as_str().to_owned(),
                        channel_id: new.channel_id,
                        config: sealed,
                        created_by: actor.user_id(),
                        created_at: Utc::now(),
                        revoked_at: None,
                    };
                    wf::insert_trigger(&mut tx.conn(), &record).await?;
                    let event = Event::by(&actor, "workflow.trigger_created", Outcome::Allowed)
                        .target("workflow_trigger", id)
                        .workspace(workspace)
                        .details(json!({
                            "process_id": process_id,
                            "kind": new.kind.as_str(),
                            "channel_id": new.channel_id,
                        }));
                    this.auditor().record(tx, event).await?;
                    let mut view = view(&record, &config, new.kind);
                    view.secret = secret;
                    Ok(view)
                })
            })
            .await
    }

    /// The workspace's triggers, without secrets (`workflows.manage`).
    pub async fn triggers(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
    ) -> Result<TriggerList, Error> {
        let mut conn = self.store().reader().await?;
        self.authorize_read(&mut conn.conn(), actor, Action::ManageWorkflows, workspace)
            .await?;
        let mut out = Vec::new();
        for r in wf::triggers(&mut conn.conn(), workspace).await? {
            let config = self.config_of(&mut conn.conn(), &r).await?;
            if let Some(kind) = TriggerKind::parse(&r.kind) {
                out.push(view(&r, &config, kind));
            }
        }
        Ok(TriggerList { triggers: out })
    }

    /// Revokes a trigger (`workflows.manage`): a webhook's URL stops working at once.
    pub async fn revoke_trigger(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: Uuid,
    ) -> Result<TriggerView, Error> {
        let this = self.clone();
        let actor = actor.clone();
        self.store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.authorize_in(tx, &actor, Action::ManageWorkflows, workspace)
                        .await?;
                    let mut record = wf::trigger(&mut tx.conn(), id)
                        .await?
                        .filter(|t| t.workspace_id == workspace)
                        .ok_or(Error::NotFound("trigger"))?;
                    let at = Utc::now();
                    if !wf::revoke_trigger(&mut tx.conn(), id, at).await? {
                        return Err(Error::conflict(
                            "trigger_revoked",
                            "this trigger was revoked before",
                        ));
                    }
                    record.revoked_at = Some(at);
                    let event = Event::by(&actor, "workflow.trigger_revoked", Outcome::Allowed)
                        .target("workflow_trigger", id)
                        .workspace(workspace);
                    this.auditor().record(tx, event).await?;
                    let config = this.config_of(&mut tx.conn(), &record).await?;
                    let kind = TriggerKind::parse(&record.kind).unwrap_or(TriggerKind::Webhook);
                    Ok(view(&record, &config, kind))
                })
            })
            .await
    }

    /// An inbound webhook call: checks its secret or signature, then starts the process with
    /// the body's JSON object as variables. A trigger that does not exist, was revoked, or
    /// whose credentials do not match answers the same `401`, so a URL reveals nothing.
    pub async fn hook(
        &self,
        id: Uuid,
        credentials: HookCredentials,
        body: Vec<u8>,
    ) -> Result<HookOutcome, Error> {
        let refused = || {
            Error::unauthenticated(
                "invalid_signature",
                "the webhook's secret or signature does not match",
            )
        };
        let record = {
            let mut conn = self.store().reader().await?;
            match wf::trigger(&mut conn.conn(), id).await? {
                Some(r) if r.kind == "webhook" && r.revoked_at.is_none() => {
                    let config = self.config_of(&mut conn.conn(), &r).await?;
                    (r, config)
                }
                _ => return Err(refused()),
            }
        };
        let (record, config) = record;
        let Some(secret) = config.secret.as_deref() else {
            return Err(refused());
        };
        if !authentic(secret, &credentials, &body, Utc::now().timestamp()) {
            return Err(refused());
        }
        let variables: Map<String, Value> =
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(map)) => map,
                _ => return Err(Error::refused(
                    "invalid_payload",
                    "the body must be a JSON object; its fields become the instance's variables",
                )),
            };
        let variables = super::variables("body", Some(variables))?;
        // A delivery sent again (a sender's retry, a replayed signed call) answers with the
        // instance the first one started.
        let delivery = credentials.delivery();
        let this = self.clone();
        let id = self
            .store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.start_by_trigger(tx, &record, variables, delivery.as_deref())
                        .await?
                        .ok_or(Error::NotFound("workflow"))
                })
            })
            .await?;
        self.wake();
        Ok(HookOutcome { instance_id: id })
    }

    /// Starts the latest version of a trigger's process, inside a write; `None` if it has no
    /// none start event any more. An event that already started an instance starts no other:
    /// that instance is answered.
    async fn start_by_trigger(
        &self,
        tx: &mut Tx,
        trigger: &TriggerRecord,
        variables: Map<String, Value>,
        event_id: Option<&str>,
    ) -> Result<Option<Uuid>, Error> {
        let Some(record) = wf::deployment_of(
            &mut tx.conn(),
            trigger.workspace_id,
            &trigger.process_id,
            None,
        )
        .await?
        else {
            return Ok(None);
        };
        let key = event_id.map(|e| format!("{}:{e}", trigger.id));
        if let Some(key) = &key {
            if let Some(existing) = wf::started_by_event(&mut tx.conn(), key).await? {
                return Ok(Some(existing));
            }
        }
        let model = self.model_of(&mut tx.conn(), &record).await?;
        if model.none_start(None).is_none() {
            tracing::warn!(trigger = %trigger.id, "a triggered process has no none start event");
            return Ok(None);
        }
        let actor = Actor::system();
        let event = Event::by(&actor, "workflow.started", Outcome::Allowed)
            .workspace(trigger.workspace_id)
            .details(json!({"trigger_id": trigger.id, "kind": trigger.kind, "event_id": event_id}));
        let id = self
            .start_in(
                tx, &actor, &record, &model, None, variables, None, key, event,
            )
            .await?;
        Ok(Some(id))
    }

    async fn config_of(
        &self,
        conn: &mut crate::store::Conn<'_>,
        r: &TriggerRecord,
    ) -> Result<TriggerConfig, Error> {
        let row = r.id.to_string();
        self.open_json(
            conn,
            r.workspace_id,
            "workflow_triggers",
            &row,
            "config",
            &r.config,
        )
        .await
    }

    /// Starts processes on chat activity until `stop`.
    pub fn spawn_triggers(self, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.consume(&stop).await {
                    Ok(()) => return,
                    Err(err) => tracing::warn!(error = %err, "workflow triggers failed; retrying"),
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            }
        })
    }

    async fn consume(&self, stop: &CancellationToken) -> Result<(), Error> {
        let mut consumer = Consumer::open(self.store(), CONSUMER, Start::Latest)
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        loop {
            if stop.is_cancelled() {
                return Ok(());
            }
            let batch = consumer
                .next_batch(200)
                .await
                .map_err(|e| Error::Internal(e.to_string()))?;
            let Some(last) = batch.last_id() else {
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    () = consumer.wait() => continue,
                }
            };
            let mut starts = Vec::new();
            for record in &batch.events {
                let Ok(event) = serde_json::from_str::<DomainEvent>(&record.payload) else {
                    continue;
                };
                self.plan(&event, &record.event_id, &mut starts).await?;
            }
            if starts.is_empty() {
                consumer
                    .ack(last)
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))?;
                continue;
            }
            let this = self.clone();
            let all = starts.clone();
            let together = self
                .store()
                .write(move |tx: &mut Tx| {
                    Box::pin(async move {
                        for (trigger, variables, event_id) in all {
                            this.start_by_trigger(tx, &trigger, variables, Some(&event_id))
                                .await?;
                        }
                        Ok::<_, Error>(())
                    })
                })
                .await;
            match together {
                Ok(()) => {}
                Err(e) if super::transient(&e) => return Err(e),
                // One start the store refuses (its variables, its model) must not hold up the
                // others or the events after it: each is tried alone, and one that fails is
                // audited and passed over.
                Err(_) => {
                    for start in starts {
                        self.start_alone(start).await?;
                    }
                }
            }
            consumer
                .ack(last)
                .await
                .map_err(|e| Error::Internal(e.to_string()))?;
            self.wake();
        }
    }

    /// Starts one triggered instance in a write of its own; a start refused for good is
    /// audited as a failed `workflow.started` and passed over.
    async fn start_alone(
        &self,
        (trigger, variables, event_id): (TriggerRecord, Map<String, Value>, String),
    ) -> Result<(), Error> {
        let this = self.clone();
        let record = trigger.clone();
        let event = event_id.clone();
        let started = self
            .store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.start_by_trigger(tx, &record, variables, Some(&event))
                        .await
                        .map(|_| ())
                })
            })
            .await;
        let err = match started {
            Ok(()) => return Ok(()),
            Err(e) if super::transient(&e) => return Err(e),
            Err(e) => e,
        };
        tracing::warn!(trigger = %trigger.id, error = %err, "a triggered start was refused");
        let this = self.clone();
        self.store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let event = Event::by(&Actor::system(), "workflow.started", Outcome::Failed)
                        .target("workflow_trigger", trigger.id)
                        .workspace(trigger.workspace_id)
                        .details(json!({
                            "trigger_id": trigger.id, "kind": trigger.kind,
                            "event_id": event_id, "reason": super::refusal_code(&err),
                        }));
                    this.auditor().record(tx, event).await
                })
            })
            .await
    }

    /// The starts one committed event makes.
    async fn plan(
        &self,
        event: &DomainEvent,
        event_id: &str,
        out: &mut Vec<(TriggerRecord, Map<String, Value>, String)>,
    ) -> Result<(), Error> {
        let (workspace, channel, kind) = match event {
            DomainEvent::MessageCreated {
                workspace_id,
                channel_id,
                ..
            } => (*workspace_id, *channel_id, "message"),
            DomainEvent::MessageUpdated {
                workspace_id,
                channel_id,
                what: MessageChange::ReactionAdded,
                ..
            } => (*workspace_id, *channel_id, "reaction"),
            DomainEvent::ChannelMemberAdded {
                workspace_id,
                channel_id,
                ..
            } => (*workspace_id, *channel_id, "member_joined"),
            DomainEvent::FileShared {
                workspace_id,
                channel_id,
                ..
            } => (*workspace_id, *channel_id, "file_shared"),
            _ => return Ok(()),
        };
        let triggers = {
            let mut conn = self.store().reader().await?;
            wf::live_triggers(&mut conn.conn(), workspace, kind, channel).await?
        };
        if triggers.is_empty() {
            return Ok(());
        }
        // Private conversations stay private: a trigger watching the whole workspace sees its
        // public channels only, one watching a private channel fires while its maker may still
        // read that channel, and direct and group conversations are never watched.
        let kind_of_channel = {
            let mut conn = self.store().reader().await?;
            crate::store::channels::by_id(&mut conn.conn(), channel)
                .await?
                .map(|c| c.kind)
        };
        let Some(channel_kind) = kind_of_channel else {
            return Ok(());
        };
        if !watchable(&channel_kind) {
            return Ok(());
        }
        let mut visible = Vec::new();
        for t in triggers {
            let ok = match (t.channel_id, channel_kind.as_str()) {
                (_, "public") => true,
                (None, _) => false,
                (Some(_), _) => match t.created_by {
                    Some(maker) => {
                        let mut conn = self.store().reader().await?;
                        crate::rbac::reads_channel(&mut conn.conn(), maker, channel).await?
                    }
                    None => false,
                },
            };
            if ok {
                visible.push(t);
            }
        }
        let triggers = visible;
        if triggers.is_empty() {
            return Ok(());
        }
        // A person whose processing is restricted (GDPR Art. 18) starts nothing: their
        // message, reaction, joining or file is not acted on.
        let person = match event {
            DomainEvent::MessageCreated { author_id, .. } => Some(*author_id),
            DomainEvent::MessageUpdated {
                reaction: Some(r), ..
            } => Some(r.user_id),
            DomainEvent::ChannelMemberAdded { user_id, .. } => Some(*user_id),
            DomainEvent::FileShared { file_id, .. } => {
                let mut conn = self.store().reader().await?;
                crate::store::files::by_id(&mut conn.conn(), *file_id)
                    .await?
                    .map(|f| f.uploader_id)
            }
            _ => None,
        };
        let Some(person) = person else {
            return Ok(());
        };
        {
            let mut conn = self.store().reader().await?;
            if crate::store::restrictions::is_restricted(&mut conn.conn(), person).await? {
                tracing::debug!(user = %person, "a restricted person's activity starts no process");
                return Ok(());
            }
            // What processes post starts no process: a task notice naming its process would
            // otherwise start another instance, whose notice starts another.
            if wf::workflow_bot(&mut conn.conn(), workspace).await? == Some(person) {
                return Ok(());
            }
        }
        for trigger in triggers {
            let config = {
                let mut conn = self.store().reader().await?;
                match self.config_of(&mut conn.conn(), &trigger).await {
                    Ok(c) => c,
                    Err(e) if super::transient(&e) => return Err(e),
                    // A trigger whose settings do not read back is passed over, not retried
                    // forever ahead of every other workspace's events.
                    Err(e) => {
                        tracing::warn!(trigger = %trigger.id, error = %e, "a trigger is unreadable");
                        continue;
                    }
                }
            };
            let variables = match event {
                DomainEvent::MessageCreated {
                    message_id,
                    author_id,
                    thread_root_id,
                    ..
                } => {
                    let Some(message) = self
                        .inner
                        .chat
                        .message_for_delivery(workspace, channel, *message_id)
                        .await?
                    else {
                        continue;
                    };
                    if !config
                        .pattern
                        .as_deref()
                        .is_some_and(|p| matches(p, &message.text))
                    {
                        continue;
                    }
                    json!({"message": {
                        "id": message_id, "channel_id": channel, "author_id": author_id,
                        "text": message.text, "thread_root_id": thread_root_id,
                    }})
                }
                DomainEvent::MessageUpdated {
                    message_id,
                    reaction: Some(reaction),
                    ..
                } => {
                    if config.emoji.as_deref().is_some_and(|e| e != reaction.emoji) {
                        continue;
                    }
                    json!({"reaction": {
                        "emoji": reaction.emoji, "user_id": reaction.user_id,
                        "message_id": message_id, "channel_id": channel,
                    }})
                }
                DomainEvent::ChannelMemberAdded { user_id, by, .. } => {
                    json!({"member": {"user_id": user_id, "channel_id": channel, "added_by": by}})
                }
                DomainEvent::FileShared {
                    file_id,
                    message_id,
                    ..
                } => json!({"file": {
                    "file_id": file_id, "channel_id": channel, "message_id": message_id,
                }}),
                _ => continue,
            };
            let Value::Object(variables) = variables else {
                continue;
            };
            out.push((trigger, variables, event_id.to_owned()));
        }
        Ok(())
    }
}

/// Whether a channel of this kind may be watched: channels, not direct or group conversations.
fn watchable(kind: &str) -> bool {
    matches!(kind, "public" | "private")
}

fn view(r: &TriggerRecord, config: &TriggerConfig, kind: TriggerKind) -> TriggerView {
    TriggerView {
        id: r.id,
        process_id: r.process_id.clone(),
        kind,
        channel_id: r.channel_id,
        pattern: config.pattern.clone(),
        emoji: config.emoji.clone(),
        url: (kind == TriggerKind::Webhook).then(|| path_of(r.id)),
        secret: None,
        created_at: r.created_at,
        revoked_at: r.revoked_at,
    }
}

/// Whether a webhook call carries the secret, or a fresh signature made with it.
fn authentic(secret: &str, c: &HookCredentials, body: &[u8], now: i64) -> bool {
    if let Some(bearer) = &c.bearer {
        return bool::from(bearer.as_bytes().ct_eq(secret.as_bytes()));
    }
    let (Some(signature), Some(timestamp)) = (&c.signature, &c.timestamp) else {
        return false;
    };
    let Ok(ts) = timestamp.trim().parse::<i64>() else {
        return false;
    };
    if ts.abs_diff(now) > SIGNATURE_WINDOW.unsigned_abs() {
        return false;
    }
    let expected = signing::signature(secret.as_bytes(), ts, body);
    bool::from(expected.as_bytes().ct_eq(signature.trim().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_documented() {
        assert!(matches("invoice", "Please pay INVOICE 12"));
        assert!(!matches("invoice", "receipt"));
        assert!(matches("new ticket:*", "New ticket: printer on fire"));
        assert!(!matches("new ticket:*", "a new ticket: no"));
        assert!(matches("*urgent", "this is URGENT"));
        assert!(matches("a*b*c", "a-x-b-y-c"));
        assert!(!matches("a*b*c", "a-x-c-y-b"));
        assert!(matches("*", "anything"));
    }

    #[test]
    fn a_webhook_is_authentic_by_its_secret_or_a_fresh_signature() {
        let secret = "s3cret";
        let body = br#"{"ticket": 7}"#;
        let bearer = HookCredentials {
            bearer: Some(secret.into()),
            ..Default::default()
        };
        assert!(authentic(secret, &bearer, body, 1000));
        let wrong = HookCredentials {
            bearer: Some("nope".into()),
            ..Default::default()
        };
        assert!(!authentic(secret, &wrong, body, 1000));
        let signed = |ts: i64| HookCredentials {
            signature: Some(signing::signature(secret.as_bytes(), ts, body)),
            timestamp: Some(ts.to_string()),
            ..Default::default()
        };
        assert!(authentic(secret, &signed(1000), body, 1100));
        assert!(!authentic(
            secret,
            &signed(1000),
            body,
            1000 + SIGNATURE_WINDOW + 1
        ));
        assert!(!authentic(secret, &signed(1000), br#"{"ticket": 8}"#, 1000));
        assert!(!authentic(secret, &HookCredentials::default(), body, 1000));
    }
}
