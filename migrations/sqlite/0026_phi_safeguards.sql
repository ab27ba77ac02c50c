-- PHI safeguards (HIPAA 45 CFR 164.312).
--
-- Automatic logoff: when the person last did something in a session (a request, a message or
-- an edit sent over a socket), recorded periodically from memory; a session idle longer than
-- its workspaces' `phi.idle_logoff_minutes` is ended. Sign-in counts as activity.
ALTER TABLE sessions ADD COLUMN last_active_at TEXT;

-- Emergency access (break-glass): one person may read one channel of a workspace until
-- expires_at, for the reason given (encrypted under the workspace's key, bound to the row).
-- A grant is never deleted; it ends on time (`expired`) or earlier by its holder (`ended`).
CREATE TABLE break_glass_grants (
    id            BLOB PRIMARY KEY NOT NULL,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    channel_id    BLOB NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id       BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    reason        BLOB NOT NULL,
    started_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    ended_at      TEXT,
    end_reason    TEXT
);
CREATE INDEX break_glass_open ON break_glass_grants (ended_at, expires_at);
