import { isFinal, type Logger, type Task, type TaskStore } from '@tasks/common';

/**
 * The requests of one API process that wait for their tasks to finish (`?wait=`), held until
 * MySQL says each task is final, until each one's own deadline, or until its client goes away.
 *
 * MySQL decides; Redis only wakes. The room listens to the store's finished announcements on
 * one subscription for the whole process, and on each one reads the announced tasks it holds
 * waiters for (one query); and every `pollMs`, while anyone waits, it reads the statuses of
 * every waited task (one query for all), then those of the tasks now final (one more), so an
 * announcement lost with Redis (a dropped subscription, a failover) delays an answer by
 * `pollMs` at most. A wait that ends because its task is final ends with the task as read
 * then: the tasks that finish together are read together, not once per waiter. The room holds
 * at most `maxWaiters` requests: beyond, a request is refused (WaitRoomFullError) before it waits.
 */

export interface WaitRoomOptions {
  /** How often the statuses of the waited tasks are read (WAIT_POLL_MS). */
  pollMs: number;
  /** Most requests waiting at once (MAX_WAITERS). */
  maxWaiters: number;
}

/** What the room needs of the store: the announcements that wake it, and the statuses and tasks it reads. */
export type WaitRoomStore = Pick<TaskStore, 'onFinished' | 'statuses' | 'getTasks'>;

/**
 * How a wait ended: its task is final (`final`) or no longer exists (`gone`) in MySQL, its
 * deadline passed, its client went away (`aborted`), it was left before (`left`), or the room
 * closed (the process stops).
 */
export type WaitEnd = 'final' | 'gone' | 'deadline' | 'aborted' | 'left' | 'closed';

/** How a wait ended, and, when its task was found final, the task as MySQL held it then. */
export interface WaitOutcome {
  end: WaitEnd;
  task: Task | null;
}

/** The room is full: the request was not let in. */
export class WaitRoomFullError extends Error {
  /** Seconds after which a request may find a seat. */
  readonly retryAfterS = 1;

  constructor(readonly maxWaiters: number) {
    super(`${maxWaiters} requests wait for their tasks already (MAX_WAITERS)`);
    this.name = 'WaitRoomFullError';
  }
}

/** A place in the room, taken before the request does anything it would have to undo. */
export interface Seat {
  /**
   * Waits, from now, until task `id` is final (or gone) in MySQL, `timeoutMs` has passed, or
   * `signal` aborts, and says which (with the task, when final). Once per seat; the seat is
   * free once it resolves.
   */
  wait(id: number, timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome>;
  /** Frees the seat; a wait in progress resolves `left`. Harmless twice. */
  leave(): void;
}

interface Waiter {
  id: number;
  end: (how: WaitEnd, task?: Task) => void;
}

/** How the waits that ended so far ended; `notified` and `polled` found their task final (or gone). */
export interface WaitCounts {
  notified: number;
  polled: number;
  deadline: number;
  aborted: number;
  left: number;
  closed: number;
}

export class WaitRoom {
  /** The waiters of each waited task. */
  private readonly waiters = new Map<number, Set<Waiter>>();
  private seats = 0;
  /** Tasks announced finished, to be read. */
  private readonly woken = new Set<number>();
  private checking = false;
  private pollTimer: NodeJS.Timeout | null = null;
  private polling = false;
  private lastPollAt = 0;
  private listening: 'no' | 'opening' | 'yes' = 'no';
  private stopListening: () => void = () => undefined;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly closing = new AbortController();
  private readonly counts: WaitCounts = { notified: 0, polled: 0, deadline: 0, aborted: 0, left: 0, closed: 0 };

  constructor(
    private readonly store: WaitRoomStore,
    private readonly logger: Logger,
    private readonly options: WaitRoomOptions,
  ) {}

  /** Seats taken: requests in the room, waiting or about to. */
  get size(): number {
    return this.seats;
  }

  /** Tasks with at least one waiter. */
  get waitedTasks(): number {
    return this.waiters.size;
  }

  /** How the waits that ended so far ended. */
  get ended(): Readonly<WaitCounts> {
    return { ...this.counts };
  }

  /** A seat in the room; throws WaitRoomFullError when `maxWaiters` are taken. */
  reserve(): Seat {
    if (this.seats >= this.options.maxWaiters) throw new WaitRoomFullError(this.options.maxWaiters);
    this.seats++;
    let free = true;
    let current: Waiter | null = null;
    const release = () => {
      if (!free) return;
      free = false;
      this.seats--;
    };
    return {
      wait: (id, timeoutMs, signal) => {
        if (!free || current) return Promise.resolve<WaitOutcome>({ end: 'left', task: null });
        return new Promise<WaitOutcome>((resolve) => {
          if (this.closing.signal.aborted) {
            release();
            return resolve({ end: 'closed', task: null });
          }
          if (signal?.aborted) {
            release();
            this.counts.aborted++;
            return resolve({ end: 'aborted', task: null });
          }
          const onAbort = () => waiter.end('aborted');
          const timer = setTimeout(() => waiter.end('deadline'), timeoutMs);
          const waiter: Waiter = {
            id,
            end: (how, task) => {
              waiter.end = () => undefined;
              clearTimeout(timer);
              signal?.removeEventListener('abort', onAbort);
              this.remove(waiter);
              this.count(how);
              release();
              resolve({ end: how, task: task ?? null });
            },
          };
          current = waiter;
          signal?.addEventListener('abort', onAbort, { once: true });
          this.add(waiter);
        });
      },
      leave: () => {
        if (current) current.end('left');
        else release();
      },
    };
  }

