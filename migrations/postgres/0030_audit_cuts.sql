-- Retention of the audit log: the log is cut only at a signed checkpoint.
--
-- A cut records the checkpoint it is anchored at (its sequence number and the head hash its
-- signature covers), when it was made and the period applied. Entries up to upto_seq, and
-- checkpoints before it, may then be deleted (a batch per write); the anchor's checkpoint
-- stays, and verification starts after it from its signed head. Cuts are append-only, and
-- the append-only triggers of the log now refuse every delete except those a cut allows.
CREATE TABLE audit_cuts (
    upto_seq     BIGINT PRIMARY KEY NOT NULL,
    head_hash    BYTEA NOT NULL,
    cut_at       TEXT NOT NULL,
    cutoff       TEXT NOT NULL,
    audit_days   BIGINT NOT NULL
);

CREATE TRIGGER audit_cuts_append_only BEFORE UPDATE OR DELETE ON audit_cuts
    FOR EACH ROW EXECUTE FUNCTION concord_audit_append_only();
CREATE TRIGGER audit_cuts_no_truncate BEFORE TRUNCATE ON audit_cuts
    FOR EACH STATEMENT EXECUTE FUNCTION concord_audit_append_only();

-- Deletes a cut allows: entries up to the newest cut, checkpoints before it.
CREATE FUNCTION concord_audit_cut_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    upto BIGINT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT COALESCE(MAX(upto_seq), 0) INTO upto FROM audit_cuts;
        IF (TG_TABLE_NAME = 'audit_events' AND OLD.seq <= upto)
           OR (TG_TABLE_NAME = 'audit_checkpoints' AND OLD.seq < upto) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END
$$;
DROP TRIGGER audit_events_append_only ON audit_events;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION concord_audit_cut_only();
DROP TRIGGER audit_checkpoints_append_only ON audit_checkpoints;
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION concord_audit_cut_only();

-- A dedicated role (see deploy/README.md) may delete what a cut allows (the triggers decide)
-- and only read and append cuts.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'concord_app') THEN
        GRANT DELETE ON audit_events, audit_checkpoints TO concord_app;
        REVOKE ALL ON audit_cuts FROM concord_app;
        GRANT SELECT, INSERT ON audit_cuts TO concord_app;
    END IF;
END
$$;
