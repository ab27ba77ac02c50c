//! Workspaces: creating them, their members and roles, and invitations to join.
//!
//! Names, slugs and custom roles are stored encrypted ([`names`]).

mod inventory;
mod names;

pub(crate) use names::{by_slug as workspace_by_slug, find_role};
pub use inventory::INVENTORY;
pub use names::encrypt_legacy_names;

use std::collections::BTreeSet;
use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::accounts::{insert_user, NewAccount};
use crate::audit::{Auditor, Event, Outcome};
use crate::auth::{random_token, token_hash, PasswordHasher};
use crate::crypto::{Aad, Scope};
use crate::domain::{
    Email, InvitationId, RoleId, RoleName, Slug, UserId, WorkspaceId, WorkspaceName,
};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::rbac::{self, builtin, Action, Actor, AuthzError, Resource};
use crate::store::invitations::{self, InvitationRecord};
use crate::store::roles::{self, RoleRecord};
use crate::store::workspaces::{self as ws_store, WorkspaceRecord};
use crate::store::{Conn, Store, StoreError, Tx};

/// A workspace as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct WorkspaceView {
    /// Its id.
    pub id: WorkspaceId,
    /// Name.
    pub name: String,
    /// URL handle.
    pub slug: String,
    /// The caller's role in it, if a member.
    pub role: Option<String>,
}

/// A member as other members see them.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    /// The account.
    pub user_id: UserId,
    /// Display name.
    pub display_name: String,
    /// Email.
    pub email: String,
    /// Role name.
    pub role: String,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
}

/// A role usable in a workspace.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RoleView {
    /// Its id.
    pub id: RoleId,
    /// Name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Built in (not editable) or custom.
    pub builtin: bool,
    /// The actions it grants.
    pub permissions: Vec<String>,
}

/// An invitation as its workspace's admins see it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationView {
    /// Its id.
    pub id: InvitationId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Only this email may accept, if set.
    pub email: Option<String>,
    /// Role on joining.
    pub role: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// How many may accept.
    pub max_uses: i64,
    /// How many did.
    pub uses: i64,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// A new invitation with its secret token, shown once.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedInvitation {
    /// The invitation.
    #[serde(flatten)]
    pub invitation: InvitationView,
    /// The secret that accepts it; shown only now.
    pub token: String,
    /// A link to hand to the invitee.
    pub url: String,
    /// How the invitation reaches the invitee: `shown` (no mail server is configured).
    pub delivery: &'static str,
}

/// What an invitee sees before accepting.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationPreview {
    /// The workspace's name.
    pub workspace_name: String,
    /// The email it is for, if restricted.
    pub email: Option<String>,
    /// Role on joining.
    pub role: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// The parsed request for an invitation.
pub struct NewInvitation {
    /// Restrict to this email.
    pub email: Option<Email>,
    /// Role name; `member` by default.
    pub role: Option<String>,
    /// Lifetime in hours (1 to 720).
    pub expires_in_hours: i64,
    /// How many may accept (1 to 1000).
    pub max_uses: i64,
}

/// Who accepts an invitation: a signed-in user, or a new account.
pub enum Invitee {
    /// An existing, signed-in account.
    Existing(Actor),
    /// A new account created on acceptance.
    New(NewAccount),
}

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

async fn role_name(
    keyring: &crate::crypto::Keyring,
    conn: &mut Conn<'_>,
    id: RoleId,
) -> Result<String, Error> {
    names::role_name(keyring, conn, id).await
}

/// Resolves a role name usable in this workspace.
async fn workspace_role(
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

fn invitation_aad(row: &str) -> Aad<'_> {
    Aad {
        table: "invitations",
        row,
        column: "email",
    }
}

async fn invitation_email(
    keyring: &crate::crypto::Keyring,
    conn: &mut Conn<'_>,
    inv: &InvitationRecord,
) -> Result<Option<String>, Error> {
    let Some(ct) = &inv.email_enc else {
        return Ok(None);
    };
    let row = inv.id.to_string();
    Ok(Some(
        keyring
            .decrypt_text(
                conn,
                &Scope::Workspace(inv.workspace_id),
                invitation_aad(&row),
                ct,
            )
            .await?,
    ))
}

