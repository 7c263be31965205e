-- xdm-store SQLite schema, version 1.
-- Forward-only: never edit a migration that has shipped; add the next file instead.

-- One row per Amazon Connect chat, keyed by its initial contact id (stable across transfers).
CREATE TABLE sessions (
    initial_contact_id       TEXT    NOT NULL PRIMARY KEY,
    business                 TEXT    NOT NULL,
    customer                 TEXT    NOT NULL,
    participant_token        TEXT    NOT NULL,
    opened_by                TEXT    NOT NULL,
    connection_token         TEXT,
    connection_expires_at_ms INTEGER,
    status                   TEXT    NOT NULL, -- 'starting' | 'live' | 'ended'
    created_at_ms            INTEGER NOT NULL,
    updated_at_ms            INTEGER NOT NULL
) STRICT;

-- At most one open (starting or live) session per (business, customer): the database refuses
-- the second one, whatever the number of workers, connections or processes racing to create it.
CREATE UNIQUE INDEX sessions_one_open_per_pair
    ON sessions (business, customer)
    WHERE status != 'ended';

-- purge: ended sessions by age.
CREATE INDEX sessions_ended_by_age
    ON sessions (updated_at_ms)
    WHERE status = 'ended';

-- X profile cache (the XProfile as JSON, so new optional fields need no migration).
CREATE TABLE profiles (
    user_id       TEXT    NOT NULL PRIMARY KEY,
    profile       TEXT    NOT NULL,
    expires_at_ms INTEGER NOT NULL
) STRICT;

CREATE INDEX profiles_by_expiry ON profiles (expires_at_ms);

-- Inbox and outbox. Done and failed rows stay until purged, for deduplication.
CREATE TABLE jobs (
    queue          TEXT    NOT NULL, -- 'inbound' | 'outbound'
    key            TEXT    NOT NULL,
    lane           TEXT    NOT NULL,
    order_key      INTEGER NOT NULL,
    payload        TEXT    NOT NULL,
    state          TEXT    NOT NULL, -- 'pending' | 'processing' | 'done' | 'failed'
    attempts       INTEGER NOT NULL DEFAULT 0,
    accepted_at_ms INTEGER NOT NULL,
    not_before_ms  INTEGER NOT NULL,
    lease_until_ms INTEGER NOT NULL DEFAULT 0,
    updated_at_ms  INTEGER NOT NULL,
    last_error     TEXT,
    PRIMARY KEY (queue, key)
) STRICT;

-- lane_heads and claim: the open jobs of a lane in (order_key, key) order. Partial, so it stays
-- as small as the backlog however many done rows the retention period keeps.
CREATE INDEX jobs_open_by_lane
    ON jobs (queue, lane, order_key, key)
    WHERE state IN ('pending', 'processing');

-- purge: finished jobs by age.
CREATE INDEX jobs_finished_by_age
    ON jobs (updated_at_ms)
    WHERE state IN ('done', 'failed');

-- jobs(queue, Some(state), limit): listing for operators (failed jobs, mostly).
CREATE INDEX jobs_by_state
    ON jobs (queue, state, accepted_at_ms, key);
