import { Writable } from 'node:stream';
import { ConfigError, createLogger, loadConfig, queueKeys } from '@tasks/common';
import { describe, expect, it } from 'vitest';
import { CLUSTER_KEY_PREFIX } from '../src/config.js';
import { hashTag, sharedHashTag } from '../src/redis/keys.js';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

const SEEDS = '127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002';

describe('Redis Cluster settings', () => {
  it('reads the seed nodes, and gives the keys the {tasks} hash tag when KEY_PREFIX is empty', () => {
    const config = loadConfig({ REDIS_CLUSTER_NODES: SEEDS });
    expect(config.REDIS_CLUSTER_NODES).toEqual([
      { host: '127.0.0.1', port: 7000 },
      { host: '127.0.0.1', port: 7001 },
      { host: '127.0.0.1', port: 7002 },
    ]);
    expect(config.KEY_PREFIX).toBe(CLUSTER_KEY_PREFIX);
    expect(CLUSTER_KEY_PREFIX).toBe('{tasks}:');
  });

  it('keeps a KEY_PREFIX that carries a hash tag', () => {
    const config = loadConfig({ REDIS_CLUSTER_NODES: 'redis-a:6379, [::1]:7000', KEY_PREFIX: '{orders}:' });
    expect(config.KEY_PREFIX).toBe('{orders}:');
    expect(config.REDIS_CLUSTER_NODES).toEqual([
      { host: 'redis-a', port: 6379 },
      { host: '::1', port: 7000 },
    ]);
  });

  it('refuses to start when the keys would not share one hash tag, naming KEY_PREFIX', () => {
    const [problem, ...rest] = problems({ REDIS_CLUSTER_NODES: SEEDS, KEY_PREFIX: 'tasks:' });
    expect(rest).toEqual([]);
    expect(problem).toMatch(/^KEY_PREFIX="tasks:": .*hash tag.*\{tasks\}:/);
    // A tag in the queue's name alone leaves the dead letters in another slot.
    expect(problems({ REDIS_CLUSTER_NODES: SEEDS, KEY_PREFIX: 'x:', QUEUE_KEY: '{q}task_queue' })[0]).toMatch(
      /^KEY_PREFIX=/,
    );
    // An empty tag `{}` hashes the whole key.
    expect(problems({ REDIS_CLUSTER_NODES: SEEDS, KEY_PREFIX: '{}:' })[0]).toMatch(/^KEY_PREFIX=/);
  });

  it('accepts a tag spelled in the key names themselves when they all share it', () => {
    const config = loadConfig({
      REDIS_CLUSTER_NODES: SEEDS,
      KEY_PREFIX: 'app:',
      QUEUE_KEY: '{q}:task_queue',
      DEAD_LETTER_KEY: '{q}:dead-letter-queue',
    });
    expect(config.KEY_PREFIX).toBe('app:');
    const keys = queueKeys({ prefix: config.KEY_PREFIX, queue: config.QUEUE_KEY, deadLetter: config.DEAD_LETTER_KEY });
    expect(sharedHashTag(keys)).toBe('q');
  });

  it('refuses a node list that is not host:port, and a database other than 0', () => {
    expect(problems({ REDIS_CLUSTER_NODES: '127.0.0.1:7000,127.0.0.1' })[0]).toMatch(
      /^REDIS_CLUSTER_NODES="127.0.0.1:7000,127.0.0.1": "127.0.0.1" is not host:port/,
    );
    expect(problems({ REDIS_CLUSTER_NODES: 'a:99999' })[0]).toMatch(
      /^REDIS_CLUSTER_NODES=.*"a:99999" is not host:port/,
    );
    expect(problems({ REDIS_CLUSTER_NODES: SEEDS, REDIS_URL: 'redis://127.0.0.1:7000/2' })[0]).toMatch(
      /^REDIS_URL=.*database 2.*only database 0/,
    );
  });
});

describe('Redis Sentinel settings', () => {
  it('reads the sentinels and the master name', () => {
    const config = loadConfig({ REDIS_SENTINELS: '127.0.0.1:26379,127.0.0.1:26380', REDIS_SENTINEL_NAME: 'tasks' });
    expect(config.REDIS_SENTINELS).toEqual([
      { host: '127.0.0.1', port: 26379 },
      { host: '127.0.0.1', port: 26380 },
    ]);
    expect(config.KEY_PREFIX).toBe('');
  });

  it('needs the master name, and refuses sentinel settings without sentinels', () => {
    expect(problems({ REDIS_SENTINELS: '127.0.0.1:26379' })).toEqual([
      expect.stringMatching(/^REDIS_SENTINEL_NAME="": must be set with REDIS_SENTINELS/),
    ]);
    expect(problems({ REDIS_SENTINEL_NAME: 'tasks' })).toEqual([
      expect.stringMatching(/^REDIS_SENTINEL_NAME="tasks": has no effect without REDIS_SENTINELS/),
    ]);
  });

  it('cannot be combined with a cluster', () => {
    expect(
      problems({ REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'tasks', REDIS_CLUSTER_NODES: SEEDS }),
    ).toEqual([expect.stringMatching(/^REDIS_SENTINELS=.*cannot be combined with REDIS_CLUSTER_NODES/)]);
  });

  it('never shows the sentinel password, in an error or a log line', () => {
    const [problem] = problems({ REDIS_SENTINEL_PASSWORD: 'sentinel-s3cret' });
    expect(problem).toBe('REDIS_SENTINEL_PASSWORD="[redacted]": has no effect without REDIS_SENTINELS');
    let text = '';
    const stream = new Writable({
      write(chunk, _encoding, done) {
        text += String(chunk);
        done();
      },
    });
    const config = loadConfig({
      REDIS_SENTINELS: '127.0.0.1:26379',
      REDIS_SENTINEL_NAME: 'tasks',
      REDIS_SENTINEL_PASSWORD: 'sentinel-s3cret',
    });
    createLogger({ LOG_LEVEL: 'info', LOG_PRETTY: false }, 'test', stream).info({ config }, 'config');
    expect(text).not.toContain('sentinel-s3cret');
  });
});

describe('hash tags', () => {
  it("follow Redis Cluster's rule: the first {…} with something in it", () => {
    expect(hashTag('{tasks}:task_queue')).toBe('tasks');
    expect(hashTag('a{b}{c}')).toBe('b');
    expect(hashTag('{}x{y}')).toBe(null);
    expect(hashTag('task_queue')).toBe(null);
    expect(hashTag('{open')).toBe(null);
  });

  it('are shared by every stored key only when the prefix carries one', () => {
    const names = { queue: 'task_queue', deadLetter: 'dead-letter-queue' };
    expect(sharedHashTag(queueKeys({ prefix: '{tasks}:', ...names }))).toBe('tasks');
    expect(sharedHashTag(queueKeys({ prefix: '', ...names }))).toBe(null);
  });
});
