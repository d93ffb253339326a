-- The browser session a token was issued in (its ID token's sid), so a
-- session's end can reach the clients holding tokens from it.
ALTER TABLE oauth2_requests ADD COLUMN sid TEXT NOT NULL DEFAULT '';
CREATE INDEX oauth2_requests_subject_sid ON oauth2_requests (subject, sid);
-- When a refresh token was rotated (TONEARM_REFRESH_GRACE).
ALTER TABLE oauth2_requests ADD COLUMN rotated_at TIMESTAMPTZ;
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT NOT NULL DEFAULT '';
-- Outbox of OpenID Connect Back-Channel Logout deliveries: written in the
-- transaction that ends the session, delivered by a worker with retries.
CREATE TABLE backchannel_logouts (
    client_id   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    sid         TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    attempts    INTEGER NOT NULL,
    next_at     TIMESTAMPTZ NOT NULL,
    lease_until TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (client_id, subject, sid)
);
CREATE INDEX backchannel_logouts_next_at ON backchannel_logouts (next_at);
