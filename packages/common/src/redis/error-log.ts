/** A client's errors are logged at most once per this interval; the next line counts those left out. */
export const REDIS_ERROR_LOG_INTERVAL_MS = 10_000;

/** What one logged line reports. */
export interface ErrorLogEntry {
  err: Error;
  /** The cluster node the error came from, for a Redis Cluster client. */
  node?: string;
  /** Errors of this client left out since its previous line. */
  suppressed: number;
}

/**
 * Bounds how often one client's errors reach the log: an outage or a failover makes a client
 * emit an error per reconnect attempt and per node, so the first is logged at once and the
 * rest of each interval only counted. When the client is ready again, `recovered` reports the
 * errors counted since the last line.
 */
export class ErrorLogLimiter {
  private lastAt = Number.NEGATIVE_INFINITY;
  private suppressed = 0;
  private sinceRecovery = 0;

  constructor(
    private readonly log: (entry: ErrorLogEntry) => void,
    private readonly intervalMs = REDIS_ERROR_LOG_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  error(err: Error, node?: string): void {
    this.sinceRecovery++;
    const now = this.now();
    if (now - this.lastAt < this.intervalMs) {
      this.suppressed++;
      return;
    }
    this.lastAt = now;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    this.log(node === undefined ? { err, suppressed } : { err, node, suppressed });
  }

  /**
   * For the line saying the client is ready again: the errors since the previous recovery and
   * those of them never logged; null when there were none. The next error is logged at once.
   */
  recovered(): { errors: number; suppressed: number } | null {
    if (this.sinceRecovery === 0) return null;
    const summary = { errors: this.sinceRecovery, suppressed: this.suppressed };
    this.sinceRecovery = 0;
    this.suppressed = 0;
    this.lastAt = Number.NEGATIVE_INFINITY;
    return summary;
  }
}
