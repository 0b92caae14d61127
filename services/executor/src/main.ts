import { EVENTS, serve } from '@tasks/common';
import { Executor } from './executor.js';
import { simulatedWork } from './simulated-work.js';

serve('executor', async ({ config, logger, ctx, metrics, heartbeat }) => {
  const executor = new Executor(
    { store: ctx.store, logger, clock: ctx.clock, work: simulatedWork(config.FAILURE_RATE), metrics },
    {
      concurrency: config.CONCURRENCY,
      fetchBatchSize: config.FETCH_BATCH_SIZE,
      leaseMs: config.LEASE_MS,
      pollIntervalMs: config.POLL_INTERVAL_MS,
      shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    },
  );
  executor.start();
  heartbeat.describe(() => ({ concurrency: config.CONCURRENCY, running: executor.active }));
  logger.info(
    { event: EVENTS.started, concurrency: config.CONCURRENCY, failureRate: config.FAILURE_RATE },
    'executor started',
  );
  return () => executor.stop();
});
