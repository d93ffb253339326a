-- The language the person chose for pages and mails (issue 35): a BCP 47
-- tag of a catalog, e.g. "de" or "pt-BR"; '' when none was chosen. It is
-- the OpenID Connect "locale" claim (OIDC Core §5.1).
ALTER TABLE users ADD COLUMN language TEXT NOT NULL DEFAULT '';
