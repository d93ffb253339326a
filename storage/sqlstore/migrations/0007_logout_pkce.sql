-- The browser session's identifier as relying parties see it (the sid
-- claim of ID tokens): random, unrelated to the cookie or its hash.
ALTER TABLE sessions ADD COLUMN sid TEXT NOT NULL DEFAULT '';
CREATE INDEX sessions_sid ON sessions (sid);
-- Legacy confidential clients that cannot send PKCE (tonearm clients create --allow-no-pkce).
ALTER TABLE clients ADD COLUMN allow_no_pkce BOOLEAN NOT NULL DEFAULT FALSE;
