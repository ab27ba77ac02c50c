//! Who may open a document besides its general access: grants to people and roles.

use chrono::Utc;
use uuid::Uuid;

use super::{user_of, DocService, GrantView};
use crate::audit::{Event, Outcome};
use crate::domain::{DocumentId, RoleId, UserId};
use crate::error::Error;
use crate::events::{DocumentChange, DomainEvent};
use crate::rbac::{Action, Actor, Level, Resource};
use crate::store::{documents, roles, workspaces as ws_store, Tx};

/// Who a grant is for.
#[derive(Clone, Copy, Debug)]
pub enum Principal {
    /// One person.
    User(UserId),
    /// Everyone holding a workspace role.
    Role(RoleId),
}

impl Principal {
    fn parts(self) -> (&'static str, Uuid) {
        match self {
            Principal::User(u) => ("user", u.0),
            Principal::Role(r) => ("role", r.0),
        }
    }
}

impl DocService {
    /// Who has been granted access.
    pub async fn grants(&self, actor: &Actor, doc: DocumentId) -> Result<Vec<GrantView>, Error> {
        let mut reader = self.store.reader().await?;
        let mut conn = reader.conn();
        self.readable(&mut conn, actor, doc, Action::ViewDocument)
            .await?;
        Ok(documents::grants(&mut conn, doc)
            .await?
            .into_iter()
            .filter_map(|g| {
                Some(GrantView {
                    level: Level::parse(&g.level)?,
                    principal_kind: g.principal_kind,
                    principal_id: g.principal_id,
                    granted_by: g.granted_by,
                    granted_at: g.granted_at,
                })
            })
            .collect())
    }

    /// Grants `level` to a member or a workspace role (replacing an earlier grant).
    pub async fn grant(
        &self,
        actor: &Actor,
        doc: DocumentId,
        to: Principal,
        level: Level,
    ) -> Result<Vec<GrantView>, Error> {
        let actor2 = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let actor = actor2;
                    this.auditor
                        .authorize(tx, &actor, Action::ManageDocument, Resource::Document(doc))
                        .await?;
                    let by = user_of(&actor)?;
                    let record = documents::by_id(&mut tx.conn(), doc)
                        .await?
                        .ok_or(Error::NotFound("document"))?;
                    match to {
                        Principal::User(u) => {
                            if ws_store::member_role(&mut tx.conn(), record.workspace_id, u)
                                .await?
                                .is_none()
                            {
                                return Err(Error::refused(
                                    "not_a_member",
                                    "documents can be shared only with members of their workspace",
                                ));
                            }
                        }
                        Principal::Role(r) => {
                            let role = roles::by_id(&mut tx.conn(), r)
                                .await?
                                .ok_or(Error::NotFound("role"))?;
                            let usable = role.scope == "workspace"
                                && role.workspace_id.is_none_or(|w| w == record.workspace_id);
                            if !usable {
                                return Err(Error::NotFound("role"));
                            }
                        }
                    }
                    let (kind, id) = to.parts();
                    documents::set_grant(
                        &mut tx.conn(),
                        doc,
                        kind,
                        id,
                        level.as_str(),
                        by,
                        Utc::now(),
                    )
                    .await?;
                    tx.emit(DomainEvent::DocumentChanged {
                        workspace_id: record.workspace_id,
                        document_id: doc,
                        what: DocumentChange::Access,
                    });
                    let event = Event::by(&actor, "document.shared", Outcome::Allowed)
                        .target("document", doc)
                        .workspace(record.workspace_id)
                        .details(serde_json::json!({
                            "principal_kind": kind,
                            "principal_id": id,
                            "level": level.as_str(),
                        }));
                    this.auditor.record(tx, event).await?;
                    Ok::<(), Error>(())
                })
            })
            .await?;
        self.grants(actor, doc).await
    }

    /// Removes a grant.
    pub async fn revoke(
        &self,
        actor: &Actor,
        doc: DocumentId,
        from: Principal,
    ) -> Result<(), Error> {
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
                    let (kind, id) = from.parts();
                    if !documents::remove_grant(&mut tx.conn(), doc, kind, id).await? {
                        return Err(Error::NotFound("grant"));
                    }
                    tx.emit(DomainEvent::DocumentChanged {
                        workspace_id: record.workspace_id,
                        document_id: doc,
                        what: DocumentChange::Access,
                    });
                    let event = Event::by(&actor, "document.unshared", Outcome::Allowed)
                        .target("document", doc)
                        .workspace(record.workspace_id)
                        .details(serde_json::json!({ "principal_kind": kind, "principal_id": id }));
                    this.auditor.record(tx, event).await
                })
            })
            .await
    }
}
