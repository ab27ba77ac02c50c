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
-- not carry a valid one. The append-only triggers of the log refuse every update, every
-- truncation, every delete of an entry after the newest recorded cut, and of the anchor
-- checkpoint or any after it. The trigger functions name their tables with their schema
-- and fix their search_path, so no temporary table can stand in for audit_cuts.
CREATE TABLE audit_cuts (
    upto_seq     BIGINT PRIMARY KEY NOT NULL,
    head_hash    BYTEA NOT NULL,
    cut_at       TEXT NOT NULL,
    cutoff       TEXT NOT NULL,
    audit_days   BIGINT NOT NULL,
    key_version  BIGINT NOT NULL,
    signature    BYTEA NOT NULL
);

CREATE TRIGGER audit_cuts_append_only BEFORE UPDATE OR DELETE ON audit_cuts
    FOR EACH ROW EXECUTE FUNCTION concord_audit_append_only();
CREATE TRIGGER audit_cuts_no_truncate BEFORE TRUNCATE ON audit_cuts
    FOR EACH STATEMENT EXECUTE FUNCTION concord_audit_append_only();

-- A new cut: beyond every earlier one, at a stored checkpoint and its head.
CREATE FUNCTION concord_audit_cut_anchored() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM public.audit_cuts c WHERE c.upto_seq >= NEW.upto_seq) THEN
        RAISE EXCEPTION 'audit_cuts is append-only: a cut must lie beyond every earlier cut';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.audit_checkpoints c
                   WHERE c.seq = NEW.upto_seq AND c.head_hash = NEW.head_hash) THEN
        RAISE EXCEPTION 'audit_cuts: a cut must be anchored at a stored checkpoint and its head';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_cuts_anchored BEFORE INSERT ON audit_cuts
    FOR EACH ROW EXECUTE FUNCTION concord_audit_cut_anchored();

-- Deletes a cut allows: entries up to the newest cut, checkpoints before it.
CREATE FUNCTION concord_audit_cut_only() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    upto BIGINT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT COALESCE(MAX(c.upto_seq), 0) INTO upto FROM public.audit_cuts c;
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