async fn member_view(
    keyring: &crate::crypto::Keyring,
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    m: ws_store::MemberRecord,
) -> Result<MemberView, Error> {
    let role = names::role_label(
        keyring,
        conn,
        workspace,
        m.role_id,
        &m.role,
        m.role_name_enc.as_deref(),
    )
    .await?;
    let (email, display_name) = crate::accounts::decrypt_profile(
        keyring,
        conn,
        m.user_id,
        m.email_enc.as_deref(),
        m.display_name_enc.as_deref(),
    )
    .await?;
    Ok(MemberView {
        user_id: m.user_id,
        display_name,
        email,
        role,
        joined_at: m.joined_at,
    })
}

async fn invitation_view(
    keyring: &crate::crypto::Keyring,
    conn: &mut Conn<'_>,
    inv: InvitationRecord,
) -> Result<InvitationView, Error> {
    Ok(InvitationView {
        email: invitation_email(keyring, conn, &inv).await?,
        id: inv.id,
        workspace_id: inv.workspace_id,
        role: role_name(keyring, conn, inv.role_id).await?,
        expires_at: inv.expires_at,
        max_uses: inv.max_uses,
        uses: inv.uses,
        revoked: inv.revoked_at.is_some(),
    })
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

    /// A workspace's members.
    pub async fn members(&self, actor: &Actor, id: WorkspaceId) -> Result<Vec<MemberView>, Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ReadMembers,
                Resource::Workspace(id),
            )
            .await?;
        let list = ws_store::members(&mut conn.conn(), id).await?;
        let mut out = Vec::with_capacity(list.len());
        for m in list {
            out.push(member_view(self.auditor.keyring(), &mut conn.conn(), id, m).await?);
        }
        Ok(out)
    }

    /// Changes a member's role. Granting or taking the owner role needs `owners.manage`,
    /// and a workspace never loses its last owner.
    pub async fn set_member_role(
        &self,
        actor: &Actor,
        id: WorkspaceId,
        user: UserId,
        role: String,
    ) -> Result<MemberView, Error> {
        let a = actor.clone();
        let auditor = self.auditor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    auditor
                        .authorize(tx, &a, Action::ManageMembers, Resource::Workspace(id))
                        .await?;
                    let new_role =
                        workspace_role(auditor.keyring(), &mut tx.conn(), id, &role).await?;
                    let Some(current) = ws_store::member_role(&mut tx.conn(), id, user).await?
                    else {
                        return Err(Error::NotFound("member"));
                    };
                    check_owner_change(&auditor, tx, &a, id, user, current, Some(new_role.id))
                        .await?;
                    // Nobody gives a role, or takes one away, holding more than they hold:
                    // so nobody raises themselves either.
                    if new_role.id != current {
                        check_grant(&auditor, tx, &a, id, current).await?;
                        check_grant(&auditor, tx, &a, id, new_role.id).await?;
                    }
                    ws_store::set_member_role(&mut tx.conn(), id, user, new_role.id).await?;
                    auditor
                        .record(
                            tx,
                            Event::by(&a, "member.role.set", Outcome::Allowed)
                                .target("user", user)
                                .workspace(id)
                                .details(serde_json::json!({ "role": role })),
                        )
                        .await?;
                    tx.emit(DomainEvent::MemberRoleChanged {
                        workspace_id: id,
                        user_id: user,
                        role_id: new_role.id,
                    });
                    let members = ws_store::members(&mut tx.conn(), id).await?;
                    let m = members
                        .into_iter()
                        .find(|m| m.user_id == user)
                        .ok_or(Error::NotFound("member"))?;
                    member_view(auditor.keyring(), &mut tx.conn(), id, m).await
                })
            })
            .await
    }

    /// Removes a member (or lets a member leave).
    pub async fn remove_member(
        &self,
        actor: &Actor,
        id: WorkspaceId,
        user: UserId,
    ) -> Result<(), Error> {
        let a = actor.clone();
        let auditor = self.auditor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    if a.user_id() == Some(user) {
                        auditor
                            .authorize(tx, &a, Action::ReadWorkspace, Resource::Workspace(id))
                            .await?;
                    } else {
                        auditor
                            .authorize(tx, &a, Action::ManageMembers, Resource::Workspace(id))
                            .await?;
                    }
                    let Some(current) = ws_store::member_role(&mut tx.conn(), id, user).await?
                    else {
                        return Err(Error::NotFound("member"));
                    };
                    check_owner_change(&auditor, tx, &a, id, user, current, None).await?;
                    if a.user_id() != Some(user) {
                        check_grant(&auditor, tx, &a, id, current).await?;
                    }
                    remove_membership(tx, id, user).await?;
                    auditor
                        .record(
                            tx,
                            Event::by(&a, "member.remove", Outcome::Allowed)
                                .target("user", user)
                                .workspace(id),
                        )
                        .await?;
                    tx.emit(DomainEvent::MemberRemoved {
                        workspace_id: id,
                        user_id: user,
                    });
                    Ok(())
                })
            })
            .await
    }

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
        let mut actions = BTreeSet::new();
        for p in &permissions {
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
        if builtin::by_name(name.as_str()).is_some() {
            return Err(Error::conflict(
                "role_exists",
                "a built-in role has this name",
            ));
        }
        if description.chars().count() > 200 {
            return Err(Error::refused(
                "description_too_long",
                "description must be at most 200 characters",
            ));
        }
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

    /// Creates an invitation; the token is returned once, with a link.
    pub async fn invite(
        &self,
        actor: &Actor,
        id: WorkspaceId,
        req: NewInvitation,
        base_url: &str,
    ) -> Result<CreatedInvitation, Error> {
        if !(1..=720).contains(&req.expires_in_hours) {
            return Err(Error::refused(
                "invalid_expiry",
                "expires_in_hours must be between 1 and 720",
            ));
        }
        if !(1..=1000).contains(&req.max_uses) {
            return Err(Error::refused(
                "invalid_max_uses",
                "max_uses must be between 1 and 1000",
            ));
        }
        let token = random_token();
        let hash = token_hash(&token);
        let a = actor.clone();
        let auditor = self.auditor.clone();
        let view = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    auditor
                        .authorize(tx, &a, Action::InviteMembers, Resource::Workspace(id))
                        .await?;
                    let role = workspace_role(
                        auditor.keyring(),
                        &mut tx.conn(),
                        id,
                        req.role.as_deref().unwrap_or("member"),
                    )
                    .await?;
                    if role.id == builtin::OWNER {
                        auditor
                            .authorize(tx, &a, Action::ManageOwners, Resource::Workspace(id))
                            .await?;
                    }
                    check_grant(&auditor, tx, &a, id, role.id).await?;
                    let Some(created_by) = a.user_id() else {
                        return Err(Error::refused(
                            "user_required",
                            "invitations are created by users",
                        ));
                    };
                    let now = Utc::now();
                    let invitation_id = InvitationId::generate();
                    let email_enc = match &req.email {
                        Some(email) => {
                            let row = invitation_id.to_string();
                            Some(
                                auditor
                                    .keyring()
                                    .encrypt(
                                        tx,
                                        &Scope::Workspace(id),
                                        invitation_aad(&row),
                                        email.as_str().as_bytes(),
                                    )
                                    .await?,
                            )
                        }
                        None => None,
                    };
                    let record = InvitationRecord {
                        id: invitation_id,
                        workspace_id: id,
                        email_index: req
                            .email
                            .as_ref()
                            .map(|e| auditor.keyring().email_index(&e.lookup_key())),
                        email_enc,
                        role_id: role.id,
                        created_by,
                        created_at: now,
                        expires_at: now + Duration::hours(req.expires_in_hours),
                        max_uses: if req.email.is_some() { 1 } else { req.max_uses },
                        uses: 0,
                        revoked_at: None,
                    };
                    invitations::insert(&mut tx.conn(), &record, &hash).await?;
                    auditor
                        .record(
                            tx,
                            Event::by(&a, "invitation.create", Outcome::Allowed)
                                .target("invitation", record.id)
                                .workspace(id)
                                .details(serde_json::json!({
                                    "role": req.role.as_deref().unwrap_or("member"),
                                    "restricted_to_email": record.email_index.is_some(),
                                    "max_uses": record.max_uses,
                                })),
                        )
                        .await?;
                    tx.emit(DomainEvent::InvitationCreated {
                        workspace_id: id,
                        invitation_id: record.id,
                    });
                    invitation_view(auditor.keyring(), &mut tx.conn(), record).await
                })
            })
            .await?;
        let url = format!("{base_url}/invite/{token}");
        Ok(CreatedInvitation {
            invitation: view,
            token,
            url,
            delivery: "shown",
        })
    }

    /// A workspace's invitations.
    pub async fn invitations(
        &self,
        actor: &Actor,
        id: WorkspaceId,
    ) -> Result<Vec<InvitationView>, Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::InviteMembers,
                Resource::Workspace(id),
            )
            .await?;
        let mut out = Vec::new();
        for inv in invitations::for_workspace(&mut conn.conn(), id).await? {
            out.push(invitation_view(self.auditor.keyring(), &mut conn.conn(), inv).await?);
        }
        Ok(out)
    }

    /// Revokes an invitation.
    pub async fn revoke_invitation(
        &self,
        actor: &Actor,
        id: WorkspaceId,
        invitation: InvitationId,
    ) -> Result<(), Error> {
        let a = actor.clone();
        let auditor = self.auditor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    auditor
                        .authorize(tx, &a, Action::InviteMembers, Resource::Workspace(id))
                        .await?;
                    if !invitations::revoke(&mut tx.conn(), id, invitation, Utc::now()).await? {
                        return Err(Error::NotFound("invitation"));
                    }
                    auditor
                        .record(
                            tx,
                            Event::by(&a, "invitation.revoke", Outcome::Allowed)
                                .target("invitation", invitation)
                                .workspace(id),
                        )
                        .await?;
                    tx.emit(DomainEvent::InvitationRevoked {
                        workspace_id: id,
                        invitation_id: invitation,
                    });
                    Ok(())
                })
            })
            .await
    }

    /// What an invitation offers; anyone holding the token may look.
    pub async fn preview(&self, token: &str) -> Result<InvitationPreview, Error> {
        let mut conn = self.store.reader().await?;
        let inv = live_invitation(&mut conn.conn(), token).await?;
        let workspace = ws_store::by_id(&mut conn.conn(), inv.workspace_id)
            .await?
            .ok_or(Error::NotFound("invitation"))?;
        let keyring = self.auditor.keyring();
        let (workspace_name, _) =
            names::open_workspace(keyring, &mut conn.conn(), &workspace).await?;
        Ok(InvitationPreview {
            workspace_name,
            email: invitation_email(keyring, &mut conn.conn(), &inv).await?,
            role: role_name(keyring, &mut conn.conn(), inv.role_id).await?,
            expires_at: inv.expires_at,
        })
    }

    /// Fails unless `token` names a live invitation. Cheap (one read), so it runs before
    /// anything costly, such as checking or hashing a new account's password.
    pub async fn check_invitation(&self, token: &str) -> Result<(), Error> {
        let mut conn = self.store.reader().await?;
        live_invitation(&mut conn.conn(), token).await.map(|_| ())
    }

    /// Accepts an invitation, as a signed-in user or by creating an account (from the client
    /// at `ip`). A new account's password is hashed only once the token has been checked.
    pub async fn accept(
        &self,
        token: &str,
        invitee: Invitee,
        ip: Option<IpAddr>,
    ) -> Result<(WorkspaceView, UserId), Error> {
        let hash = match &invitee {
            Invitee::New(account) => {
                self.check_invitation(token).await?;
                Some(self.hasher.hash(&account.password).await?)
            }
            Invitee::Existing(_) => None,
        };
        let token = token.to_owned();
        let auditor = self.auditor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let inv = live_invitation(&mut tx.conn(), &token).await?;
                    let (user, email_lookup) = match &invitee {
                        Invitee::Existing(actor) => {
                            let Some(user) = actor.user_id() else {
                                return Err(Error::unauthenticated(
                                    "unauthenticated",
                                    "sign in first",
                                ));
                            };
                            auditor
                                .authorize(tx, actor, Action::ReadAccount, Resource::Account(user))
                                .await?;
                            let record = crate::store::users::by_id(&mut tx.conn(), user)
                                .await?
                                .ok_or(Error::NotFound("user"))?;
                            let (email, _) = crate::accounts::decrypt_profile(
                                auditor.keyring(),
                                &mut tx.conn(),
                                user,
                                record.email_enc.as_deref(),
                                None,
                            )
                            .await?;
                            (user, email.to_lowercase())
                        }
                        Invitee::New(account) => (UserId::generate(), account.email.lookup_key()),
                    };
                    let email_index = auditor.keyring().email_index(&email_lookup);
                    if inv.email_index.as_ref().is_some_and(|e| *e != email_index) {
                        return Err(Error::refused(
                            "invitation_email_mismatch",
                            "this invitation is for another email address",
                        ));
                    }
                    if let (Invitee::New(account), Some(hash)) = (&invitee, &hash) {
                        insert_user(tx, auditor.keyring(), user, account, None, hash, None).await?;
                        auditor
                            .record(
                                tx,
                                Event::anonymous("user.create", Outcome::Allowed, ip)
                                    .as_user(user, None)
                                    .target("user", user)
                                    .workspace(inv.workspace_id)
                                    .details(serde_json::json!({
                                        "system_role": null,
                                        "invitation": inv.id.to_string(),
                                    })),
                            )
                            .await?;
                    }
                    if ws_store::member_role(&mut tx.conn(), inv.workspace_id, user)
                        .await?
                        .is_some()
                    {
                        return Err(Error::conflict(
                            "already_member",
                            "you are already a member of this workspace",
                        ));
                    }
                    // The role is granted now, by whoever invited: they must still hold it all.
                    let grantable = rbac::check_grant(
                        &mut tx.conn(),
                        Some(inv.created_by),
                        inv.workspace_id,
                        inv.role_id,
                    )
                    .await?;
                    if grantable.is_err() {
                        return Err(Error::gone(
                            "invitation_not_grantable",
                            "whoever sent this invitation can no longer grant its role; ask for a new invitation",
                        ));
                    }
                    if !invitations::consume(&mut tx.conn(), inv.id).await? {
                        return Err(Error::gone(
                            "invitation_used",
                            "this invitation has been used up or revoked",
                        ));
                    }
                    ws_store::add_member(
                        &mut tx.conn(),
                        inv.workspace_id,
                        user,
                        inv.role_id,
                        Utc::now(),
                    )
                    .await?;
                    let actor = match &invitee {
                        Invitee::Existing(actor) => {
                            Event::by(actor, "invitation.accept", Outcome::Allowed)
                        }
                        Invitee::New(_) => {
                            Event::anonymous("invitation.accept", Outcome::Allowed, ip)
                                .as_user(user, None)
                        }
                    };
                    auditor
                        .record(
                            tx,
                            actor
                                .target("invitation", inv.id)
                                .workspace(inv.workspace_id)
                                .details(serde_json::json!({
                                    "new_account": matches!(invitee, Invitee::New(_)),
                                })),
                        )
                        .await?;
                    tx.emit(DomainEvent::MemberAdded {
                        workspace_id: inv.workspace_id,
                        user_id: user,
                        role_id: inv.role_id,
                    });
                    let w = ws_store::by_id(&mut tx.conn(), inv.workspace_id)
                        .await?
                        .ok_or(Error::NotFound("workspace"))?;
                    let role = role_name(auditor.keyring(), &mut tx.conn(), inv.role_id).await?;
                    let (name, slug) =
                        names::open_workspace(auditor.keyring(), &mut tx.conn(), &w).await?;
                    Ok((
                        WorkspaceView {
                            id: w.id,
                            name,
                            slug,
                            role: Some(role),
                        },
                        user,
                    ))
                })
            })
            .await
    }
}

