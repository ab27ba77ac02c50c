//! What administrators set for a bot's events: its signing secret (made and rotated, shown
//! once, kept encrypted under the workspace's key), its request URL and event types (the URL
//! kept only after it answered Slack's `url_verification` challenge, signed like every
//! delivery), and its parked deliveries (listed and replayed).
//!
//! Managing these is `members.manage` in the bot's workspace, and, as for the bot's tokens,
//! only for someone who may grant the bot's role and shares its private channels
//! (`BotService::authorize_issue`): a request URL receives what the bot sees.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::envelope::EventTypes;
use super::{dispatch, signing};
use crate::audit::{Event, Outcome};
use crate::bots::{
    bot_in, BotService, CreatedSigningSecret, EventDeliveryView, EventSubscriptionView,
};
use crate::crypto::{Aad, Scope};
use crate::domain::{EventDeliveryId, ParseError, UserId, WorkspaceId};
use crate::error::Error;
use crate::rbac::Actor;
use crate::store::bot_events::{self, DeliveryRecord, SettingsRecord};
use crate::store::Tx;

/// The place a bot's signing secret is encrypted for.
pub(super) fn secret_aad(bot: &str) -> Aad<'_> {
    Aad {
        table: "bot_event_settings",
        row: bot,
        column: "signing_secret",
    }
}

pub(crate) fn subscription_view(
    bot: UserId,
    settings: Option<SettingsRecord>,
) -> EventSubscriptionView {
    match settings {
        None => EventSubscriptionView {
            bot_id: bot,
            request_url: None,
            event_types: Vec::new(),
            interactivity_url: None,
            has_signing_secret: false,
            signing_secret_created_at: None,
            updated_at: None,
        },
        Some(s) => EventSubscriptionView {
            bot_id: bot,
            request_url: s.request_url,
            event_types: EventTypes::stored(&s.event_types).names(),
            interactivity_url: s.interactivity_url,
            has_signing_secret: true,
            signing_secret_created_at: Some(s.secret_created_at),
            updated_at: Some(s.updated_at),
        },
    }
}

fn delivery_view(r: DeliveryRecord) -> EventDeliveryView {
    EventDeliveryView {
        id: r.id,
        bot_id: r.bot_id,
        event_id: r.event_id,
        event_type: r.event_type,
        state: r.state,
        attempts: r.attempts,
        last_error: r.last_error,
        event_time: DateTime::from_timestamp_micros(r.event_time_us).unwrap_or(r.created_at),
    }
}

impl BotService {
    /// A bot's event subscription (never its signing secret).
    pub async fn event_subscription(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        bot: UserId,
    ) -> Result<EventSubscriptionView, Error> {
        let mut conn = self.store.reader().await?;
        self.authorize_admin_read(&mut conn.conn(), actor, workspace)
            .await?;
        bot_in(&mut conn.conn(), workspace, bot).await?;
        let settings = bot_events::settings(&mut conn.conn(), bot).await?;
        Ok(subscription_view(bot, settings))
    }

