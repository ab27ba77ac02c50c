//! eDiscovery's reads (messages, files and named document versions of a workspace by
//! custodian, channel and date, deleted-but-kept ones included), the record of the
//! scheduled daily exports written (table `ediscovery_daily_exports`) and the leased claims
//! of the runners writing them (table `ediscovery_daily_claims`).
//!
//! Listings return positions only (id, time and, for a version, its document): the service
//! reads and decrypts each item through the module that owns it. Every listing is ordered by
//! time then id and resumes after a position, so a page never repeats or skips an item.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{on, Conn, StoreError};
use crate::domain::{ChannelId, DocumentId, UserId, WorkspaceId};

/// What a listing selects; empty lists and open ends select everything.
#[derive(Clone, Copy, Debug)]
pub struct Criteria<'a> {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// Authors, uploaders or version makers (empty: anyone).
    pub custodians: &'a [UserId],
    /// Channels (empty: every channel of the workspace).
    pub channels: &'a [ChannelId],
    /// Written from this time on.
    pub from: Option<DateTime<Utc>>,
    /// Written before this time.
    pub to: Option<DateTime<Utc>>,
}

/// Where an item is in its listing: its time, its id and, for a version, its document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Position {
    /// The item's id.
    pub id: Uuid,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// The document of a version (a message or a file: its own id).
    pub parent: Uuid,
}

/// The columns one kind is filtered on.
struct Columns {
    from: &'static str,
    id: &'static str,
    time: &'static str,
    author: &'static str,
    channel: &'static str,
    parent: &'static str,
    base: &'static str,
}

const MESSAGES: Columns = Columns {
    from: "messages m JOIN channels c ON c.id = m.channel_id",
    id: "m.id",
    time: "m.created_at",
    author: "m.author_id",
    channel: "m.channel_id",
    parent: "m.id",
    base: "c.workspace_id = $1",
};

const DELETED_MESSAGES: Columns = Columns {
    base: "c.workspace_id = $1 AND m.deleted_at IS NOT NULL",
    ..MESSAGES
};

/// Files are placed by when their upload completed (when they became content anyone could
/// see), not when it started: an upload begun before midnight and finished after it belongs
/// to the later day.
const FILES: Columns = Columns {
    from: "files f",
    id: "f.id",
    time: "COALESCE(f.completed_at, f.created_at)",
    author: "f.uploader_id",
    channel: "f.parent_id",
    parent: "f.id",
    base: "f.workspace_id = $1 AND f.parent_kind = 'channel' AND f.status = 'ready'",
};

const VERSIONS: Columns = Columns {
    from: "document_versions v JOIN documents d ON d.id = v.document_id",
    id: "v.id",
    time: "v.created_at",
    author: "v.created_by",
    channel: "d.channel_id",
    parent: "v.document_id",
    base: "d.workspace_id = $1",
};

