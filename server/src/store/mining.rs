//! Reading workflow history for process mining: the instances of a workspace's processes in
//! a time range, their history steps page by page (for the event log exports), and a
//! process's completed activities in one ordered pass (for variants, the directly-follows
//! graph and deviations).
//!
//! Only readable columns are read (ids, element ids, step kinds, actors, statuses, times);
//! an instance's sealed state is read only when asked for (`with_state`), and a step's
//! sealed detail never.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use uuid::Uuid;

use super::{on, Conn, StoreError};
use crate::domain::{UserId, WorkspaceId};

/// Which instances a log covers: a workspace's, of some processes (all when empty), started
/// in `[from, to)`.
#[derive(Clone, Debug)]
pub struct LogScope {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The processes; empty for all of them.
    pub processes: Vec<String>,
    /// Started at or after.
    pub from: Option<DateTime<Utc>>,
    /// Started before.
    pub to: Option<DateTime<Utc>>,
}

impl LogScope {
    /// The `WHERE` conditions on `workflow_instances i` (parameters from `$first`), and the
    /// number of parameters they take, in the order [`bind_scope`] binds them.
    fn conditions(&self, first: usize) -> (String, usize) {
        let mut sql = format!(
            "i.workspace_id = ${first} AND (${a} IS NULL OR i.started_at >= ${a}) \
             AND (${b} IS NULL OR i.started_at < ${b})",
            a = first + 1,
            b = first + 2
        );
        let mut n = 3;
        if !self.processes.is_empty() {
            let list = (0..self.processes.len())
                .map(|k| format!("${}", first + n + k))
                .collect::<Vec<_>>()
                .join(", ");
            sql.push_str(&format!(" AND i.process_id IN ({list})"));
            n += self.processes.len();
        }
        (sql, n)
    }
}

/// Binds a scope's parameters in the order [`LogScope::conditions`] numbers them.
macro_rules! bind_scope {
    ($q:expr, $scope:expr) => {{
        let mut q = $q.bind($scope.workspace).bind($scope.from).bind($scope.to);
        for p in &$scope.processes {
            q = q.bind(p);
        }
        q
    }};
}

/// An instance as a log shows it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LogInstance {
    /// Its id.
    pub id: Uuid,
    /// The deployment (process version) it runs on.
    pub deployment_id: Uuid,
    /// The process.
    pub process_id: String,
    /// `running`, `completed`, `terminated`, `failed` or `cancelled`.
    pub status: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Its engine state, sealed, when asked for.
    pub state: Option<Vec<u8>>,
}

/// How many instances the scope holds.
pub async fn count_instances(conn: &mut Conn<'_>, scope: &LogScope) -> Result<i64, StoreError> {
    let (cond, _) = scope.conditions(1);
    let sql = format!("SELECT COUNT(*) FROM workflow_instances i WHERE {cond}");
    let n: i64 = on!(conn, |c| bind_scope!(sqlx::query_scalar(&sql), scope)
        .fetch_one(c)
        .await)?;
    Ok(n)
}

