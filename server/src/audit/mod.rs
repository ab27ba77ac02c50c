//! The tamper-evident audit log: what was done, by whom, to what, and whether it was allowed.
//!
//! Services record an [`Event`] inside the write transaction of the action it describes
//! ([`Auditor::record`]); the store's group-commit writer numbers and hash-chains the batch
//! at commit (with `store::audit_chain`, re-exported here as [`chain`]) and signs periodic
//! checkpoints, so an action never commits without its record. Denials and failed attempts
//! are recorded with [`Auditor::record_kept`], which survives the rollback of the refused
//! write; denials on read paths go through a write of their own ([`Auditor::authorize_read`]).
//! Personal fields (client address, details) are encrypted under the subject's key; the hash
//! covers the ciphertext, so erasing a user's key later leaves the chain verifiable.
//!
//! [`verify`] checks a chain (live or exported) and names the first bad sequence number;
//! [`verification`] is the live log's verification (the command line's and, on demand, the
//! compliance officer's over the API, keeping the last result);
//! [`export`] defines the export format documented in policies/AUDIT-FORMAT.md and its
//! strict verifier; [`service`] is the compliance officer's read and export access;
//! [`witness`] publishes each signed checkpoint outside the database.
//!
//! Posts, comments and searches are recorded as metadata only (ids, never what was written
//! or searched for); whether searches are recorded is `audit.record_searches`.

pub mod export;
mod inventory;
pub mod service;
pub mod verification;
pub mod verify;
pub mod witness;

pub use inventory::INVENTORY;

/// The hash chain's pure functions, which live with the store's writer that appends.
pub use crate::store::audit_chain as chain;

use std::net::IpAddr;

use serde_json::Value;

use crate::config::SearchRecording;
use crate::crypto::{Keyring, Scope, Sealed};
use crate::domain::{ChannelId, UserId, WorkspaceId};
use crate::error::Error;
use crate::rbac::{authorize, authorize_channel, Action, Actor, AuthzError, Principal, Resource};
use crate::store::audit::{AuditFields, PendingAudit};
use crate::store::channels::{self, ChannelForMember};
use crate::store::{Conn, Store, Tx};

/// Whether the recorded action happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It was permitted and done.
    Allowed,
    /// Authorization or a security rule refused it.
    Denied,
    /// It was attempted and failed (wrong password, dead session).
    Failed,
}

impl Outcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

/// One thing to record.
#[derive(Clone, Debug)]
pub struct Event {
    action: &'static str,
    outcome: Outcome,
    actor_type: &'static str,
    actor_id: Option<String>,
    session_id: Option<String>,
    ip: Option<IpAddr>,
    target: Option<(&'static str, String)>,
    workspace: Option<WorkspaceId>,
    subject: Option<UserId>,
    details: Value,
}

impl Event {
    /// `actor` did `action` with `outcome`; the actor's user is the subject by default.
    pub fn by(actor: &Actor, action: &'static str, outcome: Outcome) -> Event {
        let (actor_type, actor_id, session_id) = match &actor.principal {
            Principal::User {
                user_id,
                session_id,
            } => (
                "user",
                Some(user_id.to_string()),
                Some(session_id.to_string()),
            ),
            // A bot has no session; the credential it acted through stands in its place.
            Principal::Bot { bot_id, via, .. } => {
                ("bot", Some(bot_id.to_string()), Some(via.to_string()))
            }
            Principal::System => ("system", None, None),
        };
        Event {
            action,
            outcome,
            actor_type,
            actor_id,
            session_id,
            ip: actor.ip,
            target: None,
            workspace: None,
            subject: actor.user_id(),
            details: Value::Null,
        }
    }

    /// An unauthenticated client (or a user before their session exists) did `action`.
    pub fn anonymous(action: &'static str, outcome: Outcome, ip: Option<IpAddr>) -> Event {
        Event {
            action,
            outcome,
            actor_type: "anonymous",
            actor_id: None,
            session_id: None,
            ip,
            target: None,
            workspace: None,
            subject: None,
            details: Value::Null,
        }
    }

    /// Names the acting user and session (known only once a sign-in succeeded).
    pub fn as_user(mut self, user: UserId, session: Option<String>) -> Event {
        self.actor_type = "user";
        self.actor_id = Some(user.to_string());
        self.session_id = session;
        self.subject = Some(user);
        self
    }

    /// What was acted on.
    pub fn target(mut self, kind: &'static str, id: impl std::fmt::Display) -> Event {
        self.target = Some((kind, id.to_string()));
        self
    }

    /// The workspace concerned.
    pub fn workspace(mut self, id: WorkspaceId) -> Event {
        self.workspace = Some(id);
        self
    }

    /// Whose key encrypts the personal fields.
    pub fn subject(mut self, user: UserId) -> Event {
        self.subject = Some(user);
        self
    }

