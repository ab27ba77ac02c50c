//! Events out (migration 0020): each bot's signing secret, request URL and event types, and
//! its queue of deliveries.
//!
//! A delivery is stored by the outbox consumer in the transaction that moves its cursor, so
//! an event is queued exactly once per bot and Slack event id; it is deleted once delivered,
//! rescheduled after a failed attempt, and parked (`dead`) after its last retry until an
//! administrator replays it. Times that the dispatcher compares are Unix milliseconds.

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};
use crate::domain::{EventDeliveryId, UserId, WorkspaceId};

/// A bot's event settings as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SettingsRecord {
    /// The bot.
    pub bot_id: UserId,
    /// Its workspace (whose key the secret is encrypted under).
    pub workspace_id: WorkspaceId,
    /// The signing secret, a keyring ciphertext.
    pub signing_secret_enc: Vec<u8>,
    /// When the secret was made (or last rotated).
    pub secret_created_at: DateTime<Utc>,
    /// Where events go, once verified.
    pub request_url: Option<String>,
    /// Subscribed Slack event types, space-separated.
    pub event_types: String,
    /// Where presses of buttons and selects in its messages go (migration 0023).
    pub interactivity_url: Option<String>,
    /// Who last changed the settings.
    pub updated_by: UserId,
    /// When.
    pub updated_at: DateTime<Utc>,
}

const SETTINGS: &str = "bot_id, workspace_id, signing_secret_enc, secret_created_at, request_url, \
                        event_types, interactivity_url, updated_by, updated_at";

/// A bot's settings.
pub async fn settings(
    conn: &mut Conn<'_>,
    bot: UserId,
) -> Result<Option<SettingsRecord>, StoreError> {
    let sql = format!("SELECT {SETTINGS} FROM bot_event_settings WHERE bot_id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(bot)
        .fetch_optional(c)
        .await)?)
}

