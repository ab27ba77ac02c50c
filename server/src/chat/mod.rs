//! Chat: channels, direct conversations, messages, threads, reactions, pins, mentions and
//! read state.
//!
//! Every write goes through `Store::write`: authorize, encrypt the body under the
//! workspace's key (bound to the row and column), write, and emit the event the hub fans
//! out, in one transaction. Message text exists in plaintext only in memory, and so do
//! channel names, topics and purposes and messages' client ids ([`details`]).

mod blocks;
pub mod details;
mod inventory;
mod messaging;
mod posting;
mod views;

pub use blocks::{option_of, ActionElement, BlocksEdit, MessageBlocks};
pub use details::encrypt_legacy_details;
pub use inventory::INVENTORY;
pub use views::{
    ChannelMemberView, ChannelView, EphemeralMessageView, MessageVersionView, MessageView,
};

use chrono::Utc;

use crate::audit::{Auditor, Event, Outcome};
use crate::crypto::{Aad, Keyring};
use crate::domain::{ChannelId, ChannelName, UserId, WorkspaceId};
use crate::error::Error;
use crate::events::{ChannelChange, DomainEvent};
use crate::policy::PolicyService;
use crate::rbac::{Action, Actor, Resource};
use crate::store::channels::{self, ChannelRecord};
use crate::store::messages;
use crate::store::{workspaces as ws_store, Conn, Store, StoreError, Tx};

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
    workspaces: std::sync::Arc<posting::ChannelWorkspaces>,
    /// The policies in force: a deletion keeps text for `retention.deletion_grace_days`.
    policies: PolicyService,
}

fn body_aad(id: &str) -> Aad<'_> {
    Aad {
        table: "messages",
        row: id,
        column: "body",
    }
}

fn blocks_aad(id: &str) -> Aad<'_> {
    Aad {
        table: "messages",
        row: id,
        column: "blocks",
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
    /// A service over `store`, encrypting and auditing through `auditor`, deleting as
    /// `policies` say.
    pub fn new(store: Store, auditor: Auditor, policies: PolicyService) -> ChatService {
        ChatService {
            store,
            keyring: auditor.keyring().clone(),
            auditor,
            workspaces: Default::default(),
            policies,
        }
    }

    /// The policies in force (for services built on chat that audit reads of PHI).
    pub fn policies(&self) -> &PolicyService {
        &self.policies
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
        let details = details::open(&self.keyring, conn, &c).await?;
        Ok(ChannelView {
            id: c.id,
            workspace_id: c.workspace_id,
            kind: c.kind,
            name: details.name,
            topic: details.topic,
            purpose: details.purpose,
            archived: c.archived_at.is_some(),
            last_seq: c.last_seq,
            my_role: membership.as_ref().map(|m| m.role.clone()),
            last_read_seq: membership.as_ref().map(|m| m.last_read_seq),
            unread_count: unread,
            mention_count: mentions,
            participants,
        })
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
                    let id = ChannelId::generate();
                    let plain = details::ChannelDetails {
                        name: Some(name.as_str().into()),
                        topic,
                        purpose,
                    };
                    let sealed = details::seal(tx, &this.keyring, workspace, id, &plain).await?;
                    let record = ChannelRecord {
                        id,
                        workspace_id: workspace,
                        kind: match visibility {
                            Visibility::Public => "public".into(),
                            Visibility::Private => "private".into(),
                        },
                        name_index: sealed.name_index,
                        name_enc: sealed.name_enc,
                        topic_enc: sealed.topic_enc,
                        purpose_enc: sealed.purpose_enc,
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
                        what: ChannelChange::Created,
                    });
                    tx.emit(DomainEvent::ChannelMemberAdded {
                        workspace_id: workspace,
                        channel_id: record.id,
                        user_id: user,
                        by: Some(user),
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
                        name_index: None,
                        name_enc: None,
                        topic_enc: None,
                        purpose_enc: None,
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
                        what: ChannelChange::Created,
                    });
                    for p in &people {
                        channels::add_member(&mut tx.conn(), record.id, *p, "member", 0, now)
                            .await?;
                        tx.emit(DomainEvent::ChannelMemberAdded {
                            workspace_id: workspace,
                            channel_id: record.id,
                            user_id: *p,
                            by: Some(me),
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
        // Names are decrypted only here, so this is where they are sorted.
        out.sort_by(|a, b| (&a.kind, &a.name, a.id).cmp(&(&b.kind, &b.name, b.id)));
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
        out.sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id)));
        Ok(out)
    }

    /// One channel.
    pub async fn get(&self, actor: &Actor, id: ChannelId) -> Result<ChannelView, Error> {
        let (mut conn, c) = self.read_channel(actor, id).await?;
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
                    // Anyone in the channel may set the topic; renaming takes moderation rights,
                    // and so does setting the topic of a channel one has not joined (a public
                    // channel is visible to the whole workspace, but only its members speak).
                    let member = match actor.user_id() {
                        Some(me) => channels::membership(&mut tx.conn(), id, me)
                            .await?
                            .is_some(),
                        None => true,
                    };
                    let action = if changes.name.is_some() || purpose.is_some() || !member {
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
                    let old = details::open(&this.keyring, &mut tx.conn(), &c).await?;
                    let new = details::ChannelDetails {
                        name: changes.name.map(|n| n.as_str().to_owned()).or(old.name),
                        topic: topic.unwrap_or(old.topic),
                        purpose: purpose.unwrap_or(old.purpose),
                    };
                    let sealed = details::seal(tx, &this.keyring, c.workspace_id, id, &new).await?;
                    channels::update_details(&mut tx.conn(), id, &sealed.as_details())
                        .await
                        .map_err(name_taken)?;
                    tx.emit(DomainEvent::ChannelChanged {
                        workspace_id: c.workspace_id,
                        channel_id: id,
                        what: ChannelChange::Updated,
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
                    let what = if archived {
                        ChannelChange::Archived
                    } else {
                        ChannelChange::Unarchived
                    };
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
                            by: actor.user_id(),
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
                        by: Some(me),
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
