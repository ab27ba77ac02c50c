//! Bot accounts, their API tokens and incoming webhooks (migration 0019).
//!
//! Tokens and webhook secrets are found by the SHA-256 of the secret; the secret itself is
//! never stored.

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};
use crate::domain::{BotTokenId, ChannelId, UserId, WebhookId, WorkspaceId};

/// A bot as stored (its account is the `users` row with the same id).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct BotRecord {
    /// The bot's account.
    pub user_id: UserId,
    /// The workspace it was made for and acts in.
    pub workspace_id: WorkspaceId,
    /// Picture shown next to its messages.
    pub avatar_url: Option<String>,
    /// Who created it.
    pub created_by: UserId,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Set once deactivated; a deactivated bot's tokens and webhooks no longer work.
    pub deactivated_at: Option<DateTime<Utc>>,
}

const BOT_COLUMNS: &str =
    "user_id, workspace_id, avatar_url, created_by, created_at, deactivated_at";

/// Stores a new bot (its account row must exist).
pub async fn insert(conn: &mut Conn<'_>, bot: &BotRecord) -> Result<(), StoreError> {
    let sql = "INSERT INTO bots (user_id, workspace_id, avatar_url, created_by, created_at) \
               VALUES ($1, $2, $3, $4, $5)";
    on!(conn, |c| sqlx::query(sql)
        .bind(bot.user_id)
        .bind(bot.workspace_id)
        .bind(&bot.avatar_url)
        .bind(bot.created_by)
        .bind(bot.created_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The bot with this account id.
pub async fn by_id(conn: &mut Conn<'_>, id: UserId) -> Result<Option<BotRecord>, StoreError> {
    let sql = format!("SELECT {BOT_COLUMNS} FROM bots WHERE user_id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// A workspace's bots, oldest first.
pub async fn in_workspace(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<BotRecord>, StoreError> {
    let sql =
        format!("SELECT {BOT_COLUMNS} FROM bots WHERE workspace_id = $1 ORDER BY user_id ASC");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .fetch_all(c)
        .await)?)
}

/// Marks a bot deactivated; false if it was already.
pub async fn deactivate(
    conn: &mut Conn<'_>,
    id: UserId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE bots SET deactivated_at = $2 WHERE user_id = $1 AND deactivated_at IS NULL";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// A bot token as stored (without its secret).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TokenRecord {
    /// Its id.
    pub id: BotTokenId,
    /// The bot it acts as.
    pub bot_id: UserId,
    /// The secret's last characters, to tell tokens apart in a list.
    pub hint: String,
    /// Granted scopes, space-separated.
    pub scopes: String,
    /// Who created it.
    pub created_by: UserId,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Set once revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

const TOKEN_COLUMNS: &str = "id, bot_id, hint, scopes, created_by, created_at, revoked_at";

/// Stores a new token with the hash of its secret.
pub async fn insert_token(
    conn: &mut Conn<'_>,
    token: &TokenRecord,
    hash: &[u8],
) -> Result<(), StoreError> {
    let sql =
        "INSERT INTO bot_tokens (id, bot_id, token_hash, hint, scopes, created_by, created_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7)";
    on!(conn, |c| sqlx::query(sql)
        .bind(token.id)
        .bind(token.bot_id)
        .bind(hash)
        .bind(&token.hint)
        .bind(&token.scopes)
        .bind(token.created_by)
        .bind(token.created_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// What authenticating a token needs: the token and its bot.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TokenWithBot {
    /// Its id.
    pub id: BotTokenId,
    /// The bot.
    pub bot_id: UserId,
    /// Granted scopes, space-separated.
    pub scopes: String,
    /// Set once revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The bot's workspace.
    pub workspace_id: WorkspaceId,
    /// Set once the bot was deactivated.
    pub deactivated_at: Option<DateTime<Utc>>,
    /// The bot's account status (`active` or `disabled`), as for anyone's account.
    pub account_status: String,
}

/// The token whose secret hashes to `hash`, with its bot.
pub async fn token_by_hash(
    conn: &mut Conn<'_>,
    hash: &[u8],
) -> Result<Option<TokenWithBot>, StoreError> {
    let sql = "SELECT t.id, t.bot_id, t.scopes, t.revoked_at, b.workspace_id, b.deactivated_at, \
               u.status AS account_status \
               FROM bot_tokens t JOIN bots b ON b.user_id = t.bot_id JOIN users u ON u.id = t.bot_id \
               WHERE t.token_hash = $1";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(hash)
        .fetch_optional(c)
        .await)?)
}

/// A bot's tokens, oldest first.
pub async fn tokens_of(conn: &mut Conn<'_>, bot: UserId) -> Result<Vec<TokenRecord>, StoreError> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM bot_tokens WHERE bot_id = $1 ORDER BY id ASC");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(bot)
        .fetch_all(c)
        .await)?)
}

/// One token of a bot.
pub async fn token(
    conn: &mut Conn<'_>,
    bot: UserId,
    id: BotTokenId,
) -> Result<Option<TokenRecord>, StoreError> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM bot_tokens WHERE bot_id = $1 AND id = $2");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(bot)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// Revokes one token of a bot; false if it was not live.
pub async fn revoke_token(
    conn: &mut Conn<'_>,
    bot: UserId,
    id: BotTokenId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE bot_tokens SET revoked_at = $3 WHERE bot_id = $1 AND id = $2 AND revoked_at IS NULL";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(bot)
        .bind(id)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// Revokes every live token of a bot; how many.
pub async fn revoke_all_tokens(
    conn: &mut Conn<'_>,
    bot: UserId,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let sql = "UPDATE bot_tokens SET revoked_at = $2 WHERE bot_id = $1 AND revoked_at IS NULL";
    Ok(on!(conn, |c| sqlx::query(sql)
        .bind(bot)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}

/// Revokes every live webhook posting as a bot; how many.
pub async fn revoke_all_webhooks(
    conn: &mut Conn<'_>,
    bot: UserId,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let sql =
        "UPDATE incoming_webhooks SET revoked_at = $2 WHERE bot_id = $1 AND revoked_at IS NULL";
    Ok(on!(conn, |c| sqlx::query(sql)
        .bind(bot)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}

/// An incoming webhook as stored (without its secret).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct WebhookRecord {
    /// Its id.
    pub id: WebhookId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Where its posts go.
    pub channel_id: ChannelId,
    /// Who its posts are by.
    pub bot_id: UserId,
    /// Who created it.
    pub created_by: UserId,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Set once revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

const WEBHOOK_COLUMNS: &str =
    "id, workspace_id, channel_id, bot_id, created_by, created_at, revoked_at";

/// Stores a new webhook with the hash of its secret.
pub async fn insert_webhook(
    conn: &mut Conn<'_>,
    hook: &WebhookRecord,
    hash: &[u8],
) -> Result<(), StoreError> {
    let sql = "INSERT INTO incoming_webhooks (id, secret_hash, workspace_id, channel_id, bot_id, created_by, created_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7)";
    on!(conn, |c| sqlx::query(sql)
        .bind(hook.id)
        .bind(hash)
        .bind(hook.workspace_id)
        .bind(hook.channel_id)
        .bind(hook.bot_id)
        .bind(hook.created_by)
        .bind(hook.created_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The webhook whose secret hashes to `hash`.
pub async fn webhook_by_hash(
    conn: &mut Conn<'_>,
    hash: &[u8],
) -> Result<Option<WebhookRecord>, StoreError> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM incoming_webhooks WHERE secret_hash = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(hash)
        .fetch_optional(c)
        .await)?)
}

/// A workspace's webhooks, oldest first.
pub async fn webhooks_in(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<WebhookRecord>, StoreError> {
    let sql = format!(
        "SELECT {WEBHOOK_COLUMNS} FROM incoming_webhooks WHERE workspace_id = $1 ORDER BY id ASC"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .fetch_all(c)
        .await)?)
}

/// Revokes a webhook of a workspace; false if it was not live.
pub async fn revoke_webhook(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    id: WebhookId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE incoming_webhooks SET revoked_at = $3 WHERE workspace_id = $1 AND id = $2 AND revoked_at IS NULL";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(workspace)
        .bind(id)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// How many channels that are not public `bot` is a member of while `person` is not: what a
/// credential for the bot would let its holder read or post in beyond what `person` can.
pub async fn channels_beyond(
    conn: &mut Conn<'_>,
    bot: UserId,
    person: UserId,
) -> Result<i64, StoreError> {
    let sql = "SELECT COUNT(*) FROM channel_members b JOIN channels c ON c.id = b.channel_id \
               WHERE b.user_id = $1 AND c.kind <> 'public' AND NOT EXISTS \
               (SELECT 1 FROM channel_members p WHERE p.channel_id = b.channel_id AND p.user_id = $2)";
    let (n,): (i64,) = on!(conn, |c| sqlx::query_as(sql)
        .bind(bot)
        .bind(person)
        .fetch_one(c)
        .await)?;
    Ok(n)
}

/// Whether a bot is live: not deactivated, and its account active.
pub async fn live(conn: &mut Conn<'_>, bot: UserId) -> Result<bool, StoreError> {
    let sql = "SELECT b.user_id FROM bots b JOIN users u ON u.id = b.user_id \
               WHERE b.user_id = $1 AND b.deactivated_at IS NULL AND u.status = 'active'";
    let row: Option<(UserId,)> = on!(conn, |c| sqlx::query_as(sql)
        .bind(bot)
        .fetch_optional(c)
        .await)?;
    Ok(row.is_some())
}

/// Whether a bot's account is active (an operator may disable it like anyone's).
pub async fn account_active(conn: &mut Conn<'_>, bot: UserId) -> Result<bool, StoreError> {
    let sql = "SELECT status FROM users WHERE id = $1";
    let row: Option<(String,)> = on!(conn, |c| sqlx::query_as(sql)
        .bind(bot)
        .fetch_optional(c)
        .await)?;
    Ok(row.is_some_and(|(status,)| status == "active"))
}
