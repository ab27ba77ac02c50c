//! Task routing (tables `person_attributes`, `workflow_routing_cursors`, `routing_models`,
//! and the routing columns of `workflow_tasks`): the snapshot of a task's group routing
//! decides on, each group's round-robin position, the learned routers' versions, and a
//! task's assignment as routing, a claim or an escalation changes it.
//!
//! Attribute details, routing records and models arrive here sealed.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{on, Conn, StoreError};
use crate::domain::{ChannelId, RoleId, UserId, WorkspaceId};

/// What routing knows about a person in a workspace.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AttributesRecord {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The person.
    pub user_id: UserId,
    /// Skills, levels, capacity, manager and out-of-office days as JSON, sealed.
    pub detail: Vec<u8>,
    /// Who set them last.
    pub updated_by: Option<UserId>,
    /// When.
    pub updated_at: DateTime<Utc>,
}

/// Sets a person's attributes, replacing what was there.
pub async fn put_attributes(conn: &mut Conn<'_>, a: &AttributesRecord) -> Result<(), StoreError> {
    let sql = "INSERT INTO person_attributes (workspace_id, user_id, detail, updated_by, \
               updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workspace_id, user_id) \
               DO UPDATE SET detail = excluded.detail, updated_by = excluded.updated_by, \
               updated_at = excluded.updated_at";
    on!(conn, |c| sqlx::query(sql)
        .bind(a.workspace_id)
        .bind(a.user_id)
        .bind(&a.detail)
        .bind(a.updated_by)
        .bind(a.updated_at)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// A person's attributes in a workspace, if set.
pub async fn attributes(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    user: UserId,
) -> Result<Option<AttributesRecord>, StoreError> {
    let sql = "SELECT workspace_id, user_id, detail, updated_by, updated_at \
               FROM person_attributes WHERE workspace_id = $1 AND user_id = $2";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .bind(user)
        .fetch_optional(c)
        .await)?)
}

/// One person of a task's group as routing sees them.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct GroupMember {
    /// The person.
    pub user_id: UserId,
    /// Their sealed attributes, if any are set.
    pub detail: Option<Vec<u8>>,
    /// Their open tasks in the workspace.
    pub open_tasks: i64,
}

/// Which people a task's routing picks among.
#[derive(Clone, Copy, Debug)]
pub enum Group {
    /// The holders of a role.
    Role(RoleId),
    /// The members of a channel.
    Channel(ChannelId),
    /// One person.
    Person(UserId),
}

/// The active people (not bots, not deactivated) of `group` who are members of workspace
/// `ws`, each with their attributes and open tasks, in id order. One query.
pub async fn group(
    conn: &mut Conn<'_>,
    ws: WorkspaceId,
    group: Group,
) -> Result<Vec<GroupMember>, StoreError> {
    let filter = match group {
        Group::Role(_) => "m.role_id = $2",
        Group::Channel(_) => {
            "EXISTS (SELECT 1 FROM channel_members cm WHERE cm.channel_id = $2 \
             AND cm.user_id = m.user_id)"
        }
        Group::Person(_) => "m.user_id = $2",
    };
    let sql = format!(
        "SELECT m.user_id, a.detail, COALESCE(o.n, 0) AS open_tasks \
         FROM memberships m JOIN users u ON u.id = m.user_id \
         LEFT JOIN (SELECT assignee, COUNT(*) AS n FROM workflow_tasks \
                    WHERE workspace_id = $1 AND status = 'open' AND assignee IS NOT NULL \
                    GROUP BY assignee) o ON o.assignee = m.user_id \
         LEFT JOIN person_attributes a ON a.workspace_id = m.workspace_id \
              AND a.user_id = m.user_id \
         WHERE m.workspace_id = $1 AND u.status = 'active' \
         AND NOT EXISTS (SELECT 1 FROM bots b WHERE b.user_id = m.user_id) AND {filter} \
         ORDER BY m.user_id"
    );
    Ok(on!(conn, |c| {
        let q = sqlx::query_as(&sql).bind(ws);
        let q = match group {
            Group::Role(r) => q.bind(r),
            Group::Channel(ch) => q.bind(ch),
            Group::Person(u) => q.bind(u),
        };
        q.fetch_all(c).await
    })?)
}

/// The active people (not bots, not deactivated) of workspace `ws`, in id order.
pub async fn active_people(
    conn: &mut Conn<'_>,
    ws: WorkspaceId,
) -> Result<Vec<UserId>, StoreError> {
    let sql = "SELECT m.user_id FROM memberships m JOIN users u ON u.id = m.user_id \
               WHERE m.workspace_id = $1 AND u.status = 'active' \
               AND NOT EXISTS (SELECT 1 FROM bots b WHERE b.user_id = m.user_id) \
               ORDER BY m.user_id";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .bind(ws)
        .fetch_all(c)
        .await)?)
}

