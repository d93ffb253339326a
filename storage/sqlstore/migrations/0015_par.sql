-- Clients that must push their authorization requests (RFC 9126).
ALTER TABLE clients ADD COLUMN require_par BOOLEAN NOT NULL DEFAULT FALSE;