/// Up to `limit` instances of the scope with an id above `after` (`Uuid::nil()` for the
/// first page), in id order (which is start order: ids are UUIDv7); with their sealed state
/// when `with_state`. The cursor is always bound, so the index `(workspace_id, id)` seeks to
/// it instead of scanning from the workspace's first instance on every page.
pub async fn log_instances(
    conn: &mut Conn<'_>,
    scope: &LogScope,
    after: Uuid,
    limit: i64,
    with_state: bool,
) -> Result<Vec<LogInstance>, StoreError> {
    let (cond, n) = scope.conditions(1);
    let state = if with_state { "i.state" } else { "NULL" };
    let sql = format!(
        "SELECT i.id, i.deployment_id, i.process_id, i.status, i.started_at, i.ended_at, \
         {state} AS state FROM workflow_instances i WHERE {cond} \
         AND i.id > ${a} ORDER BY i.id LIMIT ${b}",
        a = n + 1,
        b = n + 2
    );
    Ok(on!(conn, |c| bind_scope!(sqlx::query_as(&sql), scope)
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// A history step as the log reads it (its sealed detail left out).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LogStep {
    /// The instance.
    pub instance_id: Uuid,
    /// The step number.
    pub step: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// The element.
    pub element: Option<String>,
    /// `entered`, `completed`, `cancelled` or `task_completed`.
    pub kind: String,
    /// Who caused it.
    pub actor: Option<UserId>,
}

/// The steps that make a log's events (elements entered, completed and cancelled, tasks
/// completed) of the scope's instances with `after < id <= upto`, by instance and step.
pub async fn log_steps(
    conn: &mut Conn<'_>,
    scope: &LogScope,
    after: Uuid,
    upto: Uuid,
) -> Result<Vec<LogStep>, StoreError> {
    let (cond, n) = scope.conditions(1);
    let sql = format!(
        "SELECT s.instance_id, s.step, s.at, s.element, s.kind, s.actor \
         FROM workflow_instances i JOIN workflow_steps s ON s.instance_id = i.id \
         WHERE {cond} AND i.id > ${a} AND i.id <= ${b} \
         AND s.kind IN ('entered', 'completed', 'cancelled', 'task_completed') \
         ORDER BY i.id, s.step",
        a = n + 1,
        b = n + 2
    );
    Ok(on!(conn, |c| bind_scope!(sqlx::query_as(&sql), scope)
        .bind(after)
        .bind(upto)
        .fetch_all(c)
        .await)?)
}

/// One row of a process's mining pass: an instance, and one of its steps that matter (none
/// when it has no such step).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MiningRow {
    /// The instance.
    pub id: Uuid,
    /// Its deployment.
    pub deployment_id: Uuid,
    /// Its status.
    pub status: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// The step's number.
    pub step: Option<i64>,
    /// When the step happened.
    pub at: Option<DateTime<Utc>>,
    /// The step's element.
    pub element: Option<String>,
    /// The step's kind.
    pub kind: Option<String>,
}

/// Calls `row` for each of the scope's instances (one process) in id order, once per step
/// that matters in step order, or once with no step: the completions of `activities`, the
/// entries into `boundaries` (a boundary event that fired) and every compensation started.
/// The rows stream from the database; nothing is collected here.
pub async fn fold_mining_rows(
    conn: &mut Conn<'_>,
    scope: &LogScope,
    activities: &[String],
    boundaries: &[String],
    mut row: impl FnMut(MiningRow),
) -> Result<(), StoreError> {
    let (cond, n) = scope.conditions(1);
    let list = |from: usize, len: usize| {
        if len == 0 {
            "NULL".to_owned()
        } else {
            (from..from + len)
                .map(|k| format!("${k}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let done = list(n + 1, activities.len());
    let fired = list(n + 1 + activities.len(), boundaries.len());
    let sql = format!(
        "SELECT i.id, i.deployment_id, i.status, i.started_at, i.ended_at, \
         s.step, s.at, s.element, s.kind \
         FROM workflow_instances i LEFT JOIN workflow_steps s ON s.instance_id = i.id \
         AND ((s.kind = 'completed' AND s.element IN ({done})) \
              OR (s.kind = 'entered' AND s.element IN ({fired})) \
              OR s.kind = 'compensation_started') \
         WHERE {cond} ORDER BY i.id, s.step"
    );
    on!(conn, |c| async {
        let mut q = bind_scope!(sqlx::query_as::<_, MiningRow>(&sql), scope);
        for a in activities {
            q = q.bind(a);
        }
        for b in boundaries {
            q = q.bind(b);
        }
        let mut rows = q.fetch(c);
        while let Some(r) = rows.try_next().await? {
            row(r);
        }
        Ok::<(), sqlx::Error>(())
    }
    .await)?;
    Ok(())
}

/// A task of the scope that did not go as assigned.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TaskDeviation {
    /// The instance.
    pub instance_id: Uuid,
    /// The user task element.
    pub element: String,
    /// Escalation steps behind it.
    pub escalation_level: i64,
    /// Whether someone other than its assignee completed it.
    pub reassigned: bool,
}

/// The scope's tasks that were escalated, or completed by someone other than the person
/// they were assigned to.
pub async fn task_deviations(
    conn: &mut Conn<'_>,
    scope: &LogScope,
) -> Result<Vec<TaskDeviation>, StoreError> {
    let (cond, _) = scope.conditions(1);
    let sql = format!(
        "SELECT t.instance_id, t.element, t.escalation_level, \
         (t.closed_by IS NOT NULL AND t.assignee IS NOT NULL AND t.closed_by <> t.assignee) \
         AS reassigned \
         FROM workflow_tasks t JOIN workflow_instances i ON i.id = t.instance_id \
         WHERE {cond} AND (t.escalation_level > 0 OR \
         (t.closed_by IS NOT NULL AND t.assignee IS NOT NULL AND t.closed_by <> t.assignee)) \
         ORDER BY t.instance_id, t.created_at"
    );
    Ok(on!(conn, |c| bind_scope!(sqlx::query_as(&sql), scope)
        .fetch_all(c)
        .await)?)
}

/// An incident of the scope: its instance, element and whether it is resolved.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct IncidentMark {
    /// The instance.
    pub instance_id: Uuid,
    /// The element it stopped at.
    pub element: String,
    /// `open` or `resolved`.
    pub status: String,
}

/// Every incident of the scope's instances.
pub async fn incident_marks(
    conn: &mut Conn<'_>,
    scope: &LogScope,
) -> Result<Vec<IncidentMark>, StoreError> {
    let (cond, _) = scope.conditions(1);
    let sql = format!(
        "SELECT n.instance_id, n.element, n.status \
         FROM workflow_incidents n JOIN workflow_instances i ON i.id = n.instance_id \
         WHERE {cond} ORDER BY n.instance_id, n.raised_at"
    );
    Ok(on!(conn, |c| bind_scope!(sqlx::query_as(&sql), scope)
        .fetch_all(c)
        .await)?)
}
