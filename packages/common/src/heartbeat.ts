import { hostname } from 'node:os';
import type { Logger } from './logger.js';
import { Loop, type TickResult } from './loop.js';
import { processId, type ServiceReport } from './redis/service-registry.js';
import type { TaskStore } from './store/task-store.js';

/** How often a service reports itself alive. */
export const HEARTBEAT_INTERVAL_MS = 5_000;
/** How long a report keeps a service alive: three missed reports and it is forgotten. */
export const HEARTBEAT_TTL_MS = 3 * HEARTBEAT_INTERVAL_MS;
/** How long a stop waits for Redis to forget the process before leaving it to expire. */
const STOP_TIMEOUT_MS = 1_000;

export interface HeartbeatDeps {
  store: Pick<TaskStore, 'reportAlive' | 'reportStopped'>;
  logger: Logger;
}

export interface HeartbeatOptions {
  /** The service this process runs. */
  service: string;
  intervalMs?: number;
  ttlMs?: number;
  host?: string;
  pid?: number;
}

/**
 * Reports this process alive every few seconds (see redis/service-registry.ts), with what it
 * runs; every service gets one from `serve()`. Reports never overlap; while Redis does not
 * answer, they are retried with the loop's backoff and the process drops off the list once its
 * last report runs out. Stopping forgets the process at once.
 */
export class Heartbeat {
  /** This process's id in the list of live services. */
  readonly id: string;
  private readonly loop: Loop;
  private readonly ttlMs: number;
  private readonly report: Omit<ServiceReport, 'detail'>;
  private detail: () => Record<string, unknown> = () => ({});

  constructor(
    private readonly deps: HeartbeatDeps,
    options: HeartbeatOptions,
  ) {
    const host = options.host ?? hostname();
    const pid = options.pid ?? process.pid;
    this.id = processId(options.service, host, pid);
    this.ttlMs = options.ttlMs ?? HEARTBEAT_TTL_MS;
    this.report = { id: this.id, service: options.service, host, pid, startedAt: new Date().toISOString() };
    this.loop = new Loop(() => this.reportOnce(), {
      name: 'reporting alive',
      logger: deps.logger,
      idleMs: options.intervalMs ?? HEARTBEAT_INTERVAL_MS,
    });
  }

  /** What each report says this process runs, read at every report (e.g. an executor's running count). */
  describe(detail: () => Record<string, unknown>): void {
    this.detail = detail;
  }

  /** Reports now, then every interval; returns the function that stops and forgets this process. */
  start(): () => Promise<void> {
    this.loop.start();
    return () => this.stop();
  }

  private async stop(): Promise<void> {
    await this.loop.stop();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, STOP_TIMEOUT_MS);
    });
    const forget = this.deps.store
      .reportStopped(this.id)
      .catch((err: unknown) => this.deps.logger.debug({ err }, 'could not forget this process; its report runs out'));
    await Promise.race([forget, timeout]);
    clearTimeout(timer);
  }

  private async reportOnce(): Promise<TickResult> {
    let detail: Record<string, unknown>;
    try {
      detail = this.detail();
    } catch (err) {
      this.deps.logger.debug({ err }, 'describing this process failed; reporting it without detail');
      detail = {};
    }
    await this.deps.store.reportAlive({ ...this.report, detail }, this.ttlMs);
    return 'idle';
  }
}
