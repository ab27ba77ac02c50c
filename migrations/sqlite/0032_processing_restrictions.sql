-- Restriction of processing (GDPR Art. 18): while a person's restriction is in force their
-- content stays where it is but nothing new processes it (search indexing, bot events, bot
-- reads of their messages and profile, and any routing or workflow added later).
--
-- One row per restriction, never deleted: started with a reason, lifted once with a reason.
-- Both reasons are sealed under the subject's key, bound to the row, so erasing the person
-- leaves the history with its dates while its free text can no longer be read. At most one
-- restriction of a person is in force (lifted_at IS NULL), which the unique partial index
-- keeps across processes and is what the hot paths' one indexed query reads.
CREATE TABLE processing_restrictions (
    id           BLOB PRIMARY KEY NOT NULL,
    subject_id   BLOB NOT NULL REFERENCES users(id),
    reason       BLOB NOT NULL,
    started_at   TEXT NOT NULL,
    started_by   BLOB REFERENCES users(id),
    lifted_at    TEXT,
    lifted_by    BLOB REFERENCES users(id),
    lift_reason  BLOB
);
CREATE UNIQUE INDEX processing_restrictions_in_force
    ON processing_restrictions (subject_id) WHERE lifted_at IS NULL;
CREATE INDEX processing_restrictions_by_subject ON processing_restrictions (subject_id, id);
