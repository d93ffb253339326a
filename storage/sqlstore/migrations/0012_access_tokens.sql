-- Access tokens get a table of their own, holding only what reading one
-- back needs: the SHA-256 of the whole JWT as a binary key, the request id
-- as 16 bytes, what was granted, the lean session, the expiry. About 360
-- bytes a token with its indexes, against 580 in oauth2_requests.
CREATE TABLE access_tokens (
    signature        BYTEA PRIMARY KEY,
    request_id       BYTEA NOT NULL,
    requested_at     TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    client_id        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    sid              TEXT NOT NULL,
    granted_scopes   TEXT NOT NULL,
    granted_audience TEXT NOT NULL,
    session          BYTEA NOT NULL
);
CREATE INDEX access_tokens_request_id ON access_tokens (request_id);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);
CREATE INDEX access_tokens_subject_sid ON access_tokens (subject, sid);
-- Access tokens of the old table are keyed differently (by their signature
-- segment) since this release and can no longer be found: drop them.
DELETE FROM oauth2_requests WHERE kind = 'access_token';
