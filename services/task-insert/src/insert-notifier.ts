import type { Logger, TaskStore } from '@tasks/common';

/**
 * Tells schedulers that tasks were inserted. Inserts that arrive while an announcement is
 * on its way share the next one, so a burst costs a few PUBLISHes, not one per task. A lost
 * announcement only delays a task until the scheduler's next poll, so failures are logged,
 * never passed to the client.
 */
export class InsertNotifier {
  private sending = false;
  private pending = false;

  constructor(
    private readonly store: TaskStore,
    private readonly logger: Logger,
  ) {}

  notify(): void {
    this.pending = true;
    if (!this.sending) void this.send();
  }

  private async send(): Promise<void> {
    this.sending = true;
    while (this.pending) {
      this.pending = false;
      try {
        await this.store.announceInserted();
      } catch (err) {
        this.logger.debug({ err }, 'could not announce an insert; the scheduler will poll');
        break;
      }
    }
    this.sending = false;
  }
}
