//! A task's notices in chat: the workflow bot's message telling an assignee (or the channel a
//! task went to) about a task, with buttons that answer it where its form allows (Approve and
//! Reject, Mark done) and, for a task shared with a channel that nobody holds yet, Claim.
//!
//! A press of a button ([`WorkflowService::press`]) acts for the person who pressed it, as the
//! inbox does (completing or claiming through the same rules), taking the task and the answer
//! from the stored message, never from the caller.
//!
//! Every notice posted is recorded with its task (`workflow_task_notices`), so it is kept
//! current: when the task is completed, cancelled, reassigned or escalated away, each notice
//! says so and loses its buttons; when it is claimed or routed to someone, the Claim button
//! goes. The update runs as a `notices` job queued in the write that changed the task (a press
//! of a button in the notice updates it at once); a closing update takes each notice's record
//! first, so two updates never both edit one message.

use chrono::{DateTime, Utc};
use concord_workflow::model::PostTarget;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::posting::bot_actor;
use super::WorkflowService;
use crate::chat::{BlocksEdit, MessageBlocks};
use crate::domain::{MessageBody, MessageId, UserId, WorkspaceId};
use crate::error::Error;
use crate::rbac::Actor;
use crate::store::task_notices;
use crate::store::workflows::{self as wf, InstanceRecord, JobRecord};
use crate::store::Tx;

/// The block holding a task notice's buttons.
const TASK_BLOCK: &str = "workflow_task";
/// The button that claims a task shared with a channel.
const CLAIM: &str = "claim";
/// The answering buttons: action id, label, style, and the `approved` each completes the
/// task with.
const BUTTONS: [(&str, &str, &str, Option<bool>); 3] = [
    ("approve", "Approve", "primary", Some(true)),
    ("reject", "Reject", "danger", Some(false)),
    ("done", "Mark done", "primary", None),
];

/// How a task notice lets its reader answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answers {
    /// The task has no form: a button completes it.
    Done,
    /// Its form asks only `approved` (a yes or no): Approve and Reject buttons.
    Approve,
    /// Its form asks more: it is filled in from the task inbox.
    Form,
}

impl Answers {
    fn hint(self) -> &'static str {
        match self {
            Answers::Done | Answers::Approve => {
                "Answer with a button below, or from your task inbox."
            }
            Answers::Form => "Open your task inbox to fill in its form.",
        }
    }
}

/// How long a notice's text may grow through the lines its updates add.
const MAX_NOTICE_BYTES: usize = 12 * 1024;

/// A `notices` job: bring a task's notices up to date.
#[derive(Serialize, Deserialize)]
pub(crate) struct NoticeUpdate {
    /// The task.
    pub task_id: String,
    /// The line each notice gains ("Approved by <@…>.").
    pub line: String,
    /// Whether the task is out of the notices' reach (closed, or gone to someone else): they
    /// lose every button. Otherwise only Claim goes.
    pub close: bool,
    /// Only notices posted by then (a notice posted later already knows).
    pub before: DateTime<Utc>,
}

impl WorkflowService {
    /// Runs a `notice` job: tells a task's assignee (or the channel it went to) about it, with
    /// buttons that answer it where its form allows, and Claim while a channel's task waits
    /// for someone to take it; then deletes the job, records the notice with its task and
    /// audits the outcome as a `post` job does.
    pub(super) async fn run_notice(
        &self,
        job: &JobRecord,
        mut notice: super::apply::TaskNotice,
    ) -> Result<(), Error> {
        let task = {
            let mut conn = self.store().reader().await?;
            wf::task(&mut conn.conn(), &notice.task_id).await?
        };
        // A task closed before its notice went out needs none: its buttons would act on
        // nothing.
        let Some(open) = task.as_ref().filter(|t| t.status == "open") else {
            return self.finish(job, None).await;
        };
        if let (Some(holder), PostTarget::Person(to)) = (open.assignee, &notice.to) {
            if notice.reminder {
                // Routing, a claim or an escalation may have moved it: remind whoever holds
                // it now.
                notice.to = PostTarget::Person(holder.to_string());
            } else if holder.to_string() != *to {
                // Handed on before this went out: the new holder is told by a notice of
                // their own.
                return self.finish(job, None).await;
            }
        }
        let answers = match &notice.form_key {
            None => Answers::Done,
            Some(key) => {
                let mut conn = self.store().reader().await?;
                let schema = self
                    .form_at(&mut conn.conn(), job.workspace_id, key, notice.form_version)
                    .await?;
                match schema.map(|s| super::forms::Form::parse(&s)) {
                    Some(Ok(form)) if form.answers_yes_or_no() => Answers::Approve,
                    _ => Answers::Form,
                }
            }
        };
        let claimable = matches!(notice.to, PostTarget::Channel(_))
            && task
                .as_ref()
                .is_some_and(|t| t.status == "open" && t.assignee.is_none());
        let text = format!("{} {}", notice.text, answers.hint());
        let blocks = notice_blocks(&notice.task_id, &text, answers, claimable)?;
        // The job's id: one post per notice, a later notice to the same person (a task
        // escalated back to them) is its own.
        let post_id = job.id.clone();
        let outcome = self
            .post(
                job.workspace_id,
                job.instance_id,
                &post_id,
                &notice.to,
                &text,
                Some(blocks),
            )
            .await;
        self.record_post(
            job,
            &notice.element,
            &notice.to,
            outcome,
            Some(notice.task_id.clone()),
        )
        .await
    }

