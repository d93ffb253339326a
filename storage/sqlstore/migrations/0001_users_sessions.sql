CREATE TABLE users (
    id                 TEXT PRIMARY KEY,
    username           TEXT NOT NULL,
    username_key       TEXT NOT NULL,
    password_hash      TEXT NOT NULL,
    role               TEXT NOT NULL CHECK (role IN ('admin', 'user', 'guest')),
    listenbrainz_name  TEXT NOT NULL DEFAULT '',
    listenbrainz_token BYTEA,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX users_username_key ON users (username_key);

CREATE TABLE sessions (
    id_hash    BYTEA PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time  TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
