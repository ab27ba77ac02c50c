-- PHI safeguards (HIPAA 45 CFR 164.312).
--
-- Automatic logoff: when the person last did something in a session (a request, a message or
-- an edit sent over a socket), recorded periodically from memory; a session idle longer than
-- its workspaces' `phi.idle_logoff_minutes` is ended. Sign-in counts as activity.
ALTER TABLE sessions ADD COLUMN last_active_at TEXT;
