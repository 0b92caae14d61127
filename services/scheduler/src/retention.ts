import { type Logger, Loop, type TaskStore } from '@tasks/common';

export interface RetentionLoopOptions {
  days: number;
  /** Tasks looked at per step. */
  pageSize: number;
  /** Pause between the steps of a pass (ms): retention never takes more than a page at a time. */
  stepPauseMs: number;
  /** Pause between passes (ms). */
  passPauseMs: number;
}

/**
 * Deletes finished tasks older than `days`, a page per step, from whichever scheduler holds
 * the retention lock at the moment (the others skip the step).
 */
export class Retention {
  private readonly loop: Loop;
  private afterId = 0;

  constructor(
    private readonly deps: { store: TaskStore; logger: Logger },
    private readonly options: RetentionLoopOptions,
  ) {
    this.loop = new Loop(() => this.step(), {
      name: 'deleting expired tasks',
      logger: deps.logger,
      // The first step a step's pause after the start; then each step says how long to wait.
      idleMs: options.stepPauseMs,
      idleFirst: true,
    });
  }

  start(): void {
    if (this.options.days > 0) this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  private async step(): Promise<{ waitMs: number }> {
    const { store, logger } = this.deps;
    const step = await store.deleteExpired(this.options, this.afterId);
    if (step === null) return { waitMs: this.options.passPauseMs };
    if (step.completed + step.failed + step.cancelled + step.minutes > 0) {
      logger.info(
        {
          completed: step.completed,
          failed: step.failed,
          cancelled: step.cancelled,
          minutes: step.minutes,
          days: this.options.days,
        },
        'expired tasks deleted',
      );
    }
    this.afterId = step.nextAfterId;
    return { waitMs: this.afterId === 0 ? this.options.passPauseMs : this.options.stepPauseMs };
  }
}
