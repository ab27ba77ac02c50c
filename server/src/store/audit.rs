//! The audit log's tables: chained entries and signed checkpoints. Append-only: there is no
//! update or delete here, and the database refuses them too.
//!
//! Entries reach the table only through the group-commit writer, which numbers and chains
//! each batch inside the transaction that performs the audited actions.

use sqlx::{Executor, PgConnection, QueryBuilder, Row, Sqlite};

use super::{on, Conn, StoreError};

/// The recorded fields of an entry, exactly as hashed and stored.
#[derive(Clone, Debug, Default, sqlx::FromRow)]
pub struct AuditFields {
    /// A UUID, also the row id in the associated data of the encrypted fields.
    pub id: String,
    /// RFC 3339 UTC with microseconds.
    pub occurred_at: String,
    /// `user`, `bot`, `system` or `anonymous`.
    pub actor_type: String,
    /// The acting user or bot.
    pub actor_id: Option<String>,
    /// The actor's session.
    pub session_id: Option<String>,
    /// What was done, such as `auth.sign_in` or `permission.denied`.
    pub action: String,
    /// Kind of thing acted on.
    pub target_type: Option<String>,
    /// Its id.
    pub target_id: Option<String>,
    /// The workspace concerned.
    pub workspace_id: Option<String>,
    /// `allowed`, `denied` or `failed`.
    pub outcome: String,
    /// Key scope the personal fields are encrypted under (`user:<id>` or `system:audit`).
    pub subject: Option<String>,
    /// The client address, encrypted.
    pub ip_enc: Option<Vec<u8>>,
    /// Details (JSON), encrypted.
    pub details_enc: Option<Vec<u8>>,
}

/// An entry waiting for the commit that numbers and chains it.
#[derive(Clone, Debug)]
pub struct PendingAudit {
    /// The fields.
    pub fields: AuditFields,
    /// Kept even if the write that recorded it fails (denials and failed attempts).
    pub survives_rollback: bool,
}

/// A stored entry.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AuditRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// The fields.
    #[sqlx(flatten)]
    pub fields: AuditFields,
    /// The previous entry's hash.
    pub prev_hash: Vec<u8>,
    /// This entry's hash.
    pub hash: Vec<u8>,
}

/// A signed statement that the chain had head `head_hash` at `seq`.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CheckpointRecord {
    /// The sequence number of the head.
    pub seq: i64,
    /// The head's hash.
    pub head_hash: Vec<u8>,
    /// When it was signed (RFC 3339).
    pub signed_at: String,
    /// Which signing key version signed.
    pub key_version: i64,
    /// Ed25519 signature.
    pub signature: Vec<u8>,
}

/// Signs checkpoints for the writer; held by the keyring.
pub trait CheckpointSigner: Send + Sync {
    /// Signs `message` with the signing key stored as `key`: the newest version, read in the
    /// transaction that stores the checkpoint, so a rotation made by any process takes
    /// effect at the next checkpoint and versions never go backwards along the chain.
    fn sign(&self, key: &super::keys::DataKeyRecord, message: &[u8]) -> Result<Vec<u8>, String>;
}

/// Filters for listing entries.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Entries after this sequence number.
    pub after_seq: i64,
    /// At or after this time (RFC 3339).
    pub from: Option<String>,
    /// Before this time (RFC 3339).
    pub to: Option<String>,
    /// Acting user.
    pub actor_id: Option<String>,
    /// Action name.
    pub action: Option<String>,
    /// Target id.
    pub target_id: Option<String>,
    /// Workspace id.
    pub workspace_id: Option<String>,
    /// Outcome.
    pub outcome: Option<String>,
}

const COLUMNS: &str =
    "seq, id, occurred_at, actor_type, actor_id, session_id, action, target_type, target_id, \
                       workspace_id, outcome, subject, ip_enc, details_enc, prev_hash, hash";

/// Entries per multi-row INSERT (16 parameters each, well under both backends' limits).
pub(crate) const INSERT_CHUNK: usize = 64;

/// An entry ready to append: `(seq, fields, prev_hash, hash)`.
pub(crate) type ChainedRow = (i64, AuditFields, Vec<u8>, Vec<u8>);

/// The chain's head as the writer sees it: the last entry's sequence number and hash
/// (0 and empty when the log is empty) and the newest checkpoint's sequence number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ChainHead {
    pub(crate) seq: i64,
    pub(crate) hash: Vec<u8>,
    pub(crate) checkpointed: i64,
}

/// Appends chained entries with one statement per chunk (the writer's job only).
pub(crate) async fn insert_many(
    conn: &mut Conn<'_>,
    rows: &[ChainedRow],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(INSERT_CHUNK) {
        match conn {
            Conn::Sqlite(c) => {
                let mut q = QueryBuilder::new("");
                push_insert(&mut q, chunk);
                (&mut **c).execute(q.build()).await?;
            }
            Conn::Pg(c) => {
                let mut q = QueryBuilder::new("");
                push_insert(&mut q, chunk);
                (&mut **c).execute(q.build()).await?;
            }
        }
    }
    Ok(())
}

