//! The roles usable in a workspace: listing them, creating custom ones, resolving a name.

use std::collections::BTreeSet;

use chrono::Utc;

use super::members::grant_refused;
use super::names;
use super::views::RoleView;
use super::{taken, WorkspaceService};
use crate::audit::{Event, Outcome};
use crate::domain::{RoleId, RoleName, WorkspaceId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::rbac::{self, builtin, Action, Actor, Resource};
use crate::store::roles::RoleRecord;
use crate::store::{roles, workspaces as store_workspaces, Conn, Tx};

pub(super) async fn role_name(
    keyring: &crate::crypto::Keyring,
    conn: &mut Conn<'_>,
    id: RoleId,
) -> Result<String, Error> {
    names::role_name(keyring, conn, id).await
}

/// Resolves a role name usable in this workspace.
pub(super) async fn workspace_role(
    keyring: &crate::crypto::Keyring,
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    name: &str,
) -> Result<RoleRecord, Error> {
    names::find_role(keyring, conn, workspace, name)
        .await?
        .ok_or_else(|| {
            Error::refused(
                "unknown_role",
                format!("{name:?} is not a role in this workspace"),
            )
        })
}

/// Parses permission names into the workspace actions they name (sorted, once each).
fn workspace_permissions(permissions: &[String]) -> Result<BTreeSet<&'static str>, Error> {
    let mut actions = BTreeSet::new();
    for p in permissions {
        match Action::parse(p) {
            Some(a) if a.workspace_scoped() => {
                actions.insert(a.as_str());
            }
            _ => {
                return Err(Error::refused(
                    "unknown_permission",
                    format!("{p:?} is not a workspace permission"),
                ))
            }
        }
    }
    Ok(actions)
}

fn check_description(description: &str) -> Result<(), Error> {
    if description.chars().count() > 200 {
        return Err(Error::refused(
            "description_too_long",
            "description must be at most 200 characters",
        ));
    }
    Ok(())
}

/// What changes in a custom role (`None`: left as it is).
#[derive(Debug, Default)]
pub struct RoleChange {
    /// A new name.
    pub name: Option<RoleName>,
    /// A new description.
    pub description: Option<String>,
    /// The permissions it grants from now on, exactly.
    pub permissions: Option<Vec<String>>,
}

impl WorkspaceService {
    /// The roles usable in a workspace with their permissions.
    pub async fn roles(&self, actor: &Actor, id: WorkspaceId) -> Result<Vec<RoleView>, Error> {
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
        let mut out = Vec::new();
        for r in roles::for_workspace(&mut conn.conn(), id).await? {
            let permissions = roles::permissions(&mut conn.conn(), r.id).await?;
            let (name, description) =
                names::open_role(self.auditor.keyring(), &mut conn.conn(), &r).await?;
            out.push((
                r.created_at,
                RoleView {
                    id: r.id,
                    name,
                    description,
                    builtin: r.builtin,
                    permissions,
                },
            ));
        }
        // Built-in roles first, then by creation and name (names are decrypted only here).
        out.sort_by(|(at_a, a), (at_b, b)| {
            b.builtin
                .cmp(&a.builtin)
                .then(at_a.cmp(at_b))
                .then(a.name.cmp(&b.name))
                .then(a.id.cmp(&b.id))
        });
        Ok(out.into_iter().map(|(_, view)| view).collect())
    }

