-- Shared files.
--
-- A file belongs to a workspace and has a parent it is shared in (a channel, where it is
-- attached to a message once its upload completes; documents later), whose visibility it
-- follows. Its contents live in the blob store, encrypted in authenticated chunks with a
-- per-file content key; `content_key` holds that key wrapped under the workspace's data key.
-- The name, the message text to post and any thumbnail are encrypted too. A resumable
-- upload is a file in status 'uploading': `received` bytes have arrived, stored as whole
-- chunks in `file_segments` (one blob each) plus an encrypted partial chunk in `tail_enc`.

CREATE TABLE files (
    id             UUID PRIMARY KEY NOT NULL,
    workspace_id   UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    parent_kind    TEXT NOT NULL CHECK (parent_kind IN ('channel', 'document')),
    parent_id      UUID NOT NULL,
    message_id     UUID REFERENCES messages(id) ON DELETE SET NULL,
    uploader_id    UUID NOT NULL REFERENCES users(id),
    name_enc       BYTEA NOT NULL,
    text_enc       BYTEA,
    size           BIGINT NOT NULL,
    received       BIGINT NOT NULL DEFAULT 0,
    chunk_bytes    BIGINT NOT NULL,
    content_key    BYTEA NOT NULL,
    tail_enc       BYTEA,
    content_type   TEXT,
    status         TEXT NOT NULL CHECK (status IN ('uploading', 'ready', 'quarantined')),
    scan_result    TEXT,
    thumbnail_enc  BYTEA,
    created_at     TIMESTAMPTZ NOT NULL,
    completed_at   TIMESTAMPTZ
);
CREATE INDEX files_by_parent ON files (parent_kind, parent_id, created_at);
CREATE INDEX files_by_workspace ON files (workspace_id);

CREATE TABLE file_segments (
    file_id      UUID NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    seq          BIGINT NOT NULL,
    first_chunk  BIGINT NOT NULL,
    chunks       BIGINT NOT NULL,
    bytes        BIGINT NOT NULL,
    PRIMARY KEY (file_id, seq)
);
