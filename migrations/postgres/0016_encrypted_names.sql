-- Names, topics, custom roles, sign-in clients and message idempotency keys are stored
-- encrypted (AES-256-GCM under the owning workspace's or user's key, bound to table, row and
-- column). Lookups and uniqueness go through keyed blind indexes (hex HMAC):
--   workspaces.slug_index       the slug's index (unique in the deployment)
--   channels.name_index         the index of the workspace id and name (unique per workspace)
--   roles.name                  for custom roles, the index of the workspace id and name
--                               (built-in roles keep their fixed names)
--   messages.client_msg_index   the index of channel, author and client id (unique)
-- The plaintext columns (workspaces.name, channels.topic/purpose, roles.description,
-- sessions.user_agent/ip, messages.client_msg_id) stay only until the start-up backfill has
-- encrypted their rows and emptied them.
ALTER TABLE workspaces RENAME COLUMN slug TO slug_index;
ALTER TABLE workspaces ADD COLUMN name_enc BYTEA;
ALTER TABLE workspaces ADD COLUMN slug_enc BYTEA;

ALTER TABLE channels RENAME COLUMN name TO name_index;
ALTER TABLE channels ADD COLUMN name_enc BYTEA;
ALTER TABLE channels ADD COLUMN topic_enc BYTEA;
ALTER TABLE channels ADD COLUMN purpose_enc BYTEA;

ALTER TABLE roles ADD COLUMN name_enc BYTEA;
ALTER TABLE roles ADD COLUMN description_enc BYTEA;

ALTER TABLE sessions ADD COLUMN user_agent_enc BYTEA;
ALTER TABLE sessions ADD COLUMN ip_enc BYTEA;

ALTER TABLE messages ADD COLUMN client_msg_index TEXT;
ALTER TABLE messages ADD COLUMN client_msg_id_enc BYTEA;
CREATE UNIQUE INDEX messages_by_client_msg ON messages (channel_id, author_id, client_msg_index);
-- Finds the rows the backfill still has to encrypt without scanning every message.
CREATE INDEX messages_legacy_client_msg ON messages (id) WHERE client_msg_id IS NOT NULL;
