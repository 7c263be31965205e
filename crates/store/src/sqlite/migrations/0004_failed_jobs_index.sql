-- xdm-store SQLite schema, version 4.
-- Forward-only: never edit a migration that has shipped; add the next file instead.

-- `jobs_by_state` indexed every job by its state, so every acceptance wrote one more b-tree page
-- and every claim and finish moved the job's entry within it. Only failed jobs need an index of
-- their own (the operators' listing); open jobs are counted and listed through
-- `jobs_open_by_lane`, and their backlog's age is read from the lanes' heads.
DROP INDEX jobs_by_state;

-- jobs(queue, Some(Failed), limit) and the failed count of the backlog.
CREATE INDEX jobs_failed_by_acceptance
    ON jobs (queue, accepted_at_ms, key)
    WHERE state = 'failed';
