-- Policy versions: the deployment's policy modules and each workspace's override.
--
-- Every change is a new row, never an update: a start or a reload that finds the enabled
-- modules changed stores them (workspace_id NULL; document: their names, origins and texts
-- as JSON), and every override an administrator sets is stored as TOML
-- (workspace_id set; an empty document returns the workspace to the modules). Versions are
-- one sequence across both, so a workspace's effective version is the newer of the two
-- rows it rests on. Policies are configuration, not personal data: stored in plaintext.
CREATE TABLE policy_versions (
    version       INTEGER PRIMARY KEY NOT NULL,
    workspace_id  BLOB REFERENCES workspaces(id) ON DELETE CASCADE,
    document      TEXT NOT NULL,
    digest        TEXT NOT NULL,
    created_by    BLOB REFERENCES users(id),
    created_at    TEXT NOT NULL
);
CREATE INDEX policy_versions_by_workspace ON policy_versions (workspace_id, version);
