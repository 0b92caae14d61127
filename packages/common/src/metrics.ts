import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { depthsByName, type QueueDepths } from './redis/task-queue.js';

export interface MetricsOptions {
  /** The `service` label every series carries (task-insert, scheduler, executor, dlq-processor, ...). */
  service?: string;
  /** Adds prom-client's process metrics (CPU, memory, event loop lag, GC, handles). */
  defaultMetrics?: boolean;
}

/**
 * How long a scrape waits for the queue depths (a few O(1) commands, answered in
 * milliseconds): a Redis that does not answer leaves the depths out of the scrape, not the
 * scrape out of Prometheus.
 */
export const QUEUE_DEPTH_READ_TIMEOUT_MS = 500;

/** `promise`, or a rejection once `ms` have passed. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Seconds; tasks run from milliseconds (`time` 0) up to MAX_TASK_TIME_S. */
const RUN_SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/**
 * The Prometheus metrics of one process, on a registry of its own (never prom-client's global
 * one, so tests and several services in one process do not share counters). Each service
 * counts what it does; `/metrics` renders them all.
 */
export class Metrics {
  readonly registry = new Registry();

  /** Tasks inserted through the API (idempotent replays are not counted again). */
  readonly tasksInserted: Counter;
  /** Tasks the scheduler claimed in MySQL and pushed onto the ready queue. */
  readonly tasksClaimed: Counter;
  /** Tasks an executor ran successfully and marked completed. */
  readonly tasksCompleted: Counter;
  /** Tasks the DLQ processor marked failed in MySQL (their final status). */
  readonly tasksFailed: Counter;
  /** Failed runs put back for another attempt (after the retry backoff). */
  readonly tasksRetried: Counter;
  /** Tasks moved to the dead letters: out of attempts, or an invalid message. */
  readonly tasksDeadLettered: Counter;
  /** Failed tasks an operator put back to pending (API, dashboard or CLI). */
  readonly tasksRedriven: Counter;
  /** Tasks cancelled (API, dashboard or CLI), and runs an executor ended because of a cancel. */
  readonly tasksCancelled: Counter;
  /** Tries that passed their deadline. */
  readonly tasksTimedOut: Counter;
  /** Leases that ran out (their executor died or hung); the task went back or to the dead letters. */
  readonly leasesExpired: Counter;
  /** How long runs took, by outcome (`completed` or `failed`). */
  readonly taskRunSeconds: Histogram<'outcome'>;

  private depthGauge: Gauge<'queue'> | null = null;
  private insertQueueGauge: Gauge | null = null;
  private readInsertQueue: () => number = () => 0;
  private readDepths: () => Promise<QueueDepths> = async () => {
    throw new Error('queue depths are not observed');
  };
  private onDepthError: (err: unknown) => void = () => undefined;

  constructor(options: MetricsOptions = {}) {
    if (options.service) this.registry.setDefaultLabels({ service: options.service });
    const registers = [this.registry];
    const counter = (name: string, help: string) => new Counter({ name, help, registers });
    this.tasksInserted = counter('tasks_inserted_total', 'Tasks inserted through the API.');
    this.tasksClaimed = counter('tasks_claimed_total', 'Tasks claimed by the scheduler and pushed onto the queue.');
    this.tasksCompleted = counter('tasks_completed_total', 'Tasks run successfully and marked completed.');
    this.tasksFailed = counter('tasks_failed_total', 'Dead-lettered tasks marked failed in MySQL.');
    this.tasksRetried = counter('tasks_retried_total', 'Failed runs scheduled for another attempt.');
    this.tasksDeadLettered = counter('tasks_dead_lettered_total', 'Tasks moved to the dead-letter queue.');
    this.tasksRedriven = counter('tasks_redriven_total', 'Failed tasks put back to pending by an operator.');
    this.tasksCancelled = counter(
      'tasks_cancelled_total',
      'Tasks cancelled (the API), and runs ended because their task was cancelled (an executor).',
    );
    this.tasksTimedOut = counter('tasks_timed_out_total', 'Tries that passed their deadline.');
    this.leasesExpired = counter('leases_expired_total', 'Leases that ran out before their task was settled.');
    this.taskRunSeconds = new Histogram({
      name: 'task_run_seconds',
      help: 'Run time of tasks, by outcome.',
      labelNames: ['outcome'],
      buckets: RUN_SECONDS_BUCKETS,
      registers,
    });
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Adds `queue_depth{queue=ready|delayed|inflight|dead_letters|dead_letter_inbox}`, read
   * with `read` at every scrape (a second call replaces the reader). Should reading fail
   * (Redis is down) or take more than QUEUE_DEPTH_READ_TIMEOUT_MS (Redis does not answer), the
   * scrape still answers, without depths, and `onError` hears why.
   */
  observeQueueDepths(read: () => Promise<QueueDepths>, onError: (err: unknown) => void = () => undefined): void {
    this.readDepths = read;
    this.onDepthError = onError;
    if (this.depthGauge) return;
    const metrics = this;
    this.depthGauge = new Gauge({
      name: 'queue_depth',
      help: 'Messages in each Redis structure of the queue, read at scrape time.',
      labelNames: ['queue'],
      registers: [this.registry],
      async collect() {
        this.reset();
        try {
          const depths = await within(metrics.readDepths(), QUEUE_DEPTH_READ_TIMEOUT_MS, 'reading the queue depths');
          for (const [queue, depth] of Object.entries(depthsByName(depths))) this.set({ queue }, depth);
        } catch (err) {
          metrics.onDepthError(err);
        }
      },
    });
  }

  /**
   * Adds `insert_queue_depth`, the inserts this API process holds waiting for the database
   * (queued, or in the batch being written), read with `read` at every scrape.
   */
  observeInsertQueue(read: () => number): void {
    this.readInsertQueue = read;
    if (this.insertQueueGauge) return;
    const metrics = this;
    this.insertQueueGauge = new Gauge({
      name: 'insert_queue_depth',
      help: 'Inserts waiting for the database in this API process, queued or being written.',
      registers: [this.registry],
      collect() {
        this.set(metrics.readInsertQueue());
      },
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text for `/metrics`. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}

export function createMetrics(options: MetricsOptions = {}): Metrics {
  return new Metrics(options);
}
