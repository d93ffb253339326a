CREATE TABLE clients (
    id                        TEXT PRIMARY KEY,
    secret_hash               BYTEA,
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    grant_types               TEXT NOT NULL,
    response_types            TEXT NOT NULL,
    scopes                    TEXT NOT NULL,
    audience                  TEXT NOT NULL,
    public                    BOOLEAN NOT NULL,
    first_party               BOOLEAN NOT NULL,
    created_at                TIMESTAMPTZ NOT NULL
);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    sealed_key  BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    retired_at  TIMESTAMPTZ
);
CREATE INDEX signing_keys_alg ON signing_keys (alg, retired_at);

CREATE TABLE oauth2_requests (
    kind              TEXT NOT NULL,
    signature         TEXT NOT NULL,
    request_id        TEXT NOT NULL,
    requested_at      TIMESTAMPTZ NOT NULL,
    client_id         TEXT NOT NULL,
    subject           TEXT NOT NULL,
    scopes            TEXT NOT NULL,
    granted_scopes    TEXT NOT NULL,
    audience          TEXT NOT NULL,
    granted_audience  TEXT NOT NULL,
    form              TEXT NOT NULL,
    session           BYTEA NOT NULL,
    active            BOOLEAN NOT NULL,
    expires_at        TIMESTAMPTZ NOT NULL,
    access_signature  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (kind, signature)
);
CREATE INDEX oauth2_requests_request_id ON oauth2_requests (request_id, kind);
CREATE INDEX oauth2_requests_expires_at ON oauth2_requests (expires_at);
CREATE INDEX oauth2_requests_subject ON oauth2_requests (subject);

CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    granted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_client_id ON consents (client_id);