    /// A press of a button in message `id`. If the workflow bot posted the message (a task
    /// notice), the press answers the task as the button says (or claims it), for the person
    /// who pressed it and only if the task's assignment lets them (as the inbox does); the
    /// task's notices then show the answer instead of their buttons. `false` for any other
    /// message: a bot hears of presses in its own messages.
    pub async fn press(
        &self,
        actor: &Actor,
        id: MessageId,
        block_id: &str,
        action_id: &str,
    ) -> Result<bool, Error> {
        // A message the caller may not read is the bots' path to refuse, the same way.
        let Ok(message) = self.inner.chat.message(actor, id).await else {
            return Ok(false);
        };
        let workspace = {
            let mut conn = self.store().reader().await?;
            match crate::store::bots::by_id(&mut conn.conn(), message.author_id).await? {
                Some(bot)
                    if wf::workflow_bot(&mut conn.conn(), bot.workspace_id).await?
                        == Some(bot.user_id) =>
                {
                    bot.workspace_id
                }
                _ => return Ok(false),
            }
        };
        if message.deleted {
            return Err(Error::gone("message_deleted", "this message was deleted"));
        }
        let no_action = || {
            Error::conflict(
                "no_such_action",
                "this message has no such button (the task may have been answered)",
            )
        };
        // The task and the answer come from the stored message, never from the caller.
        let blocks = message
            .blocks
            .and_then(|b| {
                MessageBlocks::parse("blocks", Some(&Value::Array(b)))
                    .ok()
                    .flatten()
            })
            .ok_or_else(no_action)?;
        let element = blocks
            .action(block_id, action_id)
            .filter(|e| e.block_id == TASK_BLOCK)
            .ok_or_else(no_action)?;
        let task_id = element
            .element
            .get("value")
            .and_then(Value::as_str)
            .ok_or_else(no_action)?
            .to_owned();
        if element.action_id == CLAIM {
            // The claim queues the notices' update.
            self.claim(actor, task_id).await?;
            return Ok(true);
        }
        let (.., approved) = BUTTONS
            .iter()
            .find(|(id, ..)| *id == element.action_id)
            .ok_or_else(no_action)?;
        let mut variables = Map::new();
        if let Some(approved) = approved {
            variables.insert("approved".into(), json!(approved));
        }
        let line = answer_line(&variables, false, actor.user_id());
        let done = super::views::CompleteTask {
            variables: Some(variables),
        };
        self.complete(actor, task_id.clone(), done).await?;
        // The pressed notice shows the answer now, not when the runner gets to it.
        if let Err(err) = self
            .update_notices(workspace, &task_id, &line, true, Utc::now())
            .await
        {
            tracing::warn!(message = %id, error = %err, "a task notice could not show its answer");
        }
        Ok(true)
    }

    /// Queues, in the write `tx` that changed task `task_id`, the update of its notices (if it
    /// has any): each gains `line`, and with `close` loses its buttons.
    pub(super) async fn notices_changed(
        &self,
        tx: &mut Tx,
        instance: &InstanceRecord,
        task_id: &str,
        line: String,
        close: bool,
        at: DateTime<Utc>,
    ) -> Result<(), Error> {
        if !task_notices::any(&mut tx.conn(), task_id).await? {
            return Ok(());
        }
        let update = NoticeUpdate {
            task_id: task_id.to_owned(),
            line,
            close,
            before: at,
        };
        let job = format!("{task_id}:notices:{}", Uuid::now_v7());
        super::apply::queue(
            self,
            tx,
            instance,
            instance.id,
            &job,
            "notices",
            at,
            &update,
        )
        .await
    }

    /// Runs a `notices` job.
    pub(super) async fn run_notices(&self, job: &JobRecord) -> Result<(), Error> {
        let update: NoticeUpdate = self.payload(job).await?;
        self.update_notices(
            job.workspace_id,
            &update.task_id,
            &update.line,
            update.close,
            update.before,
        )
        .await?;
        self.finish(job, None).await
    }

