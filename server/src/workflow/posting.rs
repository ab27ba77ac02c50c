//! How workflows speak in chat: as the workspace's workflow bot, an ordinary bot account
//! (listed with the workspace's bots, deactivatable like them) made when the workspace deploys
//! its first process. A send task posts to a channel or, as a direct message, to a person; a
//! user task's assignee is told by direct message, a channel it went to by a post there
//! (those notices, their buttons and keeping them current are [`super::notices`]).
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
use crate::chat::MessageBlocks;
use crate::domain::{ChannelId, DisplayName, MessageBody, UserId, WorkspaceId};
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
        self.record_post(job, &element, &to, outcome, None).await
    }

    /// Deletes a post's job and audits its outcome, in one write; a store that failed leaves
    /// the job to be tried again. A notice of task `notice_of` that was posted is recorded
    /// as the task's, so it is kept current.
    pub(super) async fn record_post(
        &self,
        job: &JobRecord,
        element: &str,
        to: &PostTarget,
        outcome: Result<(ChannelId, crate::domain::MessageId), Error>,
        notice_of: Option<String>,
    ) -> Result<(), Error> {
        let posted = outcome.as_ref().ok().map(|(_, m)| *m);
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
                    if let (Some(task), Some(message)) = (notice_of, posted) {
                        if wf::task(&mut tx.conn(), &task).await?.is_some() {
                            crate::store::task_notices::insert(
                                &mut tx.conn(),
                                &task,
                                message,
                                chrono::Utc::now(),
                            )
                            .await?;
                        }
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
    pub(super) async fn post(
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
pub(super) fn bot_actor(bot: UserId, workspace: WorkspaceId) -> Actor {
    Actor::bot(
        bot,
        BotCredential::Workflow,
        workspace,
        BotScopes::parse([BotScope::ChatWrite.as_str()]).unwrap_or_default(),
        None,
    )
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
