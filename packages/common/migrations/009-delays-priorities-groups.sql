-- When, in what order, and fairly: delayed tasks, priorities and groups.
--
-- A task posted with a due time in the future is `delayed` until its `run_at` (MySQL's clock
-- decides), then `pending`. `priority` orders the claim (higher first); `group_key` names its
-- group (a tenant), whose tasks are claimed in turn with the other groups', and whose running
-- tasks may be limited. `task_groups` holds a row per group, which a claim of a limited group
-- locks so that two schedulers never both fill its limit.
--
-- The claim reads the virtual columns below through their indexes: a row is in them only while
-- it is `pending` (respectively `delayed`, `processing` in a group), so a claim moves a task's
-- entry there (besides its `(status, id)` one), and finishing an ungrouped task moves none
-- there. Each statement is done once
-- or finds itself done. Runs on MySQL 8.4+ and MariaDB 10.6+. The status `delayed` is in the
-- status ENUMs since migration 008, which writes them in full once.
INSERT INTO task_counts (status, shard, n) VALUES
  ('delayed', 0, 0), ('delayed', 1, 0), ('delayed', 2, 0), ('delayed', 3, 0),
  ('delayed', 4, 0), ('delayed', 5, 0), ('delayed', 6, 0), ('delayed', 7, 0),
  ('delayed', 8, 0), ('delayed', 9, 0), ('delayed', 10, 0), ('delayed', 11, 0),
  ('delayed', 12, 0), ('delayed', 13, 0), ('delayed', 14, 0), ('delayed', 15, 0)
  ON DUPLICATE KEY UPDATE n = n;
ALTER TABLE tasks ADD COLUMN run_at DATETIME(3) NULL;
ALTER TABLE tasks ADD COLUMN priority SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN group_key VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL;
ALTER TABLE tasks ADD COLUMN claim_group VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin
  AS (IF(status = 'pending', COALESCE(group_key, ''), NULL)) VIRTUAL;
ALTER TABLE tasks ADD COLUMN claim_rank SMALLINT AS (IF(status = 'pending', -priority, NULL)) VIRTUAL;
ALTER TABLE tasks ADD COLUMN delayed_until DATETIME(3) AS (IF(status = 'delayed', run_at, NULL)) VIRTUAL;
ALTER TABLE tasks ADD COLUMN running_group VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin
  AS (IF(status = 'processing', group_key, NULL)) VIRTUAL;
CREATE INDEX tasks_claim ON tasks (claim_group, claim_rank, id);
CREATE INDEX tasks_delayed ON tasks (delayed_until);
CREATE INDEX tasks_running_group ON tasks (running_group);
CREATE TABLE IF NOT EXISTS task_groups (
  group_key VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY
) ENGINE = InnoDB;
