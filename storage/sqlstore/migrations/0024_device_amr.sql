-- How the sign-in that approved a device authorization was made (RFC 8176
-- amr, space-separated): the device's tokens carry it, and acr with it.
ALTER TABLE device_codes ADD COLUMN amr TEXT NOT NULL DEFAULT '';
