-- Bot accounts, their tokens and incoming webhooks.
--
-- A bot is an account (a `users` row without a password, whose display name is encrypted
-- like anyone's) plus a `bots` row naming the workspace it was made for; it belongs to that
-- workspace with the built-in `bot` role. Tokens and webhook URLs are high-entropy secrets
-- shown once: only their SHA-256 is stored. A token's scopes are a space-separated list.

CREATE TABLE bots (
    user_id         UUID PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    workspace_id    UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    avatar_url      TEXT,
    created_by      UUID NOT NULL REFERENCES users(id),
    created_at      TIMESTAMPTZ NOT NULL,
    deactivated_at  TIMESTAMPTZ
);
CREATE INDEX bots_by_workspace ON bots (workspace_id);

CREATE TABLE bot_tokens (
    id          UUID PRIMARY KEY NOT NULL,
    bot_id      UUID NOT NULL REFERENCES bots(user_id) ON DELETE CASCADE,
    token_hash  BYTEA NOT NULL UNIQUE,
    hint        TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    created_by  UUID NOT NULL REFERENCES users(id),
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX bot_tokens_by_bot ON bot_tokens (bot_id);

CREATE TABLE incoming_webhooks (
    id           UUID PRIMARY KEY NOT NULL,
    secret_hash  BYTEA NOT NULL UNIQUE,
    workspace_id UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    channel_id   UUID NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    bot_id       UUID NOT NULL REFERENCES bots(user_id) ON DELETE CASCADE,
    created_by   UUID NOT NULL REFERENCES users(id),
    created_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX incoming_webhooks_by_workspace ON incoming_webhooks (workspace_id);
