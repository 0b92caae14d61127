import type { HandlerContext, HandlerTask, Logger, TypeHandler } from '@tasks/common';
import { Piscina } from 'piscina';

/**
 * One try of a task: its handler runs with a signal that aborts at the try's deadline, on a
 * cancel of its task, or when the executor gives up. The try ends at the first of these, or
 * when the handler settles: a handler that ignores its signal is abandoned, not waited for
 * (whatever it does later changes nothing: its run is settled, and fenced). Under thread
 * isolation the handler runs in a worker thread, which is terminated when the try ends early.
 */

export type TryEnd =
  | { kind: 'completed'; result: unknown }
  | { kind: 'failed'; error: string }
  | { kind: 'timed-out'; timeoutMs: number }
  | { kind: 'cancelled' }
  | { kind: 'given-up' };

export interface TryControl {
  /** Ends the try as cancelled (its task was cancelled). */
  cancel(): void;
  /** Ends the try as given up (the executor stops without waiting for it). */
  giveUp(): void;
  /** Settles with how the try ended. */
  ended: Promise<TryEnd>;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message || err.name : String(err);
}

/** What a worker thread is given for one try (see handler-thread.mjs). */
export interface ThreadTry {
  modulePath: string;
  task: HandlerTask;
  deadline: number | null;
}

/** The worker's module, beside src/ and dist/ alike. */
const THREAD_MODULE = new URL('../handler-thread.mjs', import.meta.url).href;

/** The worker threads of the handlers that ask for isolation; made on first use. */
export class ThreadPool {
  private pool: Piscina | null = null;

  constructor(private readonly maxThreads: number) {}

  run(work: ThreadTry, signal: AbortSignal): Promise<unknown> {
    this.pool ??= new Piscina({
      filename: THREAD_MODULE,
      maxThreads: this.maxThreads,
      // A thread is kept only while it works: a terminated one is replaced on demand.
      idleTimeout: 30_000,
    });
    return this.pool.run(work, { signal });
  }

  async close(): Promise<void> {
    await this.pool?.destroy();
  }
}

export interface TryOptions {
  handler: TypeHandler | null;
  /** Runs the original's work when `handler` is null (the try's signal made when asked for). */
  simulated: (signal: () => AbortSignal) => Promise<unknown>;
  task: HandlerTask;
  /** The try's deadline (ms after it starts); none when null. */
  timeoutMs: number | null;
  logger: Logger;
  now: () => number;
  /** The handlers module, for a try in a worker thread; null when the handlers were given in code. */
  modulePath: string | null;
  threads: ThreadPool;
}

export function startTry(options: TryOptions): TryControl {
  const { handler, task, timeoutMs } = options;
  // The try's abort signal, made on first use (a simulated task that never waits asks for none).
  let abort: AbortController | null = null;
  let stopped = false;
  const signal = (): AbortSignal => {
    if (abort === null) {
      abort = new AbortController();
      if (stopped) abort.abort();
    }
    return abort.signal;
  };
  let end: (how: TryEnd) => void = () => undefined;
  const ended = new Promise<TryEnd>((resolve) => {
    end = (how) => {
      clearTimeout(timer);
      if (how.kind !== 'completed' && how.kind !== 'failed') {
        stopped = true;
        abort?.abort();
      }
      resolve(how);
      end = () => undefined;
    };
  });
  const timer = timeoutMs === null ? undefined : setTimeout(() => end({ kind: 'timed-out', timeoutMs }), timeoutMs);
  const deadline = timeoutMs === null ? null : options.now() + timeoutMs;
  let work: Promise<unknown>;
  try {
    if (handler === null) work = options.simulated(signal);
    else if (handler.isolation === 'thread' && options.modulePath !== null) {
      work = options.threads.run({ modulePath: options.modulePath, task, deadline }, signal());
    } else {
      const ctx: HandlerContext = {
        signal: signal(),
        taskId: task.id,
        run: task.run,
        attempt: task.attempt,
        deadline,
        logger: options.logger.child({ taskId: task.id, run: task.run, attempt: task.attempt }),
      };
      work = Promise.resolve(handler.run(task, ctx));
    }
  } catch (err) {
    work = Promise.reject(err);
  }
  work.then(
    (result) => end({ kind: 'completed', result }),
    (err: unknown) => end({ kind: 'failed', error: errorText(err) }),
  );
  return { cancel: () => end({ kind: 'cancelled' }), giveUp: () => end({ kind: 'given-up' }), ended };
}
