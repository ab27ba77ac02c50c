//! Legal holds: a workspace's content that retention must keep, by custodian, channel and
//! date range.
//!
//! A hold covers a message when every criterion it sets matches: its author is one of the
//! custodians (none named: anyone), its channel is one of the channels (none named: any),
//! and it was posted within `from`..`to` (`from` included, `to` not; either end open). A hold is in force until it is
//! released; released holds stay listed with who released them and when. Placing and
//! releasing are audited (`legal_hold.created`, `legal_hold.released`); names and reasons
//! are stored encrypted under the workspace's key.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{Auditor, Event, Outcome};
use crate::crypto::{Aad, Keyring, Scope};
use crate::domain::{ChannelId, LegalHoldId, MessageId, ParseError, UserId, WorkspaceId};
use crate::error::Error;
use crate::rbac::{Action, Actor, Resource};
use crate::store::holds::{self, HoldRecord};
use crate::store::messages::MessageRecord;
use crate::store::retention::Candidate;
use crate::store::{self, Conn, Store, Tx};

/// The longest name a hold may have, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// The longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 4000;
/// The most custodians, and the most channels, one hold may name.
pub const MAX_SCOPE_IDS: usize = 1000;

/// A hold to place, as the API receives it (checked once the actor is authorized).
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Smith v. Acme",
    "reason": "litigation expected; keep the sales team's messages of 2024",
    "custodians": ["0190d6d2-8a4e-7cc1-9d36-5c4a1b2e7f10"],
    "channels": [],
    "from": "2024-01-01T00:00:00Z",
    "to": "2025-01-01T00:00:00Z"
}))]
pub struct NewHold {
    /// What the hold is called (1 to 200 characters).
    pub name: String,
    /// Why it was placed (up to 4,000 characters).
    #[serde(default)]
    pub reason: String,
    /// Whose content it holds (user ids; none: anyone's).
    #[serde(default)]
    pub custodians: Vec<UserId>,
    /// Which channels' content it holds (ids of the workspace's channels; none: every one).
    #[serde(default)]
    pub channels: Vec<ChannelId>,
    /// Content posted from this time on (none: from the beginning).
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// Content posted before this time (excluded, so a day's end is the next midnight;
    /// none: up to now and on).
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
}

/// A hold as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct HoldView {
    /// Its id.
    pub id: LegalHoldId,
    /// The workspace whose content it holds.
    pub workspace_id: WorkspaceId,
    /// Its name.
    pub name: String,
    /// Why it was placed.
    pub reason: String,
    /// Whose content it holds (empty: anyone's).
    pub custodians: Vec<UserId>,
    /// Which channels' content it holds (empty: every channel).
    pub channels: Vec<ChannelId>,
    /// Content posted from this time on.
    pub from: Option<DateTime<Utc>>,
    /// Content posted before this time (excluded).
    pub to: Option<DateTime<Utc>>,
    /// Whether it is in force (not released).
    pub active: bool,
    /// Who placed it.
    pub created_by: Option<UserId>,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// Who released it.
    pub released_by: Option<UserId>,
    /// When it was released.
    pub released_at: Option<DateTime<Utc>>,
}

/// A workspace's holds, oldest first, released ones included.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct HoldList {
    /// The holds.
    pub holds: Vec<HoldView>,
}

/// One earlier text of a held message.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct HeldVersion {
    /// Its number (1 is the text first posted).
    pub version: i64,
    /// The text.
    pub text: String,
    /// When an edit replaced it.
    pub replaced_at: DateTime<Utc>,
}

/// A message a hold covers, as a compliance officer reads it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct HeldMessage {
    /// Its id.
    pub id: MessageId,
    /// Its channel.
    pub channel_id: ChannelId,
    /// Its position in the channel.
    pub seq: i64,
    /// Who wrote it.
    pub author_id: UserId,
    /// The root, if this is a thread reply.
    pub thread_root_id: Option<MessageId>,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
    /// When it was last edited.
    pub edited_at: Option<DateTime<Utc>>,
    /// When it was deleted (its channel sees a tombstone since).
    pub deleted_at: Option<DateTime<Utc>>,
    /// Its text: the current one or, once deleted, the text it had when it was deleted
    /// (`null`: deleted before any hold or grace period kept it).
    pub text: Option<String>,
    /// Its Block Kit blocks, as stored (bots' messages).
    #[schema(value_type = Option<Object>)]
    pub blocks: Option<serde_json::Value>,
    /// Its earlier texts, oldest first.
    pub versions: Vec<HeldVersion>,
    /// For a deleted message whose text is kept: the end of its grace period, after which
    /// retention destroys the text once no hold covers it.
    pub grace_ends_at: Option<DateTime<Utc>>,
}

