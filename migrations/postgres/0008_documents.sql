-- Documents co-edited in real time over the Yjs sync protocol.
--
-- A document's content is its update log (document_updates, one row per committed batch of
-- Yjs updates, seq increasing) on top of an optional compacted snapshot (document_snapshots,
-- covering every update up to upto_seq). Titles, updates, snapshots and named versions are
-- stored encrypted (AES-256-GCM under the workspace's key, bound to the row and column).
-- general_access is what every workspace member gets; document_access grants more to one
-- user or to everyone holding a workspace role.

CREATE TABLE documents (
    id              UUID PRIMARY KEY NOT NULL,
    workspace_id    UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    channel_id      UUID REFERENCES channels(id) ON DELETE SET NULL,
    title           BYTEA NOT NULL,
    general_access  TEXT NOT NULL DEFAULT 'none' CHECK (general_access IN ('none', 'view', 'comment', 'edit')),
    created_by      UUID NOT NULL REFERENCES users(id),
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    last_seq        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX documents_by_workspace ON documents (workspace_id, created_at);
CREATE INDEX documents_by_channel ON documents (channel_id);

CREATE TABLE document_access (
    document_id     UUID NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    principal_kind  TEXT NOT NULL CHECK (principal_kind IN ('user', 'role')),
    principal_id    UUID NOT NULL,
    level           TEXT NOT NULL CHECK (level IN ('view', 'comment', 'edit', 'manage')),
    granted_by      UUID NOT NULL REFERENCES users(id),
    granted_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (document_id, principal_kind, principal_id)
);

CREATE TABLE document_updates (
    document_id  UUID NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    seq          BIGINT NOT NULL,
    body         BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (document_id, seq)
);

CREATE TABLE document_snapshots (
    document_id  UUID PRIMARY KEY NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    upto_seq     BIGINT NOT NULL,
    state        BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE document_versions (
    id           UUID PRIMARY KEY NOT NULL,
    document_id  UUID NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    name         BYTEA NOT NULL,
    state        BYTEA NOT NULL,
    created_by   UUID NOT NULL REFERENCES users(id),
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX document_versions_by_document ON document_versions (document_id, created_at);
