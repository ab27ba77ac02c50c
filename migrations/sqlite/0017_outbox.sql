-- The transactional outbox: every domain event a batch of writes emits is stored by the
-- group-commit writer in that batch's transaction. `id` is the commit order: it is taken
-- from `outbox_head` at the end of the batch, under the head row's write lock, so ids are
-- contiguous, never reused (pruning does not move the head) and increase with commit order
-- even when another process (the command line) writes while a server runs.
-- `payload` is the event's serialized form, which holds ids and no decrypted content.

CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY,
    event_id     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    workspace_id TEXT,
    payload      TEXT NOT NULL,
    committed_at TEXT NOT NULL
);

CREATE TABLE outbox_head (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_id   INTEGER NOT NULL
);
INSERT INTO outbox_head (singleton, last_id) VALUES (1, 0);

-- Durable consumers: each has read and handled every event up to `cursor` (an outbox id).
CREATE TABLE outbox_consumers (
    name       TEXT PRIMARY KEY,
    cursor     INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
