-- PHI safeguards (HIPAA 45 CFR 164.312).
--
-- Automatic logoff: when the person last did something in a session (a request, a message or
-- an edit sent over a socket), recorded periodically from memory; a session idle longer than
-- its workspaces' `phi.idle_logoff_minutes` is ended. Sign-in counts as activity.
ALTER TABLE sessions ADD COLUMN last_active_at TIMESTAMPTZ;

-- Emergency access (break-glass): one person may read one channel of a workspace until
-- expires_at, for the reason given (encrypted under the workspace's key, bound to the row).
-- A grant is never deleted; it ends on time (`expired`) or earlier by its holder (`ended`).
CREATE TABLE break_glass_grants (
    id            UUID PRIMARY KEY NOT NULL,
    workspace_id  UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    channel_id    UUID NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id       UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    reason        BYTEA NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    ended_at      TIMESTAMPTZ,
    end_reason    TEXT
);
CREATE INDEX break_glass_open ON break_glass_grants (ended_at, expires_at);
