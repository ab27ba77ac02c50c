-- Leaner audit storage. The sequence number becomes the table's row id (one B-tree instead
-- of a row-id tree plus a primary-key index), and the entry id, a UUIDv7 that is unique by
-- construction and covered by the hash, no longer carries an index of its own. Each audited
-- write then touches two B-trees (rows, time index) instead of four.

DROP TRIGGER audit_events_no_update;
DROP TRIGGER audit_events_no_delete;

CREATE TABLE audit_events_v2 (
    seq           INTEGER PRIMARY KEY NOT NULL,
    id            TEXT NOT NULL,
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
INSERT INTO audit_events_v2 (seq, id, occurred_at, actor_type, actor_id, session_id, action, target_type,
    target_id, workspace_id, outcome, subject, ip_enc, details_enc, prev_hash, hash)
SELECT seq, id, occurred_at, actor_type, actor_id, session_id, action, target_type,
    target_id, workspace_id, outcome, subject, ip_enc, details_enc, prev_hash, hash
FROM audit_events;
DROP TABLE audit_events;
ALTER TABLE audit_events_v2 RENAME TO audit_events;
CREATE INDEX audit_events_by_time ON audit_events (occurred_at);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
