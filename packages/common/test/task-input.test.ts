import { ignoredFields, taskInputSchema } from '@tasks/common';
import { describe, expect, it } from 'vitest';
import { pydanticIntFromString } from '../src/tasks/task-input.js';

/**
 * The body of POST /tasks is read as the original read it: pydantic 2 in lax mode
 * (`message: str`, `time: int`, other fields ignored). The expectations below are pydantic's
 * conversion table and pydantic-core's `str_as_int`, value by value.
 */

const schema = taskInputSchema({ maxMessageLength: 100, maxTimeS: 3600 });

function parse(body: string) {
  return schema.safeParse(JSON.parse(body));
}

function problems(body: string): Record<string, string> {
  const result = parse(body);
  if (result.success) throw new Error(`expected ${body} to be refused, got ${JSON.stringify(result.data)}`);
  return Object.fromEntries(result.error.issues.map((i) => [i.path.join('.') || 'body', i.message]));
}

describe('time, as pydantic 2 reads an int in lax mode', () => {
  it.each([
    ['3', 3],
    ['0', 0],
    ['-0', 0],
    ['3600', 3600],
    ['3.0', 3],
    ['1e2', 100],
    ['true', 1],
    ['false', 0],
    ['"3"', 3],
    ['" 3 "', 3],
    ['"\\t3\\n"', 3],
    ['"\\u00a03\\u3000"', 3],
    ['"\\u00853"', 3],
    ['"+3"', 3],
    ['"03"', 3],
    ['"0"', 0],
    ['"-0"', 0],
    ['"000"', 0],
    ['"3.0"', 3],
    ['"3.000"', 3],
    ['"00.0"', 0],
    ['"1_000"', 1000],
    ['"0_1"', 1],
    ['"1_0.0"', 10],
  ])('accepts %s as %d', (time, expected) => {
    const result = parse(`{"message":"m","time":${time}}`);
    expect(result.success && result.data).toEqual({ message: 'm', time: expected });
  });

  it.each([
    '1.5',
    '0.1',
    'null',
    '[3]',
    '{}',
    '"1.5"',
    '"3."',
    '"1e3"',
    '"abc"',
    '""',
    '"   "',
    '"0x10"',
    '"1__0"',
    '"_1"',
    '"1_"',
    '"+-3"',
    '"--3"',
    '"++3"',
    '"\\ufeff3"',
    '"\\u0663"',
    '"3.0_0"',
  ])('refuses %s as not a whole number of seconds', (time) => {
    expect(problems(`{"message":"m","time":${time}}`)).toEqual({ time: 'must be a whole number of seconds' });
  });

  it.each(['-1', '"-1"', '" -3 "', '-1.0'])('refuses the negative %s', (time) => {
    expect(problems(`{"message":"m","time":${time}}`)).toEqual({ time: 'must not be negative' });
  });

  it.each(['3601', '"3601"', '1e400', '"99999999999999999999999"'])('refuses %s, above the largest time', (time) => {
    expect(problems(`{"message":"m","time":${time}}`).time).toMatch(/must be at most 3600 seconds|whole number/);
  });

  it('says a missing time is required', () => {
    expect(problems('{"message":"m"}')).toEqual({ time: 'is required' });
  });
});

describe('pydanticIntFromString', () => {
  it('keeps the value of every JSON integer literal', () => {
    for (const n of [0, 1, 7, 42, 3600, 123456789]) expect(pydanticIntFromString(String(n))).toBe(n);
  });
});

describe('message, as pydantic 2 reads a str in lax mode', () => {
  it.each([
    ['""', ''],
    ['"spiderman 3"', 'spiderman 3'],
    ['"🕷 spider"', '🕷 spider'],
    ['" padded "', ' padded '],
  ])('accepts %s unchanged', (message, expected) => {
    const result = parse(`{"message":${message},"time":3}`);
    expect(result.success && result.data).toEqual({ message: expected, time: 3 });
  });

  it.each(['42', '3.5', 'true', 'null', '["m"]', '{"m":1}'])('refuses %s, which is not a string', (message) => {
    expect(problems(`{"message":${message},"time":3}`)).toEqual({ message: 'must be a string' });
  });

  it.each(['"\\ud800"', '"a\\udc00b"', '"\\ud83d"'])('refuses %s, a lone surrogate', (message) => {
    expect(problems(`{"message":${message},"time":3}`).message).toMatch(/well-formed Unicode/);
  });

  it('refuses a message longer than the limit', () => {
    expect(problems(`{"message":"${'x'.repeat(101)}","time":3}`)).toEqual({
      message: 'must be at most 100 characters',
    });
  });

  it('says a missing message is required', () => {
    expect(problems('{"time":3}')).toEqual({ message: 'is required' });
  });
});

describe('the body', () => {
  it.each(['[]', '3', '"x"', 'null'])('refuses %s, which is not an object', (body) => {
    expect(problems(body)).toEqual({ body: 'must be a JSON object' });
  });

  it('stores only message and time, and names the fields it ignores', () => {
    const body = JSON.parse('{"message":"m","time":"3","priority":5,"tme":4}');
    const result = schema.safeParse(body);
    expect(result.success && result.data).toEqual({ message: 'm', time: 3 });
    expect(ignoredFields(body)).toEqual(['priority', 'tme']);
    expect(ignoredFields({ message: 'm', time: 3 })).toEqual([]);
    expect(ignoredFields([1])).toEqual([]);
  });
});
