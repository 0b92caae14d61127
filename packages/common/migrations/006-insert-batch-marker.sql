-- A multi-row INSERT tells each task its id through a marker it writes into every row of the
-- batch: the rows from LAST_INSERT_ID() on with that marker, in id order, are the batch's
-- rows in the order they were sent, whatever innodb_autoinc_lock_mode (MySQL's default, 2,
-- may interleave the ids of concurrent INSERTs). NULL for a task inserted alone.
--
-- A fixed-length column, so the REDUNDANT row format keeps its room. Added only when missing,
-- so a run cut short is resumed. Runs on MySQL 8.x and MariaDB 10.6+.
SET @add_insert_batch = (
  SELECT IF(COUNT(*) = 0, 'ALTER TABLE tasks ADD COLUMN insert_batch BIGINT UNSIGNED NULL', 'DO 0')
    FROM information_schema.columns
   WHERE table_schema = DATABASE() AND table_name = 'tasks' AND column_name = 'insert_batch'
);
PREPARE add_insert_batch FROM @add_insert_batch;
EXECUTE add_insert_batch;
DEALLOCATE PREPARE add_insert_batch;
