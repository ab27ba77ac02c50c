-- The breach register (GDPR Art. 33(5) and 34): every personal-data breach, its facts, its
-- effects and what was done, with the 72-hour deadline for telling the supervisory authority.
--
-- A breach was discovered at discovered_at (the authority is due 72 hours later), may have
-- happened from occurred_from to occurred_to (either open), and involves the accounts in
-- accounts (a JSON array of user ids) whose actions the report reads from the audit log.
-- Its status moves open -> contained -> closed (or straight to closed). Title and
-- description are encrypted under the deployment's compliance-record key (system:audit),
-- bound to the row. A breach is never deleted.
CREATE TABLE breaches (
    id                     BLOB PRIMARY KEY NOT NULL,
    title                  BLOB NOT NULL,
    description            BLOB,
    status                 TEXT NOT NULL,
    discovered_at          TEXT NOT NULL,
    occurred_from          TEXT,
    occurred_to            TEXT,
    accounts               TEXT NOT NULL,
    authority_notified_at  TEXT,
    subjects_notified_at   TEXT,
    created_by             BLOB REFERENCES users(id),
    created_at             TEXT NOT NULL,
    updated_by             BLOB REFERENCES users(id),
    updated_at             TEXT NOT NULL,
    closed_at              TEXT
);
CREATE INDEX breaches_by_discovery ON breaches (discovered_at, id);
