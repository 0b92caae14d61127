import { type Config, configFromEnvironment } from './config.js';
import { type Context, createContext, prepareDatabase } from './context.js';
import { retryUntil, runService } from './lifecycle.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { startOpsServerFromConfig } from './ops-server.js';

export interface ServiceParts {
  config: Config;
  logger: Logger;
  ctx: Context;
  metrics: Metrics;
  /**
   * Resolves once the database is migrated: before `start` is called, unless
   * `startBeforeDatabase`. Rejects only when the service is stopped first.
   */
  databasePrepared: Promise<void>;
}

export interface ServeOptions {
  /** Serve /healthz, /readyz and /metrics on HEALTH_PORT (the API serves them itself). */
  opsServer: boolean;
  /** Start at once and prepare the database meanwhile (see `databasePrepared`), rather than first. */
  startBeforeDatabase?: boolean;
}

/**
 * What every service's entrypoint does: read and validate the config, migrate the database
 * (retrying until it answers), build the clients and metrics, optionally serve health and
 * metrics, then start the service's own work. `start` returns the function that stops that
 * work; on the first SIGTERM or SIGINT it is called, then everything built here is closed.
 */
export function serve(
  name: string,
  start: (parts: ServiceParts) => Promise<() => Promise<void>>,
  options: ServeOptions = { opsServer: true },
): void {
  const config = configFromEnvironment();
  const logger = createLogger(config, name);
  runService(logger, async (signal) => {
    const prepare = () => prepareDatabase(config, logger);
    const databasePrepared = retryUntil('preparing the database', prepare, logger, signal);
    databasePrepared.catch(() => undefined);
    if (!options.startBeforeDatabase) await databasePrepared;
    const ctx = createContext(config, name, { logger });
    const metrics = createMetrics({ service: name, defaultMetrics: true });
    const ops = options.opsServer ? await startOpsServerFromConfig(ctx, metrics) : null;
    const stop = await start({ config, logger, ctx, metrics, databasePrepared });
    return async () => {
      await stop();
      await ops?.close();
      await ctx.close();
    };
  });
}
