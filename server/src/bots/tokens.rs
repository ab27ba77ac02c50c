//! Bot tokens: issued with scopes and shown once, listed without their secret, revoked,
//! rotated, and turned into an [`Actor`] for each request that presents one.
//!
//! A token is `xoxb-` and 256 random bits (URL-safe base64); storage keeps its SHA-256, which
//! is enough for a secret with that much entropy (no slow hash is needed to resist guessing).

use std::net::IpAddr;

use chrono::Utc;

use super::{bot_in, BotService, BotTokenView, CreatedBotToken};
use crate::audit::{Event, Outcome};
use crate::auth::{random_token, token_hash};
use crate::domain::{BotTokenId, UserId, WorkspaceId};
use crate::error::Error;
use crate::rbac::{Action, Actor, BotCredential, BotScopes, Resource};
use crate::store::bots::{self, TokenRecord};
use crate::store::{Conn, Tx};

/// What every bot token starts with (Slack's prefix for bot tokens).
pub const TOKEN_PREFIX: &str = "xoxb-";

fn view(record: TokenRecord) -> BotTokenView {
    BotTokenView {
        id: record.id,
        bot_id: record.bot_id,
        scopes: record
            .scopes
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        hint: record.hint,
        created_at: record.created_at,
        revoked_at: record.revoked_at,
    }
}

/// Stores a fresh token for `bot` inside the write `tx`; the secret is in the answer only.
async fn issue(
    tx: &mut Tx,
    bot: UserId,
    scopes: BotScopes,
    by: UserId,
) -> Result<CreatedBotToken, Error> {
    let secret = format!("{TOKEN_PREFIX}{}", random_token());
    let hint = secret[secret.len() - 4..].to_owned();
    let record = TokenRecord {
        id: BotTokenId::generate(),
        bot_id: bot,
        hint,
        scopes: scopes.to_string(),
        created_by: by,
        created_at: Utc::now(),
        revoked_at: None,
    };
    bots::insert_token(&mut tx.conn(), &record, &token_hash(&secret)).await?;
    Ok(CreatedBotToken {
        token: secret,
        view: view(record),
    })
}

