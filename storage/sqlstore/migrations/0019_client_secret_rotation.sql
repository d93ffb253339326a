-- A rotated client secret may stay valid for a while (clients rotate-secret
-- --keep-old): its keyed hash and until when.
ALTER TABLE clients ADD COLUMN old_secret_hash BYTEA;
ALTER TABLE clients ADD COLUMN old_secret_expires_at TIMESTAMPTZ;