/// A page of the messages a hold covers, oldest first.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct HeldContentPage {
    /// The hold.
    pub hold_id: LegalHoldId,
    /// The messages.
    pub messages: Vec<HeldMessage>,
    /// Pass as `cursor` for the next page (`null`: this is the last).
    pub next_cursor: Option<String>,
}

/// The most messages one page of held content holds.
pub const MAX_CONTENT_PAGE: i64 = 200;

/// What one hold covers, parsed from its row.
#[derive(Clone, Debug)]
struct Coverage {
    custodians: HashSet<UserId>,
    channels: HashSet<ChannelId>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

impl Coverage {
    fn covers(&self, author: UserId, channel: ChannelId, created_at: DateTime<Utc>) -> bool {
        (self.custodians.is_empty() || self.custodians.contains(&author))
            && (self.channels.is_empty() || self.channels.contains(&channel))
            && self.from.is_none_or(|from| created_at >= from)
            && self.to.is_none_or(|to| created_at < to)
    }
}

/// The holds of a workspace in force at one moment of a write.
#[derive(Clone, Debug, Default)]
pub struct InForce(Vec<Coverage>);

impl InForce {
    /// The active holds of `workspace`, read in the caller's transaction.
    pub async fn read(conn: &mut Conn<'_>, workspace: WorkspaceId) -> Result<InForce, Error> {
        let mut out = Vec::new();
        for record in holds::active(conn, workspace).await? {
            out.push(Coverage {
                custodians: parse_ids(&record.custodians)?.into_iter().collect(),
                channels: parse_ids(&record.channels)?.into_iter().collect(),
                from: record.held_from,
                to: record.held_to,
            });
        }
        Ok(InForce(out))
    }

    /// Whether any hold covers the message.
    pub fn covers(&self, m: &Candidate) -> bool {
        self.covers_parts(m.author_id, m.channel_id, m.created_at)
    }

    /// Whether any hold covers a message by `author` in `channel` posted at `created_at`.
    pub fn covers_parts(
        &self,
        author: UserId,
        channel: ChannelId,
        created_at: DateTime<Utc>,
    ) -> bool {
        self.0.iter().any(|c| c.covers(author, channel, created_at))
    }
}

fn parse_ids<T: serde::de::DeserializeOwned>(stored: &str) -> Result<Vec<T>, Error> {
    serde_json::from_str(stored)
        .map_err(|e| Error::Internal(format!("a legal hold's stored scope is unreadable: {e}")))
}

fn aad<'a>(table: &'static str, row: &'a str, column: &'static str) -> Aad<'a> {
    Aad { table, row, column }
}

/// A cursor's position: posting time (microseconds) and message id.
fn parse_cursor(cursor: &str) -> Option<(DateTime<Utc>, MessageId)> {
    let (micros, id) = cursor.split_once('.')?;
    let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    Some((at, MessageId(uuid::Uuid::parse_str(id).ok()?)))
}

fn hold_aad<'a>(row: &'a str, column: &'a str) -> Aad<'a> {
    Aad {
        table: "legal_holds",
        row,
        column,
    }
}