    /// Edits the notices of `task_id` posted by `before` as the workflow bot: each gains
    /// `line`; with `close` each loses its buttons (and its record), otherwise its Claim
    /// button. A notice that says `line` already is left alone.
    async fn update_notices(
        &self,
        workspace: WorkspaceId,
        task_id: &str,
        line: &str,
        close: bool,
        before: DateTime<Utc>,
    ) -> Result<(), Error> {
        let (bot, messages) = {
            let mut conn = self.store().reader().await?;
            let bot = wf::workflow_bot(&mut conn.conn(), workspace).await?;
            let messages = task_notices::of_task(&mut conn.conn(), task_id, before).await?;
            (bot, messages)
        };
        let Some(bot) = bot else { return Ok(()) };
        let actor = bot_actor(bot, workspace);
        for id in messages {
            match self.update_notice(&actor, id, line, close).await {
                Err(err) if super::transient(&err) => return Err(err),
                Err(err) => {
                    tracing::warn!(message = %id, error = %err, "a task notice could not be updated");
                }
                Ok(()) => {}
            }
            // Forgotten only once edited (or past editing), so a retry of this job after a
            // transient failure still finds the notice.
            if close {
                let task = task_id.to_owned();
                self.store()
                    .write(move |tx: &mut Tx| {
                        Box::pin(async move {
                            Ok::<_, Error>(task_notices::take(&mut tx.conn(), &task, id).await?)
                        })
                    })
                    .await?;
            }
        }
        Ok(())
    }

    /// Edits one notice, `id`, as the workflow bot `actor`: see `update_notices`.
    async fn update_notice(
        &self,
        actor: &Actor,
        id: MessageId,
        line: &str,
        close: bool,
    ) -> Result<(), Error> {
        // A notice deleted, or in a conversation the bot left, stays as it is.
        let Ok(message) = self.inner.chat.message(actor, id).await else {
            return Ok(());
        };
        if message.deleted || message.text.ends_with(line) {
            return Ok(());
        }
        // A notice much edited keeps its lines so far and loses only its buttons: its text
        // stays well under a message's limit.
        let text = if message.text.len() + line.len() > MAX_NOTICE_BYTES {
            message.text.clone()
        } else {
            format!("{}\n{line}", message.text)
        };
        let mut blocks = vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})];
        if !close {
            let kept: Vec<Value> = message
                .blocks
                .iter()
                .flatten()
                .filter(|b| b["type"] == "actions")
                .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
                .filter(|e| e["action_id"] != CLAIM)
                .collect();
            if !kept.is_empty() {
                blocks.push(json!({"type": "actions", "block_id": TASK_BLOCK, "elements": kept}));
            }
        }
        match (
            MessageBody::parse("text", text),
            MessageBlocks::parse("blocks", Some(&Value::Array(blocks))),
        ) {
            (Ok(body), Ok(Some(blocks))) => self
                .inner
                .chat
                .edit_with_blocks(actor, id, body, BlocksEdit::Set(Some(blocks)))
                .await
                .map(|_| ()),
            (Ok(_), Ok(None)) => Ok(()),
            (Err(e), _) | (_, Err(e)) => Err(e.into()),
        }
    }
}

/// What a task's notices say once it was completed with `variables` by `who`: approved or
/// rejected (a yes-or-no answer), marked done (no form), or completed.
pub(super) fn answer_line(
    variables: &Map<String, Value>,
    has_form: bool,
    who: Option<UserId>,
) -> String {
    let who = who
        .map(|u| format!("<@{u}>"))
        .unwrap_or_else(|| "someone".into());
    match variables.get("approved").and_then(Value::as_bool) {
        Some(true) => format!("Approved by {who}."),
        Some(false) => format!("Rejected by {who}."),
        None if !has_form => format!("Marked done by {who}."),
        None => format!("Completed by {who}."),
    }
}

/// A task notice's blocks: its text, and the buttons `answers` allows (with Claim first when
/// `claimable`), each carrying the task's id as its value.
fn notice_blocks(
    task_id: &str,
    text: &str,
    answers: Answers,
    claimable: bool,
) -> Result<MessageBlocks, Error> {
    let section = json!({"type": "section", "text": {"type": "mrkdwn", "text": text}});
    let shown: &[&str] = match answers {
        Answers::Done => &["done"],
        Answers::Approve => &["approve", "reject"],
        Answers::Form => &[],
    };
    let mut elements: Vec<Value> = Vec::new();
    if claimable {
        elements.push(json!({
            "type": "button", "action_id": CLAIM, "value": task_id,
            "text": {"type": "plain_text", "text": "Claim"},
        }));
    }
    elements.extend(BUTTONS.iter().filter(|(id, ..)| shown.contains(id)).map(
        |(id, label, style, _)| {
            json!({
                "type": "button", "action_id": id, "value": task_id, "style": style,
                "text": {"type": "plain_text", "text": label},
            })
        },
    ));
    let mut blocks = vec![section];
    if !elements.is_empty() {
        blocks.push(json!({"type": "actions", "block_id": TASK_BLOCK, "elements": elements}));
    }
    MessageBlocks::parse("blocks", Some(&Value::Array(blocks)))?
        .ok_or_else(|| Error::Internal("a task notice without blocks".into()))
}
