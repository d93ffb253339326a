-- The algorithm of a client's ID tokens (id_token_signed_response_alg):
-- RS256, what every relying party verifies, or ES256, cheaper to sign.
ALTER TABLE clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'RS256';
