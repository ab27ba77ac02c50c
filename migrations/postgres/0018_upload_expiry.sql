-- Unfinished uploads expire: `expires_at` is pushed back each time an upload makes progress,
-- and an upload past it stops counting against its workspace's quota and is removed (row
-- and blobs) by the sweeper. `thumbnail_error` says why an image got no thumbnail
-- (`too_large`: over the decoding limits; `undecodable`).

ALTER TABLE files ADD COLUMN expires_at TIMESTAMPTZ;
ALTER TABLE files ADD COLUMN thumbnail_error TEXT;
CREATE INDEX files_by_expiry ON files (status, expires_at);
