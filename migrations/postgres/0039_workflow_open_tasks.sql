-- Task inboxes read open tasks oldest first; closed tasks (nearly all of them, in time) are
-- left out of this index, so an inbox does not slow down as history grows.
CREATE INDEX workflow_tasks_open_by_age ON workflow_tasks (created_at, id) WHERE status = 'open';
