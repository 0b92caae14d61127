import type { Database } from '../../mysql/database.js';
import type { TaskQueue } from '../../redis/task-queue.js';

/** What every transition works on: MySQL, the source of truth, written first; then Redis. */
export interface TransitionDeps {
  pool: Database;
  queue: TaskQueue;
}
