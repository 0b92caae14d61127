import { ConfigError, loadConfig, redactUrl } from '@tasks/common';
import { describe, expect, it } from 'vitest';
import { MysqlUrlError, parseMysqlUrl } from '../src/mysql/mysql-url.js';

function problems(url: string): string[] {
  try {
    loadConfig({ MYSQL_URL: url });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error(`expected a ConfigError for MYSQL_URL=${url}`);
}

describe('parseMysqlUrl', () => {
  it('keeps a single-host URL as it is: the driver reads it as it always has', () => {
    const url = 'mysql://tasks:p%40ss@db.internal:3307/tasks?ssl={"rejectUnauthorized":false}';
    expect(parseMysqlUrl(url)).toEqual({ hosts: [{ name: 'db.internal:3307', url }], database: 'tasks' });
    expect(parseMysqlUrl('mariadb://root@db/x').hosts).toEqual([{ name: 'db:3306', url: 'mariadb://root@db/x' }]);
  });

  it("reads a host list as one URL per member, each with the list's user, password, database and options", () => {
    const target = parseMysqlUrl('mysql://app:s3cret@h1:3306,h2,[::1]:3313/tasks?connectTimeout=1000');
    expect(target.database).toBe('tasks');
    expect(target.hosts).toEqual([
      { name: 'h1:3306', url: 'mysql://app:s3cret@h1:3306/tasks?connectTimeout=1000' },
      { name: 'h2:3306', url: 'mysql://app:s3cret@h2:3306/tasks?connectTimeout=1000' },
      { name: '[::1]:3313', url: 'mysql://app:s3cret@[::1]:3313/tasks?connectTimeout=1000' },
    ]);
    for (const host of target.hosts) expect(new URL(host.url).password).toBe('s3cret');
  });

  it("ends the user information at the authority's last @, as URL parsers do", () => {
    const target = parseMysqlUrl('mysql://app:p@ss,word@h1:3306,h2:3306/tasks');
    expect(target.hosts.map((h) => h.name)).toEqual(['h1:3306', 'h2:3306']);
    expect(target.hosts[0]?.url).toBe('mysql://app:p@ss,word@h1:3306/tasks');
  });

  it.each([
    ['mysql://u:pw@h1:3306,,h3:3306/db', /empty host/],
    ['mysql://u:pw@h1:3306,h2:3306,/db', /empty host/],
    ['mysql://u:pw@h1:3306,h2:99999/db', /"h2:99999", whose port is not a number from 1 to 65535/],
    ['mysql://u:pw@h1:3306,h2:0/db', /"h2:0", whose port/],
    ['mysql://u:pw@h1:3306,h2:x/db', /"h2:x", which is not host or host:port/],
    ['mysql://u:pw@h1:3306,h 2:3306/db', /"h 2:3306", which is not a host name or address/],
    ['mysql://u:pw@h1:3306,H1:3306/db', /lists H1:3306 twice/],
    ['mysql://u:pw@h1,h1:3306/db', /lists h1:3306 twice/],
    ['postgres://u:pw@h1,h2/db', /must be a URL starting with mysql:\/\/ or mariadb:\/\//],
  ])('refuses %s with a MysqlUrlError that says why', (url, reason) => {
    let error: unknown;
    try {
      parseMysqlUrl(url);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(MysqlUrlError);
    expect((error as MysqlUrlError).message).toMatch(reason);
    expect((error as MysqlUrlError).message).not.toContain('pw');
  });
});

describe('MYSQL_URL in the configuration', () => {
  it('accepts a host list, and keeps it as it was given', () => {
    const url = 'mysql://tasks:change-me@mysql-1:3306,mysql-2:3306,mysql-3:3306/tasks';
    expect(loadConfig({ MYSQL_URL: url }).MYSQL_URL).toBe(url);
  });

  it.each([
    ['mysql://app:hunter2@h1:3306,,h3:3306/tasks', /empty host/],
    ['mysql://app:hunter2@h1:3306,h2:70000/tasks', /"h2:70000", whose port is not a number from 1 to 65535/],
    ['mysql://app:hunter2@h1:3306,h1:3306/tasks', /lists h1:3306 twice/],
    ['http://app:hunter2@h1:3306,h2:3306/tasks', /must be a URL starting with mysql:\/\//],
    ['mysql://app:hunter2@bad host/tasks', /is not a valid URL/],
  ])('refuses MYSQL_URL=%s naming the variable, without its password', (url, reason) => {
    const [problem, ...more] = problems(url);
    expect(more).toEqual([]);
    expect(problem).toMatch(reason);
    expect(problem).toMatch(/^MYSQL_URL="[a-z]+:\/\/app:\*\*\*@/);
    expect(problem).not.toContain('hunter2');
  });

  it("checks every member's URL as a single host's, and tells a problem they share once", () => {
    expect(problems('mysql://tasks:50%off@h1:3306,h2:3306/tasks')).toEqual([
      'MYSQL_URL="mysql://tasks:***@h1:3306,h2:3306/tasks": its password has a "%" that does not start an escape such as %40 (write a % itself as %25)',
    ]);
  });

  it('tells every wrong entry of a list at once', () => {
    expect(
      problems('mysql://root@h1:x,h2:0,h3:3306,h3:3306/tasks').map((p) => p.replace(/^MYSQL_URL="[^"]*": /, '')),
    ).toEqual([
      'lists "h1:x", which is not host or host:port: give host:port entries separated by commas, as in mysql://user:pass@db1:3306,db2:3306/tasks',
      'lists "h2:0", whose port is not a number from 1 to 65535',
      'lists h3:3306 twice',
    ]);
  });
});

describe('redactUrl on a host list', () => {
  it('hides the password of a multi-host URL, an @ in it included', () => {
    expect(redactUrl('mysql://tasks:change-me@h1:3306,h2:3306/tasks')).toBe('mysql://tasks:***@h1:3306,h2:3306/tasks');
    expect(redactUrl('mysql://tasks:p@ss@h1,h2/tasks')).toBe('mysql://tasks:***@h1,h2/tasks');
    expect(redactUrl('mysql://root@h1:3306,h2:3306/tasks')).toBe('mysql://root@h1:3306,h2:3306/tasks');
  });
});
