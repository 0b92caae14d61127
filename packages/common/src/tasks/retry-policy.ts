/**
 * The retry policy, in one place: when a failed try is a task's last, and how long to wait
 * before the next. The executors' failed tries, the sweeper's recovery and the reaping of
 * expired leases (reap.lua, which is handed `maxAttempts` and applies isLastAttempt's rule)
 * all decide by it.
 */

export interface RetryPolicy {
  /** Tries a task gets before it is dead-lettered (the original's 3). */
  maxAttempts: number;
  /** The first retry's delay (ms), doubling for each later one; 0 retries at once, as the original did. */
  backoffMs: number;
  /** The longest delay (ms). */
  backoffMaxMs: number;
}

/** What follows a failed try. */
export type NextStep = { last: true } | { last: false; delayMs: number };

/** Whether a task that has failed `failedTries` tries (this one included) is out of attempts. */
export function isLastAttempt(failedTries: number, policy: Pick<RetryPolicy, 'maxAttempts'>): boolean {
  return failedTries >= policy.maxAttempts;
}

/**
 * Delay before retry number `attempt` (1 after the first failure): exponential from
 * `backoffMs`, capped at `backoffMaxMs`, with jitter between half and the whole of it so
 * retries of tasks that failed together spread out.
 */
export function retryDelayMs(attempt: number, policy: RetryPolicy, random: () => number): number {
  if (policy.backoffMs <= 0) return 0;
  const exponential = Math.min(policy.backoffMaxMs, policy.backoffMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exponential * (0.5 + random() / 2));
}

/** What follows the failure of a try of a task that had failed `tries` times before it. */
export function nextStep(tries: number, policy: RetryPolicy, random: () => number): NextStep {
  const failed = tries + 1;
  return isLastAttempt(failed, policy)
    ? { last: true }
    : { last: false, delayMs: retryDelayMs(failed, policy, random) };
}

/** The error a run gets when its executor was lost (its lease ran out before it finished). */
export const EXECUTOR_LOST = 'executor lost: its lease expired before the task finished';
