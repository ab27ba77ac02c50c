-- Process dashboards: what a process's dashboard reads, kept up to date in the write that
-- records each step (server/src/workflow/facts.rs), so a dashboard reads a few hundred rows
-- whatever the size of the history.
--
-- `workflow_step_facts`: one row per execution of an activity (a user task, keyed by its task
-- id; any other activity by `{instance}:{step}` of the step that entered it): when it was
-- entered, picked up (user tasks) and left, how, its waiting and working time and its SLA.
-- The three aggregate tables count, per hour and per day (UTC), instances started and ended
-- by status, steps left with their SLA outcome, and the steps' durations as log-scale
-- histograms (bin b >= 1 holds durations in [1.04^(b-1), 1.04^b) ms, bin 0 holds 0), from
-- which percentiles are read within 2 %. Only ids, element ids, kinds, times and durations:
-- nothing here is sealed.
CREATE TABLE workflow_step_facts (
    id             TEXT PRIMARY KEY NOT NULL,
    workspace_id   BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    process_id     TEXT NOT NULL,
    deployment_id  BLOB NOT NULL REFERENCES workflow_deployments(id) ON DELETE CASCADE,
    instance_id    BLOB NOT NULL REFERENCES workflow_instances(id) ON DELETE CASCADE,
    element        TEXT NOT NULL,
    kind           TEXT NOT NULL,
    execution      BIGINT,
    entered_at     TEXT NOT NULL,
    picked_at      TEXT,
    left_at        TEXT,
    outcome        TEXT CHECK (outcome IN ('completed', 'cancelled')),
    waiting_ms     BIGINT,
    working_ms     BIGINT,
    due_at         TEXT,
    breached       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX workflow_step_facts_by_instance ON workflow_step_facts (instance_id, element);
-- Steps in progress, by process: a dashboard's open and open-past-due counts.
CREATE INDEX workflow_step_facts_open ON workflow_step_facts (workspace_id, process_id, element)
    WHERE left_at IS NULL;

CREATE TABLE workflow_process_counts (
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    process_id    TEXT NOT NULL,
    period        TEXT NOT NULL CHECK (period IN ('hour', 'day')),
    period_start  TEXT NOT NULL,
    started       BIGINT NOT NULL DEFAULT 0,
    completed     BIGINT NOT NULL DEFAULT 0,
    failed        BIGINT NOT NULL DEFAULT 0,
    cancelled     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, process_id, period, period_start)
) WITHOUT ROWID;

CREATE TABLE workflow_step_counts (
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    process_id    TEXT NOT NULL,
    period        TEXT NOT NULL CHECK (period IN ('hour', 'day')),
    period_start  TEXT NOT NULL,
    element       TEXT NOT NULL,
    completed     BIGINT NOT NULL DEFAULT 0,
    cancelled     BIGINT NOT NULL DEFAULT 0,
    with_due      BIGINT NOT NULL DEFAULT 0,
    breached      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, process_id, period, period_start, element)
) WITHOUT ROWID;

CREATE TABLE workflow_step_durations (
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    process_id    TEXT NOT NULL,
    period        TEXT NOT NULL CHECK (period IN ('hour', 'day')),
    period_start  TEXT NOT NULL,
    element       TEXT NOT NULL,
    measure       TEXT NOT NULL CHECK (measure IN ('waiting', 'working', 'total')),
    bin           BIGINT NOT NULL,
    count         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, process_id, period, period_start, element, measure, bin)
) WITHOUT ROWID;

-- A dashboard counts a process's running instances; the metrics scrape counts open incidents.
CREATE INDEX workflow_instances_by_process ON workflow_instances (workspace_id, process_id, status);
CREATE INDEX workflow_incidents_open ON workflow_incidents (instance_id) WHERE status = 'open';

-- Backfill from what was recorded before this migration: instances (started and ended, by
-- status) and user tasks (from workflow_tasks: opened, claimed, closed, due). Other
-- activities' kinds are only in the sealed models, so their figures start at the upgrade.
-- A task closed before it had facts counts as picked up when claimed, else at opening when it
-- had an assignee at closing, else when it closed.
INSERT INTO workflow_process_counts (workspace_id, process_id, period, period_start, started)
SELECT workspace_id, process_id, 'hour', strftime('%Y-%m-%dT%H:00:00+00:00', started_at), count(*)
FROM workflow_instances WHERE true
GROUP BY workspace_id, process_id, strftime('%Y-%m-%dT%H:00:00+00:00', started_at);

INSERT INTO workflow_process_counts (workspace_id, process_id, period, period_start, started)
SELECT workspace_id, process_id, 'day', strftime('%Y-%m-%dT00:00:00+00:00', started_at), count(*)
FROM workflow_instances WHERE true
GROUP BY workspace_id, process_id, strftime('%Y-%m-%dT00:00:00+00:00', started_at);

INSERT INTO workflow_process_counts (workspace_id, process_id, period, period_start, completed, failed, cancelled)
SELECT workspace_id, process_id, 'hour', strftime('%Y-%m-%dT%H:00:00+00:00', ended_at),
    sum(status IN ('completed', 'terminated')), sum(status = 'failed'), sum(status = 'cancelled')
