import { EVENTS, serve } from '@tasks/common';
import { DeadLetterProcessor } from './dead-letter-processor.js';

serve('dlq-processor', async ({ config, logger, ctx, metrics, heartbeat }) => {
  const processor = new DeadLetterProcessor(
    { store: ctx.store, logger, metrics },
    { batchSize: config.DEAD_LETTER_BATCH_SIZE, leaseMs: config.LEASE_MS, pollIntervalMs: config.POLL_INTERVAL_MS },
  );
  processor.start();
  heartbeat.describe(() => ({ batch_size: config.DEAD_LETTER_BATCH_SIZE }));
  logger.info({ event: EVENTS.started }, 'dead-letter processor started');
  return () => processor.stop();
});
