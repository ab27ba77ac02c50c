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
    workspace_id   UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    process_id     TEXT NOT NULL,
    deployment_id  UUID NOT NULL REFERENCES workflow_deployments(id) ON DELETE CASCADE,
    instance_id    UUID NOT NULL REFERENCES workflow_instances(id) ON DELETE CASCADE,
    element        TEXT NOT NULL,
    kind           TEXT NOT NULL,
    execution      BIGINT,
    entered_at     TIMESTAMPTZ NOT NULL,
    picked_at      TIMESTAMPTZ,
    left_at        TIMESTAMPTZ,
    outcome        TEXT CHECK (outcome IN ('completed', 'cancelled')),
    waiting_ms     BIGINT,
    working_ms     BIGINT,
    due_at         TIMESTAMPTZ,
    breached       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX workflow_step_facts_by_instance ON workflow_step_facts (instance_id, element);
-- Steps in progress, by process: a dashboard's open and open-past-due counts.
CREATE INDEX workflow_step_facts_open ON workflow_step_facts (workspace_id, process_id, element)
    WHERE left_at IS NULL;

CREATE TABLE workflow_process_counts (
    workspace_id  UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    process_id    TEXT NOT NULL,
    period        TEXT NOT NULL CHECK (period IN ('hour', 'day')),
    period_start  TIMESTAMPTZ NOT NULL,
    started       BIGINT NOT NULL DEFAULT 0,
    completed     BIGINT NOT NULL DEFAULT 0,
    failed        BIGINT NOT NULL DEFAULT 0,
    cancelled     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, process_id, period, period_start)
);

CREATE TABLE workflow_step_counts (
    workspace_id  UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    process_id    TEXT NOT NULL,
    period        TEXT NOT NULL CHECK (period IN ('hour', 'day')),
    period_start  TIMESTAMPTZ NOT NULL,
    element       TEXT NOT NULL,
    completed     BIGINT NOT NULL DEFAULT 0,
    cancelled     BIGINT NOT NULL DEFAULT 0,
    with_due      BIGINT NOT NULL DEFAULT 0,
    breached      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, process_id, period, period_start, element)
);

CREATE TABLE workflow_step_durations (
    workspace_id  UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    process_id    TEXT NOT NULL,
    period        TEXT NOT NULL CHECK (period IN ('hour', 'day')),
    period_start  TIMESTAMPTZ NOT NULL,
    element       TEXT NOT NULL,
    measure       TEXT NOT NULL CHECK (measure IN ('waiting', 'working', 'total')),
    bin           BIGINT NOT NULL,
    count         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, process_id, period, period_start, element, measure, bin)
);

-- A dashboard counts a process's running instances; the metrics scrape counts open incidents.
CREATE INDEX workflow_instances_by_process ON workflow_instances (workspace_id, process_id, status);
CREATE INDEX workflow_incidents_open ON workflow_incidents (instance_id) WHERE status = 'open';

-- Backfill from what was recorded before this migration: instances (started and ended, by
-- status) and user tasks (from workflow_tasks: opened, claimed, closed, due). Other
-- activities' kinds are only in the sealed models, so their figures start at the upgrade.
-- A task closed before it had facts counts as picked up when claimed, else at opening when it
-- had an assignee at closing, else when it closed.
INSERT INTO workflow_process_counts (workspace_id, process_id, period, period_start, started)
SELECT workspace_id, process_id, p.period, date_trunc(p.period, started_at, 'UTC'), count(*)
FROM workflow_instances CROSS JOIN (VALUES ('hour'), ('day')) AS p(period)
GROUP BY workspace_id, process_id, p.period, date_trunc(p.period, started_at, 'UTC');

INSERT INTO workflow_process_counts (workspace_id, process_id, period, period_start, completed, failed, cancelled)
SELECT workspace_id, process_id, p.period, date_trunc(p.period, ended_at, 'UTC'),
    count(*) FILTER (WHERE status IN ('completed', 'terminated')),
    count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = 'cancelled')
FROM workflow_instances CROSS JOIN (VALUES ('hour'), ('day')) AS p(period)
WHERE ended_at IS NOT NULL
GROUP BY workspace_id, process_id, p.period, date_trunc(p.period, ended_at, 'UTC')
ON CONFLICT (workspace_id, process_id, period, period_start) DO UPDATE SET
    completed = workflow_process_counts.completed + excluded.completed,
    failed = workflow_process_counts.failed + excluded.failed,
    cancelled = workflow_process_counts.cancelled + excluded.cancelled;

INSERT INTO workflow_step_facts (id, workspace_id, process_id, deployment_id, instance_id,
    element, kind, execution, entered_at, picked_at, left_at, outcome, due_at, breached)
SELECT t.id, t.workspace_id, i.process_id, i.deployment_id, t.instance_id, t.element,
    'user_task', NULL, t.created_at,
    COALESCE(t.claimed_at, CASE WHEN t.assignee IS NOT NULL THEN t.created_at END, t.closed_at),
    t.closed_at,
    CASE t.status WHEN 'open' THEN NULL ELSE t.status END,
    t.due_at,
    COALESCE(t.closed_at > t.due_at, FALSE)
FROM workflow_tasks t JOIN workflow_instances i ON i.id = t.instance_id;

UPDATE workflow_step_facts SET
    waiting_ms = GREATEST(0, round(extract(epoch FROM picked_at - entered_at) * 1000))::BIGINT,
    working_ms = GREATEST(0, round(extract(epoch FROM left_at - picked_at) * 1000))::BIGINT
WHERE left_at IS NOT NULL;

INSERT INTO workflow_step_counts (workspace_id, process_id, period, period_start, element,
    completed, cancelled, with_due, breached)
SELECT workspace_id, process_id, p.period, date_trunc(p.period, left_at, 'UTC'), element,
    count(*) FILTER (WHERE outcome = 'completed'), count(*) FILTER (WHERE outcome = 'cancelled'),
    count(*) FILTER (WHERE due_at IS NOT NULL), count(*) FILTER (WHERE breached)
FROM workflow_step_facts CROSS JOIN (VALUES ('hour'), ('day')) AS p(period)
WHERE left_at IS NOT NULL
GROUP BY workspace_id, process_id, p.period, date_trunc(p.period, left_at, 'UTC'), element;

INSERT INTO workflow_step_durations (workspace_id, process_id, period, period_start, element,
    measure, bin, count)
SELECT f.workspace_id, f.process_id, p.period, date_trunc(p.period, f.left_at, 'UTC'), f.element,
    m.measure, CASE WHEN m.v <= 0 THEN 0 ELSE floor(ln(m.v) / ln(1.04))::BIGINT + 1 END AS bin,
    count(*)
FROM workflow_step_facts f
CROSS JOIN (VALUES ('hour'), ('day')) AS p(period)
CROSS JOIN LATERAL (VALUES ('waiting', f.waiting_ms), ('working', f.working_ms),
    ('total', f.waiting_ms + f.working_ms)) AS m(measure, v)
WHERE f.outcome = 'completed'
GROUP BY 1, 2, 3, 4, 5, 6, 7;
