//! Role-based access control: the single decision point for every request.
//!
//! Roles are data: each is a named set of [`Action`]s stored in the database. Built-in roles
//! are seeded from [`builtin::ROLES`] at start; workspace admins may define custom roles.
//! [`authorize`] is the one function that decides; services call it before reading or
//! writing anything on an actor's behalf. Each decision is recorded on the [`Actor`], and the
//! HTTP edge refuses to send a successful response for a request that no decision covered.
//!
//! Visibility rule: a workspace the actor does not belong to is reported as not found, never
//! as forbidden, so its existence does not leak.
//!
//! Grant rule ([`may_grant`]): nobody gives or takes away a role holding a permission they do
//! not hold themselves; every path that grants a role asks it.

mod action;
pub mod builtin;
pub mod documents;
mod grant;
pub mod scopes;

pub use action::Action;
pub use documents::Level;
pub use grant::{
    authorize_definition, authorize_grant, check_grant, may_grant, workspace_permissions,
};
pub use scopes::{BotScope, BotScopes};

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::domain::{
    BotTokenId, ChannelId, DocumentId, RoleId, SessionId, UserId, WebhookId, WorkspaceId,
};
use crate::store::{self, Conn, StoreError};

/// Who is acting.
#[derive(Clone, Debug)]
pub enum Principal {
    /// A signed-in user in one of their sessions.
    User {
        /// The account.
        user_id: UserId,
        /// The session the access token belongs to.
        session_id: SessionId,
    },
    /// A bot, through one of its API tokens: it acts as its own account (a member of its
    /// workspace with the `bot` role), and only within the scopes the token grants.
    Bot {
        /// The bot's account.
        bot_id: UserId,
        /// The credential the request came with.
        via: BotCredential,
        /// The workspace the bot belongs to.
        workspace_id: WorkspaceId,
        /// What the token may be used for.
        scopes: BotScopes,
    },
    /// Concord itself or an operator at the command line.
    System,
}

/// What a bot authenticated with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BotCredential {
    /// One of its API tokens.
    Token(BotTokenId),
    /// An incoming webhook bound to it.
    Webhook(WebhookId),
    /// An answer to a person: to their slash command, or through a response URL.
    Answer,
    /// Its event subscription: what Concord delivers to its request URL.
    Events,
    /// A workspace's workflows speaking through their bot (a send task, a task's notice).
    Workflow,
}

impl std::fmt::Display for BotCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BotCredential::Token(id) => write!(f, "token:{id}"),
            BotCredential::Webhook(id) => write!(f, "webhook:{id}"),
            BotCredential::Answer => write!(f, "answer"),
            BotCredential::Events => write!(f, "events"),
            BotCredential::Workflow => write!(f, "workflow"),
        }
    }
}

/// The outcome recorded for a request, exposed to the HTTP edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Every check passed.
    Allowed,
    /// At least one check refused.
    Denied,
}

/// Where the decisions for one request are recorded; the HTTP edge reads it afterwards.
#[derive(Clone, Debug, Default)]
pub struct DecisionSlot(Arc<Mutex<Option<Decision>>>);

impl DecisionSlot {
    /// What was decided so far (`None` if nothing was).
    pub fn get(&self) -> Option<Decision> {
        self.0.lock().map(|d| *d).unwrap_or(Some(Decision::Denied))
    }
}

/// A principal plus the request context needed for decisions and audit.
#[derive(Clone, Debug)]
pub struct Actor {
    /// Who.
    pub principal: Principal,
    /// Where the request came from, if over the network.
    pub ip: Option<IpAddr>,
    decisions: DecisionSlot,
}

impl Actor {
    /// A signed-in user.
    pub fn user(user_id: UserId, session_id: SessionId, ip: Option<IpAddr>) -> Actor {
        Actor {
            principal: Principal::User {
                user_id,
                session_id,
            },
            ip,
            decisions: DecisionSlot::default(),
        }
    }