/// Stores a new signing secret for a bot (creating its settings, or replacing the secret
/// and keeping its URL and event types).
pub async fn set_secret(
    conn: &mut Conn<'_>,
    bot: UserId,
    workspace: WorkspaceId,
    secret_enc: &[u8],
    by: UserId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO bot_event_settings \
               (bot_id, workspace_id, signing_secret_enc, secret_created_at, event_types, updated_by, updated_at) \
               VALUES ($1, $2, $3, $4, '', $5, $6) \
               ON CONFLICT (bot_id) DO UPDATE SET signing_secret_enc = excluded.signing_secret_enc, \
               secret_created_at = excluded.secret_created_at, updated_by = excluded.updated_by, \
               updated_at = excluded.updated_at";
    on!(conn, |c| sqlx::query(sql)
        .bind(bot)
        .bind(workspace)
        .bind(secret_enc)
        .bind(now)
        .bind(by)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Sets (or, with `None`, clears) where a bot's events go and which; false if the bot has
/// no settings yet (no signing secret).
pub async fn set_subscription(
    conn: &mut Conn<'_>,
    bot: UserId,
    url: Option<&str>,
    event_types: &str,
    by: UserId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE bot_event_settings SET request_url = $2, event_types = $3, updated_by = $4, \
               updated_at = $5 WHERE bot_id = $1";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(bot)
        .bind(url)
        .bind(event_types)
        .bind(by)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// Sets (or, with `None`, clears) where a bot's interactions go; false if the bot has no
/// settings yet (no signing secret).
pub async fn set_interactivity(
    conn: &mut Conn<'_>,
    bot: UserId,
    url: Option<&str>,
    by: UserId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE bot_event_settings SET interactivity_url = $2, updated_by = $3, \
               updated_at = $4 WHERE bot_id = $1";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(bot)
        .bind(url)
        .bind(by)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// A bot that receives events: its id and subscribed types.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Subscriber {
    /// The bot.
    pub bot_id: UserId,
    /// Subscribed Slack event types, space-separated.
    pub event_types: String,
}

/// The bots of a workspace with a request URL, live (not deactivated, account active).
pub async fn subscribers_in(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<Subscriber>, StoreError> {
    let sql = "SELECT s.bot_id, s.event_types FROM bot_event_settings s \
               JOIN bots b ON b.user_id = s.bot_id JOIN users u ON u.id = s.bot_id \
               WHERE s.workspace_id = $1 AND s.request_url IS NOT NULL AND s.event_types <> '' \
               AND b.deactivated_at IS NULL AND u.status = 'active' ORDER BY s.bot_id";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .fetch_all(c)
        .await)?)
}

/// A delivery to queue.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    /// Its id.
    pub id: EventDeliveryId,
    /// The bot it goes to.
    pub bot_id: UserId,
    /// The bot's workspace.
    pub workspace_id: WorkspaceId,
    /// Slack's event id (stable across retries).
    pub event_id: String,
    /// Slack's event type.
    pub event_type: String,
    /// The domain event's serialized form.
    pub source: String,
    /// When the event was committed, Unix microseconds.
    pub event_time_us: i64,
}

/// Rows per `INSERT` in [`enqueue`] (nine parameters each).
const ENQUEUE_CHUNK: usize = 100;

/// Queues deliveries, each due now; one already queued (same bot and event id) is left alone.
pub async fn enqueue(
    conn: &mut Conn<'_>,
    deliveries: &[NewDelivery],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let now_ms = now.timestamp_millis();
    let mut added = 0;
    // One statement per chunk of rows: a batch of events for many bots is a few statements,
    // not one per delivery.
    for chunk in deliveries.chunks(ENQUEUE_CHUNK) {
        let mut sql = String::from(
            "INSERT INTO bot_event_deliveries \
             (id, bot_id, workspace_id, event_id, event_type, source, event_time_us, state, \
              attempts, next_attempt_ms, created_at) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 9;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, 'pending', 0, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                b + 9
            ));
        }
        sql.push_str(" ON CONFLICT (bot_id, event_id) DO NOTHING");
        added += on!(conn, |c| {
            let mut q = sqlx::query(&sql);
            for d in chunk {
                q = q
                    .bind(d.id)
                    .bind(d.bot_id)
                    .bind(d.workspace_id)
                    .bind(&d.event_id)
                    .bind(&d.event_type)
                    .bind(&d.source)
                    .bind(d.event_time_us)
                    .bind(now_ms)
                    .bind(now);
            }
            q.execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(added)
}

/// How many deliveries `bot` has queued or parked.
pub async fn queued_for(conn: &mut Conn<'_>, bot: UserId) -> Result<i64, StoreError> {
    let sql = "SELECT COUNT(*) FROM bot_event_deliveries WHERE bot_id = $1";
    let (n,): (i64,) = on!(conn, |c| sqlx::query_as(sql).bind(bot).fetch_one(c).await)?;
    Ok(n)
}

/// A queued delivery.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DeliveryRecord {
    /// Its id.
    pub id: EventDeliveryId,
    /// The bot it goes to.
    pub bot_id: UserId,
    /// The bot's workspace.
    pub workspace_id: WorkspaceId,
    /// Slack's event id.
    pub event_id: String,
    /// Slack's event type.
    pub event_type: String,
    /// The domain event's serialized form.
    pub source: String,
    /// When the event was committed, Unix microseconds.
    pub event_time_us: i64,
    /// `pending` or `dead`.
    pub state: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// When the next attempt is due, Unix milliseconds.
    pub next_attempt_ms: i64,
    /// Why the last attempt failed (Slack's retry reason, then details).
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
}

const DELIVERY: &str =
    "id, bot_id, workspace_id, event_id, event_type, source, event_time_us, state, \
                        attempts, next_attempt_ms, last_error, created_at";

/// Bots with pending deliveries and when the first of each is due (Unix milliseconds).
pub async fn pending_bots(conn: &mut Conn<'_>) -> Result<Vec<(UserId, i64)>, StoreError> {
    let sql = "SELECT bot_id, MIN(next_attempt_ms) FROM bot_event_deliveries \
               WHERE state = 'pending' GROUP BY bot_id";
    Ok(on!(conn, |c| sqlx::query_as(sql).fetch_all(c).await)?)
}

/// A bot's pending deliveries due at `now_ms`, oldest first, at most `limit`.
pub async fn due(
    conn: &mut Conn<'_>,
    bot: UserId,
    now_ms: i64,
    limit: i64,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let sql = format!(
        "SELECT {DELIVERY} FROM bot_event_deliveries WHERE state = 'pending' AND bot_id = $1 \
         AND next_attempt_ms <= $2 ORDER BY next_attempt_ms, id LIMIT $3"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(bot)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// How many parked deliveries [`dead`] lists at most.
pub const DEAD_LISTED: i64 = 500;

/// A bot's parked deliveries, oldest first, at most [`DEAD_LISTED`].
pub async fn dead(conn: &mut Conn<'_>, bot: UserId) -> Result<Vec<DeliveryRecord>, StoreError> {
    let sql = format!(
        "SELECT {DELIVERY} FROM bot_event_deliveries WHERE state = 'dead' AND bot_id = $1 \
         ORDER BY id LIMIT {DEAD_LISTED}"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(bot)
        .fetch_all(c)
        .await)?)
}

/// Removes a delivery (it was delivered, or is no longer wanted).
pub async fn remove(conn: &mut Conn<'_>, id: EventDeliveryId) -> Result<bool, StoreError> {
    let sql = "DELETE FROM bot_event_deliveries WHERE id = $1";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// Records a failed attempt: the next one is due at `next_ms`, or, with `None`, the delivery
/// is parked.
pub async fn failed(
    conn: &mut Conn<'_>,
    id: EventDeliveryId,
    attempts: i64,
    next_ms: Option<i64>,
    error: &str,
) -> Result<(), StoreError> {
    let sql = "UPDATE bot_event_deliveries SET attempts = $2, state = $3, next_attempt_ms = $4, \
               last_error = $5 WHERE id = $1 AND state = 'pending'";
    let state = if next_ms.is_some() { "pending" } else { "dead" };
    on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .bind(attempts)
        .bind(state)
        .bind(next_ms.unwrap_or(0))
        .bind(error)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Puts a parked delivery of `bot` back in its queue, due at `now_ms` with its retries
/// counted afresh; false if there is no such parked delivery.
pub async fn replay(
    conn: &mut Conn<'_>,
    bot: UserId,
    id: EventDeliveryId,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let sql =
        "UPDATE bot_event_deliveries SET state = 'pending', attempts = 0, next_attempt_ms = $3 \
               WHERE id = $1 AND bot_id = $2 AND state = 'dead'";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .bind(bot)
        .bind(now_ms)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}
