-- The clients that may exchange a person's token for a token to the API
-- (RFC 8693 token exchange: the server decides who may act for whom), a
-- JSON list. Numbered 0029, not 0028: another change of the same issue
-- takes 0028 for the clients table.
ALTER TABLE apis ADD COLUMN exchange_from TEXT NOT NULL DEFAULT '[]';
