-- Who built each generation and when its build started and committed (milliseconds since the
-- epoch), so operators and tests can see that one worker at a time built each target.
ALTER TABLE generations ADD COLUMN built_by TEXT;
ALTER TABLE generations ADD COLUMN build_started_ms BIGINT;
ALTER TABLE generations ADD COLUMN committed_ms BIGINT;
