//! Documents co-edited in real time over the standard Yjs sync protocol.
//!
//! `DocService` is the REST side: create, list, rename, move, share, delete, versions and
//! export, each authorized through `rbac` (`Resource::Document`) and audited. `room` holds
//! the live documents (one task per open document, updates stored encrypted before anyone
//! receives them); `awareness` decides which cursor and presence states a connection may
//! announce; `sync` serves a stock `y-websocket` client's connection; `content` (crate
//! `concord-doc-content`, `crates/doc-content`) reads exports out of Yjs state and writes
//! versions back. `DocService` is one concept per file: this file the document itself
//! (create, list, read, update, delete, export), `sharing` its grants, `versions` its named
//! versions, `comments` its comments, `indexable` what search may index of it. Document
//! content is plaintext only in memory: titles, update batches, snapshots and versions are
//! encrypted under the workspace's key, bound to their row and column.

mod awareness;
mod comments;
mod indexable;
mod inventory;
pub mod room;
mod sharing;
pub mod sync;
mod versions;
mod views;

use concord_doc_content as content;

pub use content::Format;
pub use indexable::IndexableDocument;
pub use inventory::INVENTORY;
pub use room::{Limits, Rooms};
pub use sharing::Principal;
pub use versions::DiscoveredVersion;
pub use views::{CommentView, DocumentView, GrantView, VersionView};

use chrono::Utc;

use crate::audit::{Auditor, Event, Outcome};
use crate::crypto::{Aad, Keyring, Scope};
use crate::domain::{ChannelId, DocumentId, UserId, VersionId, WorkspaceId};
use crate::error::Error;
use crate::events::{DocumentChange, DomainEvent};
use crate::policy::{PhiRead, PolicyService};
use crate::rbac::{self, Action, Actor, Level, Resource};
use crate::store::documents::{self, DocumentRecord};
use crate::store::{channels, workspaces as ws_store, Conn, Store, Tx};

/// Longest title or version name, in characters.
const MAX_NAME: usize = 200;
/// Changes to a document's details; `None` leaves a field as it is.
#[derive(Default)]
pub struct Changes {
    /// New title.
    pub title: Option<String>,
    /// New linked channel (`Some(None)` unlinks).
    pub channel: Option<Option<ChannelId>>,
    /// New general access (`none`, `view`, `comment`, `edit`).
    pub general_access: Option<String>,
}

/// Document operations; cheap to clone.
#[derive(Clone)]
pub struct DocService {
    store: Store,
    keyring: Keyring,
    auditor: Auditor,
    rooms: Rooms,
    limits: Limits,
    /// Which reads of PHI are audited (`phi.audit_reads`).
    policies: PolicyService,
}

fn name(field: &'static str, value: &str) -> Result<String, Error> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > MAX_NAME || value.chars().any(char::is_control) {
        return Err(crate::domain::ParseError {
            field,
            message: format!("must be 1 to {MAX_NAME} characters without control characters"),
        }
        .into());
    }
    Ok(value.to_owned())
}

fn general_access(value: &str) -> Result<String, Error> {
    match value {
        "none" | "view" | "comment" | "edit" => Ok(value.to_owned()),
        _ => Err(crate::domain::ParseError {
            field: "general_access",
            message: "must be none, view, comment or edit".into(),
        }
        .into()),
    }
}

fn user_of(actor: &Actor) -> Result<UserId, Error> {
    actor
        .user_id()
        .ok_or_else(|| Error::refused("user_required", "only people use documents"))
}

fn title_aad(id: &str) -> Aad<'_> {
    Aad {
        table: "documents",
        row: id,
        column: "title",
    }
}

impl DocService {
    /// The service over `store`, with the live documents in `rooms`.
    pub fn new(
        store: Store,
        auditor: Auditor,
        rooms: Rooms,
        limits: Limits,
        policies: PolicyService,
    ) -> DocService {
        DocService {
            store,
            keyring: auditor.keyring().clone(),
            auditor,
            rooms,
            limits,
            policies,
        }
    }