/// The last person round-robin gave a task to in the group `key`.
pub async fn cursor(
    conn: &mut Conn<'_>,
    ws: WorkspaceId,
    key: &str,
) -> Result<Option<String>, StoreError> {
    let sql = "SELECT last_id FROM workflow_routing_cursors WHERE workspace_id = $1 \
               AND group_key = $2";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .bind(ws)
        .bind(key)
        .fetch_optional(c)
        .await)?)
}

/// Moves the group's round-robin position, in the write that assigns the task.
pub async fn set_cursor(
    conn: &mut Conn<'_>,
    ws: WorkspaceId,
    key: &str,
    last: &str,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO workflow_routing_cursors (workspace_id, group_key, last_id) \
               VALUES ($1, $2, $3) ON CONFLICT (workspace_id, group_key) \
               DO UPDATE SET last_id = excluded.last_id";
    on!(conn, |c| sqlx::query(sql)
        .bind(ws)
        .bind(key)
        .bind(last)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// A task's assignment as routing leaves it.
#[derive(Clone, Debug)]
pub struct Assignment {
    /// Who holds it, if anyone.
    pub assignee: Option<UserId>,
    /// The role whose holders see it.
    pub candidate_role: Option<RoleId>,
    /// The channel whose members see it.
    pub candidate_channel: Option<ChannelId>,
    /// When its holder claimed it.
    pub claimed_at: Option<DateTime<Utc>>,
    /// Escalation steps behind it.
    pub escalation_level: i64,
    /// The sealed routing record.
    pub routing: Option<Vec<u8>>,
}

/// Changes an open task's assignment; false if the task is not open. The first person it
/// moves away from is kept as its first assignee.
pub async fn assign(conn: &mut Conn<'_>, task: &str, a: &Assignment) -> Result<bool, StoreError> {
    let sql = "UPDATE workflow_tasks SET \
               first_assignee = CASE WHEN assignee IS NOT NULL AND ($1 IS NULL OR assignee <> $1) \
                 THEN COALESCE(first_assignee, assignee) ELSE first_assignee END, \
               assignee = $1, candidate_role = $2, \
               candidate_channel = $3, claimed_at = $4, escalation_level = $5, routing = $6 \
               WHERE id = $7 AND status = 'open'";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(a.assignee)
        .bind(a.candidate_role)
        .bind(a.candidate_channel)
        .bind(a.claimed_at)
        .bind(a.escalation_level)
        .bind(&a.routing)
        .bind(task)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Claims an open task for `user`: only while nobody else holds it and it is not yet
/// claimed. False if it was taken meanwhile.
pub async fn claim(
    conn: &mut Conn<'_>,
    task: &str,
    user: UserId,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE workflow_tasks SET assignee = $1, claimed_at = $2 WHERE id = $3 \
               AND status = 'open' AND claimed_at IS NULL \
               AND (assignee IS NULL OR assignee = $1)";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(user)
        .bind(at)
        .bind(task)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// A learned router's version.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ModelRecord {
    /// Its id.
    pub id: Uuid,
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The process whose tasks it routes.
    pub process_id: String,
    /// 1 for the first model of the process, then on.
    pub version: i64,
    /// The router's bytes, sealed.
    pub model: Vec<u8>,
    /// Past tasks it learned from.
    pub examples: i64,
    /// People (or teams) it routes to.
    pub labels: i64,
    /// Who asked for it (`None`: the schedule).
    pub trained_by: Option<UserId>,
    /// When.
    pub trained_at: DateTime<Utc>,
}

const MODEL: &str =
    "id, workspace_id, process_id, version, model, examples, labels, trained_by, trained_at";

/// Stores a model version.
pub async fn insert_model(conn: &mut Conn<'_>, m: &ModelRecord) -> Result<(), StoreError> {
    let sql =
        format!("INSERT INTO routing_models ({MODEL}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)");
    on!(conn, |c| sqlx::query(&sql)
        .bind(m.id)
        .bind(m.workspace_id)
        .bind(&m.process_id)
        .bind(m.version)
        .bind(&m.model)
        .bind(m.examples)
        .bind(m.labels)
        .bind(m.trained_by)
        .bind(m.trained_at)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// The latest model of a process.
pub async fn latest_model(
    conn: &mut Conn<'_>,
    ws: WorkspaceId,
    process: &str,
) -> Result<Option<ModelRecord>, StoreError> {
    let sql = format!(
        "SELECT {MODEL} FROM routing_models WHERE workspace_id = $1 AND process_id = $2 \
         ORDER BY version DESC LIMIT 1"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(ws)
        .bind(process)
        .fetch_optional(c)
        .await)?)
}

/// The latest model version of a process, without its bytes (0: none yet).
pub async fn latest_model_version(
    conn: &mut Conn<'_>,
    ws: WorkspaceId,
    process: &str,
) -> Result<i64, StoreError> {
    let sql = "SELECT COALESCE(MAX(version), 0) FROM routing_models WHERE workspace_id = $1 \
               AND process_id = $2";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .bind(ws)
        .bind(process)
        .fetch_one(c)
        .await)?)
}
