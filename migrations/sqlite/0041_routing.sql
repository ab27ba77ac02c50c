-- Task routing: what routing knows about each person in a workspace (skills, levels,
-- capacity, manager, out-of-office days; sealed under the workspace's key), each group's
-- round-robin position, the learned routers' versions (sealed), and on each task how it was
-- routed (sealed), when it was claimed and how far up its escalation chain it has gone.
CREATE TABLE person_attributes (
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id       BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    detail        BLOB NOT NULL,
    updated_by    BLOB,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);

CREATE TABLE workflow_routing_cursors (
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    group_key     TEXT NOT NULL,
    last_id       TEXT NOT NULL,
    PRIMARY KEY (workspace_id, group_key)
);

CREATE TABLE routing_models (
    id            BLOB PRIMARY KEY NOT NULL,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    process_id    TEXT NOT NULL,
    version       BIGINT NOT NULL,
    model         BLOB NOT NULL,
    examples      BIGINT NOT NULL,
    labels        BIGINT NOT NULL,
    trained_by    BLOB,
    trained_at    TEXT NOT NULL,
    UNIQUE (workspace_id, process_id, version)
);

ALTER TABLE workflow_tasks ADD COLUMN routing BLOB;
ALTER TABLE workflow_tasks ADD COLUMN claimed_at TEXT;
ALTER TABLE workflow_tasks ADD COLUMN escalation_level BIGINT NOT NULL DEFAULT 0;
CREATE INDEX workflow_tasks_open_by_assignee ON workflow_tasks (assignee) WHERE status = 'open';
