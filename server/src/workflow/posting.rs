//! How workflows speak in chat: as the workspace's workflow bot, an ordinary bot account
//! (listed with the workspace's bots, deactivatable like them) made when the workspace deploys
//! its first process. A send task posts to a channel or, as a direct message, to a person; a
//! user task's assignee is told by direct message, a channel it went to by a post there.
//!
//! A post is authorized like any bot's: the bot posts in public channels (joining one the
//! first time) and in private ones it was added to, and opens direct conversations with members. It carries a client message
//! id derived from its job, so a post retried after a crash is not posted twice. What could
//! not be posted (no such channel, the bot deactivated or not in a private channel) is
//! audited as a failed `workflow.post`, naming the element and why, never the text.

use concord_workflow::command::Command;
use concord_workflow::model::PostTarget;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::apply::{channel_named, member_named};
use super::WorkflowService;
use crate::audit::{Event, Outcome};
use crate::chat::{BlocksEdit, MessageBlocks};
use crate::domain::{ChannelId, DisplayName, MessageBody, MessageId, UserId, WorkspaceId};
use crate::error::Error;
use crate::rbac::{builtin, Actor, BotCredential, BotScope, BotScopes};
use crate::store::workflows::{self as wf, JobRecord};
use crate::store::Tx;

/// The workflow bot's display name.
const BOT_NAME: &str = "Workflows";

impl WorkflowService {
    /// Makes the workspace's workflow bot inside the write `tx` unless it has one. Its maker
    /// is the person deploying or, for a deployment by Concord itself (the command line), the
    /// workspace's creator or an owner; a workspace with none of them gets no bot (its
    /// processes' posts fail, audited). Answers the bot's account.
    pub(super) async fn ensure_bot_in(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        workspace: WorkspaceId,
    ) -> Result<Option<UserId>, Error> {
        if let Some(bot) = wf::workflow_bot(&mut tx.conn(), workspace).await? {
            return Ok(Some(bot));
        }
        let creator = match actor.user_id() {
            Some(u) => Some(u),
            None => {
                let record = crate::store::workspaces::by_id(&mut tx.conn(), workspace).await?;
                match record.and_then(|w| w.created_by) {
                    Some(u) => Some(u),
                    None => crate::store::workspaces::holders_of(
                        &mut tx.conn(),
                        workspace,
                        builtin::OWNER,
                    )
                    .await?
                    .into_iter()
                    .next(),
                }
            }
        };
        let Some(creator) = creator else {
            tracing::warn!(%workspace, "no one to make the workflow bot for");
            return Ok(None);
        };
        let name = DisplayName::parse("name", BOT_NAME)?;
        let bot =
            crate::bots::insert_bot(tx, self.auditor(), actor, workspace, &name, None, creator)
                .await?;
        wf::set_workflow_bot(&mut tx.conn(), workspace, bot.user_id).await?;
        Ok(Some(bot.user_id))
    }

    /// Runs a `post` job: posts as the workflow bot, then deletes the job and audits the
    /// outcome in one write. A store that failed leaves the job to be tried again.
    pub(super) async fn run_post(&self, job: &JobRecord, command: Command) -> Result<(), Error> {
        let Command::Post {
            post_id,
            element,
            to,
            text,
        } = command
        else {
            return self.finish(job, None).await;
        };
        let outcome = self
            .post(
                job.workspace_id,
                job.instance_id,
                &post_id,
                &to,
                &text,
                None,
            )
            .await;
        self.record_post(job, &element, &to, outcome).await
    }

