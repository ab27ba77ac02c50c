//! Bots: accounts of kind bot, their scoped API tokens and incoming webhooks.
//!
//! A bot is an account without a password (a `users` row whose display name is encrypted
//! like anyone's) plus a `bots` row naming the one workspace it belongs to, where it is a
//! member with the built-in `bot` role. It acts through a token (`xoxb-...`, shown once,
//! stored as its SHA-256) or an incoming webhook (a secret URL, stored the same way); either
//! becomes an [`Actor`] whose principal is the bot ([`crate::rbac::Principal::Bot`]), so
//! what it does is authorized by `rbac` like anyone's (its role, the channels it was added
//! to) plus the token's scopes, and audited with the bot as actor. Workspace administrators
//! (`members.manage`) manage bots, tokens and webhooks.
//!
//! `payload` turns Slack's message payloads into message bodies; `ratelimit` holds the
//! per-credential limits the Slack-compatible edge applies; `ts` is Slack's message
//! timestamps; `delivery` sends committed events to bots' request URLs (Slack's Events
//! API), signed with each bot's signing secret; `commands` sends slash commands to the bots
//! that answer them, takes their answers (at once or through a response URL) and makes
//! ephemeral messages.

mod commands;
pub mod delivery;
mod interactions;
mod inventory;
pub mod payload;
pub mod ratelimit;
mod tokens;
pub mod ts;
mod views;
mod webhooks;

pub use commands::{CommandAnswer, CommandName, CommandReply, CommandSpec, MAX_COMMAND_TEXT};
pub use delivery::{Delivery, EventTypes};
pub use interactions::ActionInput;
pub use inventory::INVENTORY;
pub use payload::SlackContent;
pub use ratelimit::Tier;
pub use views::{
    BotCommandView, BotTokenView, BotView, CommandReplyView, CreatedBotToken, CreatedSigningSecret,
    CreatedWebhook, EventDeliveryView, EventSubscriptionView, SlashCommandView, WebhookView,
};
pub use webhooks::IssuedWebhook;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;

