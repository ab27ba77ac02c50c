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
use sqlx::{Executor, Postgres, QueryBuilder, Row, Sqlite};

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
pub(crate) const INSERT_CHUNK: usize = 256;

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
        match conn {
            Conn::Sqlite(c) => {
                let committed_at = Utc::now();
                let mut q = QueryBuilder::new("");
                push_append_sqlite(&mut q, chunk, committed_at);
                let rows = (&mut **c).fetch_all(q.build()).await?;
                last_id = last_id_of(rows.last())?;
            }
            Conn::Pg(c) => {
                let mut q = QueryBuilder::new("WITH ");
                push_append_pg(&mut q, chunk);
                let row = (&mut **c).fetch_one(q.build()).await?;
                last_id = row.try_get(0)?;
            }
        }
    }
    Ok(last_id)
}

/// The last id given, from the row the head's update returned.
pub(crate) fn last_id_of<R: Row>(row: Option<&R>) -> Result<i64, StoreError>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Ok(row
        .ok_or(StoreError::Corrupt("outbox_head (missing)"))?
        .try_get(0)?)
}

/// SQLite: advances the head by the chunk's size (returning the new head, one row) and inserts
/// the chunk numbered after the old head, as two statements ending with `;`, for a
/// multi-statement command. `committed_at` must be taken once the write lock is held (SQLite
/// takes it when the batch begins).
pub(crate) fn push_append_sqlite<'a>(
    q: &mut QueryBuilder<'a, Sqlite>,
    chunk: &'a [NewOutboxEvent],
    committed_at: DateTime<Utc>,
) {
    let n = chunk.len() as i64;
    q.push("UPDATE outbox_head SET last_id = last_id + ")
        .push_bind(n)
        .push(" WHERE singleton = 1 RETURNING last_id; ");
    q.push(
        "INSERT INTO outbox (id, event_id, kind, workspace_id, payload, committed_at) \
         SELECT h.last_id - ",
    )
    .push_bind(n)
    .push(" + v.column1, v.column2, v.column3, v.column4, v.column5, ")
    .push_bind(committed_at)
    .push(" FROM outbox_head AS h, (");
    q.push_values(chunk.iter().enumerate(), |mut b, (i, e)| {
        b.push_bind(1 + i as i64)
            .push_bind(&e.event_id)
            .push_bind(&e.kind)
            .push_bind(&e.workspace_id)
            .push_bind(&e.payload);
    });
    q.push(") AS v WHERE h.singleton = 1; ");
}

/// PostgreSQL: the CTEs that advance the head and insert the chunk numbered after it, and
/// the final `SELECT` of the new head, following a `WITH ` and any other CTEs (each ending
/// with `, `) the caller wrote. One round trip: the head's update (which waits for any other
/// writer's commit) numbers the rows the same statement inserts, stamped by the database's
/// clock once the head is locked.
pub(crate) fn push_append_pg<'a>(q: &mut QueryBuilder<'a, Postgres>, chunk: &'a [NewOutboxEvent]) {
    let n = chunk.len() as i64;
    q.push("head AS (UPDATE outbox_head SET last_id = last_id + ")
        .push_bind(n)
        .push(
            " WHERE singleton = 1 RETURNING last_id), ins AS (INSERT INTO outbox \
               (id, event_id, kind, workspace_id, payload, committed_at) \
               SELECT head.last_id - ",
        )
        .push_bind(n)
        .push(
            " + v.n, v.event_id, v.kind, v.workspace_id, v.payload, clock_timestamp() FROM head, (",
        );
    q.push_values(chunk.iter().enumerate(), |mut b, (i, e)| {
        b.push_bind(1 + i as i64)
            .push_unseparated("::bigint")
            .push_bind(&e.event_id)
            .push_unseparated("::text")
            .push_bind(&e.kind)
            .push_unseparated("::text")
            .push_bind(&e.workspace_id)
            .push_unseparated("::text")
            .push_bind(&e.payload)
            .push_unseparated("::text");
    });
    q.push(") AS v(n, event_id, kind, workspace_id, payload)) SELECT last_id FROM head");
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
