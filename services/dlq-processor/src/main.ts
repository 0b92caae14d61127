import {
  configFromEnvironment,
  createContext,
  createLogger,
  createMetrics,
  prepareDatabase,
  retryUntil,
  runService,
  startOpsServerFromConfig,
} from '@tasks/common';
import { DeadLetterProcessor } from './dead-letter-processor.js';

const config = configFromEnvironment();
const logger = createLogger(config, 'dlq-processor');

runService(logger, async (signal) => {
  await retryUntil('preparing the database', () => prepareDatabase(config, logger), logger, signal);
  const ctx = createContext(config, 'dlq-processor', { logger });
  const metrics = createMetrics({ service: 'dlq-processor', defaultMetrics: true });
  const ops = await startOpsServerFromConfig(ctx, metrics);
  const processor = new DeadLetterProcessor(
    { pool: ctx.pool, queue: ctx.queue, logger, clock: ctx.clock, openBlocking: () => ctx.openRedis('fetch'), metrics },
    { batchSize: config.FETCH_BATCH_SIZE, leaseMs: config.LEASE_MS, pollIntervalMs: config.POLL_INTERVAL_MS },
  );
  processor.start();
  logger.info('dead-letter processor started');
  return async () => {
    await processor.stop();
    await ops?.close();
    await ctx.close();
  };
});
