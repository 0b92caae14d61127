-- Tasks finished per minute (the dashboard's throughput): a range scan on finished_at. The
-- status is read from the row: an index that also held it would be rewritten by every status
-- change, on the hot path of every task. Runs on MySQL 8.x and MariaDB 10.6+.
CREATE INDEX tasks_finished_at ON tasks (finished_at);
