//! Claim mapping: a claim's values (such as `groups`) become workspace memberships.
//!
//! The mapping is re-applied at every sign-in, so the provider stays the source of truth:
//! a value that appears grants its role, one that disappears takes it away. Only memberships
//! the mapping granted (`source = 'sso:<provider>'`) are changed or removed; a membership
//! someone granted by hand is left alone. For one workspace the first matching rule wins.
//!
//! The mapping grants roles on nobody's behalf, so it is held to the grant rule
//! ([`rbac::may_grant`]) with a fixed ceiling: every workspace permission but `owners.manage`.
//! A rule naming `owner`, or a custom role holding `owners.manage`, grants nothing.

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;

use crate::audit::{Auditor, Event, Outcome};
use crate::config::ClaimMappingConfig;
use crate::domain::{RoleId, UserId, WorkspaceId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::rbac::{self, builtin, Action};
use crate::store::workspaces as ws_store;
use crate::store::Tx;

/// A (workspace, role) the claims ask for, still by name; resolved inside the write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Grant {
    /// Workspace slug or id.
    pub workspace: String,
    /// Role name.
    pub role: String,
}

/// The string values of a claim: a string is one value, a list its strings, anything else none.
fn claim_values(claims: &serde_json::Map<String, serde_json::Value>, name: &str) -> Vec<String> {
    match claims.get(name) {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The grants the rules derive from the claims, in rule order.
pub(crate) fn desired_grants(
    mapping: Option<&ClaimMappingConfig>,
    claims: &serde_json::Map<String, serde_json::Value>,
) -> Option<Vec<Grant>> {
    let mapping = mapping?;
    let values = claim_values(claims, &mapping.claim);
    Some(
        mapping
            .rules
            .iter()
            .filter(|rule| values.contains(&rule.value))
            .map(|rule| Grant {
                workspace: rule.workspace.clone(),
                role: rule.role.clone(),
            })
            .collect(),
    )
}

/// Brings `user`'s memberships from `source` in line with `grants` (`None`: no mapping is
/// configured, nothing changes), emitting a membership event per change.
pub(crate) async fn apply(
    tx: &mut Tx,
    auditor: &Auditor,
    user: UserId,
    source: &str,
    grants: &Option<Vec<Grant>>,
) -> Result<(), Error> {
    let record = |action: &'static str, workspace: WorkspaceId, role: Option<RoleId>| {
        Event::anonymous(action, Outcome::Allowed, None)
            .target("user", user)
            .workspace(workspace)
            .subject(user)
            .details(serde_json::json!({ "source": source, "role_id": role }))
    };
    let Some(grants) = grants else {
        return Ok(());
    };
    let mut desired: BTreeMap<WorkspaceId, RoleId> = BTreeMap::new();
    for grant in grants {
        let Some((workspace, role)) = resolve(tx, auditor.keyring(), grant).await? else {
            continue;
        };
        desired.entry(workspace).or_insert(role);
    }
    let now = Utc::now();
    for (&workspace, &role) in &desired {
        match ws_store::membership(&mut tx.conn(), workspace, user).await? {
            None => {
                ws_store::add_member_from(&mut tx.conn(), workspace, user, role, source, now)
                    .await?;
                auditor
                    .record(tx, record("member.add", workspace, Some(role)))
                    .await?;
                tx.emit(DomainEvent::MemberAdded {
                    workspace_id: workspace,
                    user_id: user,
                    role_id: role,
                });
            }
            Some((current, from)) if from == source && current != role => {
                ws_store::set_member_role(&mut tx.conn(), workspace, user, role).await?;
                auditor
                    .record(tx, record("member.role.set", workspace, Some(role)))
                    .await?;
                tx.emit(DomainEvent::MemberRoleChanged {
                    workspace_id: workspace,
                    user_id: user,
                    role_id: role,
                });
            }
            Some(_) => {}
        }
    }
    for (workspace, _) in ws_store::memberships_from(&mut tx.conn(), user, source).await? {
        if !desired.contains_key(&workspace)
            && crate::workspaces::remove_membership(tx, workspace, user).await?
        {
            auditor
                .record(tx, record("member.remove", workspace, None))
                .await?;
            tx.emit(DomainEvent::MemberRemoved {
                workspace_id: workspace,
                user_id: user,
            });
        }
    }
    Ok(())
}

/// The workspace and role a grant names; `None` (logged) if either does not exist.
async fn resolve(
    tx: &mut Tx,
    keyring: &crate::crypto::Keyring,
    grant: &Grant,
) -> Result<Option<(WorkspaceId, RoleId)>, Error> {
    let workspace = match grant.workspace.parse::<WorkspaceId>() {
        Ok(id) => ws_store::by_id(&mut tx.conn(), id).await?,
        Err(_) => {
            crate::workspaces::workspace_by_slug(keyring, &mut tx.conn(), &grant.workspace).await?
        }
    };
    let Some(workspace) = workspace else {
        tracing::warn!(workspace = %grant.workspace, "claim mapping names a workspace that does not exist");
        return Ok(None);
    };
    let role =
        crate::workspaces::find_role(keyring, &mut tx.conn(), workspace.id, &grant.role).await?;
    match role {
        Some(role) => {
            let holds = rbac::role_permissions(&mut tx.conn(), role.id).await?;
            if !mapping_may_grant(role.id, &holds) {
                tracing::warn!(workspace = %grant.workspace, role = %grant.role, "claim mapping names a role that manages owners; it grants nothing");
                return Ok(None);
            }
            Ok(Some((workspace.id, role.id)))
        }
        None => {
            tracing::warn!(workspace = %grant.workspace, role = %grant.role, "claim mapping names a role the workspace does not have");
            Ok(None)
        }
    }
}

/// Whether claim mapping may grant a role holding `holds`: never the owner role, never a role
/// that manages owners, otherwise any workspace role.
fn mapping_may_grant(role: RoleId, holds: &HashSet<Action>) -> bool {
    let ceiling: HashSet<Action> = Action::ALL
        .iter()
        .copied()
        .filter(|a| a.workspace_scoped() && *a != Action::ManageOwners)
        .collect();
    role != builtin::OWNER && rbac::may_grant(&ceiling, holds).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClaimRuleConfig;

    fn rule(value: &str, workspace: &str, role: &str) -> ClaimRuleConfig {
        ClaimRuleConfig {
            value: value.into(),
            workspace: workspace.into(),
            role: role.into(),
        }
    }

    #[test]
    fn mapping_never_grants_owners_or_owner_managers() {
        let of = |id: RoleId| -> HashSet<Action> {
            builtin::ROLES
                .iter()
                .find(|r| r.id == id)
                .map(|r| r.actions.iter().copied().collect())
                .unwrap_or_default()
        };
        assert!(!mapping_may_grant(builtin::OWNER, &of(builtin::OWNER)));
        assert!(mapping_may_grant(builtin::ADMIN, &of(builtin::ADMIN)));
        assert!(mapping_may_grant(builtin::GUEST, &of(builtin::GUEST)));
        let custom = RoleId::generate();
        let co_owner: HashSet<Action> = [Action::ReadWorkspace, Action::ManageOwners].into();
        assert!(!mapping_may_grant(custom, &co_owner));
        assert!(mapping_may_grant(custom, &[Action::ReadWorkspace].into()));
    }

    #[test]
    fn rules_match_string_and_list_claims_in_order() {
        let mapping = ClaimMappingConfig {
            claim: "groups".into(),
            rules: vec![
                rule("eng-leads", "eng", "admin"),
                rule("eng", "eng", "member"),
                rule("ops", "ops", "guest"),
            ],
        };
        let claims = serde_json::json!({"groups": ["eng", "eng-leads", 7]});
        let grants = desired_grants(Some(&mapping), claims.as_object().unwrap()).unwrap();
        assert_eq!(grants.len(), 2);
        assert_eq!(
            (grants[0].workspace.as_str(), grants[0].role.as_str()),
            ("eng", "admin")
        );
        let single = serde_json::json!({"groups": "ops"});
        let grants = desired_grants(Some(&mapping), single.as_object().unwrap()).unwrap();
        assert_eq!(
            grants,
            vec![Grant {
                workspace: "ops".into(),
                role: "guest".into()
            }]
        );
        let none = serde_json::json!({});
        assert!(desired_grants(Some(&mapping), none.as_object().unwrap())
            .unwrap()
            .is_empty());
        assert!(desired_grants(None, none.as_object().unwrap()).is_none());
    }
}