async fn live_invitation(conn: &mut Conn<'_>, token: &str) -> Result<InvitationRecord, Error> {
    if token.is_empty() || token.len() > 256 {
        return Err(Error::NotFound("invitation"));
    }
    let inv = invitations::by_token_hash(conn, &token_hash(token))
        .await?
        .ok_or(Error::NotFound("invitation"))?;
    if inv.revoked_at.is_some() {
        return Err(Error::gone(
            "invitation_revoked",
            "this invitation was revoked",
        ));
    }
    if inv.expires_at <= Utc::now() {
        return Err(Error::gone(
            "invitation_expired",
            "this invitation has expired",
        ));
    }
    if inv.uses >= inv.max_uses {
        return Err(Error::gone(
            "invitation_used",
            "this invitation has been used up",
        ));
    }
    Ok(inv)
}

/// Owner changes need `owners.manage` (except an owner leaving); the last owner stays.
async fn check_owner_change(
    auditor: &Auditor,
    tx: &mut Tx,
    actor: &Actor,
    workspace: WorkspaceId,
    member: UserId,
    current: RoleId,
    new: Option<RoleId>,
) -> Result<(), Error> {
    let touches_owner = current == builtin::OWNER || new == Some(builtin::OWNER);
    if !touches_owner || new == Some(current) {
        return Ok(());
    }
    let leaving = new.is_none() && actor.user_id() == Some(member);
    if !leaving {
        auditor
            .authorize(
                tx,
                actor,
                Action::ManageOwners,
                Resource::Workspace(workspace),
            )
            .await?;
    }
    if current == builtin::OWNER
        && ws_store::count_with_role(&mut tx.conn(), workspace, builtin::OWNER).await? <= 1
    {
        return Err(Error::refused(
            "last_owner",
            "a workspace must keep at least one owner",
        ));
    }
    Ok(())
}

