import { EVENTS, serve } from '@tasks/common';
import { Executor } from './executor.js';
import { simulatedWork } from './simulated-work.js';

serve('consumer', async ({ config, logger, ctx, metrics }) => {
  const executor = new Executor(
    {
      pool: ctx.pool,
      queue: ctx.queue,
      openBlocking: () => ctx.openRedis('fetch'),
      logger,
      clock: ctx.clock,
      work: simulatedWork(config.FAILURE_RATE),
      metrics,
    },
    {
      concurrency: config.CONCURRENCY,
      fetchBatchSize: config.FETCH_BATCH_SIZE,
      leaseMs: config.LEASE_MS,
      maxAttempts: config.MAX_ATTEMPTS,
      retryBackoffMs: config.RETRY_BACKOFF_MS,
      retryBackoffMaxMs: config.RETRY_BACKOFF_MAX_MS,
      pollIntervalMs: config.POLL_INTERVAL_MS,
      shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    },
  );
  executor.start();
  logger.info(
    { event: EVENTS.started, concurrency: config.CONCURRENCY, failureRate: config.FAILURE_RATE },
    'executor started',
  );
  return () => executor.stop();
});
