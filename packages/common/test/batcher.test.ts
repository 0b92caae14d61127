import { Batcher } from '@tasks/common';
import { describe, expect, it } from 'vitest';

class Poisoned extends Error {}
class Outage extends Error {}

/** A write that fails any batch holding a negative item, and records the batches it was given. */
function recordingWrite(batches: number[][], outage = { on: false }) {
  return async (items: number[]): Promise<number[]> => {
    batches.push(items);
    if (outage.on) throw new Outage('down');
    if (items.some((i) => i < 0)) throw new Poisoned(`poison in ${items.join(',')}`);
    return items.map((i) => i * 10);
  };
}

describe('Batcher', () => {
  it('writes items added together in one batch, each with its own result', async () => {
    const batches: number[][] = [];
    const batcher = new Batcher(recordingWrite(batches), 100);
    expect(await Promise.all([1, 2, 3].map((i) => batcher.add(i)))).toEqual([10, 20, 30]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('splits a batch that one item fails, so only that item fails', async () => {
    const batches: number[][] = [];
    const batcher = new Batcher(recordingWrite(batches), 1_000, {
      split: (err) => (err instanceof Poisoned ? 'halves' : null),
    });
    const items = Array.from({ length: 47 }, (_, i) => (i === 23 ? -1 : i + 1));
    const results = await Promise.allSettled(items.map((i) => batcher.add(i)));
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect(results[23]).toMatchObject({ status: 'rejected', reason: expect.any(Poisoned) });
    expect(results.filter((r) => r.status === 'fulfilled').map((r) => r.value)).toEqual(
      items.filter((i) => i > 0).map((i) => i * 10),
    );
    // Bisected: about log2(47) failing batches on the way down, not one write per item.
    expect(batches.length).toBeLessThan(20);
  });

  it('fails every item at once for an error no item causes', async () => {
    const batches: number[][] = [];
    const outage = { on: true };
    const batcher = new Batcher(recordingWrite(batches, outage), 1_000, {
      split: (err) => (err instanceof Poisoned ? 'halves' : null),
    });
    const results = await Promise.allSettled([1, 2, 3, 4].map((i) => batcher.add(i)));
    expect(results.every((r) => r.status === 'rejected' && r.reason instanceof Outage)).toBe(true);
    expect(batches).toEqual([[1, 2, 3, 4]]);
  });

  it('writes each item of a batch alone and at once when told to split into singles', async () => {
    const batches: number[][] = [];
    const batcher = new Batcher(recordingWrite(batches), 1_000, {
      split: (err) => (err instanceof Poisoned ? 'singles' : null),
    });
    const results = await Promise.allSettled([1, -2, 3, 4].map((i) => batcher.add(i)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(batches).toEqual([[1, -2, 3, 4], [1], [-2], [3], [4]]);
  });

  it('starts the next batch beside one that has been stuck for stalledAfterMs, not behind it', async () => {
    let release: () => void = () => undefined;
    const stuck = new Promise<void>((resolve) => {
      release = resolve;
    });
    const written: number[][] = [];
    const batcher = new Batcher<number, number>(
      async (items) => {
        written.push(items);
        if (items.includes(1)) await stuck;
        return items;
      },
      100,
      { stalledAfterMs: 50 },
    );
    const first = batcher.add(1);
    await new Promise((resolve) => setImmediate(resolve));
    const started = performance.now();
    expect(await Promise.all([batcher.add(2), batcher.add(3)])).toEqual([2, 3]);
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(40);
    expect(written).toEqual([[1], [2, 3]]);
    release();
    expect(await first).toBe(1);
    await batcher.drain();
  });

  it('without stalledAfterMs, writes one batch at a time', async () => {
    let release: () => void = () => undefined;
    const stuck = new Promise<void>((resolve) => {
      release = resolve;
    });
    const written: number[][] = [];
    const batcher = new Batcher<number, number>(async (items) => {
      written.push(items);
      if (items.includes(1)) await stuck;
      return items;
    }, 100);
    const first = batcher.add(1);
    await new Promise((resolve) => setImmediate(resolve));
    const later = batcher.add(2);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(written).toEqual([[1]]);
    release();
    expect(await Promise.all([first, later])).toEqual([1, 2]);
  });
});
