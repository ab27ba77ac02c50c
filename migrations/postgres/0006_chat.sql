-- Channels and messages.
--
-- channels.last_seq is the sequence number of the channel's newest message; each message
-- takes the next one at commit, so history pages in a stable order. Message bodies are
-- stored encrypted (AES-256-GCM under the workspace's key, bound to the row and column).

CREATE TABLE channels (
    id            UUID PRIMARY KEY NOT NULL,
    workspace_id  UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('public', 'private', 'direct', 'group')),
    name          TEXT,
    topic         TEXT NOT NULL DEFAULT '',
    purpose       TEXT NOT NULL DEFAULT '',
    direct_key    TEXT,
    created_by    UUID NOT NULL REFERENCES users(id),
    created_at    TIMESTAMPTZ NOT NULL,
    archived_at   TIMESTAMPTZ,
    last_seq      BIGINT NOT NULL DEFAULT 0,
    UNIQUE (workspace_id, name),
    UNIQUE (workspace_id, direct_key)
);

CREATE TABLE channel_members (
    channel_id     UUID NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id        UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role           TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'moderator')),
    joined_at      TIMESTAMPTZ NOT NULL,
    last_read_seq  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX channel_members_by_user ON channel_members (user_id);

CREATE TABLE messages (
    id              UUID PRIMARY KEY NOT NULL,
    channel_id      UUID NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    seq             BIGINT NOT NULL,
    author_id       UUID NOT NULL REFERENCES users(id),
    body            BYTEA NOT NULL,
    thread_root_id  UUID REFERENCES messages(id),
    reply_count     BIGINT NOT NULL DEFAULT 0,
    last_reply_at   TIMESTAMPTZ,
    client_msg_id   TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    edited_at       TIMESTAMPTZ,
    deleted_at      TIMESTAMPTZ,
    UNIQUE (channel_id, seq),
    UNIQUE (channel_id, author_id, client_msg_id)
);
CREATE INDEX messages_by_thread ON messages (thread_root_id, seq);

CREATE TABLE message_versions (
    message_id  UUID NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    version     BIGINT NOT NULL,
    body        BYTEA NOT NULL,
    replaced_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (message_id, version)
);

CREATE TABLE reactions (
    message_id  UUID NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id     UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    emoji       TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
);

CREATE TABLE mentions (
    message_id  UUID NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id     UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    channel_id  UUID NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    PRIMARY KEY (message_id, user_id)
);
CREATE INDEX mentions_by_user ON mentions (user_id, channel_id, seq);

CREATE TABLE pins (
    channel_id  UUID NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    message_id  UUID NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    pinned_by   UUID NOT NULL REFERENCES users(id),
    pinned_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel_id, message_id)
);

CREATE TABLE thread_followers (
    root_id  UUID NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id  UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (root_id, user_id)
);
