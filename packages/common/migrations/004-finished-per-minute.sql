-- Tasks finished per minute (the dashboard's throughput), counted by the statements that
-- finish tasks, in their transaction. This replaces the index on finished_at, which changed
-- an entry (and left one for InnoDB to purge) with every task that finished, on the hot path
-- of every task; a minute's counter row changes once per batch.
--
-- A redrive takes its tasks' failures out of their minutes (transitions/redrive.ts), so a
-- minute counts the tasks that finished in it by their status now.
-- Rows are one per minute with any finish (about 0.5 M a year), kept; delete old minutes
-- at will. Runs on MySQL 8.x and MariaDB 10.6+.
SET time_zone = '+00:00';
CREATE TABLE IF NOT EXISTS tasks_finished_per_minute (
  minute    INT UNSIGNED NOT NULL COMMENT 'minutes since 1970-01-01 00:00 UTC',
  completed INT UNSIGNED NOT NULL DEFAULT 0,
  failed    INT UNSIGNED NOT NULL DEFAULT 0,
  PRIMARY KEY (minute)
) ENGINE = InnoDB;
-- The last day (the longest window the API shows), read through the index before it goes.
-- Run again after a crash, it recomputes the same minutes and sets them (never adds).
INSERT INTO tasks_finished_per_minute (minute, completed, failed)
  SELECT minute, completed, failed FROM (
    SELECT UNIX_TIMESTAMP(finished_at) DIV 60 AS minute,
           SUM(status = 'completed') AS completed,
           SUM(status = 'failed') AS failed
      FROM tasks
     WHERE finished_at >= NOW(3) - INTERVAL 1 DAY AND status IN ('completed', 'failed')
     GROUP BY UNIX_TIMESTAMP(finished_at) DIV 60
  ) AS finished
  ON DUPLICATE KEY UPDATE completed = finished.completed, failed = finished.failed;
DROP INDEX tasks_finished_at ON tasks;
