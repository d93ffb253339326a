-- Device authorizations (RFC 8628). Both codes are stored as keyed hashes.
CREATE TABLE device_codes (
    device_code_hash BYTEA PRIMARY KEY,
    user_code_hash   BYTEA NOT NULL,
    client_id        TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes           TEXT NOT NULL,
    resources        TEXT NOT NULL,
    requested_at     TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    interval_seconds INTEGER NOT NULL,
    last_polled_at   TIMESTAMPTZ,
    status           TEXT NOT NULL,
    user_id          TEXT NOT NULL DEFAULT '',
    granted_scopes   TEXT NOT NULL DEFAULT '',
    auth_time        TIMESTAMPTZ
);
CREATE UNIQUE INDEX device_codes_user_code ON device_codes (user_code_hash);
CREATE INDEX device_codes_expires_at ON device_codes (expires_at);
