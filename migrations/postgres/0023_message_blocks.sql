-- Block Kit blocks on messages, and where a bot's interactions go.
--
-- `messages.blocks` holds the blocks a bot posted a message with (Slack's JSON, encrypted
-- under the workspace's key and bound to the row and column, like the body); NULL for plain
-- messages, and emptied when a message is deleted. The body stays their rendering as text.
--
-- `bot_event_settings.interactivity_url` is where presses of the buttons and selects in a
-- bot's messages are POSTed (Slack's `block_actions` payload, signed with the bot's signing
-- secret); NULL when the bot takes no interactions.

ALTER TABLE messages ADD COLUMN blocks BYTEA;
ALTER TABLE bot_event_settings ADD COLUMN interactivity_url TEXT;
