import { randomBytes } from 'node:crypto';
import { type NewTask, storedKeys, TASK_STATUSES } from '@tasks/common';
import type { Sql } from '../../support/sql.js';
import { createTestEnv, type TestEnv } from '../../support/test-env.js';
import { RedisServer } from './redis-server.js';
import { type ServiceName, ServiceProcess } from './service-process.js';
import { TcpProxy } from './tcp-proxy.js';

/** Intervals short enough that each recovery happens within a second or two. */
export const FAST: Record<string, string> = {
  LEASE_MS: '1500',
  SWEEP_INTERVAL_MS: '300',
  SWEEP_GRACE_MS: '500',
  POLL_INTERVAL_MS: '100',
  RETRY_BACKOFF_MS: '50',
  RETRY_BACKOFF_MAX_MS: '200',
  SHUTDOWN_TIMEOUT_MS: '5000',
  FAILURE_RATE: '0',
  DB_CONNECT_TIMEOUT_MS: '1000',
  REQUEST_TIMEOUT_MS: '2000',
  LOG_LEVEL: 'debug',
  PORT: '0',
};

/**
 * One fault scenario's world: its own database (reached by the services through a proxy the
 * test can cut), its own Redis server (which the test can flush or restart), and the real
 * services as child processes.
 */
/** What every fault test asserts of `counts()`: nothing lost, stranded, changed once final or miscounted. */
export const NOTHING_LOST = {
  lost: 0,
  strandedProcessing: 0,
  finalStatusesChanged: 0,
  finishesMiscounted: 0,
  statusesMiscounted: 0,
} as const;

export class FaultEnv {
  readonly services: ServiceProcess[] = [];

  private constructor(
    readonly t: TestEnv,
    private readonly ownRedis: RedisServer | null,
    private readonly proxy: TcpProxy | null,
    readonly env: Record<string, string>,
  ) {}

  /** A scenario on a Redis server of its own. */
  static async create(overrides: Record<string, string> = {}): Promise<FaultEnv> {
    const redis = await RedisServer.start();
    return FaultEnv.build(redis, { REDIS_URL: redis.url }, overrides);
  }

  /**
   * A scenario on a Redis the test does not own (a Redis Cluster or Sentinel setup from the
   * redis-kit), reached through `redisEnv` (REDIS_CLUSTER_NODES, REDIS_SENTINELS, …). Its keys
   * get a hash tag of their own, so each scenario's keys share one slot and no other's.
   */
  static async onRedis(redisEnv: Record<string, string>, overrides: Record<string, string> = {}): Promise<FaultEnv> {
    const tag = `fault-${randomBytes(4).toString('hex')}`;
    return FaultEnv.build(null, { KEY_PREFIX: `{${tag}}:`, ...redisEnv }, overrides);
  }

  /**
   * A scenario on a Redis server of its own and a MySQL Group Replication group the test does
   * not own: the services get MYSQL_URL with the members' list (`mysqlServer`, a URL without
   * its path, as `mysql://root@h1:3311,h2:3312,h3:3313`) and find the primary themselves.
   */
  static async onMysqlGroup(mysqlServer: string, overrides: Record<string, string> = {}): Promise<FaultEnv> {
    const redis = await RedisServer.start();
    const t = await createTestEnv({ REDIS_URL: redis.url }, { mysqlServer });
    await installStatusAudit(t.sql);
    return new FaultEnv(t, redis, null, { ...t.env, ...FAST, ...overrides });
  }

  private static async build(
    redis: RedisServer | null,
    redisEnv: Record<string, string>,
    overrides: Record<string, string>,
  ): Promise<FaultEnv> {
    const t = await createTestEnv(redisEnv);
    const mysqlUrl = new URL(t.config.MYSQL_URL);
    const proxy = await TcpProxy.start(Number(mysqlUrl.port || 3306));
    mysqlUrl.hostname = '127.0.0.1';
    mysqlUrl.port = String(proxy.port);
    await installStatusAudit(t.sql);
    const env = { ...t.env, ...FAST, MYSQL_URL: mysqlUrl.toString(), ...overrides };
    return new FaultEnv(t, redis, proxy, env);
  }

