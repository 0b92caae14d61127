-- One index for every status read, on plain columns: `tasks_lanes (status, group_key,
-- priority, id)` serves the claim (a lane is a group and a priority, read oldest first), the
-- running tasks of a group, the sweep of `processing` tasks and the listings by status. It
-- replaces `(status, id)` and the three indexes on virtual columns of migration 009, which
-- made every insert write four index entries and every claim move two, and made the server
-- compute the virtual columns on every status change: a claim now moves one entry, as before
-- migration 009.
--
-- A delayed task's due time is copied into `due_at` while it is `delayed` (NULL otherwise:
-- the writes that take a task out of `delayed` clear it), so that the delayed tasks due are
-- read in due order through `tasks_due` without stepping over the tasks delayed once and
-- since run; `run_at` keeps the time asked for.
--
-- Each statement is done once or finds itself done. Runs on MySQL 8.4+ and MariaDB 10.6+.
ALTER TABLE tasks ADD COLUMN due_at DATETIME(3) NULL;
UPDATE tasks SET due_at = run_at WHERE status = 'delayed' AND due_at IS NULL;
CREATE INDEX tasks_due ON tasks (due_at);
CREATE INDEX tasks_lanes ON tasks (status, group_key, priority, id);
DROP INDEX tasks_claim ON tasks;
DROP INDEX tasks_delayed ON tasks;
DROP INDEX tasks_running_group ON tasks;
ALTER TABLE tasks DROP COLUMN claim_group;
ALTER TABLE tasks DROP COLUMN claim_rank;
ALTER TABLE tasks DROP COLUMN delayed_until;
ALTER TABLE tasks DROP COLUMN running_group;
DROP INDEX tasks_status_id ON tasks;
