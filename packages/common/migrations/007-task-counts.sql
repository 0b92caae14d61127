-- Tasks per status, counted by the statements that change statuses, in their transaction (see
-- packages/common/src/tasks/status-counts.ts), so /stats reads 64 rows instead of the table.
-- Each status's count is spread over 16 shard rows to keep concurrent writers apart.
--
-- Every row is created (the writers only UPDATE), then set to the count of the moment: run
-- again after a crash part-way, it starts over and ends exact. Runs on MySQL 8.4+ and MariaDB 10.6+.
CREATE TABLE IF NOT EXISTS task_counts (
  status ENUM('pending', 'processing', 'completed', 'failed') NOT NULL,
  shard  TINYINT UNSIGNED NOT NULL,
  n      BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (status, shard)
) ENGINE = InnoDB;
INSERT INTO task_counts (status, shard, n) VALUES
  ('pending', 0, 0), ('pending', 1, 0), ('pending', 2, 0), ('pending', 3, 0),
  ('pending', 4, 0), ('pending', 5, 0), ('pending', 6, 0), ('pending', 7, 0),
  ('pending', 8, 0), ('pending', 9, 0), ('pending', 10, 0), ('pending', 11, 0),
  ('pending', 12, 0), ('pending', 13, 0), ('pending', 14, 0), ('pending', 15, 0),
  ('processing', 0, 0), ('processing', 1, 0), ('processing', 2, 0), ('processing', 3, 0),
  ('processing', 4, 0), ('processing', 5, 0), ('processing', 6, 0), ('processing', 7, 0),
  ('processing', 8, 0), ('processing', 9, 0), ('processing', 10, 0), ('processing', 11, 0),
  ('processing', 12, 0), ('processing', 13, 0), ('processing', 14, 0), ('processing', 15, 0),
  ('completed', 0, 0), ('completed', 1, 0), ('completed', 2, 0), ('completed', 3, 0),
  ('completed', 4, 0), ('completed', 5, 0), ('completed', 6, 0), ('completed', 7, 0),
  ('completed', 8, 0), ('completed', 9, 0), ('completed', 10, 0), ('completed', 11, 0),
  ('completed', 12, 0), ('completed', 13, 0), ('completed', 14, 0), ('completed', 15, 0),
  ('failed', 0, 0), ('failed', 1, 0), ('failed', 2, 0), ('failed', 3, 0),
  ('failed', 4, 0), ('failed', 5, 0), ('failed', 6, 0), ('failed', 7, 0),
  ('failed', 8, 0), ('failed', 9, 0), ('failed', 10, 0), ('failed', 11, 0),
  ('failed', 12, 0), ('failed', 13, 0), ('failed', 14, 0), ('failed', 15, 0)
  ON DUPLICATE KEY UPDATE n = 0;
UPDATE task_counts AS c
  JOIN (SELECT status, COUNT(*) AS n FROM tasks GROUP BY status) AS t ON t.status = c.status
   SET c.n = t.n
 WHERE c.shard = 0;