  /** The proxy between the services and the scenario's MySQL server, which the test can cut (not there `onMysqlGroup`). */
  get mysqlProxy(): TcpProxy {
    if (!this.proxy) throw new Error('this scenario reaches MySQL without a proxy');
    return this.proxy;
  }

  /** The scenario's own Redis server (not there for a scenario `onRedis`). */
  get redis(): RedisServer {
    if (!this.ownRedis) throw new Error('this scenario runs on a Redis it does not own');
    return this.ownRedis;
  }

  /** The hash tag every key of this scenario shares. */
  get keyTag(): string {
    return this.t.config.KEY_PREFIX.slice(0, this.t.config.KEY_PREFIX.indexOf('}') + 1);
  }

  /** A plain mysql2 pool on the scenario's database (not through the proxy): the truth, and rows written by hand. */
  get sql(): Sql {
    return this.t.sql;
  }

  async start(name: ServiceName, overrides: Record<string, string> = {}): Promise<ServiceProcess> {
    const service = await ServiceProcess.start(name, { ...this.env, ...overrides });
    this.services.push(service);
    return service;
  }

  /** Inserts `count` tasks of `time` seconds as the API does (with `fields`: delays, priority, group), and announces them. */
  async insertTasks(count: number, time: number, fields: (i: number) => Partial<NewTask> = () => ({})): Promise<void> {
    for (let done = 0; done < count; done += 500) {
      const n = Math.min(500, count - done);
      const tasks = Array.from({ length: n }, (_, i) => ({
        data: { message: `task ${done + i}`, time },
        idempotencyKey: null,
        ...fields(done + i),
      }));
      const outcomes = await this.t.store.insert(tasks);
      if (outcomes.some((o) => 'error' in o)) throw new Error('inserting the tasks failed');
    }
    await this.t.store.announceInserted();
  }

  /** Waits until no task is delayed, pending or processing; false if `timeoutMs` passed first. */
  async settled(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const [rows] = await this.sql.query(
        "SELECT COUNT(*) AS n FROM tasks WHERE status IN ('delayed', 'pending', 'processing')",
      );
      if (Number((rows as { n: number }[])[0]?.n) === 0) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    await this.reportUnsettled();
    return false;
  }

  /** Prints the tasks still pending or processing, with what Redis holds of them, to say why. */
  private async reportUnsettled(): Promise<void> {
    const [rows] = (await this.sql.query(
      `SELECT id, status, attempts, run, dispatched_at FROM tasks
        WHERE status IN ('delayed', 'pending', 'processing') ORDER BY id LIMIT 20`,
    )) as unknown as [{ id: number; status: string; attempts: number; run: number; dispatched_at: Date | null }[]];
    // Whether Redis holds a message of each (the present set, by its key name).
    const present = rows.length > 0 ? await this.t.redis.smismember(this.t.keys.present, ...rows.map((r) => r.id)) : [];
    const depths = await this.t.store.depths();
    console.log(
      `[faults] not settled: ${JSON.stringify(rows.map((r, i) => ({ ...r, present: present[i] === 1 })))}; ` +
        `queue ${JSON.stringify(depths)}`,
    );
    // What each service logged of the first of them, to say where it went.
    const first = Number(rows[0]?.id);
    for (const service of this.services) {
      const lines = service.lines.filter((l) => l.taskId === first || JSON.stringify(l).includes(`"id":${first},`));
      if (lines.length > 0)
        console.log(
          `[faults] ${service.name} (${service.pid}) on task ${first}:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`,
        );
    }
  }

