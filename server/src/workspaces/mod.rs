//! Workspaces: creating them, their members and roles, and invitations to join.
//!
//! This file is [`WorkspaceService`] and the workspace itself (create, list, read, rename);
//! [`members`] its members and the owner and grant rules, [`roles`] its roles, [`invitations`]
//! invitations to join, [`views`] what the API shows. Names, slugs and custom roles are stored
//! encrypted ([`names`]).

mod inventory;
mod invitations;
mod members;
mod names;
mod roles;
mod views;

pub use inventory::INVENTORY;
pub use invitations::{Invitee, NewInvitation};
pub(crate) use members::remove_membership;
pub use names::encrypt_legacy_names;
pub(crate) use names::open_workspace;
pub(crate) use names::{by_slug as workspace_by_slug, find_role};
pub use roles::RoleChange;
pub use views::{
    CreatedInvitation, InvitationPreview, InvitationView, MemberView, RoleView, WorkspaceView,
};

use chrono::Utc;

use crate::audit::{Auditor, Event, Outcome};
use crate::auth::PasswordHasher;
use crate::domain::{Slug, WorkspaceId, WorkspaceName};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::rbac::{self, builtin, Action, Actor, Resource};
use crate::store::workspaces::{self as ws_store, WorkspaceRecord};
use crate::store::{Store, StoreError, Tx};
use roles::role_name;

/// Workspace operations.
#[derive(Clone)]
pub struct WorkspaceService {
    store: Store,
    hasher: PasswordHasher,
    users_can_create: bool,
    auditor: Auditor,
}

fn taken(err: StoreError, code: &'static str, message: &str) -> Error {
    match err {
        StoreError::Constraint(_) => Error::conflict(code, message),
        other => Error::Store(other),
    }
}

impl WorkspaceService {
    /// A service over `store`.
    pub fn new(
        store: Store,
        hasher: PasswordHasher,
        users_can_create: bool,
        auditor: Auditor,
    ) -> WorkspaceService {
        WorkspaceService {
            store,
            hasher,
            users_can_create,
            auditor,
        }
    }

    /// Creates a workspace; the creator becomes its owner.
    pub async fn create(
        &self,
        actor: &Actor,
        name: WorkspaceName,
        slug: Option<Slug>,
    ) -> Result<WorkspaceView, Error> {
        let slug = slug.or_else(|| Slug::from_name(&name));
        let actor = actor.clone();
        let auditor = self.auditor.clone();
        let users_can_create = self.users_can_create;
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    // Decided before anything is written, whichever rule allows it.
                    if users_can_create && actor.user_id().is_some() {
                        rbac::allow_by_configuration(&actor, Action::CreateWorkspace);
                    } else {
                        auditor
                            .authorize(tx, &actor, Action::CreateWorkspace, Resource::System)
                            .await?;
                    }
                    let Some(owner) = actor.user_id() else {
                        return Err(Error::refused(
                            "user_required",
                            "a workspace needs a user as its owner",
                        ));
                    };
                    let Some(slug) = slug else {
                        return Err(Error::refused(
                            "slug_required",
                            "choose a slug: the name gives none",
                        ));
                    };
                    let id = WorkspaceId::generate();
                    let sealed = names::seal_workspace(
                        tx,
                        auditor.keyring(),
                        id,
                        name.as_str(),
                        slug.as_str(),
                    )
                    .await?;
                    let record = WorkspaceRecord {
                        id,
                        name_enc: Some(sealed.name_enc),
                        slug_enc: Some(sealed.slug_enc),
                        slug_index: sealed.slug_index,
                        created_by: Some(owner),
                        created_at: Utc::now(),
                    };
                    ws_store::insert(&mut tx.conn(), &record)
                        .await
                        .map_err(|e| {
                            taken(e, "slug_taken", "a workspace with this slug already exists")
                        })?;
                    ws_store::add_member(
                        &mut tx.conn(),
                        record.id,
                        owner,
                        builtin::OWNER,
                        record.created_at,
                    )
                    .await?;
                    auditor
                        .record(
                            tx,
                            Event::by(&actor, "workspace.create", Outcome::Allowed)
                                .target("workspace", record.id)
                                .workspace(record.id),
                        )
                        .await?;
                    tx.emit(DomainEvent::WorkspaceCreated {
                        workspace_id: record.id,
                        by: owner,
                    });
                    tx.emit(DomainEvent::MemberAdded {
                        workspace_id: record.id,
                        user_id: owner,
                        role_id: builtin::OWNER,
                    });
                    Ok(WorkspaceView {
                        id: record.id,
                        name: name.as_str().into(),
                        slug: slug.as_str().into(),
                        role: Some("owner".into()),
                    })
                })
            })
            .await
    }

    /// The workspaces the actor belongs to.
    pub async fn list_mine(&self, actor: &Actor) -> Result<Vec<WorkspaceView>, Error> {
        let Some(user) = actor.user_id() else {
            return Ok(Vec::new());
        };
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ReadAccount,
                Resource::Account(user),
            )
            .await?;
        let list = ws_store::list_for_user(&mut conn.conn(), user).await?;
        let keyring = self.auditor.keyring();
        let mut out = Vec::with_capacity(list.len());
        for w in list {
            let (name, slug) =
                names::open_workspace(keyring, &mut conn.conn(), &w.workspace).await?;
            let role = names::role_label(
                keyring,
                &mut conn.conn(),
                w.workspace.id,
                w.role_id,
                &w.role,
                w.role_name_enc.as_deref(),
            )
            .await?;
            out.push(WorkspaceView {
                id: w.workspace.id,
                name,
                slug,
                role: Some(role),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// One workspace.
    pub async fn get(&self, actor: &Actor, id: WorkspaceId) -> Result<WorkspaceView, Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ReadWorkspace,
                Resource::Workspace(id),
            )
            .await?;
        let w = ws_store::by_id(&mut conn.conn(), id)
            .await?
            .ok_or(Error::NotFound("workspace"))?;
        let keyring = self.auditor.keyring();
        let role = match actor.user_id() {
            Some(u) => match ws_store::member_role(&mut conn.conn(), id, u).await? {
                Some(r) => Some(role_name(keyring, &mut conn.conn(), r).await?),
                None => None,
            },
            None => None,
        };
        let (name, slug) = names::open_workspace(keyring, &mut conn.conn(), &w).await?;
        Ok(WorkspaceView {
            id: w.id,
            name,
            slug,
            role,
        })
    }

    /// Renames a workspace.
    pub async fn rename(
        &self,
        actor: &Actor,
        id: WorkspaceId,
        name: WorkspaceName,
    ) -> Result<WorkspaceView, Error> {
        let a = actor.clone();
        let auditor = self.auditor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    auditor
                        .authorize(tx, &a, Action::UpdateWorkspace, Resource::Workspace(id))
                        .await?;
                    let name_enc =
                        names::seal_name(tx, auditor.keyring(), id, name.as_str()).await?;
                    if !ws_store::rename(&mut tx.conn(), id, &name_enc).await? {
                        return Err(Error::NotFound("workspace"));
                    }
                    auditor
                        .record(
                            tx,
                            Event::by(&a, "workspace.rename", Outcome::Allowed)
                                .target("workspace", id)
                                .workspace(id),
                        )
                        .await?;
                    Ok::<_, Error>(())
                })
            })
            .await?;
        self.get(actor, id).await
    }
}
