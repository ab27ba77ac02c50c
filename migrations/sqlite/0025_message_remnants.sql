-- What a deletion keeps of a message while a legal hold covers it, or until the policy's
-- grace period (retention.deletion_grace_days) ends: its text at deletion and its earlier
-- versions. The message itself becomes an ordinary tombstone at once, so nothing that reads
-- messages sees this; compliance officers read it through the hold. The retention job
-- destroys the rows once purge_after has passed and no hold covers the message.
--
-- Versions are numbered as in message_versions; the text at deletion is the last one (with
-- the blocks it had). Bodies and blocks are encrypted under the workspace's key, bound to
-- (message_remnants, "<message_id>:<version>", body|blocks).
CREATE TABLE message_remnants (
    message_id   BLOB NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    version      BIGINT NOT NULL,
    body         BLOB NOT NULL,
    blocks       BLOB,
    written_at   TEXT NOT NULL,
    purge_after  TEXT NOT NULL,
    PRIMARY KEY (message_id, version)
);
CREATE INDEX message_remnants_due ON message_remnants (purge_after, message_id);

-- A file deleted while a legal hold covers it (or, posted with a message, within the
-- message's grace period) is hidden instead: every reader treats the row as gone, its blobs
-- stay, and the retention job deletes it once purge_after has passed and no hold covers it.
ALTER TABLE files ADD COLUMN deleted_at TEXT;
ALTER TABLE files ADD COLUMN purge_after TEXT;
CREATE INDEX files_hidden_due ON files (purge_after) WHERE deleted_at IS NOT NULL;
