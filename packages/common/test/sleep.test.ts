import { sleep } from '@tasks/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

let warnings: Error[] = [];
const onWarning = (warning: Error) => warnings.push(warning);
beforeEach(() => {
  warnings = [];
  process.on('warning', onWarning);
});
afterEach(() => {
  process.off('warning', onWarning);
});

/** Process warnings are emitted on a later tick: let them arrive. */
const warningsSoFar = async () => {
  await new Promise((resolve) => setImmediate(resolve));
  return warnings.map((w) => `${w.name}: ${w.message}`);
};

describe('sleep', () => {
  it('waits the time when nothing aborts it', async () => {
    const started = performance.now();
    await sleep(30, new AbortController().signal);
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
  });

  it('ends at once when its signal aborts', async () => {
    const abort = new AbortController();
    const started = performance.now();
    const slept = sleep(60_000, abort.signal);
    abort.abort();
    await slept;
    expect(performance.now() - started).toBeLessThan(1_000);
    await sleep(60_000, abort.signal);
  });

  it('runs 1,000 sleeps on one signal without a process warning, to the end or aborted', async () => {
    const abort = new AbortController();
    await Promise.all(Array.from({ length: 1_000 }, () => sleep(5, abort.signal)));
    const long = Promise.all(Array.from({ length: 1_000 }, () => sleep(60_000, abort.signal)));
    abort.abort();
    await long;
    expect(await warningsSoFar()).toEqual([]);
  });
});