use crate::accounts::{decrypt_profile, insert_profile, Profile};
use crate::audit::{Auditor, Event, Outcome};
use crate::chat::ChatService;
use crate::domain::{DisplayName, Email, ParseError, UserId, WorkspaceId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::rbac::{self, builtin, Action, Actor, BotCredential, Principal, Resource};
use crate::store::bots::{self, BotRecord};
use crate::store::{users, workspaces as ws_store, Conn, Store, Tx};

/// The longest avatar URL accepted.
const MAX_AVATAR_URL: usize = 2048;

/// A bot's picture: an `https` (or `http`) URL, parsed at the edge.
#[derive(Clone, Debug)]
pub struct AvatarUrl(String);

impl AvatarUrl {
    /// Parses a URL given for a bot's picture.
    pub fn parse(field: &'static str, raw: &str) -> Result<AvatarUrl, ParseError> {
        let raw = raw.trim();
        let ok = raw.len() <= MAX_AVATAR_URL
            && url::Url::parse(raw).is_ok_and(|u| matches!(u.scheme(), "https" | "http"));
        if ok {
            Ok(AvatarUrl(raw.to_owned()))
        } else {
            Err(ParseError::new(
                field,
                format!("must be an http(s) URL of at most {MAX_AVATAR_URL} characters"),
            ))
        }
    }
}

/// Bot operations; cheap to clone.
#[derive(Clone)]
pub struct BotService {
    store: Store,
    auditor: Auditor,
    chat: ChatService,
    limiter: Arc<ratelimit::RateLimiter>,
    delivery: Arc<Delivery>,
    ephemerals: Arc<interactions::Ephemerals>,
}

impl BotService {
    /// A service over `store`, posting through `chat`, delivering events as `delivery` says.
    pub fn new(
        store: Store,
        auditor: Auditor,
        chat: ChatService,
        delivery: Delivery,
    ) -> BotService {
        BotService {
            store,
            auditor,
            chat,
            limiter: Default::default(),
            delivery: Arc::new(delivery),
            ephemerals: Default::default(),
        }
    }

    /// The chat service bots act through.
    pub fn chat(&self) -> &ChatService {
        &self.chat
    }

    /// Takes one call of `tier` from the credential's allowance; `Err(seconds)` to wait.
    pub fn rate_limit(&self, who: BotCredential, tier: Tier) -> Result<(), u64> {
        self.limiter.take(who, tier)
    }

    /// Counts one slash command or press by `person`, refused when they made too many.
    pub(crate) fn limit_person(&self, person: UserId) -> Result<(), Error> {
        self.limiter
            .take(ratelimit::Caller::Person(person), Tier::Interactions)
            .map_err(|seconds| Error::RateLimited {
                code: "rate_limited",
                message: format!(
                    "too many commands and button presses; try again in {seconds} seconds"
                ),
                retry_after_seconds: seconds,
            })
    }

    /// Creates a bot in `workspace`: an account with the `bot` role there.
    #[tracing::instrument(level = "debug", skip_all, fields(workspace = %workspace))]
    pub async fn create(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        name: DisplayName,
        avatar_url: Option<AvatarUrl>,
    ) -> Result<BotView, Error> {
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.auditor
                        .authorize(
                            tx,
                            &actor,
                            Action::ManageMembers,
                            Resource::Workspace(workspace),
                        )
                        .await?;
                    rbac::authorize_grant(&mut tx.conn(), &actor, workspace, builtin::BOT).await?;
                    let creator = actor.user_id().ok_or_else(|| {
                        Error::refused("user_required", "only people create bots")
                    })?;
                    let record = insert_bot(
                        tx,
                        &this.auditor,
                        &actor,
                        workspace,
                        &name,
                        avatar_url.map(|u| u.0),
                        creator,
                    )
                    .await?;
                    this.view(&mut tx.conn(), record).await
                })
            })
            .await
    }

    /// The bots of `workspace`.
    pub async fn list(&self, actor: &Actor, workspace: WorkspaceId) -> Result<Vec<BotView>, Error> {
        let mut conn = self.store.reader().await?;
        self.authorize_admin_read(&mut conn.conn(), actor, workspace)
            .await?;
        let mut out = Vec::new();
        for record in bots::in_workspace(&mut conn.conn(), workspace).await? {
            out.push(self.view(&mut conn.conn(), record).await?);
        }
        Ok(out)
    }

    /// One bot of `workspace`.
    pub async fn get(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        bot: UserId,
    ) -> Result<BotView, Error> {
        let mut conn = self.store.reader().await?;
        self.authorize_admin_read(&mut conn.conn(), actor, workspace)
            .await?;
        let record = bot_in(&mut conn.conn(), workspace, bot).await?;
        self.view(&mut conn.conn(), record).await
    }

    /// Deactivates a bot: its tokens are revoked and its webhooks stop working; its messages
    /// stay.
    pub async fn deactivate(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        bot: UserId,
    ) -> Result<BotView, Error> {
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.auditor
                        .authorize(
                            tx,
                            &actor,
                            Action::ManageMembers,
                            Resource::Workspace(workspace),
                        )
                        .await?;
                    let mut record = bot_in(&mut tx.conn(), workspace, bot).await?;
                    let now = Utc::now();
                    if bots::deactivate(&mut tx.conn(), bot, now).await? {
                        let revoked = bots::revoke_all_tokens(&mut tx.conn(), bot, now).await?;
                        let hooks = bots::revoke_all_webhooks(&mut tx.conn(), bot, now).await?;
                        record.deactivated_at = Some(now);
                        this.auditor
                            .record(
                                tx,
                                Event::by(&actor, "bot.deactivate", Outcome::Allowed)
                                    .target("bot", bot)
                                    .workspace(workspace)
                                    .subject(bot)
                                    .details(serde_json::json!({
                                        "tokens_revoked": revoked,
                                        "webhooks_revoked": hooks,
                                    })),
                            )
                            .await?;
                    }
                    this.view(&mut tx.conn(), record).await
                })
            })
            .await
    }

    /// The acting bot as it sees itself (who a token belongs to); no one else's.
    pub async fn own(&self, actor: &Actor) -> Result<BotView, Error> {
        let Principal::Bot {
            bot_id,
            workspace_id,
            ..
        } = actor.principal
        else {
            return Err(Error::NotFound("bot"));
        };
        let mut conn = self.store.reader().await?;
        let record = bot_in(&mut conn.conn(), workspace_id, bot_id).await?;
        self.view(&mut conn.conn(), record).await
    }

    /// The bot accounts of `workspace`, each with its picture (for showing who is a bot).
    pub async fn bot_accounts(
        &self,
        workspace: WorkspaceId,
    ) -> Result<HashMap<UserId, Option<String>>, Error> {
        let mut conn = self.store.reader().await?;
        Ok(bots::in_workspace(&mut conn.conn(), workspace)
            .await?
            .into_iter()
            .map(|b| (b.user_id, b.avatar_url))
            .collect())
    }

    /// Whether `user` is a bot of `workspace`, and if so its avatar: one lookup, for a
    /// caller that has already decided who may see the workspace's members.
    pub async fn bot_account(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<Option<Option<String>>, Error> {
        let mut conn = self.store.reader().await?;
        Ok(bots::by_id(&mut conn.conn(), user)
            .await?
            .filter(|b| b.workspace_id == workspace)
            .map(|b| b.avatar_url))
    }

    async fn authorize_admin_read(
        &self,
        conn: &mut Conn<'_>,
        actor: &Actor,
        workspace: WorkspaceId,
    ) -> Result<(), Error> {
        self.auditor
            .authorize_read(
                &self.store,
                conn,
                actor,
                Action::ManageMembers,
                Resource::Workspace(workspace),
            )
            .await
    }

    async fn view(&self, conn: &mut Conn<'_>, record: BotRecord) -> Result<BotView, Error> {
        let user = users::by_id(conn, record.user_id)
            .await?
            .ok_or(Error::NotFound("bot"))?;
        let (_, name) = decrypt_profile(
            self.auditor.keyring(),
            conn,
            user.id,
            user.email_enc.as_deref(),
            user.display_name_enc.as_deref(),
        )
        .await?;
        Ok(BotView {
            id: record.user_id,
            workspace_id: record.workspace_id,
            name,
            avatar_url: record.avatar_url,
            created_by: record.created_by,
            created_at: record.created_at,
            deactivated: record.deactivated_at.is_some(),
        })
    }
}

