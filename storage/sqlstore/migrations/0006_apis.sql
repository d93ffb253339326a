-- Resource servers (APIs): an identifier URI, a display name, the scopes it
-- defines (one API owns a scope: api_scopes.name is unique) and the user
-- claims its access tokens carry.
CREATE TABLE apis (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    claims     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE api_scopes (
    name        TEXT PRIMARY KEY,
    api_id      TEXT NOT NULL REFERENCES apis (id) ON DELETE CASCADE,
    description TEXT NOT NULL,
    position    INTEGER NOT NULL
);
CREATE INDEX api_scopes_api_id ON api_scopes (api_id);
-- Custom claims of a user (a JSON object), released by APIs that name them.
ALTER TABLE users ADD COLUMN claims TEXT;