  async deadLetterIds(): Promise<number[]> {
    const entries = await this.t.redis.lrange(this.t.keys.deadLetters, 0, -1);
    return entries.map((e) => (JSON.parse(e) as { id?: number }).id).filter((id): id is number => id !== undefined);
  }

  /** The counts every fault test asserts and prints. */
  async counts(label: string) {
    const [tasks] = (await this.sql.query('SELECT id, status, attempts FROM tasks')) as unknown as [
      { id: number; status: string; attempts: number }[],
    ];
    const [changes] = (await this.sql.query(
      "SELECT COUNT(*) AS n FROM task_status_changes WHERE old_status IN ('completed', 'failed', 'cancelled')",
    )) as unknown as [{ n: number }[]];
    const [finishes] = (await this.sql.query(
      `SELECT COALESCE(SUM(completed), 0) AS completed, COALESCE(SUM(failed), 0) AS failed,
              COALESCE(SUM(cancelled), 0) AS cancelled FROM tasks_finished_per_minute`,
    )) as unknown as [{ completed: number; failed: number; cancelled: number }[]];
    // The per-status counts the store keeps (its stats), against the table.
    const kept = (await this.t.store.stats()).tasks;
    const runs = new Map<number, number>();
    for (const service of this.services) {
      for (const id of service.startedTaskIds()) runs.set(id, (runs.get(id) ?? 0) + 1);
    }
    const counts = {
      tasks: tasks.length,
      completed: tasks.filter((t) => t.status === 'completed').length,
      failed: tasks.filter((t) => t.status === 'failed').length,
      cancelled: tasks.filter((t) => t.status === 'cancelled').length,
      lost: tasks.filter((t) => !['completed', 'failed', 'cancelled'].includes(t.status)).length,
      strandedProcessing: tasks.filter((t) => t.status === 'processing').length,
      finalStatusesChanged: Number(changes[0]?.n),
      /** Finishes counted per minute against the tasks found final: each is counted once. */
      finishesMiscounted:
        Math.abs(Number(finishes[0]?.completed) - tasks.filter((t) => t.status === 'completed').length) +
        Math.abs(Number(finishes[0]?.failed) - tasks.filter((t) => t.status === 'failed').length) +
        Math.abs(Number(finishes[0]?.cancelled) - tasks.filter((t) => t.status === 'cancelled').length),
      /** The per-status counts kept by the status writes against the tasks found in each status. */
      statusesMiscounted: TASK_STATUSES.reduce(
        (sum, status) => sum + Math.abs(kept[status] - tasks.filter((t) => t.status === status).length),
        0,
      ),
      runMoreThanOnce: [...runs.values()].filter((n) => n > 1).length,
      runsBeyondAttempts: tasks.reduce((sum, t) => sum + Math.max(0, (runs.get(Number(t.id)) ?? 0) - t.attempts), 0),
    };
    console.log(`[faults] ${label}: ${JSON.stringify(counts)}`);
    return counts;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.services.map((s) => s.stop(5_000)));
    await this.proxy?.close();
    if (!this.ownRedis) await this.t.redis.del(...storedKeys(this.t.keys));
    await this.t.cleanup();
    await this.ownRedis?.stop();
  }
}

/**
 * Records every status change, so a test can prove a final status was never changed. (The
 * table has a primary key: Group Replication refuses writes to a table without one.)
 */
async function installStatusAudit(sql: Sql): Promise<void> {
  await sql.query(`CREATE TABLE task_status_changes (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    task_id BIGINT UNSIGNED NOT NULL,
    old_status VARCHAR(16) NOT NULL,
    new_status VARCHAR(16) NOT NULL,
    changed_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
  )`);
  await sql.query(`CREATE TRIGGER tasks_status_audit AFTER UPDATE ON tasks FOR EACH ROW
    INSERT INTO task_status_changes (task_id, old_status, new_status)
    SELECT NEW.id, OLD.status, NEW.status FROM DUAL WHERE OLD.status <> NEW.status`);
}
