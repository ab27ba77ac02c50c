-- Legal holds: content the retention job must keep (authors' own deletions do not consult them).
--
-- A hold covers a workspace's messages that match every criterion it sets: written by one
-- of its custodians (JSON array of user ids; empty: anyone), in one of its channels (JSON
-- array of channel ids; empty: any), written from held_from to held_to (either open). A hold
-- is active until released; a released hold stays listed with who released it and when.
-- Its name and reason are encrypted under the workspace's key, bound to the row.
CREATE TABLE legal_holds (
    id            BLOB PRIMARY KEY NOT NULL,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name          BLOB NOT NULL,
    reason        BLOB NOT NULL,
    custodians    TEXT NOT NULL,
    channels      TEXT NOT NULL,
    held_from     TEXT,
    held_to       TEXT,
    created_by    BLOB REFERENCES users(id),
    created_at    TEXT NOT NULL,
    released_by   BLOB REFERENCES users(id),
    released_at   TEXT
);
CREATE INDEX legal_holds_by_workspace ON legal_holds (workspace_id, created_at);

-- The retention job walks a workspace's messages oldest first, from a cursor.
CREATE INDEX messages_by_created ON messages (created_at, id);
