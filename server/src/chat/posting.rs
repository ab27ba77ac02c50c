//! Posting a message: made ready before the write, then decided and stored in a few statements.
//!
//! The group-commit writer runs every write's statements one after another on one connection,
//! so a post keeps its part there small. Before the write, [`ChatService::post`] makes a
//! [`Draft`]: the message id (the encryption binds it), the client id's blind index, the
//! audit entry, and the body and client id encrypted under the channel's workspace key when
//! that workspace is known ([`ChannelWorkspaces`]). In the write, one query reads the channel
//! with the author's access to it and decides ([`crate::audit::Auditor::authorize_channel`]),
//! and one round trip takes the sequence number, stores the message and marks it read for its
//! author (`store::messages::append`); the writer's task only confirms the key version of
//! what was encrypted ahead.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use chrono::{SubsecRound, Utc};

use super::details::client_msg_index;
use super::{blocks_aad, user_of, writable, ChatService, MessageBlocks, MessageView};
use crate::audit::{Event, Outcome, PreparedEvent};
use crate::crypto::{Keyring, Scope, Sealed};
use crate::domain::{ChannelId, MessageBody, MessageId, UserId, WorkspaceId};
use crate::error::Error;
use crate::events::{DomainEvent, Local};
use crate::rbac::{self, Action, Actor};
use crate::store::channels::{self, ChannelRecord};
use crate::store::messages::{self, Appended, MessageRecord};
use crate::store::{users, Raw, RawTx, Tx};

/// Channels remembered before the map starts over (a hint, so forgetting is harmless).
const MAX_REMEMBERED: usize = 100_000;

/// Which workspace each channel posted to recently belongs to, so a post can be encrypted
/// under the workspace's key before its write. A hint only: a channel never moves to another
/// workspace, and the write checks the hint against the channel it reads, encrypting there
/// instead when they differ or the channel was not known.
#[derive(Default)]
pub(super) struct ChannelWorkspaces(RwLock<HashMap<ChannelId, WorkspaceId>>);

impl ChannelWorkspaces {
    fn get(&self, channel: ChannelId) -> Option<WorkspaceId> {
        self.0.read().ok()?.get(&channel).copied()
    }

    fn learn(&self, channel: ChannelId, workspace: WorkspaceId) {
        if let Ok(mut map) = self.0.write() {
            if map.len() >= MAX_REMEMBERED && !map.contains_key(&channel) {
                map.clear();
            }
            map.insert(channel, workspace);
        }
    }
}

/// The body and client id encrypted ahead under one workspace's key.
struct SealedAhead {
    workspace: WorkspaceId,
    body: Sealed,
    client_msg_id: Option<Sealed>,
}

/// A post made ready before its write.
pub(crate) struct Draft {
    id: MessageId,
    channel: ChannelId,
    body: MessageBody,
    thread_root: Option<MessageId>,
    client_msg_id: Option<String>,
    /// The client id's blind index, for the author it was made for.
    client_index: Option<(UserId, String)>,
    sealed: Option<SealedAhead>,
    posted: PreparedEvent,
    /// Block Kit blocks (a bot's message), stored beside the body.
    blocks: Option<MessageBlocks>,
}

impl Draft {
    /// The row this draft stores for `author`, posted now (its number is given when stored).
    fn record(
        &self,
        author: UserId,
        body: Vec<u8>,
        client_msg_index: Option<String>,
        client_msg_id_enc: Option<Vec<u8>>,
    ) -> MessageRecord {
        MessageRecord {
            id: self.id,
            channel_id: self.channel,
            seq: 0,
            author_id: author,
            body,
            thread_root_id: self.thread_root,
            reply_count: 0,
            last_reply_at: None,
            client_msg_index,
            client_msg_id_enc,
            created_at: posted_at(),
            edited_at: None,
            deleted_at: None,
            blocks: None,
        }
    }
}

