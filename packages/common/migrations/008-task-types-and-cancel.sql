-- Task types, their results, deadlines and attempts, and cancellation.
--
-- `type` names the handler that runs a task: `simulated`, the original's work (wait `time`
-- seconds, fail at random), for every task written before types existed and every task posted
-- without one. `timeout_ms` and `max_attempts` are the task's own, set when it is inserted
-- (from its body or its type's defaults); NULL takes the settings'. `result` is what its
-- handler returned, stored when it completes.
--
-- `cancelled` is a final status like `completed` and `failed`, counted like them.
--
-- Each statement is done once or finds itself done (a duplicate column, an ENUM already
-- holding the value, count rows already there). Runs on MySQL 8.4+ and MariaDB 10.6+.
ALTER TABLE tasks ADD COLUMN type VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT 'simulated';
ALTER TABLE tasks ADD COLUMN timeout_ms INT UNSIGNED NULL;
ALTER TABLE tasks ADD COLUMN max_attempts SMALLINT UNSIGNED NULL;
ALTER TABLE tasks ADD COLUMN result JSON NULL;
-- The statuses are written in full, `delayed` (migration 009) included, so that running this
-- file again after the later ones changes nothing.
ALTER TABLE tasks
  MODIFY status ENUM('pending', 'processing', 'completed', 'failed', 'cancelled', 'delayed') NOT NULL DEFAULT 'pending';
ALTER TABLE task_counts
  MODIFY status ENUM('pending', 'processing', 'completed', 'failed', 'cancelled', 'delayed') NOT NULL;
INSERT INTO task_counts (status, shard, n) VALUES
  ('cancelled', 0, 0), ('cancelled', 1, 0), ('cancelled', 2, 0), ('cancelled', 3, 0),
  ('cancelled', 4, 0), ('cancelled', 5, 0), ('cancelled', 6, 0), ('cancelled', 7, 0),
  ('cancelled', 8, 0), ('cancelled', 9, 0), ('cancelled', 10, 0), ('cancelled', 11, 0),
  ('cancelled', 12, 0), ('cancelled', 13, 0), ('cancelled', 14, 0), ('cancelled', 15, 0)
  ON DUPLICATE KEY UPDATE n = n;
ALTER TABLE tasks_finished_per_minute ADD COLUMN cancelled INT UNSIGNED NOT NULL DEFAULT 0;