FROM workflow_instances WHERE ended_at IS NOT NULL
GROUP BY workspace_id, process_id, strftime('%Y-%m-%dT%H:00:00+00:00', ended_at)
ON CONFLICT (workspace_id, process_id, period, period_start) DO UPDATE SET
    completed = completed + excluded.completed, failed = failed + excluded.failed,
    cancelled = cancelled + excluded.cancelled;

INSERT INTO workflow_process_counts (workspace_id, process_id, period, period_start, completed, failed, cancelled)
SELECT workspace_id, process_id, 'day', strftime('%Y-%m-%dT00:00:00+00:00', ended_at),
    sum(status IN ('completed', 'terminated')), sum(status = 'failed'), sum(status = 'cancelled')
FROM workflow_instances WHERE ended_at IS NOT NULL
GROUP BY workspace_id, process_id, strftime('%Y-%m-%dT00:00:00+00:00', ended_at)
ON CONFLICT (workspace_id, process_id, period, period_start) DO UPDATE SET
    completed = completed + excluded.completed, failed = failed + excluded.failed,
    cancelled = cancelled + excluded.cancelled;

INSERT INTO workflow_step_facts (id, workspace_id, process_id, deployment_id, instance_id,
    element, kind, execution, entered_at, picked_at, left_at, outcome, due_at, breached)
SELECT t.id, t.workspace_id, i.process_id, i.deployment_id, t.instance_id, t.element,
    'user_task', NULL, t.created_at,
    COALESCE(t.claimed_at, CASE WHEN t.assignee IS NOT NULL THEN t.created_at END, t.closed_at),
    t.closed_at,
    CASE t.status WHEN 'open' THEN NULL ELSE t.status END,
    t.due_at,
    t.due_at IS NOT NULL AND t.closed_at IS NOT NULL AND julianday(t.closed_at) > julianday(t.due_at)
FROM workflow_tasks t JOIN workflow_instances i ON i.id = t.instance_id;

UPDATE workflow_step_facts SET
    waiting_ms = max(0, CAST(round((julianday(picked_at) - julianday(entered_at)) * 86400000.0) AS INTEGER)),
    working_ms = max(0, CAST(round((julianday(left_at) - julianday(picked_at)) * 86400000.0) AS INTEGER))
WHERE left_at IS NOT NULL;

INSERT INTO workflow_step_counts (workspace_id, process_id, period, period_start, element,
    completed, cancelled, with_due, breached)
SELECT workspace_id, process_id, 'hour', strftime('%Y-%m-%dT%H:00:00+00:00', left_at), element,
    sum(outcome = 'completed'), sum(outcome = 'cancelled'), sum(due_at IS NOT NULL), sum(breached)
FROM workflow_step_facts WHERE left_at IS NOT NULL
GROUP BY workspace_id, process_id, strftime('%Y-%m-%dT%H:00:00+00:00', left_at), element;

INSERT INTO workflow_step_counts (workspace_id, process_id, period, period_start, element,
    completed, cancelled, with_due, breached)
SELECT workspace_id, process_id, 'day', strftime('%Y-%m-%dT00:00:00+00:00', left_at), element,
    sum(outcome = 'completed'), sum(outcome = 'cancelled'), sum(due_at IS NOT NULL), sum(breached)
FROM workflow_step_facts WHERE left_at IS NOT NULL
GROUP BY workspace_id, process_id, strftime('%Y-%m-%dT00:00:00+00:00', left_at), element;

-- SQLite has no ln() here: the bins' lower bounds, found by the largest one not above a value.
CREATE TABLE workflow_dashboard_bins (bin BIGINT PRIMARY KEY NOT NULL, lo REAL NOT NULL);
WITH RECURSIVE b(bin, lo) AS (SELECT 1, 1.0 UNION ALL SELECT bin + 1, lo * 1.04 FROM b WHERE bin < 1200)
INSERT INTO workflow_dashboard_bins (bin, lo) SELECT bin, lo FROM b;
CREATE INDEX workflow_dashboard_bins_by_lo ON workflow_dashboard_bins (lo);

INSERT INTO workflow_step_durations (workspace_id, process_id, period, period_start, element,
    measure, bin, count)
SELECT workspace_id, process_id, period, period_start, element, measure, bin, count(*)
FROM (
    SELECT f.workspace_id, f.process_id, p.period,
        CASE p.period WHEN 'hour' THEN strftime('%Y-%m-%dT%H:00:00+00:00', f.left_at)
            ELSE strftime('%Y-%m-%dT00:00:00+00:00', f.left_at) END AS period_start,
        f.element, m.measure,
        CASE WHEN m.v <= 0 THEN 0 ELSE
            (SELECT bin FROM workflow_dashboard_bins WHERE lo <= m.v ORDER BY lo DESC LIMIT 1) END AS bin
    FROM workflow_step_facts f
    JOIN (SELECT 'hour' AS period UNION ALL SELECT 'day') p
    JOIN (
        SELECT id, 'waiting' AS measure, waiting_ms AS v FROM workflow_step_facts WHERE outcome = 'completed'
        UNION ALL SELECT id, 'working', working_ms FROM workflow_step_facts WHERE outcome = 'completed'
        UNION ALL SELECT id, 'total', waiting_ms + working_ms FROM workflow_step_facts WHERE outcome = 'completed'
    ) m ON m.id = f.id
) WHERE true
GROUP BY workspace_id, process_id, period, period_start, element, measure, bin;

DROP TABLE workflow_dashboard_bins;
