import { describe, expect, it } from 'vitest';
import { ReadyDemand } from '../src/demand.js';

/** A demand on a clock the test moves. */
function demand(options = { aheadMs: 1_000, floor: 100, max: 5_000 }) {
  let now = 0;
  const d = new ReadyDemand(options, () => now);
  return { d, advance: (ms: number) => (now += ms) };
}

describe('ReadyDemand', () => {
  it('starts at the floor, and asks for what the executors took over the last window', () => {
    const { d, advance } = demand();
    expect(d.target(0)).toBe(100);
    d.pushed(100);
    // Executors that run 50 at once, tasks of a second: 50 taken, then 50 a second.
    advance(100);
    expect(d.target(50)).toBe(100);
    for (let i = 0; i < 20; i++) {
      advance(100);
      d.pushed(0);
      expect(d.target(i % 2 === 0 ? 45 : 50)).toBeLessThanOrEqual(100);
    }
  });

  it('grows within a few looks when the executors take all it holds at once, up to max', () => {
    const { d, advance } = demand();
    let target = d.target(0);
    const targets = [target];
    for (let look = 0; look < 8; look++) {
      d.pushed(target);
      advance(10);
      target = d.target(0);
      targets.push(target);
    }
    expect(targets.slice(0, 7)).toEqual([100, 100, 200, 400, 800, 1_600, 3_200]);
    expect(targets.at(-1)).toBe(5_000);
  });

  it('forgets what was taken longer ago than the window', () => {
    const { d, advance } = demand();
    d.target(0);
    d.pushed(3_000);
    advance(10);
    expect(d.target(0)).toBe(3_000);
    advance(1_000);
    expect(d.target(0)).toBe(100);
  });

  it('counts messages put back or pushed by another scheduler as none taken', () => {
    const { d, advance } = demand();
    d.target(500);
    advance(10);
    expect(d.target(800)).toBe(100);
  });
});
