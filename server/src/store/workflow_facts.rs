//! Process dashboards (tables `workflow_step_facts`, `workflow_process_counts`,
//! `workflow_step_counts`, `workflow_step_durations`, migration 0042): one row per execution of
//! an activity, and per hour and per day the counts and duration histograms a dashboard reads.
//!
//! Everything here is readable by design (ids, element ids, kinds, times, durations); the
//! service (`workflow::facts`) writes it in the same write as the step it describes. Each
//! `add_*` function adds its rows' counts to what is stored, one statement per call; the rows
//! given must have distinct keys (PostgreSQL refuses to update one row twice in a statement).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{on, Conn, StoreError};
use crate::domain::WorkspaceId;

/// Rows per multi-row statement (well under both backends' limits on bound values).
const ROWS_PER_STATEMENT: usize = 400;

/// One execution of an activity.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct FactRecord {
    /// The task id for a user task, `{instance}:{step}` of the entering step for any other.
    pub id: String,
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The process.
    pub process_id: String,
    /// The deployment the instance runs on.
    pub deployment_id: Uuid,
    /// The instance.
    pub instance_id: Uuid,
    /// The element id.
    pub element: String,
    /// `user_task`, `service_task`, `send_task`, `business_rule_task`, `receive_task`,
    /// `sub_process` or `call_activity`.
    pub kind: String,
    /// The engine's execution (activities other than user tasks).
    pub execution: Option<i64>,
    /// When it was entered (a user task: opened).
    pub entered_at: DateTime<Utc>,
    /// When someone picked it up (user tasks).
    pub picked_at: Option<DateTime<Utc>>,
    /// When it was left.
    pub left_at: Option<DateTime<Utc>>,
    /// `completed` or `cancelled`, once left.
    pub outcome: Option<String>,
    /// Entered to picked up, once left.
    pub waiting_ms: Option<i64>,
    /// Picked up (or entered) to left, once left.
    pub working_ms: Option<i64>,
    /// When it was due.
    pub due_at: Option<DateTime<Utc>>,
    /// Left after it was due.
    pub breached: bool,
}

const FACT: &str = "id, workspace_id, process_id, deployment_id, instance_id, element, kind, \
                    execution, entered_at, picked_at, left_at, outcome, waiting_ms, working_ms, \
                    due_at, breached";

/// Adds `$rows` to a table of counters (see [`counters_sql`]) in statements of at most
/// `ROWS_PER_STATEMENT` rows; `|r| [values…]` lists one row's values in column order.
macro_rules! add_to_counters {
    ($conn:expr, $rows:expr, $table:literal, keys: [$($key:literal),+], sums: [$($sum:literal),+], |$r:ident| [$($value:expr),+]) => {{
        for chunk in $rows.chunks(ROWS_PER_STATEMENT) {
            let sql = counters_sql($table, &[$($key),+], &[$($sum),+], chunk.len());
            on!($conn, |c| {
                let mut q = sqlx::query(&sql);
                for $r in chunk {
                    $(q = q.bind($value);)+
                }
                q.execute(c).await.map(|_| ())
            })?;
        }
        Ok(())
    }};
}

/// Stores facts (open or already left), in as few statements as the rows allow.
pub async fn insert_facts(conn: &mut Conn<'_>, facts: &[FactRecord]) -> Result<(), StoreError> {
    for chunk in facts.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO workflow_step_facts ({FACT}) VALUES {}",
            placeholders(chunk.len(), 16)
        );
        on!(conn, |c| {
            let mut q = sqlx::query(&sql);
            for f in chunk {
                q = q
                    .bind(&f.id)
                    .bind(f.workspace_id)
                    .bind(&f.process_id)
                    .bind(f.deployment_id)
                    .bind(f.instance_id)
                    .bind(&f.element)
                    .bind(&f.kind)
                    .bind(f.execution)
                    .bind(f.entered_at)
                    .bind(f.picked_at)
                    .bind(f.left_at)
                    .bind(&f.outcome)
                    .bind(f.waiting_ms)
                    .bind(f.working_ms)
                    .bind(f.due_at)
                    .bind(f.breached);
            }
            q.execute(c).await.map(|_| ())
        })?;
    }
    Ok(())
}

