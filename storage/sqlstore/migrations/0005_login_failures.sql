-- Failed password checks, counted per key (an address, an address and an
-- account, an account) in fixed windows, shared by every replica.
CREATE TABLE login_failures (
    counter_key  TEXT PRIMARY KEY,
    count        INTEGER NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    last_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_failures_last_at ON login_failures (last_at);
-- Known-device cookies name the epoch they were issued in; ending every
-- session of a user moves it on, so those cookies stop counting.
ALTER TABLE users ADD COLUMN device_epoch BIGINT NOT NULL DEFAULT 0;
