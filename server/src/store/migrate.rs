//! The migration sets, one per backend, embedded in the binary. Migrations are append-only.

use sqlx::migrate::Migrator;

/// Migrations for SQLite (`migrations/sqlite`).
pub static SQLITE: Migrator = sqlx::migrate!("../migrations/sqlite");
/// Migrations for PostgreSQL (`migrations/postgres`).
pub static POSTGRES: Migrator = sqlx::migrate!("../migrations/postgres");
