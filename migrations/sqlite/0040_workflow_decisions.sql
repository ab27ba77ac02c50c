-- Decision tables (DMN XML, or the YAML and CSV forms), in immutable versions like process
-- deployments and forms. The source as deployed and the parsed table are sealed; a
-- business-rule task decides with the latest version of its table.
CREATE TABLE workflow_decisions (
    id            BLOB PRIMARY KEY NOT NULL,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    decision_key  TEXT NOT NULL,
    version       BIGINT NOT NULL,
    format        TEXT NOT NULL,
    source        BLOB NOT NULL,
    definition    BLOB NOT NULL,
    deployed_by   BLOB,
    deployed_at   TEXT NOT NULL,
    UNIQUE (workspace_id, decision_key, version)
);
