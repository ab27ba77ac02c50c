//! Messages: editing with history, deleting, history pages, message links, reactions and
//! pins (posting is [`super::posting`]).

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;

use super::details::client_msg_aad;
use super::{
    blocks_aad, body_aad, channel, user_of, writable, BlocksEdit, ChatService, MessageBlocks,
    MessageVersionView, MessageView, Page, MAX_PAGE,
};
use crate::audit::{Event, Outcome};
use crate::compliance::holds::InForce;
use crate::crypto::{Aad, Scope};
use crate::domain::{ChannelId, Emoji, MessageBody, MessageId, UserId, WorkspaceId};
use crate::error::Error;
use crate::events::{DomainEvent, Local, MessageChange, Reaction};
use crate::policy::PhiRead;
use crate::rbac::{Action, Actor, Resource};
use crate::store::channels::{self, ChannelForMember, ChannelRecord};
use crate::store::messages::{self, MessageRecord};
use crate::store::remnants::{self, RemnantRecord};
use crate::store::{Conn, PooledConn, Tx};

/// Where a deleted message's kept text is bound (`message_remnants`, "<id>:<version>").
fn remnant_aad<'a>(row: &'a str, column: &'static str) -> Aad<'a> {
    Aad {
        table: "message_remnants",
        row,
        column,
    }
}

/// Refuses unless the actor is in the channel (their role was read with the decision).
fn require_member_of(found: &ChannelForMember) -> Result<(), Error> {
    match found.member_role {
        Some(_) => Ok(()),
        None => Err(Error::refused("not_in_channel", "join the channel first")),
    }
}

