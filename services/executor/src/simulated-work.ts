import { type SimulatedMessage, sleep } from '@tasks/common';

/**
 * What an executor does with a task; throws (or rejects) when the task fails. `signal()` is the
 * try's abort signal (its deadline, a cancel, a shutdown), made when first asked for: most
 * simulated tasks never wait, and never need one.
 */
export type Work = (message: SimulatedMessage, signal: () => AbortSignal) => Promise<void>;

export class SimulatedFailure extends Error {
  constructor(failureRate: number) {
    super(`simulated failure (FAILURE_RATE=${failureRate})`);
    this.name = 'SimulatedFailure';
  }
}

/**
 * The original's work: wait `time` seconds, then fail with probability `failureRate`.
 * `random` is injectable so tests can decide the outcome.
 */
export function simulatedWork(failureRate: number, random: () => number = Math.random): Work {
  return async (message, signal) => {
    if (message.time > 0) {
      await sleep(message.time * 1000, signal());
      if (signal().aborted) throw new Error('stopped before the task finished');
    }
    if (random() < failureRate) throw new SimulatedFailure(failureRate);
  };
}
