//! Chat: channels, direct conversations, messages, threads, reactions, pins, mentions and
//! read state.
//!
//! Every write goes through `Store::write`: authorize, encrypt the body under the
//! workspace's key (bound to the row and column), write, and emit the event the hub fans
//! out, in one transaction. Message text exists in plaintext only in memory.

mod views;

pub use views::{ChannelMemberView, ChannelView, MessageVersionView, MessageView};

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;

use crate::audit::{Auditor, Event, Outcome};
use crate::crypto::{Aad, Keyring, Scope};
use crate::domain::{ChannelId, ChannelName, Emoji, MessageBody, MessageId, UserId, WorkspaceId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::rbac::{Action, Actor, Resource};
use crate::store::channels::{self, ChannelRecord};
use crate::store::messages::{self, MessageRecord};
use crate::store::{users, workspaces as ws_store, Conn, Store, StoreError, Tx};

/// Most people in a group conversation.
const MAX_GROUP: usize = 9;
/// Most messages in one page of history.
const MAX_PAGE: i64 = 200;

/// Kinds of channel a user can create by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    /// Anyone in the workspace may find and join it.
    Public,
    /// Only members know it exists.
    Private,
}

/// Changes to a channel's details; `None` leaves a field as it is.
#[derive(Default)]
pub struct ChannelChanges {
    /// New name.
    pub name: Option<ChannelName>,
    /// New topic.
    pub topic: Option<String>,
    /// New purpose.
    pub purpose: Option<String>,
}

/// A page request for history.
#[derive(Clone, Copy, Debug, Default)]
pub struct Page {
    /// Messages before this sequence number (newest first page when both are empty).
    pub before: Option<i64>,
    /// Messages after this sequence number.
    pub after: Option<i64>,
    /// How many (1 to 200).
    pub limit: Option<i64>,
}

/// Chat operations.
#[derive(Clone)]
pub struct ChatService {
    store: Store,
    keyring: Keyring,
    auditor: Auditor,
}

fn body_aad(id: &str) -> Aad<'_> {
    Aad {
        table: "messages",
        row: id,
        column: "body",
    }
}

fn check_text(field: &'static str, value: &str, max: usize) -> Result<String, Error> {
    let value = value.trim();
    if value.chars().count() > max || value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(crate::domain::ParseError {
            field,
            message: format!("must be at most {max} characters"),
        }
        .into());
    }
    Ok(value.to_owned())
}

fn writable(channel: &ChannelRecord) -> Result<(), Error> {
    if channel.archived_at.is_some() {
        return Err(Error::refused(
            "channel_archived",
            "this channel is archived and read-only",
        ));
    }
    Ok(())
}

fn name_taken(err: StoreError) -> Error {
    match err {
        StoreError::Constraint(_) => Error::conflict(
            "channel_name_taken",
            "a channel with this name already exists",
        ),
        other => Error::Store(other),
    }
}

async fn channel(conn: &mut Conn<'_>, id: ChannelId) -> Result<ChannelRecord, Error> {
    channels::by_id(conn, id)
        .await?
        .ok_or(Error::NotFound("channel"))
}

async fn require_member(
    conn: &mut Conn<'_>,
    channel: ChannelId,
    user: UserId,
) -> Result<(), Error> {
    match channels::membership(conn, channel, user).await? {
        Some(_) => Ok(()),
        None => Err(Error::refused("not_in_channel", "join the channel first")),
    }
}

fn user_of(actor: &Actor) -> Result<UserId, Error> {
    actor
        .user_id()
        .ok_or_else(|| Error::refused("user_required", "only people take part in chats"))
}

impl ChatService {
    /// A service over `store`, encrypting and auditing through `auditor`.
    pub fn new(store: Store, auditor: Auditor) -> ChatService {
        ChatService {
            store,
            keyring: auditor.keyring().clone(),
            auditor,
        }
    }

