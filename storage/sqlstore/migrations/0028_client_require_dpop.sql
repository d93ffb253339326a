-- Clients whose token requests must carry a DPoP proof (RFC 9449 §5.2,
-- dpop_bound_access_tokens): every access token they get is bound to a key.
ALTER TABLE clients ADD COLUMN require_dpop BOOLEAN NOT NULL DEFAULT FALSE;