impl ChatService {
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
        self.post_enqueued(actor, id, body, thread_root, client_msg_id)
            .await?
            .await
    }

    /// Like [`ChatService::post`], but returns once the post is in the writer's queue, with
    /// what resolves when it is durable. Posts one caller enqueues one after another are
    /// stored in that order, so a socket can have several in flight and keep their order.
    pub async fn post_enqueued(
        &self,
        actor: &Actor,
        id: ChannelId,
        body: MessageBody,
        thread_root: Option<MessageId>,
        client_msg_id: Option<String>,
    ) -> Result<impl std::future::Future<Output = Result<MessageView, Error>> + Send + 'static, Error>
    {
        if let Some(cid) = &client_msg_id {
            if cid.is_empty() || cid.len() > 64 || cid.chars().any(char::is_control) {
                return Err(crate::domain::ParseError {
                    field: "client_msg_id",
                    message: "must be 1 to 64 characters".into(),
                }
                .into());
            }
        }
        let draft = self.draft(actor, id, body, thread_root, client_msg_id, true)?;
        self.enqueue(actor, draft).await
    }

    /// Posts a message with Block Kit blocks (a bot's message): `body` is their text, which
    /// every other reader uses. With a `client_msg_id`, a retried post returns the message
    /// already posted. Resolves once durable.
    pub async fn post_with_blocks(
        &self,
        actor: &Actor,
        id: ChannelId,
        body: MessageBody,
        blocks: Option<MessageBlocks>,
        thread_root: Option<MessageId>,
        client_msg_id: Option<String>,
    ) -> Result<MessageView, Error> {
        let mut draft = self.draft(actor, id, body, thread_root, client_msg_id, true)?;
        draft.blocks = blocks;
        self.enqueue(actor, draft).await?.await
    }

    async fn enqueue(
        &self,
        actor: &Actor,
        draft: Draft,
    ) -> Result<impl std::future::Future<Output = Result<MessageView, Error>> + Send + 'static, Error>
    {
        let (raw_actor, raw_this) = (actor.clone(), self.clone());
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write_enqueued_raw(
                draft,
                move |tx: &mut RawTx<'_>, draft| raw_this.post_draft_raw(tx, &raw_actor, draft),
                move |tx: &mut Tx, draft| {
                    Box::pin(async move { this.post_draft(tx, &actor, draft).await })
                },
            )
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
        let draft = self.draft(actor, id, body, thread_root, client_msg_id, false)?;
        self.post_draft(tx, actor, draft).await
    }

    /// Makes a post ready without a transaction; with `ahead`, encrypts what it can.
    fn draft(
        &self,
        actor: &Actor,
        channel: ChannelId,
        body: MessageBody,
        thread_root: Option<MessageId>,
        client_msg_id: Option<String>,
        ahead: bool,
    ) -> Result<Draft, Error> {
        let id = MessageId::generate();
        let client_index = match (actor.user_id(), &client_msg_id) {
            (Some(me), Some(cid)) => Some((me, client_msg_index(&self.keyring, channel, me, cid))),
            _ => None,
        };
        let sealed = match self.workspaces.get(channel).filter(|_| ahead) {
            Some(workspace) => Some(seal_ahead(
                &self.keyring,
                workspace,
                id,
                &body,
                client_msg_id.as_deref(),
            )?),
            None => None,
        };
        // Metadata only: the text never reaches the audit log.
        let posted = self.auditor.prepare(
            Event::by(actor, "message.posted", Outcome::Allowed)
                .target("message", id)
                .details(
                    serde_json::json!({ "channel_id": channel, "thread_root_id": thread_root }),
                ),
        )?;
        Ok(Draft {
            id,
            channel,
            body,
            thread_root,
            client_msg_id,
            client_index,
            sealed,
            posted,
            blocks: None,
        })
    }

    /// [`ChatService::post_draft`] on the writer's thread, for the common post: top level,
    /// mentioning nobody, sealed ahead under its channel's workspace key, by a member allowed
    /// to post in a live channel, and not a retry. Anything else declines before writing, and
    /// the asynchronous form decides it (and records any refusal).
    fn post_draft_raw(
        &self,
        tx: &mut RawTx<'_>,
        actor: &Actor,
        draft: Draft,
    ) -> Raw<MessageView, Error, Draft> {
        let Some(me) = actor.user_id() else {
            return Raw::Declined(draft);
        };
        if draft.thread_root.is_some() || draft.blocks.is_some() {
            return Raw::Declined(draft);
        }
        let mentions = draft.body.mentions();
        if !mentions.handles.is_empty() || mentions.channel || mentions.here {
            return Raw::Declined(draft);
        }
        let found = match channels::posting_access_raw(tx.conn(), draft.channel, me) {
            Ok(Some(found)) => found,
            Ok(None) => return Raw::Declined(draft),
            Err(err) => return Raw::Failed(err.into()),
        };
        if found.archived
            || found.access.channel_role.is_none()
            || !rbac::channel_allows(actor, Action::PostMessages, Some(&found.access))
        {
            return Raw::Declined(draft);
        }
        let workspace = found.workspace_id;
        self.workspaces.learn(draft.channel, workspace);
        let Some(sealed) = draft.sealed.as_ref().filter(|s| s.workspace == workspace) else {
            return Raw::Declined(draft);
        };
        let Some(body) = self.keyring.finish_ready(&sealed.body) else {
            return Raw::Declined(draft);
        };
        let client_msg_id_enc = match &sealed.client_msg_id {
            Some(cid) => match self.keyring.finish_ready(cid) {
                Some(enc) => Some(enc),
                None => return Raw::Declined(draft),
            },
            None => None,
        };
        let Some(entry) = self.auditor.finish_ready(&draft.posted, Some(workspace)) else {
            return Raw::Declined(draft);
        };
        let client_index = draft
            .client_index
            .as_ref()
            .filter(|(author, _)| *author == me)
            .map(|(_, index)| index.clone());
        let mut record = draft.record(me, body, client_index, client_msg_id_enc);
        record.seq = match messages::append_raw(tx.conn(), &record) {
            Ok(Appended::Posted(seq)) => seq,
            // A retry: nothing was written; the asynchronous form answers with the earlier post.
            Ok(Appended::Existing(_)) => return Raw::Declined(draft),
            Err(err) => return Raw::Failed(err.into()),
        };
        tx.audit(entry);
        let (view, created) = created(
            &record,
            &draft.body,
            draft.client_msg_id,
            workspace,
            Vec::new(),
            None,
        );
        tx.emit(created);
        Raw::Done(view)
    }

    /// Decides and stores a draft inside the write `tx`.
    async fn post_draft(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        mut draft: Draft,
    ) -> Result<MessageView, Error> {
        let id = draft.channel;
        let found = self
            .auditor
            .authorize_channel(tx, actor, Action::PostMessages, id)
            .await?;
        let me = user_of(actor)?;
        let found = found.ok_or(Error::NotFound("channel"))?;
        let c = found.channel;
        self.workspaces.learn(c.id, c.workspace_id);
        if found.member_role.is_none() {
            return Err(Error::refused("not_in_channel", "join the channel first"));
        }
        let client_index = draft
            .client_index
            .take()
            .filter(|(author, _)| *author == me)
            .map(|(_, index)| index);
        // The checks a retry of an earlier post would have been answered before: look that
        // post up only when one of them refuses (a new post needs no lookup of its own).
        let mut root_author = None;
        let refusal = match (writable(&c), draft.thread_root) {
            (Err(e), _) => Some(e),
            (Ok(()), None) => None,
            (Ok(()), Some(root)) => match messages::by_id(&mut tx.conn(), root).await? {
                Some(r)
                    if r.channel_id == id
                        && r.thread_root_id.is_none()
                        && r.deleted_at.is_none() =>
                {
                    root_author = Some(r.author_id);
                    None
                }
                _ => Some(Error::refused(
                    "invalid_thread",
                    "replies go to a live top-level message of this channel",
                )),
            },
        };
        if let Some(refusal) = refusal {
            if let Some(index) = &client_index {
                if let Some(existing) =
                    messages::by_client_index(&mut tx.conn(), id, me, index).await?
                {
                    return self
                        .view_one(&mut tx.conn(), c.workspace_id, existing.id)
                        .await;
                }
            }
            return Err(refusal);
        }
        let (body_enc, client_msg_id_enc) = self.seal(tx, c.workspace_id, &mut draft).await?;
        let mut record = draft.record(me, body_enc, client_index, client_msg_id_enc);
        let now = record.created_at;
        record.seq = match messages::append(&mut tx.conn(), &record).await? {
            Appended::Posted(seq) => seq,
            // A retried post: the message already posted, as it is now.
            Appended::Existing(existing) => {
                return self
                    .view_one(&mut tx.conn(), c.workspace_id, existing)
                    .await
            }
        };
        self.auditor
            .record_prepared(tx, draft.posted.in_workspace(c.workspace_id))
            .await?;
        if let Some(root) = draft.thread_root {
            messages::add_reply(&mut tx.conn(), root, now).await?;
            if let Some(author) = root_author {
                messages::follow(&mut tx.conn(), root, author).await?;
            }
            messages::follow(&mut tx.conn(), root, me).await?;
        }
        let mentioned = self
            .record_mentions(tx, &c, &record, &draft.body, me)
            .await?;
        if let Some(blocks) = &draft.blocks {
            let row = record.id.to_string();
            let sealed = self
                .keyring
                .encrypt(
                    tx,
                    &Scope::Workspace(c.workspace_id),
                    blocks_aad(&row),
                    &blocks.to_bytes(),
                )
                .await?;
            messages::set_blocks(&mut tx.conn(), record.id, Some(&sealed)).await?;
        }
        // Built from what was just written: no read-back, no decryption.
        let (view, created) = created(
            &record,
            &draft.body,
            draft.client_msg_id,
            c.workspace_id,
            mentioned,
            draft.blocks,
        );
        tx.emit(created);
        Ok(view)
    }

    /// The stored ciphertexts of the body and client id: the ones made ahead if they were
    /// made under this channel's workspace's key, else made now.
    async fn seal(
        &self,
        tx: &mut Tx,
        workspace: WorkspaceId,
        draft: &mut Draft,
    ) -> Result<(Vec<u8>, Option<Vec<u8>>), Error> {
        let sealed = match draft.sealed.take() {
            Some(ahead) if ahead.workspace == workspace => ahead,
            _ => seal_ahead(
                &self.keyring,
                workspace,
                draft.id,
                &draft.body,
                draft.client_msg_id.as_deref(),
            )?,
        };
        let body = self
            .keyring
            .finish(tx, sealed.body)
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let client_msg_id = match sealed.client_msg_id {
            Some(cid) => Some(self.keyring.finish(tx, cid).await?),
            None => None,
        };
        Ok((body, client_msg_id))
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
}

