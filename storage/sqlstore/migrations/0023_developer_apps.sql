-- Apps registered by their developers (on /developer or RFC 7591): their
-- owner, how they were registered, the RFC 7592 registration access
-- token's keyed hash, and whether an admin disabled them.
ALTER TABLE clients ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN registration TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN registration_token_hash BYTEA;
ALTER TABLE clients ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX clients_owner ON clients (owner);
-- APIs whose scopes apps registered by developers may ask for.
ALTER TABLE apis ADD COLUMN open_to_apps BOOLEAN NOT NULL DEFAULT FALSE;
-- Initial access tokens for RFC 7591 registration (keyed hashes).
CREATE TABLE registration_tokens (
    id          TEXT PRIMARY KEY,
    token_hash  BYTEA NOT NULL UNIQUE,
    owner       TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ
);
CREATE INDEX registration_tokens_owner ON registration_tokens (owner);
