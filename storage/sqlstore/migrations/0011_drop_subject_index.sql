-- (subject, sid) serves every lookup by subject: the index on subject alone
-- was a second copy of it on every token row.
DROP INDEX oauth2_requests_subject;
