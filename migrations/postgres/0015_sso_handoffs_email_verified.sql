-- Single sign-on hardening: one-time hand-offs of a browser sign-in to the web client (bound to
-- the browser that began it), expiry indexes for pending sign-ins, and whether an account's email
-- is verified (only verified emails may be linked to a provider identity by email).

ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE sso_handoffs (
    code_hash       BYTEA PRIMARY KEY NOT NULL,
    provider        TEXT NOT NULL,
    browser_hash    BYTEA NOT NULL,
    session_id      UUID NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    user_id         UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    sealed_refresh  BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX sso_handoffs_by_expiry ON sso_handoffs (expires_at);
CREATE INDEX sso_login_states_by_expiry ON sso_login_states (expires_at);
