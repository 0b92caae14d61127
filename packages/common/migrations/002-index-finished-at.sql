-- Tasks finished per minute (the dashboard's throughput): a range scan on finished_at that
-- reads the status from the index too. Runs on MySQL 8.x and MariaDB 10.6+.
CREATE INDEX tasks_finished_at_status ON tasks (finished_at, status);
