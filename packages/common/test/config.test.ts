import { ConfigError, loadConfig } from '@tasks/common';
import { describe, expect, it } from 'vitest';

/** The ConfigError `loadConfig(env)` throws; fails the test when it does not throw one. */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it("defaults the knobs to the original's names and behaviour", () => {
    expect(loadConfig({})).toMatchObject({
      MYSQL_URL: 'mysql://root@127.0.0.1:3306/tasks',
      REDIS_URL: 'redis://127.0.0.1:6379',
      KEY_PREFIX: '',
      QUEUE_KEY: 'task_queue',
      DEAD_LETTER_KEY: 'dead-letter-queue',
      LOG_LEVEL: 'info',
      LOG_PRETTY: false,
      HOST: '0.0.0.0',
      PORT: 8000,
      BODY_LIMIT_BYTES: 65_536,
      MAX_MESSAGE_LENGTH: 10_000,
      MAX_TASK_TIME_S: 3_600,
      FAILURE_RATE: 0.2,
      MAX_ATTEMPTS: 3,
      RETRY_BACKOFF_MS: 1_000,
      RETRY_BACKOFF_MAX_MS: 60_000,
      CONCURRENCY: 1_000,
      LEASE_MS: 30_000,
      POLL_INTERVAL_MS: 1_000,
      SCHEDULER_BATCH_SIZE: 1_000,
      MAX_QUEUE_DEPTH: 50_000,
      SWEEP_GRACE_MS: 10_000,
      DEAD_LETTER_RETENTION: 10_000,
    });
  });

  it('reads values from the environment, converting numbers and booleans', () => {
    const config = loadConfig({
      MYSQL_URL: 'mysql://app:secret@db:3306/tasks',
      REDIS_URL: 'rediss://cache:6380/2',
      FAILURE_RATE: '0.5',
      CONCURRENCY: '4',
      RETRY_BACKOFF_MS: '0',
      LOG_PRETTY: 'true',
      KEY_PREFIX: '{tasks}:',
    });
    expect(config).toMatchObject({
      MYSQL_URL: 'mysql://app:secret@db:3306/tasks',
      REDIS_URL: 'rediss://cache:6380/2',
      FAILURE_RATE: 0.5,
      CONCURRENCY: 4,
      RETRY_BACKOFF_MS: 0,
      LOG_PRETTY: true,
      KEY_PREFIX: '{tasks}:',
    });
  });

  it('treats an empty variable as unset and ignores variables it does not know', () => {
    const config = loadConfig({ PORT: '', FAILURE_RATE: '', PATH: '/usr/bin', HOME: '/root' });
    expect(config.PORT).toBe(8000);
    expect(config.FAILURE_RATE).toBe(0.2);
    expect(config).not.toHaveProperty('PATH');
  });

  it.each([
    ['FAILURE_RATE', '2', /between 0 and 1/],
    ['FAILURE_RATE', '-0.1', /between 0 and 1/],
    ['CONCURRENCY', 'abc', /must be a number/],
    ['CONCURRENCY', '1.5', /whole number/],
    ['CONCURRENCY', '0', /at least 1/],
    ['MAX_ATTEMPTS', '0', /at least 1/],
    ['PORT', '70000', /at most 65535/],
    ['MYSQL_URL', 'http://x', /mysql:\/\//],
    ['MYSQL_URL', 'not a url', /mysql:\/\//],
    ['REDIS_URL', 'mysql://x', /redis:\/\//],
    ['LOG_LEVEL', 'loud', /.+/],
    ['LOG_PRETTY', 'maybe', /true or false/],
  ])('rejects %s=%s with a ConfigError naming the variable', (name, value, reason) => {
    const err = configError({ [name]: value });
    expect(err.message).toContain(`${name}=`);
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatch(reason);
  });

  it('names every bad variable at once', () => {
    const err = configError({ FAILURE_RATE: '2', CONCURRENCY: 'abc', MYSQL_URL: 'http://x', PORT: '8001' });
    expect(err.problems.map((p) => p.split('=')[0]).sort()).toEqual(['CONCURRENCY', 'FAILURE_RATE', 'MYSQL_URL']);
  });
});
