-- Single sign-on with OpenID Connect: links between accounts and provider identities, pending
-- sign-ins (state, nonce, PKCE verifier), the provider session behind a Concord session, where a
-- membership came from (so claim mapping removes only what it granted), and workspaces that
-- require single sign-on.

CREATE TABLE sso_identities (
    provider    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    user_id     BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email       TEXT,
    created_at  TEXT NOT NULL,
    last_login_at TEXT NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX sso_identities_by_user ON sso_identities (user_id);

CREATE TABLE sso_login_states (
    state_hash     BLOB PRIMARY KEY NOT NULL,
    provider       TEXT NOT NULL,
    browser_hash   BLOB NOT NULL,
    nonce          TEXT NOT NULL,
    pkce_verifier  TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL
);

ALTER TABLE sessions ADD COLUMN sso_sid TEXT;
ALTER TABLE sessions ADD COLUMN sso_id_token TEXT;
CREATE INDEX sessions_by_sso_sid ON sessions (sso_sid);

ALTER TABLE memberships ADD COLUMN source TEXT NOT NULL DEFAULT 'manual';

ALTER TABLE workspaces ADD COLUMN sso_required BOOLEAN NOT NULL DEFAULT FALSE;
