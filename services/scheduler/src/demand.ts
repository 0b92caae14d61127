/**
 * How many messages the ready list should hold: about `aheadMs` of the executors' work at the
 * pace they took messages over the last `aheadMs`, at least `floor`, at most `max`.
 *
 * A message on the ready list is out of the claim's reach: priorities and the groups' turns
 * act only on what is still pending. A list as long as the executors need and no longer keeps
 * them busy, and lets a high-priority task or another group's few tasks overtake a backlog
 * within about `aheadMs`: with tasks of a second and executors running 50 at once, 50 messages,
 * not thousands. With fast tasks the pace is high and the list grows to `max` within a few
 * claims (what the executors took in a window is what the next claim may add).
 *
 * The pace is what left the list between two looks: the depth before, plus what this scheduler
 * pushed since, minus the depth now. Messages put back (retries, reaped leases) or pushed by
 * another scheduler count as none taken.
 */
export class ReadyDemand {
  private readonly taken: { at: number; count: number }[] = [];
  private last: { depth: number; pushed: number } | null = null;

  constructor(
    private readonly options: { aheadMs: number; floor: number; max: number },
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The depth the list should have, given its depth now (read just before). */
  target(depth: number): number {
    const at = this.now();
    if (this.last) {
      const count = Math.max(0, this.last.depth + this.last.pushed - depth);
      if (count > 0) this.taken.push({ at, count });
    }
    this.last = { depth, pushed: 0 };
    while (this.taken.length > 0 && (this.taken[0]?.at ?? at) <= at - this.options.aheadMs) this.taken.shift();
    const pace = this.taken.reduce((sum, t) => sum + t.count, 0);
    return Math.min(this.options.max, Math.max(this.options.floor, pace));
  }

  /** Messages this scheduler pushed since the last look. */
  pushed(count: number): void {
    if (this.last) this.last.pushed += count;
  }
}
