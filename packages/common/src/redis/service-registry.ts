import type { ServiceKeys } from './keys.js';
import { exec } from './multi.js';
import type { QueueRedis } from './scripts.js';

/**
 * The services alive now, as they report themselves: each process (API, scheduler, executor,
 * DLQ processor) reports every few seconds and counts as alive until its report's deadline.
 * Redis's clock decides both when a service was last seen and when its deadline passes
 * (`TIME` inside the scripts), so the hosts' clocks never have to agree. A process that stops
 * reporting is forgotten once its deadline passes; one that stops gracefully is forgotten at once.
 */

/** What a process says about itself. */
export interface ServiceReport {
  /** Unique to this start of this process (see `processId`). */
  id: string;
  /** The service it runs: task-insert, scheduler, executor, dlq-processor. */
  service: string;
  host: string;
  pid: number;
  /** When the process started (its own clock: only shown, never compared). */
  startedAt: string;
  /** What it runs, as it chooses to say (an executor: its concurrency and running tasks). */
  detail: Record<string, unknown>;
}

/** A service alive now, with what Redis's clock says of it. */
export interface LiveService extends ServiceReport {
  /** When it last reported. */
  lastSeen: Date;
  /** How long ago that was, on Redis's clock. */
  lastSeenAgoMs: number;
  /** When it counts as gone unless it reports again. */
  deadline: Date;
}

export interface LiveServices {
  /** Redis's clock when it was read. */
  now: Date;
  /** By service name, then host, then pid. */
  services: LiveService[];
}

/** A process id of a service's own: its name, host and pid, and a random part for restarts that reuse a pid. */
export function processId(service: string, host: string, pid: number): string {
  return `${service}:${host}:${pid}:${crypto.randomUUID().slice(0, 8)}`;
}

interface StoredReport {
  service: string;
  host: string;
  pid: number;
  started_at: string;
  detail: Record<string, unknown>;
}

function parseReport(id: string, json: string): ServiceReport {
  try {
    const stored = JSON.parse(json) as Partial<StoredReport>;
    return {
      id,
      service: typeof stored.service === 'string' ? stored.service : 'unknown',
      host: typeof stored.host === 'string' ? stored.host : '',
      pid: typeof stored.pid === 'number' ? stored.pid : 0,
      startedAt: typeof stored.started_at === 'string' ? stored.started_at : '',
      detail: stored.detail && typeof stored.detail === 'object' ? stored.detail : {},
    };
  } catch {
    // A report no version of this code wrote: the service is alive, what it runs is unknown.
    return { id, service: 'unknown', host: '', pid: 0, startedAt: '', detail: {} };
  }
}

export class ServiceRegistry {
  constructor(
    private readonly redis: QueueRedis,
    private readonly keys: ServiceKeys,
  ) {}

  /** Records `report`: its service counts as alive for `ttlMs` more. Returns when (Redis's clock). */
  async reportAlive(report: ServiceReport, ttlMs: number): Promise<Date> {
    const stored: StoredReport = {
      service: report.service,
      host: report.host,
      pid: report.pid,
      started_at: report.startedAt,
      detail: report.detail,
    };
    const { alive, reports, seen } = this.keys;
    const at = await this.redis.servicesReportAlive(alive, reports, seen, report.id, ttlMs, JSON.stringify(stored));
    return new Date(Number(at));
  }

  /** Forgets the process `id` now (it stopped). */
  async reportStopped(id: string): Promise<void> {
    const { alive, reports, seen } = this.keys;
    await exec(this.redis.multi().zrem(alive, id).hdel(reports, id).hdel(seen, id));
  }

  /** The services alive now. */
  async live(): Promise<LiveServices> {
    const { alive, reports, seen } = this.keys;
    const [now, ...rest] = await this.redis.servicesLive(alive, reports, seen);
    const nowMs = Number(now);
    const services: LiveService[] = [];
    for (let i = 0; i + 3 < rest.length; i += 4) {
      const id = String(rest[i]);
      const seenMs = Number(rest[i + 2]);
      services.push({
        ...parseReport(id, String(rest[i + 3])),
        lastSeen: new Date(seenMs),
        lastSeenAgoMs: Math.max(0, nowMs - seenMs),
        deadline: new Date(Number(rest[i + 1])),
      });
    }
    services.sort((a, b) => a.service.localeCompare(b.service) || a.host.localeCompare(b.host) || a.pid - b.pid);
    return { now: new Date(nowMs), services };
  }
}