/// Writes `INSERT INTO audit_events (...) VALUES (...), ...` for at most [`INSERT_CHUNK`]
/// rows, without a terminator (PostgreSQL embeds it in a data-modifying CTE).
pub(crate) fn push_insert<'a, DB: sqlx::Database>(
    q: &mut QueryBuilder<'a, DB>,
    rows: &'a [ChainedRow],
) where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a Option<String>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a Option<Vec<u8>>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a Vec<u8>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push(format_args!("INSERT INTO audit_events ({COLUMNS}) "));
    push_rows(q, rows);
}

/// `VALUES (...), ...` of the rows, in [`COLUMNS`] order. The placeholders are SQLite's
/// anonymous `?` (or PostgreSQL's `$n`): SQLite looks a numbered parameter's name up by a
/// linear scan, once per parameter when sqlx binds, which made binding a chunk quadratic.
fn push_rows<'a, DB: sqlx::Database>(q: &mut QueryBuilder<'a, DB>, rows: &'a [ChainedRow])
where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a Option<String>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a Option<Vec<u8>>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a Vec<u8>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push_values(rows, |mut b, (seq, f, prev, hash)| {
        b.push_bind(*seq)
            .push_bind(&f.id)
            .push_bind(&f.occurred_at)
            .push_bind(&f.actor_type)
            .push_bind(&f.actor_id)
            .push_bind(&f.session_id)
            .push_bind(&f.action)
            .push_bind(&f.target_type)
            .push_bind(&f.target_id)
            .push_bind(&f.workspace_id)
            .push_bind(&f.outcome)
            .push_bind(&f.subject)
            .push_bind(&f.ip_enc)
            .push_bind(&f.details_enc)
            .push_bind(prev)
            .push_bind(hash);
    });
}

/// SQLite: appends `rows` (after `expected`, the head the writer believes in) only if the
/// head is still `expected`, one statement per chunk terminated by `;`, for a multi-statement
/// command. Each chunk inserts nothing unless the log ends exactly where that chunk's first
/// row continues it (the last entry's hash, which covers its sequence number) and, for the
/// first chunk, the newest checkpoint is the expected one: if another process appended since,
/// no row is inserted and the writer reads the head and chains again.
pub(crate) fn push_guarded_insert_sqlite<'a>(
    q: &mut QueryBuilder<'a, Sqlite>,
    rows: &'a [ChainedRow],
    expected: &ChainHead,
) {
    for (i, chunk) in rows.chunks(INSERT_CHUNK).enumerate() {
        q.push(format_args!(
            "INSERT INTO audit_events ({COLUMNS}) SELECT * FROM ("
        ));
        push_rows(q, chunk);
        // The empty log has no last hash: NULL, compared with IS.
        let last_hash = match chunk.first() {
            Some((1, ..)) | None => None,
            Some((_, _, prev, _)) => Some(prev.clone()),
        };
        q.push(") WHERE (SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1) IS ")
            .push_bind(last_hash);
        if i == 0 {
            let checkpointed = (expected.checkpointed > 0).then_some(expected.checkpointed);
            q.push(" AND (SELECT MAX(seq) FROM audit_checkpoints) IS ")
                .push_bind(checkpointed);
        }
        q.push("; ");
    }
}

