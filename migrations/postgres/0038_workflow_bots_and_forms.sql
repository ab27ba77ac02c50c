-- The account a workspace's workflows speak as: send tasks post as it, and it tells people
-- about the tasks assigned to them. An ordinary bot of the workspace (listed, deactivatable),
-- made when the workspace deploys its first process.
CREATE TABLE workflow_bots (
    workspace_id  UUID PRIMARY KEY NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id       UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE
);

-- Task forms: the fields a user task's completion may set, as a small JSON Schema (sealed), in
-- immutable versions like process deployments. A task shows and is validated against the
-- latest version of its form.
CREATE TABLE workflow_forms (
    id            UUID PRIMARY KEY NOT NULL,
    workspace_id  UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    form_key      TEXT NOT NULL,
    version       BIGINT NOT NULL,
    schema        BYTEA NOT NULL,
    deployed_by   UUID,
    deployed_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (workspace_id, form_key, version)
);
