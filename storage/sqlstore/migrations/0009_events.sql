-- Audit events: who did what to whom, from where. The id sorts by time.
CREATE TABLE events (
    id        TEXT PRIMARY KEY,
    time      TIMESTAMPTZ NOT NULL,
    type      TEXT NOT NULL,
    actor     TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    client_id TEXT NOT NULL,
    ip        TEXT NOT NULL,
    detail    TEXT NOT NULL
);
CREATE INDEX events_time ON events (time);
CREATE INDEX events_user ON events (user_id, id);
CREATE INDEX events_type ON events (type, id);
