-- The clients that may introspect tokens whose audience includes the API
-- (RFC 7662 §4: the server decides who may see a token), a JSON list.
ALTER TABLE apis ADD COLUMN introspectors TEXT NOT NULL DEFAULT '[]';