    async fn view_channel(
        &self,
        conn: &mut Conn<'_>,
        c: ChannelRecord,
        viewer: Option<UserId>,
    ) -> Result<ChannelView, Error> {
        let membership = match viewer {
            Some(u) => channels::membership(conn, c.id, u).await?,
            None => None,
        };
        let (unread, mentions) = match (&membership, viewer) {
            (Some(m), Some(u)) => (
                Some(messages::unread_count(conn, c.id, u, m.last_read_seq).await?),
                Some(channels::mention_count(conn, c.id, u, m.last_read_seq).await?),
            ),
            _ => (None, None),
        };
        let participants = if c.direct_key.is_some() {
            channels::members(conn, c.id)
                .await?
                .into_iter()
                .map(|m| m.user_id)
                .collect()
        } else {
            Vec::new()
        };
        Ok(ChannelView {
            id: c.id,
            workspace_id: c.workspace_id,
            kind: c.kind,
            name: c.name,
            topic: c.topic,
            purpose: c.purpose,
            archived: c.archived_at.is_some(),
            last_seq: c.last_seq,
            my_role: membership.as_ref().map(|m| m.role.clone()),
            last_read_seq: membership.as_ref().map(|m| m.last_read_seq),
            unread_count: unread,
            mention_count: mentions,
            participants,
        })
    }

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
            out.push(MessageView {
                id: m.id,
                channel_id: m.channel_id,
                seq: m.seq,
                author_id: m.author_id,
                text,
                thread_root_id: m.thread_root_id,
                reply_count: m.reply_count,
                last_reply_at: m.last_reply_at,
                client_msg_id: m.client_msg_id,
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

    /// Creates a named channel; the creator joins it as moderator.
    pub async fn create_channel(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        visibility: Visibility,
        name: ChannelName,
        topic: String,
        purpose: String,
    ) -> Result<ChannelView, Error> {
        let topic = check_text("topic", &topic, 250)?;
        let purpose = check_text("purpose", &purpose, 250)?;
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.auditor
                        .authorize(
                            tx,
                            &actor,
                            Action::CreateChannels,
                            Resource::Workspace(workspace),
                        )
                        .await?;
                    let user = user_of(&actor)?;
                    let now = Utc::now();
                    let record = ChannelRecord {
                        id: ChannelId::generate(),
                        workspace_id: workspace,
                        kind: match visibility {
                            Visibility::Public => "public".into(),
                            Visibility::Private => "private".into(),
                        },
                        name: Some(name.as_str().into()),
                        topic,
                        purpose,
                        direct_key: None,
                        created_by: user,
                        created_at: now,
                        archived_at: None,
                        last_seq: 0,
                    };
                    channels::insert(&mut tx.conn(), &record)
                        .await
                        .map_err(name_taken)?;
                    channels::add_member(&mut tx.conn(), record.id, user, "moderator", 0, now)
                        .await?;
                    tx.emit(DomainEvent::ChannelChanged {
                        workspace_id: workspace,
                        channel_id: record.id,
                        what: "created",
                    });
                    tx.emit(DomainEvent::ChannelMemberAdded {
                        workspace_id: workspace,
                        channel_id: record.id,
                        user_id: user,
                    });
                    let event = Event::by(&actor, "channel.created", Outcome::Allowed)
                        .target("channel", record.id)
                        .workspace(workspace);
                    this.auditor.record(tx, event).await?;
                    this.view_channel(&mut tx.conn(), record, Some(user)).await
                })
            })
            .await
    }

    /// Opens the direct (one other person) or group conversation with exactly these people,
    /// creating it the first time.
    pub async fn open_conversation(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        with: Vec<UserId>,
    ) -> Result<ChannelView, Error> {
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.auditor
                        .authorize(
                            tx,
                            &actor,
                            Action::PostMessages,
                            Resource::Workspace(workspace),
                        )
                        .await?;
                    let me = user_of(&actor)?;
                    let mut people: Vec<UserId> = with.into_iter().chain([me]).collect();
                    people.sort();
                    people.dedup();
                    if people.len() < 2 || people.len() > MAX_GROUP {
                        return Err(Error::refused(
                            "invalid_participants",
                            format!("a conversation has 2 to {MAX_GROUP} people"),
                        ));
                    }
                    for p in &people {
                        if ws_store::member_role(&mut tx.conn(), workspace, *p)
                            .await?
                            .is_none()
                        {
                            return Err(Error::NotFound("user"));
                        }
                    }
                    let key = people
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(",");
                    if let Some(existing) =
                        channels::by_direct_key(&mut tx.conn(), workspace, &key).await?
                    {
                        return this.view_channel(&mut tx.conn(), existing, Some(me)).await;
                    }
                    let now = Utc::now();
                    let record = ChannelRecord {
                        id: ChannelId::generate(),
                        workspace_id: workspace,
                        kind: if people.len() == 2 {
                            "direct".into()
                        } else {
                            "group".into()
                        },
                        name: None,
                        topic: String::new(),
                        purpose: String::new(),
                        direct_key: Some(key),
                        created_by: me,
                        created_at: now,
                        archived_at: None,
                        last_seq: 0,
                    };
                    channels::insert(&mut tx.conn(), &record).await?;
                    tx.emit(DomainEvent::ChannelChanged {
                        workspace_id: workspace,
                        channel_id: record.id,
                        what: "created",
                    });
                    for p in &people {
                        channels::add_member(&mut tx.conn(), record.id, *p, "member", 0, now)
                            .await?;
                        tx.emit(DomainEvent::ChannelMemberAdded {
                            workspace_id: workspace,
                            channel_id: record.id,
                            user_id: *p,
                        });
                    }
                    this.view_channel(&mut tx.conn(), record, Some(me)).await
                })
            })
            .await
    }

    /// The caller's channels and conversations in a workspace, with unread and mention counts.
    pub async fn my_channels(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
    ) -> Result<Vec<ChannelView>, Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ReadWorkspace,
                Resource::Workspace(workspace),
            )
            .await?;
        let me = user_of(actor)?;
        let mut out = Vec::new();
        for c in channels::for_member(&mut conn.conn(), workspace, me).await? {
            out.push(
                self.view_channel(&mut conn.conn(), c.channel, Some(me))
                    .await?,
            );
        }
        Ok(out)
    }

    /// The workspace's public channels, to browse and join.
    pub async fn browse(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
    ) -> Result<Vec<ChannelView>, Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ReadChannels,
                Resource::Workspace(workspace),
            )
            .await?;
        let me = actor.user_id();
        let mut out = Vec::new();
        for c in channels::public_in(&mut conn.conn(), workspace).await? {
            out.push(self.view_channel(&mut conn.conn(), c, me).await?);
        }
        Ok(out)
    }

    /// One channel.
    pub async fn get(&self, actor: &Actor, id: ChannelId) -> Result<ChannelView, Error> {
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
        self.view_channel(&mut conn.conn(), c, actor.user_id())
            .await
    }

    /// Renames a channel or changes its topic or purpose.
    pub async fn update(
        &self,
        actor: &Actor,
        id: ChannelId,
        changes: ChannelChanges,
    ) -> Result<ChannelView, Error> {
        let topic = changes
            .topic
            .as_deref()
            .map(|t| check_text("topic", t, 250))
            .transpose()?;
        let purpose = changes
            .purpose
            .as_deref()
            .map(|p| check_text("purpose", p, 250))
            .transpose()?;
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    // Anyone in the channel may set the topic; renaming takes moderation rights.
                    let action = if changes.name.is_some() || purpose.is_some() {
                        Action::ManageChannels
                    } else {
                        Action::PostMessages
                    };
                    this.auditor
                        .authorize(tx, &actor, action, Resource::Channel(id))
                        .await?;
                    let c = channel(&mut tx.conn(), id).await?;
                    writable(&c)?;
                    if c.direct_key.is_some() && changes.name.is_some() {
                        return Err(Error::refused(
                            "not_renamable",
                            "conversations have no name",
                        ));
                    }
                    let name = changes
                        .name
                        .map(|n| n.as_str().to_owned())
                        .or(c.name.clone());
                    let topic = topic.unwrap_or(c.topic.clone());
                    let purpose = purpose.unwrap_or(c.purpose.clone());
                    channels::update_details(&mut tx.conn(), id, name.as_deref(), &topic, &purpose)
                        .await
                        .map_err(name_taken)?;
                    tx.emit(DomainEvent::ChannelChanged {
                        workspace_id: c.workspace_id,
                        channel_id: id,
                        what: "updated",
                    });
                    let c = channel(&mut tx.conn(), id).await?;
                    this.view_channel(&mut tx.conn(), c, actor.user_id()).await
                })
            })
            .await
    }

    /// Archives (read-only) or unarchives a channel.
    pub async fn set_archived(
        &self,
        actor: &Actor,
        id: ChannelId,
        archived: bool,
    ) -> Result<ChannelView, Error> {
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.auditor
                        .authorize(tx, &actor, Action::ManageChannels, Resource::Channel(id))
                        .await?;
                    let c = channel(&mut tx.conn(), id).await?;
                    if c.direct_key.is_some() {
                        return Err(Error::refused(
                            "not_archivable",
                            "conversations cannot be archived",
                        ));
                    }
                    channels::set_archived(&mut tx.conn(), id, archived.then(Utc::now)).await?;
                    let what = if archived { "archived" } else { "unarchived" };
                    tx.emit(DomainEvent::ChannelChanged {
                        workspace_id: c.workspace_id,
                        channel_id: id,
                        what,
                    });
                    let action = if archived {
                        "channel.archived"
                    } else {
                        "channel.unarchived"
                    };
                    let event = Event::by(&actor, action, Outcome::Allowed)
                        .target("channel", id)
                        .workspace(c.workspace_id);
                    this.auditor.record(tx, event).await?;
                    let c = channel(&mut tx.conn(), id).await?;
                    this.view_channel(&mut tx.conn(), c, actor.user_id()).await
                })
            })
            .await
    }

    /// Joins a public channel.
    pub async fn join(&self, actor: &Actor, id: ChannelId) -> Result<ChannelView, Error> {
        let me = user_of(actor)?;
        self.add_member_as(actor, id, me, true).await
    }

    /// Adds someone to a channel (members of private channels may invite).
    pub async fn add_member(
        &self,
        actor: &Actor,
        id: ChannelId,
        user: UserId,
    ) -> Result<ChannelView, Error> {
        self.add_member_as(actor, id, user, false).await
    }

    async fn add_member_as(
        &self,
        actor: &Actor,
        id: ChannelId,
        user: UserId,
        joining: bool,
    ) -> Result<ChannelView, Error> {
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.auditor
                        .authorize(tx, &actor, Action::ReadChannels, Resource::Channel(id))
                        .await?;
                    let c = channel(&mut tx.conn(), id).await?;
                    writable(&c)?;
                    if c.direct_key.is_some() {
                        return Err(Error::refused(
                            "fixed_participants",
                            "a conversation's people are fixed; start a new one",
                        ));
                    }
                    if joining {
                        if c.kind != "public" {
                            return Err(Error::NotFound("channel"));
                        }
                    } else {
                        require_member(&mut tx.conn(), id, user_of(&actor)?).await?;
                        if ws_store::member_role(&mut tx.conn(), c.workspace_id, user)
                            .await?
                            .is_none()
                        {
                            return Err(Error::NotFound("user"));
                        }
                    }
                    if channels::add_member(
                        &mut tx.conn(),
                        id,
                        user,
                        "member",
                        c.last_seq,
                        Utc::now(),
                    )
                    .await?
                    {
                        tx.emit(DomainEvent::ChannelMemberAdded {
                            workspace_id: c.workspace_id,
                            channel_id: id,
                            user_id: user,
                        });
                        let event = Event::by(&actor, "channel.member_added", Outcome::Allowed)
                            .target("channel", id)
                            .workspace(c.workspace_id)
                            .subject(user);
                        this.auditor.record(tx, event).await?;
                    }
                    this.view_channel(&mut tx.conn(), c, actor.user_id()).await
                })
            })
            .await
    }

    /// Leaves a channel, or (with moderation rights) removes someone from it.
    pub async fn remove_member(
        &self,
        actor: &Actor,
        id: ChannelId,
        user: UserId,
    ) -> Result<(), Error> {
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let me = user_of(&actor)?;
                    let action = if user == me {
                        Action::ReadChannels
                    } else {
                        Action::ManageChannels
                    };
                    this.auditor
                        .authorize(tx, &actor, action, Resource::Channel(id))
                        .await?;
                    let c = channel(&mut tx.conn(), id).await?;
                    if c.direct_key.is_some() {
                        return Err(Error::refused(
                            "fixed_participants",
                            "a conversation's people are fixed",
                        ));
                    }
                    if !channels::remove_member(&mut tx.conn(), id, user).await? {
                        return Err(Error::NotFound("member"));
                    }
                    tx.emit(DomainEvent::ChannelMemberRemoved {
                        workspace_id: c.workspace_id,
                        channel_id: id,
                        user_id: user,
                    });
                    let event = Event::by(&actor, "channel.member_removed", Outcome::Allowed)
                        .target("channel", id)
                        .workspace(c.workspace_id)
                        .subject(user);
                    this.auditor.record(tx, event).await?;
                    Ok(())
                })
            })
            .await
    }

    /// A channel's members.
    pub async fn members(
        &self,
        actor: &Actor,
        id: ChannelId,
    ) -> Result<Vec<ChannelMemberView>, Error> {
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
        Ok(channels::members(&mut conn.conn(), id)
            .await?
            .into_iter()
            .map(|m| ChannelMemberView {
                user_id: m.user_id,
                role: m.role,
                joined_at: m.joined_at,
            })
            .collect())
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
                    this.auditor
                        .authorize(tx, &actor, Action::PostMessages, Resource::Channel(id))
                        .await?;
                    let me = user_of(&actor)?;
                    let c = channel(&mut tx.conn(), id).await?;
                    require_member(&mut tx.conn(), id, me).await?;
                    if let Some(cid) = &client_msg_id {
                        if let Some(existing) =
                            messages::by_client_id(&mut tx.conn(), id, me, cid).await?
                        {
                            return this
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
                    let sealed = this
                        .keyring
                        .encrypt(tx, &scope, body_aad(&id_text), body.as_str().as_bytes())
                        .await
                        .map_err(|e| Error::Internal(e.to_string()))?;
                    let record = MessageRecord {
                        id: message_id,
                        channel_id: id,
                        seq,
                        author_id: me,
                        body: sealed,
                        thread_root_id: thread_root,
                        reply_count: 0,
                        last_reply_at: None,
                        client_msg_id,
                        created_at: now,
                        edited_at: None,
                        deleted_at: None,
                    };
                    messages::insert(&mut tx.conn(), &record).await?;
                    if let Some(root) = thread_root {
                        messages::add_reply(&mut tx.conn(), root, now).await?;
                        if let Some(r) = messages::by_id(&mut tx.conn(), root).await? {
                            messages::follow(&mut tx.conn(), root, r.author_id).await?;
                        }
                        messages::follow(&mut tx.conn(), root, me).await?;
                    }
                    let mentioned = this.record_mentions(tx, &c, &record, &body, me).await?;
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
                        client_msg_id: record.client_msg_id.clone(),
                        created_at: now,
                        edited_at: None,
                        deleted: false,
                        reactions: BTreeMap::new(),
                        pinned: false,
                    };
                    tx.emit(DomainEvent::MessageCreated {
                        workspace_id: c.workspace_id,
                        message: view.clone(),
                        mentioned,
                    });
                    Ok(view)
                })
            })
            .await
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
                        message: view.clone(),
                        what: "edited",
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

    /// A page of a channel's history in ascending order.
    pub async fn history(
        &self,
        actor: &Actor,
        id: ChannelId,
        page: Page,
    ) -> Result<Vec<MessageView>, Error> {
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
        let mut conn = self.store.reader().await?;
        let m = messages::by_id(&mut conn.conn(), root).await?;
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
                            "reaction_added"
                        } else {
                            "reaction_removed"
                        };
                        tx.emit(DomainEvent::MessageUpdated {
                            workspace_id: c.workspace_id,
                            message: view.clone(),
                            what,
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
                        let what = if pinned { "pinned" } else { "unpinned" };
                        tx.emit(DomainEvent::MessageUpdated {
                            workspace_id: c.workspace_id,
                            message: view.clone(),
                            what,
                        });
                    }
                    Ok(view)
                })
            })
            .await
    }

    /// A channel's pinned messages.
    pub async fn pins(&self, actor: &Actor, id: ChannelId) -> Result<Vec<MessageView>, Error> {
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
        let mut records = Vec::new();
        for mid in messages::pinned(&mut conn.conn(), id).await? {
            if let Some(m) = messages::by_id(&mut conn.conn(), mid).await? {
                records.push(m);
            }
        }
        self.view_messages(&mut conn.conn(), c.workspace_id, records)
            .await
    }

    /// Moves the caller's read pointer forward; the change reaches their other devices.
    pub async fn mark_read(
        &self,
        actor: &Actor,
        id: ChannelId,
        seq: i64,
    ) -> Result<ChannelView, Error> {
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.auditor
                        .authorize(tx, &actor, Action::ReadChannels, Resource::Channel(id))
                        .await?;
                    let me = user_of(&actor)?;
                    require_member(&mut tx.conn(), id, me).await?;
                    let c = channel(&mut tx.conn(), id).await?;
                    let seq = seq.clamp(0, c.last_seq);
                    let now = channels::mark_read(&mut tx.conn(), id, me, seq).await?;
                    tx.emit(DomainEvent::ReadStateChanged {
                        user_id: me,
                        channel_id: id,
                        last_read_seq: now,
                    });
                    this.view_channel(&mut tx.conn(), c, Some(me)).await
                })
            })
            .await
    }
}
