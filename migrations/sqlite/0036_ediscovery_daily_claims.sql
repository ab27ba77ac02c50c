-- eDiscovery's daily export: who is writing a workspace's day. A runner (one per process: a
-- server node, or `concord ediscovery daily`) claims the workspace, day and format here before
-- it exports anything, holds the claim by a lease it renews, and deletes it in the
-- transaction that records the finished file in `ediscovery_daily_exports`. Only the holder
-- writes the file; a lease that lapsed (its runner died) may be taken over by another.
CREATE TABLE ediscovery_daily_claims (
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    day           TEXT NOT NULL,
    format        TEXT NOT NULL,
    runner        TEXT NOT NULL,
    lease_until   TEXT NOT NULL,
    claimed_at    TEXT NOT NULL,
    PRIMARY KEY (workspace_id, day, format)
);