    /// Runs a `notice` job: tells a task's assignee (or the channel it went to) about it, with
    /// buttons that answer it where its form allows, then deletes the job and audits the
    /// outcome as a `post` job does.
    pub(super) async fn run_notice(
        &self,
        job: &JobRecord,
        mut notice: super::apply::TaskNotice,
    ) -> Result<(), Error> {
        if notice.reminder {
            let task = {
                let mut conn = self.store().reader().await?;
                wf::task(&mut conn.conn(), &notice.task_id).await?
            };
            let Some(task) = task.filter(|t| t.status == "open") else {
                return self.finish(job, None).await;
            };
            // Routing, a claim or an escalation may have moved it: remind whoever holds it now.
            if let (Some(holder), PostTarget::Person(_)) = (task.assignee, &notice.to) {
                notice.to = PostTarget::Person(holder.to_string());
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
        let text = format!("{} {}", notice.text, answers.hint());
        let blocks = notice_blocks(&notice.task_id, &text, answers)?;
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
        self.record_post(job, &notice.element, &notice.to, outcome)
            .await
    }

    /// Deletes a post's job and audits its outcome, in one write; a store that failed leaves
    /// the job to be tried again.
    async fn record_post(
        &self,
        job: &JobRecord,
        element: &str,
        to: &PostTarget,
        outcome: Result<(ChannelId, crate::domain::MessageId), Error>,
    ) -> Result<(), Error> {
        let details = match &outcome {
            Ok((channel, message)) => json!({
                "element": element, "channel_id": channel, "message_id": message,
            }),
            Err(e) if super::transient(e) => {
                return Err(Error::Internal(format!("a workflow post failed: {e}")));
            }
            Err(Error::NotFound(_)) => {
                let (reason, message) = match *to {
                    PostTarget::Channel(_) => (
                        "channel_unavailable",
                        "no such channel, or a private one the Workflows bot was not added to",
                    ),
                    PostTarget::Person(_) => {
                        ("person_unavailable", "no such member of the workspace")
                    }
                };
                json!({"element": element, "reason": reason, "message": message})
            }
            Err(e) => json!({"element": element, "reason": super::refusal_code(e)}),
        };
        let result = if outcome.is_ok() {
            Outcome::Allowed
        } else {
            Outcome::Failed
        };
        let this = self.clone();
        let ws = job.workspace_id;
        let instance = job.instance_id.map(|i| i.to_string()).unwrap_or_default();
        let id = job.id.clone();
        self.store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    if !wf::delete_job(&mut tx.conn(), &id).await? {
                        return Ok(());
                    }
                    let event = Event::by(&Actor::system(), "workflow.post", result)
                        .target("workflow_instance", instance)
                        .workspace(ws)
                        .details(details);
                    this.auditor().record(tx, event).await
                })
            })
            .await
    }

    /// Posts `text` to `to` as the workspace's workflow bot: the channel and message posted.
    /// A channel post is made for the person the instance acts for (its starter, or for an
    /// instance a trigger or schedule started, the deployer of its version): only into a
    /// channel they may read, so nobody steers the bot into a private channel they are not in.
    async fn post(
        &self,
        workspace: WorkspaceId,
        instance: Option<uuid::Uuid>,
        post_id: &str,
        to: &PostTarget,
        text: &str,
        blocks: Option<MessageBlocks>,
    ) -> Result<(ChannelId, crate::domain::MessageId), Error> {
        let keyring = self.auditor().keyring();
        // A workspace that deployed before it had a workflow bot gets one now.
        let known = {
            let mut conn = self.store().reader().await?;
            wf::workflow_bot(&mut conn.conn(), workspace).await?
        };
        let bot = match known {
            Some(b) => Some(b),
            None => {
                let this = self.clone();
                self.store()
                    .write(move |tx: &mut Tx| {
                        Box::pin(async move {
                            this.ensure_bot_in(tx, &Actor::system(), workspace).await
                        })
                    })
                    .await?
            }
        };
        let (bot, target) = {
            let mut conn = self.store().reader().await?;
            let bot = match bot {
                Some(b) => crate::store::bots::by_id(&mut conn.conn(), b)
                    .await?
                    .filter(|r| r.deactivated_at.is_none())
                    .map(|r| r.user_id),
                None => None,
            };
            let Some(bot) = bot else {
                return Err(Error::refused(
                    "workflow_bot_unavailable",
                    "the workspace's workflow bot is missing or deactivated",
                ));
            };
            let target = match to {
                PostTarget::Channel(c) => {
                    let channel = channel_named(keyring, &mut conn.conn(), workspace, c)
                        .await?
                        .ok_or(Error::NotFound("channel"))?
                        .id;
                    if let Some(person) = self.acting_for(&mut conn.conn(), instance).await? {
                        if !crate::rbac::reads_channel(&mut conn.conn(), person, channel).await? {
                            return Err(Error::refused(
                                "starter_not_in_channel",
                                "the person this process acts for may not post in that channel",
                            ));
                        }
                    }
                    Target::Channel(channel)
                }
                PostTarget::Person(p) => Target::Person(
                    member_named(keyring, &mut conn.conn(), workspace, p)
                        .await?
                        .ok_or(Error::NotFound("user"))?,
                ),
            };
            (bot, target)
        };
        let actor = bot_actor(bot, workspace);
        let (channel, public) = match target {
            Target::Channel(c) => (c, true),
            Target::Person(p) => {
                let direct = self
                    .inner
                    .chat
                    .open_conversation(&actor, workspace, vec![p])
                    .await?;
                (direct.id, false)
            }
        };
        let body = MessageBody::parse("text", text.to_owned())?;
        let chat = &self.inner.chat;
        let cid = client_msg_id(post_id);
        let posted = match chat
            .post_with_blocks(
                &actor,
                channel,
                body.clone(),
                blocks.clone(),
                None,
                Some(cid.clone()),
            )
            .await
        {
            // The bot joins a public channel the first time it posts there (a private one
            // refuses it until someone adds it).
            Err(Error::Refused {
                code: "not_in_channel",
                ..
            }) if public => {
                chat.join(&actor, channel).await?;
                chat.post_with_blocks(&actor, channel, body, blocks, None, Some(cid))
                    .await?
            }
            other => other?,
        };
        Ok((channel, posted.id))
    }
}