    /// Details (a JSON object); stored encrypted.
    pub fn details(mut self, details: Value) -> Event {
        self.details = details;
        self
    }
}

fn target_of(resource: Resource) -> (&'static str, String, Option<WorkspaceId>) {
    match resource {
        Resource::System => ("system", "system".into(), None),
        Resource::Workspace(id) => ("workspace", id.to_string(), Some(id)),
        Resource::Account(id) => ("user", id.to_string(), None),
        Resource::Channel(id) => ("channel", id.to_string(), None),
        Resource::Document(id) => ("document", id.to_string(), None),
    }
}

fn denial(actor: &Actor, action: Action, resource: Resource) -> Event {
    let (kind, id, workspace) = target_of(resource);
    let mut event = Event::by(actor, "permission.denied", Outcome::Denied)
        .target(kind, id)
        .details(serde_json::json!({ "permission": action.as_str() }));
    event.workspace = workspace;
    event
}

/// An audit entry built ahead of its write ([`Auditor::prepare`]).
pub struct PreparedEvent {
    fields: AuditFields,
    ip: Option<Sealed>,
    details: Option<Sealed>,
}

impl PreparedEvent {
    /// Names the workspace concerned, once the write has found it (not an encrypted field,
    /// so it can be set after the entry was prepared).
    pub fn in_workspace(mut self, id: WorkspaceId) -> PreparedEvent {
        self.fields.workspace_id = Some(id.to_string());
        self
    }
}

/// Records audit events; cheap to clone.
#[derive(Clone)]
pub struct Auditor {
    keyring: Keyring,
    searches: SearchRecording,
}

impl Auditor {
    /// An auditor encrypting with `keyring` (searches recorded as metadata).
    pub fn new(keyring: Keyring) -> Auditor {
        Auditor {
            keyring,
            searches: SearchRecording::default(),
        }
    }

    /// Sets whether searches are recorded (`audit.record_searches`).
    pub fn with_search_recording(mut self, searches: SearchRecording) -> Auditor {
        self.searches = searches;
        self
    }

    /// The keyring (for services that encrypt their own columns).
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Builds the entry for `event` and encrypts its personal fields without a transaction,
    /// so a caller can do it before its write reaches the group-commit writer (whose single
    /// task then only checks the key version and queues the entry); then
    /// [`Auditor::record_prepared`] inside the write.
    pub fn prepare(&self, event: Event) -> Result<PreparedEvent, Error> {
        let id = uuid::Uuid::now_v7().to_string();
        // An erased person's key is gone: an entry about them afterwards (an administrator
        // acting on the emptied account) is sealed under the audit log's own key.
        let scope = match event.subject {
            Some(user) if !self.keyring.is_destroyed(&Scope::User(user)) => Scope::User(user),
            _ => Scope::System("audit"),
        };
        let ip = match event.ip {
            Some(ip) => Some(self.keyring.seal_ahead(
                &scope,
                "audit_events",
                id.clone(),
                "ip",
                ip.to_string().as_bytes(),
            )?),
            None => None,
        };
        let details = if event.details.is_null() {
            None
        } else {
            let json =
                serde_json::to_vec(&event.details).map_err(|e| Error::Internal(e.to_string()))?;
            Some(
                self.keyring
                    .seal_ahead(&scope, "audit_events", id.clone(), "details", &json)?,
            )
        };
        Ok(PreparedEvent {
            fields: AuditFields {
                occurred_at: chrono::Utc::now()
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                actor_type: event.actor_type.into(),
                actor_id: event.actor_id,
                session_id: event.session_id,
                action: event.action.into(),
                target_type: event.target.as_ref().map(|t| t.0.to_owned()),
                target_id: event.target.map(|t| t.1),
                workspace_id: event.workspace.map(|w| w.to_string()),
                outcome: event.outcome.as_str().into(),
                subject: Some(scope.as_key()),
                ip_enc: None,
                details_enc: None,
                id,
            },
            ip,
            details,
        })
    }

    async fn finish(&self, tx: &mut Tx, prepared: PreparedEvent) -> Result<AuditFields, Error> {
        let mut fields = prepared.fields;
        if let Some(ip) = prepared.ip {
            fields.ip_enc = Some(self.keyring.finish(tx, ip).await?);
        }
        if let Some(details) = prepared.details {
            fields.details_enc = Some(self.keyring.finish(tx, details).await?);
        }
        Ok(fields)
    }

    /// The entry `prepared` makes (in `workspace`, if given: see
    /// [`PreparedEvent::in_workspace`]) if its encrypted fields need no transaction (see
    /// [`Keyring::finish_ready`]), for a write on the writer's thread.
    pub fn finish_ready(
        &self,
        prepared: &PreparedEvent,
        workspace: Option<WorkspaceId>,
    ) -> Option<PendingAudit> {
        let mut fields = prepared.fields.clone();
        if let Some(workspace) = workspace {
            fields.workspace_id = Some(workspace.to_string());
        }
        if let Some(ip) = &prepared.ip {
            fields.ip_enc = Some(self.keyring.finish_ready(ip)?);
        }
        if let Some(details) = &prepared.details {
            fields.details_enc = Some(self.keyring.finish_ready(details)?);
        }
        Some(PendingAudit {
            fields,
            survives_rollback: false,
        })
    }

