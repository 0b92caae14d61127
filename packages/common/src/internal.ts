// The parts behind the task store, for the bench alone: it measures the store's own SQL
// without Redis (bench/src/sql-cost.ts), serves the API on a store whose storage does nothing
// (bench/src/api-server.ts), and seeds and counts its databases directly. Services, the CLI and
// the tests go through index.ts; the store's own tests import these from ../src.
export { configSchema } from './config.js';
export { createContextParts, retryPolicy } from './context.js';
export { createDatabase, type Database, ensureDatabase } from './mysql/database.js';
export { migrate } from './mysql/migrate.js';
export type { TaskQueue } from './redis/task-queue.js';
export { TaskStore } from './store/task-store.js';
export { CLAIM_READS } from './tasks/claim-plan.js';
export { countByStatus, countedTransaction, recountStatuses } from './tasks/status-counts.js';
export { claimPending } from './tasks/transitions/claim-and-dispatch.js';
export { completeRuns } from './tasks/transitions/complete.js';