/// A hold's input, checked: trimmed name and reason, distinct ids, an ordered range.
struct Checked {
    name: String,
    reason: String,
    custodians: Vec<UserId>,
    channels: Vec<ChannelId>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

/// Checks `new` against the rules and the workspace: every custodian an account, every
/// channel one of the workspace's.
async fn check(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    new: NewHold,
) -> Result<Checked, Error> {
    let name = new.name.trim().to_owned();
    if name.is_empty() {
        return Err(ParseError::new("name", "give the hold a name").into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ParseError::new("name", format!("at most {MAX_NAME_CHARS} characters")).into());
    }
    if name.chars().any(char::is_control) {
        return Err(ParseError::new("name", "control characters are not allowed").into());
    }
    let reason = new.reason.trim().to_owned();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(
            ParseError::new("reason", format!("at most {MAX_REASON_CHARS} characters")).into(),
        );
    }
    if let (Some(from), Some(to)) = (new.from, new.to) {
        if from > to {
            return Err(ParseError::new("from", "the range starts after it ends").into());
        }
    }
    let custodians: Vec<UserId> = new
        .custodians
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let channels: Vec<ChannelId> = new
        .channels
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if custodians.len() > MAX_SCOPE_IDS {
        return Err(
            ParseError::new("custodians", format!("at most {MAX_SCOPE_IDS} custodians")).into(),
        );
    }
    if channels.len() > MAX_SCOPE_IDS {
        return Err(
            ParseError::new("channels", format!("at most {MAX_SCOPE_IDS} channels")).into(),
        );
    }
    let known: HashSet<UserId> = holds::users_among(conn, &custodians)
        .await?
        .into_iter()
        .collect();
    if let Some(unknown) = custodians.iter().find(|u| !known.contains(u)) {
        return Err(ParseError::new("custodians", format!("no account {unknown}")).into());
    }
    let known: HashSet<ChannelId> = holds::channels_in(conn, workspace, &channels)
        .await?
        .into_iter()
        .collect();
    if let Some(unknown) = channels.iter().find(|c| !known.contains(c)) {
        return Err(ParseError::new(
            "channels",
            format!("the workspace has no channel {unknown}"),
        )
        .into());
    }
    Ok(Checked {
        name,
        reason,
        custodians,
        channels,
        from: new.from,
        to: new.to,
    })
}

/// Legal holds: place, list, release; cheap to clone.
#[derive(Clone)]
pub struct HoldService {
    store: Store,
    auditor: Auditor,
    keyring: Keyring,
}

impl HoldService {
    /// The service over `store`, encrypting with the auditor's keyring.
    pub fn new(store: Store, auditor: Auditor) -> HoldService {
        let keyring = auditor.keyring().clone();
        HoldService {
            store,
            auditor,
            keyring,
        }
    }

