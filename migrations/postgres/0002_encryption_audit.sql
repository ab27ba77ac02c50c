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
    wrapped      BYTEA NOT NULL,
    public_key   BYTEA,
    encryptions  BIGINT NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL,
    retired_at   TIMESTAMPTZ,
    PRIMARY KEY (scope, version)
);

-- Personal data is stored encrypted; lookups go through a keyed blind index (hex HMAC).
-- The plaintext columns of 0001 stay only until the start-up backfill empties them.
ALTER TABLE users RENAME COLUMN email_lookup TO email_index;
ALTER TABLE users ADD COLUMN email_enc BYTEA;
ALTER TABLE users ADD COLUMN display_name_enc BYTEA;
ALTER TABLE invitations RENAME COLUMN email TO email_index;
ALTER TABLE invitations ADD COLUMN email_enc BYTEA;

-- Resumable re-encryption after `concord keys rotate-dek`.
CREATE TABLE key_jobs (
    id           TEXT PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    cursor       TEXT,
    done         BIGINT NOT NULL DEFAULT 0,
    finished_at  TIMESTAMPTZ
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
    ip_enc        BYTEA,
    details_enc   BYTEA,
    prev_hash     BYTEA NOT NULL,
    hash          BYTEA NOT NULL
);
CREATE INDEX audit_events_by_time ON audit_events (occurred_at);

CREATE TABLE audit_checkpoints (
    seq          BIGINT PRIMARY KEY NOT NULL,
    head_hash    BYTEA NOT NULL,
    signed_at    TEXT NOT NULL,
    key_version  BIGINT NOT NULL,
    signature    BYTEA NOT NULL
);

-- A first line of defence only (a table owner can disable triggers): the chain and the
-- signed checkpoints prove integrity.
CREATE FUNCTION concord_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION concord_audit_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION concord_audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION concord_audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION concord_audit_append_only();

-- If the deployment runs Concord as a dedicated role (see deploy/README.md), that role may
-- only read and append to the audit tables.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'concord_app') THEN
        REVOKE ALL ON audit_events, audit_checkpoints FROM concord_app;
        GRANT SELECT, INSERT ON audit_events, audit_checkpoints TO concord_app;
    END IF;
END
$$;
