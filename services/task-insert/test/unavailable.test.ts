import { NoWritablePrimaryError } from '@tasks/common';
import { describe, expect, it } from 'vitest';
import { unavailableStore } from '../src/unavailable.js';

/** An error shaped as mysql2 reports a server's answer. */
function serverError(errno: number, code: string): Error {
  return Object.assign(new Error(code), { errno, code });
}

describe('unavailableStore: the errors the API answers 503 for', () => {
  it.each([
    ['a lost connection', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', fatal: true })],
    ['no writable primary among the members', new NoWritablePrimaryError('h1:3306, h2:3306', [])],
    ['a member refusing a write as read-only (1290)', serverError(1290, 'ER_OPTION_PREVENTS_STATEMENT')],
    ['a primary that left its group refusing the commit (3100)', serverError(3100, 'ER_RUN_HOOK_ERROR')],
  ])('%s is the database being unavailable', (_, err) => {
    expect(unavailableStore(err)).toBe('database');
  });

  it('a statement the server refuses for what it says is not', () => {
    expect(unavailableStore(serverError(1062, 'ER_DUP_ENTRY'))).toBeNull();
    expect(unavailableStore(serverError(1064, 'ER_PARSE_ERROR'))).toBeNull();
  });
});
