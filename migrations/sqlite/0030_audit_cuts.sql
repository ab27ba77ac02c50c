-- Retention of the audit log: the log is cut only at a signed checkpoint.
--
-- A cut records the checkpoint it is anchored at (its sequence number and the head hash its
-- signature covers), when it was made and the period applied, signed with the audit
-- checkpoint signing key (`key_version`, `signature`) in the write that records it. Entries
-- up to upto_seq, and checkpoints before it, may then be deleted (a batch per write); the
-- anchor's checkpoint stays, and verification starts after it from its signed head.
--
-- The database checks what it can: a cut must name a stored checkpoint and its head, lie
-- beyond every earlier cut, and is never changed, replaced or removed. It cannot check the
-- signature: the retention job and `concord audit verify` do, and refuse a cut that does
-- not carry a valid one. The append-only triggers of the log refuse every delete of an
-- entry after the newest recorded cut, and of the anchor checkpoint or any after it.
CREATE TABLE audit_cuts (
    upto_seq     INTEGER PRIMARY KEY NOT NULL,
    head_hash    BLOB NOT NULL,
    cut_at       TEXT NOT NULL,
    cutoff       TEXT NOT NULL,
    audit_days   INTEGER NOT NULL,
    key_version  INTEGER NOT NULL,
    signature    BLOB NOT NULL
);

CREATE TRIGGER audit_cuts_no_update BEFORE UPDATE ON audit_cuts
BEGIN SELECT RAISE(ABORT, 'audit_cuts is append-only'); END;
CREATE TRIGGER audit_cuts_no_delete BEFORE DELETE ON audit_cuts
BEGIN SELECT RAISE(ABORT, 'audit_cuts is append-only'); END;
-- `INSERT OR REPLACE` deletes the row it replaces without firing delete triggers: a key
-- already stored (or any cut at or beyond the new one) is refused before the insert.
CREATE TRIGGER audit_cuts_append_only BEFORE INSERT ON audit_cuts
WHEN EXISTS (SELECT 1 FROM audit_cuts c WHERE c.upto_seq >= NEW.upto_seq)
BEGIN SELECT RAISE(ABORT, 'audit_cuts is append-only: a cut must lie beyond every earlier cut'); END;
CREATE TRIGGER audit_cuts_anchored BEFORE INSERT ON audit_cuts
WHEN NOT EXISTS (SELECT 1 FROM audit_checkpoints c
                 WHERE c.seq = NEW.upto_seq AND c.head_hash = NEW.head_hash)
BEGIN SELECT RAISE(ABORT, 'audit_cuts: a cut must be anchored at a stored checkpoint and its head'); END;

DROP TRIGGER audit_events_no_delete;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN OLD.seq > COALESCE((SELECT MAX(upto_seq) FROM audit_cuts), 0)
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;

DROP TRIGGER audit_checkpoints_no_delete;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
WHEN OLD.seq >= COALESCE((SELECT MAX(upto_seq) FROM audit_cuts), 0)
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
