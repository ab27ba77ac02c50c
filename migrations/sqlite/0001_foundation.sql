-- Foundation: workspaces, users, roles and permissions, memberships, sessions,
-- refresh tokens, invitations, first-run setup tokens and login throttling.
-- Ids are UUIDv7 (16-byte BLOBs here, UUID in PostgreSQL); times are UTC.

CREATE TABLE workspaces (
    id          BLOB PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    slug        TEXT NOT NULL UNIQUE,
    created_by  BLOB,
    created_at  TEXT NOT NULL
);

CREATE TABLE roles (
    id            BLOB PRIMARY KEY NOT NULL,
    scope         TEXT NOT NULL CHECK (scope IN ('system', 'workspace')),
    workspace_id  BLOB REFERENCES workspaces(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    builtin       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TEXT NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE role_permissions (
    role_id     BLOB NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    permission  TEXT NOT NULL,
    PRIMARY KEY (role_id, permission)
);

CREATE TABLE users (
    id              BLOB PRIMARY KEY NOT NULL,
    email           TEXT NOT NULL,
    email_lookup    TEXT NOT NULL UNIQUE,
    display_name    TEXT NOT NULL,
    password_hash   TEXT,
    system_role_id  BLOB REFERENCES roles(id),
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

CREATE TABLE memberships (
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id       BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_id       BLOB NOT NULL REFERENCES roles(id),
    created_at    TEXT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

CREATE TABLE sessions (
    id              BLOB PRIMARY KEY NOT NULL,
    user_id         BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    auth_method     TEXT NOT NULL,
    user_agent      TEXT,
    ip              TEXT,
    created_at      TEXT NOT NULL,
    last_used_at    TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    revoked_at      TEXT,
    revoked_reason  TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    token_hash  BLOB PRIMARY KEY NOT NULL,
    session_id  BLOB NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    issued_at   TEXT NOT NULL,
    used_at     TEXT
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

CREATE TABLE invitations (
    id            BLOB PRIMARY KEY NOT NULL,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    token_hash    BLOB NOT NULL UNIQUE,
    email         TEXT,
    role_id       BLOB NOT NULL REFERENCES roles(id),
    created_by    BLOB NOT NULL REFERENCES users(id),
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    max_uses      BIGINT NOT NULL,
    uses          BIGINT NOT NULL DEFAULT 0,
    revoked_at    TEXT
);
CREATE INDEX invitations_by_workspace ON invitations (workspace_id);

CREATE TABLE setup_tokens (
    token_hash  BLOB PRIMARY KEY NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
);

CREATE TABLE login_throttle (
    throttle_key  TEXT PRIMARY KEY NOT NULL,
    failures      BIGINT NOT NULL,
    window_start  TEXT NOT NULL,
    locked_until  TEXT
);
