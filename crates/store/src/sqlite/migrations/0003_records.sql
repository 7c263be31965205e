-- xdm-store SQLite schema, version 3.
-- Forward-only: never edit a migration that has shipped; add the next file instead.

-- Small named values with a version (OAuth 2.0 tokens, refresh leases, the webhook id, cursors).
-- Every write is a compare-and-set on `version` (one conditional statement); `value` may hold
-- secrets, which is why the database file is created readable by its owner only.
CREATE TABLE records (
    key           TEXT    NOT NULL PRIMARY KEY,
    value         TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT;
