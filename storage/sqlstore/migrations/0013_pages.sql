-- The account page lists a person's sessions: when each was last used
-- (0013_pages.postgres.sql, 0013_pages.sqlite.sql) and from which browser
-- and address.
ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN ip TEXT NOT NULL DEFAULT '';
-- Client display metadata for the login and consent pages.
ALTER TABLE clients ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN logo_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN client_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN policy_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN tos_uri TEXT NOT NULL DEFAULT '';
