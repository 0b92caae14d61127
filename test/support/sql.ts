import { createPool } from 'mysql2';
import mysql, { type Pool, type RowDataPacket } from 'mysql2/promise';

/**
 * A plain mysql2 pool on a test's database, beside the store: for reading the truth in MySQL
 * and for writing rows by hand (a fault, a state the store would not leave). Its sessions run
 * in UTC, as the store's do, so that `NOW(3)` here and there mean the same instant, and in a
 * strict SQL mode without NO_BACKSLASH_ESCAPES or ANSI_QUOTES, so that what the driver escapes
 * means to the server what it means to the driver whatever the server's global mode.
 */
export type Sql = Pick<Pool, 'query' | 'end'>;

const SESSION =
  "SET time_zone = '+00:00', SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION'";

function plainPool(uri: string): Pool {
  const connections = createPool({
    uri,
    connectionLimit: 4,
    timezone: 'Z',
    charset: 'utf8mb4',
    supportBigNumbers: true,
    bigNumberStrings: false,
  });
  // Queued on a new connection ahead of every statement of the test's.
  connections.on('connection', (connection) => connection.query(SESSION, () => undefined));
  return connections.promise();
}

/** The servers of a MySQL URL, one URL each (a list `h1:3311,h2:3312` names a Group Replication group's members). */
function memberUrls(url: string): string[] {
  const shape = /^([a-z]+:\/\/)([^/?#]*@)?([^/?#]*)(.*)$/i.exec(url);
  if (!shape) throw new Error('not a MySQL URL');
  const [, scheme, userInfo = '', hosts = '', rest] = shape;
  return hosts.split(',').map((host) => `${scheme}${userInfo}${host}${rest}`);
}

/** Whether the server takes writes: neither `read_only` nor `super_read_only` on. */
async function writable(url: string): Promise<boolean> {
  const server = new URL(url);
  server.pathname = '/';
  let connection: mysql.Connection | null = null;
  try {
    connection = await mysql.createConnection({ uri: server.toString(), connectTimeout: 1_000 });
    const [rows] = await connection.query<RowDataPacket[]>(
      "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('read_only', 'super_read_only')",
    );
    return rows.every((row) => ['OFF', '0'].includes(String(row.Value).toUpperCase()));
  } catch {
    return false;
  } finally {
    await connection?.end().catch(() => undefined);
  }
}

/** An error after which the statement may succeed on the group's new primary. */
function primaryMoved(err: unknown): boolean {
  const { code, errno, fatal } = (err ?? {}) as { code?: string; errno?: number; fatal?: boolean };
  return fatal === true || errno === 1290 || errno === 3100 || ['ECONNREFUSED', 'ECONNRESET'].includes(code ?? '');
}

/**
 * A pool on whichever member of a group takes writes now: found when first needed, and found
 * again (once per statement) when a statement fails as it does on a member that stopped being
 * the primary. The group's failover tests read the truth across a failover.
 */
class PrimarySql {
  private current: Pool | null = null;

  constructor(private readonly urls: string[]) {}

  readonly query = (async (...args: unknown[]) => {
    for (let attempt = 0; ; attempt++) {
      const primary = await this.primary();
      try {
        return await (primary.query as (...a: unknown[]) => Promise<unknown>)(...args);
      } catch (err) {
        if (attempt > 0 || !primaryMoved(err)) throw err;
        if (this.current === primary) this.current = null;
        primary.end().catch(() => undefined);
      }
    }
  }) as Pool['query'];

  async end(): Promise<void> {
    await this.current?.end();
    this.current = null;
  }

  private async primary(): Promise<Pool> {
    const deadline = Date.now() + 60_000;
    while (!this.current) {
      for (const url of this.urls) {
        if (!this.current && (await writable(url))) this.current = plainPool(url);
      }
      if (this.current) break;
      if (Date.now() > deadline) throw new Error(`no writable primary among ${this.urls.length} members`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    return this.current;
  }
}

/** A plain pool on the database `url` names: on its one server, or on the writable member of the group it lists. */
export function openSql(url: string): Sql {
  const members = memberUrls(url);
  return members.length === 1 ? plainPool(url) : new PrimarySql(members);
}
