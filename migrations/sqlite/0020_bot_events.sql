-- Events out: where a bot's events are delivered, the secret they are signed with, and the
-- deliveries on their way (or parked after their last retry).
--
-- `bot_event_settings` holds one row per bot that was given a signing secret: the secret
-- (a keyring ciphertext under the workspace's key, bound to the row and column), the
-- request URL (set only after it answered Slack's url_verification challenge) and the event
-- types it subscribes to (space-separated, Slack's names).
--
-- `bot_event_deliveries` is each bot's durable queue, filled by the outbox consumer in the
-- same transaction that moves its cursor: the Slack event id (stable across retries and a
-- restart), the Slack event type, and the domain event it comes from (its serialized form:
-- ids, never decrypted content; the envelope is built when it is sent). A delivered event is
-- deleted; one that failed its last retry stays with state `dead` until replayed.

CREATE TABLE bot_event_settings (
    bot_id              BLOB PRIMARY KEY NOT NULL REFERENCES bots(user_id) ON DELETE CASCADE,
    workspace_id        BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    signing_secret_enc  BLOB NOT NULL,
    secret_created_at   TEXT NOT NULL,
    request_url         TEXT,
    event_types         TEXT NOT NULL DEFAULT '',
    updated_by          BLOB NOT NULL REFERENCES users(id),
    updated_at          TEXT NOT NULL
);
CREATE INDEX bot_event_settings_by_workspace ON bot_event_settings (workspace_id);

CREATE TABLE bot_event_deliveries (
    id               BLOB PRIMARY KEY NOT NULL,
    bot_id           BLOB NOT NULL REFERENCES bots(user_id) ON DELETE CASCADE,
    workspace_id     BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    source           TEXT NOT NULL,
    event_time_us    BIGINT NOT NULL,
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms  BIGINT NOT NULL,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    UNIQUE (bot_id, event_id)
);
CREATE INDEX bot_event_deliveries_due ON bot_event_deliveries (state, bot_id, next_attempt_ms);
