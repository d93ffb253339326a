-- A second factor: the TOTP key (sealed) with the step of the latest code
-- accepted, and single-use recovery codes (keyed hashes).
ALTER TABLE users ADD COLUMN totp_secret BLOB;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;
CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BLOB NOT NULL,
    created_at DATETIME NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);
