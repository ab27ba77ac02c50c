-- Comments on documents: what people with `comment` access add without changing the content.
-- The body and the anchor (a Yjs relative position chosen by the client, as JSON) are stored
-- encrypted under the workspace's key, bound to the row and column.

CREATE TABLE document_comments (
    id           UUID PRIMARY KEY NOT NULL,
    document_id  UUID NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    author_id    UUID NOT NULL REFERENCES users(id),
    body         BYTEA NOT NULL,
    anchor       BYTEA,
    created_at   TIMESTAMPTZ NOT NULL,
    resolved_at  TIMESTAMPTZ
);
CREATE INDEX document_comments_by_document ON document_comments (document_id, created_at);