    /// A bot acting through one of its tokens.
    pub fn bot(
        bot_id: UserId,
        via: BotCredential,
        workspace_id: WorkspaceId,
        scopes: BotScopes,
        ip: Option<IpAddr>,
    ) -> Actor {
        Actor {
            principal: Principal::Bot {
                bot_id,
                via,
                workspace_id,
                scopes,
            },
            ip,
            decisions: DecisionSlot::default(),
        }
    }

    /// Concord itself (startup tasks, the command line).
    pub fn system() -> Actor {
        Actor {
            principal: Principal::System,
            ip: None,
            decisions: DecisionSlot::default(),
        }
    }

    /// The acting account, if a user or a bot is acting.
    pub fn user_id(&self) -> Option<UserId> {
        match self.principal {
            Principal::User { user_id, .. } => Some(user_id),
            Principal::Bot { bot_id, .. } => Some(bot_id),
            Principal::System => None,
        }
    }

    /// The session of the acting user, if any (bots have none).
    pub fn session_id(&self) -> Option<SessionId> {
        match self.principal {
            Principal::User { session_id, .. } => Some(session_id),
            Principal::Bot { .. } | Principal::System => None,
        }
    }

    /// Records this actor's decisions in `slot` (the request's).
    pub fn recording_into(mut self, slot: DecisionSlot) -> Actor {
        self.decisions = slot;
        self
    }

    /// What was decided so far for this actor's request (`None` if nothing was).
    pub fn decision(&self) -> Option<Decision> {
        self.decisions.get()
    }

    fn record(&self, decision: Decision) {
        if let Ok(mut slot) = self.decisions.0.lock() {
            // A denial sticks: one refused check makes the request denied.
            if *slot != Some(Decision::Denied) {
                *slot = Some(decision);
            }
        }
    }
}

/// What an action is performed on.
#[derive(Clone, Copy, Debug)]
pub enum Resource {
    /// The deployment as a whole (users, system roles, creating workspaces).
    System,
    /// A workspace and everything in it.
    Workspace(WorkspaceId),
    /// A user's own account (sessions, profile): the owner may act, and so may system roles.
    Account(UserId),
    /// A channel: visible to its members, and (if public) to workspace members who may
    /// browse channels. System roles grant nothing here: private conversations stay private.
    Channel(ChannelId),
    /// A document: visible to workspace members with an access level on it (see
    /// [`documents`]). System roles grant nothing here.
    Document(DocumentId),
}

