import { readFileSync } from 'node:fs';
import { MESSAGE_LIMITS } from '../wire/message-codec.js';
import type { Redis } from './client.js';

/** `packages/common/lua`, the same from `src/redis` and from `dist/redis`. */
const LUA_DIR = new URL('../../lua/', import.meta.url);

type Arg = string | number;

/** The Lua scripts as ioredis commands; each script's header documents its KEYS and ARGV. */
export interface QueueCommands {
  queueFetch(k1: Arg, k2: Arg, k3: Arg, k4: Arg, ...argv: Arg[]): Promise<(string | number)[]>;
  queueExtend(k1: Arg, ...argv: Arg[]): Promise<number>;
  queueRetry(k1: Arg, k2: Arg, k3: Arg, k4: Arg, ...argv: Arg[]): Promise<number[]>;
  queueRelease(k1: Arg, k2: Arg, k3: Arg, ...tokens: Arg[]): Promise<number>;
  queueDeadLetter(k1: Arg, k2: Arg, k3: Arg, k4: Arg, k5: Arg, ...argv: Arg[]): Promise<number[]>;
  queueReap(k1: Arg, k2: Arg, k3: Arg, k4: Arg, k5: Arg, ...argv: Arg[]): Promise<[number, number]>;
  servicesReportAlive(k1: Arg, k2: Arg, k3: Arg, ...argv: Arg[]): Promise<number>;
  servicesLive(k1: Arg, k2: Arg, k3: Arg): Promise<(string | number)[]>;
}

export type QueueRedis = Redis & QueueCommands;

const SCRIPTS: [keyof QueueCommands, string, number][] = [
  ['queueFetch', 'fetch.lua', 4],
  ['queueExtend', 'extend.lua', 1],
  ['queueRetry', 'retry.lua', 4],
  ['queueRelease', 'release.lua', 3],
  ['queueDeadLetter', 'dead-letter.lua', 5],
  ['queueReap', 'reap.lua', 5],
  ['servicesReportAlive', 'report-alive.lua', 3],
  ['servicesLive', 'live-services.lua', 3],
];

/**
 * A script's source with each `--@include name` line replaced by `lua/includes/name.lua`: the
 * fragments several scripts share (Redis's clock, the message codec) are written once.
 */
export function luaSource(file: string): string {
  return withIncludes(readFileSync(new URL(file, LUA_DIR), 'utf8'));
}

/**
 * The codec's MESSAGE_LIMITS as a Lua table `LIMITS` (snake_case names), so the scripts check
 * and cut with the very numbers TypeScript uses.
 */
const LIMITS_TABLE = `local LIMITS = { ${Object.entries(MESSAGE_LIMITS)
  .map(([name, value]) => `${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)} = ${value}`)
  .join(', ')} }\n`;

/**
 * Lua source with each `--@include name` line replaced by `lua/includes/name.lua`; the
 * message include is preceded by LIMITS.
 */
export function withIncludes(source: string): string {
  return source.replace(/^--@include ([a-z-]+)$/gm, (_line, name: string) => {
    const include = readFileSync(new URL(`includes/${name}.lua`, LUA_DIR), 'utf8');
    return name === 'message' ? `${LIMITS_TABLE}${include}` : include;
  });
}

const sources = new Map(SCRIPTS.map(([, file]) => [file, luaSource(file)]));

/** Registers the scripts on a client (once; ioredis then sends EVALSHA, falling back to EVAL). */
export function withQueueCommands(redis: Redis): QueueRedis {
  const target = redis as QueueRedis;
  if (typeof target.queueFetch === 'function') return target;
  for (const [name, file, numberOfKeys] of SCRIPTS) {
    redis.defineCommand(name, { numberOfKeys, lua: sources.get(file) ?? '' });
  }
  return target;
}
