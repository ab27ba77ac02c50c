-- People working on tasks: comments on a task (sealed under the workspace's key), the task
-- notices the workflow bot posted (so a notice is updated when its task is claimed,
-- reassigned or closed, and its buttons stop acting), and a task's first assignee, kept when
-- it is reassigned (the learned router counts such a task as a correction).
CREATE TABLE workflow_task_comments (
    id            UUID PRIMARY KEY NOT NULL,
    task_id       TEXT NOT NULL REFERENCES workflow_tasks(id) ON DELETE CASCADE,
    workspace_id  UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    author_id     UUID NOT NULL REFERENCES users(id),
    body          BYTEA NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX workflow_task_comments_by_task ON workflow_task_comments (task_id, created_at);
CREATE INDEX workflow_task_comments_by_author ON workflow_task_comments (author_id);

CREATE TABLE workflow_task_notices (
    task_id       TEXT NOT NULL REFERENCES workflow_tasks(id) ON DELETE CASCADE,
    message_id    UUID NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    posted_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (task_id, message_id)
);

ALTER TABLE workflow_tasks ADD COLUMN first_assignee UUID;
