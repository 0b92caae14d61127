import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Context } from './context.js';
import { EVENTS } from './events.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { ReadinessReport } from './readiness.js';

export interface OpsServerOptions {
  /** 0 picks a free port (see `OpsServer.port`). */
  port: number;
  host: string;
  metrics: Metrics;
  readiness: () => Promise<ReadinessReport>;
  logger: Logger;
}

export interface OpsServer {
  /** The port it listens on. */
  readonly port: number;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(body);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body));
}

/**
 * The small HTTP server of a service without an API of its own (scheduler, executor, DLQ
 * processor): `GET /healthz` (the process is alive and answering), `GET /readyz` (MySQL answers
 * and Redis takes a write to the queue's keys; 503 otherwise) and `GET /metrics` (Prometheus text).
 */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const { metrics, readiness, logger } = options;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return json(res, 405, { error: 'method_not_allowed', message: `${req.method} is not supported` });
    }
    switch (path) {
      case '/healthz':
        return json(res, 200, { status: 'ok' });
      case '/readyz':
        void readiness().then(
          (report) => json(res, report.ready ? 200 : 503, report),
          (err: unknown) => json(res, 503, { ready: false, error: String(err) }),
        );
        return;
      case '/metrics':
        void metrics.render().then(
          (text) => send(res, 200, metrics.contentType, text),
          (err: unknown) => {
            logger.warn({ err }, 'rendering metrics failed');
            json(res, 500, { error: 'internal', message: 'could not render the metrics' });
          },
        );
        return;
      default:
        return json(res, 404, { error: 'not_found', message: `no route for ${req.method} ${path}` });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => logger.warn({ err }, 'health server error'));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/**
 * Starts a service's ops server on `HEALTH_PORT` (all interfaces of `HOST`), with its queue
 * depths observed on `metrics`. Returns null when `HEALTH_PORT` is 0, or when the port is
 * taken (several processes on one host with the same setting): that is logged, and the
 * service runs on without it.
 */
export async function startOpsServerFromConfig(ctx: Context, metrics: Metrics): Promise<OpsServer | null> {
  const { config, logger } = ctx;
  metrics.observeQueueDepths(
    () => ctx.store.depths(),
    (err) => logger.warn({ err }, 'reading queue depths for /metrics failed'),
  );
  if (config.HEALTH_PORT === 0) return null;
  try {
    const server = await startOpsServer({
      port: config.HEALTH_PORT,
      host: config.HOST,
      metrics,
      readiness: () => ctx.store.readiness(),
      logger,
    });
    logger.info({ event: EVENTS.opsListening, port: server.port }, 'health and metrics listening');
    return server;
  } catch (err) {
    if ((err as { code?: string }).code !== 'EADDRINUSE') throw err;
    logger.error(
      { event: EVENTS.opsPortTaken, port: config.HEALTH_PORT },
      'HEALTH_PORT is taken by another process: this one runs without /healthz, /readyz and /metrics',
    );
    return null;
  }
}
