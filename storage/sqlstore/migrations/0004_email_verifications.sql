-- Pending email verifications: a hash of the mailed token, bound to the
-- address it was sent to.
CREATE TABLE email_verifications (
    token_hash BYTEA PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX email_verifications_user_id ON email_verifications (user_id);
CREATE INDEX email_verifications_expires_at ON email_verifications (expires_at);
