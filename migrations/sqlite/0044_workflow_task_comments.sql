-- People working on tasks: comments on a task (sealed under the workspace's key), the task
-- notices the workflow bot posted (so a notice is updated when its task is claimed,
-- reassigned or closed, and its buttons stop acting), and a task's first assignee, kept when
-- it is reassigned (the learned router counts such a task as a correction).
CREATE TABLE workflow_task_comments (
    id            BLOB PRIMARY KEY NOT NULL,
    task_id       TEXT NOT NULL REFERENCES workflow_tasks(id) ON DELETE CASCADE,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    author_id     BLOB NOT NULL REFERENCES users(id),
    body          BLOB NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX workflow_task_comments_by_task ON workflow_task_comments (task_id, created_at);
CREATE INDEX workflow_task_comments_by_author ON workflow_task_comments (author_id);

CREATE TABLE workflow_task_notices (
    task_id       TEXT NOT NULL REFERENCES workflow_tasks(id) ON DELETE CASCADE,
    message_id    BLOB NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    posted_at     TEXT NOT NULL,
    PRIMARY KEY (task_id, message_id)
);

ALTER TABLE workflow_tasks ADD COLUMN first_assignee BLOB;