    /// Places a hold on `workspace`'s content (`legal_holds.manage`); audited.
    #[tracing::instrument(skip(self, actor, new), fields(actor = ?actor.user_id()))]
    pub async fn create(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        new: NewHold,
    ) -> Result<HoldView, Error> {
        let this = self.clone();
        let actor = actor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.authorize_in(tx, &actor, workspace).await?;
                    let checked = check(&mut tx.conn(), workspace, new).await?;
                    let id = LegalHoldId::generate();
                    let row = id.to_string();
                    let scope = Scope::Workspace(workspace);
                    let name = this
                        .keyring
                        .encrypt(tx, &scope, hold_aad(&row, "name"), checked.name.as_bytes())
                        .await?;
                    let reason = this
                        .keyring
                        .encrypt(
                            tx,
                            &scope,
                            hold_aad(&row, "reason"),
                            checked.reason.as_bytes(),
                        )
                        .await?;
                    let record = HoldRecord {
                        id,
                        workspace_id: workspace,
                        name,
                        reason,
                        custodians: json!(checked.custodians).to_string(),
                        channels: json!(checked.channels).to_string(),
                        held_from: checked.from,
                        held_to: checked.to,
                        created_by: actor.user_id(),
                        created_at: Utc::now(),
                        released_by: None,
                        released_at: None,
                    };
                    holds::insert(&mut tx.conn(), &record).await?;
                    let event = Event::by(&actor, "legal_hold.created", Outcome::Allowed)
                        .target("legal_hold", id)
                        .workspace(workspace)
                        .details(json!({
                            "custodians": checked.custodians,
                            "channels": checked.channels,
                            "from": checked.from,
                            "to": checked.to,
                        }));
                    this.auditor.record(tx, event).await?;
                    Ok(view(
                        &record,
                        checked.name,
                        checked.reason,
                        &checked.custodians,
                        &checked.channels,
                    ))
                })
            })
            .await
    }

    /// A workspace's holds, released ones included (`legal_holds.manage`).
    #[tracing::instrument(skip(self, actor), fields(actor = ?actor.user_id()))]
    pub async fn list(&self, actor: &Actor, workspace: WorkspaceId) -> Result<HoldList, Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ManageLegalHolds,
                Resource::Workspace(workspace),
            )
            .await?;
        if store::workspaces::by_id(&mut conn.conn(), workspace)
            .await?
            .is_none()
        {
            return Err(Error::NotFound("workspace"));
        }
        let mut out = Vec::new();
        for record in holds::list(&mut conn.conn(), workspace).await? {
            out.push(self.decrypted(&mut conn.conn(), &record).await?);
        }
        Ok(HoldList { holds: out })
    }

    /// Releases a hold in force (`legal_holds.release`: compliance officers and system
    /// administrators, never the workspace's own administrators, who may be its custodians);
    /// audited. What it held is again subject to retention at the next pass.
    #[tracing::instrument(skip(self, actor), fields(actor = ?actor.user_id()))]
    pub async fn release(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: LegalHoldId,
    ) -> Result<HoldView, Error> {
        let this = self.clone();
        let actor = actor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.authorize_in(tx, &actor, workspace).await?;
                    this.auditor
                        .authorize(
                            tx,
                            &actor,
                            Action::ReleaseLegalHolds,
                            Resource::Workspace(workspace),
                        )
                        .await?;
                    let Some(mut record) = holds::by_id(&mut tx.conn(), workspace, id).await?
                    else {
                        return Err(Error::NotFound("legal hold"));
                    };
                    let at = Utc::now();
                    if !holds::release(&mut tx.conn(), id, actor.user_id(), at).await? {
                        return Err(Error::conflict(
                            "already_released",
                            "this legal hold was already released",
                        ));
                    }
                    record.released_by = actor.user_id();
                    record.released_at = Some(at);
                    let event = Event::by(&actor, "legal_hold.released", Outcome::Allowed)
                        .target("legal_hold", id)
                        .workspace(workspace);
                    this.auditor.record(tx, event).await?;
                    this.decrypted(&mut tx.conn(), &record).await
                })
            })
            .await
    }

    /// The messages the hold `id` covers, deleted ones included with the text a deletion
    /// kept, oldest first from `cursor` (`ediscovery.read`: compliance officers and system
    /// administrators). Each page read is audited with how many messages it showed.
    #[tracing::instrument(skip(self, actor, cursor), fields(actor = ?actor.user_id()))]
    pub async fn content(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: LegalHoldId,
        cursor: Option<&str>,
        limit: Option<i64>,
    ) -> Result<HeldContentPage, Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ReadHeldContent,
                Resource::Workspace(workspace),
            )
            .await?;
        let limit = match limit {
            None => 100,
            Some(n) if (1..=MAX_CONTENT_PAGE).contains(&n) => n,
            Some(_) => {
                return Err(ParseError {
                    field: "limit",
                    message: format!("must be 1 to {MAX_CONTENT_PAGE}"),
                }
                .into())
            }
        };
        let after = match cursor {
            None => (DateTime::<Utc>::UNIX_EPOCH, MessageId(uuid::Uuid::nil())),
            Some(c) => parse_cursor(c).ok_or(ParseError {
                field: "cursor",
                message: "is not a cursor from this API".into(),
            })?,
        };
        let Some(record) = holds::by_id(&mut conn.conn(), workspace, id).await? else {
            return Err(Error::NotFound("legal hold"));
        };
        let custodians: Vec<UserId> = parse_ids(&record.custodians)?;
        let channels: Vec<ChannelId> = parse_ids(&record.channels)?;
        let scope = holds::Scope {
            custodians: &custodians,
            channels: &channels,
            from: record.held_from,
            to: record.held_to,
        };
        let rows =
            holds::covered_messages(&mut conn.conn(), workspace, &scope, after, limit).await?;
        let next_cursor = match rows.last() {
            Some(last) if rows.len() as i64 == limit => Some(format!(
                "{}.{}",
                last.created_at.timestamp_micros(),
                last.id
            )),
            _ => None,
        };
        let mut messages = Vec::with_capacity(rows.len());
        for m in rows {
            messages.push(self.held_message(&mut conn.conn(), workspace, m).await?);
        }
        let deleted = messages.iter().filter(|m| m.deleted_at.is_some()).count();
        let event = Event::by(actor, "legal_hold.content_read", Outcome::Allowed)
            .target("legal_hold", id)
            .workspace(workspace)
            .details(json!({ "messages": messages.len(), "deleted": deleted }));
        self.auditor.record_alone(&self.store, event).await?;
        Ok(HeldContentPage {
            hold_id: id,
            messages,
            next_cursor,
        })
    }

    /// A covered message with its texts decrypted: the live ones, or what its deletion kept
    /// (also eDiscovery's read of a message; its caller authorizes and audits).
    pub async fn held_message(
        &self,
        conn: &mut Conn<'_>,
        workspace: WorkspaceId,
        m: MessageRecord,
    ) -> Result<HeldMessage, Error> {
        let scope = Scope::Workspace(workspace);
        let id = m.id.to_string();
        let mut versions = Vec::new();
        let (text, blocks, grace_ends_at);
        if m.deleted_at.is_none() {
            for (version, body, replaced_at) in store::messages::versions(conn, m.id).await? {
                let row = format!("{id}:{version}");
                let text = self
                    .keyring
                    .decrypt_text(conn, &scope, aad("message_versions", &row, "body"), &body)
                    .await?;
                versions.push(HeldVersion {
                    version,
                    text,
                    replaced_at,
                });
            }
            text = Some(
                self.keyring
                    .decrypt_text(conn, &scope, aad("messages", &id, "body"), &m.body)
                    .await?,
            );
            blocks = match &m.blocks {
                Some(b) => Some(
                    self.keyring
                        .decrypt(conn, &scope, aad("messages", &id, "blocks"), b)
                        .await?,
                ),
                None => None,
            };
            grace_ends_at = None;
        } else {
            let mut kept = store::remnants::of_message(conn, m.id).await?;
            let last = kept.pop();
            for r in kept {
                let row = format!("{id}:{}", r.version);
                let text = self
                    .keyring
                    .decrypt_text(conn, &scope, aad("message_remnants", &row, "body"), &r.body)
                    .await?;
                versions.push(HeldVersion {
                    version: r.version,
                    text,
                    replaced_at: r.written_at,
                });
            }
            match last {
                Some(r) => {
                    let row = format!("{id}:{}", r.version);
                    text = Some(
                        self.keyring
                            .decrypt_text(
                                conn,
                                &scope,
                                aad("message_remnants", &row, "body"),
                                &r.body,
                            )
                            .await?,
                    );
                    blocks = match &r.blocks {
                        Some(b) => Some(
                            self.keyring
                                .decrypt(conn, &scope, aad("message_remnants", &row, "blocks"), b)
                                .await?,
                        ),
                        None => None,
                    };
                    grace_ends_at = Some(r.purge_after);
                }
                None => {
                    text = None;
                    blocks = None;
                    grace_ends_at = None;
                }
            }
        }
        let blocks = blocks
            .map(|b| serde_json::from_slice::<serde_json::Value>(&b))
            .transpose()
            .map_err(|e| Error::Internal(format!("stored blocks are unreadable: {e}")))?;
        Ok(HeldMessage {
            id: m.id,
            channel_id: m.channel_id,
            seq: m.seq,
            author_id: m.author_id,
            thread_root_id: m.thread_root_id,
            created_at: m.created_at,
            edited_at: m.edited_at,
            deleted_at: m.deleted_at,
            text,
            blocks,
            versions,
            grace_ends_at,
        })
    }

    /// Decides `legal_holds.manage` on `workspace` in the write, and finds the workspace.
    async fn authorize_in(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        workspace: WorkspaceId,
    ) -> Result<(), Error> {
        self.auditor
            .authorize(
                tx,
                actor,
                Action::ManageLegalHolds,
                Resource::Workspace(workspace),
            )
            .await?;
        // A system role decides without a membership: the workspace must still exist.
        match store::workspaces::by_id(&mut tx.conn(), workspace).await? {
            Some(_) => Ok(()),
            None => Err(Error::NotFound("workspace")),
        }
    }

    async fn decrypted(&self, conn: &mut Conn<'_>, record: &HoldRecord) -> Result<HoldView, Error> {
        let row = record.id.to_string();
        let scope = Scope::Workspace(record.workspace_id);
        let name = self
            .keyring
            .decrypt_text(conn, &scope, hold_aad(&row, "name"), &record.name)
            .await?;
        let reason = self
            .keyring
            .decrypt_text(conn, &scope, hold_aad(&row, "reason"), &record.reason)
            .await?;
        let custodians: Vec<UserId> = parse_ids(&record.custodians)?;
        let channels: Vec<ChannelId> = parse_ids(&record.channels)?;
        Ok(view(record, name, reason, &custodians, &channels))
    }
}

fn view(
    record: &HoldRecord,
    name: String,
    reason: String,
    custodians: &[UserId],
    channels: &[ChannelId],
) -> HoldView {
    HoldView {
        id: record.id,
        workspace_id: record.workspace_id,
        name,
        reason,
        custodians: custodians.to_vec(),
        channels: channels.to_vec(),
        from: record.held_from,
        to: record.held_to,
        active: record.released_at.is_none(),
        created_by: record.created_by,
        created_at: record.created_at,
        released_by: record.released_by,
        released_at: record.released_at,
    }
}
