import { EVENTS, HandlerRegistry, loadHandlers, serve } from '@tasks/common';
import { Executor, executorOptions } from './executor.js';
import { simulatedWork } from './simulated-work.js';

serve('executor', async ({ config, logger, ctx, metrics }) => {
  const handlers = config.HANDLERS ? await loadHandlers(config.HANDLERS) : HandlerRegistry.empty();
  const executor = new Executor(
    { store: ctx.store, logger, clock: ctx.clock, work: simulatedWork(config.FAILURE_RATE), handlers, metrics },
    executorOptions(config),
  );
  executor.start();
  logger.info(
    { event: EVENTS.started, concurrency: config.CONCURRENCY, failureRate: config.FAILURE_RATE, types: handlers.types },
    'executor started',
  );
  return () => executor.stop();
});
