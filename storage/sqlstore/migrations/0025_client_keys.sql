-- Clients that authenticate with their own keys (private_key_jwt, RFC 7523),
-- send request objects (RFC 9101) and get pairwise subjects (OIDC Core §8).
ALTER TABLE clients ADD COLUMN token_endpoint_auth_method TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN jwks TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN jwks_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN request_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN request_object_signing_alg TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN subject_type TEXT NOT NULL DEFAULT 'public';
ALTER TABLE clients ADD COLUMN sector_identifier_uri TEXT NOT NULL DEFAULT '';
-- One-time identifiers (a client assertion's or a request object's jti),
-- remembered until they expire so a replay is refused on every replica.
CREATE TABLE used_jtis (
    jti_key    TEXT PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX used_jtis_expires ON used_jtis (expires_at);
