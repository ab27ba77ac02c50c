//! Policy versions: every change to the deployment's policy modules (at a start or a reload
//! that finds them changed) and every workspace override is a new row, never an update.
//! Versions are one sequence across the deployment and every workspace, so the version of a
//! workspace's effective policy (the newer of the two it rests on) rises with every change
//! to either.

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};
use crate::domain::{UserId, WorkspaceId};

/// One stored version.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PolicyVersionRecord {
    /// The version, from 1.
    pub version: i64,
    /// The workspace an override belongs to; `None` for the deployment's modules.
    pub workspace_id: Option<WorkspaceId>,
    /// The override as TOML, or the deployment's modules (names, origins, texts) as JSON.
    pub document: String,
    /// SHA-256 (hex) of the modules' names and texts, or of the override.
    pub digest: String,
    /// Who made the change; `None` for Concord itself (a start).
    pub created_by: Option<UserId>,
    /// When.
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "version, workspace_id, document, digest, created_by, created_at";

/// The version the next change takes.
pub async fn next_version(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    let sql = "SELECT COALESCE(MAX(version), 0) + 1 FROM policy_versions";
    Ok(on!(conn, |c| sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(c)
        .await)?)
}

/// Stores a version.
pub async fn insert(conn: &mut Conn<'_>, r: &PolicyVersionRecord) -> Result<(), StoreError> {
    let sql = format!("INSERT INTO policy_versions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)");
    on!(conn, |c| sqlx::query(&sql)
        .bind(r.version)
        .bind(r.workspace_id)
        .bind(&r.document)
        .bind(&r.digest)
        .bind(r.created_by)
        .bind(r.created_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The newest version of the deployment's modules.
pub async fn latest_deployment(
    conn: &mut Conn<'_>,
) -> Result<Option<PolicyVersionRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM policy_versions WHERE workspace_id IS NULL \
         ORDER BY version DESC LIMIT 1"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql).fetch_optional(c).await)?)
}

/// A workspace's newest override.
pub async fn latest_override(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Option<PolicyVersionRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM policy_versions WHERE workspace_id = $1 \
         ORDER BY version DESC LIMIT 1"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .fetch_optional(c)
        .await)?)
}

/// The version of a workspace's newest override (`None`: it has none).
pub async fn latest_override_version(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Option<i64>, StoreError> {
    let sql = "SELECT MAX(version) FROM policy_versions WHERE workspace_id = $1";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .bind(workspace)
        .fetch_one(c)
        .await)?)
}

/// Every workspace's newest override, in workspace id order.
pub async fn latest_overrides(conn: &mut Conn<'_>) -> Result<Vec<PolicyVersionRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM policy_versions p WHERE workspace_id IS NOT NULL AND version = \
         (SELECT MAX(q.version) FROM policy_versions q WHERE q.workspace_id = p.workspace_id) \
         ORDER BY workspace_id"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql).fetch_all(c).await)?)
}

/// Every workspace's id, in id order.
pub async fn workspace_ids(conn: &mut Conn<'_>) -> Result<Vec<WorkspaceId>, StoreError> {
    let sql = "SELECT id FROM workspaces ORDER BY id";
    Ok(on!(conn, |c| sqlx::query_scalar(sql).fetch_all(c).await)?)
}
