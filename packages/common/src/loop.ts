import { EVENTS } from './events.js';
import { failureBackoffMs, sleep } from './lifecycle.js';
import type { Logger } from './logger.js';

/**
 * What a tick asks for next: another tick at once, a wait of `idleMs` (or until woken), or a
 * wait of its own length (or until woken).
 */
export type TickResult = 'again' | 'idle' | { waitMs: number };

export interface LoopOptions {
  /** Names the loop in its log lines. */
  name: string;
  logger: Logger;
  /** How long an idle tick waits before the next, unless the loop is woken. */
  idleMs: number;
  /** Wait `idleMs` before the first tick. */
  idleFirst?: boolean;
  /** At most one "still failing" line per this many ms while ticks keep failing (default 10 s). */
  failureLogIntervalMs?: number;
  /** Time for the failure log's rate (ms); tests pass their own. */
  now?: () => number;
}

/**
 * The loop every service runs its work in: ticks never overlap, a failed tick is retried
 * after a capped, doubling backoff, and `stop()` waits for the tick in flight. A loop that
 * keeps failing logs its first failure, then a summary at most every `failureLogIntervalMs`
 * (how many failures, the last error), and one line when it recovers: an outage costs a few
 * lines, not one per attempt.
 */
export class Loop {
  private readonly stopping = new AbortController();
  private running: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  private woken = false;
  private readonly failures: FailureLog;

  constructor(
    private readonly tick: (signal: AbortSignal) => Promise<TickResult>,
    private readonly options: LoopOptions,
  ) {
    this.failures = new FailureLog(options.logger, options.name, options.failureLogIntervalMs ?? 10_000, options.now);
  }

  /** Aborted when `stop()` is called; ticks that wait pass it on. */
  get signal(): AbortSignal {
    return this.stopping.signal;
  }

  start(): void {
    this.running ??= this.run();
  }

  /** Ends an idle wait now (new work arrived); a tick in flight is followed by another at once. */
  wake(): void {
    this.woken = true;
    const wake = this.wakeUp;
    this.wakeUp = null;
    wake?.();
  }

  /** Stops after the tick in flight, which it waits for. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.wake();
    await this.running;
  }

  private async run(): Promise<void> {
    const signal = this.stopping.signal;
    if (this.options.idleFirst) await this.idle(this.options.idleMs);
    while (!signal.aborted) {
      this.woken = false;
      let next: TickResult;
      try {
        next = await this.tick(signal);
        this.failures.succeeded();
      } catch (err) {
        if (signal.aborted) break;
        await sleep(failureBackoffMs(this.failures.failed(err)), signal);
        continue;
      }
      if (next !== 'again' && !this.woken) await this.idle(next === 'idle' ? this.options.idleMs : next.waitMs);
    }
  }

  private idle(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.stopping.signal.aborted) return resolve();
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    }).finally(() => {
      this.wakeUp = null;
    });
  }
}

/** Failures in a row of one loop, logged at a bounded rate. */
export class FailureLog {
  private streak = 0;
  private suppressed = 0;
  private since = 0;
  private lastLogged = 0;

  constructor(
    private readonly logger: Logger,
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a failure; returns how many in a row, for the backoff. */
  failed(err: unknown): number {
    const now = this.now();
    this.streak++;
    if (this.streak === 1) {
      this.since = now;
      this.lastLogged = now;
      this.logger.warn({ event: EVENTS.loopFailing, loop: this.name, err }, `${this.name} failed; retrying`);
    } else if (now - this.lastLogged >= this.intervalMs) {
      this.logger.warn(
        {
          event: EVENTS.loopFailing,
          loop: this.name,
          failures: this.streak,
          suppressed: this.suppressed,
          failingForMs: now - this.since,
          err,
        },
        `${this.name} still failing`,
      );
      this.lastLogged = now;
      this.suppressed = 0;
    } else {
      this.suppressed++;
    }
    return this.streak;
  }

  succeeded(): void {
    if (this.streak === 0) return;
    this.logger.info(
      { event: EVENTS.loopRecovered, loop: this.name, failures: this.streak, failingForMs: this.now() - this.since },
      `${this.name} recovered`,
    );
    this.streak = 0;
    this.suppressed = 0;
  }
}
