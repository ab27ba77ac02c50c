//! The grant rule: nobody hands out a role holding a permission they do not hold themselves.
//!
//! Every path that gives someone a workspace role (an invitation when it is created and when it
//! is accepted, a role change, a custom role's definition, single sign-on claim mapping) asks
//! [`may_grant`], so a holder of `members.invite` cannot mint admins and an admin cannot take
//! a role an owner defined with `owners.manage`. Taking a role away is held to the same rule:
//! changing or removing a member whose role holds more than the actor is refused, as it always
//! was for the owner role.

use std::collections::HashSet;

use super::{role_permissions, system_permissions, Action, Actor, AuthzError, Decision, Principal};
use crate::domain::{RoleId, UserId, WorkspaceId};
use crate::store::{self, Conn, StoreError};

/// Whether a granter holding `granter` may grant a role holding `role`: `Err` lists, in a
/// stable order, what the role holds that the granter does not.
pub fn may_grant(granter: &HashSet<Action>, role: &HashSet<Action>) -> Result<(), Vec<Action>> {
    let mut missing: Vec<Action> = role.difference(granter).copied().collect();
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort_by_key(|a| a.as_str());
    Err(missing)
}

/// Everything `user` may do in `workspace` now: their system role's actions and, if they are
/// a member, their workspace role's. A deactivated account holds nothing, so what it handed
/// out before (an invitation not yet accepted) grants nothing either.
pub async fn workspace_permissions(
    conn: &mut Conn<'_>,
    user: UserId,
    workspace: WorkspaceId,
) -> Result<HashSet<Action>, StoreError> {
    let active = store::users::by_id(conn, user)
        .await?
        .is_some_and(|u| u.status == "active" && u.erased_at.is_none());
    if !active {
        return Ok(HashSet::new());
    }
    let mut held = system_permissions(conn, user).await?;
    if let Some(role) = store::workspaces::member_role(conn, workspace, user).await? {
        held.extend(role_permissions(conn, role).await?);
    }
    Ok(held)
}

/// [`may_grant`] for `granter` (`None`: Concord itself, which may grant anything) giving the
/// stored role `role` in `workspace`.
pub async fn check_grant(
    conn: &mut Conn<'_>,
    granter: Option<UserId>,
    workspace: WorkspaceId,
    role: RoleId,
) -> Result<Result<(), Vec<Action>>, StoreError> {
    let Some(user) = granter else {
        return Ok(Ok(()));
    };
    let held = workspace_permissions(conn, user, workspace).await?;
    let wanted = role_permissions(conn, role).await?;
    Ok(may_grant(&held, &wanted))
}

/// Decides whether `actor` may grant (or take away) `role` in `workspace`, and records the
/// decision like [`super::authorize`] does.
pub async fn authorize_grant(
    conn: &mut Conn<'_>,
    actor: &Actor,
    workspace: WorkspaceId,
    role: RoleId,
) -> Result<(), AuthzError> {
    let granter = match actor.principal {
        Principal::System => None,
        Principal::User { user_id, .. } => Some(user_id),
        Principal::Bot { bot_id, .. } => Some(bot_id),
    };
    match check_grant(conn, granter, workspace, role).await? {
        Ok(()) => {
            actor.record(Decision::Allowed);
            Ok(())
        }
        Err(missing) => {
            actor.record(Decision::Denied);
            metrics::counter!("concord_authz_denials_total", "action" => "role.grant").increment(1);
            Err(AuthzError::NotGrantable(missing))
        }
    }
}

/// Decides whether `actor` may define a role holding `actions` in `workspace`.
pub async fn authorize_definition(
    conn: &mut Conn<'_>,
    actor: &Actor,
    workspace: WorkspaceId,
    actions: &HashSet<Action>,
) -> Result<(), AuthzError> {
    let held = match actor.principal {
        Principal::System => {
            actor.record(Decision::Allowed);
            return Ok(());
        }
        Principal::User { user_id, .. }
        | Principal::Bot {
            bot_id: user_id, ..
        } => workspace_permissions(conn, user_id, workspace).await?,
    };
    match may_grant(&held, actions) {
        Ok(()) => {
            actor.record(Decision::Allowed);
            Ok(())
        }
        Err(missing) => {
            actor.record(Decision::Denied);
            metrics::counter!("concord_authz_denials_total", "action" => "role.grant").increment(1);
            Err(AuthzError::NotGrantable(missing))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::builtin;

    fn set(actions: &[Action]) -> HashSet<Action> {
        actions.iter().copied().collect()
    }

    fn role(id: RoleId) -> HashSet<Action> {
        set(builtin::ROLES
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.actions)
            .unwrap_or_default())
    }

    #[test]
    fn a_role_is_grantable_only_by_who_holds_all_of_it() {
        let inviter = set(&[Action::ReadWorkspace, Action::InviteMembers]);
        let missing = may_grant(&inviter, &role(builtin::ADMIN)).unwrap_err();
        assert!(missing.contains(&Action::ManageMembers));
        assert!(!missing.contains(&Action::InviteMembers));
        assert!(may_grant(&inviter, &set(&[Action::ReadWorkspace])).is_ok());
        assert!(may_grant(&inviter, &HashSet::new()).is_ok());

        assert!(may_grant(&role(builtin::OWNER), &role(builtin::ADMIN)).is_ok());
        assert_eq!(
            may_grant(&role(builtin::ADMIN), &role(builtin::OWNER)),
            Err(vec![Action::ManageOwners])
        );
        assert!(may_grant(&role(builtin::MEMBER), &role(builtin::GUEST)).is_ok());
        assert!(may_grant(&role(builtin::GUEST), &role(builtin::MEMBER)).is_err());
    }

    #[test]
    fn what_is_missing_comes_in_a_stable_order() {
        let missing = may_grant(&HashSet::new(), &role(builtin::ADMIN)).unwrap_err();
        let names: Vec<&str> = missing.iter().map(|a| a.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }
}
