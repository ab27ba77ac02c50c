//! The SQLite writer's synchronous side. A hot write (a post) may come with a second form
//! that runs on the writer's thread straight on the write connection's handle: every
//! statement of every such job in a batch is then run without handing anything to another
//! thread, where the asynchronous form pays a hand-off to the driver's thread per statement.
//!
//! The writer takes the handle from the driver once for a run of such jobs (sqlx's
//! `lock_handle`: the driver's thread makes no call on the handle while it is held) and gives
//! it back before any asynchronous job runs. Statements are prepared once per run.
//!
//! A job's synchronous form may decline (something it does not handle, such as a retry of an
//! earlier post or a refusal to record): it must then have written nothing, and the writer runs
//! the job's asynchronous form in its place, in the same savepoint.
//!
//! Values are written exactly as sqlx writes them, so either side reads what the other wrote:
//! ids as 16-byte blobs, times as RFC 3339 text with as many fraction digits as needed.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::ffi;

use super::audit::PendingAudit;
use super::backend::TxLog;
use super::StoreError;
use crate::events::DomainEvent;

/// What a job's synchronous form decided.
pub enum Raw<T, E, P> {
    /// It succeeded and awaits the commit.
    Done(T),
    /// It failed: its savepoint is rolled back and the caller gets the error.
    Failed(E),
    /// It wrote nothing and hands its input to the job's asynchronous form.
    Declined(P),
}

/// A job's view of the batch's transaction on the writer's thread.
pub struct RawTx<'a> {
    pub(super) conn: &'a rusqlite::Connection,
    pub(super) log: &'a mut TxLog,
}

impl RawTx<'_> {
    /// The connection, for storage functions: statements only (no transaction control, no
    /// setting that outlives the run; the writer owns those).
    pub fn conn(&self) -> &rusqlite::Connection {
        self.conn
    }

    /// Records a domain event; it is published only if the transaction commits.
    pub fn emit(&mut self, event: DomainEvent) {
        self.log.emit(event);
    }

    /// Records an audit entry, as [`super::Tx::audit`] does.
    pub fn audit(&mut self, entry: PendingAudit) {
        self.log.audit(entry);
    }
}

/// Maps as sqlx does: only uniqueness and foreign-key violations are [`StoreError::Constraint`].
impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        match &err {
            rusqlite::Error::SqliteFailure(e, message)
                if matches!(
                    e.extended_code,
                    ffi::SQLITE_CONSTRAINT_UNIQUE
                        | ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                        | ffi::SQLITE_CONSTRAINT_FOREIGNKEY
                ) =>
            {
                StoreError::Constraint(message.clone().unwrap_or_else(|| e.to_string()))
            }
            _ => StoreError::Engine(err.to_string()),
        }
    }
}

/// A time as sqlx writes it to SQLite.
pub(super) fn time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// An id as sqlx writes it to SQLite.
pub(super) fn id(uuid: &uuid::Uuid) -> &[u8] {
    uuid.as_bytes()
}

/// Reads an id written as sqlx writes it.
pub(super) fn read_id(bytes: &[u8]) -> Result<uuid::Uuid, StoreError> {
    uuid::Uuid::from_slice(bytes).map_err(|_| StoreError::Corrupt("id"))
}

/// Runs `sql` (statements separated by `;`, no parameters), each prepared once per run.
pub(super) fn exec(conn: &rusqlite::Connection, sql: &str) -> Result<(), StoreError> {
    for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        conn.prepare_cached(statement)?.execute([])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_sqlx_writes_them() {
        let at = DateTime::parse_from_rfc3339("2026-12-05T10:11:12.345678Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(time(&at), "2026-12-05T10:11:12.345678+00:00");
    }

    #[test]
    fn savepoint_commands_run_statement_by_statement() -> Result<(), StoreError> {
        let conn = rusqlite::Connection::open_in_memory()?;
        exec(&conn, "CREATE TABLE t (v INTEGER); BEGIN; SAVEPOINT job")?;
        conn.execute("INSERT INTO t VALUES (1)", [])?;
        exec(&conn, "RELEASE SAVEPOINT job; SAVEPOINT job")?;
        conn.execute("INSERT INTO t VALUES (2)", [])?;
        exec(&conn, "ROLLBACK TO SAVEPOINT job")?;
        exec(&conn, "COMMIT")?;
        let kept: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
        assert_eq!(kept, 1);
        let err = conn
            .execute("INSERT INTO missing VALUES (1)", [])
            .map_err(StoreError::from);
        assert!(matches!(err, Err(StoreError::Engine(_))), "{err:?}");
        exec(
            &conn,
            "CREATE TABLE u (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
        )?;
        conn.execute("INSERT INTO u VALUES ('a', 'x')", [])?;
        let taken = conn
            .execute("INSERT INTO u VALUES ('a', 'y')", [])
            .map_err(StoreError::from);
        assert!(matches!(taken, Err(StoreError::Constraint(_))), "{taken:?}");
        let null = conn
            .execute("INSERT INTO u VALUES ('b', NULL)", [])
            .map_err(StoreError::from);
        assert!(matches!(null, Err(StoreError::Engine(_))), "{null:?}");
        Ok(())
    }
}
