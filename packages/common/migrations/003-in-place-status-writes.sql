-- The claim sets dispatched_at and the completion sets finished_at, both NULL until then. In
-- the COMPACT and DYNAMIC row formats a NULL takes no space, so each of those writes grows
-- the row; in pages packed full by the inserts, every grown row makes InnoDB reorganize or
-- split its page, which costs the database about as much again as the write itself. The
-- REDUNDANT row format reserves the space of a fixed-length column even while it is NULL,
-- so both writes change the row in place.
--
-- Its index keys are limited to 767 bytes, so the Idempotency-Key column becomes ASCII
-- (255 bytes; the API accepts printable ASCII only, as the header's specification does) and
-- compares exactly, case included. A stored key with other characters is dropped first: its
-- task stays, only a replay of that key would no longer find it.
-- Runs on MySQL 8.x and MariaDB 10.6+.
UPDATE tasks SET idempotency_key = NULL
 WHERE idempotency_key IS NOT NULL AND idempotency_key NOT REGEXP '^[ -~]+$';
ALTER TABLE tasks
  MODIFY idempotency_key VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NULL,
  ROW_FORMAT = REDUNDANT;