  /** Ends every wait (`closed`: they answer with what MySQL holds now) and stops listening. */
  close(): void {
    if (this.closing.signal.aborted) return;
    this.closing.abort();
    for (const set of [...this.waiters.values()]) for (const waiter of [...set]) waiter.end('closed');
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.stopListening();
  }

  private count(how: WaitEnd): void {
    if (how === 'deadline' || how === 'aborted' || how === 'left' || how === 'closed') this.counts[how]++;
  }

  private add(waiter: Waiter): void {
    let set = this.waiters.get(waiter.id);
    if (!set) {
      set = new Set();
      this.waiters.set(waiter.id, set);
    }
    set.add(waiter);
    this.listen();
    this.schedulePoll();
  }

  private remove(waiter: Waiter): void {
    const set = this.waiters.get(waiter.id);
    if (!set) return;
    set.delete(waiter);
    if (set.size === 0) this.waiters.delete(waiter.id);
    if (this.waiters.size === 0 && this.pollTimer) {
      clearTimeout(this.pollTimer);
      this.pollTimer = null;
    }
  }

  /** Ends the waits of the tasks of `ids` that are final (with the task, of `tasks`) or gone (missing from it). */
  private settle(ids: number[], tasks: Task[], how: 'notified' | 'polled'): void {
    const byId = new Map(tasks.map((task) => [task.id, task]));
    for (const id of ids) {
      const task = byId.get(id);
      if (task && !isFinal(task.status)) continue;
      const set = this.waiters.get(id);
      if (!set) continue;
      for (const waiter of [...set]) {
        this.counts[how]++;
        if (task) waiter.end('final', task);
        else waiter.end('gone');
      }
    }
  }

  /* ---- Woken by Redis ---- */

  /** Subscribes once, on the first wait; a subscription that fails is tried again (the poll answers meanwhile). */
  private listen(): void {
    if (this.listening !== 'no' || this.closing.signal.aborted) return;
    this.listening = 'opening';
    this.store
      .onFinished((ids) => this.wake(ids), this.closing.signal)
      .then(
        (stop) => {
          if (this.closing.signal.aborted) return stop();
          this.listening = 'yes';
          this.stopListening = stop;
        },
        (err: unknown) => {
          this.listening = 'no';
          if (this.closing.signal.aborted) return;
          this.logger.warn({ err }, 'could not listen for finished tasks; the waits are answered by polling meanwhile');
          this.retryTimer = setTimeout(() => {
            this.retryTimer = null;
            if (this.waiters.size > 0) this.listen();
          }, this.options.pollMs);
          this.retryTimer.unref();
        },
      );
  }

  private wake(ids: number[]): void {
    for (const id of ids) if (this.waiters.has(id)) this.woken.add(id);
    if (this.woken.size > 0) void this.checkWoken();
  }

  /** Reads the woken tasks, one query at a time; those woken meanwhile go in the next. */
  private async checkWoken(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      while (this.woken.size > 0) {
        const ids = [...this.woken];
        this.woken.clear();
        this.settle(ids, await this.store.getTasks(ids), 'notified');
      }
    } catch (err) {
      // The poll reads them again.
      this.woken.clear();
      this.logger.debug({ err }, 'reading the finished tasks failed; the poll will');
    } finally {
      this.checking = false;
    }
  }

  /* ---- The poll ---- */

  /**
   * The next poll: `pollMs` after the last one started (at once if that has passed), or, when
   * none ran since the room was last empty, `pollMs` from now. Never two at once.
   */
  private schedulePoll(): void {
    if (this.pollTimer || this.polling || this.waiters.size === 0 || this.closing.signal.aborted) return;
    const now = performance.now();
    const next = this.lastPollAt + this.options.pollMs;
    const delay = next > now - this.options.pollMs ? Math.max(0, next - now) : this.options.pollMs;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = null;
      void this.poll();
    }, delay);
  }

  private async poll(): Promise<void> {
    this.polling = true;
    this.lastPollAt = performance.now();
    const ids = [...this.waiters.keys()];
    try {
      const statuses = ids.length > 0 ? await this.store.statuses(ids) : new Map();
      // Final or gone: read, together, those still waited for.
      const ended = ids.filter((id) => {
        const status = statuses.get(id);
        return (status === undefined || isFinal(status)) && this.waiters.has(id);
      });
      if (ended.length > 0) this.settle(ended, await this.store.getTasks(ended), 'polled');
    } catch (err) {
      this.logger.warn({ err, waited: ids.length }, 'reading the statuses of the waited tasks failed');
    } finally {
      this.polling = false;
      this.schedulePoll();
    }
  }
}
