//! The two backends behind one connection type, and the macro that runs a query on either.

use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, Postgres, Sqlite, SqliteConnection, Transaction};

use super::audit::PendingAudit;
use super::StoreError;
use crate::events::DomainEvent;

/// The database product behind a [`super::Store`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, the embedded default.
    Sqlite,
    /// PostgreSQL, for production.
    Postgres,
}

/// A borrowed connection on either backend; storage functions take `&mut Conn`.
pub enum Conn<'a> {
    /// A SQLite connection (pooled reader or the writer's transaction).
    Sqlite(&'a mut SqliteConnection),
    /// A PostgreSQL connection.
    Pg(&'a mut PgConnection),
}

impl Conn<'_> {
    /// Which backend this connection talks to.
    pub fn backend(&self) -> Backend {
        match self {
            Conn::Sqlite(_) => Backend::Sqlite,
            Conn::Pg(_) => Backend::Postgres,
        }
    }

    pub(crate) async fn ping(&mut self) -> Result<(), StoreError> {
        match self {
            Conn::Sqlite(c) => c.ping().await?,
            Conn::Pg(c) => c.ping().await?,
        }
        Ok(())
    }
}

/// Runs the same query-building expression on whichever backend `$conn` belongs to.
/// Inside `$body`, `$c` is the backend's `&mut XConnection`, usable as an executor.
macro_rules! on {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::Conn::Sqlite(inner) => {
                let $c: &mut sqlx::SqliteConnection = &mut **inner;
                $body
            }
            $crate::store::Conn::Pg(inner) => {
                let $c: &mut sqlx::PgConnection = &mut **inner;
                $body
            }
        }
    };
}
pub(crate) use on;

/// A connection checked out of a reader pool.
pub enum PooledConn {
    /// From the SQLite reader pool.
    Sqlite(PoolConnection<Sqlite>),
    /// From the PostgreSQL pool.
    Pg(PoolConnection<Postgres>),
}

impl PooledConn {
    /// Borrows it as a [`Conn`] for storage functions.
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            PooledConn::Sqlite(c) => Conn::Sqlite(c),
            PooledConn::Pg(c) => Conn::Pg(c),
        }
    }
}

pub(crate) enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Pg(Transaction<'static, Postgres>),
}

/// Undoes in-memory state (such as a cached key) if the write that made it is rolled back.
pub(crate) type RollbackHook = Box<dyn FnOnce() + Send>;

/// Records what a write did outside the database (a metric) once it has committed.
pub(crate) type CommitHook = Box<dyn FnOnce() + Send>;

/// What a write transaction collects besides its statements: the events its writes emit, the
/// audit entries they record, how to undo in-memory state if it rolls back and what to
/// record once it commits.
#[derive(Default)]
pub struct TxLog {
    pub(crate) events: Vec<DomainEvent>,
    pub(crate) audit: Vec<PendingAudit>,
    pub(crate) rollback_hooks: Vec<RollbackHook>,
    pub(crate) commit_hooks: Vec<CommitHook>,
    pub(crate) checkpoint_requested: bool,
}

impl TxLog {
    /// Records a domain event; it is published only if the transaction commits.
    pub fn emit(&mut self, event: DomainEvent) {
        self.events.push(event);
    }

    /// Records an audit entry; the writer chains it at commit, in this transaction. It is
    /// discarded if this write fails, unless it is marked to survive (denials, failures).
    pub fn audit(&mut self, entry: PendingAudit) {
        self.audit.push(entry);
    }
}

/// A write transaction shared by a group of writes, with the events they emit and the audit
/// entries they record.
pub struct Tx {
    pub(crate) inner: TxInner,
    pub(crate) log: TxLog,
}

impl Tx {
    /// Borrows the transaction's connection for storage functions.
    pub fn conn(&mut self) -> Conn<'_> {
        match &mut self.inner {
            TxInner::Sqlite(t) => Conn::Sqlite(t),
            TxInner::Pg(t) => Conn::Pg(t),
        }
    }

    /// Records a domain event; it is published only if the transaction commits.
    pub fn emit(&mut self, event: DomainEvent) {
        self.log.emit(event);
    }

    /// Records an audit entry; the writer chains it at commit, in this transaction. It is
    /// discarded if this write fails, unless it is marked to survive (denials, failures).
    pub fn audit(&mut self, entry: PendingAudit) {
        self.log.audit(entry);
    }

    /// Asks the writer to sign a checkpoint over the chain head when this batch commits.
    pub fn request_checkpoint(&mut self) {
        self.log.checkpoint_requested = true;
    }

    /// Runs `undo` if this write, or the transaction it is part of, does not commit.
    pub fn on_rollback(&mut self, undo: impl FnOnce() + Send + 'static) {
        self.log.rollback_hooks.push(Box::new(undo));
    }

    /// Runs `then` once this write has committed, before its caller is answered; never if
    /// it fails or its batch does not commit. For what must not count a write that did not
    /// happen (metrics).
    pub fn on_commit(&mut self, then: impl FnOnce() + Send + 'static) {
        self.log.commit_hooks.push(Box::new(then));
    }
}
