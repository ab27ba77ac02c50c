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
use crate::domain::{ChannelId, LegalHoldId, ParseError, UserId, WorkspaceId};
use crate::error::Error;
use crate::rbac::{Action, Actor, Resource};
use crate::store::holds::{self, HoldRecord};
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

/// What one hold covers, parsed from its row.
#[derive(Clone, Debug)]
struct Coverage {
    custodians: HashSet<UserId>,
    channels: HashSet<ChannelId>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

impl Coverage {
    fn covers(&self, m: &Candidate) -> bool {
        (self.custodians.is_empty() || self.custodians.contains(&m.author_id))
            && (self.channels.is_empty() || self.channels.contains(&m.channel_id))
            && self.from.is_none_or(|from| m.created_at >= from)
            && self.to.is_none_or(|to| m.created_at < to)
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
        self.0.iter().any(|c| c.covers(m))
    }
}

fn parse_ids<T: serde::de::DeserializeOwned>(stored: &str) -> Result<Vec<T>, Error> {
    serde_json::from_str(stored)
        .map_err(|e| Error::Internal(format!("a legal hold's stored scope is unreadable: {e}")))
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
