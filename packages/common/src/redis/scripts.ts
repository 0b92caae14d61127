import { readFileSync } from 'node:fs';
import type { Redis } from './client.js';

/** `packages/common/lua`, the same from `src/redis` and from `dist/redis`. */
const LUA_DIR = new URL('../../lua/', import.meta.url);

type Arg = string | number;

/** The Lua scripts as ioredis commands; each script's header documents its KEYS and ARGV. */
export interface QueueCommands {
  queueFetch(k1: Arg, k2: Arg, k3: Arg, k4: Arg, ...argv: Arg[]): Promise<(string | number)[]>;
  queueAck(k1: Arg, k2: Arg, ...tokens: Arg[]): Promise<number>;
  queueRetry(k1: Arg, k2: Arg, k3: Arg, k4: Arg, ...argv: Arg[]): Promise<number[]>;
  queueRelease(k1: Arg, k2: Arg, k3: Arg, ...tokens: Arg[]): Promise<number>;
  queueDeadLetter(k1: Arg, k2: Arg, k3: Arg, k4: Arg, ...argv: Arg[]): Promise<number>;
  queueReap(k1: Arg, k2: Arg, k3: Arg, k4: Arg, k5: Arg, ...argv: Arg[]): Promise<[number, number]>;
  queueFindMissing(k1: Arg, k2: Arg, k3: Arg, k4: Arg, k5: Arg, ...ids: Arg[]): Promise<string[]>;
}

export type QueueRedis = Redis & QueueCommands;

const SCRIPTS: [keyof QueueCommands, string, number][] = [
  ['queueFetch', 'fetch.lua', 4],
  ['queueAck', 'ack.lua', 2],
  ['queueRetry', 'retry.lua', 4],
  ['queueRelease', 'release.lua', 3],
  ['queueDeadLetter', 'dead-letter.lua', 4],
  ['queueReap', 'reap.lua', 5],
  ['queueFindMissing', 'find-missing.lua', 5],
];

const sources = new Map(SCRIPTS.map(([, file]) => [file, readFileSync(new URL(file, LUA_DIR), 'utf8')]));

/** Registers the scripts on a client (once; ioredis then sends EVALSHA, falling back to EVAL). */
export function withQueueCommands(redis: Redis): QueueRedis {
  const target = redis as QueueRedis;
  if (typeof target.queueFetch === 'function') return target;
  for (const [name, file, numberOfKeys] of SCRIPTS) {
    redis.defineCommand(name, { numberOfKeys, lua: sources.get(file) ?? '' });
  }
  return target;
}
