import type { Pool } from 'mysql2/promise';
import type { TaskQueue } from '../../redis/task-queue.js';

/** What every transition works on: MySQL, the source of truth, written first; then Redis. */
export interface TransitionDeps {
  pool: Pool;
  queue: TaskQueue;
}
