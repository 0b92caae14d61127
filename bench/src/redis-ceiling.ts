import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { progress } from './progress.js';
import { deleteKeys } from './redis-keys.js';

const run = promisify(execFile);

export interface RedisFigures {
  /** LPUSH and RPOP per second, 50 clients, one command per round trip. */
  unpipelined: number;
  /** The same with 16 commands per round trip. */
  pipelined: number;
}

async function listOpsPerSecond(redisUrl: string, key: string, requests: number, pipeline: number): Promise<number> {
  const url = new URL(redisUrl);
  let sum = 0;
  for (const command of [
    ['lpush', key, 'x'],
    ['rpop', key],
  ]) {
    const { stdout } = await run(
      'redis-benchmark',
      ['-h', url.hostname, '-p', url.port || '6379', '-n', String(requests), '-c', '50', '-P', String(pipeline)]
        .concat(['--csv'])
        .concat(command),
      { timeout: 60_000 },
    );
    // --csv: a header line, then "<command>","<requests per second>",...
    const line = stdout.trim().split('\n').at(-1) ?? '';
    const rps = Number(line.split(',')[1]?.replaceAll('"', ''));
    if (!Number.isFinite(rps)) throw new Error(`unexpected redis-benchmark output: ${stdout}`);
    sum += rps;
  }
  return sum / 2;
}

/**
 * What Redis itself answers for list operations (LPUSH, RPOP on a key under `prefix`), with
 * redis-benchmark; null when redis-benchmark is not installed.
 */
export async function measureRedis(redisUrl: string, prefix: string): Promise<RedisFigures | null> {
  const key = `${prefix}redis-reference`;
  const redis = new Redis(redisUrl);
  try {
    await run('redis-benchmark', ['--version']);
  } catch {
    progress('redis-benchmark not found: skipping the Redis reference figures');
    redis.disconnect();
    return null;
  }
  try {
    const unpipelined = await listOpsPerSecond(redisUrl, key, 100_000, 1);
    const pipelined = await listOpsPerSecond(redisUrl, key, 1_000_000, 16);
    progress(`redis: ${unpipelined.toFixed(0)} list ops/s unpipelined, ${pipelined.toFixed(0)} pipelined`);
    return { unpipelined, pipelined };
  } finally {
    await deleteKeys(redis, key);
    redis.disconnect();
  }
}