/// The bot `id` if it belongs to `workspace`.
async fn bot_in(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    id: UserId,
) -> Result<BotRecord, Error> {
    bots::by_id(conn, id)
        .await?
        .filter(|b| b.workspace_id == workspace)
        .ok_or(Error::NotFound("bot"))
}

/// Makes a bot of `workspace` inside the write `tx`, for a caller that has decided `actor`
/// may: its account (no password; an address that reaches nobody), its membership with the
/// `bot` role and its record, audited as `bot.create` with `creator` as its maker.
pub(crate) async fn insert_bot(
    tx: &mut Tx,
    auditor: &Auditor,
    actor: &Actor,
    workspace: WorkspaceId,
    name: &DisplayName,
    avatar_url: Option<String>,
    creator: UserId,
) -> Result<BotRecord, Error> {
    let id = UserId::generate();
    // Bots sign in with tokens only; the address identifies the account and reaches nobody.
    let email = Email::parse("email", &format!("bot-{id}@bots.concord.invalid"))?;
    let profile = Profile {
        email: &email,
        display_name: name,
        email_verified: false,
    };
    insert_profile(
        tx,
        auditor.keyring(),
        id,
        profile,
        None,
        None,
        Some(creator),
    )
    .await?;
    let now = Utc::now();
    ws_store::add_member(&mut tx.conn(), workspace, id, builtin::BOT, now).await?;
    let record = BotRecord {
        user_id: id,
        workspace_id: workspace,
        avatar_url,
        created_by: creator,
        created_at: now,
        deactivated_at: None,
    };
    bots::insert(&mut tx.conn(), &record).await?;
    tx.emit(DomainEvent::MemberAdded {
        workspace_id: workspace,
        user_id: id,
        role_id: builtin::BOT,
    });
    auditor
        .record(
            tx,
            Event::by(actor, "bot.create", Outcome::Allowed)
                .target("bot", id)
                .workspace(workspace)
                .subject(id),
        )
        .await?;
    Ok(record)
}