/// The criteria's conditions, numbered from `$2` in the order [`bind_criteria!`] binds them.
fn conditions(cols: &Columns, c: &Criteria<'_>, n: &mut usize) -> String {
    let mut next = || {
        *n += 1;
        *n
    };
    let mut sql = cols.base.to_owned();
    if c.from.is_some() {
        sql.push_str(&format!(" AND {} >= ${}", cols.time, next()));
    }
    if c.to.is_some() {
        sql.push_str(&format!(" AND {} < ${}", cols.time, next()));
    }
    let mut list = |len: usize| {
        (0..len)
            .map(|_| format!("${}", next()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !c.custodians.is_empty() {
        let l = list(c.custodians.len());
        sql.push_str(&format!(" AND {} IN ({l})", cols.author));
    }
    if !c.channels.is_empty() {
        let l = list(c.channels.len());
        sql.push_str(&format!(" AND {} IN ({l})", cols.channel));
    }
    sql
}

macro_rules! bind_criteria {
    ($q:expr, $c:expr) => {{
        let mut q = $q.bind($c.workspace);
        if let Some(from) = $c.from {
            q = q.bind(from);
        }
        if let Some(to) = $c.to {
            q = q.bind(to);
        }
        for u in $c.custodians {
            q = q.bind(*u);
        }
        for ch in $c.channels {
            q = q.bind(*ch);
        }
        q
    }};
}

async fn positions(
    conn: &mut Conn<'_>,
    cols: &Columns,
    c: &Criteria<'_>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Position>, StoreError> {
    let mut n = 1;
    let mut sql = format!(
        "SELECT {id} AS id, {time} AS at, {parent} AS parent FROM {from} WHERE {cond}",
        id = cols.id,
        time = cols.time,
        parent = cols.parent,
        from = cols.from,
        cond = conditions(cols, c, &mut n),
    );
    if after.is_some() {
        sql.push_str(&format!(
            " AND ({time} > ${a} OR ({time} = ${a} AND {id} > ${b}))",
            time = cols.time,
            id = cols.id,
            a = n + 1,
            b = n + 2
        ));
        n += 2;
    }
    sql.push_str(&format!(
        " ORDER BY {}, {} LIMIT ${}",
        cols.time,
        cols.id,
        n + 1
    ));
    Ok(on!(conn, |cx| {
        let mut q = bind_criteria!(sqlx::query_as(&sql), c);
        if let Some((at, id)) = after {
            q = q.bind(at).bind(id);
        }
        q.bind(limit).fetch_all(cx).await
    })?)
}

async fn count(conn: &mut Conn<'_>, cols: &Columns, c: &Criteria<'_>) -> Result<i64, StoreError> {
    let mut n = 1;
    let sql = format!(
        "SELECT COUNT(*) FROM {} WHERE {}",
        cols.from,
        conditions(cols, c, &mut n)
    );
    Ok(on!(conn, |cx| bind_criteria!(sqlx::query_scalar(&sql), c)
        .fetch_one(cx)
        .await)?)
}

/// Up to `limit` messages (deleted ones included) after `after`, oldest first.
pub async fn messages(
    conn: &mut Conn<'_>,
    c: &Criteria<'_>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Position>, StoreError> {
    positions(conn, &MESSAGES, c, after, limit).await
}

/// Up to `limit` deleted messages, oldest first (what the search index no longer holds).
pub async fn deleted_messages(
    conn: &mut Conn<'_>,
    c: &Criteria<'_>,
    limit: i64,
) -> Result<Vec<Position>, StoreError> {
    positions(conn, &DELETED_MESSAGES, c, None, limit).await
}

/// Up to `limit` files shared in channels (deleted but kept ones included), oldest first.
pub async fn files(
    conn: &mut Conn<'_>,
    c: &Criteria<'_>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Position>, StoreError> {
    positions(conn, &FILES, c, after, limit).await
}

/// Up to `limit` named document versions, oldest first; custodians are who made them.
pub async fn versions(
    conn: &mut Conn<'_>,
    c: &Criteria<'_>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Position>, StoreError> {
    positions(conn, &VERSIONS, c, after, limit).await
}

/// How many messages, files and versions the criteria select.
pub async fn counts(conn: &mut Conn<'_>, c: &Criteria<'_>) -> Result<[i64; 3], StoreError> {
    Ok([
        count(conn, &MESSAGES, c).await?,
        count(conn, &FILES, c).await?,
        count(conn, &VERSIONS, c).await?,
    ])
}

/// The named versions of `document` the criteria select, oldest first.
pub async fn versions_of(
    conn: &mut Conn<'_>,
    c: &Criteria<'_>,
    document: DocumentId,
) -> Result<Vec<Position>, StoreError> {
    let cols = Columns {
        base: "d.workspace_id = $1 AND v.document_id = $2",
        ..VERSIONS
    };
    // `$2` is the document: the criteria's conditions number from `$3`.
    let mut n = 2;
    let sql = format!(
        "SELECT v.id AS id, v.created_at AS at, v.document_id AS parent FROM {} WHERE {} \
         ORDER BY v.created_at, v.id",
        cols.from,
        conditions(&cols, c, &mut n)
    );
    Ok(on!(conn, |cx| {
        let mut q = sqlx::query_as(&sql).bind(c.workspace).bind(document);
        if let Some(from) = c.from {
            q = q.bind(from);
        }
        if let Some(to) = c.to {
            q = q.bind(to);
        }
        for u in c.custodians {
            q = q.bind(*u);
        }
        for ch in c.channels {
            q = q.bind(*ch);
        }
        q.fetch_all(cx).await
    })?)
}

/// Every channel of `workspace` (conversations included).
pub async fn channel_ids(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<ChannelId>, StoreError> {
    let sql = "SELECT id FROM channels WHERE workspace_id = $1 ORDER BY id";
    Ok(on!(conn, |cx| sqlx::query_scalar(sql)
        .bind(workspace)
        .fetch_all(cx)
        .await)?)
}

/// Every document of `workspace`.
pub async fn document_ids(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<DocumentId>, StoreError> {
    let sql = "SELECT id FROM documents WHERE workspace_id = $1 ORDER BY id";
    Ok(on!(conn, |cx| sqlx::query_scalar(sql)
        .bind(workspace)
        .fetch_all(cx)
        .await)?)
}

/// A daily export written.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DailyExportRecord {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The day exported (`YYYY-MM-DD`, UTC).
    pub day: String,
    /// The format.
    pub format: String,
    /// The file's name in the export directory.
    pub file_name: String,
    /// How many items it holds.
    pub items: i64,
    /// Its size in bytes.
    pub bytes: i64,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// When it was written.
    pub written_at: DateTime<Utc>,
}

/// The daily export of `workspace` for `day` in `format`, if written.
pub async fn daily_export(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    day: &str,
    format: &str,
) -> Result<Option<DailyExportRecord>, StoreError> {
    let sql = "SELECT workspace_id, day, format, file_name, items, bytes, sha256, written_at \
               FROM ediscovery_daily_exports WHERE workspace_id = $1 AND day = $2 AND format = $3";
    Ok(on!(conn, |cx| sqlx::query_as(sql)
        .bind(workspace)
        .bind(day)
        .bind(format)
        .fetch_optional(cx)
        .await)?)
}

/// Records a daily export written; false if one was already recorded (another run won).
pub async fn record_daily_export(
    conn: &mut Conn<'_>,
    r: &DailyExportRecord,
) -> Result<bool, StoreError> {
    let sql = "INSERT INTO ediscovery_daily_exports \
               (workspace_id, day, format, file_name, items, bytes, sha256, written_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
               ON CONFLICT (workspace_id, day, format) DO NOTHING";
    let n = on!(conn, |cx| sqlx::query(sql)
        .bind(r.workspace_id)
        .bind(&r.day)
        .bind(&r.format)
        .bind(&r.file_name)
        .bind(r.items)
        .bind(r.bytes)
        .bind(&r.sha256)
        .bind(r.written_at)
        .execute(cx)
        .await
        .map(|x| x.rows_affected()))?;
    Ok(n == 1)
}

/// The days (`YYYY-MM-DD`) of `workspace` recorded as exported in `format` from `from` on,
/// oldest first.
pub async fn daily_days_since(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    format: &str,
    from: &str,
) -> Result<Vec<String>, StoreError> {
    let sql = "SELECT day FROM ediscovery_daily_exports \
               WHERE workspace_id = $1 AND format = $2 AND day >= $3 ORDER BY day";
    Ok(on!(conn, |cx| sqlx::query_scalar(sql)
        .bind(workspace)
        .bind(format)
        .bind(from)
        .fetch_all(cx)
        .await)?)
}

/// What claiming a workspace's day found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DailyClaim {
    /// The caller holds the lease now (newly, taken over from a lapsed one, or renewed):
    /// only it writes the day.
    Claimed,
    /// The day is already recorded as written.
    Done,
    /// Another runner holds an unexpired lease.
    Held,
}

/// Claims (or renews) `runner`'s lease on `workspace`'s `day` in `format` until `until`, if
/// the day is not recorded yet and no other runner's lease holds at `now`. Run it in a write
/// transaction: on PostgreSQL two runners' upserts of the same row are serialised by its
/// lock, and the loser's `WHERE` sees the winner's lease.
#[allow(clippy::too_many_arguments)]
pub async fn claim_daily_export(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    day: &str,
    format: &str,
    runner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<DailyClaim, StoreError> {
    if daily_export(conn, workspace, day, format).await?.is_some() {
        return Ok(DailyClaim::Done);
    }
    let sql = "INSERT INTO ediscovery_daily_claims \
               (workspace_id, day, format, runner, lease_until, claimed_at) \
               VALUES ($1, $2, $3, $4, $5, $6) \
               ON CONFLICT (workspace_id, day, format) DO UPDATE SET \
               claimed_at = CASE WHEN ediscovery_daily_claims.runner = excluded.runner \
                   THEN ediscovery_daily_claims.claimed_at ELSE excluded.claimed_at END, \
               runner = excluded.runner, lease_until = excluded.lease_until \
               WHERE ediscovery_daily_claims.runner = excluded.runner \
                  OR ediscovery_daily_claims.lease_until < $6";
    let n = on!(conn, |cx| sqlx::query(sql)
        .bind(workspace)
        .bind(day)
        .bind(format)
        .bind(runner)
        .bind(until)
        .bind(now)
        .execute(cx)
        .await
        .map(|x| x.rows_affected()))?;
    Ok(if n == 1 {
        DailyClaim::Claimed
    } else {
        DailyClaim::Held
    })
}

/// Records a daily export written and ends `runner`'s claim on it, if `runner` still holds
/// it (false: its lease lapsed and another runner took the day over, or it was recorded).
pub async fn complete_daily_export(
    conn: &mut Conn<'_>,
    r: &DailyExportRecord,
    runner: &str,
) -> Result<bool, StoreError> {
    let sql = "DELETE FROM ediscovery_daily_claims \
               WHERE workspace_id = $1 AND day = $2 AND format = $3 AND runner = $4";
    let held = on!(conn, |cx| sqlx::query(sql)
        .bind(r.workspace_id)
        .bind(&r.day)
        .bind(&r.format)
        .bind(runner)
        .execute(cx)
        .await
        .map(|x| x.rows_affected()))?;
    if held != 1 {
        return Ok(false);
    }
    record_daily_export(conn, r).await
}

/// Gives up `runner`'s claim on a day it could not write, so another runner (or its own next
/// tick) may try at once.
pub async fn release_daily_claim(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    day: &str,
    format: &str,
    runner: &str,
) -> Result<(), StoreError> {
    let sql = "DELETE FROM ediscovery_daily_claims \
               WHERE workspace_id = $1 AND day = $2 AND format = $3 AND runner = $4";
    on!(conn, |cx| sqlx::query(sql)
        .bind(workspace)
        .bind(day)
        .bind(format)
        .bind(runner)
        .execute(cx)
        .await
        .map(|x| x.rows_affected()))?;
    Ok(())
}
