//! Workspaces that require single sign-on.
//!
//! When a workspace requires it, its members may not sign in with a password (the check is in
//! `auth::AuthService::login`), except system administrators, who keep a password as the
//! break-glass way in when the identity provider is down.

use serde::Serialize;

use super::SsoService;
use crate::domain::WorkspaceId;
use crate::error::Error;
use crate::events::DomainEvent;
use crate::rbac::{authorize, Action, Actor, Resource};
use crate::store::sso as sso_store;
use crate::store::Tx;

/// A workspace's single sign-on rule.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct WorkspaceSsoView {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// Whether members must sign in through single sign-on.
    pub required: bool,
}

impl SsoService {
    /// Whether a workspace requires single sign-on.
    pub async fn workspace_rule(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
    ) -> Result<WorkspaceSsoView, Error> {
        let mut conn = self.store.reader().await?;
        authorize(
            &mut conn.conn(),
            actor,
            Action::ReadWorkspace,
            Resource::Workspace(workspace),
        )
        .await?;
        let required = sso_store::workspace_required(&mut conn.conn(), workspace)
            .await?
            .ok_or(Error::NotFound("workspace"))?;
        Ok(WorkspaceSsoView {
            workspace_id: workspace,
            required,
        })
    }

    /// Requires (or stops requiring) single sign-on for a workspace's members.
    #[tracing::instrument(skip(self, actor), fields(actor = ?actor.user_id()))]
    pub async fn set_workspace_rule(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        required: bool,
    ) -> Result<WorkspaceSsoView, Error> {
        let actor = actor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    authorize(
                        &mut tx.conn(),
                        &actor,
                        Action::UpdateWorkspace,
                        Resource::Workspace(workspace),
                    )
                    .await?;
                    if !sso_store::set_workspace_required(&mut tx.conn(), workspace, required)
                        .await?
                    {
                        return Err(Error::NotFound("workspace"));
                    }
                    tx.emit(DomainEvent::WorkspaceSsoRequirementChanged {
                        workspace_id: workspace,
                        required,
                        by: actor.user_id(),
                    });
                    Ok(WorkspaceSsoView {
                        workspace_id: workspace,
                        required,
                    })
                })
            })
            .await
    }
}
