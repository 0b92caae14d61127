import { z } from 'zod';

export interface TaskInputLimits {
  maxMessageLength: number;
  maxTimeS: number;
}

/** The fields of the body of `POST /tasks`; any other field is ignored, as the original ignored it. */
export const TASK_INPUT_FIELDS = ['message', 'time'] as const;

/*
 * The original validated the body with pydantic 2 in lax mode (`message: str`, `time: int`,
 * other fields ignored). These rules are pydantic's, so that every body the original accepted
 * is accepted here with the same meaning:
 *
 * - `time` (int): an integer; a float with no fractional part (3.0, 1e2); true or false (1, 0);
 *   a string holding a whole number, as pydantic-core's `str_as_int` reads it (below). Not a
 *   fractional or non-finite number, null, a list or an object.
 * - `message` (str): a string only, empty included; not a number, a boolean or null.
 *
 * On top of those, what can never run or never be stored is refused: a negative `time`, one
 * above `maxTimeS`, a message longer than `maxMessageLength`, a message that is not
 * well-formed Unicode (a lone UTF-16 surrogate, which no database accepts as JSON text).
 */

/** Unicode's White_Space characters: what pydantic strips around a number (Rust's `str::trim`). */
const WHITE_SPACE = '[\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]+';
const AROUND_WHITE_SPACE = new RegExp(`^${WHITE_SPACE}|${WHITE_SPACE}$`, 'g');
/** A JSON integer literal: pydantic-core's first try (jiter's `NumberInt`). */
const JSON_INT = /^-?(?:0|[1-9][0-9]*)$/;
/** With the `u` flag a surrogate pair is one code point, so this matches lone surrogates only. */
const LONE_SURROGATE = /\p{Cs}/u;

function jsonInt(text: string): number | undefined {
  return JSON_INT.test(text) ? Number(text) : undefined;
}

/** `1_000` → `1000`; none for a leading, trailing or doubled underscore, or none at all. */
function stripUnderscores(text: string): string | undefined {
  if (text.startsWith('_') || text.endsWith('_') || !text.includes('_') || text.includes('__')) return undefined;
  return text.replaceAll('_', '');
}

/** `007` → `7`, `000` → `0`, `00.0` → `0.0`; none when the text does not start with a digit or `-`. */
function stripLeadingZeros(text: string): string | undefined {
  const first = text[0];
  if (first !== '0') return first !== undefined && /[1-9-]/.test(first) ? text : undefined;
  for (let i = 1; i < text.length; i++) {
    const c = text[i]!;
    if (c === '0' || c === '_') continue;
    if (/[1-9-]/.test(c)) return text.slice(i);
    if (c === '.') return text.slice(i - 1);
    return undefined;
  }
  return text.slice(-1);
}

/** pydantic-core's `clean_int_str`: the text made a JSON integer literal, or none when nothing changed. */
function cleanIntString(raw: string): string | undefined {
  let text = raw.replace(AROUND_WHITE_SPACE, '');
  if (text.startsWith('+')) {
    if (text[1] === '-') return undefined;
    text = text.slice(1);
  }
  let sign = '';
  if (text.startsWith('-')) {
    if (text[1] === '-' || text[1] === '+') return undefined;
    sign = '-';
    text = text.slice(1);
  }
  const stripped = stripLeadingZeros(text);
  if (stripped === undefined) return undefined;
  text = stripped;
  const dot = text.indexOf('.');
  if (dot !== -1 && /^0+$/.test(text.slice(dot + 1))) text = text.slice(0, dot);
  const withoutUnderscores = stripUnderscores(text);
  if (withoutUnderscores !== undefined) return sign + withoutUnderscores;
  if (text.length === raw.length) return undefined;
  return sign + text;
}

/**
 * A string read as pydantic 2 reads it into an `int` (pydantic-core's `str_as_int`): a JSON
 * integer, or one after stripping surrounding white space, one leading `+`, leading zeros, a
 * `.0…` tail and single underscores between digits. `" 3 "`, `"+3"`, `"03"`, `"3.0"` and
 * `"1_000"` are whole numbers; `"3.5"`, `"3."`, `"1e3"`, `"0x10"` and `""` are not.
 */
export function pydanticIntFromString(text: string): number | undefined {
  const direct = jsonInt(text);
  if (direct !== undefined) return direct;
  const cleaned = cleanIntString(text);
  return cleaned === undefined ? undefined : jsonInt(cleaned);
}

/**
 * A value read as pydantic 2 reads an `int` in lax mode: an integral number, a numeric string
 * (see pydanticIntFromString) or a boolean; null for anything else. Also how a row's `data`
 * written by an older client or by hand is read.
 */
export function laxWholeNumber(value: unknown): number | null {
  const number = laxInt(value);
  return typeof number === 'number' && Number.isInteger(number) ? number : null;
}

/**
 * pydantic's lax `int`: booleans and numeric strings become numbers (-0 becomes 0, as Python
 * has no negative integer zero); the number schema judges the rest.
 */
function laxInt(value: unknown): unknown {
  const number =
    typeof value === 'boolean' ? Number(value) : typeof value === 'string' ? pydanticIntFromString(value) : value;
  return typeof number === 'number' ? number + 0 : value;
}

const requiredOr = (expected: string) => (issue: { input?: unknown }) =>
  issue.input === undefined ? 'is required' : `must be ${expected}`;

const WHOLE_SECONDS = 'a whole number of seconds';

/**
 * The body of `POST /tasks`, read as the original read it (pydantic 2, lax mode; see above).
 * Fields other than `message` and `time` are ignored: `ignoredFields` names them, so the
 * answer can show a typo such as `"tme"`.
 */
export function taskInputSchema(limits: TaskInputLimits) {
  return z.object(
    {
      message: z
        .string({ error: requiredOr('a string') })
        .max(limits.maxMessageLength, { error: `must be at most ${limits.maxMessageLength} characters` })
        .refine((message) => !LONE_SURROGATE.test(message), {
          error: 'must be well-formed Unicode (it holds a lone UTF-16 surrogate)',
        })
        .meta({ description: 'What the task is about; any string, empty included.' }),
      time: z
        .preprocess(
          laxInt,
          z
            .number({ error: requiredOr(WHOLE_SECONDS) })
            .int({ error: `must be ${WHOLE_SECONDS}` })
            .min(0, { error: 'must not be negative' })
            .max(limits.maxTimeS, { error: `must be at most ${limits.maxTimeS} seconds` }),
        )
        .meta({
          description:
            'Seconds the task runs. As the original (pydantic 2, lax mode) also accepted: a number with no ' +
            'fractional part (3.0), a string holding a whole number (" 3 ", "3.0", "+3", "1_000"), ' +
            'true and false (1 and 0). Stored as an integer.',
        }),
    },
    { error: 'must be a JSON object' },
  );
}

/** The fields of a body that are not task fields, which the insert ignores. */
export function ignoredFields(body: unknown): string[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return [];
  const known: readonly string[] = TASK_INPUT_FIELDS;
  return Object.keys(body).filter((key) => !known.includes(key));
}