    /// Defines a custom role. It may grant only workspace actions the creator holds.
    pub async fn create_role(
        &self,
        actor: &Actor,
        id: WorkspaceId,
        name: RoleName,
        description: String,
        permissions: Vec<String>,
    ) -> Result<RoleView, Error> {
        let actions = workspace_permissions(&permissions)?;
        if builtin::by_name(name.as_str()).is_some() {
            return Err(Error::conflict(
                "role_exists",
                "a built-in role has this name",
            ));
        }
        check_description(&description)?;
        let a = actor.clone();
        let auditor = self.auditor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    auditor
                        .authorize(tx, &a, Action::ManageRoles, Resource::Workspace(id))
                        .await?;
                    // Nobody hands out more than they hold.
                    let granted: std::collections::HashSet<Action> =
                        actions.iter().filter_map(|p| Action::parse(p)).collect();
                    if let Err(refused) =
                        rbac::authorize_definition(&mut tx.conn(), &a, id, &granted).await
                    {
                        return Err(grant_refused(&auditor, tx, &a, id, None, refused).await);
                    }
                    let role_id = RoleId::generate();
                    let sealed = names::seal_role(
                        tx,
                        auditor.keyring(),
                        id,
                        role_id,
                        name.as_str(),
                        &description,
                    )
                    .await?;
                    let record = RoleRecord {
                        id: role_id,
                        scope: "workspace".into(),
                        workspace_id: Some(id),
                        name: sealed.name_index,
                        description: String::new(),
                        name_enc: Some(sealed.name_enc),
                        description_enc: sealed.description_enc,
                        builtin: false,
                        created_at: Utc::now(),
                    };
                    let list: Vec<&str> = actions.iter().copied().collect();
                    roles::put(&mut tx.conn(), &record, &list)
                        .await
                        .map_err(|e| {
                            taken(e, "role_exists", "a role with this name already exists")
                        })?;
                    auditor
                        .record(
                            tx,
                            Event::by(&a, "role.create", Outcome::Allowed)
                                .target("role", record.id)
                                .workspace(id)
                                .details(serde_json::json!({
                                    "name": name.as_str(),
                                    "permissions": list,
                                })),
                        )
                        .await?;
                    tx.emit(DomainEvent::RoleCreated {
                        workspace_id: id,
                        role_id: record.id,
                    });
                    Ok(RoleView {
                        id: record.id,
                        name: name.as_str().into(),
                        description,
                        builtin: false,
                        permissions: list.into_iter().map(str::to_owned).collect(),
                    })
                })
            })
            .await
    }

    /// Changes a custom role's name, description or permissions (built-in roles cannot be
    /// changed). As when creating one, the permissions it grants afterwards must all be held
    /// by whoever changes it; everyone holding the role has the new permissions at their next
    /// request. Audited with the permissions before and after.
    pub async fn update_role(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        role_id: RoleId,
        change: RoleChange,
    ) -> Result<RoleView, Error> {
        if change.name.is_none() && change.description.is_none() && change.permissions.is_none() {
            return Err(Error::refused(
                "nothing_to_change",
                "give a name, a description or permissions to change",
            ));
        }
        let actions = change
            .permissions
            .as_deref()
            .map(workspace_permissions)
            .transpose()?;
        if let Some(description) = &change.description {
            check_description(description)?;
        }
        if let Some(name) = &change.name {
            if builtin::by_name(name.as_str()).is_some() {
                return Err(Error::conflict(
                    "role_exists",
                    "a built-in role has this name",
                ));
            }
        }
        let a = actor.clone();
        let auditor = self.auditor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    auditor
                        .authorize(tx, &a, Action::ManageRoles, Resource::Workspace(workspace))
                        .await?;
                    let Some(mut record) = roles::by_id(&mut tx.conn(), role_id)
                        .await?
                        .filter(|r| r.workspace_id == Some(workspace) || r.builtin)
                    else {
                        return Err(Error::NotFound("role"));
                    };
                    if record.builtin {
                        return Err(Error::refused(
                            "builtin_role",
                            "built-in roles cannot be changed; define a custom role instead",
                        ));
                    }
                    let before = roles::permissions(&mut tx.conn(), role_id).await?;
                    let after: Vec<&str> = match &actions {
                        Some(actions) => actions.iter().copied().collect(),
                        None => before.iter().map(String::as_str).collect(),
                    };
                    // Nobody hands out more than they hold, nor takes away what they do not
                    // hold (as when changing someone's role): the role before and after must
                    // both lie within the editor's own permissions.
                    let touched: std::collections::HashSet<Action> = after
                        .iter()
                        .copied()
                        .chain(before.iter().map(String::as_str))
                        .filter_map(Action::parse)
                        .collect();
                    if let Err(refused) =
                        rbac::authorize_definition(&mut tx.conn(), &a, workspace, &touched).await
                    {
                        return Err(grant_refused(
                            &auditor,
                            tx,
                            &a,
                            workspace,
                            Some(role_id),
                            refused,
                        )
                        .await);
                    }
                    let (old_name, old_description) =
                        names::open_role(auditor.keyring(), &mut tx.conn(), &record).await?;
                    let name = change
                        .name
                        .as_ref()
                        .map(|n| n.as_str().to_owned())
                        .unwrap_or_else(|| old_name.clone());
                    let description = change
                        .description
                        .clone()
                        .unwrap_or_else(|| old_description.clone());
                    let sealed = names::seal_role(
                        tx,
                        auditor.keyring(),
                        workspace,
                        role_id,
                        &name,
                        &description,
                    )
                    .await?;
                    record.name = sealed.name_index;
                    record.name_enc = Some(sealed.name_enc);
                    record.description_enc = sealed.description_enc;
                    roles::put(&mut tx.conn(), &record, &after)
                        .await
                        .map_err(|e| {
                            taken(e, "role_exists", "a role with this name already exists")
                        })?;
                    // Whoever holds the role now holds other permissions: open documents
                    // check their access again, as when a member's role changes.
                    for user in
                        store_workspaces::holders_of(&mut tx.conn(), workspace, role_id).await?
                    {
                        tx.emit(DomainEvent::MemberRoleChanged {
                            workspace_id: workspace,
                            user_id: user,
                            role_id,
                        });
                    }
                    auditor
                        .record(
                            tx,
                            Event::by(&a, "role.update", Outcome::Allowed)
                                .target("role", role_id)
                                .workspace(workspace)
                                .details(serde_json::json!({
                                    "name": { "before": old_name, "after": name },
                                    "description_changed": description != old_description,
                                    "permissions": { "before": before, "after": after },
                                })),
                        )
                        .await?;
                    Ok(RoleView {
                        id: role_id,
                        name,
                        description,
                        builtin: false,
                        permissions: after.into_iter().map(str::to_owned).collect(),
                    })
                })
            })
            .await
    }
}