impl WorkflowService {
    /// A press of a button in message `id`. If the workflow bot posted the message (a task
    /// notice), the press answers the task as the button says, for the person who pressed it
    /// and only if the task's assignment lets them (as completing it from the inbox does), and
    /// the notice then shows the answer instead of its buttons. `false` for any other message:
    /// a bot hears of presses in its own messages.
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
                MessageBlocks::parse("blocks", Some(&serde_json::Value::Array(b)))
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
            .and_then(serde_json::Value::as_str)
            .ok_or_else(no_action)?
            .to_owned();
        let (.., approved) = BUTTONS
            .iter()
            .find(|(id, ..)| *id == element.action_id)
            .ok_or_else(no_action)?;
        let mut variables = serde_json::Map::new();
        if let Some(approved) = approved {
            variables.insert("approved".into(), json!(approved));
        }
        let done = super::views::CompleteTask {
            variables: Some(variables),
        };
        self.complete(actor, task_id, done).await?;
        // The notice keeps its text, says who answered, and loses its buttons.
        let who = actor
            .user_id()
            .map(|u| format!("<@{u}>"))
            .unwrap_or_else(|| "someone".into());
        let answered = match approved {
            Some(true) => format!("Approved by {who}."),
            Some(false) => format!("Rejected by {who}."),
            None => format!("Marked done by {who}."),
        };
        let original = message.text.clone();
        let text = format!("{original}\n{answered}");
        let edited = match (
            MessageBody::parse("text", text.clone()),
            MessageBlocks::parse(
                "blocks",
                Some(&json!([{"type": "section", "text": {"type": "mrkdwn", "text": text}}])),
            ),
        ) {
            (Ok(body), Ok(blocks)) => {
                let bot = bot_actor(message.author_id, workspace);
                self.inner
                    .chat
                    .edit_with_blocks(&bot, id, body, BlocksEdit::Set(blocks))
                    .await
                    .map(|_| ())
            }
            (Err(e), _) | (_, Err(e)) => Err(e.into()),
        };
        if let Err(err) = edited {
            tracing::warn!(message = %id, error = %err, "a task notice could not show its answer");
        }
        Ok(true)
    }

    /// The person an instance acts for: its starter, else its version's deployer (none for
    /// an instance Concord itself started from a version deployed from the command line).
    async fn acting_for(
        &self,
        conn: &mut crate::store::Conn<'_>,
        instance: Option<uuid::Uuid>,
    ) -> Result<Option<UserId>, Error> {
        let Some(id) = instance else {
            return Ok(None);
        };
        let Some(record) = wf::instance(conn, id).await? else {
            return Ok(None);
        };
        if let Some(starter) = record.started_by {
            return Ok(Some(starter));
        }
        Ok(wf::deployment(conn, record.deployment_id)
            .await?
            .and_then(|d| d.deployed_by))
    }
}

/// The workflow bot of `workspace` acting as itself: it may post.
fn bot_actor(bot: UserId, workspace: WorkspaceId) -> Actor {
    Actor::bot(
        bot,
        BotCredential::Workflow,
        workspace,
        BotScopes::parse([BotScope::ChatWrite.as_str()]).unwrap_or_default(),
        None,
    )
}

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

/// The block holding a task notice's buttons.
const TASK_BLOCK: &str = "workflow_task";
/// Its buttons: action id, label, style, and the `approved` each completes the task with.
const BUTTONS: [(&str, &str, &str, Option<bool>); 3] = [
    ("approve", "Approve", "primary", Some(true)),
    ("reject", "Reject", "danger", Some(false)),
    ("done", "Mark done", "primary", None),
];

/// A task notice's blocks: its text, and the buttons `answers` allows, each carrying the
/// task's id as its value.
fn notice_blocks(task_id: &str, text: &str, answers: Answers) -> Result<MessageBlocks, Error> {
    let section = json!({"type": "section", "text": {"type": "mrkdwn", "text": text}});
    let shown: &[&str] = match answers {
        Answers::Done => &["done"],
        Answers::Approve => &["approve", "reject"],
        Answers::Form => &[],
    };
    let elements: Vec<serde_json::Value> = BUTTONS
        .iter()
        .filter(|(id, ..)| shown.contains(id))
        .map(|(id, label, style, _)| {
            json!({
                "type": "button", "action_id": id, "value": task_id, "style": style,
                "text": {"type": "plain_text", "text": label},
            })
        })
        .collect();
    let mut blocks = vec![section];
    if !elements.is_empty() {
        blocks.push(json!({"type": "actions", "block_id": TASK_BLOCK, "elements": elements}));
    }
    MessageBlocks::parse("blocks", Some(&serde_json::Value::Array(blocks)))?
        .ok_or_else(|| Error::Internal("a task notice without blocks".into()))
}

/// Where a post goes, resolved.
enum Target {
    Channel(ChannelId),
    Person(UserId),
}

/// A post's client message id: the same for every try of one job, 64 characters at most.
fn client_msg_id(post_id: &str) -> String {
    let digest = Sha256::digest(post_id.as_bytes());
    format!("wf-{}", hex::encode(&digest[..16]))
}