/// Appends a checkpoint (the writer's job only).
pub(crate) async fn insert_checkpoint(
    conn: &mut Conn<'_>,
    cp: &CheckpointRecord,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO audit_checkpoints (seq, head_hash, signed_at, key_version, signature) \
               VALUES ($1, $2, $3, $4, $5)";
    on!(conn, |c| sqlx::query(sql)
        .bind(cp.seq)
        .bind(&cp.head_hash)
        .bind(&cp.signed_at)
        .bind(cp.key_version)
        .bind(&cp.signature)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The advisory lock that serializes appends to the chain across processes on PostgreSQL
/// until the transaction ends (an arbitrary constant naming "the audit chain").
const LOCK_CHAIN_PG: &str = "SELECT pg_advisory_xact_lock(7360121337)";

const CHAIN_STATE: &str =
    "SELECT COALESCE((SELECT seq FROM audit_events ORDER BY seq DESC LIMIT 1), 0), \
     (SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1), \
     COALESCE((SELECT MAX(seq) FROM audit_checkpoints), 0)";

/// The chain head, read in the transaction that appends (SQLite's write lock already
/// serializes appends).
pub(crate) async fn chain_state(conn: &mut Conn<'_>) -> Result<ChainHead, StoreError> {
    let row: (i64, Option<Vec<u8>>, i64) =
        on!(conn, |c| sqlx::query_as(CHAIN_STATE).fetch_one(c).await)?;
    Ok(ChainHead {
        seq: row.0,
        hash: row.1.unwrap_or_default(),
        checkpointed: row.2,
    })
}

/// PostgreSQL: runs `first` (statements ending with `;`, or nothing), takes the chain's lock
/// and reads the head, in one round trip. The head is read by a statement of its own, after
/// the lock's: under READ COMMITTED each statement takes its snapshot when it starts, so a
/// read in the locking statement could miss an append committed while the lock was awaited.
pub(crate) async fn lock_and_read_chain_pg(
    conn: &mut PgConnection,
    first: &str,
) -> Result<ChainHead, StoreError> {
    let sql = format!("{first}{LOCK_CHAIN_PG}; {CHAIN_STATE}");
    let rows = conn.fetch_all(sqlx::raw_sql(&sql)).await?;
    let row = rows
        .last()
        .ok_or(StoreError::Corrupt("audit_events (no chain head)"))?;
    Ok(ChainHead {
        seq: row.try_get(0)?,
        hash: row.try_get::<Option<Vec<u8>>, _>(1)?.unwrap_or_default(),
        checkpointed: row.try_get(2)?,
    })
}

/// The last entry's sequence number and hash.
pub async fn head(conn: &mut Conn<'_>) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
    let sql = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1";
    Ok(on!(conn, |c| sqlx::query_as(sql).fetch_optional(c).await)?)
}

/// Entries with `from <= seq <= to`, in order, at most `limit`.
pub async fn range(
    conn: &mut Conn<'_>,
    from: i64,
    to: i64,
    limit: i64,
) -> Result<Vec<AuditRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_events WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT $3"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// The entry just before `seq`'s place (its hash starts a range), if any.
pub async fn before(conn: &mut Conn<'_>, seq: i64) -> Result<Option<AuditRecord>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM audit_events WHERE seq < $1 ORDER BY seq DESC LIMIT 1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(seq)
        .fetch_optional(c)
        .await)?)
}

/// The first and last sequence numbers of entries in a time range.
pub async fn seq_bounds(
    conn: &mut Conn<'_>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Option<(i64, i64)>, StoreError> {
    let sql =
        "SELECT MIN(seq), MAX(seq) FROM audit_events WHERE ($1 IS NULL OR occurred_at >= $1) \
               AND ($2 IS NULL OR occurred_at < $2)";
    let sql_pg = "SELECT MIN(seq), MAX(seq) FROM audit_events WHERE ($1::text IS NULL OR occurred_at >= $1) \
                  AND ($2::text IS NULL OR occurred_at < $2)";
    let row: (Option<i64>, Option<i64>) = match conn {
        Conn::Sqlite(c) => {
            sqlx::query_as(sql)
                .bind(from)
                .bind(to)
                .fetch_one(&mut **c)
                .await?
        }
        Conn::Pg(c) => {
            sqlx::query_as(sql_pg)
                .bind(from)
                .bind(to)
                .fetch_one(&mut **c)
                .await?
        }
    };
    Ok(row.0.zip(row.1))
}

/// Checkpoints with `from <= seq <= to`, in order.
pub async fn checkpoints(
    conn: &mut Conn<'_>,
    from: i64,
    to: i64,
) -> Result<Vec<CheckpointRecord>, StoreError> {
    let sql = "SELECT seq, head_hash, signed_at, key_version, signature FROM audit_checkpoints \
               WHERE seq >= $1 AND seq <= $2 ORDER BY seq";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(from)
        .bind(to)
        .fetch_all(c)
        .await)?)
}

enum Arg {
    Int(i64),
    Text(String),
}

/// Entries matching `filter`, in sequence order, at most `limit`.
pub async fn list(
    conn: &mut Conn<'_>,
    filter: &AuditFilter,
    limit: i64,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut sql = format!("SELECT {COLUMNS} FROM audit_events WHERE seq > $1");
    let mut args = vec![Arg::Int(filter.after_seq)];
    let conditions = [
        ("occurred_at >=", &filter.from),
        ("occurred_at <", &filter.to),
        ("actor_id =", &filter.actor_id),
        ("action =", &filter.action),
        ("target_id =", &filter.target_id),
        ("workspace_id =", &filter.workspace_id),
        ("outcome =", &filter.outcome),
    ];
    for (condition, value) in conditions {
        if let Some(v) = value {
            args.push(Arg::Text(v.clone()));
            sql.push_str(&format!(" AND {condition} ${}", args.len()));
        }
    }
    args.push(Arg::Int(limit));
    sql.push_str(&format!(" ORDER BY seq LIMIT ${}", args.len()));
    Ok(on!(conn, |c| {
        let mut q = sqlx::query_as(&sql);
        for a in &args {
            q = match a {
                Arg::Int(i) => q.bind(*i),
                Arg::Text(t) => q.bind(t.clone()),
            };
        }
        q.fetch_all(c).await
    })?)
}
