-- The original's table (id, data, status) plus what retries, recovery and operators need.
-- Runs on MySQL 8.x and MariaDB 10.6+.
CREATE TABLE IF NOT EXISTS tasks (
  id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  data            JSON NOT NULL,
  status          ENUM('pending', 'processing', 'completed', 'failed') NOT NULL DEFAULT 'pending',
  attempts        INT UNSIGNED NOT NULL DEFAULT 0,
  last_error      TEXT NULL,
  idempotency_key VARCHAR(255) NULL,
  created_at      DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at      DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  dispatched_at   DATETIME(3) NULL,
  finished_at     DATETIME(3) NULL,
  PRIMARY KEY (id),
  UNIQUE KEY tasks_idempotency_key (idempotency_key),
  -- the scheduler's claim (oldest pending first) and the sweeper (processing tasks). Every
  -- index with the status in it is rewritten by each status change, so there is only this one.
  KEY tasks_status_id (status, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
