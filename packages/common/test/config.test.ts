import { type Config, ConfigError, loadConfig, queueKeys } from '@tasks/common';
import { describe, expect, it } from 'vitest';
import { MAX_DURATION_MS } from '../src/config.js';

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
      LOG_PRETTY: 'auto',
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
      MAX_QUEUE_DEPTH: 5_000,
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
    ['LOG_PRETTY', 'maybe', /auto, true or false/],
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

describe('settings that would pass a type check but break the services', () => {
  const durations = Object.keys(loadConfig({})).filter((name) => name.endsWith('_MS'));

  it('knows the duration settings', () => {
    expect(durations).toEqual(expect.arrayContaining(['REQUEST_TIMEOUT_MS', 'LEASE_MS', 'SHUTDOWN_TIMEOUT_MS']));
  });

  it.each(durations)('%s is at most what a timer can wait (2^31-1 ms)', (name) => {
    expect(MAX_DURATION_MS).toBe(2 ** 31 - 1);
    expect(loadConfig({ [name]: String(MAX_DURATION_MS) })[name as keyof Config]).toBe(MAX_DURATION_MS);
    const err = configError({ [name]: String(MAX_DURATION_MS + 1) });
    expect(err.problems).toEqual([`${name}="${MAX_DURATION_MS + 1}": must be at most ${MAX_DURATION_MS}`]);
  });

  it.each([
    ['MYSQL_URL', 'mysql://tasks:50%off@db:3306/tasks', 'password'],
    ['MYSQL_URL', 'mysql://ta%sks@db:3306/tasks', 'user name'],
    ['MYSQL_URL', 'mysql://root@db:3306/tasks%', 'path'],
    ['MYSQL_URL', 'mysql://root@d%zzb:3306/tasks', 'host'],
    ['REDIS_URL', 'redis://:50%off@cache:6379', 'password'],
  ])('rejects %s=%s: its %s cannot be decoded', (name, value, part) => {
    const err = configError({ [name]: value });
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatch(new RegExp(`^${name}=".*": its ${part} has a "%" that does not start an escape`));
    expect(err.message).not.toContain('50%off');
  });

  it('accepts escaped characters in the URLs', () => {
    const config = loadConfig({
      MYSQL_URL: 'mysql://tasks:50%25off%40@db/tasks',
      REDIS_URL: 'redis://:p%2Fw@cache:6379/3',
    });
    expect(config.MYSQL_URL).toBe('mysql://tasks:50%25off%40@db/tasks');
    expect(config.REDIS_URL).toBe('redis://:p%2Fw@cache:6379/3');
  });

  it('rejects a Redis URL whose path is not a database number', () => {
    expect(configError({ REDIS_URL: 'redis://cache:6379/tasks' }).problems).toEqual([
      'REDIS_URL="redis://cache:6379/tasks": its path must be empty or a database number, as in redis://host:6379/0',
    ]);
  });

  it.each([
    [{ QUEUE_KEY: 'jobs', DEAD_LETTER_KEY: 'jobs' }, 'jobs'],
    [{ QUEUE_KEY: 'jobs', DEAD_LETTER_KEY: 'jobs:inflight' }, 'jobs:inflight'],
    [{ QUEUE_KEY: 'jobs', DEAD_LETTER_KEY: 'jobs:inserted' }, 'jobs:inserted'],
    [{ QUEUE_KEY: 'dead:inbox', DEAD_LETTER_KEY: 'dead' }, 'dead:inbox'],
    [{ QUEUE_KEY: 'dead:inbox:leases', DEAD_LETTER_KEY: 'dead' }, 'dead:inbox:leases'],
    [{ QUEUE_KEY: 'dead-letter-queue:inbox', KEY_PREFIX: '{t}:' }, '{t}:dead-letter-queue:inbox'],
  ])('rejects %j: two Redis names would be %s', (env, name) => {
    const err = configError(env);
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatch(/^DEAD_LETTER_KEY=".*": gives the Redis name /);
    expect(err.problems[0]).toContain(`"${name}"`);
  });

  it('accepts a dead-letter key that extends the queue key with a suffix of its own', () => {
    const config = loadConfig({ QUEUE_KEY: 'jobs', DEAD_LETTER_KEY: 'jobs:dead' });
    const keys = queueKeys({ prefix: '', queue: config.QUEUE_KEY, deadLetter: config.DEAD_LETTER_KEY });
    expect(keys.deadLetterInbox.ready).toBe('jobs:dead:inbox');
  });
});
