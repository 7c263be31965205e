-- xdm-store SQLite schema, version 5.
-- Forward-only: never edit a migration that has shipped; add the next file instead.

-- `jobs_open_by_lane` kept the open jobs in lane order, so every commit wrote one page of it per
-- lane it touched: a quarter to three quarters of the log's frames (docs/performance.md, "Where a
-- commit's pages go"). The store now keeps each lane's order in memory (`lane_order.rs`) and reads
-- the open jobs back from this index to rebuild it. Its entries are in insertion (rowid) order, so
-- acceptances, claims and finishes of many lanes change the same few pages at its end.
DROP INDEX jobs_open_by_lane;

CREATE INDEX jobs_open
    ON jobs (queue)
    WHERE state IN ('pending', 'processing');
