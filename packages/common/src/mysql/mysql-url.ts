/**
 * MYSQL_URL names one server, `mysql://user:pass@host:3306/db`, or the members of a Group
 * Replication group (InnoDB Cluster), `mysql://user:pass@h1:3306,h2:3306,h3:3306/db`, as
 * libpq's multi-host URLs and Connector/J's failover URLs do. The driver reads one host per
 * URL, so a multi-host URL becomes one URL per member, each with the list's user, password,
 * database and options; `new URL` refuses the list itself.
 */

/** One server of MYSQL_URL. */
export interface MysqlHost {
  /** `host:port` as logs and errors show it (an IPv6 address in brackets); never a credential. */
  name: string;
  /** A URL of this server alone, with the user, password, database and options of MYSQL_URL. */
  url: string;
}

export interface MysqlTarget {
  /** The servers, in the order MYSQL_URL lists them; one for a single-host URL. */
  hosts: MysqlHost[];
  /** The database the path names ('' when none). */
  database: string;
}

/** Why MYSQL_URL cannot be used; the problems never show its user information. */
export class MysqlUrlError extends Error {
  constructor(readonly problems: string[]) {
    super(`MYSQL_URL ${problems.join('; ')}`);
    this.name = 'MysqlUrlError';
  }
}

export const MYSQL_PROTOCOLS = ['mysql:', 'mariadb:'];

const DEFAULT_PORT = 3306;

/** `scheme://authority` and the rest (path, query, fragment), the authority ending where a URL parser ends it. */
const SHAPE = /^([a-z][a-z0-9+.-]*:)\/\/([^/?#]*)(.*)$/is;

/** One entry of a host list: a name or an address, an IPv6 one in brackets, with an optional port. */
const ENTRY = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d*))?$/i;

/**
 * The servers MYSQL_URL names, or a MysqlUrlError saying what is wrong with it. A single-host
 * URL is kept as it is (the driver reads it as it always has); a list becomes one URL per
 * member, its port 3306 when it gives none. The URLs' other parts are checked by config.ts.
 */
export function parseMysqlUrl(url: string): MysqlTarget {
  const shape = SHAPE.exec(url);
  const protocol = shape?.[1]?.toLowerCase();
  if (!shape || !protocol || !MYSQL_PROTOCOLS.includes(protocol)) {
    throw new MysqlUrlError([`must be a URL starting with ${MYSQL_PROTOCOLS.map((p) => `${p}//`).join(' or ')}`]);
  }
  const authority = shape[2] ?? '';
  const rest = shape[3] ?? '';
  // The user information ends at the authority's last `@`, as URL parsers read it.
  const at = authority.lastIndexOf('@');
  const userInfo = authority.slice(0, at + 1);
  const list = authority.slice(at + 1);
  const entries = list.split(',');
  if (entries.length === 1) return { hosts: [singleHost(url)], database: databaseOf(url) };

  const problems: string[] = [];
  const hosts: MysqlHost[] = [];
  for (const entry of entries) {
    const problem = entryProblem(entry);
    if (problem) {
      problems.push(problem);
      continue;
    }
    const match = ENTRY.exec(entry) as RegExpExecArray;
    const port = match[2] ? Number(match[2]) : DEFAULT_PORT;
    const name = `${match[1]}:${port}`;
    const hostUrl = `${protocol}//${userInfo}${name}${rest}`;
    if (!URL.canParse(hostUrl)) {
      problems.push(`lists "${entry}", which is not a host name or address`);
      continue;
    }
    const canonical = canonicalName(hostUrl);
    if (hosts.some((h) => canonicalName(h.url) === canonical)) {
      problems.push(`lists ${name} twice`);
      continue;
    }
    hosts.push({ name, url: hostUrl });
  }
  if (problems.length > 0) throw new MysqlUrlError([...new Set(problems)]);
  return { hosts, database: databaseOf(hosts[0]?.url ?? '') };
}

/** What is wrong with one entry of a host list, or null. */
function entryProblem(entry: string): string | null {
  const example = 'give host:port entries separated by commas, as in mysql://user:pass@db1:3306,db2:3306/tasks';
  if (entry === '') return `lists an empty host (two commas in a row, or a comma at an end): ${example}`;
  const match = ENTRY.exec(entry);
  if (!match) return `lists "${entry}", which is not host or host:port: ${example}`;
  const port = match[2];
  if (port !== undefined && (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)) {
    return `lists "${entry}", whose port is not a number from 1 to 65535`;
  }
  return null;
}

/** The one server of a single-host URL (the driver reads the URL itself). */
function singleHost(url: string): MysqlHost {
  if (!URL.canParse(url)) throw new MysqlUrlError(['is not a valid URL, such as mysql://user:pass@host:3306/tasks']);
  const parsed = new URL(url);
  return { name: `${parsed.hostname}:${parsed.port || DEFAULT_PORT}`, url };
}

/** `host:port` of a member's URL as the URL parser writes it (lower case, IPv6 compressed). */
function canonicalName(url: string): string {
  const parsed = new URL(url);
  return `${parsed.hostname.toLowerCase()}:${parsed.port || DEFAULT_PORT}`;
}

function databaseOf(url: string): string {
  if (!URL.canParse(url)) return '';
  try {
    return decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  } catch {
    return '';
  }
}

/** `url` (one server's) with `database` as its path. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** `h1:3306, h2:3306, h3:3306`: the servers as errors and logs name them. */
export function hostNames(target: MysqlTarget): string {
  return target.hosts.map((h) => h.name).join(', ');
}
