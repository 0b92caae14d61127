import { EVENTS, serve } from '@tasks/common';
import { Retention } from './retention.js';
import { Scheduler } from './scheduler.js';
import { Sweeper } from './sweeper.js';

serve('scheduler', async ({ config, logger, ctx, metrics, signal, heartbeat }) => {
  const scheduler = new Scheduler(
    { store: ctx.store, logger, metrics },
    {
      batchSize: config.SCHEDULER_BATCH_SIZE,
      pollIntervalMs: config.POLL_INTERVAL_MS,
      maxQueueDepth: config.MAX_QUEUE_DEPTH,
      queueAheadMs: config.QUEUE_AHEAD_MS,
    },
  );
  const sweeper = new Sweeper(
    { store: ctx.store, logger, metrics },
    { intervalMs: config.SWEEP_INTERVAL_MS, graceMs: config.SWEEP_GRACE_MS, pageSize: config.SWEEP_PAGE_SIZE },
  );
  const retention = new Retention(
    { store: ctx.store, logger },
    { days: config.RETENTION_DAYS, pageSize: 1_000, stepPauseMs: 1_000, passPauseMs: 60_000 },
  );
  await scheduler.start(signal);
  sweeper.start();
  retention.start();
  heartbeat.describe(() => ({
    claims_per_poll: config.SCHEDULER_BATCH_SIZE,
    poll_interval_ms: config.POLL_INTERVAL_MS,
    sweep_interval_ms: config.SWEEP_INTERVAL_MS,
  }));
  logger.info(
    { event: EVENTS.started, pollIntervalMs: config.POLL_INTERVAL_MS, sweepIntervalMs: config.SWEEP_INTERVAL_MS },
    'scheduler started',
  );
  return async () => {
    await Promise.all([scheduler.stop(), sweeper.stop(), retention.stop()]);
  };
});