/// The fact `id` (a user task's is its task id).
pub async fn fact(conn: &mut Conn<'_>, id: &str) -> Result<Option<FactRecord>, StoreError> {
    let sql = format!("SELECT {FACT} FROM workflow_step_facts WHERE id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// The fact of the execution `execution` still in `element` of `instance`.
pub async fn open_fact(
    conn: &mut Conn<'_>,
    instance: Uuid,
    element: &str,
    execution: i64,
) -> Result<Option<FactRecord>, StoreError> {
    let sql = format!(
        "SELECT {FACT} FROM workflow_step_facts WHERE instance_id = $1 AND element = $2 \
         AND execution = $3 AND left_at IS NULL"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(instance)
        .bind(element)
        .bind(execution)
        .fetch_optional(c)
        .await)?)
}

/// Records how a fact ended: its pick-up, end, outcome, durations and SLA.
pub async fn close_fact(conn: &mut Conn<'_>, f: &FactRecord) -> Result<(), StoreError> {
    let sql = "UPDATE workflow_step_facts SET picked_at = $1, left_at = $2, outcome = $3, \
               waiting_ms = $4, working_ms = $5, breached = $6 WHERE id = $7";
    on!(conn, |c| sqlx::query(sql)
        .bind(f.picked_at)
        .bind(f.left_at)
        .bind(&f.outcome)
        .bind(f.waiting_ms)
        .bind(f.working_ms)
        .bind(f.breached)
        .bind(&f.id)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Notes that someone picked up the open fact `id` at `at`, unless someone did before.
pub async fn picked_up(conn: &mut Conn<'_>, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
    let sql = "UPDATE workflow_step_facts SET picked_at = $1 \
               WHERE id = $2 AND picked_at IS NULL AND left_at IS NULL";
    on!(conn, |c| sqlx::query(sql)
        .bind(at)
        .bind(id)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Instances started and ended in one period of one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessCounts {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The process.
    pub process_id: String,
    /// `hour` or `day`.
    pub period: &'static str,
    /// The period's first instant (UTC).
    pub period_start: DateTime<Utc>,
    /// Instances started.
    pub started: i64,
    /// Ended completed (or terminated).
    pub completed: i64,
    /// Ended failed.
    pub failed: i64,
    /// Ended cancelled.
    pub cancelled: i64,
}

/// Adds instance counts.
pub async fn add_process_counts(
    conn: &mut Conn<'_>,
    rows: &[ProcessCounts],
) -> Result<(), StoreError> {
    add_to_counters!(
        conn,
        rows,
        "workflow_process_counts",
        keys: ["workspace_id", "process_id", "period", "period_start"],
        sums: ["started", "completed", "failed", "cancelled"],
        |r| [r.workspace_id, &r.process_id, r.period, r.period_start, r.started, r.completed, r.failed, r.cancelled]
    )
}

/// Executions of one element left in one period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepCounts {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The process.
    pub process_id: String,
    /// `hour` or `day`.
    pub period: &'static str,
    /// The period's first instant (UTC).
    pub period_start: DateTime<Utc>,
    /// The element.
    pub element: String,
    /// Left completed.
    pub completed: i64,
    /// Left cancelled.
    pub cancelled: i64,
    /// With a due date.
    pub with_due: i64,
    /// Left after their due date.
    pub breached: i64,
}

/// Adds step counts.
pub async fn add_step_counts(conn: &mut Conn<'_>, rows: &[StepCounts]) -> Result<(), StoreError> {
    add_to_counters!(
        conn,
        rows,
        "workflow_step_counts",
        keys: ["workspace_id", "process_id", "period", "period_start", "element"],
        sums: ["completed", "cancelled", "with_due", "breached"],
        |r| [r.workspace_id, &r.process_id, r.period, r.period_start, &r.element, r.completed, r.cancelled, r.with_due, r.breached]
    )
}

/// How many completed executions of one element, in one period, fell in one histogram bin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepDurations {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The process.
    pub process_id: String,
    /// `hour` or `day`.
    pub period: &'static str,
    /// The period's first instant (UTC).
    pub period_start: DateTime<Utc>,
    /// The element.
    pub element: String,
    /// `waiting`, `working` or `total`.
    pub measure: &'static str,
    /// The bin.
    pub bin: i64,
    /// How many.
    pub count: i64,
}

/// Adds to duration histograms.
pub async fn add_step_durations(
    conn: &mut Conn<'_>,
    rows: &[StepDurations],
) -> Result<(), StoreError> {
    add_to_counters!(
        conn,
        rows,
        "workflow_step_durations",
        keys: ["workspace_id", "process_id", "period", "period_start", "element", "measure", "bin"],
        sums: ["count"],
        |r| [r.workspace_id, &r.process_id, r.period, r.period_start, &r.element, r.measure, r.bin, r.count]
    )
}

/// `INSERT INTO table (keys…, sums…) VALUES … ON CONFLICT (keys…) DO UPDATE SET` each sum
/// column to itself plus the new row's, for `rows` rows.
fn counters_sql(table: &str, keys: &[&str], sums: &[&str], rows: usize) -> String {
    let columns: Vec<&str> = keys.iter().chain(sums).copied().collect();
    let added: Vec<String> = sums
        .iter()
        .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO {table} ({}) VALUES {} ON CONFLICT ({}) DO UPDATE SET {}",
        columns.join(", "),
        placeholders(rows, columns.len()),
        keys.join(", "),
        added.join(", ")
    )
}

/// `(…), (…)` for `rows` rows of `columns` numbered parameters.
fn placeholders(rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..columns {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(r * columns + c + 1).to_string());
        }
        out.push(')');
    }
    out
}

/// Instance counts of one period.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PeriodCounts {
    /// The period's first instant.
    pub period_start: DateTime<Utc>,
    /// Started.
    pub started: i64,
    /// Ended completed (or terminated).
    pub completed: i64,
    /// Ended failed.
    pub failed: i64,
    /// Ended cancelled.
    pub cancelled: i64,
}