impl ChatService {
    async fn view_messages(
        &self,
        conn: &mut Conn<'_>,
        workspace: WorkspaceId,
        records: Vec<MessageRecord>,
    ) -> Result<Vec<MessageView>, Error> {
        let ids: Vec<MessageId> = records.iter().map(|m| m.id).collect();
        let mut reactions: BTreeMap<MessageId, BTreeMap<String, Vec<UserId>>> = BTreeMap::new();
        for (id, emoji, user) in messages::reactions(conn, &ids).await? {
            reactions
                .entry(id)
                .or_default()
                .entry(emoji)
                .or_default()
                .push(user);
        }
        let pinned: HashSet<MessageId> = match records.first() {
            Some(first) => messages::pinned(conn, first.channel_id)
                .await?
                .into_iter()
                .collect(),
            None => HashSet::new(),
        };
        let scope = Scope::Workspace(workspace);
        let mut out = Vec::with_capacity(records.len());
        for m in records {
            let text = if m.deleted_at.is_some() {
                String::new()
            } else {
                let id = m.id.to_string();
                self.keyring
                    .decrypt_text(conn, &scope, body_aad(&id), &m.body)
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))?
            };
            let client_msg_id = match &m.client_msg_id_enc {
                Some(ct) => {
                    let id = m.id.to_string();
                    Some(
                        self.keyring
                            .decrypt_text(conn, &scope, client_msg_aad(&id), ct)
                            .await?,
                    )
                }
                None => None,
            };
            let blocks = match (&m.blocks, m.deleted_at) {
                (Some(ct), None) => {
                    let id = m.id.to_string();
                    let json = self
                        .keyring
                        .decrypt(conn, &scope, blocks_aad(&id), ct)
                        .await?;
                    MessageBlocks::from_bytes(&json).map(MessageBlocks::into_vec)
                }
                _ => None,
            };
            out.push(MessageView {
                id: m.id,
                channel_id: m.channel_id,
                seq: m.seq,
                author_id: m.author_id,
                text,
                thread_root_id: m.thread_root_id,
                reply_count: m.reply_count,
                last_reply_at: m.last_reply_at,
                client_msg_id,
                created_at: m.created_at,
                edited_at: m.edited_at,
                deleted: m.deleted_at.is_some(),
                reactions: reactions.remove(&m.id).unwrap_or_default(),
                pinned: pinned.contains(&m.id),
                blocks,
            });
        }
        Ok(out)
    }

    pub(super) async fn view_one(
        &self,
        conn: &mut Conn<'_>,
        workspace: WorkspaceId,
        id: MessageId,
    ) -> Result<MessageView, Error> {
        let record = messages::by_id(conn, id)
            .await?
            .ok_or(Error::NotFound("message"))?;
        self.view_messages(conn, workspace, vec![record])
            .await?
            .pop()
            .ok_or(Error::NotFound("message"))
    }

    /// A message as its channel's members see it now, or `None` if it no longer exists or
    /// is not in `channel` of `workspace`. No access check: for delivering a message event
    /// that arrived without its content (from another process) to the members of the
    /// channel the event names, so the message must be in that very channel.
    pub async fn message_for_delivery(
        &self,
        workspace: WorkspaceId,
        channel: ChannelId,
        id: MessageId,
    ) -> Result<Option<MessageView>, Error> {
        let mut pooled = self.store.reader().await?;
        let mut conn = pooled.conn();
        let Some(record) = messages::by_id(&mut conn, id).await? else {
            return Ok(None);
        };
        if record.channel_id != channel {
            tracing::warn!(
                message = %id,
                event_channel = %channel,
                message_channel = %record.channel_id,
                "a message event names another channel than its message's"
            );
            return Ok(None);
        }
        match channels::by_id(&mut conn, channel).await? {
            Some(c) if c.workspace_id == workspace => {}
            Some(c) => {
                tracing::warn!(
                    message = %id,
                    channel = %channel,
                    event_workspace = %workspace,
                    channel_workspace = %c.workspace_id,
                    "a message event names another workspace than its channel's"
                );
                return Ok(None);
            }
            None => return Ok(None),
        }
        Ok(self
            .view_messages(&mut conn, workspace, vec![record])
            .await?
            .pop())
    }

    /// Edits one's own message; the previous text is kept as a version. Blocks the message
    /// had are removed: an edit replaces what the message says.
    pub async fn edit(
        &self,
        actor: &Actor,
        id: MessageId,
        body: MessageBody,
    ) -> Result<MessageView, Error> {
        self.edit_with_blocks(actor, id, body, BlocksEdit::Set(None))
            .await
    }

    /// Edits one's own message to `body`, and its blocks as `blocks` says (a bot's message);
    /// the previous text is kept as a version, earlier blocks are not.
    pub async fn edit_with_blocks(
        &self,
        actor: &Actor,
        id: MessageId,
        body: MessageBody,
        blocks: BlocksEdit,
    ) -> Result<MessageView, Error> {
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let (found, m) = this
                        .message_in_tx(tx, &actor, id, Action::PostMessages)
                        .await?;
                    let c = found.channel;
                    writable(&c)?;
                    if Some(m.author_id) != actor.user_id() {
                        return Err(Error::refused(
                            "not_author",
                            "only the author may edit a message",
                        ));
                    }
                    if m.deleted_at.is_some() {
                        return Err(Error::gone("message_deleted", "this message was deleted"));
                    }
                    let scope = Scope::Workspace(c.workspace_id);
                    let id_text = id.to_string();
                    let old = this
                        .keyring
                        .decrypt(&mut tx.conn(), &scope, body_aad(&id_text), &m.body)
                        .await
                        .map_err(|e| Error::Internal(e.to_string()))?;
                    let version = messages::versions(&mut tx.conn(), id).await?.len() as i64 + 1;
                    let version_row = format!("{id_text}:{version}");
                    let kept = this
                        .keyring
                        .encrypt(
                            tx,
                            &scope,
                            Aad {
                                table: "message_versions",
                                row: &version_row,
                                column: "body",
                            },
                            &old,
                        )
                        .await
                        .map_err(|e| Error::Internal(e.to_string()))?;
                    let sealed = this
                        .keyring
                        .encrypt(tx, &scope, body_aad(&id_text), body.as_str().as_bytes())
                        .await
                        .map_err(|e| Error::Internal(e.to_string()))?;
                    messages::replace_body(&mut tx.conn(), id, &kept, &sealed, Utc::now()).await?;
                    match &blocks {
                        BlocksEdit::Keep => {}
                        BlocksEdit::Set(Some(b)) => {
                            let sealed = this
                                .keyring
                                .encrypt(tx, &scope, blocks_aad(&id_text), &b.to_bytes())
                                .await?;
                            messages::set_blocks(&mut tx.conn(), id, Some(&sealed)).await?;
                        }
                        BlocksEdit::Set(None) if m.blocks.is_some() => {
                            messages::set_blocks(&mut tx.conn(), id, None).await?;
                        }
                        BlocksEdit::Set(None) => {}
                    }
                    let view = this.view_one(&mut tx.conn(), c.workspace_id, id).await?;
                    tx.emit(DomainEvent::MessageUpdated {
                        workspace_id: c.workspace_id,
                        channel_id: view.channel_id,
                        message_id: view.id,
                        seq: view.seq,
                        what: MessageChange::Edited,
                        reaction: None,
                        view: Local::new(view.clone()),
                    });
                    let event = Event::by(&actor, "message.edited", Outcome::Allowed)
                        .target("message", id)
                        .workspace(c.workspace_id)
                        .details(serde_json::json!({ "channel_id": c.id, "version": version }));
                    this.auditor.record(tx, event).await?;
                    Ok(view)
                })
            })
            .await
    }

    /// Deletes a message (its author, or a moderator): it becomes a "message deleted"
    /// tombstone for everyone. Its text and earlier versions are destroyed at once, unless a
    /// legal hold covers it or the workspace's `retention.deletion_grace_days` is set: then
    /// they are kept apart (`message_remnants`), out of every reader's sight, for compliance
    /// officers, until the retention job destroys them once the grace period is over and no
    /// hold covers them. The deleter is told the same either way.
    pub async fn delete(&self, actor: &Actor, id: MessageId) -> Result<(), Error> {
        let grace_days = self.deletion_grace_days(id).await?;
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let (found, m) = this
                        .message_in_tx(tx, &actor, id, Action::ReadChannels)
                        .await?;
                    let c = found.channel;
                    if Some(m.author_id) != actor.user_id() {
                        this.auditor
                            .authorize(
                                tx,
                                &actor,
                                Action::ModerateMessages,
                                Resource::Channel(c.id),
                            )
                            .await?;
                    }
                    writable(&c)?;
                    if m.deleted_at.is_some() {
                        return Ok(());
                    }
                    let now = Utc::now();
                    // Read in this write: a hold placed a moment ago counts.
                    let held = InForce::read(&mut tx.conn(), c.workspace_id)
                        .await?
                        .covers_parts(m.author_id, c.id, m.created_at);
                    let kept = if held || grace_days > 0 {
                        let purge_after = now + chrono::TimeDelta::days(i64::from(grace_days));
                        this.keep_remnants(tx, c.workspace_id, &m, now, purge_after)
                            .await?;
                        Some(purge_after)
                    } else {
                        None
                    };
                    messages::tombstone(&mut tx.conn(), id, &[], now).await?;
                    tx.emit(DomainEvent::MessageDeleted {
                        workspace_id: c.workspace_id,
                        channel_id: c.id,
                        message_id: id,
                        seq: m.seq,
                    });
                    let event = Event::by(&actor, "message.deleted", Outcome::Allowed)
                        .target("message", id)
                        .workspace(c.workspace_id)
                        .subject(m.author_id)
                        .details(serde_json::json!({
                            "channel_id": c.id,
                            "text_kept": kept.is_some(),
                            "legal_hold": held,
                            "grace_ends_at": kept,
                        }));
                    this.auditor.record(tx, event).await?;
                    // Files posted with the message go with it; their blobs are removed
                    // after the commit by the files housekeeping, which follows FileDeleted.
                    // Kept with the text, they are hidden instead (rows and blobs stay, for
                    // the retention job to delete with the text).
                    for file in crate::store::files::attached_to(&mut tx.conn(), id).await? {
                        match kept {
                            Some(purge_after) => {
                                crate::store::files::hide(
                                    &mut tx.conn(),
                                    file.id,
                                    now,
                                    purge_after,
                                )
                                .await?;
                            }
                            None => {
                                crate::store::files::delete(&mut tx.conn(), file.id).await?;
                            }
                        }
                        let event = Event::by(&actor, "file.deleted", Outcome::Allowed)
                            .target("file", file.id)
                            .workspace(c.workspace_id)
                            .subject(file.uploader_id)
                            .details(serde_json::json!({
                                "channel_id": c.id,
                                "size": file.size,
                                "status": file.status,
                                "with_message": id,
                                "kept": kept.is_some(),
                            }));
                        this.auditor.record(tx, event).await?;
                        tx.emit(DomainEvent::FileDeleted {
                            workspace_id: c.workspace_id,
                            channel_id: c.id,
                            file_id: file.id,
                            message_id: Some(id),
                        });
                    }
                    Ok(())
                })
            })
            .await
    }

    /// How many days the policy of the message's workspace keeps a deleted message's text
    /// (0 if the message is not found: the write then says so).
    async fn deletion_grace_days(&self, id: MessageId) -> Result<u32, Error> {
        let workspace = {
            let mut conn = self.store.reader().await?;
            let Some(m) = messages::by_id(&mut conn.conn(), id).await? else {
                return Ok(0);
            };
            match channels::by_id(&mut conn.conn(), m.channel_id).await? {
                Some(c) => c.workspace_id,
                None => return Ok(0),
            }
        };
        let (resolved, _) = self.policies.effective(workspace).await?;
        Ok(resolved.policy.retention.deletion_grace_days)
    }

    /// Keeps a message's text at deletion and its earlier versions in `message_remnants`,
    /// sealed again for their new place, until `purge_after` (or longer while held).
    async fn keep_remnants(
        &self,
        tx: &mut Tx,
        workspace: WorkspaceId,
        m: &MessageRecord,
        now: chrono::DateTime<Utc>,
        purge_after: chrono::DateTime<Utc>,
    ) -> Result<(), Error> {
        let scope = Scope::Workspace(workspace);
        let id = m.id.to_string();
        let mut rows = Vec::new();
        let versions = messages::versions(&mut tx.conn(), m.id).await?;
        let last = versions.last().map_or(0, |v| v.0) + 1;
        for (version, body, replaced_at) in versions {
            let row = format!("{id}:{version}");
            let text = self
                .keyring
                .decrypt(
                    &mut tx.conn(),
                    &scope,
                    Aad {
                        table: "message_versions",
                        row: &row,
                        column: "body",
                    },
                    &body,
                )
                .await?;
            let body = self
                .keyring
                .encrypt(tx, &scope, remnant_aad(&row, "body"), &text)
                .await?;
            rows.push(RemnantRecord {
                message_id: m.id,
                version,
                body,
                blocks: None,
                written_at: replaced_at,
                purge_after,
            });
        }
        let row = format!("{id}:{last}");
        let text = self
            .keyring
            .decrypt(&mut tx.conn(), &scope, body_aad(&id), &m.body)
            .await?;
        let body = self
            .keyring
            .encrypt(tx, &scope, remnant_aad(&row, "body"), &text)
            .await?;
        let blocks = match &m.blocks {
            Some(b) => {
                let plain = self
                    .keyring
                    .decrypt(&mut tx.conn(), &scope, blocks_aad(&id), b)
                    .await?;
                Some(
                    self.keyring
                        .encrypt(tx, &scope, remnant_aad(&row, "blocks"), &plain)
                        .await?,
                )
            }
            None => None,
        };
        rows.push(RemnantRecord {
            message_id: m.id,
            version: last,
            body,
            blocks,
            written_at: now,
            purge_after,
        });
        remnants::keep(&mut tx.conn(), &rows).await?;
        Ok(())
    }

    /// The message `id` and its channel once `actor` may do `action` in that channel, with
    /// the actor's channel role (decided and read in one query with the channel).
    async fn message_in_tx(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        id: MessageId,
        action: Action,
    ) -> Result<(ChannelForMember, MessageRecord), Error> {
        let m = messages::by_id(&mut tx.conn(), id).await?;
        // An unknown message is decided like a hidden channel: not found either way.
        let channel_id = m
            .as_ref()
            .map(|m| m.channel_id)
            .unwrap_or(ChannelId(uuid::Uuid::nil()));
        let found = self
            .auditor
            .authorize_channel(tx, actor, action, channel_id)
            .await?;
        let m = m.ok_or(Error::NotFound("message"))?;
        let found = found.ok_or(Error::NotFound("channel"))?;
        Ok((found, m))
    }

    /// A reader connection once `actor` may read channel `id`, with the channel.
    pub(super) async fn read_channel(
        &self,
        actor: &Actor,
        id: ChannelId,
    ) -> Result<(PooledConn, ChannelRecord), Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ReadChannels,
                Resource::Channel(id),
            )
            .await?;
        let c = channel(&mut conn.conn(), id).await?;
        Ok((conn, c))
    }

    /// A reader connection once `actor` may read the channel message `id` is in, with both.
    /// An unknown message is decided like a hidden channel: not found either way.
    async fn read_message(
        &self,
        actor: &Actor,
        id: MessageId,
    ) -> Result<(PooledConn, ChannelRecord, MessageRecord), Error> {
        let mut conn = self.store.reader().await?;
        let m = messages::by_id(&mut conn.conn(), id).await?;
        let channel_id = m
            .as_ref()
            .map(|m| m.channel_id)
            .unwrap_or(ChannelId(uuid::Uuid::nil()));
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ReadChannels,
                Resource::Channel(channel_id),
            )
            .await?;
        let m = m.ok_or(Error::NotFound("message"))?;
        let c = channel(&mut conn.conn(), m.channel_id).await?;
        Ok((conn, c, m))
    }

    /// A page of a channel's history in ascending order.
    pub async fn history(
        &self,
        actor: &Actor,
        id: ChannelId,
        page: Page,
    ) -> Result<Vec<MessageView>, Error> {
        let (mut conn, c) = self.read_channel(actor, id).await?;
        let limit = page.limit.unwrap_or(50).clamp(1, MAX_PAGE);
        let records = messages::page(&mut conn.conn(), id, page.before, page.after, limit).await?;
        let views = self
            .view_messages(&mut conn.conn(), c.workspace_id, records)
            .await?;
        drop(conn);
        self.audit_phi_read(actor, &c, "messages", &views).await?;
        Ok(views)
    }

    /// Audits `actor`'s read of `views` in channel `c` where its PHI reads are audited
    /// (`phi.audit_reads`; see [`crate::policy::PhiScope`]).
    async fn audit_phi_read(
        &self,
        actor: &Actor,
        c: &ChannelRecord,
        kind: &'static str,
        views: &[MessageView],
    ) -> Result<(), Error> {
        let ids = views.iter().map(|v| v.id.to_string()).collect();
        self.audit_phi_ids(actor, c, kind, ids).await
    }

    /// [`ChatService::audit_phi_read`] of the messages `ids` name. The caller holds no
    /// connection of the pool (see [`crate::policy::PolicyService::audit_phi_read`]).
    async fn audit_phi_ids(
        &self,
        actor: &Actor,
        c: &ChannelRecord,
        kind: &'static str,
        ids: Vec<String>,
    ) -> Result<(), Error> {
        let read = PhiRead {
            workspace: c.workspace_id,
            kind,
            target: ("channel", c.id.to_string()),
            ids,
        };
        self.policies.audit_phi_read(actor, Some(c.id), read).await
    }

    /// Audits that a live connection of `actor` receives, as they are posted, the messages
    /// of the channels holding PHI they are a member of (`phi.audit_reads`): one `phi.read`
    /// entry (`live_channels`) per workspace with such channels, naming them. A connection
    /// whose reads cannot be audited is not served.
    pub async fn audit_live_phi(&self, actor: &Actor) -> Result<(), Error> {
        let Some(user) = actor.user_id() else {
            return Ok(());
        };
        let mut conn = self.store.reader().await?;
        let mut reads = Vec::new();
        for w in crate::store::workspaces::list_for_user(&mut conn.conn(), user).await? {
            let workspace = w.workspace.id;
            let Some(scope) = self.policies.phi_scope(&mut conn.conn(), workspace).await? else {
                continue;
            };
            let ids: Vec<String> = channels::for_member(&mut conn.conn(), workspace, user)
                .await?
                .into_iter()
                .filter(|c| scope.covers(Some(c.channel.id)))
                .map(|c| c.channel.id.to_string())
                .collect();
            reads.push(PhiRead {
                workspace,
                kind: "live_channels",
                target: ("workspace", workspace.to_string()),
                ids,
            });
        }
        drop(conn);
        self.policies.record_phi_reads(actor, reads).await
    }

    /// Audits that message `id` of channel `c` is delivered to a bot (`actor`) as an event,
    /// where the channel's PHI reads are audited (see [`ChatService::audit_phi_read`]).
    pub async fn audit_phi_delivery(
        &self,
        actor: &Actor,
        c: &ChannelRecord,
        id: MessageId,
    ) -> Result<(), Error> {
        self.audit_phi_ids(actor, c, "bot_event", vec![id.to_string()])
            .await
    }

    /// A page of a channel's history for an emergency access that its caller has decided
    /// and audited (`phi::BreakGlassService`): nothing is authorized here.
    pub async fn history_for_emergency_access(
        &self,
        id: ChannelId,
        page: Page,
    ) -> Result<Vec<MessageView>, Error> {
        let mut conn = self.store.reader().await?;
        let c = channel(&mut conn.conn(), id).await?;
        let limit = page.limit.unwrap_or(50).clamp(1, MAX_PAGE);
        let records = messages::page(&mut conn.conn(), id, page.before, page.after, limit).await?;
        self.view_messages(&mut conn.conn(), c.workspace_id, records)
            .await
    }

    /// The message at position `seq` of a channel, for those who may read the channel
    /// (clients that name messages by channel and position, such as Slack's `ts`).
    pub async fn message_at(
        &self,
        actor: &Actor,
        id: ChannelId,
        seq: i64,
    ) -> Result<MessageView, Error> {
        let (mut conn, c) = self.read_channel(actor, id).await?;
        let record = messages::by_seq(&mut conn.conn(), id, seq)
            .await?
            .ok_or(Error::NotFound("message"))?;
        let views = self
            .view_messages(&mut conn.conn(), c.workspace_id, vec![record])
            .await?;
        drop(conn);
        self.audit_phi_read(actor, &c, "messages", &views).await?;
        views.into_iter().next().ok_or(Error::NotFound("message"))
    }

    /// One message, for those who may read its channel.
    pub async fn message(&self, actor: &Actor, id: MessageId) -> Result<MessageView, Error> {
        let (mut conn, c, m) = self.read_message(actor, id).await?;
        let views = self
            .view_messages(&mut conn.conn(), c.workspace_id, vec![m])
            .await?;
        drop(conn);
        self.audit_phi_read(actor, &c, "messages", &views).await?;
        views.into_iter().next().ok_or(Error::NotFound("message"))
    }

    /// A message with its neighbours (for a message link).
    pub async fn context(
        &self,
        actor: &Actor,
        id: MessageId,
        each_side: i64,
    ) -> Result<(MessageView, Vec<MessageView>), Error> {
        let (mut conn, c, m) = self.read_message(actor, id).await?;
        let anchor = m.thread_root_id.map(|_| m.seq).unwrap_or(m.seq);
        let around = messages::around(
            &mut conn.conn(),
            m.channel_id,
            anchor,
            each_side.clamp(0, 100),
        )
        .await?;
        let target = self
            .view_messages(&mut conn.conn(), c.workspace_id, vec![m])
            .await?
            .pop()
            .ok_or(Error::NotFound("message"))?;
        let around = self
            .view_messages(&mut conn.conn(), c.workspace_id, around)
            .await?;
        let ids = std::iter::once(&target)
            .chain(around.iter().filter(|v| v.id != target.id))
            .map(|v| v.id.to_string())
            .collect();
        drop(conn);
        self.audit_phi_ids(actor, &c, "messages", ids).await?;
        Ok((target, around))
    }

    /// A thread: its root and replies.
    pub async fn thread(&self, actor: &Actor, root: MessageId) -> Result<Vec<MessageView>, Error> {
        let (mut conn, c, m) = self.read_message(actor, root).await?;
        let mut records = vec![m];
        records.extend(messages::replies(&mut conn.conn(), root, 1000).await?);
        let views = self
            .view_messages(&mut conn.conn(), c.workspace_id, records)
            .await?;
        drop(conn);
        self.audit_phi_read(actor, &c, "messages", &views).await?;
        Ok(views)
    }

    /// The earlier versions of an edited message.
    pub async fn versions(
        &self,
        actor: &Actor,
        id: MessageId,
    ) -> Result<Vec<MessageVersionView>, Error> {
        let (mut conn, c, _) = self.read_message(actor, id).await?;
        let scope = Scope::Workspace(c.workspace_id);
        let mut out = Vec::new();
        for (version, body, replaced_at) in messages::versions(&mut conn.conn(), id).await? {
            let row = format!("{id}:{version}");
            let text = self
                .keyring
                .decrypt_text(
                    &mut conn.conn(),
                    &scope,
                    Aad {
                        table: "message_versions",
                        row: &row,
                        column: "body",
                    },
                    &body,
                )
                .await
                .map_err(|e| Error::Internal(e.to_string()))?;
            out.push(MessageVersionView {
                version,
                text,
                replaced_at,
            });
        }
        if !out.is_empty() {
            let read = PhiRead {
                workspace: c.workspace_id,
                kind: "message_versions",
                target: ("message", id.to_string()),
                ids: out.iter().map(|v| format!("{id}:{}", v.version)).collect(),
            };
            drop(conn);
            self.policies
                .audit_phi_read(actor, Some(c.id), read)
                .await?;
        }
        Ok(out)
    }

    /// Adds or removes the caller's reaction (one per user per emoji).
    pub async fn react(
        &self,
        actor: &Actor,
        id: MessageId,
        emoji: String,
        add: bool,
    ) -> Result<MessageView, Error> {
        let reader = actor;
        let actor = actor.clone();
        let this = self.clone();
        let (view, c) = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let (found, m) = this
                        .message_in_tx(tx, &actor, id, Action::PostMessages)
                        .await?;
                    let emoji = Emoji::parse("emoji", &emoji)?;
                    let me = user_of(&actor)?;
                    require_member_of(&found)?;
                    let c = found.channel;
                    writable(&c)?;
                    if m.deleted_at.is_some() {
                        return Err(Error::gone("message_deleted", "this message was deleted"));
                    }
                    let changed = if add {
                        messages::add_reaction(&mut tx.conn(), id, me, emoji.as_str(), Utc::now())
                            .await?
                    } else {
                        messages::remove_reaction(&mut tx.conn(), id, me, emoji.as_str()).await?
                    };
                    let view = this.view_one(&mut tx.conn(), c.workspace_id, id).await?;
                    if changed {
                        let what = if add {
                            MessageChange::ReactionAdded
                        } else {
                            MessageChange::ReactionRemoved
                        };
                        tx.emit(DomainEvent::MessageUpdated {
                            workspace_id: c.workspace_id,
                            channel_id: view.channel_id,
                            message_id: view.id,
                            seq: view.seq,
                            what,
                            reaction: Some(Reaction {
                                user_id: me,
                                emoji: emoji.as_str().to_owned(),
                            }),
                            view: Local::new(view.clone()),
                        });
                    }
                    Ok((view, c))
                })
            })
            .await?;
        // The answer carries the message's text: a read like any other.
        self.audit_phi_read(reader, &c, "messages", std::slice::from_ref(&view))
            .await?;
        Ok(view)
    }

    /// Pins or unpins a message (channel members).
    pub async fn pin(
        &self,
        actor: &Actor,
        id: MessageId,
        pinned: bool,
    ) -> Result<MessageView, Error> {
        let reader = actor;
        let actor = actor.clone();
        let this = self.clone();
        let (view, c) = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let (found, m) = this
                        .message_in_tx(tx, &actor, id, Action::PostMessages)
                        .await?;
                    let me = user_of(&actor)?;
                    require_member_of(&found)?;
                    let c = found.channel;
                    writable(&c)?;
                    if m.deleted_at.is_some() {
                        return Err(Error::gone("message_deleted", "this message was deleted"));
                    }
                    let changed =
                        messages::set_pinned(&mut tx.conn(), c.id, id, me, pinned, Utc::now())
                            .await?;
                    let view = this.view_one(&mut tx.conn(), c.workspace_id, id).await?;
                    if changed {
                        let what = if pinned {
                            MessageChange::Pinned
                        } else {
                            MessageChange::Unpinned
                        };
                        tx.emit(DomainEvent::MessageUpdated {
                            workspace_id: c.workspace_id,
                            channel_id: view.channel_id,
                            message_id: view.id,
                            seq: view.seq,
                            what,
                            reaction: None,
                            view: Local::new(view.clone()),
                        });
                    }
                    Ok((view, c))
                })
            })
            .await?;
        // The answer carries the message's text: a read like any other.
        self.audit_phi_read(reader, &c, "messages", std::slice::from_ref(&view))
            .await?;
        Ok(view)
    }

    /// A channel's pinned messages.
    pub async fn pins(&self, actor: &Actor, id: ChannelId) -> Result<Vec<MessageView>, Error> {
        let (mut conn, c) = self.read_channel(actor, id).await?;
        let mut records = Vec::new();
        for mid in messages::pinned(&mut conn.conn(), id).await? {
            if let Some(m) = messages::by_id(&mut conn.conn(), mid).await? {
                records.push(m);
            }
        }
        let views = self
            .view_messages(&mut conn.conn(), c.workspace_id, records)
            .await?;
        drop(conn);
        self.audit_phi_read(actor, &c, "messages", &views).await?;
        Ok(views)
    }
}
