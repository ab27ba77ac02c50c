//! Incoming webhooks: a secret URL bound to a channel and a bot. Whoever holds the URL
//! posts into that channel as the bot (Slack's incoming webhooks); the secret is 256 random
//! bits, stored as its SHA-256.

use std::net::IpAddr;

use chrono::Utc;

use super::{bot_in, BotService, WebhookView};
use crate::audit::{Event, Outcome};
use crate::auth::{random_token, token_hash};
use crate::domain::{ChannelId, UserId, WebhookId, WorkspaceId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::rbac::{Action, Actor, BotCredential, BotScope, BotScopes, Resource};
use crate::store::bots::{self, WebhookRecord};
use crate::store::{channels, Tx};

/// A webhook just created, with its secret (which goes into its URL, shown once).
pub struct IssuedWebhook {
    /// The secret part of the URL.
    pub secret: String,
    /// The webhook as listed.
    pub view: WebhookView,
}

fn view(r: WebhookRecord) -> WebhookView {
    WebhookView {
        id: r.id,
        workspace_id: r.workspace_id,
        channel_id: r.channel_id,
        bot_id: r.bot_id,
        created_at: r.created_at,
        revoked_at: r.revoked_at,
    }
}

impl BotService {
    /// Creates an incoming webhook posting into `channel` as `bot`, and adds the bot to the
    /// channel if it is not a member yet (the creator must see the channel).
    pub async fn create_webhook(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        channel: ChannelId,
        bot: UserId,
    ) -> Result<IssuedWebhook, Error> {
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let by = this.authorize_admin(tx, &actor, workspace).await?;
                    let record = bot_in(&mut tx.conn(), workspace, bot).await?;
                    if record.deactivated_at.is_some() {
                        return Err(Error::gone("bot_deactivated", "this bot was deactivated"));
                    }
                    this.auditor
                        .authorize(tx, &actor, Action::PostMessages, Resource::Channel(channel))
                        .await?;
                    let c = channels::by_id(&mut tx.conn(), channel)
                        .await?
                        .filter(|c| c.workspace_id == workspace)
                        .ok_or(Error::NotFound("channel"))?;
                    // The hook posts as the bot where its creator could post themselves: a
                    // member of the (live) channel, able to issue the bot's credentials.
                    if channels::membership(&mut tx.conn(), channel, by)
                        .await?
                        .is_none()
                    {
                        return Err(Error::refused(
                            "not_in_channel",
                            "join the channel before adding a webhook to it",
                        ));
                    }
                    if c.archived_at.is_some() {
                        return Err(Error::refused(
                            "channel_archived",
                            "this channel is archived and read-only",
                        ));
                    }
                    this.authorize_issue(tx, &actor, workspace, bot, by).await?;
                    if c.direct_key.is_some() {
                        return Err(Error::refused(
                            "fixed_participants",
                            "webhooks post into channels, not conversations",
                        ));
                    }
                    let now = Utc::now();
                    if channels::add_member(&mut tx.conn(), channel, bot, "member", c.last_seq, now)
                        .await?
                    {
                        tx.emit(DomainEvent::ChannelMemberAdded {
                            workspace_id: workspace,
                            channel_id: channel,
                            user_id: bot,
                            by: Some(by),
                        });
                        this.auditor
                            .record(
                                tx,
                                Event::by(&actor, "channel.member_added", Outcome::Allowed)
                                    .target("channel", channel)
                                    .workspace(workspace)
                                    .subject(bot),
                            )
                            .await?;
                    }
                    let secret = random_token();
                    let hook = WebhookRecord {
                        id: WebhookId::generate(),
                        workspace_id: workspace,
                        channel_id: channel,
                        bot_id: bot,
                        created_by: by,
                        created_at: now,
                        revoked_at: None,
                    };
                    bots::insert_webhook(&mut tx.conn(), &hook, &token_hash(&secret)).await?;
                    this.auditor
                        .record(
                            tx,
                            Event::by(&actor, "webhook.create", Outcome::Allowed)
                                .target("webhook", hook.id)
                                .workspace(workspace)
                                .subject(bot)
                                .details(serde_json::json!({ "channel_id": channel })),
                        )
                        .await?;
                    Ok(IssuedWebhook {
                        secret,
                        view: view(hook),
                    })
                })
            })
            .await
    }

    /// The webhooks of `workspace`, without their URLs.
    pub async fn webhooks(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
    ) -> Result<Vec<WebhookView>, Error> {
        let mut conn = self.store.reader().await?;
        self.authorize_admin_read(&mut conn.conn(), actor, workspace)
            .await?;
        Ok(bots::webhooks_in(&mut conn.conn(), workspace)
            .await?
            .into_iter()
            .map(view)
            .collect())
    }

    /// Revokes a webhook: its URL no longer posts.
    pub async fn revoke_webhook(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        id: WebhookId,
    ) -> Result<(), Error> {
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.authorize_admin(tx, &actor, workspace).await?;
                    if !bots::revoke_webhook(&mut tx.conn(), workspace, id, Utc::now()).await? {
                        return Err(Error::NotFound("webhook"));
                    }
                    this.auditor
                        .record(
                            tx,
                            Event::by(&actor, "webhook.revoke", Outcome::Allowed)
                                .target("webhook", id)
                                .workspace(workspace),
                        )
                        .await?;
                    Ok(())
                })
            })
            .await
    }

    /// The bot acting through the webhook whose URL holds `secret`, and the channel it posts
    /// into; an unknown or revoked webhook is not found, a deactivated bot's is gone.
    pub async fn webhook_actor(
        &self,
        secret: &str,
        ip: Option<IpAddr>,
    ) -> Result<(Actor, ChannelId), Error> {
        let mut conn = self.store.reader().await?;
        let hook = bots::webhook_by_hash(&mut conn.conn(), &token_hash(secret))
            .await?
            .filter(|h| h.revoked_at.is_none())
            .ok_or(Error::NotFound("webhook"))?;
        let bot = bot_in(&mut conn.conn(), hook.workspace_id, hook.bot_id).await?;
        if bot.deactivated_at.is_some()
            || !bots::account_active(&mut conn.conn(), bot.user_id).await?
        {
            return Err(Error::gone(
                "bot_deactivated",
                "this webhook's bot was deactivated or its account disabled",
            ));
        }
        let scopes = BotScopes::parse([
            BotScope::IncomingWebhook.as_str(),
            BotScope::ChatWrite.as_str(),
        ])
        .map_err(|s| Error::Internal(format!("scope {s} is unknown")))?;
        let actor = Actor::bot(
            hook.bot_id,
            BotCredential::Webhook(hook.id),
            hook.workspace_id,
            scopes,
            ip,
        );
        Ok((actor, hook.channel_id))
    }
}