/// A process's instance counts in the periods starting in `[from, to)`, oldest first.
pub async fn process_counts(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    process_id: &str,
    period: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<PeriodCounts>, StoreError> {
    let sql = "SELECT period_start, started, completed, failed, cancelled \
               FROM workflow_process_counts WHERE workspace_id = $1 AND process_id = $2 \
               AND period = $3 AND period_start >= $4 AND period_start < $5 ORDER BY period_start";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .bind(process_id)
        .bind(period)
        .bind(from)
        .bind(to)
        .fetch_all(c)
        .await)?)
}

/// How many instances of a process are running now.
pub async fn running_instances(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    process_id: &str,
) -> Result<i64, StoreError> {
    let sql = "SELECT count(*) FROM workflow_instances WHERE workspace_id = $1 \
               AND process_id = $2 AND status = 'running'";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .bind(workspace)
        .bind(process_id)
        .fetch_one(c)
        .await)?)
}

/// An element's step counts over a range of periods.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ElementCounts {
    /// The element.
    pub element: String,
    /// Left completed.
    pub completed: i64,
    /// Left cancelled.
    pub cancelled: i64,
    /// With a due date.
    pub with_due: i64,
    /// Left after their due date.
    pub breached: i64,
}

/// Each element's step counts in the periods starting in `[from, to)`.
pub async fn step_counts(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    process_id: &str,
    period: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<ElementCounts>, StoreError> {
    let sql = "SELECT element, CAST(SUM(completed) AS BIGINT) AS completed, \
               CAST(SUM(cancelled) AS BIGINT) AS cancelled, \
               CAST(SUM(with_due) AS BIGINT) AS with_due, \
               CAST(SUM(breached) AS BIGINT) AS breached \
               FROM workflow_step_counts WHERE workspace_id = $1 AND process_id = $2 \
               AND period = $3 AND period_start >= $4 AND period_start < $5 \
               GROUP BY element ORDER BY element";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .bind(process_id)
        .bind(period)
        .bind(from)
        .bind(to)
        .fetch_all(c)
        .await)?)
}

/// One histogram bin of one element's measure over a range of periods.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DurationBin {
    /// The element.
    pub element: String,
    /// `waiting`, `working` or `total`.
    pub measure: String,
    /// The bin.
    pub bin: i64,
    /// How many executions fell in it.
    pub count: i64,
}

/// Each element's duration histograms in the periods starting in `[from, to)`, by element,
/// measure and bin.
pub async fn step_durations(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    process_id: &str,
    period: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<DurationBin>, StoreError> {
    let sql = "SELECT element, measure, bin, CAST(SUM(count) AS BIGINT) AS count \
               FROM workflow_step_durations WHERE workspace_id = $1 AND process_id = $2 \
               AND period = $3 AND period_start >= $4 AND period_start < $5 \
               GROUP BY element, measure, bin ORDER BY element, measure, bin";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .bind(process_id)
        .bind(period)
        .bind(from)
        .bind(to)
        .fetch_all(c)
        .await)?)
}

/// An element's executions in progress now.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OpenSteps {
    /// The element.
    pub element: String,
    /// In progress.
    pub open: i64,
    /// In progress past their due date.
    pub open_breached: i64,
}

/// Each element's executions in progress at `now`, and those past due.
pub async fn open_steps(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    process_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<OpenSteps>, StoreError> {
    let sql = "SELECT element, count(*) AS open, \
               CAST(SUM(CASE WHEN due_at < $3 THEN 1 ELSE 0 END) AS BIGINT) AS open_breached \
               FROM workflow_step_facts WHERE workspace_id = $1 AND process_id = $2 \
               AND left_at IS NULL GROUP BY element ORDER BY element";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .bind(process_id)
        .bind(now)
        .fetch_all(c)
        .await)?)
}

/// Each element's open incidents in a process.
pub async fn open_incidents_by_element(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    process_id: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    let sql = "SELECT n.element, count(*) FROM workflow_incidents n \
               JOIN workflow_instances i ON i.id = n.instance_id \
               WHERE n.workspace_id = $1 AND n.status = 'open' AND i.process_id = $2 \
               GROUP BY n.element ORDER BY n.element";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .bind(process_id)
        .fetch_all(c)
        .await)?)
}

/// Open incidents in the whole database.
pub async fn open_incidents(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    let sql = "SELECT count(*) FROM workflow_incidents WHERE status = 'open'";
    Ok(on!(conn, |c| sqlx::query_scalar(sql).fetch_one(c).await)?)
}

#[cfg(test)]
mod tests {
    use super::{counters_sql, placeholders};

    #[test]
    fn placeholders_number_every_row_and_column() {
        assert_eq!(placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(1, 1), "($1)");
    }

    #[test]
    fn counters_add_to_the_row_with_the_same_keys() {
        assert_eq!(
            counters_sql("t", &["k", "p"], &["a", "b"], 2),
            "INSERT INTO t (k, p, a, b) VALUES ($1, $2, $3, $4), ($5, $6, $7, $8) \
             ON CONFLICT (k, p) DO UPDATE SET a = t.a + excluded.a, b = t.b + excluded.b"
        );
    }
}