    /// Makes a bot a new signing secret (replacing any previous one, and ending the response
    /// URLs handed out under it); the secret is in this answer only.
    pub async fn rotate_signing_secret(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        bot: UserId,
    ) -> Result<CreatedSigningSecret, Error> {
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let by = this.authorize_bot_admin(tx, &actor, workspace, bot).await?;
                    let replaced = bot_events::settings(&mut tx.conn(), bot).await?.is_some();
                    let secret = signing::new_secret();
                    let row = bot.to_string();
                    let sealed = this
                        .auditor
                        .keyring()
                        .encrypt(
                            tx,
                            &Scope::Workspace(workspace),
                            secret_aad(&row),
                            secret.as_bytes(),
                        )
                        .await
                        .map_err(|e| Error::Internal(e.to_string()))?;
                    let now = Utc::now();
                    bot_events::set_secret(&mut tx.conn(), bot, workspace, &sealed, by, now)
                        .await?;
                    // A new secret usually means the old one leaked: the response URLs handed
                    // out under it end with it.
                    let ended =
                        crate::store::bot_commands::end_response_urls(&mut tx.conn(), bot).await?;
                    this.auditor
                        .record(
                            tx,
                            Event::by(&actor, "bot.signing_secret_rotate", Outcome::Allowed)
                                .target("bot", bot)
                                .workspace(workspace)
                                .subject(bot)
                                .details(json!({
                                    "replaced": replaced,
                                    "response_urls_ended": ended,
                                })),
                        )
                        .await?;
                    Ok(CreatedSigningSecret {
                        bot_id: bot,
                        signing_secret: secret.to_string(),
                        created_at: now,
                    })
                })
            })
            .await
    }

    /// Sets where a bot's events go and which (the URL must answer Slack's
    /// `url_verification` challenge first), or, without a URL, stops its events.
    #[tracing::instrument(level = "debug", skip_all, fields(workspace = %workspace, bot = %bot))]
    pub async fn set_event_subscription(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        bot: UserId,
        request_url: Option<String>,
        event_types: EventTypes,
    ) -> Result<EventSubscriptionView, Error> {
        if request_url.is_some() && event_types.is_empty() {
            return Err(
                ParseError::new("event_types", "subscribe to at least one event type").into(),
            );
        }
        // Decided before anything leaves the server; decided again in the write below.
        let settings = self.may_admin_bot(actor, workspace, bot).await?;
        let Some(settings) = settings else {
            return Err(Error::conflict(
                "signing_secret_missing",
                "make the bot a signing secret first: its deliveries and the URL's verification are signed with it",
            ));
        };
        if let Some(url) = &request_url {
            self.verify_url(&settings, url).await?;
        }
        let actor = actor.clone();
        let this = self.clone();
        let types = event_types.to_string();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let by = this.authorize_admin(tx, &actor, workspace).await?;
                    bot_in(&mut tx.conn(), workspace, bot).await?;
                    this.authorize_issue(tx, &actor, workspace, bot, by).await?;
                    let now = Utc::now();
                    if !bot_events::set_subscription(
                        &mut tx.conn(),
                        bot,
                        request_url.as_deref(),
                        &types,
                        by,
                        now,
                    )
                    .await?
                    {
                        return Err(Error::conflict(
                            "signing_secret_missing",
                            "make the bot a signing secret first",
                        ));
                    }
                    this.auditor
                        .record(
                            tx,
                            Event::by(&actor, "bot.event_subscription_set", Outcome::Allowed)
                                .target("bot", bot)
                                .workspace(workspace)
                                .subject(bot)
                                .details(json!({
                                    "request_url": request_url,
                                    "event_types": types,
                                })),
                        )
                        .await?;
                    let settings = bot_events::settings(&mut tx.conn(), bot).await?;
                    Ok(subscription_view(bot, settings))
                })
            })
            .await
    }

    /// Slack's `url_verification` handshake: the URL must echo a fresh challenge, in a
    /// signed request like every delivery.
    async fn verify_url(&self, settings: &SettingsRecord, url: &str) -> Result<(), Error> {
        use super::egress::EgressError;
        let delivery = self.delivery().clone();
        let refused = |e: EgressError| match e {
            EgressError::BadUrl | EgressError::Insecure(_) => {
                Error::from(ParseError::new("request_url", e.to_string()))
            }
            EgressError::NotAllowed(_) => Error::refused("request_url_not_allowed", e.to_string()),
            EgressError::Unresolved(_) => Error::refused("request_url_unresolved", e.to_string()),
            other => Error::refused(
                "url_verification_failed",
                format!("the request URL did not answer the challenge: {other}"),
            ),
        };
        let url = delivery.egress.vet(url).await.map_err(refused)?;
        let secret = {
            let mut conn = self.store.reader().await?;
            let row = settings.bot_id.to_string();
            self.auditor
                .keyring()
                .decrypt(
                    &mut conn.conn(),
                    &Scope::Workspace(settings.workspace_id),
                    secret_aad(&row),
                    &settings.signing_secret_enc,
                )
                .await
                .map_err(|e| Error::Internal(e.to_string()))?
        };
        let challenge = crate::auth::random_token();
        let body = serde_json::to_vec(&json!({
            "token": signing::verification_token(&secret),
            "challenge": challenge,
            "type": "url_verification",
        }))
        .map_err(|e| Error::Internal(e.to_string()))?;
        let headers = dispatch::signed_headers(&secret, &body);
        let answer = delivery
            .egress
            .post_json(url.as_str(), headers, body, 4096)
            .await
            .map_err(refused)?;
        if !(200..300).contains(&answer.status) {
            return Err(Error::refused(
                "url_verification_failed",
                format!(
                    "the request URL answered the challenge with status {}",
                    answer.status
                ),
            ));
        }
        let text = String::from_utf8_lossy(&answer.body);
        let echoed = text.trim() == challenge
            || serde_json::from_str::<serde_json::Value>(&text)
                .is_ok_and(|v| v["challenge"].as_str() == Some(challenge.as_str()));
        if !echoed {
            return Err(Error::refused(
                "url_verification_failed",
                "the request URL did not echo the challenge",
            ));
        }
        Ok(())
    }

    /// A bot's signing secret, decrypted.
    pub(crate) async fn signing_key(
        &self,
        workspace: WorkspaceId,
        bot: UserId,
        sealed: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
        let mut pooled = self.store.reader().await?;
        let row = bot.to_string();
        self.auditor
            .keyring()
            .decrypt(
                &mut pooled.conn(),
                &Scope::Workspace(workspace),
                secret_aad(&row),
                sealed,
            )
            .await
            .map_err(|e| Error::Internal(e.to_string()))
    }

    /// A bot's deliveries parked after their last retry, oldest first.
    pub async fn dead_letters(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        bot: UserId,
    ) -> Result<Vec<EventDeliveryView>, Error> {
        let mut conn = self.store.reader().await?;
        self.authorize_admin_read(&mut conn.conn(), actor, workspace)
            .await?;
        bot_in(&mut conn.conn(), workspace, bot).await?;
        Ok(bot_events::dead(&mut conn.conn(), bot)
            .await?
            .into_iter()
            .map(delivery_view)
            .collect())
    }

    /// Puts a parked delivery back in the bot's queue (with the same `event_id`), due now.
    pub async fn replay_dead_letter(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        bot: UserId,
        id: EventDeliveryId,
    ) -> Result<(), Error> {
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let by = this.authorize_admin(tx, &actor, workspace).await?;
                    bot_in(&mut tx.conn(), workspace, bot).await?;
                    this.authorize_issue(tx, &actor, workspace, bot, by).await?;
                    if !bot_events::replay(&mut tx.conn(), bot, id, Utc::now().timestamp_millis())
                        .await?
                    {
                        return Err(Error::NotFound("delivery"));
                    }
                    this.auditor
                        .record(
                            tx,
                            Event::by(&actor, "bot.event_replay", Outcome::Allowed)
                                .target("event_delivery", id)
                                .workspace(workspace)
                                .subject(bot),
                        )
                        .await?;
                    Ok(())
                })
            })
            .await?;
        self.delivery().wake();
        Ok(())
    }
}
