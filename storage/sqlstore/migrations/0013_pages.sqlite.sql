-- When each session was last used: every existing one, when it was made.
-- SQLite cannot ALTER COLUMN … SET NOT NULL: the column is added NOT NULL
-- with a default instead, then filled like PostgreSQL's.
ALTER TABLE sessions ADD COLUMN last_used_at DATETIME NOT NULL DEFAULT '1970-01-01 00:00:00+00:00';
UPDATE sessions SET last_used_at = created_at;
