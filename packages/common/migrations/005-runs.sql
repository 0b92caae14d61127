-- Runs: each claim of a task starts a new run of it, numbered here and carried in its queue
-- message and its dead letter. Every status and attempt write is guarded by the run as well
-- as the status, so a stale message, a duplicate copy or an old dead letter changes nothing.
-- Tasks written before runs were counted are of run 0, as are messages without a run.
-- Runs on MySQL 8.4+ and MariaDB 10.6+ (an instant ADD COLUMN where the server can).
ALTER TABLE tasks ADD COLUMN run INT UNSIGNED NOT NULL DEFAULT 0;