impl BotService {
    /// Issues a token for `bot` with `scopes`; its secret is in this answer only.
    pub async fn create_token(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        bot: UserId,
        scopes: BotScopes,
    ) -> Result<CreatedBotToken, Error> {
        if scopes.is_empty() {
            return Err(
                crate::domain::ParseError::new("scopes", "grant at least one scope").into(),
            );
        }
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let by = this.authorize_bot_admin(tx, &actor, workspace, bot).await?;
                    let created = issue(tx, bot, scopes, by).await?;
                    this.auditor
                        .record(
                            tx,
                            Event::by(&actor, "bot.token_create", Outcome::Allowed)
                                .target("bot_token", created.view.id)
                                .workspace(workspace)
                                .subject(bot)
                                .details(serde_json::json!({ "scopes": scopes.to_string() })),
                        )
                        .await?;
                    Ok(created)
                })
            })
            .await
    }

    /// A bot's tokens, without their secrets.
    pub async fn tokens(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        bot: UserId,
    ) -> Result<Vec<BotTokenView>, Error> {
        let mut conn = self.store.reader().await?;
        self.authorize_admin_read(&mut conn.conn(), actor, workspace)
            .await?;
        bot_in(&mut conn.conn(), workspace, bot).await?;
        Ok(bots::tokens_of(&mut conn.conn(), bot)
            .await?
            .into_iter()
            .map(view)
            .collect())
    }

    /// Revokes a token: requests presenting it are refused from now on.
    pub async fn revoke_token(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        bot: UserId,
        token: BotTokenId,
    ) -> Result<(), Error> {
        self.replace_token(actor, workspace, bot, token, false)
            .await
            .map(|_| ())
    }

    /// Rotates a token: it is revoked and a new one with the same scopes is issued, in one
    /// write; the new secret is in this answer only.
    pub async fn rotate_token(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        bot: UserId,
        token: BotTokenId,
    ) -> Result<CreatedBotToken, Error> {
        self.replace_token(actor, workspace, bot, token, true)
            .await?
            .ok_or(Error::Internal("rotation issued no token".into()))
    }

    async fn replace_token(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        bot: UserId,
        token: BotTokenId,
        reissue: bool,
    ) -> Result<Option<CreatedBotToken>, Error> {
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let by = this.authorize_admin(tx, &actor, workspace).await?;
                    let record = bot_in(&mut tx.conn(), workspace, bot).await?;
                    let old = bots::token(&mut tx.conn(), bot, token)
                        .await?
                        .ok_or(Error::NotFound("token"))?;
                    if !bots::revoke_token(&mut tx.conn(), bot, token, Utc::now()).await? {
                        return Err(Error::gone(
                            "token_revoked",
                            "this token was already revoked",
                        ));
                    }
                    let created = if reissue {
                        if record.deactivated_at.is_some() {
                            return Err(Error::gone("bot_deactivated", "this bot was deactivated"));
                        }
                        this.authorize_issue(tx, &actor, workspace, bot, by).await?;
                        let scopes = BotScopes::parse([old.scopes.as_str()])
                            .map_err(|s| Error::Internal(format!("stored scope {s} is unknown")))?;
                        Some(issue(tx, bot, scopes, by).await?)
                    } else {
                        None
                    };
                    let action = if reissue {
                        "bot.token_rotate"
                    } else {
                        "bot.token_revoke"
                    };
                    this.auditor
                        .record(
                            tx,
                            Event::by(&actor, action, Outcome::Allowed)
                                .target("bot_token", token)
                                .workspace(workspace)
                                .subject(bot)
                                .details(serde_json::json!({
                                    "new_token": created.as_ref().map(|c| c.view.id),
                                })),
                        )
                        .await?;
                    Ok(created)
                })
            })
            .await
    }

    /// The bot acting through `token`, or why the token is refused (`invalid_auth`,
    /// `token_revoked`, `account_inactive`, as Slack names them).
    pub async fn authenticate(&self, token: &str, ip: Option<IpAddr>) -> Result<Actor, Error> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Err(Error::unauthenticated("invalid_auth", "not a bot token"));
        }
        let mut conn = self.store.reader().await?;
        let Some(found) = bots::token_by_hash(&mut conn.conn(), &token_hash(token)).await? else {
            return Err(Error::unauthenticated("invalid_auth", "unknown token"));
        };
        if found.revoked_at.is_some() {
            return Err(Error::unauthenticated(
                "token_revoked",
                "the token was revoked",
            ));
        }
        if found.deactivated_at.is_some() || found.account_status != "active" {
            return Err(Error::unauthenticated(
                "account_inactive",
                "the bot was deactivated or its account disabled",
            ));
        }
        let scopes = BotScopes::parse([found.scopes.as_str()])
            .map_err(|s| Error::Internal(format!("stored scope {s} is unknown")))?;
        Ok(Actor::bot(
            found.bot_id,
            BotCredential::Token(found.id),
            found.workspace_id,
            scopes,
            ip,
        ))
    }

    /// Decides, in the write `tx`, that `actor` administers `workspace` and may hand out
    /// credentials of its live `bot` (`authorize_admin`, then `authorize_issue`); returns who
    /// they are. What says where a bot's data goes, or acts as it, takes this.
    pub(super) async fn authorize_bot_admin(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        workspace: WorkspaceId,
        bot: UserId,
    ) -> Result<UserId, Error> {
        let by = self.authorize_admin(tx, actor, workspace).await?;
        let record = bot_in(&mut tx.conn(), workspace, bot).await?;
        if record.deactivated_at.is_some() {
            return Err(Error::gone("bot_deactivated", "this bot was deactivated"));
        }
        self.authorize_issue(tx, actor, workspace, bot, by).await?;
        Ok(by)
    }

    /// [`BotService::authorize_bot_admin`] on a reader, before a write that decides again
    /// (so nobody else makes the server resolve a name or call a URL); returns the bot's
    /// event settings.
    pub(super) async fn may_admin_bot(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        bot: UserId,
    ) -> Result<Option<crate::store::bot_events::SettingsRecord>, Error> {
        let mut conn = self.store.reader().await?;
        self.authorize_admin_read(&mut conn.conn(), actor, workspace)
            .await?;
        let record = bot_in(&mut conn.conn(), workspace, bot).await?;
        if record.deactivated_at.is_some() {
            return Err(Error::gone("bot_deactivated", "this bot was deactivated"));
        }
        let by = actor
            .user_id()
            .ok_or_else(|| Error::refused("user_required", "only people manage bots"))?;
        self.may_issue(&mut conn.conn(), actor, workspace, bot, by)
            .await?;
        Ok(crate::store::bot_events::settings(&mut conn.conn(), bot).await?)
    }

    /// Authorizes a workspace administrator inside a write; returns who they are.
    pub(super) async fn authorize_admin(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        workspace: WorkspaceId,
    ) -> Result<UserId, Error> {
        self.auditor
            .authorize(
                tx,
                actor,
                Action::ManageMembers,
                Resource::Workspace(workspace),
            )
            .await?;
        actor
            .user_id()
            .ok_or_else(|| Error::refused("user_required", "only people manage bots"))
    }

    /// Records that a bot's credential was refused a method for lacking `scope`, as any
    /// denial is recorded (in a write of its own); a failure to record is logged, and the
    /// refusal stands either way.
    pub async fn record_missing_scope(&self, actor: &Actor, scope: crate::rbac::BotScope) {
        let crate::rbac::Principal::Bot { workspace_id, .. } = actor.principal else {
            return;
        };
        let event = Event::by(actor, "permission.denied", Outcome::Denied)
            .target("workspace", workspace_id)
            .workspace(workspace_id)
            .details(serde_json::json!({ "scope": scope.as_str() }));
        if let Err(err) = self.auditor.record_alone(&self.store, event).await {
            tracing::error!(error = %err, "cannot record a bot's missing-scope denial");
        }
    }

    /// Whether `by` may hand out a credential that acts as `bot`: they must be able to grant
    /// the bot's current role (nobody gives a bot's powers who does not hold them), and share
    /// every channel that is not public the bot is in (a credential reads and posts there).
    pub(super) async fn authorize_issue(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        workspace: WorkspaceId,
        bot: UserId,
        by: UserId,
    ) -> Result<(), Error> {
        self.may_issue(&mut tx.conn(), actor, workspace, bot, by)
            .await
    }

    /// [`BotService::authorize_issue`] on any connection (a reader, before a write that
    /// decides again).
    pub(super) async fn may_issue(
        &self,
        conn: &mut Conn<'_>,
        actor: &Actor,
        workspace: WorkspaceId,
        bot: UserId,
        by: UserId,
    ) -> Result<(), Error> {
        let role = crate::store::workspaces::member_role(conn, workspace, bot)
            .await?
            .ok_or(Error::NotFound("bot"))?;
        crate::rbac::authorize_grant(conn, actor, workspace, role).await?;
        if bots::channels_beyond(conn, bot, by).await? > 0 {
            return Err(Error::refused(
                "private_channels_not_shared",
                "this bot is in private channels you are not in; only a member of all of them may issue its credentials or say where its data goes",
            ));
        }
        Ok(())
    }
}
