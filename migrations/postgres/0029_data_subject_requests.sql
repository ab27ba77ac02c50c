-- Data-subject requests (GDPR Art. 12(3)): the register compliance officers answer from.
--
-- A request is received for one account (by a compliance officer, or filed by the person)
-- and is due request_deadline_days after it was received; it may be extended once, with a
-- reason, up to extension_days beyond that. It stays open or extended until it is completed
-- or refused. Notes, extension reasons and outcomes are sealed under the subject's key,
-- bound to the row; a request is never deleted (erasing the subject destroys its key, so
-- its free text can no longer be read while its dates and status stay).
CREATE TABLE data_subject_requests (
    id                UUID PRIMARY KEY NOT NULL,
    subject_id        UUID NOT NULL REFERENCES users(id),
    kind              TEXT NOT NULL,
    received_at       TIMESTAMPTZ NOT NULL,
    due_at            TIMESTAMPTZ NOT NULL,
    extended_until    TIMESTAMPTZ,
    extension_reason  BYTEA,
    status            TEXT NOT NULL,
    note              BYTEA,
    outcome           BYTEA,
    handled_by        UUID REFERENCES users(id),
    created_by        UUID REFERENCES users(id),
    created_at        TIMESTAMPTZ NOT NULL,
    completed_at      TIMESTAMPTZ
);
CREATE INDEX data_subject_requests_by_subject ON data_subject_requests (subject_id, id);
CREATE INDEX data_subject_requests_by_status ON data_subject_requests (status, id);