    /// Audits `actor`'s read of `what` (ids) of `record` where its PHI reads are audited
    /// (`phi.audit_reads`; see [`crate::policy::PhiScope`]). Opening a document for editing
    /// and exporting it are audited for every document (`document.opened`,
    /// `document.exported`).
    async fn audit_phi_read(
        &self,
        actor: &Actor,
        record: &DocumentRecord,
        kind: &'static str,
        ids: Vec<String>,
    ) -> Result<(), Error> {
        let read = PhiRead {
            workspace: record.workspace_id,
            kind,
            target: ("document", record.id.to_string()),
            ids,
        };
        self.policies
            .audit_phi_read(actor, record.channel_id, read)
            .await
    }

    /// The live documents.
    pub fn rooms(&self) -> &Rooms {
        &self.rooms
    }

    /// Size limits and housekeeping settings.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    async fn view(
        &self,
        conn: &mut Conn<'_>,
        d: DocumentRecord,
        level: Level,
    ) -> Result<DocumentView, Error> {
        let id = d.id.to_string();
        let title = self
            .keyring
            .decrypt_text(
                conn,
                &Scope::Workspace(d.workspace_id),
                title_aad(&id),
                &d.title,
            )
            .await?;
        Ok(DocumentView {
            id: d.id,
            workspace_id: d.workspace_id,
            channel_id: d.channel_id,
            title,
            general_access: d.general_access,
            created_by: d.created_by,
            created_at: d.created_at,
            updated_at: d.updated_at,
            my_access: level,
        })
    }

    async fn check_channel(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        workspace: WorkspaceId,
        channel: ChannelId,
    ) -> Result<(), Error> {
        self.auditor
            .authorize(tx, actor, Action::ReadChannels, Resource::Channel(channel))
            .await?;
        let record = channels::by_id(&mut tx.conn(), channel)
            .await?
            .ok_or(Error::NotFound("channel"))?;
        if record.workspace_id != workspace {
            return Err(Error::refused(
                "channel_elsewhere",
                "the channel belongs to another workspace",
            ));
        }
        Ok(())
    }

    /// Creates a document in `workspace`, optionally linked to `channel`.
    pub async fn create(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        title: &str,
        channel: Option<ChannelId>,
        access: Option<&str>,
    ) -> Result<DocumentView, Error> {
        let title = name("title", title)?;
        let access = general_access(access.unwrap_or("none"))?;
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.auditor
                        .authorize(
                            tx,
                            &actor,
                            Action::CreateDocuments,
                            Resource::Workspace(workspace),
                        )
                        .await?;
                    let user = user_of(&actor)?;
                    if let Some(c) = channel {
                        this.check_channel(tx, &actor, workspace, c).await?;
                    }
                    let id = DocumentId::generate();
                    let sealed = this
                        .keyring
                        .encrypt(
                            tx,
                            &Scope::Workspace(workspace),
                            title_aad(&id.to_string()),
                            title.as_bytes(),
                        )
                        .await?;
                    let now = Utc::now();
                    let record = DocumentRecord {
                        id,
                        workspace_id: workspace,
                        channel_id: channel,
                        title: sealed,
                        general_access: access,
                        created_by: user,
                        created_at: now,
                        updated_at: now,
                        last_seq: 0,
                    };
                    documents::insert(&mut tx.conn(), &record).await?;
                    tx.emit(DomainEvent::DocumentChanged {
                        workspace_id: workspace,
                        document_id: id,
                        what: DocumentChange::Created,
                    });
                    let event = Event::by(&actor, "document.created", Outcome::Allowed)
                        .target("document", id)
                        .workspace(workspace);
                    this.auditor.record(tx, event).await?;
                    this.view(&mut tx.conn(), record, Level::Manage).await
                })
            })
            .await
    }

    /// The documents of `workspace` the actor can see, newest first.
    pub async fn list(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
    ) -> Result<Vec<DocumentView>, Error> {
        let mut reader = self.store.reader().await?;
        let mut conn = reader.conn();
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn,
                actor,
                Action::ReadWorkspace,
                Resource::Workspace(workspace),
            )
            .await?;
        let user = user_of(actor)?;
        let Some(role) = ws_store::member_role(&mut conn, workspace, user).await? else {
            return Ok(Vec::new());
        };
        let granted = rbac::role_permissions(&mut conn, role).await?;
        let scope = self.policies.phi_scope(&mut conn, workspace).await?;
        let mut out = Vec::new();
        let mut phi = Vec::new();
        for (record, facts) in documents::list_with_access(&mut conn, workspace, user).await? {
            if let Some(level) = rbac::documents::level(&facts, user, &granted) {
                if scope.as_ref().is_some_and(|s| s.covers(record.channel_id)) {
                    phi.push(record.id.to_string());
                }
                out.push(self.view(&mut conn, record, level).await?);
            }
        }
        drop(reader);
        let read = PhiRead {
            workspace,
            kind: "documents",
            target: ("workspace", workspace.to_string()),
            ids: phi,
        };
        self.policies.record_phi_reads(actor, vec![read]).await?;
        Ok(out)
    }

    /// Authorizes `action` on `doc` for a read, returning the document and the actor's level.
    async fn readable(
        &self,
        conn: &mut Conn<'_>,
        actor: &Actor,
        doc: DocumentId,
        action: Action,
    ) -> Result<(DocumentRecord, Level), Error> {
        self.auditor
            .authorize_read(&self.store, conn, actor, action, Resource::Document(doc))
            .await?;
        let user = user_of(actor)?;
        let level = rbac::document_level(conn, user, doc)
            .await?
            .ok_or(Error::NotFound("document"))?;
        let record = documents::by_id(conn, doc)
            .await?
            .ok_or(Error::NotFound("document"))?;
        Ok((record, level))
    }

    /// One document.
    pub async fn get(&self, actor: &Actor, doc: DocumentId) -> Result<DocumentView, Error> {
        let mut reader = self.store.reader().await?;
        let mut conn = reader.conn();
        let (record, level) = self
            .readable(&mut conn, actor, doc, Action::ViewDocument)
            .await?;
        let view = self.view(&mut conn, record.clone(), level).await?;
        drop(reader);
        self.audit_phi_read(actor, &record, "document", vec![doc.to_string()])
            .await?;
        Ok(view)
    }

    /// Checks a connection may open `doc` and records the opening; returns the access level.
    pub async fn open(&self, actor: &Actor, doc: DocumentId) -> Result<Level, Error> {
        let (record, level) = {
            let mut reader = self.store.reader().await?;
            let mut conn = reader.conn();
            self.readable(&mut conn, actor, doc, Action::ViewDocument)
                .await?
        };
        let event = Event::by(actor, "document.opened", Outcome::Allowed)
            .target("document", doc)
            .workspace(record.workspace_id)
            .details(serde_json::json!({ "access": level.as_str() }));
        self.auditor.record_alone(&self.store, event).await?;
        Ok(level)
    }

    /// Renames, moves or changes the general access of a document.
    pub async fn update(
        &self,
        actor: &Actor,
        doc: DocumentId,
        changes: Changes,
    ) -> Result<DocumentView, Error> {
        let title = changes
            .title
            .as_deref()
            .map(|t| name("title", t))
            .transpose()?;
        let access = changes
            .general_access
            .as_deref()
            .map(general_access)
            .transpose()?;
        let channel = changes.channel;
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.auditor
                        .authorize(tx, &actor, Action::ManageDocument, Resource::Document(doc))
                        .await?;
                    let mut record = documents::by_id(&mut tx.conn(), doc)
                        .await?
                        .ok_or(Error::NotFound("document"))?;
                    let mut what = Vec::new();
                    if let Some(t) = title {
                        record.title = this
                            .keyring
                            .encrypt(
                                tx,
                                &Scope::Workspace(record.workspace_id),
                                title_aad(&doc.to_string()),
                                t.as_bytes(),
                            )
                            .await?;
                        what.push(DocumentChange::Renamed);
                    }
                    if let Some(c) = channel {
                        if let Some(c) = c {
                            this.check_channel(tx, &actor, record.workspace_id, c)
                                .await?;
                        }
                        record.channel_id = c;
                        what.push(DocumentChange::Moved);
                    }
                    if let Some(a) = access {
                        record.general_access = a;
                        what.push(DocumentChange::Access);
                    }
                    record.updated_at = Utc::now();
                    documents::update_details(&mut tx.conn(), &record).await?;
                    for w in &what {
                        tx.emit(DomainEvent::DocumentChanged {
                            workspace_id: record.workspace_id,
                            document_id: doc,
                            what: *w,
                        });
                    }
                    let event = Event::by(&actor, "document.updated", Outcome::Allowed)
                        .target("document", doc)
                        .workspace(record.workspace_id)
                        .details(serde_json::json!({
                            "changed": what,
                            "general_access": record.general_access,
                            "channel_id": record.channel_id,
                        }));
                    this.auditor.record(tx, event).await?;
                    this.view(&mut tx.conn(), record, Level::Manage).await
                })
            })
            .await
    }

    /// Deletes a document with its content and versions; open connections are closed.
    pub async fn delete(&self, actor: &Actor, doc: DocumentId) -> Result<(), Error> {
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.auditor
                        .authorize(tx, &actor, Action::ManageDocument, Resource::Document(doc))
                        .await?;
                    let record = documents::by_id(&mut tx.conn(), doc)
                        .await?
                        .ok_or(Error::NotFound("document"))?;
                    documents::delete(&mut tx.conn(), doc).await?;
                    tx.emit(DomainEvent::DocumentChanged {
                        workspace_id: record.workspace_id,
                        document_id: doc,
                        what: DocumentChange::Deleted,
                    });
                    let event = Event::by(&actor, "document.deleted", Outcome::Allowed)
                        .target("document", doc)
                        .workspace(record.workspace_id);
                    this.auditor.record(tx, event).await
                })
            })
            .await
    }

    /// The document's content in `format`; recorded as an export.
    pub async fn export(
        &self,
        actor: &Actor,
        doc: DocumentId,
        format: Format,
        version: Option<VersionId>,
    ) -> Result<(String, String), Error> {
        let (record, state, version_name) = {
            let mut reader = self.store.reader().await?;
            let mut conn = reader.conn();
            let (record, _) = self
                .readable(&mut conn, actor, doc, Action::ViewDocument)
                .await?;
            match version {
                Some(v) => {
                    let (name, state) = self.version_state(&mut conn, &record, v).await?;
                    (record, state, Some(name))
                }
                None => (record, Vec::new(), None),
            }
        };
        let state = if version.is_some() {
            state
        } else {
            self.rooms.state(doc).await?
        };
        let loaded = content::doc_from_state(&state).map_err(|e| Error::Internal(e.to_string()))?;
        let body = content::Content::read(&loaded).export(format);
        let event = Event::by(actor, "document.exported", Outcome::Allowed)
            .target("document", doc)
            .workspace(record.workspace_id)
            .details(serde_json::json!({
                "format": format.extension(),
                "version_id": version,
            }));
        self.auditor.record_alone(&self.store, event).await?;
        let id = record.id.to_string();
        let mut conn_reader = self.store.reader().await?;
        let title = self
            .keyring
            .decrypt_text(
                &mut conn_reader.conn(),
                &Scope::Workspace(record.workspace_id),
                title_aad(&id),
                &record.title,
            )
            .await?;
        let base = match version_name {
            Some(v) => format!("{title} ({v})"),
            None => title,
        };
        Ok((body, base))
    }
}
