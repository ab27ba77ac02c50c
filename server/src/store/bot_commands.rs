//! Slash commands and response URLs (migration 0022).
//!
//! A command is found by its workspace and name; a response URL by the SHA-256 of its secret.
//! Taking a response URL ([`take_response_url`]) uses one of its answers in the statement that
//! checks it, so concurrent answers never exceed the allowance.

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};
use crate::domain::{BotCommandId, ChannelId, MessageId, UserId, WorkspaceId};

/// A slash command as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CommandRecord {
    /// Its id.
    pub id: BotCommandId,
    /// The workspace where it can be typed.
    pub workspace_id: WorkspaceId,
    /// The bot that answers it.
    pub bot_id: UserId,
    /// The name typed after `/`, lowercase.
    pub command: String,
    /// Where invocations are POSTed.
    pub url: String,
    /// What it does, shown by the composer.
    pub description: String,
    /// Its arguments, shown by the composer.
    pub usage_hint: String,
    /// Who made it.
    pub created_by: UserId,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, workspace_id, bot_id, command, url, description, usage_hint, created_by, created_at, updated_at";

/// Stores a new command; false if the workspace already has one of that name.
pub async fn insert(conn: &mut Conn<'_>, c: &CommandRecord) -> Result<bool, StoreError> {
    let sql = format!(
        "INSERT INTO bot_commands ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (workspace_id, command) DO NOTHING"
    );
    let n = on!(conn, |c2| sqlx::query(&sql)
        .bind(c.id)
        .bind(c.workspace_id)
        .bind(c.bot_id)
        .bind(&c.command)
        .bind(&c.url)
        .bind(&c.description)
        .bind(&c.usage_hint)
        .bind(c.created_by)
        .bind(c.created_at)
        .bind(c.updated_at)
        .execute(c2)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// Changes a command's URL, description and usage hint; false if it is not in `workspace`.
pub async fn update(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    id: BotCommandId,
    url: &str,
    description: &str,
    usage_hint: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql =
        "UPDATE bot_commands SET url = $3, description = $4, usage_hint = $5, updated_at = $6 \
               WHERE id = $1 AND workspace_id = $2";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .bind(workspace)
        .bind(url)
        .bind(description)
        .bind(usage_hint)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// Deletes a command; false if it is not in `workspace`.
pub async fn delete(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    id: BotCommandId,
) -> Result<bool, StoreError> {
    let sql = "DELETE FROM bot_commands WHERE id = $1 AND workspace_id = $2";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .bind(workspace)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// A command by id.
pub async fn by_id(
    conn: &mut Conn<'_>,
    id: BotCommandId,
) -> Result<Option<CommandRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM bot_commands WHERE id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// The command `name` of `workspace`.
pub async fn by_name(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    name: &str,
) -> Result<Option<CommandRecord>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM bot_commands WHERE workspace_id = $1 AND command = $2");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .bind(name)
        .fetch_optional(c)
        .await)?)
}

/// The commands of `workspace` (of one bot, if given), by name.
pub async fn in_workspace(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    bot: Option<UserId>,
) -> Result<Vec<CommandRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM bot_commands WHERE workspace_id = $1 AND ($2 IS NULL OR bot_id = $2) \
         ORDER BY command"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .bind(bot)
        .fetch_all(c)
        .await)?)
}

/// The commands of live bots (not deactivated, account active) in `workspace`, by name.
pub async fn live_in_workspace(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<CommandRecord>, StoreError> {
    let sql =
        "SELECT c.id, c.workspace_id, c.bot_id, c.command, c.url, c.description, c.usage_hint, \
               c.created_by, c.created_at, c.updated_at FROM bot_commands c \
               JOIN bots b ON b.user_id = c.bot_id JOIN users u ON u.id = c.bot_id \
               WHERE c.workspace_id = $1 AND b.deactivated_at IS NULL AND u.status = 'active' \
               ORDER BY c.command";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .fetch_all(c)
        .await)?)
}

/// A response URL as stored (without its secret).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ResponseUrlRecord {
    /// The bot that may answer through it.
    pub bot_id: UserId,
    /// Its workspace.
    pub workspace_id: WorkspaceId,
    /// The channel answers go to.
    pub channel_id: ChannelId,
    /// The person whose command or action it answers (who sees ephemeral answers).
    pub user_id: UserId,
    /// The bot's message an interaction came from, which answers may replace or delete.
    pub message_id: Option<MessageId>,
    /// Answers left after this one.
    pub uses_left: i64,
}

/// Stores a response URL by its secret's hash, and deletes expired ones.
pub async fn insert_response_url(
    conn: &mut Conn<'_>,
    secret_hash: &[u8],
    r: &ResponseUrlRecord,
    expires_ms: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    let prune = "DELETE FROM bot_response_urls WHERE expires_ms <= $1";
    on!(conn, |c| sqlx::query(prune)
        .bind(now_ms)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    let sql = "INSERT INTO bot_response_urls \
               (secret_hash, bot_id, workspace_id, channel_id, user_id, message_id, uses_left, expires_ms) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    on!(conn, |c| sqlx::query(sql)
        .bind(secret_hash)
        .bind(r.bot_id)
        .bind(r.workspace_id)
        .bind(r.channel_id)
        .bind(r.user_id)
        .bind(r.message_id)
        .bind(r.uses_left)
        .bind(expires_ms)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Uses one answer of the response URL whose secret hashes to `secret_hash`, if it has one
/// left and has not expired at `now_ms`.
pub async fn take_response_url(
    conn: &mut Conn<'_>,
    secret_hash: &[u8],
    now_ms: i64,
) -> Result<Option<ResponseUrlRecord>, StoreError> {
    let sql = "UPDATE bot_response_urls SET uses_left = uses_left - 1 \
               WHERE secret_hash = $1 AND uses_left > 0 AND expires_ms > $2 \
               RETURNING bot_id, workspace_id, channel_id, user_id, message_id, uses_left";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(secret_hash)
        .bind(now_ms)
        .fetch_optional(c)
        .await)?)
}

/// Ends every response URL handed to `bot` (its signing secret changed); how many.
pub async fn end_response_urls(conn: &mut Conn<'_>, bot: UserId) -> Result<u64, StoreError> {
    let sql = "DELETE FROM bot_response_urls WHERE bot_id = $1";
    Ok(on!(conn, |c| sqlx::query(sql)
        .bind(bot)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}
