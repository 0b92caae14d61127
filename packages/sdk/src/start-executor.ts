import {
  type Config,
  createContext,
  createLogger,
  EVENTS,
  type HandlerRegistry,
  type Handlers,
  handlerRegistry,
  type Logger,
  loadConfig,
  loadHandlers,
  prepareDatabase,
} from '@tasks/common';
import { Executor, executorOptions, simulatedWork } from '@tasks/executor';

export interface StartExecutorOptions {
  /** The handlers of your task types, given in code. */
  handlers?: Handlers;
  /**
   * Or the module that exports them (as HANDLERS names it): needed for a type that asks for
   * `isolation: 'thread'`, since a worker thread loads the handlers from it.
   */
  handlersModule?: string;
  /** Settings over the environment's (MYSQL_URL, REDIS_URL, CONCURRENCY, …; see docs/configuration.md). */
  settings?: Record<string, string>;
  /** Where to log; a logger like the services' by default. */
  logger?: Logger;
}

export interface RunningExecutor {
  /** The settings it runs with. */
  config: Config;
  /** Lets running tasks finish (SHUTDOWN_TIMEOUT_MS), hands the rest back, and closes the connections. */
  stop(): Promise<void>;
}

/**
 * Runs an executor inside this Node program, with your handlers: it prepares the database
 * (migrations), connects, and fetches and runs tasks until `stop()`. The same as `pnpm executor`
 * with HANDLERS set, for a program that would rather not name a module by path.
 */
export async function startExecutor(options: StartExecutorOptions = {}): Promise<RunningExecutor> {
  const env: Record<string, string | undefined> = { ...process.env, ...options.settings };
  const config = loadConfig(env);
  const logger = options.logger ?? createLogger(config, 'executor');
  let handlers: HandlerRegistry;
  if (options.handlersModule) handlers = await loadHandlers(options.handlersModule);
  else handlers = handlerRegistry(options.handlers ?? {}, null, 'startExecutor({ handlers })');
  await prepareDatabase(config, logger);
  const ctx = createContext(config, 'executor', { logger });
  const executor = new Executor(
    { store: ctx.store, logger, clock: ctx.clock, work: simulatedWork(config.FAILURE_RATE), handlers },
    executorOptions(config),
  );
  executor.start();
  logger.info({ event: EVENTS.started, types: handlers.types }, 'executor started');
  return {
    config,
    async stop() {
      await executor.stop();
      await ctx.close();
    },
  };
}
