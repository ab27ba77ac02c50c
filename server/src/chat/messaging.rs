//! Messages: posting (with idempotency, threads and mentions), editing with history,
//! deleting, history pages, message links, reactions and pins.

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;

use super::details::{client_msg_aad, client_msg_index};
use super::{
    body_aad, channel, require_member, user_of, writable, ChatService, MessageVersionView,
    MessageView, Page, MAX_PAGE,
};
use crate::audit::{Event, Outcome};
use crate::crypto::{Aad, Scope};
use crate::domain::{ChannelId, Emoji, MessageBody, MessageId, UserId, WorkspaceId};
use crate::error::Error;
use crate::events::{DomainEvent, Local, MessageChange};
use crate::rbac::{Action, Actor, Resource};
use crate::store::channels::{self, ChannelRecord};
use crate::store::messages::{self, MessageRecord};
use crate::store::{users, Conn, PooledConn, Tx};

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
            });
        }
        Ok(out)
    }

    async fn view_one(
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

    /// Posts a message (or a thread reply). With a `client_msg_id`, a retried post returns
    /// the message already posted instead of a duplicate. Resolves once durable.
    pub async fn post(
        &self,
        actor: &Actor,
        id: ChannelId,
        body: MessageBody,
        thread_root: Option<MessageId>,
        client_msg_id: Option<String>,
    ) -> Result<MessageView, Error> {
        if let Some(cid) = &client_msg_id {
            if cid.is_empty() || cid.len() > 64 || cid.chars().any(char::is_control) {
                return Err(crate::domain::ParseError {
                    field: "client_msg_id",
                    message: "must be 1 to 64 characters".into(),
                }
                .into());
            }
        }
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.post_in(tx, &actor, id, body, thread_root, client_msg_id)
                        .await
                })
            })
            .await
    }

    /// Posts a message inside the write `tx` (for services that attach something to the
    /// message in the same transaction, such as a shared file).
    pub(crate) async fn post_in(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        id: ChannelId,
        body: MessageBody,
        thread_root: Option<MessageId>,
        client_msg_id: Option<String>,
    ) -> Result<MessageView, Error> {
        self.auditor
            .authorize(tx, actor, Action::PostMessages, Resource::Channel(id))
            .await?;
        let me = user_of(actor)?;
        let found = channels::with_membership(&mut tx.conn(), id, me).await?;
        let Some(found) = found else {
            return Err(Error::NotFound("channel"));
        };
        if found.member_role.is_none() {
            return Err(Error::refused("not_in_channel", "join the channel first"));
        }
        let c = found.channel;
        let client_index = client_msg_id
            .as_deref()
            .map(|cid| client_msg_index(&self.keyring, id, me, cid));
        if let Some(index) = &client_index {
            if let Some(existing) = messages::by_client_index(&mut tx.conn(), id, me, index).await?
            {
                return self
                    .view_one(&mut tx.conn(), c.workspace_id, existing.id)
                    .await;
            }
        }
        writable(&c)?;
        if let Some(root) = thread_root {
            let r = messages::by_id(&mut tx.conn(), root).await?;
            match r {
                Some(r)
                    if r.channel_id == id
                        && r.thread_root_id.is_none()
                        && r.deleted_at.is_none() => {}
                _ => {
                    return Err(Error::refused(
                        "invalid_thread",
                        "replies go to a live top-level message of this channel",
                    ))
                }
            }
        }
        let now = Utc::now();
        let seq = channels::next_seq(&mut tx.conn(), id).await?;
        let message_id = MessageId::generate();
        let id_text = message_id.to_string();
        let scope = Scope::Workspace(c.workspace_id);
        let sealed = self
            .keyring
            .encrypt(tx, &scope, body_aad(&id_text), body.as_str().as_bytes())
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let client_msg_id_enc = match &client_msg_id {
            Some(cid) => Some(
                self.keyring
                    .encrypt(tx, &scope, client_msg_aad(&id_text), cid.as_bytes())
                    .await?,
            ),
            None => None,
        };
        let record = MessageRecord {
            id: message_id,
            channel_id: id,
            seq,
            author_id: me,
            body: sealed,
            thread_root_id: thread_root,
            reply_count: 0,
            last_reply_at: None,
            client_msg_index: client_index,
            client_msg_id_enc,
            created_at: now,
            edited_at: None,
            deleted_at: None,
        };
        messages::insert(&mut tx.conn(), &record).await?;
        // Metadata only: the text never reaches the audit log.
        let posted = Event::by(actor, "message.posted", Outcome::Allowed)
            .target("message", message_id)
            .workspace(c.workspace_id)
            .details(serde_json::json!({ "channel_id": id, "thread_root_id": thread_root }));
        self.auditor.record(tx, posted).await?;
        if let Some(root) = thread_root {
            messages::add_reply(&mut tx.conn(), root, now).await?;
            if let Some(r) = messages::by_id(&mut tx.conn(), root).await? {
                messages::follow(&mut tx.conn(), root, r.author_id).await?;
            }
            messages::follow(&mut tx.conn(), root, me).await?;
        }
        let mentioned = self.record_mentions(tx, &c, &record, &body, me).await?;
        channels::advance_read(&mut tx.conn(), id, me, seq).await?;
        // Built from what was just written: no read-back, no decryption.
        let view = MessageView {
            id: message_id,
            channel_id: id,
            seq,
            author_id: me,
            text: body.as_str().to_owned(),
            thread_root_id: thread_root,
            reply_count: 0,
            last_reply_at: None,
            client_msg_id,
            created_at: now,
            edited_at: None,
            deleted: false,
            reactions: BTreeMap::new(),
            pinned: false,
        };
        tx.emit(DomainEvent::MessageCreated {
            workspace_id: c.workspace_id,
            channel_id: view.channel_id,
            message_id: view.id,
            seq: view.seq,
            author_id: view.author_id,
            thread_root_id: view.thread_root_id,
            mentioned,
            view: Local::new(view.clone()),
        });
        Ok(view)
    }

    async fn record_mentions(
        &self,
        tx: &mut Tx,
        c: &ChannelRecord,
        m: &MessageRecord,
        body: &MessageBody,
        author: UserId,
    ) -> Result<Vec<UserId>, Error> {
        let mentions = body.mentions();
        if mentions.handles.is_empty() && !mentions.channel && !mentions.here {
            return Ok(Vec::new());
        }
        let members: Vec<UserId> = channels::members(&mut tx.conn(), c.id)
            .await?
            .into_iter()
            .map(|m| m.user_id)
            .collect();
        let mut who: Vec<UserId> = Vec::new();
        if mentions.channel || mentions.here {
            who.extend(members.iter().copied());
        }
        for handle in &mentions.handles {
            // `@<user id>` (what clients insert) or `@email`.
            let found = match handle.parse::<UserId>() {
                Ok(id) => Some(id),
                Err(_) if handle.contains('@') => {
                    let index = self.keyring.email_index(handle);
                    users::by_email_index(&mut tx.conn(), &index)
                        .await?
                        .map(|u| u.id)
                }
                Err(_) => None,
            };
            if let Some(id) = found.filter(|id| members.contains(id)) {
                who.push(id);
            }
        }
        who.retain(|u| *u != author);
        who.sort();
        who.dedup();
        for u in &who {
            messages::add_mention(&mut tx.conn(), m.id, *u, c.id, m.seq).await?;
        }
        Ok(who)
    }

    /// Edits one's own message; the previous text is kept as a version.
    pub async fn edit(
        &self,
        actor: &Actor,
        id: MessageId,
        body: MessageBody,
    ) -> Result<MessageView, Error> {
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let (c, m) = this
                        .message_in_tx(tx, &actor, id, Action::PostMessages)
                        .await?;
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
                    let view = this.view_one(&mut tx.conn(), c.workspace_id, id).await?;
                    tx.emit(DomainEvent::MessageUpdated {
                        workspace_id: c.workspace_id,
                        channel_id: view.channel_id,
                        message_id: view.id,
                        seq: view.seq,
                        what: MessageChange::Edited,
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

    /// Deletes a message (its author, or a moderator): it becomes a "message deleted" tombstone.
    pub async fn delete(&self, actor: &Actor, id: MessageId) -> Result<(), Error> {
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let (c, m) = this
                        .message_in_tx(tx, &actor, id, Action::ReadChannels)
                        .await?;
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
                    messages::tombstone(&mut tx.conn(), id, &[], Utc::now()).await?;
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
                        .details(serde_json::json!({ "channel_id": c.id }));
                    this.auditor.record(tx, event).await?;
                    // Files posted with the message go with it; their blobs are removed
                    // after the commit by the files housekeeping, which follows FileDeleted.
                    for file in crate::store::files::attached_to(&mut tx.conn(), id).await? {
                        crate::store::files::delete(&mut tx.conn(), file.id).await?;
                        let event = Event::by(&actor, "file.deleted", Outcome::Allowed)
                            .target("file", file.id)
                            .workspace(c.workspace_id)
                            .subject(file.uploader_id)
                            .details(serde_json::json!({
                                "channel_id": c.id,
                                "size": file.size,
                                "status": file.status,
                                "with_message": id,
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

    async fn message_in_tx(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        id: MessageId,
        action: Action,
    ) -> Result<(ChannelRecord, MessageRecord), Error> {
        let m = messages::by_id(&mut tx.conn(), id).await?;
        // An unknown message is decided like a hidden channel: not found either way.
        let channel_id = m
            .as_ref()
            .map(|m| m.channel_id)
            .unwrap_or(ChannelId(uuid::Uuid::nil()));
        self.auditor
            .authorize(tx, actor, action, Resource::Channel(channel_id))
            .await?;
        let m = m.ok_or(Error::NotFound("message"))?;
        let c = channel(&mut tx.conn(), m.channel_id).await?;
        Ok((c, m))
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
        self.view_messages(&mut conn.conn(), c.workspace_id, records)
            .await
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
        Ok((target, around))
    }

    /// A thread: its root and replies.
    pub async fn thread(&self, actor: &Actor, root: MessageId) -> Result<Vec<MessageView>, Error> {
        let (mut conn, c, m) = self.read_message(actor, root).await?;
        let mut records = vec![m];
        records.extend(messages::replies(&mut conn.conn(), root, 1000).await?);
        self.view_messages(&mut conn.conn(), c.workspace_id, records)
            .await
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
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let (c, m) = this
                        .message_in_tx(tx, &actor, id, Action::PostMessages)
                        .await?;
                    let emoji = Emoji::parse("emoji", &emoji)?;
                    let me = user_of(&actor)?;
                    require_member(&mut tx.conn(), c.id, me).await?;
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
                            view: Local::new(view.clone()),
                        });
                    }
                    Ok(view)
                })
            })
            .await
    }

    /// Pins or unpins a message (channel members).
    pub async fn pin(
        &self,
        actor: &Actor,
        id: MessageId,
        pinned: bool,
    ) -> Result<MessageView, Error> {
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let (c, m) = this
                        .message_in_tx(tx, &actor, id, Action::PostMessages)
                        .await?;
                    let me = user_of(&actor)?;
                    require_member(&mut tx.conn(), c.id, me).await?;
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
                            view: Local::new(view.clone()),
                        });
                    }
                    Ok(view)
                })
            })
            .await
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
        self.view_messages(&mut conn.conn(), c.workspace_id, records)
            .await
    }
}
