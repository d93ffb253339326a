-- Access tokens are now keyed by the first 128 bits of the SHA-256 of the
-- whole JWT and store their grants as space-separated words and a binary
-- session: rows of the previous layout can no longer be found. Access
-- tokens live an hour at most; clients get new ones with their refresh
-- tokens, which are untouched.
DELETE FROM access_tokens;
