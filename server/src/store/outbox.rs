//! The transactional outbox: committed domain events, in commit order, for durable consumers.
//!
//! The group-commit writer appends the events a batch emitted in that batch's transaction
//! ([`append`]), so an event is stored if and only if its change is. Ids come from the
//! one-row `outbox_head`, advanced at the end of the batch under that row's write lock: the
//! lock is held until the commit, so a transaction of another process (the command line
//! while a server runs) takes its ids only after this one committed. Ids therefore follow
//! commit order on both backends, are contiguous (a rolled-back batch gives its ids back)
//! and are never reused (pruning leaves the head alone). A consumer that reads the rows
//! after its cursor never skips one that commits later, and a jump in ids after its cursor
//! means rows it had not read were pruned.
//!
//! Consumers (`outbox_consumers`) each keep the id of the last event they handled. Rows every
//! registered consumer has passed, and rows older than the configured maximum age, are
//! deleted by [`prune`].

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};

/// An event to append: the writer fills it from a [`crate::events::DomainEvent`].
#[derive(Clone, Debug)]
pub struct NewOutboxEvent {
    /// A UUIDv7 naming this event, for consumers' deduplication.
    pub event_id: String,
    /// The event's type (`message_created`, ...).
    pub kind: String,
    /// The workspace it concerns, if any.
    pub workspace_id: Option<String>,
    /// The event's serialized form (JSON); ids, never decrypted content.
    pub payload: String,
}

/// A stored event.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OutboxRecord {
    /// Position in commit order, from 1, contiguous.
    pub id: i64,
    /// A UUIDv7 naming the event.
    pub event_id: String,
    /// The event's type.
    pub kind: String,
    /// The workspace it concerns, if any.
    pub workspace_id: Option<String>,
    /// The event's serialized form (JSON).
    pub payload: String,
    /// When the batch that emitted it was committed (just before the commit, once its ids
    /// were taken: times rise with ids).
    pub committed_at: DateTime<Utc>,
}

/// A registered consumer.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ConsumerRecord {
    /// Its name.
    pub name: String,
    /// The id of the last event it handled.
    pub cursor: i64,
    /// When it last moved its cursor (or registered).
    pub updated_at: DateTime<Utc>,
}

/// Rows per multi-row INSERT (6 parameters each, well under both backends' limits).
const INSERT_CHUNK: usize = 256;

/// Appends `events` in order with one statement per chunk, numbering them after the head
/// (the writer's job only, at the end of a batch: the head row stays locked until commit).
/// Each row is stamped once the head is locked, so times rise with ids even when the lock
/// was waited for. Returns the last id given.
pub(crate) async fn append(
    conn: &mut Conn<'_>,
    events: &[NewOutboxEvent],
) -> Result<i64, StoreError> {
    let mut last_id = 0;
    for chunk in events.chunks(INSERT_CHUNK) {
        let n = chunk.len() as i64;
        match conn {
            Conn::Sqlite(c) => {
                let (last,): (i64,) = sqlx::query_as(
                    "UPDATE outbox_head SET last_id = last_id + ?1 WHERE singleton = 1 \
                     RETURNING last_id",
                )
                .bind(n)
                .fetch_one(&mut **c)
                .await?;
                let base = last - n;
                last_id = last;
                // Taken with the head row locked (the UPDATE above), not before waiting.
                let committed_at = Utc::now();
                let mut sql = String::from(
                    "INSERT INTO outbox (id, event_id, kind, workspace_id, payload, committed_at) \
                     VALUES ",
                );
                for i in 0..chunk.len() {
                    sql.push_str(if i == 0 {
                        "(?,?,?,?,?,?)"
                    } else {
                        ",(?,?,?,?,?,?)"
                    });
                }
                let mut q = sqlx::query(&sql);
                for (i, e) in chunk.iter().enumerate() {
                    q = q
                        .bind(base + 1 + i as i64)
                        .bind(&e.event_id)
                        .bind(&e.kind)
                        .bind(&e.workspace_id)
                        .bind(&e.payload)
                        .bind(committed_at);
                }
                q.execute(&mut **c).await?;
            }
            Conn::Pg(c) => {
                // One round trip: the head's update (which waits for any other writer's
                // commit) numbers the rows the same statement inserts, stamped by the
                // database's clock once the head is locked.
                let mut sql = String::from(
                    "WITH head AS (UPDATE outbox_head SET last_id = last_id + $1 \
                     WHERE singleton = 1 RETURNING last_id - $1 AS base), \
                     ins AS (INSERT INTO outbox \
                     (id, event_id, kind, workspace_id, payload, committed_at) \
                     SELECT head.base + v.n, v.event_id, v.kind, v.workspace_id, v.payload, \
                     clock_timestamp() \
                     FROM head, (VALUES ",
                );
                for i in 0..chunk.len() {
                    let p = 2 + i * 5;
                    if i > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&format!(
                        "(${}::bigint, ${}::text, ${}::text, ${}::text, ${}::text)",
                        p,
                        p + 1,
                        p + 2,
                        p + 3,
                        p + 4
                    ));
                }
                sql.push_str(
                    ") AS v(n, event_id, kind, workspace_id, payload)) \
                     SELECT base + $1 FROM head",
                );
                let mut q = sqlx::query_as::<_, (i64,)>(&sql).bind(n);
                for (i, e) in chunk.iter().enumerate() {
                    q = q
                        .bind(1 + i as i64)
                        .bind(&e.event_id)
                        .bind(&e.kind)
                        .bind(&e.workspace_id)
                        .bind(&e.payload);
                }
                last_id = q.fetch_one(&mut **c).await?.0;
            }
        }
    }
    Ok(last_id)
}