/// The grant rule ([`rbac::may_grant`]) for `actor` giving or taking away `role`; a refusal
/// is audited.
async fn check_grant(
    auditor: &Auditor,
    tx: &mut Tx,
    actor: &Actor,
    workspace: WorkspaceId,
    role: RoleId,
) -> Result<(), Error> {
    match rbac::authorize_grant(&mut tx.conn(), actor, workspace, role).await {
        Ok(()) => Ok(()),
        Err(refused) => {
            Err(grant_refused(auditor, tx, actor, workspace, Some(role), refused).await)
        }
    }
}

/// Records a refused grant (kept although the write fails) and returns the error to answer.
async fn grant_refused(
    auditor: &Auditor,
    tx: &mut Tx,
    actor: &Actor,
    workspace: WorkspaceId,
    role: Option<RoleId>,
    refused: AuthzError,
) -> Error {
    let AuthzError::NotGrantable(missing) = &refused else {
        return refused.into();
    };
    let missing: Vec<&str> = missing.iter().map(|a| a.as_str()).collect();
    let mut event = Event::by(actor, "permission.denied", Outcome::Denied)
        .workspace(workspace)
        .details(serde_json::json!({ "permission": "role.grant", "missing": missing }));
    if let Some(role) = role {
        event = event.target("role", role);
    }
    match auditor.record_kept(tx, event).await {
        Ok(()) => refused.into(),
        Err(e) => e,
    }
}

/// Removes `user` from `workspace` and from every channel in it (so their events stop at
/// once), emitting the channel events; the caller audits and emits the membership event.
/// Returns whether they were a member.
pub(crate) async fn remove_membership(
    tx: &mut Tx,
    workspace: WorkspaceId,
    user: UserId,
) -> Result<bool, Error> {
    if !ws_store::remove_member(&mut tx.conn(), workspace, user).await? {
        return Ok(false);
    }
    for channel_id in
        crate::store::channels::remove_from_workspace(&mut tx.conn(), workspace, user).await?
    {
        tx.emit(DomainEvent::ChannelMemberRemoved {
            workspace_id: workspace,
            channel_id,
            user_id: user,
        });
    }
    Ok(true)
}
