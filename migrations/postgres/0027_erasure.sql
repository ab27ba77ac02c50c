-- Erasure (GDPR Art. 17).
--
-- An erased account stays as a row without personal data, so what others wrote keeps its
-- threads and what the erased person wrote, where a policy keeps it, names a pseudonym:
-- its id. erased_at says when; the profile columns are emptied and the person's key is
-- destroyed (crypto-shredding), which leaves every value still sealed under it unreadable.
ALTER TABLE users ADD COLUMN erased_at TIMESTAMPTZ;

-- One erasure per person: who asked, when, how far it got. A running erasure is resumed at
-- start; every step is idempotent. One that legal holds kept content from is
-- `waiting_on_holds` (its key is destroyed, the held content stays) until a later pass finds
-- nothing held any more and destroys the rest. No reason and no personal data here: the reason is in the
-- audit entry of the request.
CREATE TABLE erasures (
    id            UUID PRIMARY KEY NOT NULL,
    user_id       UUID NOT NULL UNIQUE REFERENCES users(id),
    requested_by  UUID REFERENCES users(id),
    status        TEXT NOT NULL CHECK (status IN ('running', 'waiting_on_holds', 'done')),
    report        TEXT NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ
);
CREATE INDEX erasures_running ON erasures (status);
