-- Finds the files attached to a message: search flags such messages `has:file`.

CREATE INDEX files_by_message ON files (message_id);