    /// Records a prepared event with the write `tx`: it commits with the write or not at all.
    pub async fn record_prepared(&self, tx: &mut Tx, prepared: PreparedEvent) -> Result<(), Error> {
        let fields = self.finish(tx, prepared).await?;
        tx.audit(PendingAudit {
            fields,
            survives_rollback: false,
        });
        Ok(())
    }

    /// Records `event` with the write `tx`: it commits with the write or not at all.
    pub async fn record(&self, tx: &mut Tx, event: Event) -> Result<(), Error> {
        let prepared = self.prepare(event)?;
        self.record_prepared(tx, prepared).await
    }

    /// Records `event` so that it commits even if the write `tx` belongs to fails.
    pub async fn record_kept(&self, tx: &mut Tx, event: Event) -> Result<(), Error> {
        let prepared = self.prepare(event)?;
        let fields = self.finish(tx, prepared).await?;
        tx.audit(PendingAudit {
            fields,
            survives_rollback: true,
        });
        Ok(())
    }

    /// [`authorize`] inside a write; a denial is recorded even though the write fails.
    pub async fn authorize(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        action: Action,
        resource: Resource,
    ) -> Result<(), Error> {
        match authorize(&mut tx.conn(), actor, action, resource).await {
            Ok(()) => Ok(()),
            Err(AuthzError::Store(e)) => Err(e.into()),
            Err(refused) => {
                self.record_kept(tx, denial(actor, action, resource))
                    .await?;
                Err(refused.into())
            }
        }
    }

    /// Reads channel `id` with `actor`'s access facts in one query inside the write `tx` and
    /// decides `action` on it ([`crate::rbac::authorize_channel`]: the rule of [`authorize`]
    /// on [`Resource::Channel`]); a denial is recorded as [`Auditor::authorize`] records it.
    /// Returns the channel with the actor's channel role, read in the same statement, so the
    /// write acts on exactly what was decided (`None` only for a system actor, who is allowed
    /// everywhere, on a channel that does not exist).
    pub async fn authorize_channel(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        action: Action,
        id: ChannelId,
    ) -> Result<Option<ChannelForMember>, Error> {
        // Nobody is a member of anything as the nil user (a system actor).
        let user = actor.user_id().unwrap_or(UserId(uuid::Uuid::nil()));
        let found = channels::with_access(&mut tx.conn(), id, user).await?;
        match authorize_channel(actor, action, found.as_ref().map(|f| &f.access)) {
            Ok(()) => {}
            Err(AuthzError::Store(e)) => return Err(e.into()),
            Err(refused) => {
                self.record_kept(tx, denial(actor, action, Resource::Channel(id)))
                    .await?;
                return Err(refused.into());
            }
        }
        Ok(found.map(|f| ChannelForMember {
            member_role: f.access.channel_role,
            channel: f.channel,
        }))
    }

    /// [`authorize`] on a read path; a denial is recorded through a write of its own.
    pub async fn authorize_read(
        &self,
        store: &Store,
        conn: &mut Conn<'_>,
        actor: &Actor,
        action: Action,
        resource: Resource,
    ) -> Result<(), Error> {
        match authorize(conn, actor, action, resource).await {
            Ok(()) => Ok(()),
            Err(AuthzError::Store(e)) => Err(e.into()),
            Err(refused) => {
                let auditor = self.clone();
                let event = denial(actor, action, resource);
                store
                    .write(move |tx: &mut Tx| {
                        Box::pin(async move { auditor.record(tx, event).await })
                    })
                    .await?;
                Err(refused.into())
            }
        }
    }

    /// Records `event` in a write of its own (for actions that write nothing else); its
    /// fields are encrypted before the write reaches the writer.
    pub async fn record_alone(&self, store: &Store, event: Event) -> Result<(), Error> {
        let prepared = self.prepare(event)?;
        let auditor = self.clone();
        store
            .write(move |tx: &mut Tx| {
                Box::pin(async move { auditor.record_prepared(tx, prepared).await })
            })
            .await
    }

    /// Records that `actor` searched `workspace` and got `results` results, as
    /// `audit.record_searches` says: metadata only, never the query.
    pub async fn record_search(
        &self,
        store: &Store,
        actor: &Actor,
        workspace: WorkspaceId,
        results: usize,
    ) -> Result<(), Error> {
        if self.searches == SearchRecording::Off {
            return Ok(());
        }
        let event = Event::by(actor, "search.query", Outcome::Allowed)
            .target("workspace", workspace)
            .workspace(workspace)
            .details(serde_json::json!({ "results": results }));
        self.record_alone(store, event).await
    }
}
