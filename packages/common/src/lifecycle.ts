import { EVENTS } from './events.js';
import type { Logger } from './logger.js';
import { onParentGone, tellParent } from './parent.js';
import { SettingError } from './setting-error.js';

/**
 * The sleeps waiting on each signal. A signal gets one abort listener that ends all of its
 * sleeps, rather than one listener per sleep: an executor runs CONCURRENCY tasks on one
 * signal, and more than 10 listeners on an AbortSignal make Node.js print a
 * MaxListenersExceededWarning (plain text, among the JSON log lines).
 */
const sleepers = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `wake` when `signal` aborts; returns the function that cancels that. */
function onAbort(signal: AbortSignal, wake: () => void): () => void {
  let waiting = sleepers.get(signal);
  if (!waiting) {
    const created = new Set<() => void>();
    sleepers.set(signal, created);
    signal.addEventListener(
      'abort',
      () => {
        sleepers.delete(signal);
        for (const done of created) done();
      },
      { once: true },
    );
    waiting = created;
  }
  const set = waiting;
  set.add(wake);
  return () => set.delete(wake);
}

/** Waits `ms`, or less if `signal` aborts first; never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const forget = signal ? onAbort(signal, done) : () => true;
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      forget();
      resolve();
    }
  });
}

/** How long to wait after the `failures`-th failure in a row: doubling from `baseMs`, at most 5 s. */
export function failureBackoffMs(failures: number, baseMs = 100): number {
  return Math.min(baseMs * 2 ** failures, 5_000);
}

/**
 * Retries `attempt` with capped backoff until it succeeds or `signal` aborts. A SettingError is
 * not retried: no retry changes a setting.
 */
export async function retryUntil<T>(
  what: string,
  attempt: () => Promise<T>,
  logger: Logger,
  signal?: AbortSignal,
): Promise<T> {
  for (let failures = 0; ; failures++) {
    try {
      return await attempt();
    } catch (err) {
      if (signal?.aborted || err instanceof SettingError) throw err;
      const delay = failureBackoffMs(failures, 250);
      logger.warn({ err, retryInMs: delay }, `${what} failed; retrying`);
      await sleep(delay, signal);
      if (signal?.aborted) throw err;
    }
  }
}

/**
 * How long a process that has closed everything may still take to exit by itself before it
 * is made to: a handle left open somewhere (a socket, a timer) must not keep a stopped or
 * failed service alive.
 */
export const FORCE_EXIT_MS = 2_000;

/**
 * How a service that cannot go on says why: a SettingError as its one line on stderr, as a
 * configuration error is shown (no stack trace: the setting must change, not the code), and the
 * parent that started it (`pnpm start`) is told it needs to add nothing; anything else as a
 * fatal log line with the error.
 */
function reportFailure(logger: Logger, err: unknown): void {
  if (err instanceof SettingError) {
    process.stderr.write(`${err.message}\n`);
    tellParent({ event: EVENTS.startFailed, setting: err.variable });
  } else {
    logger.fatal({ event: EVENTS.startFailed, err }, 'failed to start');
  }
}

export interface RunOptions {
  /**
   * How long a stop may wait on stores (SHUTDOWN_TIMEOUT_MS): once it has passed, the
   * connections that do not answer are dropped (`dropUnreachable`), and should the stop still
   * not be over FORCE_EXIT_MS later, the process exits 1. Without it, a stop takes as long as
   * it takes.
   */
  shutdownTimeoutMs?: number;
  /** Drops the connections to stores that do not answer; returns how many it dropped. */
  dropUnreachable?: () => number;
}

/**
 * Runs a service: `start` builds and starts it and returns its `stop`; when `start` fails it
 * must have closed whatever it had opened. The first SIGTERM or SIGINT calls `stop` (finish
 * or hand back work, close clients) and the process exits 0; a second signal exits at once
 * (130). The parent's going away (see onParentGone) stops it as SIGTERM does. A failure to
 * start, or to stop, exits 1. A service that finds it cannot go on after `start` returned
 * (the API learns a setting is wrong once it listens) calls `fail`: the failure is reported,
 * `stop` is called, and the process exits 1. A stop never waits on an unreachable store
 * longer than the shutdown timeout (see RunOptions). Exit codes are set rather than exiting
 * mid-flight; should a stray handle keep the process alive, it exits FORCE_EXIT_MS later.
 */
export function runService(
  logger: Logger,
  start: (signal: AbortSignal, fail: (err: unknown) => void) => Promise<() => Promise<void>>,
  options: RunOptions = {},
): void {
  const abort = new AbortController();
  let stopping = false;
  let failed = false;
  let stop: (() => Promise<void>) | null = null;
  const timers: NodeJS.Timeout[] = [];

  /** The stop's time is up: drop what does not answer, and leave soon whatever still waits. */
  const overdue = () => {
    const dropped = options.dropUnreachable?.() ?? 0;
    if (dropped > 0) {
      logger.warn(
        { event: EVENTS.stopOverdue, dropped },
        'shutdown timeout passed: dropped the connections to stores that do not answer',
      );
    }
    const leave = setTimeout(() => {
      logger.error({ event: EVENTS.stopOverdue }, 'shutdown timeout passed and the stop is still waiting: exiting');
      process.exit(1);
    }, FORCE_EXIT_MS);
    timers.push(leave.unref());
  };

  const beginStop = () => {
    stopping = true;
    abort.abort();
    if (options.shutdownTimeoutMs !== undefined) timers.push(setTimeout(overdue, options.shutdownTimeoutMs).unref());
    if (stop) void stopNow(stop);
  };

  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal: sig }, 'second signal: exiting now');
      process.exit(130);
    }
    logger.info({ signal: sig }, 'stopping');
    beginStop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const forgetParent = onParentGone(() => {
    if (stopping) return;
    logger.warn({ event: EVENTS.parentGone }, 'the process that started this one is gone: stopping');
    beginStop();
  });

  /** The service cannot go on: say why once, stop it, exit 1. A failure while stopping is the stop's. */
  const fail = (err: unknown) => {
    if (stopping) return;
    failed = true;
    reportFailure(logger, err);
    process.exitCode = 1;
    beginStop();
  };

  /** Nothing is left to do: leave, by force if a handle lingers. */
  const finish = () => {
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
    forgetParent();
    for (const timer of timers) clearTimeout(timer);
    setTimeout(() => process.exit(), FORCE_EXIT_MS).unref();
  };

  const stopNow = async (fn: () => Promise<void>) => {
    try {
      await fn();
      if (!failed) logger.info({ event: EVENTS.stopped }, 'stopped');
    } catch (err) {
      logger.error({ err }, 'error while stopping');
      process.exitCode = 1;
    }
    finish();
  };

  start(abort.signal, fail)
    .then((fn) => {
      stop = fn;
      if (stopping) void stopNow(fn);
    })
    .catch((err: unknown) => {
      if (!stopping) fail(err);
      else if (!failed) logger.info({ event: EVENTS.stopped }, 'stopped before start completed');
      finish();
    });
}
