-- SQLite compares TEXT bytewise (BINARY): the unique indexes on
-- username_key and email_key already serve prefix ranges and the ordering.
SELECT 1;
