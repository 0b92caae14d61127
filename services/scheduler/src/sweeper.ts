import {
  EVENTS,
  type Logger,
  Loop,
  type Metrics,
  type RecoverOptions,
  type RecoverResult,
  type TaskStore,
} from '@tasks/common';

export interface SweeperOptions extends RecoverOptions {
  intervalMs: number;
}

/** Most ids named in one "recovered tasks" line. */
const IDS_LOGGED = 50;

/**
 * Runs the recover transition every `intervalMs`: expired leases are returned, and every
 * `processing` task that Redis has no message of is pushed again (or dead-lettered, or failed
 * if its data cannot run). A task lost at any moment is back within grace + interval (one
 * more interval should the sweeper that claimed an interval die before its pass). With several
 * schedulers, one of them sweeps in each interval.
 */
export class Sweeper {
  private readonly loop: Loop;

  constructor(
    private readonly deps: { store: TaskStore; logger: Logger; metrics?: Metrics },
    private readonly options: SweeperOptions,
  ) {
    this.loop = new Loop(
      async () => {
        // With several schedulers, the first to come in each interval does its pass.
        if (await deps.store.takeSweepTurn(Math.floor(options.intervalMs * 0.9))) await this.sweep();
        return 'idle';
      },
      { name: 'sweeping', logger: deps.logger, idleMs: options.intervalMs, idleFirst: true },
    );
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  async sweep(): Promise<RecoverResult> {
    const result = await this.deps.store.recover({ graceMs: this.options.graceMs, pageSize: this.options.pageSize });
    const { metrics, logger } = this.deps;
    metrics?.leasesExpired.inc(result.reaped);
    metrics?.tasksDeadLettered.inc(result.reapedDeadLettered + result.deadLettered.length);
    const ids = (list: number[]) => list.slice(0, IDS_LOGGED);
    if (result.restored > 0) {
      logger.warn({ restored: result.restored }, 'present set rebuilt from the messages Redis holds');
    }
    if (result.reaped + result.repushed.length + result.deadLettered.length + result.invalid.length > 0) {
      logger.warn(
        {
          event: EVENTS.tasksRecovered,
          reaped: result.reaped,
          repushed: result.repushed.length,
          deadLettered: result.deadLettered.length,
          invalid: result.invalid.length,
          repushedIds: ids(result.repushed),
          deadLetteredIds: ids(result.deadLettered),
          invalidIds: ids(result.invalid),
          checked: result.checked,
        },
        'recovered tasks',
      );
    }
    return result;
  }
}
