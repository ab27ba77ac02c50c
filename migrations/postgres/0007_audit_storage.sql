-- Leaner audit storage: the entry id, a UUIDv7 that is unique by construction and covered by
-- the hash, no longer carries an index of its own, so each audited write updates two B-trees
-- (primary key, time index) instead of three.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_id_key;
