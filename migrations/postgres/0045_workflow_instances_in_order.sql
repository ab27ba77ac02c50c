-- Process mining reads a workspace's instances in id order (ids are UUIDv7, so start order),
-- a page after a cursor at a time for the event log and in one pass for a process's variants;
-- the index by status cannot give that order, so every page would sort the whole workspace.
CREATE INDEX workflow_instances_in_order ON workflow_instances (workspace_id, id);