/// The view of a message just stored from `record` (no read-back, no decryption), and the event
/// that announces it.
fn created(
    record: &MessageRecord,
    body: &MessageBody,
    client_msg_id: Option<String>,
    workspace: WorkspaceId,
    mentioned: Vec<UserId>,
    blocks: Option<MessageBlocks>,
) -> (MessageView, DomainEvent) {
    let view = MessageView {
        id: record.id,
        channel_id: record.channel_id,
        seq: record.seq,
        author_id: record.author_id,
        text: body.as_str().to_owned(),
        thread_root_id: record.thread_root_id,
        reply_count: 0,
        last_reply_at: None,
        client_msg_id,
        created_at: record.created_at,
        edited_at: None,
        deleted: false,
        reactions: BTreeMap::new(),
        pinned: false,
        blocks: blocks.map(MessageBlocks::into_vec),
    };
    let event = DomainEvent::MessageCreated {
        workspace_id: workspace,
        channel_id: view.channel_id,
        message_id: view.id,
        seq: view.seq,
        author_id: view.author_id,
        thread_root_id: view.thread_root_id,
        mentioned,
        view: Local::new(view.clone()),
    };
    (view, event)
}

/// A post's time, to the microsecond: what PostgreSQL keeps, so the answer to a post and
/// every later read of it agree on either backend.
fn posted_at() -> chrono::DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Encrypts a post's body and client id under `workspace`'s key without a transaction (the
/// keyring leaves to [`Keyring::finish`] what it cannot do yet).
fn seal_ahead(
    keyring: &Keyring,
    workspace: WorkspaceId,
    id: MessageId,
    body: &MessageBody,
    client_msg_id: Option<&str>,
) -> Result<SealedAhead, Error> {
    let scope = Scope::Workspace(workspace);
    let row = id.to_string();
    // The places `body_aad` and `client_msg_aad` name, which the stored values are bound to.
    let body = keyring
        .seal_ahead(
            &scope,
            "messages",
            row.clone(),
            "body",
            body.as_str().as_bytes(),
        )
        .map_err(|e| Error::Internal(e.to_string()))?;
    let client_msg_id = match client_msg_id {
        Some(cid) => {
            Some(keyring.seal_ahead(&scope, "messages", row, "client_msg_id", cid.as_bytes())?)
        }
        None => None,
    };
    Ok(SealedAhead {
        workspace,
        body,
        client_msg_id,
    })
}
