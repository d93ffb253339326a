-- Passkeys (WebAuthn credentials): only public keys are stored.
CREATE TABLE passkeys (
    id               BYTEA PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    public_key       BYTEA NOT NULL,
    sign_count       BIGINT NOT NULL,
    aaguid           BYTEA,
    transports       TEXT NOT NULL,
    attestation_type TEXT NOT NULL,
    backup_eligible  BOOLEAN NOT NULL,
    backup_state     BOOLEAN NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    last_used_at     TIMESTAMPTZ
);
CREATE INDEX passkeys_user_id ON passkeys (user_id);
-- Ceremonies in progress, each used once.
CREATE TABLE passkey_challenges (
    challenge_hash BYTEA PRIMARY KEY,
    user_id        TEXT NOT NULL,
    data           BYTEA NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX passkey_challenges_expires_at ON passkey_challenges (expires_at);
ALTER TABLE users ADD COLUMN passkey_only BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';