/// Why an action was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    /// The actor may see the resource but not do this.
    #[error("missing permission {0}")]
    Forbidden(Action),
    /// The actor may not even know the resource exists.
    #[error("not found")]
    Hidden,
    /// The role would give (or the member holds) these permissions, which the actor lacks.
    #[error("the role holds permissions you do not hold")]
    NotGrantable(Vec<Action>),
    /// A bot's token was not granted the scope this needs.
    #[error("the token lacks the scope {0}")]
    MissingScope(&'static str),
    /// Deciding failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Decides whether `actor` may perform `action` on `resource`, and records the decision.
#[tracing::instrument(level = "debug", skip(conn, actor), fields(actor = ?actor.user_id()))]
pub async fn authorize(
    conn: &mut Conn<'_>,
    actor: &Actor,
    action: Action,
    resource: Resource,
) -> Result<(), AuthzError> {
    let outcome = decide(conn, actor, action, resource).await;
    note(actor, action, &outcome);
    outcome
}

/// Decides whether `actor` may perform `action` on a channel whose access facts the caller
/// has just read (`None`: no such channel), and records the decision. The same rule as
/// [`authorize`] on [`Resource::Channel`], for a write that reads the channel together with
/// those facts (`store::channels::with_access`) in its own transaction, so that deciding
/// and acting see the same state.
pub fn authorize_channel(
    actor: &Actor,
    action: Action,
    access: Option<&store::channels::ChannelAccess>,
) -> Result<(), AuthzError> {
    let outcome = channel_outcome(actor, action, access);
    note(actor, action, &outcome);
    outcome
}

/// [`authorize_channel`] for a path that handles allowed actions only: `true` (noted as
/// allowed) if it allows, `false` (noted nowhere) if not, leaving the refusal and its record
/// to the caller's other path.
pub fn channel_allows(
    actor: &Actor,
    action: Action,
    access: Option<&store::channels::ChannelAccess>,
) -> bool {
    let outcome = channel_outcome(actor, action, access);
    if outcome.is_err() {
        return false;
    }
    note(actor, action, &outcome);
    true
}

/// Whether `user` may read channel `id` as its members and the workspace's people may,
/// decided without recording anything: emergency access is refused where it is not needed.
pub async fn reads_channel(
    conn: &mut Conn<'_>,
    user: UserId,
    id: ChannelId,
) -> Result<bool, StoreError> {
    let access = store::channels::access(conn, id, user).await?;
    Ok(channel_decision(access.as_ref(), Action::ReadChannels).is_ok())
}

/// Whether `actor` may perform `action` on `resource`, decided without recording anything:
/// for a path that widens what a caller sees when they hold more (an operator sees every
/// instance, a starter their own), the request's decision being made by another check.
pub async fn allows(
    conn: &mut Conn<'_>,
    actor: &Actor,
    action: Action,
    resource: Resource,
) -> Result<bool, StoreError> {
    match decide(conn, actor, action, resource).await {
        Ok(()) => Ok(true),
        Err(AuthzError::Store(e)) => Err(e),
        Err(_) => Ok(false),
    }
}

/// The rule of [`authorize_channel`], nothing noted.
fn channel_outcome(
    actor: &Actor,
    action: Action,
    access: Option<&store::channels::ChannelAccess>,
) -> Result<(), AuthzError> {
    match actor.principal {
        Principal::System => Ok(()),
        Principal::User { .. } | Principal::Bot { .. } => channel_decision(access, action),
    }
}

/// Records a decision on the actor's request and counts denials.
fn note(actor: &Actor, action: Action, outcome: &Result<(), AuthzError>) {
    match outcome {
        Ok(()) => actor.record(Decision::Allowed),
        Err(AuthzError::Store(_)) => {}
        Err(_) => {
            actor.record(Decision::Denied);
            metrics::counter!("concord_authz_denials_total", "action" => action.as_str())
                .increment(1);
        }
    }
}

async fn decide(
    conn: &mut Conn<'_>,
    actor: &Actor,
    action: Action,
    resource: Resource,
) -> Result<(), AuthzError> {
    let user_id = match actor.principal {
        Principal::System => return Ok(()),
        Principal::User { user_id, .. } => user_id,
        Principal::Bot { bot_id, .. } => bot_id,
    };
    if let Resource::Channel(channel) = resource {
        return decide_channel(conn, user_id, action, channel).await;
    }
    if let Resource::Document(document) = resource {
        return decide_document(conn, user_id, action, document).await;
    }
    let system = system_permissions(conn, user_id).await?;
    if system.contains(&action) {
        return Ok(());
    }
    match resource {
        Resource::System => Err(AuthzError::Forbidden(action)),
        Resource::Account(owner) if owner == user_id && action.self_service() => Ok(()),
        Resource::Account(_) => Err(AuthzError::Hidden),
        Resource::Channel(_) | Resource::Document(_) => Err(AuthzError::Hidden),
        Resource::Workspace(workspace_id) => {
            let Some(role_id) = store::workspaces::member_role(conn, workspace_id, user_id).await?
            else {
                return Err(AuthzError::Hidden);
            };
            if role_permissions(conn, role_id).await?.contains(&action) {
                Ok(())
            } else {
                Err(AuthzError::Forbidden(action))
            }
        }
    }
}

async fn decide_channel(
    conn: &mut Conn<'_>,
    user_id: UserId,
    action: Action,
    channel_id: ChannelId,
) -> Result<(), AuthzError> {
    // One query: this check runs for every chat read and write.
    let access = store::channels::access(conn, channel_id, user_id).await?;
    channel_decision(access.as_ref(), action)
}

/// The channel rule, over facts read beforehand (`None`: no such channel).
fn channel_decision(
    access: Option<&store::channels::ChannelAccess>,
    action: Action,
) -> Result<(), AuthzError> {
    let Some(access) = access else {
        return Err(AuthzError::Hidden);
    };
    if access.workspace_role.is_none() {
        return Err(AuthzError::Hidden);
    }
    let granted: HashSet<Action> = access
        .permissions
        .iter()
        .filter_map(|p| Action::parse(p))
        .collect();
    let visible = access.channel_role.is_some()
        || (access.kind == "public" && granted.contains(&Action::ReadChannels));
    if !visible {
        return Err(AuthzError::Hidden);
    }
    let moderator = access.channel_role.as_deref() == Some("moderator");
    let allowed = match action {
        Action::ReadChannels => true,
        Action::ManageChannels | Action::ModerateMessages => granted.contains(&action) || moderator,
        other => granted.contains(&other),
    };
    if allowed {
        Ok(())
    } else {
        Err(AuthzError::Forbidden(action))
    }
}

/// Decides whether `actor` may use an API method that needs `scope`, and records the
/// decision: a bot needs the scope on its token (people and the system are not limited by
/// scopes; what they may do is decided by [`authorize`]). A bot's method also needs the
/// authorization of what it does, so this is asked in addition to [`authorize`], never
/// instead of it.
pub fn authorize_scope(actor: &Actor, scope: BotScope) -> Result<(), AuthzError> {
    let outcome = match actor.principal {
        Principal::Bot { scopes, .. } if !scopes.contains(scope) => {
            Err(AuthzError::MissingScope(scope.as_str()))
        }
        _ => Ok(()),
    };
    match &outcome {
        Ok(()) => actor.record(Decision::Allowed),
        Err(_) => {
            actor.record(Decision::Denied);
            metrics::counter!("concord_authz_denials_total", "action" => scope.as_str())
                .increment(1);
        }
    }
    outcome
}

/// Records that a bot may ask who it is (Slack's `auth.test`): presenting a valid token
/// is all that takes, so authenticating was the decision.
pub fn allow_own_identity(actor: &Actor) {
    actor.record(Decision::Allowed);
}

/// Records the decision on something only its one recipient may use (an ephemeral message
/// shown to one person): allowed for them, refused for anyone else (who is told it does not
/// exist).
pub fn decide_recipient(actor: &Actor, is_recipient: bool) {
    actor.record(if is_recipient {
        Decision::Allowed
    } else {
        Decision::Denied
    });
}

/// Records the decision on a workflow task, which its assignment makes rather than a
/// permission: allowed for the people it names (its assignee, the holders of its role, the
/// members of its channel), refused for anyone else.
pub fn decide_assignment(actor: &Actor, named: bool) {
    actor.record(if named {
        Decision::Allowed
    } else {
        Decision::Denied
    });
}

/// Records that a signed-in person may read what is addressed to them alone (their task
/// inbox): being signed in is the decision, and the read is filtered to them.
pub fn allow_own_items(actor: &Actor) {
    actor.record(Decision::Allowed);
}

/// Records that a request was refused before any actor was known (a bot API call without
/// valid credentials), so the edge sees a decision for an answer that Slack's conventions
/// send with status 200.
pub fn refuse_unauthenticated(slot: &DecisionSlot) {
    if let Ok(mut decision) = slot.0.lock() {
        *decision = Some(Decision::Denied);
    }
}

/// Records that `action` is allowed because the deployment's configuration opens it to every
/// signed-in user (creating workspaces with `auth.users_can_create_workspaces`): the decision
/// is made, and seen by the HTTP guard, before anything is written.
pub fn allow_by_configuration(actor: &Actor, action: Action) {
    tracing::debug!(action = action.as_str(), "allowed by configuration");
    actor.record(Decision::Allowed);
}

/// The channels of `workspace` whose messages `actor` may read now, with the actor's channel
/// role: the rule of `decide_channel` applied to every channel at once, for search, which
/// filters results by channel at query time. A workspace the actor is not in is `Hidden`.
pub async fn readable_channels(
    conn: &mut Conn<'_>,
    actor: &Actor,
    workspace: WorkspaceId,
) -> Result<Vec<store::channels::ChannelForMember>, AuthzError> {
    let Principal::User { user_id, .. } = actor.principal else {
        return Ok(Vec::new());
    };
    let Some(role_id) = store::workspaces::member_role(conn, workspace, user_id).await? else {
        actor.record(Decision::Denied);
        return Err(AuthzError::Hidden);
    };
    let granted = role_permissions(conn, role_id).await?;
    let browse = granted.contains(&Action::ReadChannels);
    let channels = store::search::channels_with_membership(conn, workspace, user_id).await?;
    actor.record(Decision::Allowed);
    Ok(channels
        .into_iter()
        .filter(|c| c.member_role.is_some() || (browse && c.channel.kind == "public"))
        .collect())
}

/// The documents of `workspace` that `actor` may view now (the rule of `document_level`
/// applied to all of them in one query), for search's query-time filter.
pub async fn readable_documents(
    conn: &mut Conn<'_>,
    actor: &Actor,
    workspace: WorkspaceId,
) -> Result<Vec<DocumentId>, AuthzError> {
    let Principal::User { user_id, .. } = actor.principal else {
        return Ok(Vec::new());
    };
    let Some(role_id) = store::workspaces::member_role(conn, workspace, user_id).await? else {
        return Err(AuthzError::Hidden);
    };
    let granted = role_permissions(conn, role_id).await?;
    Ok(store::documents::list_with_access(conn, workspace, user_id)
        .await?
        .into_iter()
        .filter(|(_, facts)| documents::level(facts, user_id, &granted).is_some())
        .map(|(record, _)| record.id)
        .collect())
}

async fn decide_document(
    conn: &mut Conn<'_>,
    user_id: UserId,
    action: Action,
    document: DocumentId,
) -> Result<(), AuthzError> {
    match document_level(conn, user_id, document).await? {
        None => Err(AuthzError::Hidden),
        Some(level) => match Level::required_for(action) {
            Some(needed) if level >= needed => Ok(()),
            _ => Err(AuthzError::Forbidden(action)),
        },
    }
}

/// The access level `user_id` has on `document` now (`None`: they may not know it exists).
pub async fn document_level(
    conn: &mut Conn<'_>,
    user_id: UserId,
    document: DocumentId,
) -> Result<Option<Level>, StoreError> {
    let Some(facts) = store::documents::access(conn, document, user_id).await? else {
        return Ok(None);
    };
    let Some(role) = facts.workspace_role else {
        return Ok(None);
    };
    let granted = role_permissions(conn, role).await?;
    Ok(documents::level(&facts, user_id, &granted))
}

async fn system_permissions(
    conn: &mut Conn<'_>,
    user_id: UserId,
) -> Result<HashSet<Action>, StoreError> {
    match store::users::system_role(conn, user_id).await? {
        Some(role_id) => role_permissions(conn, role_id).await,
        None => Ok(HashSet::new()),
    }
}

/// The actions a role grants; names the code no longer knows are ignored.
pub async fn role_permissions(
    conn: &mut Conn<'_>,
    role_id: RoleId,
) -> Result<HashSet<Action>, StoreError> {
    let names = store::roles::permissions(conn, role_id).await?;
    Ok(names.iter().filter_map(|n| Action::parse(n)).collect())
}
