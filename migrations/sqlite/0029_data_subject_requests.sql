-- Data-subject requests (GDPR Art. 12(3)): the register compliance officers answer from.
--
-- A request is received for one account (by a compliance officer, or filed by the person)
-- and is due request_deadline_days after it was received; it may be extended once, with a
-- reason, up to extension_days beyond that. It stays open or extended until it is completed
-- or refused. Notes, extension reasons and outcomes are sealed under the subject's key,
-- bound to the row; a request is never deleted (erasing the subject destroys its key, so
-- its free text can no longer be read while its dates and status stay).
CREATE TABLE data_subject_requests (
    id                BLOB PRIMARY KEY NOT NULL,
    subject_id        BLOB NOT NULL REFERENCES users(id),
    kind              TEXT NOT NULL,
    received_at       TEXT NOT NULL,
    due_at            TEXT NOT NULL,
    extended_until    TEXT,
    extension_reason  BLOB,
    status            TEXT NOT NULL,
    note              BLOB,
    outcome           BLOB,
    handled_by        BLOB REFERENCES users(id),
    created_by        BLOB REFERENCES users(id),
    created_at        TEXT NOT NULL,
    completed_at      TEXT
);
CREATE INDEX data_subject_requests_by_subject ON data_subject_requests (subject_id, id);
CREATE INDEX data_subject_requests_by_status ON data_subject_requests (status, id);
