-- Prefix searches of the admin user list compare bytewise (COLLATE "C"):
-- under a linguistic collation a range is not a prefix and LIKE 'x%' cannot
-- use the index. These indexes serve the range and the ordering.
CREATE INDEX users_username_key_c ON users (username_key COLLATE "C");
CREATE INDEX users_email_key_c ON users (email_key COLLATE "C");
