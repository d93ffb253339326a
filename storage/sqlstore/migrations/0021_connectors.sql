-- Sign-ins in progress (the interaction), bound to one browser.
CREATE TABLE interactions (
    id_hash    BYTEA PRIMARY KEY,
    binding    BYTEA NOT NULL,
    data       BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX interactions_expires_at ON interactions (expires_at);
-- Upstream providers people sign in through; the client secret is sealed.
CREATE TABLE connectors (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    client_secret BYTEA NOT NULL,
    issuer        TEXT NOT NULL,
    base_url      TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
-- Upstream identities linked to users.
CREATE TABLE linked_identities (
    connector_id TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    issuer       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    username     TEXT NOT NULL,
    email        TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (connector_id, issuer, subject)
);
CREATE UNIQUE INDEX linked_identities_user ON linked_identities (user_id, connector_id);
ALTER TABLE users ADD COLUMN musicbrainz_name TEXT NOT NULL DEFAULT '';
