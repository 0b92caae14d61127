import { Writable } from 'node:stream';
import { ConfigError, createLogger, loadConfig, redactUrl } from '@tasks/common';
import { describe, expect, it } from 'vitest';

function capture() {
  const lines: Record<string, unknown>[] = [];
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { stream, lines, text: () => text };
}

describe('log redaction', () => {
  it('never writes authorization headers, cookies or secret settings', () => {
    const out = capture();
    const logger = createLogger({ LOG_LEVEL: 'info', LOG_PRETTY: false }, 'test', out.stream);
    logger.info(
      {
        req: { headers: { authorization: 'Bearer s3cret-token-123456', cookie: 'sid=abc', host: 'h' } },
        config: { API_TOKEN: 's3cret-token-123456', MYSQL_URL: 'mysql://u:pw@db/x', PORT: 8000 },
      },
      'request',
    );
    logger.child({ reqId: 'r1' }).warn({ headers: { authorization: 'Bearer s3cret-token-123456' } }, 'child');
    expect(out.text()).not.toContain('s3cret');
    expect(out.text()).not.toContain(':pw@');
    expect(out.text()).not.toContain('sid=abc');
    expect(out.lines[0]).toMatchObject({
      req: { headers: { authorization: '[redacted]', cookie: '[redacted]', host: 'h' } },
      config: { API_TOKEN: '[redacted]', MYSQL_URL: '[redacted]', PORT: 8000 },
    });
    expect(out.lines[1]).toMatchObject({ reqId: 'r1', headers: { authorization: '[redacted]' } });
  });
});

describe('redactUrl', () => {
  it('hides the password and keeps the rest', () => {
    expect(redactUrl('mysql://tasks:change-me@mysql:3306/tasks')).toBe('mysql://tasks:***@mysql:3306/tasks');
    expect(redactUrl('redis://:p%40ss@redis:6379/0')).toBe('redis://:***@redis:6379/0');
    expect(redactUrl('mysql://root@127.0.0.1:3306/tasks')).toBe('mysql://root@127.0.0.1:3306/tasks');
    // Not a valid URL (a space in the host), still no password shown.
    expect(redactUrl('mysql://u:hunter2@bad host/x')).toBe('mysql://u:***@bad host/x');
    // An unescaped @ in the password: the user information ends at the authority's last @.
    expect(redactUrl('mysql://u:p@ss@db:3306/x?a=b@c')).toBe('mysql://u:***@db:3306/x?a=b@c');
  });
});

describe('configuration errors', () => {
  function message(env: Record<string, string>): string {
    try {
      loadConfig(env);
    } catch (err) {
      if (err instanceof ConfigError) return err.message;
      throw err;
    }
    throw new Error('expected a ConfigError');
  }

  it('name a bad API_TOKEN without showing it', () => {
    const text = message({ API_TOKEN: 'short-secret' });
    expect(text).toContain('API_TOKEN');
    expect(text).toContain('at least 16 characters');
    expect(text).not.toContain('short-secret');
  });

  it('show a bad URL without its password', () => {
    const text = message({ MYSQL_URL: 'postgres://app:hunter2@db/x' });
    expect(text).toContain('MYSQL_URL="postgres://app:***@db/x"');
    expect(text).not.toContain('hunter2');
  });

  it('take the operate settings', () => {
    expect(loadConfig({})).toMatchObject({ RATE_LIMIT_PER_MINUTE: 0, HEALTH_PORT: 0 });
    expect(loadConfig({}).API_TOKEN).toBeUndefined();
    expect(loadConfig({ API_TOKEN: 'a'.repeat(16), RATE_LIMIT_PER_MINUTE: '60', HEALTH_PORT: '9464' })).toMatchObject({
      API_TOKEN: 'a'.repeat(16),
      RATE_LIMIT_PER_MINUTE: 60,
      HEALTH_PORT: 9464,
    });
  });
});
