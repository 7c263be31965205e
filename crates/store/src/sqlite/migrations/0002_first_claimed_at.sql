-- xdm-store SQLite schema, version 2.
-- Forward-only: never edit a migration that has shipped; add the next file instead.

-- When the job was first claimed since it was accepted (or since the operator's last retry):
-- an outbound job run again reads back from X the DMs sent since then before sending any.
-- NULL until the first claim; rows of version 1 start NULL and get it at their next claim.
ALTER TABLE jobs ADD COLUMN first_claimed_at_ms INTEGER;
