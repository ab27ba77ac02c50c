-- eDiscovery's scheduled daily export: one row per workspace, day and format written, so a
-- restarted or repeated run skips what is done and a day is never written twice. It records
-- what was written (the file's name, how many items, its size and SHA-256), never content.
CREATE TABLE ediscovery_daily_exports (
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    day           TEXT NOT NULL,
    format        TEXT NOT NULL,
    file_name     TEXT NOT NULL,
    items         BIGINT NOT NULL,
    bytes         BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    written_at    TEXT NOT NULL,
    PRIMARY KEY (workspace_id, day, format)
);