/// Events with `id > after`, in commit order, at most `limit`.
pub async fn after(
    conn: &mut Conn<'_>,
    after: i64,
    limit: i64,
) -> Result<Vec<OutboxRecord>, StoreError> {
    let sql = "SELECT id, event_id, kind, workspace_id, payload, committed_at FROM outbox \
               WHERE id > $1 ORDER BY id LIMIT $2";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// The id of the last event ever appended (0 if none), pruned or not.
pub async fn head(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    let sql = "SELECT last_id FROM outbox_head WHERE singleton = 1";
    let row: Option<(i64,)> = on!(conn, |c| sqlx::query_as(sql).fetch_optional(c).await)?;
    Ok(row.map(|r| r.0).unwrap_or(0))
}

/// Where a consumer registered for the first time starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// At the oldest event still stored.
    Oldest,
    /// After the newest event: only events committed from now on.
    Latest,
}

/// Registers `name` if it is new (its cursor placed by `start`) and returns its record; an
/// existing consumer keeps its cursor.
pub async fn register(
    conn: &mut Conn<'_>,
    name: &str,
    start: Start,
    now: DateTime<Utc>,
) -> Result<ConsumerRecord, StoreError> {
    let cursor = match start {
        Start::Latest => "(SELECT last_id FROM outbox_head WHERE singleton = 1)",
        Start::Oldest => {
            "COALESCE((SELECT MIN(id) FROM outbox) - 1, \
                      (SELECT last_id FROM outbox_head WHERE singleton = 1))"
        }
    };
    let insert = format!(
        "INSERT INTO outbox_consumers (name, cursor, updated_at) VALUES ($1, {cursor}, $2) \
         ON CONFLICT (name) DO NOTHING"
    );
    on!(conn, |c| sqlx::query(&insert)
        .bind(name)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    consumer(conn, name)
        .await?
        .ok_or(StoreError::Corrupt("outbox_consumers (registration lost)"))
}

/// A consumer's record, if it is registered.
pub async fn consumer(
    conn: &mut Conn<'_>,
    name: &str,
) -> Result<Option<ConsumerRecord>, StoreError> {
    let sql = "SELECT name, cursor, updated_at FROM outbox_consumers WHERE name = $1";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(name)
        .fetch_optional(c)
        .await)?)
}

/// Every registered consumer, by name.
pub async fn consumers(conn: &mut Conn<'_>) -> Result<Vec<ConsumerRecord>, StoreError> {
    let sql = "SELECT name, cursor, updated_at FROM outbox_consumers ORDER BY name";
    Ok(on!(conn, |c| sqlx::query_as(sql).fetch_all(c).await)?)
}

/// Moves `name`'s cursor forward to `cursor` (never back); false if it is not registered.
pub async fn advance(
    conn: &mut Conn<'_>,
    name: &str,
    cursor: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE outbox_consumers SET cursor = $2, updated_at = $3 \
               WHERE name = $1 AND cursor < $2";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(name)
        .bind(cursor)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    if n > 0 {
        return Ok(true);
    }
    Ok(consumer(conn, name).await?.is_some())
}

/// Unregisters `name`; false if it was not registered.
pub async fn remove(conn: &mut Conn<'_>, name: &str) -> Result<bool, StoreError> {
    let sql = "DELETE FROM outbox_consumers WHERE name = $1";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(name)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// Deletes at most `limit` of the oldest events that either every registered consumer has
/// passed (all of them when none is registered) or were committed before `older_than`.
/// Returns how many were deleted; the caller repeats while that is `limit`, so no single
/// transaction (the writers' shared one) grows large.
pub async fn prune(
    conn: &mut Conn<'_>,
    older_than: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<u64, StoreError> {
    let passed = "SELECT COALESCE((SELECT MIN(cursor) FROM outbox_consumers), \
                  (SELECT last_id FROM outbox_head WHERE singleton = 1))";
    let (mut bound,): (i64,) = on!(conn, |c| sqlx::query_as(passed).fetch_one(c).await)?;
    if let Some(cutoff) = older_than {
        // Ids follow commit times, so the first row young enough ends the old ones; the scan
        // runs through exactly the rows to delete (no index on the time).
        let young = "SELECT id FROM outbox WHERE committed_at >= $1 ORDER BY id LIMIT 1";
        let first: Option<(i64,)> = on!(conn, |c| sqlx::query_as(young)
            .bind(cutoff)
            .fetch_optional(c)
            .await)?;
        let aged = match first {
            Some((id,)) => id - 1,
            None => head(conn).await?,
        };
        bound = bound.max(aged);
    }
    let oldest: Option<(Option<i64>,)> =
        on!(conn, |c| sqlx::query_as("SELECT MIN(id) FROM outbox")
            .fetch_optional(c)
            .await)?;
    let Some(oldest) = oldest.and_then(|r| r.0) else {
        return Ok(0);
    };
    let upto = bound.min(oldest.saturating_add(limit.max(1)) - 1);
    if upto < oldest {
        return Ok(0);
    }
    let sql = "DELETE FROM outbox WHERE id <= $1";
    Ok(on!(conn, |c| sqlx::query(sql)
        .bind(upto)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}
