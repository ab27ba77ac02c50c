-- Slash commands and the response URLs their invocations hand out.
--
-- `bot_commands` holds a workspace's slash commands: the name people type (without its `/`,
-- lowercase, unique in the workspace), the bot that answers it and the URL the invocation is
-- POSTed to (signed with the bot's signing secret), with the description and usage hint the
-- composer shows.
--
-- `bot_response_urls` holds the response URLs handed to bots with each invocation (and with
-- each interaction later): only the SHA-256 of the URL's secret, the bot, channel and person
-- it answers (and the bot's message an interaction came from), how many more answers it takes and until when (Unix milliseconds). Expired rows
-- are pruned as new ones are made.

CREATE TABLE bot_commands (
    id            BLOB PRIMARY KEY NOT NULL,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    bot_id        BLOB NOT NULL REFERENCES bots(user_id) ON DELETE CASCADE,
    command       TEXT NOT NULL,
    url           TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    usage_hint    TEXT NOT NULL DEFAULT '',
    created_by    BLOB NOT NULL REFERENCES users(id),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (workspace_id, command)
);
CREATE INDEX bot_commands_by_bot ON bot_commands (bot_id);

CREATE TABLE bot_response_urls (
    secret_hash   BLOB PRIMARY KEY NOT NULL,
    bot_id        BLOB NOT NULL REFERENCES bots(user_id) ON DELETE CASCADE,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    channel_id    BLOB NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id       BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    message_id    BLOB REFERENCES messages(id) ON DELETE CASCADE,
    uses_left     BIGINT NOT NULL,
    expires_ms    BIGINT NOT NULL
);
CREATE INDEX bot_response_urls_by_expiry ON bot_response_urls (expires_ms);
