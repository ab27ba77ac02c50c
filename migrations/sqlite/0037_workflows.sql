-- Workflows: deployed process models and the instances running them.
--
-- A deployment is an immutable version of one process of a workspace: its source as deployed
-- (BPMN XML or YAML) and the parsed model, both sealed under the workspace's key. An instance
-- runs on the deployment it started with; its whole engine state (variables included) is one
-- sealed JSON document, replaced in the transaction that records the step's history and
-- audit entries and queues the work the step asked for. The other tables are indexes over
-- that state the server needs to find work by: open user tasks (who may complete them),
-- due jobs (timers, service calls, posts, child instances, published messages), message
-- subscriptions and open incidents. Everything a person wrote or a process computed is
-- sealed; what stays readable is ids, element ids, statuses and times.
CREATE TABLE workflow_deployments (
    id            BLOB PRIMARY KEY NOT NULL,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    process_id    TEXT NOT NULL,
    version       BIGINT NOT NULL,
    format        TEXT NOT NULL CHECK (format IN ('bpmn', 'yaml')),
    source        BLOB NOT NULL,
    model         BLOB NOT NULL,
    deployed_by   BLOB,
    deployed_at   TEXT NOT NULL,
    UNIQUE (workspace_id, process_id, version)
);

CREATE TABLE workflow_instances (
    id             BLOB PRIMARY KEY NOT NULL,
    workspace_id   BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    deployment_id  BLOB NOT NULL REFERENCES workflow_deployments(id) ON DELETE CASCADE,
    process_id     TEXT NOT NULL,
    status         TEXT NOT NULL,
    state          BLOB NOT NULL,
    started_by     BLOB,
    started_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    ended_at       TEXT,
    parent_id      BLOB,
    parent_wait    TEXT,
    trigger_event  TEXT
);
CREATE INDEX workflow_instances_by_workspace ON workflow_instances (workspace_id, status, id);
-- A trigger starts one instance per event it matched, whatever a crash makes it read again.
CREATE UNIQUE INDEX workflow_instances_by_trigger_event ON workflow_instances (trigger_event);

CREATE TABLE workflow_steps (
    instance_id  BLOB NOT NULL REFERENCES workflow_instances(id) ON DELETE CASCADE,
    step         BIGINT NOT NULL,
    at           TEXT NOT NULL,
    element      TEXT,
    kind         TEXT NOT NULL,
    actor        BLOB,
    detail       BLOB NOT NULL,
    PRIMARY KEY (instance_id, step)
);

CREATE TABLE workflow_tasks (
    id                 TEXT PRIMARY KEY NOT NULL,
    instance_id        BLOB NOT NULL REFERENCES workflow_instances(id) ON DELETE CASCADE,
    workspace_id       BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    element            TEXT NOT NULL,
    detail             BLOB NOT NULL,
    assignee           BLOB,
    candidate_role     BLOB,
    candidate_channel  BLOB,
    status             TEXT NOT NULL CHECK (status IN ('open', 'completed', 'cancelled')),
    due_at             TEXT,
    created_at         TEXT NOT NULL,
    closed_by          BLOB,
    closed_at          TEXT
);
CREATE INDEX workflow_tasks_open ON workflow_tasks (workspace_id, status);
CREATE INDEX workflow_tasks_by_instance ON workflow_tasks (instance_id);

-- A job belongs to an instance (its timers, calls, posts, children) or, for a timer start
-- event, to the deployment whose schedule it is.
CREATE TABLE workflow_jobs (
    id             TEXT PRIMARY KEY NOT NULL,
    instance_id    BLOB REFERENCES workflow_instances(id) ON DELETE CASCADE,
    deployment_id  BLOB REFERENCES workflow_deployments(id) ON DELETE CASCADE,
    workspace_id   BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    kind           TEXT NOT NULL,
    due_at         TEXT NOT NULL,
    payload        BLOB NOT NULL,
    leased_until   TEXT
);
CREATE INDEX workflow_jobs_due ON workflow_jobs (due_at);
CREATE INDEX workflow_jobs_by_instance ON workflow_jobs (instance_id);
CREATE INDEX workflow_jobs_by_deployment ON workflow_jobs (deployment_id);

CREATE TABLE workflow_subscriptions (
    id            TEXT PRIMARY KEY NOT NULL,
    instance_id   BLOB NOT NULL REFERENCES workflow_instances(id) ON DELETE CASCADE,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    message       TEXT NOT NULL,
    correlation   TEXT
);
CREATE INDEX workflow_subscriptions_by_message ON workflow_subscriptions (workspace_id, message);
CREATE INDEX workflow_subscriptions_by_instance ON workflow_subscriptions (instance_id);

CREATE TABLE workflow_incidents (
    id            TEXT PRIMARY KEY NOT NULL,
    instance_id   BLOB NOT NULL REFERENCES workflow_instances(id) ON DELETE CASCADE,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    element       TEXT NOT NULL,
    message       BLOB NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    raised_at     TEXT NOT NULL,
    resolved_at   TEXT
);
CREATE INDEX workflow_incidents_by_workspace ON workflow_incidents (workspace_id, status);

-- What starts a process besides the API: an inbound webhook (its secret sealed in `config`),
-- a message posted in a channel matching a pattern, a reaction, a member joining a channel, a
-- file shared. The settings (pattern, emoji, secret) are sealed; the channel stays readable
-- so the events of a channel find their triggers.
CREATE TABLE workflow_triggers (
    id            BLOB PRIMARY KEY NOT NULL,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    process_id    TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('webhook', 'message', 'reaction', 'member_joined', 'file_shared')),
    channel_id    BLOB REFERENCES channels(id) ON DELETE CASCADE,
    config        BLOB NOT NULL,
    created_by    BLOB,
    created_at    TEXT NOT NULL,
    revoked_at    TEXT
);
CREATE INDEX workflow_triggers_by_workspace ON workflow_triggers (workspace_id, kind);
