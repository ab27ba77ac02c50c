-- Comments on documents: what people with `comment` access add without changing the content.
-- The body and the anchor (a Yjs relative position chosen by the client, as JSON) are stored
-- encrypted under the workspace's key, bound to the row and column.

CREATE TABLE document_comments (
    id           BLOB PRIMARY KEY NOT NULL,
    document_id  BLOB NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    author_id    BLOB NOT NULL REFERENCES users(id),
    body         BLOB NOT NULL,
    anchor       BLOB,
    created_at   TEXT NOT NULL,
    resolved_at  TEXT
);
CREATE INDEX document_comments_by_document ON document_comments (document_id, created_at);
