//! A workspace's members: listing them, changing their role and removing them, under the
//! owner and grant rules (every refusal audited).

use super::names;
use super::roles::workspace_role;
use super::views::MemberView;
use super::WorkspaceService;
use crate::audit::{Auditor, Event, Outcome};
use crate::domain::{RoleId, UserId, WorkspaceId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::rbac::{self, builtin, Action, Actor, AuthzError, Resource};
use crate::store::{workspaces as ws_store, Conn, Tx};

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

impl WorkspaceService {
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

    /// One member of a workspace, read and decrypted alone (`NotFound("member")` for someone
    /// who is not one); the same decision as [`WorkspaceService::members`].
    pub async fn member(
        &self,
        actor: &Actor,
        id: WorkspaceId,
        user: UserId,
    ) -> Result<MemberView, Error> {
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
        let Some(m) = ws_store::member(&mut conn.conn(), id, user).await? else {
            return Err(Error::NotFound("member"));
        };
        member_view(self.auditor.keyring(), &mut conn.conn(), id, m).await
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
pub(super) async fn check_grant(
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
pub(super) async fn grant_refused(
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
            by: None,
        });
    }
    Ok(true)
}
