-- Random values made once per installation and shared by every replica,
-- sealed under TONEARM_SECRET (re-sealed by tonearm reseal): the key of
-- pairwise subject identifiers (OIDC Core §8.1), which must outlive a
-- rotation of TONEARM_SECRET.
CREATE TABLE instance_secrets (
    name   TEXT PRIMARY KEY,
    sealed BYTEA NOT NULL
);
