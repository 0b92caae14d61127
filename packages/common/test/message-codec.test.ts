import type { QueueMessage, SimulatedMessage } from '@tasks/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withIncludes } from '../src/redis/scripts.js';
import {
  cutText,
  decodeMessage,
  encodeDeadLetter,
  encodeInvalidEntry,
  encodeMessage,
} from '../src/wire/message-codec.js';
import { createTestEnv, type TestEnv } from './support/store-env.js';

/**
 * The wire format has two writers: message-codec.ts and its Lua twin, lua/includes/message.lua
 * (reap.lua builds messages and dead letters in Redis). They must write the same bytes, and read
 * with the same rules.
 */

let t: TestEnv;
beforeAll(async () => {
  t = await createTestEnv();
});
afterAll(async () => {
  await t.cleanup();
});

/** Runs `body` (Lua, after the codec's functions) in Redis with `args` as ARGV. */
async function lua(body: string, ...args: string[]): Promise<unknown> {
  return t.ctx.redis.eval(withIncludes(`--@include message\n${body}`), 0, ...args);
}

const MESSAGES: SimulatedMessage[] = [
  { id: 1, message: 'spiderman 3', time: 3, tries: 0, run: 1 },
  { id: 9_007_199_254_740_991, message: '', time: 86_400, tries: 1_000, run: 4_294_967_295 },
  { id: 42, message: 'quotes " and \\ backslash / slash', time: 0, tries: 2, run: 0 },
  { id: 43, message: 'controls \u0000\u0001\b\t\n\u000b\f\r\u001f and DEL \u007f', time: 1, tries: 0, run: 7 },
  { id: 44, message: 'unicode é ☃ 𝄞 中文 🙂', time: 5, tries: 1, run: 2 },
  { id: 45, message: '<script>alert(1)</script> \u2028 \u2029', time: 2, tries: 0, run: 1 },
];

/** Messages of other types, and messages with a task's own deadline and attempts. */
const OTHER_MESSAGES: QueueMessage[] = [
  { id: 46, type: 'webhook', tries: 0, run: 1 },
  { id: 47, type: 'a.b:c_d-9', tries: 2, run: 3, timeout_ms: 86_400_000, max_attempts: 1_000 },
  { id: 48, message: 'with a deadline', time: 1, tries: 0, run: 1, timeout_ms: 1_500 },
  { id: 49, type: 'T', tries: 1, run: 1, max_attempts: 5 },
];

/** A Lua message table built from the TypeScript one, field by field. */
const TABLE =
  'local m = {id = tonumber(ARGV[1]), message = ARGV[2], time = tonumber(ARGV[3]), tries = tonumber(ARGV[4]), run = tonumber(ARGV[5])}';
const argsOf = (m: SimulatedMessage) => [String(m.id), m.message, String(m.time), String(m.tries), String(m.run)];

describe('the message codec, in TypeScript and in Lua', () => {
  it('writes the same bytes for a message', async () => {
    for (const m of MESSAGES) {
      expect(await lua(`${TABLE}\nreturn encode_message(m)`, ...argsOf(m))).toBe(encodeMessage(m));
    }
  });

  it('writes the same bytes for a dead letter', async () => {
    for (const m of MESSAGES) {
      const error = `boom: ${m.message}`;
      const failedAt = '2026-11-29T06:00:00.000Z';
      const written = await lua(
        `${TABLE}\nreturn encode_dead_letter(m, ARGV[6], ARGV[7])`,
        ...argsOf(m),
        error,
        failedAt,
      );
      expect(written).toBe(encodeDeadLetter({ ...m, error, failed_at: failedAt }));
    }
  });

  it('writes the same bytes for an invalid entry', async () => {
    const raw = 'not json: "quoted" \n and \u001b[31m an escape';
    const written = await lua(
      'return encode_invalid_entry(ARGV[1], ARGV[2], ARGV[3])',
      'invalid message: not JSON',
      raw,
      'x',
    );
    expect(written).toBe(encodeInvalidEntry({ error: 'invalid message: not JSON', raw, failed_at: 'x' }));
  });

  it('cuts long text at the same byte as TypeScript, whatever character straddles the limit', async () => {
    const max = 10_000;
    // Characters of 1, 2, 3 and 4 bytes, each placed so that it straddles the cut.
    for (const wide of ['a', 'é', '☃', '𝄞']) {
      for (let shift = 0; shift < 4; shift++) {
        const raw = `${'x'.repeat(max - 3 - shift)}${wide.repeat(2_000)}`;
        const written = await lua('return encode_invalid_entry(ARGV[1], ARGV[2], ARGV[3])', 'e', raw, 'x');
        const expected = encodeInvalidEntry({ error: 'e', raw, failed_at: 'x' });
        expect(written).toBe(expected);
        const kept = (JSON.parse(expected) as { raw: string }).raw;
        expect(Buffer.byteLength(kept)).toBeLessThanOrEqual(max);
        expect(kept.endsWith('…')).toBe(true);
        expect(cutText(raw, max)).toBe(kept);
      }
    }
  });

  it('reads back what it writes, and refuses what TypeScript refuses, with the same reason', async () => {
    const read = `local m, why = decode_message(ARGV[1])
      if m then return encode_message(m) end
      return 'invalid message: ' .. why`;
    for (const m of [...MESSAGES, ...OTHER_MESSAGES]) expect(await lua(read, encodeMessage(m))).toBe(encodeMessage(m));
    // The original's bytes, for a message of the original's work.
    expect(encodeMessage({ id: 7, message: 'm', time: 1, tries: 0, run: 1 })).toBe(
      '{"id":7,"message":"m","time":1,"tries":0,"run":1}',
    );
    const bad = [
      'not json',
      '"a string"',
      '[1, 2]',
      '{"id":0,"message":"m","time":1,"tries":0}',
      '{"id":1,"message":5,"time":1,"tries":0}',
      '{"id":1,"message":"m","time":1.5,"tries":0}',
      '{"id":1,"message":"m","time":1,"tries":4294967295}',
      '{"id":1,"message":"m","time":1,"tries":0,"run":-1}',
      '{"id":1,"type":"simulated","tries":0,"run":1}',
      '{"id":1,"type":"9lives","tries":0,"run":1}',
      '{"id":1,"type":"webhook","tries":0,"run":1,"timeout_ms":0}',
      '{"id":1,"type":"webhook","tries":0,"run":1,"max_attempts":1001}',
      '{"id":1,"message":"m","time":1,"tries":0,"run":1,"timeout_ms":86400001}',
    ];
    for (const raw of bad) {
      const decoded = decodeMessage(raw);
      expect(decoded.ok).toBe(false);
      expect(await lua(read, raw)).toBe(decoded.ok ? '' : decoded.reason);
    }
    // A message of before runs were counted is of run 0, on both sides.
    const old = '{"id":7,"message":"m","time":1,"tries":0}';
    expect(await lua(read, old)).toBe(encodeMessage({ id: 7, message: 'm', time: 1, tries: 0, run: 0 }));
    expect(decodeMessage(old)).toEqual({ ok: true, value: { id: 7, message: 'm', time: 1, tries: 0, run: 0 } });
  });
});
