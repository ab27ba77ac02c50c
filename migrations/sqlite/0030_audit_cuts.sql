-- Retention of the audit log: the log is cut only at a signed checkpoint.
--
-- A cut records the checkpoint it is anchored at (its sequence number and the head hash its
-- signature covers), when it was made and the period applied. Entries up to upto_seq, and
-- checkpoints before it, may then be deleted (a batch per write); the anchor's checkpoint
-- stays, and verification starts after it from its signed head. Cuts are append-only, and
-- the append-only triggers of the log now refuse every delete except those a cut allows.
CREATE TABLE audit_cuts (
    upto_seq     INTEGER PRIMARY KEY NOT NULL,
    head_hash    BLOB NOT NULL,
    cut_at       TEXT NOT NULL,
    cutoff       TEXT NOT NULL,
    audit_days   INTEGER NOT NULL
);

CREATE TRIGGER audit_cuts_no_update BEFORE UPDATE ON audit_cuts
BEGIN SELECT RAISE(ABORT, 'audit_cuts is append-only'); END;
CREATE TRIGGER audit_cuts_no_delete BEFORE DELETE ON audit_cuts
BEGIN SELECT RAISE(ABORT, 'audit_cuts is append-only'); END;

DROP TRIGGER audit_events_no_delete;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN OLD.seq > COALESCE((SELECT MAX(upto_seq) FROM audit_cuts), 0)
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;

DROP TRIGGER audit_checkpoints_no_delete;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
WHEN OLD.seq >= COALESCE((SELECT MAX(upto_seq) FROM audit_cuts), 0)
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
