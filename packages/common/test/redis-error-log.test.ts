import { describe, expect, it } from 'vitest';
import { type ErrorLogEntry, ErrorLogLimiter, REDIS_ERROR_LOG_INTERVAL_MS } from '../src/redis/error-log.js';

function limiter() {
  let now = 1_000_000;
  const logged: ErrorLogEntry[] = [];
  const limit = new ErrorLogLimiter(
    (entry) => logged.push(entry),
    REDIS_ERROR_LOG_INTERVAL_MS,
    () => now,
  );
  return { limit, logged, advance: (ms: number) => (now += ms) };
}

describe('ErrorLogLimiter', () => {
  it('logs the first error at once and at most one per interval, counting those left out', () => {
    const { limit, logged, advance } = limiter();
    const errors = Array.from({ length: 250 }, (_, i) => new Error(`ECONNREFUSED ${i}`));
    // 120 errors a second for a little over two intervals.
    for (const err of errors) {
      limit.error(err);
      advance(REDIS_ERROR_LOG_INTERVAL_MS / 100);
    }
    expect(logged.map((e) => e.suppressed)).toEqual([0, 99, 99]);
    expect(logged.map((e) => e.err)).toEqual([errors[0], errors[100], errors[200]]);
  });

  it('names the cluster node an error came from', () => {
    const { limit, logged } = limiter();
    const err = new Error('connect ECONNREFUSED');
    limit.error(err, '127.0.0.1:7001');
    expect(logged).toEqual([{ err, node: '127.0.0.1:7001', suppressed: 0 }]);
  });

  it('sums up on recovery the errors since the last one, then logs the next error at once', () => {
    const { limit, logged, advance } = limiter();
    expect(limit.recovered()).toBeNull();
    for (let i = 0; i < 5; i++) limit.error(new Error('READONLY'));
    advance(10);
    expect(limit.recovered()).toEqual({ errors: 5, suppressed: 4 });
    expect(limit.recovered()).toBeNull();
    limit.error(new Error('again'));
    expect(logged.map((e) => e.suppressed)).toEqual([0, 0]);
  });
});
