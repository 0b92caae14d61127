import { EVENTS, HandlerRegistry, loadHandlers, serve } from '@tasks/common';
import { Executor } from './executor.js';
import { simulatedWork } from './simulated-work.js';

serve('executor', async ({ config, logger, ctx, metrics }) => {
  const handlers = config.HANDLERS ? await loadHandlers(config.HANDLERS) : HandlerRegistry.empty();
  const executor = new Executor(
    { store: ctx.store, logger, clock: ctx.clock, work: simulatedWork(config.FAILURE_RATE), handlers, metrics },
    {
      concurrency: config.CONCURRENCY,
      fetchBatchSize: config.FETCH_BATCH_SIZE,
      leaseMs: config.LEASE_MS,
      pollIntervalMs: config.POLL_INTERVAL_MS,
      shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
      maxResultBytes: config.MAX_RESULT_BYTES,
    },
  );
  executor.start();
  logger.info(
    { event: EVENTS.started, concurrency: config.CONCURRENCY, failureRate: config.FAILURE_RATE, types: handlers.types },
    'executor started',
  );
  return () => executor.stop();
});
