import { createContext, type Logger, loadConfig, type TaskStore } from '@tasks/common';
import { serviceEnv } from './services.js';
import type { BenchSettings } from './settings.js';

/** The task store of one server's bench database, as the services see it; the opener closes it. */
export interface BenchStore {
  store: TaskStore;
  close(): Promise<void>;
}

/**
 * The store the services of a run talk to (the server's bench database, the run's key
 * prefix, the services' settings), for what the bench does through the system's own verbs:
 * seeding tasks, telling the schedulers, reading the per-status counts, recounting them.
 */
export function openStore(settings: BenchSettings, mysqlUrl: string, logger: Logger): BenchStore {
  const ctx = createContext(loadConfig(serviceEnv(settings, mysqlUrl)), 'bench', { logger });
  return { store: ctx.store, close: () => ctx.close() };
}
