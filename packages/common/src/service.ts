import { type Config, configFromEnvironment } from './config.js';
import { type Context, createContext, prepareDatabase } from './context.js';
import { Heartbeat } from './heartbeat.js';
import { retryUntil, runService } from './lifecycle.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { startOpsServerFromConfig } from './ops-server.js';

export interface ServiceParts {
  config: Config;
  logger: Logger;
  ctx: Context;
  metrics: Metrics;
  /** Aborted at the first signal: a start that waits on a store gives up waiting. */
  signal: AbortSignal;
  /**
   * Resolves once the database is migrated: before `start` is called, unless
   * `startBeforeDatabase`. Rejects when the service is stopped first, or when MySQL refuses
   * MYSQL_URL's credentials or privileges (the service then reports it, stops and exits 1).
   */
  databasePrepared: Promise<void>;
  /** Reports this process alive once `start` has returned; `describe` says what it runs. */
  heartbeat: Heartbeat;
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
 * When a step fails (the API's port is taken, say, or MySQL refuses the credentials), what the
 * steps before it built is closed and the process exits 1.
 */
export function serve(
  name: string,
  start: (parts: ServiceParts) => Promise<() => Promise<void>>,
  options: ServeOptions = { opsServer: true },
): void {
  const config = configFromEnvironment();
  const logger = createLogger(config, name);
  /** The context, once built: a stop out of time drops its connections that do not answer. */
  let context: Context | null = null;
  const run = async (signal: AbortSignal, fail: (err: unknown) => void) => {
    /** How to close what is built, in the order it was built. */
    const built: (() => Promise<void>)[] = [];
    try {
      const prepare = () => prepareDatabase(config, logger);
      const databasePrepared = retryUntil('preparing the database', prepare, logger, signal);
      if (options.startBeforeDatabase) {
        // Started meanwhile: a database that refuses the settings ends the service all the same.
        databasePrepared.catch((err: unknown) => {
          if (!signal.aborted) fail(err);
        });
      } else {
        await databasePrepared;
      }
      const ctx = createContext(config, name, { logger });
      context = ctx;
      built.push(() => ctx.close());
      const metrics = createMetrics({ service: name, defaultMetrics: true });
      const ops = options.opsServer ? await startOpsServerFromConfig(ctx, metrics) : null;
      if (ops) built.push(() => ops.close());
      const heartbeat = new Heartbeat({ store: ctx.store, logger }, { service: name });
      built.push(await start({ config, logger, ctx, metrics, signal, databasePrepared, heartbeat }));
      built.push(heartbeat.start());
    } catch (err) {
      await closeAll(built).catch((closeErr: unknown) => logger.error({ err: closeErr }, 'error while closing'));
      throw err;
    }
    return () => closeAll(built);
  };
  runService(logger, run, {
    shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    dropUnreachable: () => context?.dropUnreachable() ?? 0,
  });
}

/** Closes the last built first; every one is closed even when one fails, then the first failure is thrown. */
async function closeAll(built: (() => Promise<void>)[]): Promise<void> {
  let failure: unknown = null;
  for (const close of [...built].reverse()) {
    try {
      await close();
    } catch (err) {
      failure ??= err;
    }
  }
  if (failure !== null) throw failure;
}
