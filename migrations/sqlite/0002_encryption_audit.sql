-- Encryption at rest and the tamper-evident audit log.
--
-- data_keys: data-encryption keys per scope (`user:<id>`, `workspace:<id>`, `system:<name>`),
-- versioned, each stored wrapped by the key-encryption key named by kek_id. `encryptions`
-- counts (in reserved batches) how often the key was used, so it is rotated well before the
-- AES-GCM random-nonce limit.
CREATE TABLE data_keys (
    scope        TEXT NOT NULL,
    version      BIGINT NOT NULL,
    kek_id       TEXT NOT NULL,
    wrapped      BLOB NOT NULL,
    public_key   BLOB,
    encryptions  BIGINT NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL,
    retired_at   TEXT,
    PRIMARY KEY (scope, version)
);

-- Personal data is stored encrypted; lookups go through a keyed blind index (hex HMAC).
-- The plaintext columns of 0001 stay only until the start-up backfill empties them.
ALTER TABLE users RENAME COLUMN email_lookup TO email_index;
ALTER TABLE users ADD COLUMN email_enc BLOB;
ALTER TABLE users ADD COLUMN display_name_enc BLOB;
ALTER TABLE invitations RENAME COLUMN email TO email_index;
ALTER TABLE invitations ADD COLUMN email_enc BLOB;

-- Resumable re-encryption after `concord keys rotate-dek`.
CREATE TABLE key_jobs (
    id           TEXT PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    cursor       TEXT,
    done         BIGINT NOT NULL DEFAULT 0,
    finished_at  TEXT
);

-- The audit log: append-only, hash-chained (hash = SHA-256 over the canonical encoding of
-- the entry and prev_hash), with signed checkpoints over (seq, head hash).
CREATE TABLE audit_events (
    seq           BIGINT PRIMARY KEY NOT NULL,
    id            TEXT NOT NULL UNIQUE,
    occurred_at   TEXT NOT NULL,
    actor_type    TEXT NOT NULL,
    actor_id      TEXT,
    session_id    TEXT,
    action        TEXT NOT NULL,
    target_type   TEXT,
    target_id     TEXT,
    workspace_id  TEXT,
    outcome       TEXT NOT NULL,
    subject       TEXT,
    ip_enc        BLOB,
    details_enc   BLOB,
    prev_hash     BLOB NOT NULL,
    hash          BLOB NOT NULL
);
CREATE INDEX audit_events_by_time ON audit_events (occurred_at);

CREATE TABLE audit_checkpoints (
    seq          BIGINT PRIMARY KEY NOT NULL,
    head_hash    BLOB NOT NULL,
    signed_at    TEXT NOT NULL,
    key_version  BIGINT NOT NULL,
    signature    BLOB NOT NULL
);

-- A first line of defence only: the chain and the signed checkpoints prove integrity.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
