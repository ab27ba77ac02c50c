-- Data-key rotations re-encrypted by a background job while the server runs.
--
-- key_rotations: one row per `concord keys rotate-dek` (or its REST twin). The process running
-- its re-encryption holds a lease (runner, lease_until) that it renews with every batch, so a
-- second process does not run it too and a crashed runner's work is taken over once the lease
-- lapses. key_rotation_progress: per re-encryptable target (a set of encrypted columns such
-- as `users` or `messages`), rows done out of the total counted at the start, rows actually
-- re-encrypted, and the cursor (the last row id done) to resume after, updated in the same
-- transaction as the batch it describes. They replace key_jobs; unfinished jobs become one
-- unfinished rotation, which re-encrypts whatever is not yet under the current keys.
CREATE TABLE key_rotations (
    id            TEXT PRIMARY KEY NOT NULL,
    requested_at  TIMESTAMPTZ NOT NULL,
    requested_by  TEXT NOT NULL,
    scopes        BIGINT NOT NULL DEFAULT 0,
    runner        TEXT,
    lease_until   TIMESTAMPTZ,
    finished_at   TIMESTAMPTZ
);

CREATE TABLE key_rotation_progress (
    rotation_id   TEXT NOT NULL REFERENCES key_rotations(id),
    target        TEXT NOT NULL,
    total         BIGINT NOT NULL DEFAULT 0,
    done          BIGINT NOT NULL DEFAULT 0,
    changed       BIGINT NOT NULL DEFAULT 0,
    cursor        TEXT,
    finished_at   TIMESTAMPTZ,
    PRIMARY KEY (rotation_id, target)
);

INSERT INTO key_rotations (id, requested_at, requested_by)
SELECT MIN(id), MIN(started_at), 'system' FROM key_jobs WHERE finished_at IS NULL HAVING COUNT(*) > 0;

DROP TABLE key_jobs;
