-- When a lifted restriction's person was put back in the search indexes. A lift commits with
-- reindexed_at NULL; the rebuild that follows sets it, and a server that starts with any lifted
-- restriction still NULL here rebuilds the person's workspaces first, so a stop in between
-- never leaves their content unsearchable. Restrictions lifted before this column existed
-- were rebuilt already.
ALTER TABLE processing_restrictions ADD COLUMN reindexed_at TIMESTAMPTZ;
UPDATE processing_restrictions SET reindexed_at = lifted_at WHERE lifted_at IS NOT NULL;
